"""Task registry: the trainer knows tasks only by name, their ``TaskDef`` and the VecTask contract.

Adding a task: a folder ``quadlit/tasks/<name>/`` with its parameters (``params.py``, a frozen
dataclass), its kernels, its ``VecTask`` (``task.py``) and its ``TaskDef`` (in its
``__init__.py``), plus one line in ``TASKS`` below and a ``data.<name>`` argument of the data
module (so configs can set its parameters, typed and documented).
"""

from __future__ import annotations

from typing import Any, Callable

from quadlit.envs.base import EnvSpec, VecTask
from quadlit.envs.pool import ShardPool
from quadlit.tasks import balance, reach
from quadlit.tasks.registry import Evaluation, Mirror, TaskDef

#: Every task by name.
TASKS: dict[str, TaskDef] = {"reach": reach.TASK, "balance": balance.TASK}
TASK_NAMES = tuple(TASKS)


def task_def(name: str) -> TaskDef:
    """The registered task ``name``; a one-line ValueError names the known ones otherwise."""
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        raise ValueError(f"data.task must be one of {', '.join(TASK_NAMES)}, got {name!r}") from None


def task_spec(name: str, params: Any) -> EnvSpec:
    """The static spec of task ``name`` with ``params`` (no environments are built)."""
    return task_def(name).spec(params)


def task_params_from_dict(name: str, values: dict[str, Any]) -> Any:
    """The parameter record of task ``name`` from a plain dict (as saved in checkpoints)."""
    return task_def(name).params_type(**values)


def task_extras(name: str, params: Any) -> dict:
    """What a checkpoint of task ``name`` keeps besides its parameters (``TaskDef.extras``)."""
    extras = task_def(name).extras
    return {} if extras is None else extras(params)


def restore_task_extras(name: str, params: Any, extras: dict | None) -> None:
    """Make tasks of ``name`` built later with ``params`` use a checkpoint's ``extras``
    (``TaskDef.restore_extras``; a one-line ConfigError where they disagree with ``params``)."""
    restore = task_def(name).restore_extras
    if restore is not None and extras:
        restore(params, extras)


def evaluations(name: str, params: Any, episodes: int) -> tuple[Evaluation, ...]:
    """The evaluation batches of task ``name``: "" (the task as configured, made deterministic in
    what it randomises over time) and the task's own (the balance task's push-robustness curve)."""
    return task_def(name).evaluations(params, episodes)


def require_guard(name: str) -> Callable[[Any, int], Evaluation]:
    """Task ``name``'s guard evaluation (``TaskDef.guard``); a one-line ValueError where it has none."""
    guard = task_def(name).guard
    if guard is None:
        raise ValueError(f"model.guard_tolerance: task {name!r} has no guard evaluation (the balance task has one); "
                         f"leave model.guard_tolerance null")
    return guard


def require_mirror(name: str) -> Mirror:
    """Task ``name``'s mirror symmetry (``TaskDef.mirror``); a one-line ValueError where it has none."""
    mirror = task_def(name).mirror
    if mirror is None:
        raise ValueError(f"model.mirror_coef: task {name!r} has no mirror symmetry (the balance task has one); "
                         f"leave model.mirror_coef 0")
    return mirror


def guard_evaluation(name: str, params: Any, episodes: int) -> Evaluation:
    """The deployment guard's episodes of task ``name`` (``require_guard``)."""
    return require_guard(name)(params, episodes)


def make_task(name: str, num_envs: int, params: Any, seed: int, pool: ShardPool | None = None) -> VecTask:
    """Build ``num_envs`` environments of task ``name``."""
    return task_def(name).task_class(num_envs=num_envs, params=params, seed=seed, pool=pool)


def make_evaluation_task(name: str, evaluation: Evaluation, seed: int, pool: ShardPool | None = None) -> VecTask:
    """The environments of one ``Evaluation`` of task ``name``, prepared."""
    task = make_task(name, evaluation.num_envs, evaluation.params, seed, pool)
    if evaluation.prepare is not None:
        evaluation.prepare(task)
    return task
