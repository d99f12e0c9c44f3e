"""Baseline policies with the ``act`` API of ``EntityBelief``: what learning is compared with."""

from __future__ import annotations

from typing import Any

import torch


class ZeroPolicy(torch.nn.Module):
    """Always action 0 (in ``pd`` mode the robot holds its default pose).

    Args:
        action_dim: length of one action vector.
    """

    label = "zero actions"

    def __init__(self, action_dim: int) -> None:
        super().__init__()
        self.action_dim = action_dim

    def initial_state(self, batch: int, device: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.zeros(batch, 1, device=device)
        return z, z.clone()

    def _actions(self, obs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return torch.zeros(obs.shape[0], self.action_dim, device=obs.device)

    def act(self, obs: torch.Tensor, state: Any, episode_start: torch.Tensor, deterministic: bool = False,
            generator: torch.Generator | None = None) -> tuple:
        """Shape: obs (B, O) -> action (B, A), raw (B, A), log_prob (B,), value (B,), state."""
        action = self._actions(obs, generator)
        zeros = torch.zeros(obs.shape[0], device=obs.device)
        return action, action.clone(), zeros, zeros, state


class RandomPolicy(ZeroPolicy):
    """Uniform random actions in [-1, 1] (``deterministic`` is ignored).

    Args:
        action_dim: length of one action vector.
        seed: seed of the policy's own generator, used when ``act`` is given none.
    """

    label = "random actions"

    def __init__(self, action_dim: int, seed: int = 0) -> None:
        super().__init__(action_dim)
        self.generator = torch.Generator().manual_seed(seed)

    def _actions(self, obs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        u = torch.rand(obs.shape[0], self.action_dim, generator=generator or self.generator)
        return (2.0 * u - 1.0).to(obs.device)
