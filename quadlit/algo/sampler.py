"""Minibatches split by environment, so recurrent sequences stay whole."""

from __future__ import annotations

import torch


def env_minibatches(
    num_envs: int, num_minibatches: int, generator: torch.Generator | None = None
) -> list[torch.Tensor]:
    """A fresh random partition of the environments into nearly equal groups.

    Each environment appears in exactly one group; group sizes differ by at most one. The
    trainer indexes a (T, N, ...) rollout as ``rollout[:, env_idx]``, so every minibatch holds
    whole time sequences. Call once per epoch.

    Args:
        num_envs: environments N in the rollout.
        num_minibatches: number of groups, in 1..num_envs.
        generator: optional CPU random generator for the permutation.

    Returns:
        ``num_minibatches`` LongTensors of environment indices (CPU).
    """
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    if not 1 <= num_minibatches <= num_envs:
        raise ValueError(f"num_minibatches must be in 1..{num_envs} (num_envs), got {num_minibatches}")
    permutation = torch.randperm(num_envs, generator=generator)
    return list(torch.tensor_split(permutation, num_minibatches))
