"""The reach task: a batch of point-mass creatures with stamina chasing goals in a walled box.

Rules (the kernel in ``kernels.py`` implements them; ``reference.py`` restates them slowly):

* Action (3) in [-1, 1]: horizontal acceleration (x, y) and jump (z). The horizontal
  acceleration is ``accel_xy * a`` with its magnitude capped at ``max_accel`` and works on the
  ground and in the air. The jump uses only the positive part of ``a[2]`` and only from the
  ground: an upward acceleration ``accel_z * a[2]`` for that one step. Negative ``a[2]`` does
  nothing.
* Stamina: walking costs ``walk_stamina_cost * effort * dt`` (effort = horizontal acceleration /
  max_accel), a jump costs ``jump_stamina_cost * a[2]``. With too little stamina the creature
  gets the fraction of the commanded acceleration it can pay for, so with none it cannot
  accelerate at all (it still coasts, falls and slides). A step whose horizontal and jump
  efforts are both below ``idle_threshold`` is idle: stamina regenerates by
  ``stamina_regen * dt`` (up to ``max_stamina``) and the idle bonus is paid.
* Velocity: gravity only above the floor, downward speed capped at
  ``terminal_fall_velocity``; on the floor ground friction slows horizontal motion; in the air
  air friction and quadratic drag slow all motion; momentum damping everywhere; horizontal and
  upward speed capped at ``max_velocity``. Semi-implicit Euler with step ``dt``.
* Walls: the position is clamped into the box; velocity into a wall or the ceiling is
  removed and the penetration depth is penalised. Landing on the floor stops the fall.
* Reward (named terms, ``EnvSpec.reward_terms``): progress (distance to the goal closed this
  step x distance_reward_scale), proximity (linear ramp inside proximity_threshold), goal
  (goal_bonus when within goal_threshold; a new goal then spawns), wall (negative), stamina
  (negative, when stamina is exhausted at the end of the step), idle (idle_bonus).
* Episodes end only by time-out after ``max_steps`` (``truncated``); reach has no failure.
  ``terminated`` is set only for a non-finite state, which cannot happen with valid params.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from quadlit.envs.base import EnvSpec, StepResult, VecTask
from quadlit.envs.pool import ShardPool
from quadlit.envs.rng import seed_streams
from quadlit.tasks.reach import kernels
from quadlit.tasks.reach.params import ReachParams

_STATE_DTYPES = {
    "pos": np.float64,
    "vel": np.float64,
    "stamina": np.float64,
    "goal": np.float64,
    "prev_dist": np.float64,
    "step_count": np.int64,
    "ep_return": np.float64,
    "goals": np.int64,
    "rng_state": np.uint64,
}
_VECTOR_FIELDS = ("pos", "vel", "goal")


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


@dataclass(frozen=True)
class Creature:
    """Read-only snapshot of one creature (arrays are read-only copies).

    Args:
        id: environment index.
        position: (3,) float64, metres, world frame (z up).
        velocity: (3,) float64, m/s.
        yaw: heading in radians, ``atan2(vy, vx)`` of the horizontal velocity; 0 when the
            horizontal speed is below 1e-6 m/s.
        orientation: (4,) float64 unit quaternion (w, x, y, z) of the rotation by ``yaw`` about z.
        stamina: stamina points in [0, max_stamina].
        goal: (3,) float64, the current goal position.
        lstm_state: ``(h, c)`` of this environment when the caller passed one, else None.
    """

    id: int
    position: np.ndarray
    velocity: np.ndarray
    yaw: float
    orientation: np.ndarray
    stamina: float
    goal: np.ndarray
    lstm_state: tuple[np.ndarray, np.ndarray] | None = None


def _lstm_row(x: Any, i: int) -> np.ndarray:
    """Row i of an LSTM state array/tensor shaped (N, H) or (layers, N, H), as a read-only copy."""
    row = x[i] if x.ndim <= 2 else x[:, i]
    if hasattr(row, "detach"):  # a torch tensor; no torch import needed here
        row = row.detach().cpu().numpy()
    return _readonly(np.asarray(row))


def reach_spec(params: ReachParams) -> EnvSpec:
    """The static description of the reach task with ``params``."""
    return EnvSpec(
        name="reach",
        obs_dim=kernels.OBS_DIM,
        action_dim=kernels.ACTION_DIM,
        reward_terms=kernels.REWARD_TERMS,
        episode_metrics=("return", "length", "goals"),
        max_episode_steps=params.max_steps,
        control_dt=params.dt,
        obs_segments=(("goal_relative", 3), ("position", 3), ("stamina", 1)),
        action_names=("accel_x", "accel_y", "accel_z"),
        obs_low=-1.0,
        obs_high=1.0,
    )


class ReachTask(VecTask):
    """``num_envs`` reach environments stepped by one fused kernel call per shard.

    Args:
        num_envs: environments in the batch (>= 1).
        params: task parameters.
        seed: master seed of the per-environment random streams.
        pool: shard thread pool; ``None`` makes a single-threaded one owned by the task.
    """

    def __init__(
        self,
        num_envs: int,
        params: ReachParams = ReachParams(),
        seed: int = 0,
        pool: ShardPool | None = None,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        if not isinstance(params, ReachParams):
            raise TypeError(f"params must be a ReachParams, got {type(params).__name__}")
        n = int(num_envs)
        self.num_envs = n
        self.params = params
        self.spec = reach_spec(params)
        self._owns_pool = pool is None
        self.pool = ShardPool(1) if pool is None else pool
        self._p = kernels.pack_params(params)

        # State, one row per environment.
        self._state = {
            name: np.zeros((n, 3) if name in _VECTOR_FIELDS else (n,), dtype=dtype)
            for name, dtype in _STATE_DTYPES.items()
        }
        # Outputs, overwritten every step.
        self._obs = np.zeros((n, kernels.OBS_DIM), dtype=np.float32)
        self._final_obs = np.zeros((n, kernels.OBS_DIM), dtype=np.float32)
        self._reward = np.zeros(n, dtype=np.float32)
        self._reward_terms = np.zeros((n, kernels.NUM_TERMS), dtype=np.float32)
        self._terminated = np.zeros(n, dtype=np.bool_)
        self._truncated = np.zeros(n, dtype=np.bool_)
        self._episode = {name: np.zeros(n, dtype=np.float32) for name in self.spec.episode_metrics}
        self._actions = np.zeros((n, kernels.ACTION_DIM), dtype=np.float32)
        self.reset(seed)

    # ---- VecTask ----------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> np.ndarray:
        """Reset every environment; with ``seed``, reseed the per-env streams first.

        Returns: observations, shape (N, 7), float32 (the task's buffer: copy what you keep).
        """
        s = self._state
        if seed is not None:
            s["rng_state"][:] = seed_streams(seed, self.num_envs)
        p = self._p

        def shard(lo: int, hi: int) -> None:
            kernels.reset_shard(
                p, s["pos"][lo:hi], s["vel"][lo:hi], s["stamina"][lo:hi], s["goal"][lo:hi],
                s["prev_dist"][lo:hi], s["step_count"][lo:hi], s["ep_return"][lo:hi],
                s["goals"][lo:hi], s["rng_state"][lo:hi], self._obs[lo:hi],
            )  # fmt: skip

        self.pool.run(shard, self.num_envs)
        return self._obs

    def step(self, actions: np.ndarray) -> StepResult:
        """Advance every environment by one control step.

        Args:
            actions: shape (N, 3), in [-1, 1] (clipped; NaN and ±inf count as 0).

        Returns: a ``StepResult`` over the task's buffers (overwritten by the next step). Beyond
        the contract, ``final_obs`` and ``episode`` are filled for every row: the observation
        before any auto-reset and the episode-so-far metrics (the finished episode's where done).
        """
        actions = np.asarray(actions)
        if actions.shape != self._actions.shape:
            raise ValueError(f"actions must have shape {self._actions.shape}, got {actions.shape}")
        if actions.dtype == np.float32 and actions.flags.c_contiguous:
            a = actions
        else:
            np.copyto(self._actions, actions, casting="unsafe")
            a = self._actions
        s, p, ep = self._state, self._p, self._episode
        ep_return, ep_length, ep_goals = ep["return"], ep["length"], ep["goals"]

        def shard(lo: int, hi: int) -> int:
            return kernels.step_shard(
                p, a[lo:hi],
                s["pos"][lo:hi], s["vel"][lo:hi], s["stamina"][lo:hi], s["goal"][lo:hi],
                s["prev_dist"][lo:hi], s["step_count"][lo:hi], s["ep_return"][lo:hi],
                s["goals"][lo:hi], s["rng_state"][lo:hi],
                self._obs[lo:hi], self._reward[lo:hi], self._reward_terms[lo:hi],
                self._terminated[lo:hi], self._truncated[lo:hi], self._final_obs[lo:hi],
                ep_return[lo:hi], ep_length[lo:hi], ep_goals[lo:hi],
            )  # fmt: skip

        num_nonfinite = sum(self.pool.run(shard, self.num_envs))
        return StepResult(
            obs=self._obs,
            reward=self._reward,
            terminated=self._terminated,
            truncated=self._truncated,
            final_obs=self._final_obs,
            reward_terms=self._reward_terms,
            episode=dict(ep),
            num_nonfinite=int(num_nonfinite),
        )

    def state_dict(self) -> dict[str, Any]:
        """Copies of every state array (plus num_envs and the params) to continue exactly."""
        out: dict[str, Any] = {name: a.copy() for name, a in self._state.items()}
        out["num_envs"] = self.num_envs
        out["params"] = dict(vars(self.params))
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()`` output (same num_envs); observations are recomputed."""
        if int(state.get("num_envs", -1)) != self.num_envs:
            raise ValueError(f"state has num_envs={state.get('num_envs')}, task has {self.num_envs}")
        for name, dst in self._state.items():
            if name not in state:
                raise ValueError(f"state is missing '{name}'")
            src = np.asarray(state[name])
            if src.shape != dst.shape:
                raise ValueError(f"state['{name}'] has shape {src.shape}, expected {dst.shape}")
            dst[...] = src.astype(dst.dtype, copy=False)
        s, p = self._state, self._p
        self.pool.run(
            lambda lo, hi: kernels.write_obs_shard(
                p, s["pos"][lo:hi], s["stamina"][lo:hi], s["goal"][lo:hi], self._obs[lo:hi]
            ),
            self.num_envs,
        )

    def close(self) -> None:
        if self._owns_pool:
            self.pool.close()

    # ---- inspection -------------------------------------------------------------------------
    @property
    def observations(self) -> np.ndarray:
        """Current observations, shape (N, 7), float32, read-only view."""
        view = self._obs.view()
        view.flags.writeable = False
        return view

    def render_frame(self, env_index: int = 0):
        """A ``ReachFrame`` of env ``env_index`` (creature, goal, box, stamina), for the renderer."""
        from quadlit.render.frames import reach_frames

        return reach_frames(self, int(env_index))

    def creature(self, i: int, lstm_state: tuple[Any, Any] | None = None) -> Creature:
        """Read-only snapshot of environment ``i``.

        Args:
            i: environment index in [0, N).
            lstm_state: optional ``(h, c)`` for the whole batch, each shaped (N, H) or
                (layers, N, H) (NumPy or torch); row ``i`` is copied into the result.
        """
        if not 0 <= i < self.num_envs:
            raise IndexError(f"creature index {i} out of range [0, {self.num_envs})")
        s = self._state
        vx, vy = float(s["vel"][i, 0]), float(s["vel"][i, 1])
        yaw = math.atan2(vy, vx) if math.hypot(vx, vy) >= 1e-6 else 0.0
        quat = np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])
        lstm = None
        if lstm_state is not None:
            h, c = lstm_state
            lstm = (_lstm_row(h, i), _lstm_row(c, i))
        return Creature(
            id=int(i),
            position=_readonly(s["pos"][i]),
            velocity=_readonly(s["vel"][i]),
            yaw=yaw,
            orientation=_readonly(quat),
            stamina=float(s["stamina"][i]),
            goal=_readonly(s["goal"][i]),
            lstm_state=lstm,
        )
