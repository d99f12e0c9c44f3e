"""The world model's guess of where the robot will be: a translucent "ghost" half a second ahead.

From the robot's real state now, the world model is rolled out open loop (``WorldModel``:
encode the last observations once, then ``step_latent`` / ``decode`` per step) while the policy
acts on the world model's own predictions (its recurrent state copied, its mean action), for
``steps`` control steps. The ghost's pose is read from the predicted observations (balance's
layout, ``OBS_SLICES``): roll and pitch from the predicted gravity direction; yaw and position
integrated from the predicted trunk velocities, starting from the real pose; joint angles from the
predicted joint offsets. A ghost that keeps pace with the robot says the model has learnt the
dynamics under this policy; one that drifts off shows where it has not.

Shapes: O = obs_dim, A = action_dim, K = the world model's history.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import numpy as np
import torch

from quadlit.models.world_model import history_inputs

#: How far ahead the ghost is drawn, seconds.
GHOST_AHEAD_S = 0.5


def quat_from_gravity(gravity_trunk: np.ndarray, yaw: float) -> np.ndarray:
    """The trunk orientation (w, x, y, z) whose gravity direction in the trunk frame is
    ``gravity_trunk`` (3,) (any length > 0; normalised here) and whose heading is ``yaw`` (rad):
    R = Rz(yaw) Ry(pitch) Rx(roll) with R^T (0, 0, -1) = gravity_trunk / |gravity_trunk|."""
    g = np.asarray(gravity_trunk, dtype=np.float64)
    norm = float(np.linalg.norm(g))
    if not norm > 1e-9:
        raise ValueError(f"gravity_trunk must have a length > 0, got {g}")
    gx, gy, gz = g / norm
    pitch = math.asin(float(np.clip(gx, -1.0, 1.0)))
    roll = math.atan2(-gy, -gz)
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return np.array([cy * cp * cr + sy * sp * sr, cy * cp * sr - sy * sp * cr,
                     cy * sp * cr + sy * cp * sr, sy * cp * cr - cy * sp * sr])


def yaw_of(quat: np.ndarray) -> float:
    """Heading (rad, about z) of an orientation (w, x, y, z)."""
    w, x, y, z = (float(v) for v in quat)
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def rotation(quat: np.ndarray) -> np.ndarray:
    """(3, 3) trunk -> world rotation of a unit quaternion (w, x, y, z)."""
    w, x, y, z = (float(v) for v in quat)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def pose_along(observations: np.ndarray, pos: np.ndarray, quat: np.ndarray, dt: float,
               slices: dict[str, tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """The trunk pose after the predicted observations ``observations`` (S, O) (raw units, one per
    control step of ``dt`` s), starting from the real pose ``pos`` (3,), ``quat`` (4,): each step's
    orientation from its gravity direction and the heading so far, the heading advanced by the
    world yaw rate, the position by the world velocity (both from the trunk-frame velocities).
    Returns (pos (3,), quat (4,))."""
    g0, g1 = slices["gravity_trunk"]
    v0, v1 = slices["lin_vel_trunk"]
    w0, w1 = slices["ang_vel_trunk"]
    pos = np.array(pos, dtype=np.float64)
    yaw = yaw_of(quat)
    for obs in observations:
        q = quat_from_gravity(obs[g0:g1], yaw)
        r = rotation(q)
        pos = pos + dt * (r @ obs[v0:v1])
        yaw = yaw + dt * float((r @ obs[w0:w1])[2])
    last = observations[-1] if len(observations) else None
    quat = quat if last is None else quat_from_gravity(last[g0:g1], yaw)
    return pos, quat


class Ghost:
    """Imagines the robot ``steps`` control steps ahead with a world model and the policy.

    Args:
        world_model: a ``WorldModel`` (its ``history`` says how many observations it reads).
        policy: ``act(obs, state, episode_start, deterministic, generator) -> (action, ..., state)``.
        obs_norm: the normaliser the policy and the world model were trained with (``RunningNorm``:
            its ``denormalize`` turns predictions back into units; a plain callable is taken as
            the identity there).
        obs_slices: the observation layout (balance's ``OBS_SLICES``).
        default_q: (12,) the robot's joint angles at zero offset, rad.
        control_dt: seconds per control step.
        steps: control steps ahead (default: ``GHOST_AHEAD_S`` worth).
    """

    def __init__(self, world_model: Any, policy: Any, obs_norm: Callable[[torch.Tensor], torch.Tensor],
                 obs_slices: dict[str, tuple[int, int]], default_q: np.ndarray, control_dt: float,
                 steps: int | None = None) -> None:
        self.world_model = world_model
        self.policy = policy
        self.obs_norm = obs_norm
        self.slices = dict(obs_slices)
        self.default_q = np.asarray(default_q, dtype=np.float64)
        self.control_dt = float(control_dt)
        self.steps = int(steps) if steps is not None else max(1, round(GHOST_AHEAD_S / self.control_dt))
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        self.history = int(getattr(world_model, "history", 1))
        self._obs: list[torch.Tensor] = []  # normalised, this episode's last `history`
        self._actions: list[torch.Tensor] = []

    def begin_episode(self, obs: torch.Tensor) -> None:
        """Forget the past; ``obs`` (O,) raw is the episode's first observation."""
        self._obs, self._actions = [self.obs_norm(obs.reshape(1, -1))[0]], []

    def observe(self, action: torch.Tensor, obs: torch.Tensor) -> None:
        """The action (A,) taken and the raw observation (O,) it led to, within the episode."""
        self._obs = (self._obs + [self.obs_norm(obs.reshape(1, -1))[0]])[-self.history:]
        self._actions = (self._actions + [action.reshape(-1).float()])[-(self.history - 1):] if self.history > 1 else []

    def _inputs(self) -> torch.Tensor:
        """The world model's input now, (1, F)."""
        obs = torch.stack(self._obs).unsqueeze(1)  # (n, 1, O)
        n = obs.shape[0]
        actions = torch.zeros(n, 1, self.world_model.action_dim)
        if self._actions:
            actions[n - 1 - len(self._actions):n - 1, 0] = torch.stack(self._actions)
        return history_inputs(obs, actions, torch.zeros(n, 1, dtype=torch.bool), self.history)[-1]

    def _denormalize(self, x: torch.Tensor) -> np.ndarray:
        inverse = getattr(self.obs_norm, "denormalize", None)  # a plain callable normalises nothing
        return (x.double() if inverse is None else inverse(x)).numpy()

    @torch.no_grad()
    def imagine(self, lstm_state: Any) -> np.ndarray:
        """The predicted raw observations of the next ``steps`` control steps, (steps, O), with the
        policy acting on the predictions from its recurrent state ``lstm_state`` (not changed)."""
        if not self._obs:
            raise RuntimeError("Ghost.begin_episode must be called first")
        latent = self.world_model.encode(self._inputs())
        obs = self._obs[-1].unsqueeze(0)
        state, start = lstm_state, torch.zeros(1)
        predicted = []
        for _ in range(self.steps):
            action, *_, state = self.policy.act(obs, state, start, deterministic=True, generator=None)
            latent = self.world_model.step_latent(latent, action.float())[0]
            obs = self.world_model.decode(latent)
            predicted.append(obs[0])
        return self._denormalize(torch.stack(predicted))

    def frame(self, now: Any, lstm_state: Any, kinematics: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]) -> Any:
        """The ghost as a ``QuadrupedFrame``, from ``now`` (the robot's real frame) and the
        policy's state; ``kinematics(pos, quat, joint_pos) -> (4, 4, 3)`` leg points."""
        predicted = self.imagine(lstm_state)
        pos, quat = pose_along(predicted, now.trunk_pos, now.trunk_quat, self.control_dt, self.slices)
        j0, j1 = self.slices["joint_pos_offset"]
        c0, c1 = self.slices["foot_contact"]
        joints = self.default_q + predicted[-1, j0:j1]
        return dataclasses.replace(now, trunk_pos=pos, trunk_quat=quat, leg_points=kinematics(pos, quat, joints),
                                   foot_contact=predicted[-1, c0:c1] > 0.5, push=None, ghost=None)
