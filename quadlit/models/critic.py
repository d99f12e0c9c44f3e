"""Critic networks that stand apart from the policy (asymmetric actor-critic).

A separate critic learns values without pulling on the policy's features (with a shared LSTM
trunk the value loss, on returns of order 100, dominates the gradient of the trunk), and it may
read what only the simulator knows (the latest push, the episode's friction, added mass, motor
strength, gains, the true trunk height): it exists only during training, so the policy stays
deployable on the observations a robot has.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class MlpCritic(nn.Module):
    """V(s) from a flat input (observation, or observation and privileged observation).

    Args:
        in_dim: input length.
        hidden: widths of the hidden layers (ELU).

    Shape: (..., in_dim) -> (...,).
    """

    def __init__(self, in_dim: int, hidden: Sequence[int] = (256, 128)) -> None:
        super().__init__()
        if in_dim < 1 or not hidden or min(hidden) < 1:
            raise ValueError(f"in_dim and every hidden width must be >= 1, got {in_dim} and {list(hidden)}")
        layers: list[nn.Module] = []
        width = in_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ELU()]
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, 1)
        nn.init.orthogonal_(self.head.weight, gain=1.0)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value = self.head(self.body(x)).squeeze(-1)
        return value.float() if value.dtype in (torch.float16, torch.bfloat16) else value
