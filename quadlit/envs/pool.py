"""Shard thread pool: split environments into contiguous shards and run one nogil kernel per
shard in parallel."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np


def default_physics_threads() -> int:
    """Threads stepping physics by default: the cores this process may use.

    The pool itself holds one worker per core less one (at least one); the calling thread runs
    the last shard, so all cores step physics while the trainer waits for the step.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores)


def shard_bounds(num_envs: int, num_shards: int) -> list[tuple[int, int]]:
    """Contiguous [lo, hi) ranges covering 0..num_envs, as even as possible, none empty."""
    num_shards = max(1, min(num_shards, num_envs))
    edges = np.linspace(0, num_envs, num_shards + 1).round().astype(int)
    return [(int(edges[k]), int(edges[k + 1])) for k in range(num_shards)]


class ShardPool:
    """Runs ``fn(lo, hi)`` over contiguous shards of ``[0, num_envs)``.

    Args:
        num_threads: shards run at once (threads in all, the caller included); ``None`` means
            ``default_physics_threads()``. With 1 everything runs inline with no pool overhead.
    """

    def __init__(self, num_threads: int | None = None) -> None:
        if num_threads is None:
            num_threads = default_physics_threads()
        if num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {num_threads}")
        self.num_threads = int(num_threads)
        self._executor = (
            ThreadPoolExecutor(max_workers=self.num_threads - 1, thread_name_prefix="quadlit-physics")
            if self.num_threads > 1
            else None
        )

    def run(self, fn: Callable[[int, int], object], num_envs: int) -> list[object]:
        """Call ``fn(lo, hi)`` for every shard; returns the results in shard order."""
        bounds = shard_bounds(num_envs, self.num_threads)
        if self._executor is None or len(bounds) == 1:
            return [fn(lo, hi) for lo, hi in bounds]
        futures = [self._executor.submit(fn, lo, hi) for lo, hi in bounds[:-1]]
        last = fn(*bounds[-1])
        return [f.result() for f in futures] + [last]

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def __getstate__(self):  # pools do not pickle; a copy gets its own threads
        return {"num_threads": self.num_threads}

    def __setstate__(self, state):
        self.__init__(state["num_threads"])
