"""The Gymnasium front ends: Gymnasium's own checker, the spaces, SAME_STEP autoreset (checked
against Gymnasium's SyncVectorEnv over single environments), seeding, registration."""

import subprocess
import sys
import warnings

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")

from gymnasium.utils.env_checker import check_env  # noqa: E402
from gymnasium.vector import AutoresetMode, SyncVectorEnv  # noqa: E402

import quadlit.gym as qgym  # noqa: E402
from quadlit.envs.base import EnvSpec  # noqa: E402
from quadlit.tasks import TASK_NAMES  # noqa: E402
from tests.render.helpers import needs_display  # noqa: E402

SHORT = {"max_steps": 7}  # episodes end often


def _gym_warnings(record) -> list[str]:
    return [str(w.message) for w in record if "gymnasium" in (w.filename or "") or "gym" in str(w.message).lower()]


def _actions(rng, n, a=3):
    return rng.uniform(-1, 1, size=(n, a)).astype(np.float32)


def test_import_quadlit_never_imports_gymnasium():
    code = ("import sys, quadlit, quadlit.cli, quadlit.export, quadlit.training.checkpoint\n"
            "assert 'gymnasium' not in sys.modules, 'gymnasium imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_gymnasium_tells_how_to_install():
    code = ("import sys\nsys.modules['gymnasium'] = None\n"
            "try:\n    import quadlit.gym\nexcept ImportError as e:\n    print(e)\nelse:\n    print('imported')\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert "pip install 'quadlit[gym]'" in out, out


def test_ids_are_registered_for_every_task_without_time_limit():
    assert qgym.env_id("reach") == "quadlit/Reach-v0"
    assert qgym.env_id("balance") == "quadlit/Balance-v0"
    assert "quadlit/Balance-v0" in gym.registry and "quadlit/Reach-v0" in gym.registry
    for name in TASK_NAMES:
        assert gym.registry[qgym.env_id(name)].max_episode_steps is None
    env = gym.make("quadlit/Reach-v0")
    wrappers = []
    e = env
    while e is not e.unwrapped:
        wrappers.append(type(e).__name__)
        e = e.env
    assert "TimeLimit" not in wrappers
    env.close()


def test_a_newly_registered_task_gets_an_id(monkeypatch):
    monkeypatch.setattr(qgym, "TASK_NAMES", (*TASK_NAMES, "walk"))
    try:
        assert "quadlit/Walk-v0" in qgym.register_envs()
        assert gym.registry["quadlit/Walk-v0"].kwargs == {"task": "walk"}
    finally:
        gym.registry.pop("quadlit/Walk-v0", None)


def test_reach_passes_gymnasium_env_checker():
    env = gym.make("quadlit/Reach-v0", params=SHORT).unwrapped
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    assert _gym_warnings(record) == []
    env.close()


def test_without_a_display_the_env_offers_no_render_mode_and_passes_the_checker(monkeypatch):
    from quadlit.render.display import clear_display_cache

    monkeypatch.delenv("DISPLAY", raising=False)
    clear_display_cache()
    try:
        env = gym.make("quadlit/Reach-v0", params=SHORT).unwrapped
        assert env.metadata["render_modes"] == []
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            check_env(env)  # with the render check: nothing to render here, so nothing fails
        assert _gym_warnings(record) == []
        env.close()
        # asking for rgb_array is accepted (SB3's make_vec_env asks every environment for it);
        # drawing then says why it cannot
        env = gym.make("quadlit/Reach-v0", params=SHORT, render_mode="rgb_array")
        env.reset(seed=0)
        with pytest.raises(RuntimeError, match="cannot draw here: no X display"):
            env.render()
        env.close()
    finally:
        monkeypatch.undo()
        clear_display_cache()


@pytest.mark.render
@needs_display
def test_reach_passes_gymnasium_env_checker_with_rendering():
    env = gym.make("quadlit/Reach-v0").unwrapped
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        check_env(env)  # renders a spec.make(render_mode="rgb_array") copy
    assert _gym_warnings(record) == []
    env.close()

    env = gym.make("quadlit/Reach-v0", render_mode="rgb_array", render_width=160, render_height=120)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    image = env.render()
    env.close()
    assert image.shape == (120, 160, 3) and image.dtype == np.uint8
    assert image.reshape(-1, 3).std(axis=0).max() > 5  # a scene, not a blank image


def test_spaces():
    env = qgym.QuadlitEnv("reach")
    assert env.observation_space == gym.spaces.Box(-1.0, 1.0, (7,), np.float32)
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    assert env.metadata["render_fps"] == pytest.approx(20.0)  # 1 / dt
    env.close()
    venv = qgym.QuadlitVectorEnv("reach", 5, physics_threads=1)
    assert venv.single_observation_space == env.observation_space
    assert venv.single_action_space == env.action_space
    assert venv.observation_space.shape == (5, 7) and venv.action_space.shape == (5, 3)
    assert venv.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    obs, _ = venv.reset(seed=0)
    assert obs.dtype == np.float32 and obs in venv.observation_space
    venv.close()


def test_observation_bounds_unknown_task_is_unbounded_and_spec_may_declare_them():
    spec = EnvSpec(name="other", obs_dim=4, action_dim=2, reward_terms=("r",))
    low, high = qgym.observation_bounds(spec)
    assert np.all(low == -np.inf) and np.all(high == np.inf) and low.dtype == np.float32

    class Declared:
        name, obs_dim = "other", 3
        obs_low, obs_high = [-1.0, 0.0, -np.inf], [1.0, 1.0, np.inf]

    low, high = qgym.observation_bounds(Declared())
    assert low.tolist() == [-1.0, 0.0, -np.inf] and high.tolist() == [1.0, 1.0, np.inf]


def test_make_vec_builds_the_batched_env():
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        envs = gym.make_vec("quadlit/Reach-v0", num_envs=3, params=SHORT, physics_threads=1)
    assert isinstance(envs.unwrapped, qgym.QuadlitVectorEnv) and envs.num_envs == 3
    assert envs.unwrapped.params.max_steps == 7
    assert _gym_warnings(record) == []
    envs.close()


def _assert_same(a, b, path="infos"):
    if isinstance(a, dict):
        assert set(a) == set(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            _assert_same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, np.ndarray) and a.dtype == object:
        assert a.shape == b.shape, path
        for x, y in zip(a, b):
            assert (x is None and y is None) or np.array_equal(x, y), path
    else:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=path)


def test_vector_env_matches_gymnasium_same_step_autoreset():
    """One environment batched by us == Gymnasium's SyncVectorEnv(SAME_STEP) over QuadlitEnv:
    observations, rewards, flags, final_obs and every info."""
    ours = qgym.QuadlitVectorEnv("reach", 1, params=SHORT, physics_threads=1)
    theirs = SyncVectorEnv([lambda: qgym.QuadlitEnv("reach", params=SHORT)], autoreset_mode=AutoresetMode.SAME_STEP)
    assert theirs.metadata["autoreset_mode"] == ours.metadata["autoreset_mode"]
    obs_a, _ = ours.reset(seed=11)
    obs_b, _ = theirs.reset(seed=11)
    np.testing.assert_array_equal(obs_a, obs_b)
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(3 * SHORT["max_steps"] + 2):
        actions = _actions(rng, 1)
        a = ours.step(actions)
        b = theirs.step(actions)
        for x, y in zip(a[:4], b[:4]):
            np.testing.assert_array_equal(x, y)
        _assert_same(a[4], b[4])
        ended += int(a[2][0] or a[3][0])
    assert ended == 3
    ours.close()
    theirs.close()


def test_done_env_returns_next_episodes_obs_and_final_obs_in_infos():
    n = 4
    envs = qgym.QuadlitVectorEnv("reach", n, params=SHORT, seed=2, physics_threads=1)
    obs, _ = envs.reset()
    rng = np.random.default_rng(1)
    for step in range(1, SHORT["max_steps"] + 1):
        prev = obs
        obs, reward, terminated, truncated, infos = envs.step(_actions(rng, n))
        if step < SHORT["max_steps"]:
            assert not truncated.any() and "final_obs" not in infos and infos["_reward_terms"].all()
            np.testing.assert_allclose(sum(infos["reward_terms"][k] for k in envs.task_spec.reward_terms),
                                       reward, atol=1e-5)
    assert truncated.all() and not terminated.any()
    assert infos["_final_obs"].all() and infos["_final_info"].all() and "reward_terms" not in infos
    final = np.stack(infos["final_obs"])
    # the finished episode goes on from the previous observation (the creature moved at most
    # a few decimetres); the new episode starts fresh: full stamina, standing on the floor
    assert np.abs(final[:, 3:5] - prev[:, 3:5]).max() < 0.1
    np.testing.assert_array_equal(obs[:, 6], 1.0)
    np.testing.assert_array_equal(obs[:, 5], -1.0)
    assert not np.allclose(final, obs)
    episode = infos["final_info"]["episode_metrics"]
    assert infos["final_info"]["_episode_metrics"].all()
    np.testing.assert_array_equal(episode["length"], SHORT["max_steps"])
    envs.close()


def test_seeding_is_reproducible():
    def rollout(envs, seed):
        rng = np.random.default_rng(7)
        out = [envs.reset(seed=seed)[0]]
        for _ in range(12):
            o, r, *_ = envs.step(_actions(rng, envs.num_envs))
            out += [o, r]
        return out

    a = qgym.QuadlitVectorEnv("reach", 3, params=SHORT, seed=5, physics_threads=1)
    b = qgym.QuadlitVectorEnv("reach", 3, params=SHORT, seed=5, physics_threads=2)
    first_a, first_b = a.reset()[0], b.reset()[0]  # the constructor's seed
    np.testing.assert_array_equal(first_a, first_b)
    np.testing.assert_array_equal(first_a, a.reset(seed=5)[0])
    for x, y in zip(rollout(a, 9), rollout(b, 9)):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(rollout(a, 9), rollout(a, 9)):  # reseeding replays
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.reset(seed=10)[0], a.reset(seed=9)[0])
    a.close()
    b.close()

    single = qgym.QuadlitEnv("reach", params=SHORT)
    o1, _ = single.reset(seed=4)
    o2, _ = single.reset(seed=4)
    np.testing.assert_array_equal(o1, o2)
    single.close()


def test_vector_env_gives_the_tasks_privileged_observation():
    from quadlit.tasks import make_task, task_params_from_dict

    params = {"max_steps": 7, "recovery_step_scale": 0.5, "recovery_step_ramp": 1000}  # (set_progress: test_rsl_rl)
    envs = qgym.QuadlitVectorEnv("balance", 3, params=params, seed=2, physics_threads=1)
    task = make_task("balance", 3, task_params_from_dict("balance", params), seed=2)
    envs.reset()
    task.reset(2)
    rng = np.random.default_rng(1)
    for k in range(10):  # an episode end included: both show the next episode's
        actions = _actions(rng, 3, 12)
        envs.set_progress(300 * k)
        task.set_progress(300 * k)
        reward = envs.step(actions)[1]
        result = task.step(actions)
        np.testing.assert_array_equal(envs.privileged(), result.privileged)
        np.testing.assert_array_equal(reward, result.reward)
    copy = envs.privileged()
    copy[:] = np.nan
    assert np.isfinite(envs.privileged()).all()  # a copy: the caller cannot change the task
    assert qgym.QuadlitVectorEnv("reach", 2, params=SHORT, physics_threads=1).privileged() is None
    envs.close()
    task.close()


def test_bad_arguments():
    with pytest.raises(ValueError, match="task must be one of"):
        qgym.QuadlitVectorEnv("swim", 2)
    with pytest.raises(ValueError, match="num_envs"):
        qgym.QuadlitVectorEnv("reach", 0, physics_threads=1)
    with pytest.raises(ValueError, match="goal_threshold"):
        qgym.QuadlitEnv("reach", params={"goal_threshold": -1.0})
    with pytest.raises(ValueError, match="render_mode"):
        qgym.QuadlitEnv("reach", render_mode="human")
    envs = qgym.QuadlitVectorEnv("reach", 2, physics_threads=1)
    envs.reset()
    with pytest.raises(ValueError, match="shape"):
        envs.step(np.zeros((3, 3), np.float32))
    envs.close()


def test_non_finite_actions_are_warned_about_once():
    venv = qgym.QuadlitVectorEnv("reach", 3, physics_threads=1)
    env = qgym.QuadlitEnv("reach")
    venv.reset(seed=0)
    env.reset(seed=0)
    bad = np.zeros((3, 3), np.float32)
    bad[1, 2] = np.nan
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _ in range(3):
            venv.step(bad)
            env.step(bad[1])
        venv.step(np.zeros((3, 3), np.float32))
    said = [str(w.message) for w in record if "stepped as zero" in str(w.message)]
    assert said == ["QuadlitVectorEnv: actions with NaN or infinite entries are stepped as zero (this warning is "
                    "shown once)", "QuadlitEnv: actions with NaN or infinite entries are stepped as zero (this "
                    "warning is shown once)"]
    venv.close()
    env.close()


def test_make_with_human_rendering_says_what_is_drawn_instead_of_asking_for_pygame():
    with pytest.raises(ValueError, match=r"got 'human' \(for a live window: quadlit play --task reach\)"):
        gym.make("quadlit/Reach-v0", render_mode="human")
    env = gym.make("quadlit/Reach-v0", render_mode="rgb_array_list")  # as Gymnasium made it before
    assert env.render_mode == "rgb_array_list"
    env.close()
