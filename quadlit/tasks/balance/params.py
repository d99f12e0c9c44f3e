"""Parameters of the balance task, one frozen record, validated once at the edge."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Literal, NamedTuple, Union


#: Upper bounds of the physical parameters and why: beyond them the task no longer models a robot
#: keeping its balance (a 1e9 m/s push, say, only ever ends in a non-finite state and a reset).
PHYSICAL_UPPER_BOUNDS = {
    "push_magnitude": (10.0, "m/s, ten times the default kick; larger ones throw the robot, they do not test balance"),
    "action_scale": (1.5, "rad of PD target per unit action, beyond the joints' useful range"),
    "added_mass_max": (10.0, "kg on a 12.45 kg robot"),
    "friction_max": (5.0, "no ground grips harder"),
    "motor_strength_max": (5.0, "times the A1's torque limits"),
    "gain_scale_max": (5.0, "times the PD gains, stiffer than 1 ms substeps integrate stably"),
    "reset_joint_noise": (0.5, "rad from the default pose at reset"),
    "reset_velocity_noise": (5.0, "m/s or rad/s of random velocity at reset"),
    "reset_height_noise": (0.2, "m of extra height at reset"),
    "target_height": (2.0, "m, above the reach of any robot quadlit simulates (each robot's own bound: "
                      "its standing height plus a tenth)"),
    "min_height": (2.0, "m (each robot's own bound: below the height it stands at, or every episode fails at once)"),
    "obs_noise": (1.0, "standard deviation, larger than most observations themselves"),
}


@dataclass(frozen=True)
class BalanceParams:
    """The balance task: a 12-joint quadruped stands and recovers from pushes.

    Args:
        motor_mode: "pd" (joint target = default + action_scale * a, PD torque) or "torque" (torque = a * limit).
        action_scale: PD target offset per unit action, rad.
        physics_dt: physics substep, s.
        substeps: physics substeps per control step (control period = physics_dt * substeps).
        max_steps: control steps before an episode times out.
        push_magnitude: size of each push, a horizontal velocity kick of the trunk, m/s.
        push_jitter: each push is scaled by a uniform factor in [1 - push_jitter, 1].
        push_interval_min: shortest time between pushes, s.
        push_interval_max: longest time between pushes, s.
        push_curriculum: grow the push size from curriculum_start x push_magnitude as survival improves.
        curriculum_start: initial push scale of the curriculum (fraction of push_magnitude).
        curriculum_window: finished episodes per curriculum decision.
        curriculum_up: survival rate above which the push scale grows by 0.1.
        max_tilt: trunk tilt from upright that ends the episode, rad.
        min_height: trunk height below which the episode ends, m (null: 0.49 of the height the robot
            settles at, 0.15 m for the built-in A1).
        target_height: trunk height the height reward aims at, m (null: where the robot settles holding
            its standing pose, 0.305 m for the built-in A1; 0: its unloaded standing height).
        reset_tilt: largest random roll/pitch at reset, rad.
        reset_joint_noise: largest random joint-angle offset from the default pose at reset, rad.
        reset_velocity_noise: standard deviation of random trunk and joint velocities at reset.
        reset_height_noise: largest random extra trunk height at reset, m.
        friction_min: lowest ground friction coefficient drawn per episode.
        friction_max: highest ground friction coefficient drawn per episode.
        added_mass_min: lowest extra trunk mass drawn per episode, kg.
        added_mass_max: highest extra trunk mass drawn per episode, kg.
        motor_strength_min: lowest motor torque-limit multiplier drawn per episode.
        motor_strength_max: highest motor torque-limit multiplier drawn per episode.
        gain_scale_min: lowest PD-gain multiplier (Kp and Kd) drawn per episode.
        gain_scale_max: highest PD-gain multiplier (Kp and Kd) drawn per episode.
        obs_noise: standard deviation of Gaussian noise added to each observation (0 = none).
        upright_scale: reward for keeping the trunk level: scale * ((1 + cos tilt) / 2)^2.
        height_scale: reward for holding the target height: scale * exp(-(dh / 0.05)^2).
        lin_vel_scale: penalty on the squared trunk linear velocity, per (m/s)^2.
        ang_vel_scale: penalty on the squared trunk angular velocity, per (rad/s)^2.
        energy_scale: penalty on motor power (stamina), per W.
        action_rate_scale: penalty on the squared change of the action between steps.
        pose_scale: penalty on the squared deviation of the joints from the default pose, per rad^2.
        alive_bonus: reward for every step survived.
        termination_penalty: penalty when the episode fails (tilt, height or ground touch).
        recovery_step_scale: reward for each recovery step, a foot set down after a swing soon after a
            push, as ``kernels.count_recovery_steps`` counts it for ``steps_per_push``.
        recovery_step_ramp: training env-steps over which the recovery-step reward grows linearly
            from 0 to ``recovery_step_scale`` (0: the full scale from the start). Training sets it
            from the run's env-steps (``BalanceTask.set_progress``); a task never told (the Gymnasium
            environment, evaluations) pays the full scale.
        robot: the robot: null (or "a1") for the built-in A1, or the path of the MJCF file (or a URDF
            MuJoCo accepts) of your own 12-joint quadruped, read with MuJoCo (pip install
            'quadlit[mujoco]'; docs/robots.md). A checkpoint keeps the imported robot.
        robot_kp: PD stiffness of an imported robot, N·m/rad: one value, 3 (hip, thigh, calf) or 12
            (null: from the file's position actuators; needed when it has motors).
        robot_kd: PD damping of an imported robot, N·m·s/rad, as robot_kp.
        robot_pose: standing pose of an imported robot, rad: 3 (hip, thigh, calf) or 12 angles
            (null: the file's keyframe named "home").

    Physical parameters have upper bounds (``PHYSICAL_UPPER_BOUNDS``, with the reason for each;
    e.g. push_magnitude <= 10 m/s) and reset_tilt must stay below max_tilt.
    """

    motor_mode: Literal["pd", "torque"] = "pd"
    action_scale: float = 0.5
    physics_dt: float = 0.001
    substeps: int = 20
    max_steps: int = 1000
    push_magnitude: float = 1.0
    push_jitter: float = 0.0
    push_interval_min: float = 2.0
    push_interval_max: float = 4.0
    push_curriculum: bool = False
    curriculum_start: float = 0.3
    curriculum_window: int = 256
    curriculum_up: float = 0.8
    max_tilt: float = 0.8
    min_height: float | None = None
    target_height: float | None = None
    reset_tilt: float = 0.05
    reset_joint_noise: float = 0.05
    reset_velocity_noise: float = 0.05
    reset_height_noise: float = 0.01
    friction_min: float = 0.6
    friction_max: float = 1.2
    added_mass_min: float = -0.5
    added_mass_max: float = 1.5
    motor_strength_min: float = 0.9
    motor_strength_max: float = 1.1
    gain_scale_min: float = 0.9
    gain_scale_max: float = 1.1
    obs_noise: float = 0.0
    upright_scale: float = 0.5
    height_scale: float = 0.5
    lin_vel_scale: float = 0.1
    ang_vel_scale: float = 0.02
    energy_scale: float = 0.0002
    action_rate_scale: float = 0.01
    pose_scale: float = 0.1
    alive_bonus: float = 0.5
    termination_penalty: float = 5.0
    recovery_step_scale: float = 0.0
    recovery_step_ramp: int = 0
    robot: str | None = None
    robot_kp: Union[float, list[float], None] = None
    robot_kd: Union[float, list[float], None] = None
    robot_pose: list[float] | None = None

    @property
    def control_dt(self) -> float:
        """Seconds per control step."""
        return self.physics_dt * self.substeps

    def __post_init__(self) -> None:
        def bad(name: str, allowed: str) -> None:
            raise ValueError(f"balance.{name} must be {allowed}, got {getattr(self, name)!r}")

        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                bad(f.name, "a finite number")
        self._check_robot_options()
        if self.motor_mode not in ("pd", "torque"):
            bad("motor_mode", "'pd' or 'torque'")
        for name in ("substeps", "max_steps", "curriculum_window"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                bad(name, "an integer >= 1")
        if isinstance(self.recovery_step_ramp, bool) or not isinstance(self.recovery_step_ramp, int) \
                or self.recovery_step_ramp < 0:
            bad("recovery_step_ramp", "an integer >= 0 (env-steps)")
        for name in ("action_scale", "physics_dt", "push_interval_min", "max_tilt", "friction_max",
                     "motor_strength_min", "gain_scale_min"):
            if not getattr(self, name) > 0:
                bad(name, "> 0")
        if self.min_height is not None and not self.min_height > 0:
            bad("min_height", "> 0 (or null: the robot's own)")
        if self.target_height is not None and not self.target_height >= 0:
            bad("target_height", ">= 0 (or null: the robot's own)")
        if self.physics_dt > 0.005:
            bad("physics_dt", "<= 0.005 s (contacts are not stable with larger substeps)")
        if self.physics_dt < 1e-5:
            bad("physics_dt", ">= 1e-5 s (finer steps only cost time: a control step would take millions)")
        if not 0.002 <= self.control_dt <= 0.1:
            raise ValueError(f"balance.physics_dt x balance.substeps (the control period) must be in [0.002, 0.1] s "
                             f"(50-500 Hz is what robots run; beyond, the policy cannot react or each step costs "
                             f"too many substeps), got {self.physics_dt} x {self.substeps} = {self.control_dt:g} s")
        for name in ("push_magnitude", "reset_tilt", "reset_joint_noise", "reset_velocity_noise",
                     "reset_height_noise", "friction_min", "obs_noise", "upright_scale", "height_scale",
                     "lin_vel_scale", "ang_vel_scale", "energy_scale", "action_rate_scale", "pose_scale",
                     "alive_bonus", "termination_penalty", "recovery_step_scale"):
            if getattr(self, name) < 0:
                bad(name, ">= 0")
        for name in ("push_jitter", "curriculum_up"):
            if not 0 <= getattr(self, name) <= 1:
                bad(name, "in [0, 1]")
        if not 0 < self.curriculum_start <= 1:
            bad("curriculum_start", "in (0, 1]")
        if self.max_tilt >= math.pi:
            bad("max_tilt", "< pi")
        for lo, hi in (("push_interval_min", "push_interval_max"), ("friction_min", "friction_max"),
                       ("added_mass_min", "added_mass_max"), ("motor_strength_min", "motor_strength_max"),
                       ("gain_scale_min", "gain_scale_max")):
            if getattr(self, hi) < getattr(self, lo):
                bad(hi, f">= {lo} ({getattr(self, lo)})")
        if self.added_mass_min <= -4.0:
            bad("added_mass_min", "> -4 kg (the trunk weighs 4.7 kg)")
        for name, (limit, why) in PHYSICAL_UPPER_BOUNDS.items():
            if getattr(self, name) is not None and getattr(self, name) > limit:
                bad(name, f"<= {limit} ({why})")
        if self.reset_tilt >= self.max_tilt:
            bad("reset_tilt", f"< max_tilt ({self.max_tilt} rad), or episodes fail as they start")


    def _check_robot_options(self) -> None:
        """The robot options' types and shapes (whether the file is a robot quadlit can import is
        the importer's business, when the task is built); lists become tuples (hashable)."""
        if self.robot is not None and (not isinstance(self.robot, str) or not self.robot.strip()):
            raise ValueError(f"balance.robot must be null, 'a1' or the path of an MJCF/URDF file, got {self.robot!r}")
        for name, sizes in (("robot_kp", (1, 3, 12)), ("robot_kd", (1, 3, 12)), ("robot_pose", (3, 12))):
            v = getattr(self, name)
            if v is None:
                continue
            values = [v] if isinstance(v, (int, float)) and not isinstance(v, bool) else v
            if (not isinstance(values, (list, tuple)) or len(values) not in sizes
                    or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                               for x in values)):
                raise ValueError(f"balance.{name} must be {' or '.join(map(str, sizes))} finite numbers, got {v!r}")
            if name != "robot_pose" and (min(values) < 0 or (name == "robot_kp" and min(values) <= 0)):
                raise ValueError(f"balance.{name} must be {'> 0' if name == 'robot_kp' else '>= 0'}, got {v!r}")
            if self.robot is None or self.robot == "a1":
                raise ValueError(f"balance.{name} is for an imported robot (balance.robot: PATH); the built-in A1 "
                                 "has its own")
            object.__setattr__(self, name, float(values[0]) if len(values) == 1 and name != "robot_pose"
                               else tuple(float(x) for x in values))


#: The fields that choose the robot (not numbers the kernels read).
ROBOT_FIELDS = ("robot", "robot_kp", "robot_kd", "robot_pose")
#: The fields whose null means "the robot's own value" (``kernel_params`` resolves them).
ROBOT_DEFAULTED = ("min_height", "target_height")
#: The built-in A1's failure height and height-reward width over the height it settles at
#: (0.15 m and 0.05 m of 0.305 m): every robot gets them in proportion to its own height.
MIN_HEIGHT_FRACTION = 0.15 / 0.305
HEIGHT_WIDTH_FRACTION = 0.05 / 0.305


# ---- what the kernels see ---------------------------------------------------------------------
#: Values the kernels need that are computed from the parameters and the robot, not set directly.
DERIVED_FIELDS = (
    "cos_max_tilt",  # cos(max_tilt): the tilt test compares cosines
    "height_target",  # target_height (null: the robot's nominal height; 0: its standing height), m
    "height_width",  # width of the height reward, m (0.05 m for the A1, in proportion for others)
    "standing_height",  # trunk height of the robot holding its default pose, m (where resets put it)
    "control_dt",  # seconds per control step
)

#: Every numeric field of BalanceParams (booleans as 0/1, ``motor_mode`` is the physics' business)
#: followed by ``DERIVED_FIELDS``, all float64: the record the Numba kernels read by name, e.g.
#: ``p.upright_scale``. A new parameter needs only its field in BalanceParams.
KernelParams = NamedTuple("KernelParams", [(f.name, float) for f in fields(BalanceParams)
                                           if f.name != "motor_mode" and f.name not in ROBOT_FIELDS]
                          + [(name, float) for name in DERIVED_FIELDS])


def robot_heights(params: BalanceParams, nominal_height: float) -> tuple[float, float]:
    """(min_height, target_height) of ``params`` on a robot that settles at ``nominal_height`` m:
    as given, or the robot's own where null (target 0 stays 0: the standing height)."""
    min_height = params.min_height if params.min_height is not None else MIN_HEIGHT_FRACTION * nominal_height
    target = params.target_height if params.target_height is not None else nominal_height
    return float(min_height), float(target)


def kernel_params(params: BalanceParams, standing_height: float, nominal_height: float) -> KernelParams:
    """The kernels' parameter record for ``params`` on a robot standing at ``standing_height`` m
    (kinematic, unloaded) that settles at ``nominal_height`` m under its weight."""
    min_height, target = robot_heights(params, nominal_height)
    derived = {
        "cos_max_tilt": math.cos(params.max_tilt),
        "height_target": target if target > 0 else standing_height,
        "height_width": HEIGHT_WIDTH_FRACTION * nominal_height,
        "standing_height": standing_height,
        "control_dt": params.control_dt,
    }
    values = {f.name: float(getattr(params, f.name)) for f in fields(params)
              if f.name != "motor_mode" and f.name not in ROBOT_FIELDS and f.name not in ROBOT_DEFAULTED}
    values.update(min_height=min_height, target_height=target)
    return KernelParams(**values, **{k: float(v) for k, v in derived.items()})
