"""Sizing the environment count from the memory this machine has free."""

from __future__ import annotations

import psutil
import torch

from quadlit.envs.base import EnvSpec

#: Share of free memory the environments and their rollout buffers may use.
MEMORY_SHARE = 0.25


def bytes_per_env(spec: EnvSpec, rollout_steps: int, lstm_hidden: int = 128, state_bytes: int = 4096) -> int:
    """Estimated memory of one environment: its state arrays plus its share of one rollout
    (float32 buffers) and of the update's activations (about 8x the buffer)."""
    per_step = 4 * (2 * spec.obs_dim + 2 * spec.action_dim + 8)
    rollout = rollout_steps * per_step
    return state_bytes + rollout * 9 + 4 * 4 * lstm_hidden


def auto_num_envs(spec: EnvSpec, rollout_steps: int, min_envs: int, max_envs: int,
                  device: torch.device | None = None) -> int:
    """The largest power of two in [min_envs, max_envs] whose environments fit in
    ``MEMORY_SHARE`` of free host memory (and of free GPU memory when training on CUDA)."""
    free = psutil.virtual_memory().available
    if device is not None and device.type == "cuda" and torch.cuda.is_available():
        gpu_free, _ = torch.cuda.mem_get_info(device)
        free = min(free, gpu_free)
    fit = int(MEMORY_SHARE * free // bytes_per_env(spec, rollout_steps))
    n = min_envs
    while n * 2 <= min(fit, max_envs):
        n *= 2
    return max(min_envs, min(n, max_envs))


def check_fits_in_memory(spec: EnvSpec, rollout_steps: int, num_envs: int) -> None:
    """ValueError naming ``data.num_envs`` when its estimated memory exceeds all the free host
    memory (a typo such as 1000000000 environments, not a tight fit: ``auto`` handles those)."""
    need = num_envs * bytes_per_env(spec, rollout_steps)
    free = psutil.virtual_memory().available
    if need > free:
        raise ValueError(f"data.num_envs={num_envs} needs about {need / 2**30:.1f} GiB of memory, "
                         f"but {free / 2**30:.1f} GiB is free: lower data.num_envs (or use 'auto')")
