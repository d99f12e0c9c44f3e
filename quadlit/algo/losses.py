"""PPO loss terms as small pure functions. Every input is a flat or (T, B) tensor of equal shape."""

from __future__ import annotations

import torch


def normalize_advantages(advantages: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``(A - mean) / (std + eps)`` over all elements (std with Bessel's correction).

    Args:
        advantages: any shape.
        eps: keeps the division finite when every advantage is equal.

    Returns:
        same shape. A single element is only centred (its std is undefined).
    """
    centred = advantages - advantages.mean()
    if advantages.numel() < 2:
        return centred
    return centred / (advantages.std() + eps)


def clipped_policy_loss(
    new_log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    clip: float = 0.2,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO's clipped surrogate, as a loss to minimise.

    ``ratio = exp(new - old)``; ``loss = mean(max(-A * ratio, -A * clamp(ratio, 1 - clip, 1 + clip)))``.

    Args:
        new_log_prob: log pi_new(a|s), any shape (gradients flow through it).
        old_log_prob: log pi_old(a|s) from the rollout, same shape.
        advantages: same shape (normalise them first if wanted).
        clip: the clip range epsilon of the probability ratio.

    Returns:
        loss: scalar.
        stats: detached scalars "approx_kl" (mean of ``(ratio - 1) - log ratio``, an unbiased,
        non-negative estimate of KL(old || new)) and "clip_fraction" (share of elements with
        ``|ratio - 1| > clip``).
    """
    log_ratio = new_log_prob - old_log_prob
    ratio = log_ratio.exp()
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip, 1.0 + clip)
    loss = torch.maximum(unclipped, clipped).mean()
    with torch.no_grad():
        stats = {
            "approx_kl": ((ratio - 1.0) - log_ratio).mean(),
            "clip_fraction": ((ratio - 1.0).abs() > clip).float().mean(),
        }
    return loss, stats


def clipped_value_loss(
    new_value: torch.Tensor, old_value: torch.Tensor, returns: torch.Tensor, clip: float = 0.2
) -> torch.Tensor:
    """Clipped value loss: ``0.5 * mean(max((V - R)^2, (V_clip - R)^2))`` with
    ``V_clip = V_old + clamp(V - V_old, -clip, clip)``.

    The 0.5 makes the gradient of the unclipped term ``(V - R)`` (the CleanRL/rsl_rl
    convention: the value coefficient then multiplies a plain regression error).

    Args:
        new_value: V from the current network, any shape.
        old_value: V from the rollout, same shape.
        returns: value targets (GAE returns), same shape.
        clip: how far the new value may move from the old one before the loss stops rewarding it.

    Returns:
        scalar.
    """
    value_clipped = old_value + (new_value - old_value).clamp(-clip, clip)
    unclipped = (new_value - returns).square()
    clipped = (value_clipped - returns).square()
    return 0.5 * torch.maximum(unclipped, clipped).mean()


def entropy_bonus(entropy: torch.Tensor) -> torch.Tensor:
    """Mean entropy (scalar); the trainer subtracts ``entropy_coef * bonus`` from the loss."""
    return entropy.mean()


@torch.no_grad()
def explained_variance(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - Var(target - pred) / Var(target)``: 1 is perfect, 0 no better than the mean.

    Args:
        pred: predicted values, any shape.
        target: targets, same shape.

    Returns:
        scalar; NaN when the target has no variance.
    """
    target_var = target.var()
    if target_var == 0:
        return torch.full((), float("nan"), dtype=target.dtype, device=target.device)
    return 1.0 - (target - pred).var() / target_var


def mirror_loss(policy: torch.nn.Module, obs: torch.Tensor, mirrored_obs: torch.Tensor, episode_start: torch.Tensor,
                mirror_action) -> torch.Tensor:
    """How far a policy is from mirror symmetry on a batch of sequences: the mean squared
    difference between its action mean for the mirrored observations and the mirror image of its
    action mean for the observations, both from a fresh recurrent state (a mirrored history
    from the same zero state is what a symmetric policy must answer with the mirrored action).

    Args:
        policy: ``forward(obs, state, episode_start, need_state) -> (mean, value, state)`` and
            ``initial_state(B, device)``.
        obs, mirrored_obs: (T, B, O), as the policy reads them (normalised).
        episode_start: (T, B).
        mirror_action: (..., A) -> (..., A), the action's mirror (``Mirror.action``).

    Returns:
        scalar, float32 or wider; 0 for a symmetric policy. Gradients reach both passes.
    """
    state = policy.initial_state(obs.shape[1], obs.device)
    mean = policy(obs, state, episode_start, need_state=False)[0]
    mirrored_mean = policy(mirrored_obs, state, episode_start, need_state=False)[0]
    wide = torch.float32 if mean.dtype in (torch.float16, torch.bfloat16) else mean.dtype
    return (mirrored_mean.to(wide) - mirror_action(mean.to(wide))).square().mean()
