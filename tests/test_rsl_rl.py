"""The rsl_rl VecEnv adapter: the same transitions as QuadlitVectorEnv in rsl_rl's layout (the
critic group with the privileged observation, time-outs apart from failures, episode logs, the
training progress told to the task), and rsl_rl's OnPolicyRunner trains on it."""

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("rsl_rl")  # a test extra: `pip install -e '.[test]'` installs it

import torch  # noqa: E402

from quadlit.gym import QuadlitVectorEnv  # noqa: E402
from quadlit.rsl_rl import QuadlitRslRlVecEnv  # noqa: E402

# balance episodes of 20 steps with a push every 0.1-0.2 s and the recovery-step reward ramped over
# 10^6 env-steps: time-outs, failures and rewards that depend on the training progress, in 45 steps
SHORT = {"max_steps": 20, "push_interval_min": 0.1, "push_interval_max": 0.2, "recovery_step_scale": 0.5,
         "recovery_step_ramp": 10**6}
N = 8


def test_missing_rsl_rl_tells_how_to_install():
    code = ("import sys\nsys.modules['rsl_rl'] = None\n"
            "try:\n    import quadlit.rsl_rl\nexcept ImportError as e:\n    print(e)\nelse:\n    print('imported')\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert "pip install 'quadlit[rsl_rl]'" in out and len(out.strip().splitlines()) == 1, out


def test_adapter_steps_like_the_vector_env_in_rsl_rl_layout():
    env = QuadlitRslRlVecEnv("balance", N, params=SHORT, seed=7, physics_threads=1)
    ref = QuadlitVectorEnv("balance", N, params=SHORT, seed=7, physics_threads=1)
    untold = QuadlitVectorEnv("balance", N, params=SHORT, seed=7, physics_threads=1)  # never told the progress
    ref_obs, _ = ref.reset()
    untold.reset()
    obs = env.get_observations()
    assert env.num_envs == N and env.num_actions == 12 and env.max_episode_length == 20
    np.testing.assert_array_equal(obs["policy"].numpy(), ref_obs)
    np.testing.assert_array_equal(obs["critic"].numpy(), np.concatenate([ref_obs, ref.privileged()], axis=1))
    rng = np.random.default_rng(0)
    lengths = np.zeros(N, np.int64)
    failures = time_outs = ramp_mattered = 0
    for k in range(45):
        actions = rng.uniform(-1, 1, (N, 12)).astype(np.float32)
        obs, rewards, dones, extras = env.step(torch.from_numpy(actions))
        ref.set_progress(k * N)
        ref_obs, ref_rewards, term, trunc, info = ref.step(actions)
        ramp_mattered += int((untold.step(actions)[1] != ref_rewards).any())
        done = term | trunc
        np.testing.assert_array_equal(obs["policy"].numpy(), ref_obs)
        privileged = ref.privileged()
        assert privileged.shape == (N, ref.task_spec.privileged_dim)
        np.testing.assert_array_equal(obs["critic"].numpy()[:, ref_obs.shape[1]:], privileged)
        assert rewards.dtype == torch.float32
        np.testing.assert_array_equal(rewards.numpy(), ref_rewards.astype(np.float32))
        np.testing.assert_array_equal(dones.numpy(), done.astype(np.int64))
        np.testing.assert_array_equal(extras["time_outs"].numpy(), trunc & ~term)
        lengths = np.where(done, 0, lengths + 1)
        np.testing.assert_array_equal(env.episode_length_buf.numpy(), lengths)
        if done.any():
            for name in ref.task_spec.episode_metrics:
                np.testing.assert_array_equal(extras["log"][f"Episode/{name}"].numpy(),
                                              info["final_info"]["episode_metrics"][name][done])
        else:
            assert extras["log"] == {}
        failures += int(term.sum())
        time_outs += int((trunc & ~term).sum())
    assert env.env_steps == 45 * N
    assert failures > 0 and time_outs >= N  # both kinds of episode end were compared
    assert ramp_mattered > 0  # the progress told to the task changed rewards in these steps
    for e in (env, ref, untold):
        e.close()


def test_a_task_without_privileged_observation_gives_only_the_policy_group():
    env = QuadlitRslRlVecEnv("reach", 4, params={"max_steps": 5}, physics_threads=1)
    assert set(env.get_observations().keys()) == {"policy"}
    obs, _, _, _ = env.step(torch.zeros(4, 3))
    assert obs["policy"].shape == (4, env.task_spec.obs_dim)
    env.close()


def _train_cfg(hidden):
    model = {"class_name": "MLPModel", "hidden_dims": hidden, "activation": "elu", "obs_normalization": True}
    return {
        "num_steps_per_env": 8, "save_interval": 100, "obs_groups": {"actor": ["policy"], "critic": ["critic"]},
        "actor": {**model, "distribution_cfg": {"class_name": "GaussianDistribution", "init_std": 1.0}},
        "critic": model,
        "algorithm": {"class_name": "PPO", "num_learning_epochs": 2, "num_mini_batches": 2, "learning_rate": 1e-3,
                      "schedule": "adaptive", "desired_kl": 0.01},
    }


def test_on_policy_runner_learns_on_the_adapter_with_an_asymmetric_critic(tmp_path):
    from rsl_rl.runners import OnPolicyRunner
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    env = QuadlitRslRlVecEnv("balance", 16, params={**SHORT, "max_steps": 10}, physics_threads=1)
    runner = OnPolicyRunner(env, _train_cfg([32, 32]), log_dir=str(tmp_path), device="cpu")
    assert runner.alg.actor.obs_dim == 37 and runner.alg.critic.obs_dim == 37 + 9  # the critic reads the privileged
    before = [p.detach().clone() for p in runner.alg.actor.parameters()]
    with pytest.raises(ValueError, match="episode clocks"):
        runner.learn(1, init_at_random_ep_len=True)
    runner.learn(3)
    assert env.env_steps == 3 * 8 * 16
    assert any(not torch.equal(a, b) for a, b in zip(before, runner.alg.actor.parameters()))
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"Episode/return", "Episode/survived", "Train/mean_episode_length"} <= set(tags)  # rsl_rl logged the episodes
    assert 0 < max(e.value for e in events.Scalars("Episode/length")) <= 10  # the task's episodes of at most 10 steps
    env.close()
