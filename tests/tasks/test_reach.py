"""The reach task: the fused kernel against the slow reference, edge cases, sharding, state."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from quadlit.envs.pool import ShardPool
from quadlit.tasks.reach import ReachParams, ReachTask
from quadlit.tasks.reach.reference import ReachReference, splitmix64_uniform

TOL = 1e-6

# A cramped, short, low-stamina arena: walls, exhaustion, goal respawns and time-outs all
# happen many times within a few hundred steps.
CRAMPED = ReachParams(
    box_half_extent=2.0,
    box_height=2.0,
    goal_height=1.5,
    goal_threshold=0.9,
    proximity_threshold=1.5,
    max_stamina=3.0,
    walk_stamina_cost=20.0,
    jump_stamina_cost=2.0,
    stamina_regen=10.0,
    max_steps=37,
    accel_z=60.0,
)


def _random_state(task: ReachTask, rng: np.random.Generator) -> dict:
    """A valid but arbitrary state: some creatures on the floor, some in the air, stamina at
    zero, at the cap or in between, episodes at random points."""
    p, n = task.params, task.num_envs
    s = task.state_dict()
    h = p.box_half_extent
    s["pos"][:, :2] = rng.uniform(-h, h, (n, 2))
    in_air = rng.random(n) < 0.5
    height = p.ground_level + rng.uniform(0, p.box_height, n)
    s["pos"][:, 2] = np.where(in_air, height, p.ground_level)
    s["vel"][:] = rng.uniform(-4, 4, (n, 3))
    s["vel"][~in_air, 2] = 0.0
    s["stamina"][:] = rng.choice([0.0, p.max_stamina, 0.5 * p.max_stamina, 1e-3], n)
    s["goal"][:, :2] = rng.uniform(-h, h, (n, 2))
    s["goal"][:, 2] = p.ground_level + rng.uniform(0, p.goal_height, n)
    s["prev_dist"][:] = np.linalg.norm(s["goal"] - s["pos"], axis=1)
    s["step_count"][:] = rng.integers(0, p.max_steps, n)
    s["ep_return"][:] = rng.normal(0, 5, n)
    s["goals"][:] = rng.integers(0, 4, n)
    return s


def _random_actions(rng: np.random.Generator, n: int) -> np.ndarray:
    a = rng.uniform(-1.5, 1.5, (n, 3))
    a[rng.random((n, 3)) < 0.1] = 0.0  # idle components
    a[rng.random(n) < 0.1] = 0.02  # fully idle steps
    a[rng.random((n, 3)) < 0.01] = np.nan  # NaN counts as 0
    return a.astype(np.float32)


@pytest.mark.parametrize("params", [ReachParams(), CRAMPED], ids=["default", "cramped"])
def test_kernel_matches_reference(params):
    n, steps = 40, 160
    rng = np.random.default_rng(7)
    task = ReachTask(n, params, seed=3, pool=ShardPool(2))
    task.load_state_dict(_random_state(task, rng))
    ref = ReachReference(params, task.state_dict())
    seen = dict(goals=0, walls=0, exhausted=0, truncated=0, air_jumps=0)
    for _ in range(steps):
        actions = _random_actions(rng, n)
        before = task.state_dict()
        res = task.step(actions)
        want = ref.step(actions)

        for got, key in ((res.obs, "obs"), (res.final_obs, "final_obs"), (res.reward, "reward")):
            np.testing.assert_allclose(got, want[key].astype(np.float32), rtol=TOL, atol=TOL)
        np.testing.assert_allclose(res.reward_terms, want["terms"].astype(np.float32), rtol=TOL, atol=TOL)
        np.testing.assert_array_equal(res.truncated, want["truncated"])
        assert not res.terminated.any() and res.num_nonfinite == 0
        done = res.done
        got_return, want_return = res.episode["return"][done], want["episode_return"][done]
        np.testing.assert_allclose(got_return, want_return, rtol=TOL, atol=1e-4)  # float32 sums
        np.testing.assert_array_equal(res.episode["length"][done], want["episode_length"][done])
        np.testing.assert_array_equal(res.episode["goals"][done], want["episode_goals"][done])
        state = task.state_dict()
        for name, value in ref.state.items():
            if name == "rng_state":
                np.testing.assert_array_equal(state[name], value)  # same draws, same order
            else:
                np.testing.assert_allclose(state[name], value, rtol=TOL, atol=TOL, err_msg=name)

        terms = dict(zip(task.spec.reward_terms, res.reward_terms.T))
        seen["goals"] += int((terms["goal"] > 0).sum())
        seen["walls"] += int((terms["wall"] < 0).sum())
        seen["exhausted"] += int((terms["stamina"] < 0).sum())
        seen["truncated"] += int(res.truncated.sum())
        in_air = before["pos"][:, 2] > params.ground_level
        seen["air_jumps"] += int((in_air & (actions[:, 2] > 0.5)).sum())
    # The comparison covered every rule it claims to.
    assert all(count > 0 for count in seen.values()), seen
    task.close()


def _one_env(params=ReachParams(), **state) -> ReachTask:
    """A single env at a chosen state (goal far away unless given)."""
    task = ReachTask(1, params, seed=0)
    s = task.state_dict()
    s["goal"][0] = (params.box_half_extent, params.box_half_extent, params.ground_level)
    s["pos"][0] = (0.0, 0.0, params.ground_level)
    for name, value in state.items():
        s[name][0] = value
    s["prev_dist"][0] = np.linalg.norm(s["goal"][0] - s["pos"][0])
    task.load_state_dict(s)
    return task


def test_zero_stamina_cannot_accelerate():
    p = ReachParams()
    task = _one_env(p, stamina=0.0)
    res = task.step(np.array([[1.0, 1.0, 1.0]], np.float32))
    s = task.state_dict()
    np.testing.assert_array_equal(s["vel"][0], 0.0)
    np.testing.assert_array_equal(s["pos"][0], (0.0, 0.0, p.ground_level))
    assert s["stamina"][0] == 0.0
    terms = dict(zip(task.spec.reward_terms, res.reward_terms[0]))
    assert terms["stamina"] == pytest.approx(-p.stamina_penalty)
    assert terms["idle"] == 0.0
    assert res.obs[0, 6] == -1.0


def test_idle_regenerates_up_to_max_and_pays_idle_bonus():
    p = ReachParams()
    task = _one_env(p, stamina=p.max_stamina - 0.25 * p.stamina_regen * p.dt)
    res = task.step(np.zeros((1, 3), np.float32))
    assert task.state_dict()["stamina"][0] == p.max_stamina  # capped, not max + 0.75 * regen
    terms = dict(zip(task.spec.reward_terms, res.reward_terms[0]))
    assert terms["idle"] == pytest.approx(p.idle_bonus)
    assert res.obs[0, 6] == 1.0


def test_walking_and_jumping_cost_what_the_params_say():
    p = ReachParams()
    task = _one_env(p)
    task.step(np.array([[1.0, 0.0, 0.0]], np.float32))
    spent_walk = p.max_stamina - task.state_dict()["stamina"][0]
    assert spent_walk == pytest.approx(p.walk_stamina_cost * p.dt)
    task = _one_env(p)
    task.step(np.array([[0.0, 0.0, 0.5]], np.float32))
    s = task.state_dict()
    assert p.max_stamina - s["stamina"][0] == pytest.approx(0.5 * p.jump_stamina_cost)
    assert s["vel"][0, 2] > 0 and s["pos"][0, 2] > p.ground_level


def test_no_jump_from_the_air_and_gravity_capped_at_terminal_velocity():
    p = ReachParams(gravity=400.0, terminal_fall_velocity=3.0, box_height=4.0)
    task = _one_env(p, pos=(0.0, 0.0, 3.9))
    res = task.step(np.array([[0.0, 0.0, 1.0]], np.float32))
    s = task.state_dict()
    assert s["vel"][0, 2] == -p.terminal_fall_velocity
    assert s["stamina"][0] == p.max_stamina  # the jump did nothing, so the step was idle
    terms = dict(zip(task.spec.reward_terms, res.reward_terms[0]))
    assert terms["idle"] == pytest.approx(p.idle_bonus)
    for _ in range(30):  # falls onto the floor at terminal speed and stops there
        task.step(np.zeros((1, 3), np.float32))
    s = task.state_dict()
    assert s["pos"][0, 2] == p.ground_level and s["vel"][0, 2] == 0.0


def test_wall_clamps_position_and_penalises_penetration():
    p = ReachParams()
    h = p.box_half_extent
    task = _one_env(p, pos=(h - 0.01, 0.0, p.ground_level), vel=(p.max_velocity, 0.0, 0.0))
    res = task.step(np.array([[1.0, 0.0, 0.0]], np.float32))
    s = task.state_dict()
    assert s["pos"][0, 0] == h and s["vel"][0, 0] == 0.0
    wall = dict(zip(task.spec.reward_terms, res.reward_terms[0]))["wall"]
    assert wall == pytest.approx(-p.wall_penalty_scale * _expected_overshoot(p, h - 0.01), rel=1e-5)
    assert wall < 0
    assert res.obs[0, 3] == 1.0


def _expected_overshoot(p: ReachParams, x0: float) -> float:
    """How far past the wall at +box_half_extent a creature at x0 moving at full speed ends."""
    v = p.max_velocity + p.max_accel * p.dt
    v *= (1 - p.ground_friction * p.dt) * (1 - p.momentum_damping * p.dt)
    v = min(v, p.max_velocity)
    return x0 + v * p.dt - p.box_half_extent


def test_goal_reached_pays_bonus_and_respawns_goal_from_the_env_stream():
    p = ReachParams()
    task = _one_env(p, goal=(0.3, 0.0, p.ground_level))
    stream = int(task.state_dict()["rng_state"][0])
    res = task.step(np.zeros((1, 3), np.float32))
    terms = dict(zip(task.spec.reward_terms, res.reward_terms[0]))
    assert terms["goal"] == p.goal_bonus
    draws = []
    for _ in range(3):
        stream, u = splitmix64_uniform(stream)
        draws.append(u)
    h = p.box_half_extent
    gx, gy, gz = -h + 2 * h * draws[0], -h + 2 * h * draws[1], p.ground_level + p.goal_height * draws[2]
    expected = (gx, gy, gz)
    s = task.state_dict()
    np.testing.assert_allclose(s["goal"][0], expected, rtol=0, atol=1e-12)
    assert s["goals"][0] == 1 and int(s["rng_state"][0]) == stream
    assert s["prev_dist"][0] == pytest.approx(np.linalg.norm(s["goal"][0] - s["pos"][0]))


def test_time_out_truncates_reports_episode_and_auto_resets():
    p = ReachParams(max_steps=5)
    task = ReachTask(6, p, seed=11)
    actions = np.full((6, 3), 0.7, np.float32)
    total = np.zeros(6)
    for _ in range(4):
        res = task.step(actions)
        total += res.reward
        assert not res.done.any()
    last_obs = res.obs.copy()
    res = task.step(actions)
    total += res.reward
    assert res.truncated.all() and not res.terminated.any()
    np.testing.assert_array_equal(res.episode["length"], 5.0)
    np.testing.assert_allclose(res.episode["return"], total, rtol=1e-5)
    np.testing.assert_array_equal(res.episode["goals"], 0.0)
    assert not np.allclose(res.final_obs, res.obs)  # final_obs is the old episode's end
    assert not np.allclose(res.final_obs, last_obs)
    np.testing.assert_array_equal(res.obs[:, 6], 1.0)  # fresh creature: full stamina
    np.testing.assert_array_equal(res.obs[:, 5], -1.0)  # on the floor
    s = task.state_dict()
    np.testing.assert_array_equal(s["step_count"], 0)
    np.testing.assert_array_equal(s["vel"], 0.0)
    assert not task.step(actions).done.any()


def test_observations_stay_in_unit_box():
    task = ReachTask(64, CRAMPED, seed=5)
    rng = np.random.default_rng(1)
    for k in range(300):
        actions = np.sign(rng.normal(size=(64, 3))).astype(np.float32) * (3.0 if k % 2 else 1.0)
        res = task.step(actions)
        for o in (res.obs, res.final_obs):
            assert np.isfinite(o).all() and o.min() >= -1.0 and o.max() <= 1.0
        assert np.isfinite(res.reward).all()


def _rollout(threads: int, seed: int = 2, n: int = 101, steps: int = 120) -> list[np.ndarray]:
    pool = ShardPool(threads)
    task = ReachTask(n, CRAMPED, seed=seed, pool=pool)
    rng = np.random.default_rng(0)
    out = []
    for _ in range(steps):
        res = task.step(_random_actions(rng, n))
        out += [res.obs.copy(), res.reward.copy(), res.final_obs.copy(), res.truncated.copy()]
    out += list(task.state_dict()[k] for k in ("pos", "vel", "goal", "rng_state"))
    pool.close()
    return out


def test_identical_for_any_thread_count_and_run_to_run():
    one = _rollout(1)
    for other in (_rollout(2), _rollout(3), _rollout(1)):
        for a, b in zip(one, other):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(one[0], _rollout(1, seed=3)[0])


def test_state_dict_round_trip_continues_identically():
    rng = np.random.default_rng(4)
    actions = [_random_actions(rng, 17) for _ in range(60)]
    task = ReachTask(17, CRAMPED, seed=9)
    for a in actions[:20]:
        last_obs = task.step(a).obs.copy()
    saved = task.state_dict()
    saved_copy = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in saved.items()}
    expected = [task.step(a).obs.copy() for a in actions[20:]]
    for k, v in saved_copy.items():  # state_dict returned copies, untouched by stepping
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(saved[k], v)
    restored = ReachTask(17, CRAMPED, seed=123)
    restored.load_state_dict(saved)
    np.testing.assert_array_equal(restored.observations, last_obs)
    for a, want in zip(actions[20:], expected):
        np.testing.assert_array_equal(restored.step(a).obs, want)
    with pytest.raises(ValueError, match="num_envs"):
        ReachTask(3, CRAMPED).load_state_dict(saved)


def test_reset_with_seed_is_reproducible_and_spec_is_complete():
    task = ReachTask(8, seed=1)
    first = task.reset(seed=42).copy()
    task.step(np.ones((8, 3), np.float32))
    np.testing.assert_array_equal(task.reset(seed=42), first)
    spec = task.spec
    assert (spec.name, spec.obs_dim, spec.action_dim) == ("reach", 7, 3)
    assert spec.reward_terms == ("progress", "proximity", "goal", "wall", "stamina", "idle")
    assert spec.episode_metrics == ("return", "length", "goals")
    assert spec.max_episode_steps == 1000


def test_reward_is_the_sum_of_its_terms():
    task = ReachTask(32, CRAMPED, seed=0)
    rng = np.random.default_rng(3)
    for _ in range(50):
        res = task.step(_random_actions(rng, 32))
        np.testing.assert_allclose(res.reward, res.reward_terms.sum(axis=1), rtol=1e-5, atol=1e-5)


def test_creature_view_is_read_only_and_picks_lstm_row():
    task = ReachTask(4, seed=0)
    task.step(np.array([[1.0, 1.0, 0.0]] * 4, np.float32))
    h = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3)
    c = -h
    cr = task.creature(2, lstm_state=(h, c))
    assert cr.id == 2
    np.testing.assert_array_equal(cr.lstm_state[0], h[:, 2])
    np.testing.assert_array_equal(cr.lstm_state[1], c[:, 2])
    assert cr.yaw == pytest.approx(np.pi / 4)
    np.testing.assert_allclose(cr.orientation, (np.cos(np.pi / 8), 0, 0, np.sin(np.pi / 8)))
    for arr in (cr.position, cr.velocity, cr.orientation, cr.goal, *cr.lstm_state):
        with pytest.raises(ValueError):
            arr[0] = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        cr.stamina = 0.0
    assert task.creature(0).lstm_state is None
    assert task.creature(1, lstm_state=(h[0], c[0])).lstm_state[0].tolist() == h[0, 1].tolist()
    with pytest.raises(IndexError):
        task.creature(4)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="num_envs"):
        ReachTask(0)
    task = ReachTask(2)
    with pytest.raises(ValueError, match="shape"):
        task.step(np.zeros((3, 3), np.float32))
    res = task.step(np.zeros((2, 3), np.float64))  # other dtypes are converted
    assert res.obs.dtype == np.float32


@pytest.mark.parametrize(
    "field,value",
    [
        ("accel_xy", 0.0), ("accel_z", -1.0), ("max_accel", -2.0), ("max_velocity", 0.0),
        ("momentum_damping", -0.1), ("gravity", float("nan")), ("terminal_fall_velocity", 0.0),
        ("ground_level", float("inf")), ("ground_friction", -1.0), ("air_friction", -1.0),
        ("air_drag", -1.0), ("goal_threshold", 0.0), ("proximity_threshold", -1.0),
        ("distance_reward_scale", -1.0), ("proximity_bonus_scale", -1.0), ("goal_bonus", -1.0),
        ("wall_penalty_scale", -1.0), ("stamina_penalty", -1.0), ("walk_stamina_cost", -1.0),
        ("jump_stamina_cost", -1.0), ("stamina_regen", -1.0), ("idle_bonus", -1.0),
        ("idle_threshold", 1.5), ("max_stamina", 0.0), ("box_half_extent", 0.0),
        ("box_height", -1.0), ("goal_height", 100.0), ("max_steps", 0), ("max_steps", 2.5),
        ("dt", 0.0), ("dt", "0.05"),
    ],
)  # fmt: skip
def test_bad_params_raise_value_error_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"^reach\.{field} must be .*, got "):
        ReachParams(**{field: value})


def test_every_param_is_documented_and_checked():
    doc = ReachParams.__doc__
    for f in dataclasses.fields(ReachParams):
        assert f"        {f.name}: " in doc, f.name


def test_infinite_actions_count_as_zero_like_nan():
    """±inf action components are stepped as zero (as NaN is), not clipped to ±1, in the kernel
    and in the reference."""
    broken = np.array([[np.inf, -np.inf, np.inf], [-np.inf, np.nan, 0.5]], np.float32)
    zeroed = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.5]], np.float32)
    tasks = [ReachTask(2, ReachParams(), seed=4, pool=ShardPool(1)) for _ in range(2)]
    ref = ReachReference(ReachParams(), tasks[0].state_dict())
    for _ in range(3):
        got, want = tasks[0].step(broken), tasks[1].step(zeroed)
        np.testing.assert_array_equal(got.obs, want.obs)
        np.testing.assert_array_equal(got.reward, want.reward)
        np.testing.assert_allclose(ref.step(broken)["obs"].astype(np.float32), want.obs, atol=1e-5)
