"""The one environment contract every task implements.

A task is a batch of ``num_envs`` environments held as structure-of-arrays state (one row per
environment) and advanced by fused Numba kernels: one kernel call per shard advances every
environment of that shard by one control step, including reward, observation, termination
and auto-reset. The trainer sees only this contract.

Shapes: ``N`` = num_envs, ``O`` = obs_dim, ``A`` = action_dim, ``K`` = len(reward_terms).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class EnvSpec:
    """Static description of a task, enough for the trainer to size its networks.

    Args:
        name: task name as used in configs ("reach", "balance").
        obs_dim: length of one observation vector.
        action_dim: length of one action vector; actions live in [-1, 1].
        reward_terms: names of the reward terms, in the column order of ``StepResult.reward_terms``.
        episode_metrics: names of per-episode metrics reported when an episode ends
            (always starts with "return" and "length").
        max_episode_steps: control steps before a time-out (truncation).
        control_dt: seconds per control step.
        obs_segments: the observation layout, ((name, length), ...) in order, summing to obs_dim.
        action_names: one name per action dimension.
        obs_low: lower bound of every observation value (-inf: unbounded).
        obs_high: upper bound of every observation value (inf: unbounded).
        privileged_dim: length of the privileged observation (what only the simulator knows, for an
            asymmetric critic; never given to the policy); 0: the task has none.
        privileged_segments: its layout, ((name, length), ...), summing to privileged_dim.
    """

    name: str
    obs_dim: int
    action_dim: int
    reward_terms: tuple[str, ...]
    episode_metrics: tuple[str, ...] = ("return", "length")
    max_episode_steps: int = 1000
    control_dt: float = 0.02
    obs_segments: tuple[tuple[str, int], ...] = ()
    action_names: tuple[str, ...] = ()
    obs_low: float = float("-inf")
    obs_high: float = float("inf")
    privileged_dim: int = 0
    privileged_segments: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        if self.obs_segments and sum(n for _, n in self.obs_segments) != self.obs_dim:
            raise ValueError(f"{self.name}: obs_segments cover {sum(n for _, n in self.obs_segments)} values, "
                             f"obs_dim is {self.obs_dim}")
        if self.privileged_segments and sum(n for _, n in self.privileged_segments) != self.privileged_dim:
            raise ValueError(f"{self.name}: privileged_segments cover {sum(n for _, n in self.privileged_segments)} "
                             f"values, privileged_dim is {self.privileged_dim}")
        if self.action_names and len(self.action_names) != self.action_dim:
            raise ValueError(f"{self.name}: {len(self.action_names)} action names for action_dim {self.action_dim}")


@dataclass
class StepResult:
    """What ``VecTask.step`` returns. Arrays are owned by the task and overwritten on the next
    step: copy what you keep.

    Attributes:
        obs: observation after the step, shape (N, O), float32. For an environment whose
            episode ended this step it is already the first observation of the next episode.
        reward: shape (N,), float32, sum of the scaled reward terms.
        terminated: shape (N,), bool: the episode ended by failure (no bootstrap).
        truncated: shape (N,), bool: the episode ended by time-out (bootstrap from final_obs).
        final_obs: shape (N, O), float32: the last observation of the ended episode; valid only
            where ``terminated | truncated``.
        reward_terms: shape (N, K), float32, each scaled term of this step's reward.
        episode: per-episode metrics, each shape (N,), float32, valid only where an episode
            ended this step (keys: ``EnvSpec.episode_metrics``).
        num_nonfinite: how many environments had a non-finite physics state this step (they
            were reset and their episode counted as terminated).
        privileged: shape (N, P), float32, the privileged observation after the step (as ``obs``);
            None when the task has none (``EnvSpec.privileged_dim == 0``).
        final_privileged: shape (N, P), float32, as ``final_obs``; None when the task has none.
    """

    obs: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    final_obs: np.ndarray
    reward_terms: np.ndarray
    episode: dict[str, np.ndarray] = field(default_factory=dict)
    num_nonfinite: int = 0
    privileged: np.ndarray | None = None
    final_privileged: np.ndarray | None = None

    @property
    def done(self) -> np.ndarray:
        """Shape (N,), bool: an episode ended this step, by failure or time-out."""
        return self.terminated | self.truncated


class VecTask(abc.ABC):
    """A batch of environments of one task.

    Subclasses own the state arrays and a ``ShardPool``; ``step`` must be one fused kernel
    call per shard. Environment ``i`` draws its random numbers only from its own stream
    (``rng_state[i]``), so results do not depend on how environments are split into shards.

    A task that can be drawn also provides ``render_frame(env_index) -> Frame`` (a
    ``quadlit.render.frames`` record in world coordinates); the renderer, ``play``, ``record`` and the
    evaluation videos use only that.
    """

    spec: EnvSpec
    num_envs: int

    @abc.abstractmethod
    def reset(self, seed: int | None = None) -> np.ndarray:
        """Reset every environment (reseeding the per-env streams when ``seed`` is given).

        Returns: observations, shape (N, O), float32.
        """

    @abc.abstractmethod
    def step(self, actions: np.ndarray) -> StepResult:
        """Advance every environment by one control step.

        Args:
            actions: shape (N, A), float32 in [-1, 1] (values outside are clipped).
        """

    def privileged(self) -> np.ndarray | None:
        """The current privileged observation (after the last ``reset`` or ``step``), shape (N, P),
        float32; None when the task has none."""
        return None

    def pushed(self) -> np.ndarray | None:
        """Shape (N,), bool: a push (an outside kick the observation does not show) landed in
        the last ``step``; None when the task has no pushes. Where an episode ended in that
        step it may say False."""
        return None

    def set_progress(self, env_steps: int) -> None:
        """Told before every training rollout: the run's env-steps so far (every rank's together).
        A task whose parameters follow a schedule over training sets them from it, so a resumed run
        continues the schedule exactly; the default ignores it."""

    @abc.abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Every array and counter needed to continue exactly where this batch is (NumPy
        arrays, copied)."""

    @abc.abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned (same num_envs)."""

    def close(self) -> None:
        """Release threads or other resources."""
