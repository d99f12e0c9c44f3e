"""How the balance task is evaluated: episodes of the task as configured, and the
push-robustness curve (survival against push magnitude), all in one batch of environments."""

from __future__ import annotations

import dataclasses

import numpy as np

from quadlit.tasks.balance.params import BalanceParams
from quadlit.tasks.registry import Evaluation

#: Push magnitudes (m/s) of the push-robustness curve.
PUSH_CURVE = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
#: Push magnitudes (m/s) the deployment guard checks (``balance_guard``): the curve's from 1.0 m/s.
GUARD_PUSHES = (1.0, 1.5, 2.0, 2.5, 3.0)
#: Control steps of a guard episode (6 s at 50 Hz: one or two pushes, 2-4 s apart).
GUARD_STEPS = 300
#: Seconds between the curve's pushes (drawn uniformly), whatever the training run uses: the curve
#: is one fixed benchmark, so runs trained with other push intervals (or observation noise, which
#: the curve leaves out) stay comparable.
CURVE_PUSH_INTERVAL = (2.0, 4.0)


def curve_key(magnitude: float) -> str:
    """The name of the curve's value at ``magnitude`` m/s: ``push_1.5``."""
    return f"push_{magnitude:.1f}"


def _push_batch(name: str, params: BalanceParams, magnitudes: tuple[float, ...], episodes: int,
                max_steps: int | None = None, title: str | None = None) -> Evaluation:
    """``episodes`` deterministic episodes at each of ``magnitudes`` (one batch of environments;
    environments ``k * episodes ... (k + 1) * episodes - 1`` are pushed at ``magnitudes[k]``, every
    ``CURVE_PUSH_INTERVAL`` seconds whatever ``params`` say, and observed without noise whatever
    ``obs_noise`` a run trains with), summarised as survival per magnitude."""
    lo, hi = CURVE_PUSH_INTERVAL
    batch_params = dataclasses.replace(params, push_curriculum=False, push_jitter=0.0, push_magnitude=1.0,
                                       push_interval_min=lo, push_interval_max=hi, obs_noise=0.0)
    if max_steps is not None:
        batch_params = dataclasses.replace(batch_params, max_steps=max_steps)
    scales = np.repeat(np.asarray(magnitudes, dtype=np.float64), episodes)

    def prepare(task) -> None:
        task.set_push_scales(scales)

    def summarize(result: dict[str, np.ndarray]) -> dict[str, float]:
        survived = np.asarray(result["survived"], dtype=np.float64).reshape(len(magnitudes), episodes)
        return {curve_key(m): float(s) for m, s in zip(magnitudes, survived.mean(axis=1))}

    def table(values: dict[str, float]) -> tuple[str, list[tuple[float, float]]]:
        return "push m/s", [(m, values[curve_key(m)]) for m in magnitudes]

    return Evaluation(name, batch_params, episodes * len(magnitudes), prepare=prepare, summarize=summarize,
                      title=title, table=table if title is not None else None)


def push_evaluation(params: BalanceParams, magnitudes: tuple[float, ...] = PUSH_CURVE, episodes: int = 64,
                    name: str = "curve") -> Evaluation:
    """The push-robustness curve's deterministic episodes at any ``magnitudes`` (m/s): with the
    default magnitudes, the curve of ``balance_evaluations`` itself (the same episodes)."""
    return _push_batch(name, params, tuple(float(m) for m in magnitudes), episodes)


def balance_evaluations(params: BalanceParams, episodes: int) -> tuple[Evaluation, Evaluation]:
    """``episodes`` deterministic episodes of the task as configured (fixed push size: no jitter, no
    curriculum), and ``episodes`` per magnitude of ``PUSH_CURVE`` (one batch of
    ``episodes x len(PUSH_CURVE)`` environments, each with its own push magnitude; environments
    ``k * episodes ... (k + 1) * episodes - 1`` are pushed at ``PUSH_CURVE[k]``, every
    ``CURVE_PUSH_INTERVAL`` seconds whatever ``params`` say)."""
    fixed = dataclasses.replace(params, push_curriculum=False, push_jitter=0.0)
    curve = _push_batch("curve", fixed, PUSH_CURVE, episodes, title="push-robustness")
    return Evaluation("", fixed, episodes), curve


def balance_guard(params: BalanceParams, episodes: int) -> Evaluation:
    """The deployment guard's episodes: ``episodes`` short episodes (``GUARD_STEPS`` control steps,
    one or two pushes) at each of ``GUARD_PUSHES``, pushed as the curve pushes; survival per
    magnitude. Its own seed keeps them apart from the curve's episodes."""
    return _push_batch("guard", params, GUARD_PUSHES, episodes, max_steps=GUARD_STEPS)
