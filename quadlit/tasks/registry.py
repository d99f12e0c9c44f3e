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


class Mirror:
    """A task's left-right mirror symmetry, as signed permutations of the observation and of the
    action: ``mirrored[..., i] = sign[i] * x[..., perm[i]]``. For a robot that is its own mirror
    image, a policy that is equally good for a state and its mirror image maps the mirrored
    observation to the mirrored action.

    Args:
        obs_perm, obs_sign: (O,) each; action_perm, action_sign: (A,) each. Each must be an
            involution (mirroring twice gives the input back); refused otherwise.
    """

    def __init__(self, obs_perm, obs_sign, action_perm, action_sign) -> None:
        self.obs_perm, self.obs_sign = self._checked("observation", obs_perm, obs_sign)
        self.action_perm, self.action_sign = self._checked("action", action_perm, action_sign)
        self._torch: dict[tuple[str, str], tuple[Any, Any]] = {}

    @staticmethod
    def _checked(what: str, perm, sign) -> tuple[np.ndarray, np.ndarray]:
        perm, sign = np.asarray(perm, dtype=np.int64), np.asarray(sign, dtype=np.float64)
        n = perm.shape[0]
        if (perm.shape != (n,) or sign.shape != (n,) or sorted(perm.tolist()) != list(range(n))
                or not np.isin(sign, (-1.0, 1.0)).all()):
            raise ValueError(f"a mirror's {what} map must be a permutation of 0..n-1 with signs +-1")
        if not (np.array_equal(perm[perm], np.arange(n)) and np.array_equal(sign * sign[perm], np.ones(n))):
            raise ValueError(f"a mirror's {what} map must be an involution (mirroring twice gives the input back)")
        return perm, sign

    def obs(self, x):
        """Mirror observations, (..., O): a NumPy array or a torch tensor (same type back)."""
        return self._apply("obs", x, self.obs_perm, self.obs_sign)

    def action(self, x):
        """Mirror actions (or pre-squash action means), (..., A)."""
        return self._apply("action", x, self.action_perm, self.action_sign)

    def _apply(self, name: str, x, perm: np.ndarray, sign: np.ndarray):
        if isinstance(x, np.ndarray):
            return x[..., perm] * sign.astype(x.dtype)
        import torch

        key = (name, str(x.device))
        if key not in self._torch:
            self._torch[key] = (torch.as_tensor(perm, device=x.device), torch.as_tensor(sign, device=x.device))
        index, signs = self._torch[key]
        return x.index_select(-1, index) * signs.to(x.dtype)


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
        mirror: the task's left-right symmetry (``Mirror``) for ``model.mirror_coef``; None: the
            task has none.
        extras: params -> plain data a checkpoint keeps besides the parameters, so that the run
            can be rebuilt from the checkpoint alone (the balance task: an imported robot); None:
            nothing.
        restore_extras: (params, that data) -> None: make tasks built later with ``params`` use
            it (and check it against what ``params`` name); None: nothing to restore.
    """

    name: str
    params_type: type
    spec: Callable[[Any], EnvSpec]
    task_class: type
    evaluations: Callable[[Any, int], tuple[Evaluation, ...]] = plain_evaluations
    guard: Callable[[Any, int], Evaluation] | None = None
    mirror: Mirror | None = None
    extras: Callable[[Any], dict] | None = None
    restore_extras: Callable[[Any, dict], None] | None = None
