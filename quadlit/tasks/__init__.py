"""Task registry: the trainer knows tasks only by name, spec and the VecTask contract."""

from __future__ import annotations

from typing import Any

from quadlit.envs.base import EnvSpec, VecTask
from quadlit.envs.pool import ShardPool

TASK_NAMES = ("reach",)


def _check(name: str) -> None:
    if name not in TASK_NAMES:
        raise ValueError(f"data.task must be one of {', '.join(TASK_NAMES)}, got {name!r}")


def task_spec(name: str, params: Any) -> EnvSpec:
    """The static spec of task ``name`` with ``params`` (no environments are built)."""
    _check(name)
    if name == "reach":
        from quadlit.tasks.reach import reach_spec

        return reach_spec(params)
    raise AssertionError(name)


def make_task(name: str, num_envs: int, params: Any, seed: int, pool: ShardPool | None = None) -> VecTask:
    """Build ``num_envs`` environments of task ``name``."""
    _check(name)
    if name == "reach":
        from quadlit.tasks.reach import ReachTask

        return ReachTask(num_envs=num_envs, params=params, seed=seed, pool=pool)
    raise AssertionError(name)
