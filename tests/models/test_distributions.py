"""Squashed Gaussian: closed-form log-prob against numerical change of variables."""

import math

import pytest
import torch

from quadlit.models.distributions import gaussian_entropy, sample_squashed, squashed_log_prob

F64 = torch.float64


def test_log_prob_matches_jacobian_of_atanh():
    gen = torch.Generator().manual_seed(0)
    mean = torch.randn(3, generator=gen, dtype=F64)
    log_std = torch.tensor([-0.5, 0.0, 0.3], dtype=F64)
    raw_u = torch.randn(3, generator=gen, dtype=F64) * 1.5
    action = torch.tanh(raw_u)
    # p_a(a) = p_u(atanh a) |det d atanh(a) / da|, the Jacobian taken numerically by autograd.
    jacobian = torch.autograd.functional.jacobian(torch.atanh, action)
    _, log_abs_det = torch.linalg.slogdet(jacobian)
    normal = torch.distributions.Normal(mean, log_std.exp())
    expected = normal.log_prob(torch.atanh(action)).sum() + log_abs_det
    torch.testing.assert_close(squashed_log_prob(raw_u, mean, log_std), expected)


@pytest.mark.parametrize("x", [-0.95, -0.3, 0.0, 0.6, 0.99])
def test_log_prob_matches_finite_difference_of_cdf(x):
    # One action dim: P(a <= x) = Phi((atanh x - mu) / sigma); density = dCDF/dx.
    mu, log_sigma, h = 0.2, -0.4, 1e-6
    sigma = math.exp(log_sigma)

    def cdf(v):
        return 0.5 * (1.0 + math.erf((math.atanh(v) - mu) / (sigma * math.sqrt(2.0))))

    density = (cdf(x + h) - cdf(x - h)) / (2 * h)
    raw_u = torch.tensor([[math.atanh(x)]], dtype=F64)
    log_prob = squashed_log_prob(raw_u, torch.tensor([[mu]], dtype=F64), torch.tensor([log_sigma], dtype=F64))
    assert log_prob.shape == (1,)
    assert log_prob.item() == pytest.approx(math.log(density), rel=1e-6, abs=1e-6)


def test_log_prob_is_finite_where_tanh_saturates():
    raw_u = torch.tensor([[30.0, -30.0]])
    log_prob = squashed_log_prob(raw_u, torch.zeros(1, 2), torch.zeros(2))
    # log(1 - tanh(30)^2) = 2 (log 2 - 30 - softplus(-60)) ~ 2 (0.6931 - 30)
    gaussian = 2 * (-0.5 * 900 - 0.5 * math.log(2 * math.pi))
    assert torch.isfinite(log_prob).all()
    assert log_prob.item() == pytest.approx(gaussian - 2 * 2 * (math.log(2) - 30), rel=1e-5)


def test_sample_shapes_range_statistics_and_reproducibility():
    mean = torch.tensor([0.5, -1.0]).expand(200_000, 2)
    log_std = torch.tensor([-1.0, 0.0])
    action, raw_u = sample_squashed(mean, log_std, torch.Generator().manual_seed(7))
    assert action.shape == raw_u.shape == (200_000, 2)
    assert (action.abs() < 1).all()
    torch.testing.assert_close(action, torch.tanh(raw_u))
    torch.testing.assert_close(raw_u.mean(0), torch.tensor([0.5, -1.0]), atol=0.01, rtol=0)
    torch.testing.assert_close(raw_u.std(0), log_std.exp(), atol=0.01, rtol=0)
    again, _ = sample_squashed(mean, log_std, torch.Generator().manual_seed(7))
    assert torch.equal(action, again)


def test_gaussian_entropy_matches_torch_normal():
    log_std = torch.tensor([-0.5, 0.2, 1.0])
    entropy = gaussian_entropy(log_std, (4, 5))
    assert entropy.shape == (4, 5)
    expected = torch.distributions.Normal(torch.zeros(3), log_std.exp()).entropy().sum()
    torch.testing.assert_close(entropy, expected.expand(4, 5))


def test_half_precision_inputs_give_float32():
    mean = torch.randn(4, 2).bfloat16()
    log_std = torch.zeros(2)
    action, raw_u = sample_squashed(mean, log_std)
    assert raw_u.dtype == torch.float32
    assert squashed_log_prob(raw_u.bfloat16(), mean, log_std.bfloat16()).dtype == torch.float32
    assert gaussian_entropy(log_std.bfloat16(), (4,)).dtype == torch.float32
