"""Per-environment counter-free random streams for Numba kernels.

Each environment owns one uint64 state word (xorshift64*-style splitmix64 stepping), stored in
the task's state arrays. A kernel draws only from its own environment's word, so results are
identical whatever the sharding or thread count, and the streams are saved in checkpoints.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_INV_2_53 = 1.0 / 9007199254740992.0


def seed_streams(seed: int, num_envs: int, offset: int = 0) -> np.ndarray:
    """One independent stream state per environment, from a master seed.

    Returns: shape (num_envs,), uint64.
    """
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(offset)])
    return ss.generate_state(num_envs, dtype=np.uint64)


@nb.njit(inline="always", cache=True, nogil=True)
def next_u64(state, i):
    """Advance stream ``state[i]`` (splitmix64) and return a uint64."""
    s = state[i] + _GOLDEN
    state[i] = s
    z = s
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@nb.njit(inline="always", cache=True, nogil=True)
def uniform(state, i):
    """Uniform float64 in [0, 1) from stream ``state[i]``."""
    return float(next_u64(state, i) >> np.uint64(11)) * _INV_2_53


@nb.njit(inline="always", cache=True, nogil=True)
def uniform_range(state, i, lo, hi):
    """Uniform float64 in [lo, hi) from stream ``state[i]``."""
    return lo + (hi - lo) * uniform(state, i)


@nb.njit(inline="always", cache=True, nogil=True)
def normal(state, i):
    """Standard normal float64 (Box-Muller, one value per call) from stream ``state[i]``."""
    u1 = uniform(state, i)
    u2 = uniform(state, i)
    if u1 < 1e-300:
        u1 = 1e-300
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
