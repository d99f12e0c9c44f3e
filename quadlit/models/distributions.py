"""The tanh-squashed diagonal Gaussian used by the policy.

An action is ``a = tanh(u)`` with ``u = mean + std * eps`` and ``eps ~ N(0, I)``, so every
action lies in (-1, 1). The rollout stores the pre-squash sample ``u`` ("raw_u") next to the
action: re-evaluating a log-probability from ``u`` avoids ``atanh`` of an action that rounds
to +-1.

All math here runs in at least float32: a bf16 or fp16 input (under autocast) is upcast
first, while float64 inputs (the tests) stay float64.

Shapes: ``...`` = any batch shape, ``A`` = action_dim.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_LOG_2 = math.log(2.0)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """Upcast half-precision tensors to float32; leave float32/float64 alone."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def sample_squashed(
    mean: torch.Tensor, log_std: torch.Tensor, generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``a = tanh(mean + exp(log_std) * eps)``.

    Args:
        mean: Gaussian mean, shape (..., A).
        log_std: log standard deviation, shape (A,) or broadcastable to ``mean``.
        generator: optional random generator for ``eps`` (must live on ``mean``'s device).
        noise: optional ``eps`` itself, shape (..., A), standard normal in each element (e.g.
            temporally correlated, see ``RolloutCollector``); then nothing is drawn.

    Returns:
        action: shape (..., A), in (-1, 1).
        raw_u: the pre-squash sample ``u``, shape (..., A).
    """
    mean = _at_least_float32(mean)
    log_std = _at_least_float32(log_std)
    if noise is None:
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    else:
        eps = noise.to(mean.dtype)
    raw_u = mean + log_std.exp() * eps
    return torch.tanh(raw_u), raw_u


def log_abs_det_tanh_jacobian(raw_u: torch.Tensor) -> torch.Tensor:
    """``sum_i log(1 - tanh(u_i)^2)`` computed without cancellation.

    Uses ``log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u))``, exact for every ``u``
    and finite even where ``tanh(u)`` rounds to +-1.

    Args:
        raw_u: pre-squash sample, shape (..., A).

    Returns:
        shape (...,).
    """
    raw_u = _at_least_float32(raw_u)
    return (2.0 * (_LOG_2 - raw_u - F.softplus(-2.0 * raw_u))).sum(dim=-1)


def squashed_log_prob(raw_u: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """Log-density of the action ``a = tanh(raw_u)`` (change of variables from ``u``).

    ``log p(a) = log N(u; mean, std^2) - sum_i log(1 - tanh(u_i)^2)``.

    Args:
        raw_u: pre-squash sample, shape (..., A).
        mean: Gaussian mean, shape (..., A).
        log_std: log standard deviation, shape (A,) or broadcastable to ``mean``.

    Returns:
        log-probability summed over action dimensions, shape (...,), float32 or wider.
    """
    raw_u = _at_least_float32(raw_u)
    mean = _at_least_float32(mean)
    log_std = _at_least_float32(log_std)
    z = (raw_u - mean) * torch.exp(-log_std)
    gaussian = (-0.5 * z.square() - log_std - _HALF_LOG_2PI).sum(dim=-1)
    return gaussian - log_abs_det_tanh_jacobian(raw_u)


def gaussian_entropy(log_std: torch.Tensor, batch_shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """Entropy of the pre-squash Gaussian ``N(mean, diag(std^2))``, summed over actions.

    The entropy of the squashed distribution has no closed form; the Gaussian's entropy is
    the standard surrogate for the PPO entropy bonus (it is monotone in ``log_std``, which is
    what the bonus acts on). It does not depend on the mean.

    Args:
        log_std: log standard deviation, shape (A,).
        batch_shape: the batch shape to broadcast to, e.g. (T, B).

    Returns:
        shape ``batch_shape``, float32 or wider.
    """
    log_std = _at_least_float32(log_std)
    per_sample = (0.5 + _HALF_LOG_2PI + log_std).sum(dim=-1)
    return per_sample.expand(tuple(batch_shape))
