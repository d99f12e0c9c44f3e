import numpy as np
import torch

from quadlit.training.normalizer import RunningNorm
from quadlit.training.rollout import RolloutCollector, evaluate_policy
from tests.training.fake_task import CountingPolicy, CountingTask


def _collect(n_envs=4, steps=5, rollouts=2):
    task = CountingTask(n_envs)
    collector = RolloutCollector(task, steps)
    collector.reset(0)
    policy, norm = CountingPolicy(), RunningNorm(3, enabled=False)
    return [collector.collect(policy, norm, torch.device("cpu")) for _ in range(rollouts)], collector


def test_rollout_buffers_follow_the_episodes():
    (r1, r2), _ = _collect()
    T, N = 5, 4
    assert r1.obs.shape == (T, N, 3) and r1.reward.shape == (T, N) and r1.h0.shape == (N, 2)
    # env 0 has 3-step episodes ending in failure: steps 0,1,2 | 3,4
    assert r1.obs[:, 0, 1].tolist() == [0, 1, 2, 0, 1]
    assert r1.episode_start[:, 0].tolist() == [1, 0, 0, 1, 0]
    assert r1.terminated[:, 0].tolist() == [0, 0, 1, 0, 0]
    assert r1.truncated[:, 0].sum() == 0
    assert r1.reward[:, 0].tolist() == [1, 2, 3, 1, 2]
    # next_obs is the final observation (step 3), not the reset one, where the episode ended
    assert r1.next_obs[2, 0, 1] == 3 and r1.next_obs[1, 0, 1] == 2
    # env 1 has 4-step episodes ending in time-out at t=3; bootstrap value = V(final obs):
    # the policy's counter continues from 4 (steps consumed) to 5
    assert r1.truncated[:, 1].tolist() == [0, 0, 0, 1, 0]
    assert r1.truncation_value[3, 1] == 5.0
    assert r1.truncation_value[:, 0].abs().sum() == 0  # never for failures
    # values are the policy's counter at collection time
    assert r1.value[:, 1].tolist() == [1, 2, 3, 4, 1]
    # last_value continues the sequence without a reset for env 1 (started at t=4)
    assert r1.last_value[1] == 2.0
    # episodes that ended: env 0 (return 1+2+3), env 1 (1+2+3+4), env 2 (1+...+5); env 3 runs on
    assert sorted(r1.episodes["return"].tolist()) == [6.0, 10.0, 15.0]
    assert sorted(r1.episodes["length"].tolist()) == [3.0, 4.0, 5.0]


def test_lstm_state_persists_across_rollouts_and_resets_at_episode_ends():
    (r1, r2), collector = _collect()
    # env 3 (6-step episodes) is mid-episode at the boundary: its counter carries over
    assert r1.h0[3, 0] == 0.0
    assert r2.h0[3, 0] == 5.0
    assert r2.value[0, 3] == 6.0
    # env 0 restarted at t=3 of r1 -> counter 2 at the end of r1
    assert r2.h0[0, 0] == 2.0
    # the second rollout continues the first one's observations
    assert r2.obs[0, 3, 1] == 5.0


def test_collector_state_dict_resumes_exactly():
    (r1,), collector = _collect(rollouts=1)
    saved = collector.state_dict()
    a = collector.collect(CountingPolicy(), RunningNorm(3, enabled=False), torch.device("cpu"))
    task2 = CountingTask(4)
    other = RolloutCollector(task2, 5)
    other.load_state_dict(saved)
    b = other.collect(CountingPolicy(), RunningNorm(3, enabled=False), torch.device("cpu"))
    for name in ("obs", "reward", "value", "terminated", "truncated", "episode_start", "h0"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


def test_evaluate_policy_records_each_envs_first_episode():
    task = CountingTask(4)
    out = evaluate_policy(CountingPolicy(), RunningNorm(3, enabled=False), task, seed=0, device=torch.device("cpu"))
    assert out["length"].tolist() == [3, 4, 5, 6]
    assert out["return"].tolist() == [6, 10, 15, 21]
    assert np.all(np.concatenate(task.actions_seen) == 0)


def test_evaluate_policy_runs_a_trainable_policy_without_building_a_graph():
    """A policy whose parameters require gradients (the trained one, not its average) is
    evaluated without autograd: nothing is recorded, and the actions reach the task."""
    from quadlit.models.entity_belief import EntityBelief
    from quadlit.tasks.reach import ReachParams, ReachTask

    seen_grad_mode = []

    class Spy(EntityBelief):
        def act(self, *args, **kwargs):
            seen_grad_mode.append(torch.is_grad_enabled())
            return super().act(*args, **kwargs)

    torch.manual_seed(0)
    policy = Spy(7, 3, lstm_hidden=16)
    assert all(p.requires_grad for p in policy.parameters())
    out = evaluate_policy(policy, RunningNorm(7), ReachTask(3, ReachParams(max_steps=5), seed=0), seed=0,
                          device=torch.device("cpu"))
    assert out["length"].tolist() == [5.0, 5.0, 5.0] and seen_grad_mode and not any(seen_grad_mode)


def test_evaluate_policy_reports_each_first_episode_end_once_and_samples_from_its_generator():
    from quadlit.models.baselines import RandomPolicy

    task = CountingTask(4)
    ends = []
    evaluate_policy(CountingPolicy(), RunningNorm(3, enabled=False), task, seed=0, device=torch.device("cpu"),
                    on_episode_end=lambda newly, result: ends.append((np.flatnonzero(newly).tolist(),
                                                                      result.final_obs[newly, 1].tolist())))
    # env k's first episode lasts 3 + k steps: one call per step in which one ended, its final counter
    assert ends == [([0], [3.0]), ([1], [4.0]), ([2], [5.0]), ([3], [6.0])]

    def actions(seed):
        generator = torch.Generator()
        generator.manual_seed(seed)
        task = CountingTask(4)
        evaluate_policy(RandomPolicy(3, seed=99), RunningNorm(3, enabled=False), task, seed=0,
                        device=torch.device("cpu"), deterministic=False, generator=generator)
        return np.concatenate(task.actions_seen)

    assert np.array_equal(actions(5), actions(5)) and not np.array_equal(actions(5), actions(6))

def test_ppo_re_evaluation_of_a_rollout_reproduces_its_log_probs():
    """The update re-evaluates the normalised observations the policy acted on, from the saved
    LSTM states with the saved episode starts: before any gradient step the probability ratio
    is exactly 1 (up to float32 round-off), even with non-trivial normaliser statistics and
    episode resets inside the rollout."""
    from quadlit.models.entity_belief import EntityBelief
    from quadlit.tasks.reach import ReachParams, ReachTask

    torch.manual_seed(0)
    task = ReachTask(6, ReachParams(max_steps=7), seed=1)
    collector = RolloutCollector(task, 16)
    collector.reset(1)
    policy = EntityBelief(7, 3, lstm_hidden=16)
    norm = RunningNorm(7)
    norm.update(torch.randn(100, 7) * 3 + 1)
    gen = torch.Generator().manual_seed(0)
    collector.collect(policy, norm, torch.device("cpu"), gen)  # carry LSTM state into the next rollout
    r = collector.collect(policy, norm, torch.device("cpu"), gen)
    assert r.episode_start[1:].sum() > 0 and r.h0.abs().sum() > 0
    norm.update(r.obs)  # the trainer updates the statistics after the PPO update; this must not matter
    with torch.no_grad():
        log_prob, _, value = policy.evaluate(r.policy_obs, r.raw_action, (r.h0, r.c0), r.episode_start)
    assert torch.allclose(log_prob, r.log_prob, atol=1e-4)
    assert torch.allclose(value, r.value, atol=1e-5)


class _NanPolicy(CountingPolicy):
    """CountingPolicy whose action is NaN for env 1 at every step and +inf for env 2 at step 0."""

    def act(self, obs, state, episode_start, deterministic=False, generator=None):
        action, raw, logp, value, state = super().act(obs, state, episode_start, deterministic, generator)
        if obs.shape[0] < 4:  # the value of a final observation: not a step
            return action, raw, logp, value, state
        action[1, 0] = float("nan")
        if obs[2, 1] == 0:
            action[2, 1] = float("inf")
        return action, raw, logp, value, state


def test_non_finite_actions_are_counted_and_warned_about_once():
    import warnings

    task = CountingTask(4)
    collector = RolloutCollector(task, 5)
    collector.reset(0)
    norm = RunningNorm(3, enabled=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rollouts = [collector.collect(_NanPolicy(), norm, torch.device("cpu")) for _ in range(2)]
    # env 1 every step (5), env 2 at its first step (its episodes last 5 steps: once per rollout)
    assert [r.num_nonfinite_actions for r in rollouts] == [6, 6]
    assert collector.collect(CountingPolicy(), norm, torch.device("cpu")).num_nonfinite_actions == 0
    messages = [str(w.message) for w in caught if "non-finite actions" in str(w.message)]
    assert len(messages) == 1 and "6 environment-steps" in messages[0]


class _StillModel(torch.nn.Module):
    """A world model that predicts nothing changes: its surprise is the observation's change."""

    def predict(self, obs, action):
        return obs, None, None


def test_the_critic_reads_the_world_models_surprise():
    from quadlit.training.critic import SeparateCritic

    class SurpriseValue(SeparateCritic):  # value = the surprise in the step counter's slot
        def forward(self, inputs):
            return inputs[..., 3 + 1]

    def collector_and_critic():
        collector = RolloutCollector(CountingTask(4), 5)
        collector.reset(0)
        return collector, SurpriseValue(3, privileged_dim=3, normalize=False)

    norm = RunningNorm(3, enabled=False)
    collector, critic = collector_and_critic()
    r1 = collector.collect(CountingPolicy(), norm, torch.device("cpu"), critic=critic, world_model=_StillModel())
    saved = collector.state_dict()
    r2 = collector.collect(CountingPolicy(), norm, torch.device("cpu"), critic=critic, world_model=_StillModel())
    # the step counter moves by 1 a step: surprise [0, 1, 0], except at an episode's first step
    # (and the very first, where nothing was predicted)
    for r, first in ((r1, True), (r2, False)):
        surprise = r.critic_raw[..., 3:]
        expected = torch.tensor([0.0, 1.0, 0.0]).expand_as(surprise) * (1 - r.episode_start)[..., None]
        if first:
            expected[0] = 0.0
        assert torch.equal(surprise, expected)
        assert torch.equal(r.critic_raw[..., :3], r.obs)
        assert torch.equal(r.value, expected[..., 1])
    # a time-out's bootstrap value reads the surprise of its final transition
    assert r1.truncated[3, 1] == 1 and r1.truncation_value[3, 1] == 1.0
    # the surprise carries over rollouts and checkpoints
    other, critic2 = collector_and_critic()
    other.load_state_dict(saved)
    r2b = other.collect(CountingPolicy(), norm, torch.device("cpu"), critic=critic2, world_model=_StillModel())
    assert torch.equal(r2b.critic_raw, r2.critic_raw) and torch.equal(r2b.last_value, r2.last_value)
