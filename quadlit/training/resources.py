"""Sizing the environment count, and checking the networks' sizes, against the memory this machine has free."""

from __future__ import annotations

from collections.abc import Sequence

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


#: Environment-steps per physics thread in one iteration's rollout at most, for ``num_envs:
#: auto``: about 6 s of balance training per core (~11 k env-steps/s, docs/benchmarks.md), so
#: an iteration never runs for minutes whatever ``max_envs`` allows.
AUTO_STEPS_PER_THREAD = 65536


def auto_num_envs(spec: EnvSpec, rollout_steps: int, min_envs: int, max_envs: int,
                  device: torch.device | None = None, threads: int = 1) -> tuple[int, str]:
    """The largest power of two in [min_envs, max_envs] whose environments fit in
    ``MEMORY_SHARE`` of free host memory (and of free GPU memory when training on CUDA) and
    whose rollout ``threads`` physics threads step in ``AUTO_STEPS_PER_THREAD`` env-steps each;
    with why, in words (the bound that decided)."""
    free = psutil.virtual_memory().available
    if device is not None and device.type == "cuda" and torch.cuda.is_available():
        gpu_free, _ = torch.cuda.mem_get_info(device)
        free = min(free, gpu_free)
    bounds = {
        f"data.max_envs={max_envs}": max_envs,
        f"{MEMORY_SHARE:.0%} of the {free / 2**30:.1f} GiB of free memory": int(MEMORY_SHARE * free //
                                                                              bytes_per_env(spec, rollout_steps)),
        f"a rollout of about {AUTO_STEPS_PER_THREAD:,} env-steps per physics thread ({threads})":
            AUTO_STEPS_PER_THREAD * threads // rollout_steps,
    }
    limit = min(bounds.values())
    n = min_envs
    while n * 2 <= limit:
        n *= 2
    if n > limit:
        return min_envs, f"data.min_envs={min_envs} (more than {min(bounds, key=bounds.get)} allows)"
    return n, f"the largest power of two from data.min_envs={min_envs} within {min(bounds, key=bounds.get)}"


#: Bytes a network parameter takes while training: float32 weights, gradients and Adam's two moments.
BYTES_PER_PARAMETER = 16


def _check_need(need: int, what: str, fix: str) -> None:
    """ValueError when ``need`` bytes exceed all the free host memory (a typo, not a tight fit)."""
    free = psutil.virtual_memory().available
    if need > free:
        raise ValueError(f"{what} needs about {need / 2**30:.1f} GiB of memory, but {free / 2**30:.1f} GiB is "
                         f"free: {fix}")


def check_fits_in_memory(spec: EnvSpec, rollout_steps: int, num_envs: int) -> None:
    """ValueError naming ``data.num_envs`` when its estimated memory exceeds all the free host
    memory (a typo such as 1000000000 environments, not a tight fit: ``auto`` handles those)."""
    _check_need(num_envs * bytes_per_env(spec, rollout_steps), f"data.num_envs={num_envs}",
                "lower data.num_envs (or use 'auto')")


def mlp_parameters(widths: Sequence[int]) -> int:
    """Weights and biases of fully connected layers of these widths (input first, output last)."""
    return sum(a * b + b for a, b in zip(widths, widths[1:]))


def check_networks_fit_in_memory(parameters: dict[str, int]) -> None:
    """ValueError naming the options that size the largest network when the networks, trained,
    need more than all the free host memory (``model.critic_hidden [200000, 200000]``), checked
    before they are allocated. ``parameters``: the options that size each network -> its
    parameter count."""
    options, largest = max(parameters.items(), key=lambda item: item[1])
    _check_need(BYTES_PER_PARAMETER * sum(parameters.values()), f"{options}: a network of {largest:,} parameters",
                f"lower {options}")
