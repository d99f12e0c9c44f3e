"""Quieter environments (``model.quiet_envs``): a share of the environments draws its actions
with a fraction of the policy's noise, and the PPO update scores them with that noise."""

import math

import numpy as np
import pytest
import torch

from quadlit.models.entity_belief import EntityBelief
from quadlit.training.module import _full_noise_kl
from quadlit.training.normalizer import RunningNorm
from quadlit.training.rollout import RolloutCollector, noise_offsets

OBS, ACT, HID = 7, 3, 16


def test_noise_offsets_quiet_the_first_share_of_the_environments():
    offsets = noise_offsets(8, 0.25, 0.25, torch.device("cpu"))
    assert offsets.tolist() == pytest.approx([math.log(0.25)] * 2 + [0.0] * 6)
    assert noise_offsets(10, 0.5, 0.1, torch.device("cpu")).tolist() == pytest.approx([math.log(0.1)] * 5 + [0.0] * 5)
    assert noise_offsets(8, 0.0, 0.25, torch.device("cpu")) is None  # nobody quieter
    assert noise_offsets(8, 0.05, 0.25, torch.device("cpu")) is None  # 0.4 environments round to none
    assert noise_offsets(8, 0.5, 1.0, torch.device("cpu")) is None  # "quieter" by a factor 1


def test_a_quiet_row_draws_scaled_noise_and_is_scored_with_its_own_std():
    torch.manual_seed(0)
    model = EntityBelief(OBS, ACT, lstm_hidden=HID, init_log_std=-0.7)
    gen = torch.Generator().manual_seed(4)
    obs = torch.randn(4, OBS, generator=gen)
    state = (torch.randn(4, HID, generator=gen), torch.randn(4, HID, generator=gen))
    starts = torch.zeros(4)
    scale = torch.tensor([0.25, 1.0, 0.5, 1.0])
    offset = scale.log()
    with torch.no_grad():
        mean = model(obs[None], state, starts[None])[0][0]
        _, loud_u, loud_logp, _, _ = model.act(obs, state, starts, generator=torch.Generator().manual_seed(9))
        _, quiet_u, quiet_logp, _, _ = model.act(obs, state, starts, generator=torch.Generator().manual_seed(9),
                                                 log_std_offset=offset)
        # the same draw of eps: each row's deviation from the mean scaled by its factor
        torch.testing.assert_close(quiet_u - mean, scale[:, None] * (loud_u - mean), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(quiet_logp[[1, 3]], loud_logp[[1, 3]])
        # the score: a float64 reference of the tanh-squashed Gaussian with the row's std
        u, m = quiet_u.double().numpy(), mean.double().numpy()
        std = np.exp(model.log_std.detach().double().numpy())[None, :] * scale.double().numpy()[:, None]
        gauss = -0.5 * ((u - m) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
        reference = (gauss - np.log(1.0 - np.tanh(u) ** 2)).sum(-1)
        np.testing.assert_allclose(quiet_logp.double().numpy(), reference, rtol=1e-5, atol=1e-4)
        # the update re-scores the stored action with the same std: the PPO ratio starts at 1
        new_logp, entropy, _ = model.evaluate(obs[None], quiet_u[None], state, starts[None], offset)
        torch.testing.assert_close(new_logp[0], quiet_logp)
        # without the offset the quiet rows would be scored as (unlikely small) full-noise draws
        plain_logp = model.evaluate(obs[None], quiet_u[None], state, starts[None])[0][0]
        assert (plain_logp[[0, 2]] < quiet_logp[[0, 2]]).all()
        # the entropy (bonus) is the policy's own, whatever the rows' noise
        torch.testing.assert_close(entropy, model.evaluate(obs[None], quiet_u[None], state, starts[None])[1])


def test_a_collected_rollout_keeps_each_environments_noise_and_re_scores_it():
    from quadlit.tasks.reach import ReachParams, ReachTask

    torch.manual_seed(0)
    task = ReachTask(8, ReachParams(max_steps=9), seed=1)
    collector = RolloutCollector(task, 24)
    collector.reset(1)
    policy = EntityBelief(7, 3, lstm_hidden=16, init_log_std=-1.0)
    norm = RunningNorm(7)
    offsets = noise_offsets(8, 0.5, 0.25, torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    r = collector.collect(policy, norm, torch.device("cpu"), gen, log_std_offset=offsets)
    assert r.log_std_offset is offsets
    with torch.no_grad():
        log_prob, _, _ = policy.evaluate(r.policy_obs, r.raw_action, (r.h0, r.c0), r.episode_start, offsets)
        mean = policy(r.policy_obs, (r.h0, r.c0), r.episode_start)[0]
    assert torch.allclose(log_prob, r.log_prob, atol=1e-4)
    # deviations from the mean in units of the policy's std: RMS 0.25 in the quiet half, 1 in the other
    z = (r.raw_action - mean) / policy.log_std.detach().exp()
    quiet_rms = float(z[:, :4].square().mean().sqrt())
    loud_rms = float(z[:, 4:].square().mean().sqrt())
    assert 0.2 < quiet_rms < 0.3 and 0.85 < loud_rms < 1.15, (quiet_rms, loud_rms)
    # no offsets: the rollout says so
    assert collector.collect(policy, norm, torch.device("cpu"), gen).log_std_offset is None


def test_the_step_size_reads_the_kl_of_the_full_noise_samples():
    new = torch.tensor([[0.0, 0.5, 0.1, -0.2], [0.3, -0.4, 0.0, 0.2]])
    old = torch.zeros(2, 4)
    offset = torch.tensor([math.log(0.25), math.log(0.25), 0.0, 0.0])
    loud = torch.tensor([0.1, -0.2, 0.0, 0.2])
    expected = float((loud.exp() - 1 - loud).mean())
    assert float(_full_noise_kl(new, old, offset, torch.tensor(9.0))) == pytest.approx(expected)
    # every sample quieter: the overall KL
    assert float(_full_noise_kl(new, old, torch.full((4,), -1.0), torch.tensor(9.0))) == 9.0


def test_a_run_with_quiet_environments_collects_and_trains_with_them(tmp_path, monkeypatch):
    import sys

    from quadlit.cli import run_cli
    from tests.tiny import REPO, TINY

    monkeypatch.setattr(sys, "argv", ["quadlit"])
    cli = run_cli(["fit", "--config", str(REPO / "configs/reach.yaml"), *TINY, "--trainer.logger", "false",
                   "--model.quiet_envs", "0.5", "--model.quiet_std_scale", "0.2",
                   "--trainer.default_root_dir", str(tmp_path)])
    metrics = cli.trainer.callback_metrics
    assert torch.isfinite(metrics["train/value_loss"]) and torch.isfinite(metrics["train/approx_kl"])
    r = cli.datamodule.collect()  # what the data module collects with the module's settings
    assert r.log_std_offset.tolist() == pytest.approx([math.log(0.2)] * 4 + [0.0] * 4)
    policy = cli.model.policy
    with torch.no_grad():
        log_prob = policy.evaluate(r.policy_obs, r.raw_action, (r.h0, r.c0), r.episode_start, r.log_std_offset)[0]
    assert torch.allclose(log_prob, r.log_prob, atol=1e-4)
