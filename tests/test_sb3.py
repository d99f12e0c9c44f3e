"""The Stable-Baselines3 VecEnv adapter: same transitions as QuadlitVectorEnv in SB3's layout,
and SB3's PPO trains on it."""

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")  # a test extra: `pip install -e '.[test]'` installs it

from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.vec_env import VecMonitor  # noqa: E402

from quadlit.gym import QuadlitVectorEnv  # noqa: E402
from quadlit.sb3 import QuadlitSB3VecEnv  # noqa: E402

SHORT = {"max_steps": 20}  # reach episodes of 20 steps: several episode ends in a short test


def test_adapter_steps_like_the_vector_env_in_sb3_layout():
    env = QuadlitSB3VecEnv("reach", 8, params=SHORT, physics_threads=1)
    ref = QuadlitVectorEnv("reach", 8, params=SHORT, physics_threads=1)
    env.seed(7)
    obs = env.reset()
    ref_obs, _ = ref.reset(seed=7)
    np.testing.assert_array_equal(obs, ref_obs)
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(45):
        actions = rng.uniform(-1, 1, (8, 3)).astype(np.float32)
        env.step_async(actions)
        obs, rewards, dones, infos = env.step_wait()
        ref_obs, ref_rewards, term, trunc, ref_info = ref.step(actions)
        np.testing.assert_array_equal(obs, ref_obs)
        np.testing.assert_allclose(rewards, ref_rewards.astype(np.float32))
        np.testing.assert_array_equal(dones, term | trunc)
        for i in range(8):
            if dones[i]:
                ends += 1
                np.testing.assert_array_equal(infos[i]["terminal_observation"], ref_info["final_obs"][i])
                assert infos[i]["TimeLimit.truncated"] == bool(trunc[i] and not term[i])
                assert set(infos[i]["episode_metrics"]) == set(ref.task_spec.episode_metrics)
                metrics = infos[i]["episode_metrics"]  # SB3 Monitor's fields, which PPO logs
                assert infos[i]["episode"]["r"] == metrics["return"] and infos[i]["episode"]["l"] == metrics["length"]
            else:
                assert "terminal_observation" not in infos[i]
    assert ends >= 8  # every environment finished at least one 20-step episode
    assert env.get_attr("render_mode") == [None] * 8
    env.close()
    ref.close()


def test_sb3_ppo_trains_on_the_adapter():
    env = VecMonitor(QuadlitSB3VecEnv("reach", 16, params=SHORT, physics_threads=1))
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=128, n_epochs=2, seed=0, device="cpu")
    model.learn(total_timesteps=2048)
    assert model.num_timesteps >= 2048
    lengths = [ep["l"] for ep in model.ep_info_buffer]
    assert lengths and max(lengths) <= 20  # SB3 saw the episodes end where quadlit ended them
    env.close()


def test_sb3_ppo_logs_episode_returns_without_a_vec_monitor():
    env = QuadlitSB3VecEnv("reach", 4, params=SHORT, physics_threads=1)  # as the README writes it
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=128)
    assert len(model.ep_info_buffer) >= 4 and all(ep["l"] <= 20 for ep in model.ep_info_buffer)
    env.close()


def test_make_vec_env_works_without_a_display(monkeypatch):
    # SB3's make_vec_env asks each environment for render_mode="rgb_array" first (the way
    # `quadlit bench versus-sb3` builds its environments); without an X display that must not fail
    import quadlit.gym  # noqa: F401  (registers the environments)
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv

    from quadlit.render.display import clear_display_cache

    monkeypatch.delenv("DISPLAY", raising=False)
    clear_display_cache()
    try:
        env = make_vec_env("quadlit/Reach-v0", n_envs=2, seed=0, vec_env_cls=DummyVecEnv,
                           env_kwargs={"params": SHORT})
        obs = env.reset()
        assert obs.shape == (2, env.observation_space.shape[0])
        obs, rewards, dones, _ = env.step(np.zeros((2, 3), np.float32))
        assert np.isfinite(rewards).all() and obs.shape[0] == 2
        env.close()
    finally:
        monkeypatch.undo()
        clear_display_cache()
