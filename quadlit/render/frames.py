"""What the renderer draws: plain per-frame records, independent of any physics.

A task adapter turns one environment's state into a frame; the renderer draws frames.
``QuadrupedFrame`` comes from the balance task's forward kinematics, ``ReachFrame`` from the
reach task's state (``reach_frames``). All positions are metres in the world frame (z up);
keep them in one frame for a whole episode (the renderer draws the trunk's path from them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Union

import numpy as np

LEG_NAMES = ("FL", "FR", "RL", "RR")


def _vector(name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    a = np.array(value, dtype=np.float64)
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite, got {a}")
    a.flags.writeable = False
    return a


@dataclass(frozen=True)
class QuadrupedFrame:
    """One rendered instant of the quadruped.

    Args:
        trunk_pos: (3,) trunk centre, metres.
        trunk_quat: (4,) trunk orientation, unit quaternion (w, x, y, z).
        trunk_half_extents: (3,) half sizes of the trunk box along its x, y, z axes, metres.
        trunk_box_center: (3,) centre of the trunk box in the trunk frame, metres (an imported
            robot's box need not sit on the trunk origin).
        leg_points: (4, 4, 3) per leg (FL, FR, RL, RR): hip, thigh joint, knee, foot, metres.
        foot_contact: (4,) bool, the foot touches the ground.
        foot_radius: radius of the foot spheres, metres.
        push: (3,) velocity change of the trunk by an active push, m/s; None when no push.
        ghost: another pose of the robot drawn translucent beside it (``quadlit play``'s world-model
            prediction, ``quadlit.ghost``); None: none.
    """

    trunk_pos: np.ndarray
    trunk_quat: np.ndarray
    trunk_half_extents: np.ndarray
    leg_points: np.ndarray
    foot_contact: np.ndarray
    foot_radius: float = 0.02
    push: np.ndarray | None = None
    ghost: "QuadrupedFrame | None" = None
    trunk_box_center: np.ndarray = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if self.ghost is not None and not isinstance(self.ghost, QuadrupedFrame):
            raise ValueError(f"ghost must be a QuadrupedFrame or None, got {type(self.ghost).__name__}")
        set_(self, "trunk_pos", _vector("trunk_pos", self.trunk_pos, (3,)))
        quat = _vector("trunk_quat", self.trunk_quat, (4,))
        if abs(np.linalg.norm(quat) - 1.0) > 1e-3:
            raise ValueError(f"trunk_quat must be a unit quaternion (w, x, y, z), got norm {np.linalg.norm(quat)}")
        set_(self, "trunk_quat", quat)
        set_(self, "trunk_half_extents", _vector("trunk_half_extents", self.trunk_half_extents, (3,)))
        set_(self, "trunk_box_center", _vector("trunk_box_center", self.trunk_box_center, (3,)))
        set_(self, "leg_points", _vector("leg_points", self.leg_points, (4, 4, 3)))
        contact = np.array(self.foot_contact, dtype=bool)
        if contact.shape != (4,):
            raise ValueError(f"foot_contact must have shape (4,), got {contact.shape}")
        set_(self, "foot_contact", contact)
        if not (np.isfinite(self.foot_radius) and self.foot_radius > 0):
            raise ValueError(f"foot_radius must be > 0, got {self.foot_radius}")
        if self.push is not None:
            set_(self, "push", _vector("push", self.push, (3,)))

    @property
    def subject(self) -> np.ndarray:
        """The point a follow camera tracks."""
        return self.trunk_pos


@dataclass(frozen=True)
class ReachFrame:
    """One rendered instant of the reach creature in its walled box.

    Args:
        creature_pos: (3,) creature position, metres (z = ground_level when standing).
        goal_pos: (3,) goal position, metres.
        box_half_extent: half width of the arena in x and y, metres.
        box_height: height of the walls above the floor, metres.
        stamina_fraction: stamina / max stamina, in [0, 1].
        ground_level: height of the floor, metres.
        goal_radius: distance at which the goal counts as reached, metres (drawn as a ring).
        creature_radius: drawn radius of the creature, metres.
    """

    creature_pos: np.ndarray
    goal_pos: np.ndarray
    box_half_extent: float
    box_height: float
    stamina_fraction: float
    ground_level: float = 0.0
    goal_radius: float = 1.0
    creature_radius: float = 0.35

    def __post_init__(self) -> None:
        object.__setattr__(self, "creature_pos", _vector("creature_pos", self.creature_pos, (3,)))
        object.__setattr__(self, "goal_pos", _vector("goal_pos", self.goal_pos, (3,)))
        for name in ("box_half_extent", "box_height", "goal_radius", "creature_radius"):
            value = float(getattr(self, name))
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0, got {value}")
            object.__setattr__(self, name, value)
        object.__setattr__(self, "stamina_fraction", float(np.clip(self.stamina_fraction, 0.0, 1.0)))

    @property
    def subject(self) -> np.ndarray:
        """The point a follow camera tracks: the creature's floor position."""
        return np.array([self.creature_pos[0], self.creature_pos[1], self.ground_level])


Frame = Union[QuadrupedFrame, ReachFrame]
FrameFn = Callable[[Any, int], Frame]


def reach_frames(task: Any, env_index: int) -> ReachFrame:
    """The ``ReachFrame`` of environment ``env_index`` of a ``ReachTask`` (from its state arrays)."""
    creature = task.creature(env_index)
    p = task.params
    return ReachFrame(
        creature_pos=creature.position,
        goal_pos=creature.goal,
        box_half_extent=p.box_half_extent,
        box_height=p.box_height,
        stamina_fraction=creature.stamina / p.max_stamina,
        ground_level=p.ground_level,
        goal_radius=p.goal_threshold,
    )


def frame_function(task: Any) -> FrameFn | None:
    """How to turn an environment of ``task`` into a frame, or None when it cannot be drawn: a
    task draws itself with ``render_frame(env_index) -> QuadrupedFrame | ReachFrame``."""
    if callable(getattr(task, "render_frame", None)):
        return lambda t, i: t.render_frame(i)
    return None


def standing_quadruped(height: float = 0.3, foot_radius: float = 0.02, push: Any = None) -> QuadrupedFrame:
    """A synthetic A1-sized quadruped standing level at ``height`` with straight vertical legs
    (hip joints at (±0.183, ±0.047) from the trunk centre, thigh joints 0.085 m further out,
    feet touching the ground). For previews and tests."""
    points = np.zeros((4, 4, 3))
    for leg, (sx, sy) in enumerate(((1, 1), (1, -1), (-1, 1), (-1, -1))):
        hip = np.array([0.183 * sx, 0.047 * sy, height])
        thigh = hip + np.array([0.0, 0.085 * sy, 0.0])
        foot = np.array([thigh[0], thigh[1], foot_radius])
        knee = 0.5 * (thigh + foot)
        points[leg] = (hip, thigh, knee, foot)
    return QuadrupedFrame(
        trunk_pos=(0.0, 0.0, height),
        trunk_quat=(1.0, 0.0, 0.0, 0.0),
        trunk_half_extents=(0.1335, 0.097, 0.057),
        leg_points=points,
        foot_contact=(True, True, True, True),
        foot_radius=foot_radius,
        push=push,
    )
