"""Parameters of the reach task: one frozen record, validated once at construction."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class ReachParams:
    """Physics, reward and episode settings of the reach task (a point mass with stamina).

    Units: metres, seconds, m/s, m/s²; stamina in points. Rates "per second" are applied as
    a factor ``max(0, 1 - rate * dt)`` per control step. The arena is the box
    ``|x|, |y| <= box_half_extent``, ``ground_level <= z <= ground_level + box_height``.

    Args:
        accel_xy: horizontal acceleration at full action, m/s² (air control included).
        accel_z: upward acceleration at full jump action, m/s², applied for the single control
            step on the ground (a jump gives an upward speed of accel_z * dt).
        max_accel: cap on the horizontal acceleration magnitude, m/s² (diagonals are no faster).
        max_velocity: cap on the horizontal speed and on the upward speed, m/s.
        momentum_damping: velocity loss rate applied everywhere, 1/s.
        gravity: downward acceleration while above ground level, m/s².
        terminal_fall_velocity: cap on the downward speed, m/s.
        ground_level: height of the floor, m (the creature stands on it when z == ground_level).
        ground_friction: horizontal velocity loss rate while on the ground, 1/s.
        air_friction: velocity loss rate while in the air, 1/s.
        air_drag: quadratic drag coefficient in the air, 1/m (deceleration = air_drag * |v|²).
        goal_threshold: distance at which the goal counts as reached, m.
        proximity_threshold: distance inside which the proximity bonus ramps up linearly, m.
        distance_reward_scale: reward per metre of distance to the goal closed this step.
        proximity_bonus_scale: proximity reward per step at zero distance to the goal.
        goal_bonus: reward for reaching a goal (a new one then spawns).
        wall_penalty_scale: penalty per metre the creature pushed into a wall or the ceiling.
        stamina_penalty: penalty per step that ends with stamina exhausted.
        walk_stamina_cost: stamina per second at full horizontal acceleration.
        jump_stamina_cost: stamina per full-strength jump (scaled by the jump action).
        stamina_regen: stamina regained per second while idle.
        idle_bonus: reward per idle step (effort below idle_threshold).
        idle_threshold: horizontal and jump effort (each in [0, 1]) below which a step is idle.
        max_stamina: stamina of a fresh creature and its cap, points.
        box_half_extent: half width of the arena in x and y, m.
        box_height: height of the arena (ceiling above the floor), m.
        goal_height: goals spawn at heights up to this above the floor, m (<= box_height).
        max_steps: control steps per episode before a time-out (truncation).
        dt: seconds per control step.
    """

    accel_xy: float = 8.0
    accel_z: float = 100.0
    max_accel: float = 8.0
    max_velocity: float = 6.0
    momentum_damping: float = 0.1
    gravity: float = 9.81
    terminal_fall_velocity: float = 20.0
    ground_level: float = 0.0
    ground_friction: float = 2.0
    air_friction: float = 0.2
    air_drag: float = 0.02
    goal_threshold: float = 1.0
    proximity_threshold: float = 3.0
    distance_reward_scale: float = 1.0
    proximity_bonus_scale: float = 0.05
    goal_bonus: float = 10.0
    wall_penalty_scale: float = 5.0
    stamina_penalty: float = 0.05
    walk_stamina_cost: float = 5.0
    jump_stamina_cost: float = 10.0
    stamina_regen: float = 20.0
    idle_bonus: float = 0.01
    idle_threshold: float = 0.1
    max_stamina: float = 200.0
    box_half_extent: float = 10.0
    box_height: float = 4.0
    goal_height: float = 1.5
    max_steps: int = 1000
    dt: float = 0.05

    def __post_init__(self) -> None:
        positive = "a finite number > 0"
        non_negative = "a finite number >= 0"
        rules = {
            "accel_xy": (positive, lambda v: v > 0),
            "accel_z": (non_negative, lambda v: v >= 0),
            "max_accel": (positive, lambda v: v > 0),
            "max_velocity": (positive, lambda v: v > 0),
            "momentum_damping": (non_negative, lambda v: v >= 0),
            "gravity": (non_negative, lambda v: v >= 0),
            "terminal_fall_velocity": (positive, lambda v: v > 0),
            "ground_level": ("a finite number", lambda v: True),
            "ground_friction": (non_negative, lambda v: v >= 0),
            "air_friction": (non_negative, lambda v: v >= 0),
            "air_drag": (non_negative, lambda v: v >= 0),
            "goal_threshold": (positive, lambda v: v > 0),
            "proximity_threshold": (positive, lambda v: v > 0),
            "distance_reward_scale": (non_negative, lambda v: v >= 0),
            "proximity_bonus_scale": (non_negative, lambda v: v >= 0),
            "goal_bonus": (non_negative, lambda v: v >= 0),
            "wall_penalty_scale": (non_negative, lambda v: v >= 0),
            "stamina_penalty": (non_negative, lambda v: v >= 0),
            "walk_stamina_cost": (non_negative, lambda v: v >= 0),
            "jump_stamina_cost": (non_negative, lambda v: v >= 0),
            "stamina_regen": (non_negative, lambda v: v >= 0),
            "idle_bonus": (non_negative, lambda v: v >= 0),
            "idle_threshold": ("in [0, 1]", lambda v: 0 <= v <= 1),
            "max_stamina": (positive, lambda v: v > 0),
            "box_half_extent": (positive, lambda v: v > 0),
            "box_height": (positive, lambda v: v > 0),
            "goal_height": (
                f"in [0, box_height={self.box_height}]",
                lambda v: 0 <= v <= self.box_height,
            ),
            "dt": (positive, lambda v: v > 0),
        }
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "max_steps":
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
                if not ok:
                    raise ValueError(f"reach.max_steps must be an integer >= 1, got {value!r}")
                continue
            allowed, check = rules[f.name]
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (numeric and math.isfinite(value) and check(value)):
                raise ValueError(f"reach.{f.name} must be {allowed}, got {value!r}")
