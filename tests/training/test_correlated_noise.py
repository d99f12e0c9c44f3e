"""Temporally correlated exploration noise (``model.noise_correlation``): each environment's
standard-normal draw follows a first-order autoregression, restarted at every episode."""

import math
import sys

import numpy as np
import pytest
import torch

from quadlit.models.entity_belief import EntityBelief
from quadlit.training.normalizer import RunningNorm
from quadlit.training.rollout import RolloutCollector


class ZeroMeanPolicy(EntityBelief):
    """An EntityBelief whose action mean is 0 and std 1: the pre-squash action is the noise."""

    def forward(self, obs, state, episode_start, need_state=True):
        mean, value, new_state = super().forward(obs, state, episode_start, need_state)
        return torch.zeros_like(mean), value, new_state


def _collector(num_envs: int, rollout_steps: int, max_steps: int, seed: int = 1) -> RolloutCollector:
    from quadlit.tasks.reach import ReachParams, ReachTask

    collector = RolloutCollector(ReachTask(num_envs, ReachParams(max_steps=max_steps), seed=seed), rollout_steps)
    collector.reset(seed)
    return collector


def _policy() -> ZeroMeanPolicy:
    torch.manual_seed(0)
    return ZeroMeanPolicy(7, 3, lstm_hidden=16, init_log_std=0.0)


def test_the_noise_is_the_autoregression_of_the_white_draws_restarted_at_each_episode():
    c = 0.8
    collector = _collector(6, 20, max_steps=7)
    r = collector.collect(_policy(), RunningNorm(7), torch.device("cpu"), torch.Generator().manual_seed(3),
                          noise_correlation=c)
    # a float64 reference from the same generator's draws, one (N, A) draw per step
    gen = torch.Generator().manual_seed(3)
    xi = np.stack([torch.randn((6, 3), generator=gen).double().numpy() for _ in range(20)])
    starts = r.episode_start.numpy().astype(bool)
    assert starts[0].all() and starts[1:].any()  # the first step and later episodes' first steps
    expected = np.empty_like(xi)
    for t in range(20):
        carried = c * expected[t - 1] + math.sqrt(1 - c * c) * xi[t] if t else xi[t]
        expected[t] = np.where(starts[t][:, None], xi[t], carried)
    np.testing.assert_allclose(r.raw_action.double().numpy(), expected, rtol=1e-5, atol=1e-6)
    # the log-probability is the per-step Gaussian's (std 1, mean 0) of the squashed action
    u = expected
    reference = (-0.5 * u ** 2 - 0.5 * math.log(2 * math.pi) - np.log(1 - np.tanh(u) ** 2)).sum(-1)
    np.testing.assert_allclose(r.log_prob.double().numpy(), reference, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("c", [0.0, 0.5, 0.9])
def test_every_step_stays_standard_normal_and_neighbours_correlate_by_c(c):
    collector = _collector(256, 50, max_steps=10_000)
    gen = torch.Generator().manual_seed(0)
    policy, norm = _policy(), RunningNorm(7)
    eps = torch.cat([collector.collect(policy, norm, torch.device("cpu"), gen, noise_correlation=c).raw_action
                     for _ in range(4)]).double()  # (200, 256, 3), one episode per environment
    assert abs(float(eps.std()) - 1.0) < 0.02
    lag1 = float((eps[1:] * eps[:-1]).mean() / eps.var())
    assert abs(lag1 - c) < 0.02, lag1
    lag10 = float((eps[10:] * eps[:-10]).mean() / eps.var())
    assert abs(lag10 - c ** 10) < 0.03, lag10  # an autoregression's correlation decays as c^k


def test_the_noise_carries_across_rollouts_and_checkpoints():
    policy, norm, cpu = _policy(), RunningNorm(7), torch.device("cpu")
    one = _collector(4, 12, max_steps=9)
    gen = torch.Generator().manual_seed(5)
    first = one.collect(policy, norm, cpu, gen, noise_correlation=0.9)
    saved, gen_state = one.state_dict(), gen.get_state()
    assert saved["noise"].shape == (4, 3)
    np.testing.assert_array_equal(saved["noise"], first.raw_action[-1].numpy())
    second = one.collect(policy, norm, cpu, gen, noise_correlation=0.9)
    # carried, not restarted: a step that starts no episode continues the last rollout's noise
    cont = ~second.episode_start[0].bool()
    assert cont.any()
    assert torch.corrcoef(torch.stack([second.raw_action[0][cont].flatten(),
                                       first.raw_action[-1][cont].flatten()]))[0, 1] > 0.6
    resumed = _collector(4, 12, max_steps=9, seed=99)
    resumed.load_state_dict(saved)
    again = resumed.collect(policy, norm, cpu, torch.Generator().manual_seed(0).set_state(gen_state),
                            noise_correlation=0.9)
    torch.testing.assert_close(again.raw_action, second.raw_action, rtol=0, atol=0)
    # a checkpoint of a run without correlated noise has no "noise" entry
    del saved["noise"]
    resumed.load_state_dict(saved)
    assert resumed.noise is None


def test_no_correlation_is_the_white_noise_path_bit_for_bit():
    policy, norm, cpu = _policy(), RunningNorm(7), torch.device("cpu")
    white = _collector(5, 15, max_steps=6).collect(policy, norm, cpu, torch.Generator().manual_seed(2))
    zero = _collector(5, 15, max_steps=6).collect(policy, norm, cpu, torch.Generator().manual_seed(2),
                                                  noise_correlation=0.0)
    torch.testing.assert_close(zero.raw_action, white.raw_action, rtol=0, atol=0)
    with pytest.raises(ValueError, match="noise_correlation"):
        _collector(5, 15, max_steps=6).collect(policy, norm, cpu, noise_correlation=1.0)


def test_a_run_with_correlated_noise_collects_and_trains_with_it(tmp_path, monkeypatch):
    from quadlit.cli import run_cli
    from tests.tiny import REPO, TINY

    monkeypatch.setattr(sys, "argv", ["quadlit"])
    cli = run_cli(["fit", "--config", str(REPO / "configs/reach.yaml"), *TINY, "--trainer.logger", "false",
                   "--model.noise_correlation", "0.9", "--trainer.default_root_dir", str(tmp_path)])
    metrics = cli.trainer.callback_metrics
    assert torch.isfinite(metrics["train/value_loss"]) and torch.isfinite(metrics["train/approx_kl"])
    collector = cli.datamodule.collector
    assert collector.noise is not None and collector.noise.shape == (8, 3)
    before = collector.noise.copy()
    r = cli.datamodule.collect()  # the data module collects with the module's correlation
    mean = cli.model.policy(r.policy_obs, (r.h0, r.c0), r.episode_start)[0].detach()
    eps = (r.raw_action - mean) / cli.model.policy.log_std.detach().exp()
    cont = ~r.episode_start[0].bool()
    # the first step continues the noise the run left: 0.9 x it plus a 0.44-sized fresh part
    residual = eps[0][cont] - 0.9 * torch.from_numpy(before)[cont]
    assert float(residual.abs().max()) < 0.44 * 5
    assert float((eps[0][cont] - torch.from_numpy(before)[cont]).square().mean()) < 0.5


def test_noise_switched_on_mid_run_starts_standard_normal_in_every_environment():
    policy, norm, cpu = _policy(), RunningNorm(7), torch.device("cpu")
    collector = _collector(6, 10, max_steps=50)
    gen = torch.Generator().manual_seed(7)
    collector.collect(policy, norm, cpu, gen)  # white noise: nothing to carry
    assert collector.noise is None
    expected_first = torch.randn((6, 3), generator=torch.Generator().manual_seed(0).set_state(gen.get_state()))
    r = collector.collect(policy, norm, cpu, gen, noise_correlation=0.9)
    assert not r.episode_start[0].any()  # mid-episode everywhere, yet a full draw, not 0.44 of one
    torch.testing.assert_close(r.raw_action[0], expected_first, rtol=0, atol=0)


def test_the_correlation_applies_from_its_env_step_on(tmp_path, monkeypatch):
    from quadlit.cli import run_cli
    from tests.tiny import REPO, TINY

    monkeypatch.setattr(sys, "argv", ["quadlit"])
    for start, carried in ((128, True), (10**6, False)):  # the tiny run has 256 env-steps
        cli = run_cli(["fit", "--config", str(REPO / "configs/reach.yaml"), *TINY, "--trainer.logger", "false",
                       "--model.noise_correlation", "0.9", "--model.noise_correlation_from", str(start),
                       "--trainer.default_root_dir", str(tmp_path / str(start))])
        assert (cli.datamodule.collector.noise is not None) is carried
        assert [cli.model.scheduled_noise_correlation(s) for s in (0, start - 1, start)] == [0.0, 0.0, 0.9]
