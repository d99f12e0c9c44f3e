"""Running a task's evaluations (``quadlit.tasks.registry.Evaluation``) with a policy."""

from __future__ import annotations

from typing import Any

import torch

from quadlit.envs.pool import ShardPool
from quadlit.tasks import evaluations, make_evaluation_task
from quadlit.tasks.registry import Evaluation
from quadlit.training.rollout import evaluate_policy


def run_evaluation(evaluation: Evaluation, task, policy: Any, obs_norm: Any, seed: int,
                   device: torch.device | str) -> dict[str, float]:
    """One evaluation's named values: its deterministic episodes on ``task`` (built for it with
    ``make_evaluation_task``), reset with ``seed``, summarised."""
    result = evaluate_policy(policy, obs_norm, task, seed, torch.device(device))
    return evaluation.summarize(result)


def evaluate_once(task_name: str, params: Any, policy: Any, obs_norm: Any, episodes: int, seed: int,
                  device: torch.device | str, name: str, pool: ShardPool | None = None) -> dict[str, float]:
    """Build, run and close evaluation ``name`` of a task ("" or e.g. "curve"); its values."""
    evaluation = next((e for e in evaluations(task_name, params, episodes) if e.name == name), None)
    if evaluation is None:
        raise ValueError(f"task {task_name!r} has no evaluation {name!r}")
    task = make_evaluation_task(task_name, evaluation, seed, pool)
    try:
        return run_evaluation(evaluation, task, policy, obs_norm, seed, device)
    finally:
        task.close()


def push_curve(policy: Any, obs_norm: Any, task_name: str, params: Any, episodes: int, seed: int,
               device: torch.device | str, pool: ShardPool | None = None) -> dict[float, float]:
    """The balance task's push-robustness curve of ``policy``: push m/s -> survival rate of
    ``episodes`` deterministic episodes each."""
    values = evaluate_once(task_name, params, policy, obs_norm, episodes, seed, device, "curve", pool)
    return {float(k.split("_", 1)[1]): v for k, v in values.items()}
