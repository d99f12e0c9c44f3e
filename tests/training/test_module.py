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


@pytest.mark.parametrize("kwargs,match", [
    ({"final_log_std": 5.0}, "final_log_std"),
    ({"log_std_decay_steps": 0}, "log_std_decay_steps"),
    ({"critic": "privileged"}, "privileged"),
    ({"critic": "twin"}, "critic"),
    ({"policy": "transformer"}, "policy"),
    ({"critic_hidden": []}, "critic_hidden"),
])
def test_bad_choices_are_refused_with_the_field_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        QuadlitModule(obs_dim=37, action_dim=12, **kwargs)
