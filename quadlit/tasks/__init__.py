"""Task registry: the trainer knows tasks only by name, spec and the VecTask contract."""

from __future__ import annotations

from typing import Any

from quadlit.envs.base import EnvSpec, VecTask
from quadlit.envs.pool import ShardPool

TASK_NAMES = ("reach", "balance")


def _check(name: str) -> None:
    if name not in TASK_NAMES:
        raise ValueError(f"data.task must be one of {', '.join(TASK_NAMES)}, got {name!r}")


def task_spec(name: str, params: Any) -> EnvSpec:
    """The static spec of task ``name`` with ``params`` (no environments are built)."""
    _check(name)
    if name == "reach":
        from quadlit.tasks.reach import reach_spec

        return reach_spec(params)
    if name == "balance":
        from quadlit.tasks.balance import balance_spec

        return balance_spec(params)
    raise AssertionError(name)


def task_params_from_dict(name: str, values: dict[str, Any]) -> Any:
    """The parameter record of task ``name`` from a plain dict (as saved in checkpoints)."""
    _check(name)
    if name == "reach":
        from quadlit.tasks.reach import ReachParams

        return ReachParams(**values)
    if name == "balance":
        from quadlit.tasks.balance import BalanceParams

        return BalanceParams(**values)
    raise AssertionError(name)


#: Push magnitudes (m/s) of the balance task's push-robustness curve.
PUSH_CURVE = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)


def evaluation_params(name: str, params: Any) -> dict[str, Any]:
    """The parameter sets evaluation runs: "" (the task as configured, made deterministic in
    what it randomises over time) plus named variants (the balance task's push-robustness curve,
    one fixed push magnitude each)."""
    _check(name)
    if name == "balance":
        import dataclasses

        fixed = dataclasses.replace(params, push_curriculum=False, push_jitter=0.0)
        out = {"": fixed}
        out.update({f"push_{m:.1f}": dataclasses.replace(fixed, push_magnitude=m) for m in PUSH_CURVE})
        return out
    return {"": params}


def make_task(name: str, num_envs: int, params: Any, seed: int, pool: ShardPool | None = None) -> VecTask:
    """Build ``num_envs`` environments of task ``name``."""
    _check(name)
    if name == "reach":
        from quadlit.tasks.reach import ReachTask

        return ReachTask(num_envs=num_envs, params=params, seed=seed, pool=pool)
    if name == "balance":
        from quadlit.tasks.balance import BalanceTask

        return BalanceTask(num_envs=num_envs, params=params, seed=seed, pool=pool)
    raise AssertionError(name)
