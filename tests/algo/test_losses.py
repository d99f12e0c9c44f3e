"""PPO loss terms on worked examples whose arithmetic is written out."""

import math

import pytest
import torch

from quadlit.algo.losses import (
    clipped_policy_loss,
    clipped_value_loss,
    entropy_bonus,
    explained_variance,
    normalize_advantages,
)


def test_normalize_advantages_worked_example():
    adv = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    # mean 2.5; unbiased std = sqrt((2.25 + .25 + .25 + 2.25) / 3) = sqrt(5/3)
    std = math.sqrt(5.0 / 3.0)
    expected = torch.tensor([-1.5, -0.5, 0.5, 1.5], dtype=torch.float64) / (std + 1e-8)
    torch.testing.assert_close(normalize_advantages(adv), expected)


def test_normalize_advantages_constant_and_single():
    torch.testing.assert_close(normalize_advantages(torch.full((5,), 3.0)), torch.zeros(5))
    torch.testing.assert_close(normalize_advantages(torch.tensor([7.0])), torch.zeros(1))


def test_clipped_policy_loss_worked_example():
    ratio = torch.tensor([1.5, 0.5, 1.1, 0.5], dtype=torch.float64)
    advantages = torch.tensor([1.0, 1.0, -2.0, -1.0], dtype=torch.float64)
    old_log_prob = torch.tensor([-1.0, -2.0, 0.5, -0.3], dtype=torch.float64)
    new_log_prob = (old_log_prob + ratio.log()).requires_grad_(True)

    loss, stats = clipped_policy_loss(new_log_prob, old_log_prob, advantages, clip=0.2)

    # per element max(-A r, -A clamp(r, .8, 1.2)):
    #   r=1.5, A=+1: max(-1.5, -1.2) = -1.2   clip active (no credit beyond 1.2)
    #   r=0.5, A=+1: max(-0.5, -0.8) = -0.5   clip inactive (pessimistic: unclipped)
    #   r=1.1, A=-2: max( 2.2,  2.2) =  2.2   inside the range
    #   r=0.5, A=-1: max( 0.5,  0.8) =  0.8   clip active
    # mean = (-1.2 - 0.5 + 2.2 + 0.8) / 4 = 0.325
    assert loss.item() == pytest.approx(0.325)
    # |r - 1| > 0.2 for elements 0, 1, 3
    assert stats["clip_fraction"].item() == pytest.approx(0.75)
    kl_terms = [(r - 1.0) - math.log(r) for r in (1.5, 0.5, 1.1, 0.5)]
    assert stats["approx_kl"].item() == pytest.approx(sum(kl_terms) / 4)
    assert not stats["approx_kl"].requires_grad

    # d loss / d new_log_prob = -A r / 4 where the unclipped term is chosen, 0 where clipped.
    loss.backward()
    expected_grad = torch.tensor([0.0, -1.0 * 0.5 / 4, 2.0 * 1.1 / 4, 0.0], dtype=torch.float64)
    torch.testing.assert_close(new_log_prob.grad, expected_grad)


def test_clipped_policy_loss_on_policy_is_minus_mean_advantage():
    log_prob = torch.tensor([-0.3, -1.2, -2.0])
    adv = torch.tensor([1.0, -2.0, 4.0])
    loss, stats = clipped_policy_loss(log_prob, log_prob, adv)
    assert loss.item() == pytest.approx(-1.0)  # -(1 - 2 + 4) / 3
    assert stats["approx_kl"].item() == 0.0
    assert stats["clip_fraction"].item() == 0.0


def test_clipped_value_loss_worked_example():
    old = torch.zeros(4)
    returns = torch.tensor([1.0, -1.0, 0.5, 0.5])
    new = torch.tensor([0.5, -0.5, 0.1, 0.9], requires_grad=True)
    loss = clipped_value_loss(new, old, returns, clip=0.2)
    # V_clip = clamp(new, -.2, .2) = [.2, -.2, .1, .2]
    #   0: max((.5-1)^2, (.2-1)^2)   = max(.25, .64) = .64  clipped term larger
    #   1: max((-.5+1)^2, (-.2+1)^2) = max(.25, .64) = .64
    #   2: max((.1-.5)^2, same)      = .16                  inside the range
    #   3: max((.9-.5)^2, (.2-.5)^2) = max(.16, .09) = .16  unclipped larger
    # 0.5 * mean = 0.5 * 1.6 / 4 = 0.2
    assert loss.item() == pytest.approx(0.2)
    loss.backward()
    # gradient only through unclipped picks: 0.5 * 2 (V - R) / 4 for elements 2 and 3
    torch.testing.assert_close(new.grad, torch.tensor([0.0, 0.0, -0.1, 0.1]))


def test_entropy_bonus_is_mean():
    assert entropy_bonus(torch.tensor([[1.0, 2.0], [3.0, 6.0]])).item() == pytest.approx(3.0)


def test_explained_variance():
    target = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert explained_variance(target, target).item() == pytest.approx(1.0)
    assert explained_variance(torch.full((4,), 2.5), target).item() == pytest.approx(0.0)
    # residual [0, 0, 0, 1]: var = .25 (unbiased: (3*.0625 + .5625) / 3); var(target) = 5/3
    # 1 - .25 / (5/3) = 0.85
    assert explained_variance(torch.tensor([1.0, 2.0, 3.0, 3.0]), target).item() == pytest.approx(0.85)
    assert math.isnan(explained_variance(torch.zeros(3), torch.ones(3)).item())
