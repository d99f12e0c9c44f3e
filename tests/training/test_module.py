"""QuadlitModule pieces that need no training run: the scheduled exploration noise and the
choice of policy and critic."""

import pytest
import torch

from quadlit.training.module import QuadlitModule


def test_scheduled_log_std_is_linear_then_held_and_not_learned():
    m = QuadlitModule(obs_dim=37, action_dim=12, init_log_std=0.0, final_log_std=-1.2, log_std_decay_steps=1000)
    assert m.scheduled_log_std(0) == 0.0
    assert m.scheduled_log_std(250) == pytest.approx(-0.3)
    assert m.scheduled_log_std(1000) == pytest.approx(-1.2)
    assert m.scheduled_log_std(10**9) == pytest.approx(-1.2)
    assert not m.policy.log_std.requires_grad
    m.env_steps.fill_(500)
    m._apply_log_std_schedule()
    assert torch.allclose(m.policy.log_std, torch.full((12,), -0.6))


def test_learned_log_std_by_default():
    m = QuadlitModule(obs_dim=37, action_dim=12, init_log_std=0.0)
    assert m.scheduled_log_std(10**6) is None and m.policy.log_std.requires_grad


def test_scheduled_kl_target_is_linear_then_held_and_steers_the_learning_rate():
    m = QuadlitModule(obs_dim=37, action_dim=12, desired_kl=0.01, final_desired_kl=0.002, kl_decay_steps=1000)
    assert m.scheduled_desired_kl(0) == pytest.approx(0.01)
    assert m.scheduled_desired_kl(500) == pytest.approx(0.006)
    assert m.scheduled_desired_kl(10**9) == pytest.approx(0.002)
    opt = torch.optim.Adam(m.policy.parameters(), lr=1e-3)
    m._adapt_lr(opt, 0.005)  # at step 0 (target 0.01) a KL of 0.005 is in band: lr kept
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3)
    m.env_steps.fill_(1000)  # target 0.002: the same KL is more than double it: lr / 1.5
    m._adapt_lr(opt, 0.005)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3 / 1.5)
    fixed = QuadlitModule(obs_dim=37, action_dim=12, desired_kl=0.01)
    assert fixed.scheduled_desired_kl(10**9) == 0.01
    assert QuadlitModule(obs_dim=37, action_dim=12, desired_kl=None).scheduled_desired_kl(0) is None


def test_policy_average_is_an_exponential_moving_average_and_is_what_is_deployed():
    plain = QuadlitModule(obs_dim=37, action_dim=12)
    assert plain.policy_avg is None and plain.deployed_policy is plain.policy
    m = QuadlitModule(obs_dim=37, action_dim=12, policy_average=0.75)
    assert m.deployed_policy is m.policy_avg
    assert not any(p.requires_grad for p in m.policy_avg.parameters())
    before = [p.detach().clone() for p in m.policy_avg.parameters()]
    with torch.no_grad():
        for p in m.policy.parameters():
            p.add_(1.0)
    m._update_policy_average(1000)  # warmed up: the configured decay
    for old, avg, new in zip(before, m.policy_avg.parameters(), m.policy.parameters()):
        assert torch.allclose(avg, 0.75 * old + 0.25 * new, atol=1e-6)
    before = [p.detach().clone() for p in m.policy_avg.parameters()]
    with torch.no_grad():
        for p in m.policy.parameters():
            p.add_(1.0)
    m._update_policy_average(1)  # first update: decay (1 + 1) / (10 + 1) = 2/11
    for old, avg, new in zip(before, m.policy_avg.parameters(), m.policy.parameters()):
        assert torch.allclose(avg, (2 / 11) * old + (9 / 11) * new, atol=1e-6)
    # the average is in the state dict, so a checkpoint carries it
    assert any(k.startswith("policy_avg.") for k in m.state_dict())


def test_policy_average_warmup_sets_how_soon_the_decay_reaches_its_cap():
    m = QuadlitModule(obs_dim=37, action_dim=12, policy_average=0.98, policy_average_warmup=2.0)
    before = [p.detach().clone() for p in m.policy_avg.parameters()]
    with torch.no_grad():
        for p in m.policy.parameters():
            p.add_(1.0)
    m._update_policy_average(3)  # decay (1 + 3) / (2 + 3) = 0.8, below the cap
    for old, avg, new in zip(before, m.policy_avg.parameters(), m.policy.parameters()):
        assert torch.allclose(avg, 0.8 * old + 0.2 * new, atol=1e-6)
    before = [p.detach().clone() for p in m.policy_avg.parameters()]
    m._update_policy_average(48)  # 49/50 = 0.98: at the cap
    for old, avg, new in zip(before, m.policy_avg.parameters(), m.policy.parameters()):
        assert torch.allclose(avg, 0.98 * old + 0.02 * new, atol=1e-6)


@pytest.mark.parametrize("kwargs,match", [
    ({"policy_average": 1.0}, "policy_average"),
    ({"policy_average": 0.9, "policy_average_warmup": 1.0}, "policy_average_warmup"),
    ({"final_log_std": 5.0}, "final_log_std"),
    ({"final_desired_kl": 0.0}, "final_desired_kl"),
    ({"final_desired_kl": 0.002, "desired_kl": None}, "desired_kl"),
    ({"kl_decay_steps": 0}, "kl_decay_steps"),
    ({"log_std_decay_steps": 0}, "log_std_decay_steps"),
    ({"critic": "privileged"}, "privileged"),
    ({"critic": "twin"}, "critic"),
    ({"policy": "transformer"}, "policy"),
    ({"critic_hidden": []}, "critic_hidden"),
    ({"critic_surprise": True}, "critic_surprise"),  # the shared value head cannot read it
    ({"critic_surprise": True, "critic": "separate", "wm_updates": 0}, "critic_surprise"),
    ({"critic_surprise": True, "critic": "separate", "wm_history": 2}, "critic_surprise"),
    ({"wm_horizon": 0}, "wm_horizon"),
    ({"wm_history": 0}, "wm_history"),
    ({"quiet_envs": 1.0}, "quiet_envs"),
    ({"quiet_envs": -0.1}, "quiet_envs"),
    ({"quiet_std_scale": 0.0}, "quiet_std_scale"),
    ({"quiet_std_scale": 1.0}, "quiet_std_scale"),
    ({"noise_correlation": 1.0}, "noise_correlation"),
    ({"noise_correlation": -0.1}, "noise_correlation"),
    ({"noise_correlation_from": -1}, "noise_correlation_from"),
    ({"mirror_coef": -0.5}, "mirror_coef"),
    ({"mirror_envs": 0}, "mirror_envs"),
    ({"guard_tolerance": 1.0}, "guard_tolerance"),
    ({"guard_tolerance": -0.1}, "guard_tolerance"),
    ({"guard_every": 0}, "guard_every"),
])
def test_bad_choices_are_refused_with_the_field_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        QuadlitModule(obs_dim=37, action_dim=12, **kwargs)


def test_a_critic_reading_the_surprise_is_sized_for_it_and_trains(tmp_path, monkeypatch):
    import sys

    from quadlit.cli import run_cli
    from tests.tiny import REPO, TINY

    m = QuadlitModule(obs_dim=37, action_dim=12, critic="privileged", privileged_dim=9, critic_surprise=True)
    assert m.critic.in_dim == 37 + 9 + 37 and m.rollout_policy().world_model is m.world_model
    assert QuadlitModule(obs_dim=37, action_dim=12, critic="separate").rollout_policy().world_model is None
    monkeypatch.setattr(sys, "argv", ["quadlit"])
    cli = run_cli(["fit", "--config", str(REPO / "configs/reach.yaml"), *TINY, "--trainer.logger", "false",
                   "--model.critic", "separate", "--model.critic_surprise", "true",
                   "--trainer.default_root_dir", str(tmp_path)])
    metrics = cli.trainer.callback_metrics
    assert torch.isfinite(metrics["train/value_loss"]) and "world_model/dynamics" in metrics


@pytest.mark.parametrize("kwargs", [{}, {"policy": "mlp", "critic": "separate"},
                                    {"critic": "privileged", "wm_history": 3, "wm_latent_dim": 64}])
def test_parameter_estimates_behind_the_memory_check_are_close_to_the_real_counts(kwargs):
    from quadlit.training.module import _parameter_counts

    module = QuadlitModule(obs_dim=37, action_dim=12, privileged_dim=9, **kwargs)
    real = sum(p.numel() for net in (module.policy, module.critic, module.world_model) if net is not None
               for p in net.parameters())
    estimate = sum(_parameter_counts(module.hparams).values())
    assert 0.9 * real <= estimate <= 1.1 * real, (estimate, real)
