"""The separate critic as the trainer uses it: an ``MlpCritic`` with its own input normaliser,
reading the observation and, for an asymmetric critic, the task's privileged observation."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from quadlit.models.critic import MlpCritic
from quadlit.training.normalizer import RunningNorm


class SeparateCritic(nn.Module):
    """V(observation [, privileged observation]) with running input normalisation.

    Args:
        obs_dim: observation length.
        privileged_dim: privileged-observation length (0: the critic sees what the policy sees).
        hidden: hidden widths of the MLP.
        normalize: keep running statistics of the input and normalise it.
    """

    def __init__(self, obs_dim: int, privileged_dim: int = 0, hidden: Sequence[int] = (256, 128),
                 normalize: bool = True) -> None:
        super().__init__()
        self.privileged_dim = int(privileged_dim)
        self.in_dim = obs_dim + self.privileged_dim
        self.net = MlpCritic(self.in_dim, hidden)
        self.norm = RunningNorm(self.in_dim, enabled=normalize)

    def raw_inputs(self, obs: torch.Tensor, privileged: torch.Tensor | None) -> torch.Tensor:
        """Shape: obs (..., O), privileged (..., P) -> (..., O + P), float32, before normalisation."""
        if self.privileged_dim == 0:
            return obs.float()
        if privileged is None:
            raise ValueError("this critic reads the privileged observation, but the task gave none")
        return torch.cat([obs.float(), privileged.float()], dim=-1)

    def inputs(self, obs: torch.Tensor, privileged: torch.Tensor | None) -> torch.Tensor:
        """The normalised critic input. Shape: (..., O + P)."""
        return self.norm(self.raw_inputs(obs, privileged))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Shape: normalised inputs (..., O + P) -> values (...,)."""
        return self.net(inputs)
