"""What a task is to the rest of quadlit: a ``TaskDef`` (its parameter record, its spec, its
``VecTask`` class, its evaluations), registered by name in ``quadlit.tasks.TASKS``.

The trainer, evaluation, Gymnasium, ``play``, ``record`` and the renderer know a task only
through its ``TaskDef`` and the ``VecTask`` contract (``quadlit/envs/base.py``); a task draws
itself with ``VecTask.render_frame``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from quadlit.envs.base import EnvSpec, VecTask


def mean_of_every_metric(result: dict[str, np.ndarray]) -> dict[str, float]:
    """The mean of each episode metric over every evaluation episode."""
    return {k: float(np.mean(v)) for k, v in result.items()}


@dataclass(frozen=True)
class Evaluation:
    """One batch of deterministic evaluation episodes (one per environment) and how its
    results are named.

    Attributes:
        name: "" for the task as configured (logged as ``eval/<key>``); otherwise the results are
            logged as ``eval_<name>/<key>`` (e.g. "curve": ``eval_curve/push_1.5``).
        params: the task parameters of these episodes.
        num_envs: how many episodes.
        prepare: called with the built ``VecTask`` before its episodes start (e.g. to give each
            environment its own push magnitude); None: nothing to do.
        summarize: per-environment episode metrics (name -> (num_envs,) array) -> named values.
        title: what the values are, for the printed table and the plot (None: no table).
        table: values -> (x label, [(x, value)]) for the table and plot, e.g. survival against push.
    """

    name: str
    params: Any
    num_envs: int
    prepare: Callable[[VecTask], None] | None = None
    summarize: Callable[[dict[str, np.ndarray]], dict[str, float]] = mean_of_every_metric
    title: str | None = None
    table: Callable[[dict[str, float]], tuple[str, list[tuple[float, float]]]] | None = None


def plain_evaluations(params: Any, episodes: int) -> tuple[Evaluation, ...]:
    """The evaluation every task has: ``episodes`` episodes of the task as configured."""
    return (Evaluation("", params, episodes),)


@dataclass(frozen=True)
class TaskDef:
    """A registered task.

    Attributes:
        name: the name configs use (``data.task``).
        params_type: its frozen parameter dataclass (``params_type(**dict)`` validates).
        spec: params -> ``EnvSpec``.
        task_class: the ``VecTask``, built as ``task_class(num_envs=, params=, seed=, pool=)``.
        evaluations: (params, episodes) -> the ``Evaluation`` batches validate runs.
        guard: (params, episodes) -> the short ``Evaluation`` of the deployment guard
            (``model.guard_tolerance``): each value a survival-like score in [0, 1], higher is
            better; None: the task has none (the guard cannot be used).
    """

    name: str
    params_type: type
    spec: Callable[[Any], EnvSpec]
    task_class: type
    evaluations: Callable[[Any, int], tuple[Evaluation, ...]] = plain_evaluations
    guard: Callable[[Any, int], Evaluation] | None = None
