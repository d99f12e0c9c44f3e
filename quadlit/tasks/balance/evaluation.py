"""How the balance task is evaluated: episodes of the task as configured, and the
push-robustness curve (survival against push magnitude), all in one batch of environments."""

from __future__ import annotations

import dataclasses

import numpy as np

from quadlit.tasks.balance.params import BalanceParams
from quadlit.tasks.registry import Evaluation

#: Push magnitudes (m/s) of the push-robustness curve.
PUSH_CURVE = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
#: Seconds between the curve's pushes (drawn uniformly), whatever the training run uses: the curve
#: is one fixed benchmark, so runs trained with other push intervals stay comparable.
CURVE_PUSH_INTERVAL = (2.0, 4.0)


def curve_key(magnitude: float) -> str:
    """The name of the curve's value at ``magnitude`` m/s: ``push_1.5``."""
    return f"push_{magnitude:.1f}"


def balance_evaluations(params: BalanceParams, episodes: int) -> tuple[Evaluation, Evaluation]:
    """``episodes`` deterministic episodes of the task as configured (fixed push size: no jitter, no
    curriculum), and ``episodes`` per magnitude of ``PUSH_CURVE`` (one batch of
    ``episodes x len(PUSH_CURVE)`` environments, each with its own push magnitude; environments
    ``k * episodes ... (k + 1) * episodes - 1`` are pushed at ``PUSH_CURVE[k]``, every
    ``CURVE_PUSH_INTERVAL`` seconds whatever ``params`` say)."""
    fixed = dataclasses.replace(params, push_curriculum=False, push_jitter=0.0)
    scales = np.repeat(np.asarray(PUSH_CURVE, dtype=np.float64), episodes)

    def prepare(task) -> None:
        task.set_push_scales(scales)

    def summarize(result: dict[str, np.ndarray]) -> dict[str, float]:
        survived = np.asarray(result["survived"], dtype=np.float64).reshape(len(PUSH_CURVE), episodes)
        return {curve_key(m): float(s) for m, s in zip(PUSH_CURVE, survived.mean(axis=1))}

    def table(values: dict[str, float]) -> tuple[str, list[tuple[float, float]]]:
        return "push m/s", [(m, values[curve_key(m)]) for m in PUSH_CURVE]

    lo, hi = CURVE_PUSH_INTERVAL
    curve_params = dataclasses.replace(fixed, push_magnitude=1.0, push_interval_min=lo, push_interval_max=hi)
    curve = Evaluation("curve", curve_params, episodes * len(PUSH_CURVE),
                       prepare=prepare, summarize=summarize, title="push-robustness", table=table)
    return Evaluation("", fixed, episodes), curve
