"""Per-environment physics state: structure of arrays, one row per environment, float64."""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import numpy as np

from quadlit.physics.model import RobotModel

NUM_BODY_POINTS = 16
"""Ground contact points besides the feet: trunk box corners 0-7 (corner ``k`` at
``(+-hx, +-hy, +-hz)``, the sign of x from bit 0 of ``k``, y bit 1, z bit 2: set = plus), knee
spheres 8-11 and shank capsules 12-15 (legs FL FR RL RR)."""
KNEE0, SHANK0 = 8, 12
"""First ``body_slip`` row of the knees and of the shanks (the trunk corners start at 0)."""
ADDED_FIELDS = ("body_slip",)
"""Fields added after checkpoints were first written with this state: a saved state without
them loads with zeros there (``load_state_arrays``)."""

STATUS_OK = 0
STATUS_NONFINITE = 1
"""The control step produced a non-finite or diverged state; the env was put back to its state
at the start of that step with zero velocities and must be reset by the task."""


class PhysicsState(NamedTuple):
    """State and last-step outputs of ``N`` environments (usable as is inside ``@njit`` code).

    Attributes (shape, dtype, frame, unit):
        base_pos: (N, 3) f8, trunk origin, world frame relative to ``world_offset``
            (x, y are shifted to 0 after every control step: agent-centred world), m.
        base_quat: (N, 4) f8, trunk orientation, unit quaternion wxyz (trunk -> world).
        joint_pos: (N, 12) f8, joint angles, rad (column order ``JOINT_NAMES``).
        base_lin_vel: (N, 3) f8, trunk origin velocity, world frame, m/s.
        base_ang_vel: (N, 3) f8, trunk angular velocity, trunk frame, rad/s.
        joint_vel: (N, 12) f8, rad/s.
        foot_slip: (N, 4, 2) f8, stretch of each foot's tangential stick spring (world x, y), m;
            zero when the foot is off the ground.
        body_slip: (N, NUM_BODY_POINTS = 16, 2) f8, the same for the trunk, knee and shank contact
            points (``BODY_POINTS``: 8 trunk box corners, 4 knees, 4 shanks), m.
        world_offset: (N, 2) f8, accumulated horizontal shift: true world x, y of the trunk is
            ``world_offset + base_pos[:, :2]``, m.
        foot_contact: (N, 4) bool, foot touching the ground at the end of the last step.
        body_contact: (N,) bool, trunk box or a knee touched the ground during the last step.
        joint_torque: (N, 12) f8, motor torque averaged over the last step's substeps, N·m.
        motor_power: (N,) f8, sum over joints of |tau * qd| averaged over the substeps, W.
        status: (N,) int32, ``STATUS_OK`` or ``STATUS_NONFINITE`` from the last step.
    """

    base_pos: np.ndarray
    base_quat: np.ndarray
    joint_pos: np.ndarray
    base_lin_vel: np.ndarray
    base_ang_vel: np.ndarray
    joint_vel: np.ndarray
    foot_slip: np.ndarray
    body_slip: np.ndarray
    world_offset: np.ndarray
    foot_contact: np.ndarray
    body_contact: np.ndarray
    joint_torque: np.ndarray
    motor_power: np.ndarray
    status: np.ndarray

    @classmethod
    def allocate(cls, num_envs: int) -> "PhysicsState":
        """Zeroed state for ``num_envs`` environments (identity quaternions)."""
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        n = int(num_envs)
        quat = np.zeros((n, 4))
        quat[:, 0] = 1.0
        return cls(
            base_pos=np.zeros((n, 3)), base_quat=quat, joint_pos=np.zeros((n, 12)),
            base_lin_vel=np.zeros((n, 3)), base_ang_vel=np.zeros((n, 3)), joint_vel=np.zeros((n, 12)),
            foot_slip=np.zeros((n, 4, 2)), body_slip=np.zeros((n, NUM_BODY_POINTS, 2)),
            world_offset=np.zeros((n, 2)),
            foot_contact=np.zeros((n, 4), dtype=np.bool_), body_contact=np.zeros(n, dtype=np.bool_),
            joint_torque=np.zeros((n, 12)), motor_power=np.zeros(n), status=np.zeros(n, dtype=np.int32),
        )

    @property
    def num_envs(self) -> int:
        return self.base_pos.shape[0]

    def set_standing(self, model: RobotModel, env_indices=None, height: float | None = None) -> None:
        """Put environments (all by default) in the default pose, level, at rest, at ``height``
        (default ``model.standing_height``) with x, y = 0 and the offset cleared."""
        idx = slice(None) if env_indices is None else np.asarray(env_indices)
        self.base_pos[idx] = (0.0, 0.0, model.standing_height if height is None else float(height))
        self.base_quat[idx] = (1.0, 0.0, 0.0, 0.0)
        self.joint_pos[idx] = model.default_q
        for arr in (self.base_lin_vel, self.base_ang_vel, self.joint_vel, self.foot_slip, self.body_slip,
                    self.world_offset, self.joint_torque, self.motor_power):
            arr[idx] = 0.0
        self.foot_contact[idx] = False
        self.body_contact[idx] = False
        self.status[idx] = 0

    def copy(self) -> "PhysicsState":
        return PhysicsState(*(a.copy() for a in self))

    def world_base_pos(self) -> np.ndarray:
        """(N, 3) true world trunk position (offset added back), m."""
        out = self.base_pos.copy()
        out[:, :2] += self.world_offset
        return out


def load_state_arrays(state: PhysicsState, saved: Mapping[str, Any]) -> None:
    """Copy a saved state (``PhysicsState._asdict()``, as checkpoints hold it) into ``state`` in
    place. A field of ``ADDED_FIELDS`` missing from ``saved`` (a checkpoint written before it
    existed) is zeroed; any other missing or unknown field, or a wrong shape, is a ValueError."""
    for name in PhysicsState._fields:
        if name not in saved and name not in ADDED_FIELDS:
            raise ValueError(f"saved physics state has no field {name!r}")
    for name, value in saved.items():
        if name not in PhysicsState._fields:
            raise ValueError(f"saved physics state has an unknown field {name!r}")
        target = getattr(state, name)
        value = np.asarray(value)
        if value.shape != target.shape:
            raise ValueError(f"saved physics state {name} has shape {value.shape}, expected {target.shape}")
        target[...] = value
    for name in ADDED_FIELDS:
        if name not in saved:
            getattr(state, name)[...] = 0
