"""Generalized advantage estimation that bootstraps through time-outs but not failures.

Shapes: T = rollout steps, N = environments.
"""

from __future__ import annotations

import torch


@torch.no_grad()
def compute_gae(
    reward: torch.Tensor,
    value: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    truncation_value: torch.Tensor,
    last_value: torch.Tensor,
    gamma: float = 0.99,
    lam: float = 0.95,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and value targets of a rollout.

    Step t got ``reward[t]``; the value of the state that followed is

    - ``value[t + 1]`` (``last_value`` at t = T - 1) if the episode continued,
    - 0 if ``terminated[t]`` (a failure: nothing follows; wins if both flags are set),
    - ``truncation_value[t]`` if ``truncated[t]`` (a time-out: the value of the final
      observation, before the auto-reset).

    ``delta_t = r_t + gamma * next_value_t - V_t`` and
    ``A_t = delta_t + gamma * lam * (1 - done_t) * A_{t+1}`` with ``done = terminated | truncated``,
    so an advantage never reaches across an episode boundary. ``returns = A + V``.

    Args:
        reward: shape (T, N).
        value: V(s_t) from the rollout, shape (T, N).
        terminated: shape (T, N), bool or 0/1 float.
        truncated: shape (T, N), bool or 0/1 float.
        truncation_value: V(final observation) where truncated, shape (T, N); ignored elsewhere.
        last_value: V of the observation after the last step, shape (N,).
        gamma: discount factor, in (0, 1].
        lam: GAE lambda, in [0, 1]; 0 gives one-step TD, 1 the Monte-Carlo advantage.

    Returns:
        advantages: shape (T, N).
        returns: shape (T, N).
    """
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    if reward.dim() != 2:
        raise ValueError(f"reward must be (T, N), got {tuple(reward.shape)}")
    for name, tensor in (("value", value), ("terminated", terminated), ("truncated", truncated),
                         ("truncation_value", truncation_value)):
        if tensor.shape != reward.shape:
            raise ValueError(f"{name} must have shape {tuple(reward.shape)}, got {tuple(tensor.shape)}")
    if last_value.shape != reward.shape[1:]:
        raise ValueError(
            f"last_value must have shape {tuple(reward.shape[1:])}, got {tuple(last_value.shape)}"
        )

    terminated = terminated.bool()
    truncated = truncated.bool()
    following_value = torch.cat([value[1:], last_value.unsqueeze(0)], dim=0)
    next_value = torch.where(truncated, truncation_value, following_value)
    next_value = torch.where(terminated, torch.zeros_like(next_value), next_value)
    delta = reward + gamma * next_value - value
    carry = gamma * lam * (~(terminated | truncated)).to(reward.dtype)

    advantages = torch.empty_like(reward)
    running = torch.zeros_like(last_value, dtype=reward.dtype)
    for t in range(reward.shape[0] - 1, -1, -1):
        running = delta[t] + carry[t] * running
        advantages[t] = running
    return advantages, advantages + value
