"""The robot as data: one immutable parameter record per robot, plus simulation parameters.

Conventions (used everywhere in ``quadlit.physics``):

* World frame: z up, x forward, gravity along -z. Lengths in m, angles in rad, masses in kg,
  torques in N·m.
* Bodies: ``0`` is the trunk; leg ``l`` (0 FL, 1 FR, 2 RL, 3 RR) owns bodies ``1 + 3 l + k`` with
  ``k`` = 0 hip, 1 thigh, 2 calf (the calf record includes the rigidly attached foot sphere).
* Joints: joint ``j = 3 l + k`` moves body ``j + 1`` relative to its parent
  (``joint_parent[j]``); per leg hip abduction (x axis) -> hip flexion (y) -> knee (y).
  At ``q = 0`` a joint frame has the orientation of its parent frame; its origin sits at
  ``joint_pos[j]`` in the parent frame. The kernels assume this topology (a trunk and four
  3-joint serial legs); geometry, masses, inertias and limits all come from the record, so
  another quadruped of this shape is another ``RobotModel``, not another kernel.
* Generalised velocity (MuJoCo's free-joint convention): ``(base_lin_vel world (3),
  base_ang_vel trunk frame (3), joint_vel (12))``, 18 in all.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

LEG_NAMES = ("FL", "FR", "RL", "RR")
"""Leg order: front-left, front-right, rear-left, rear-right."""
JOINT_KINDS = ("hip", "thigh", "calf")
JOINT_NAMES = tuple(f"{leg}_{kind}_joint" for leg in LEG_NAMES for kind in JOINT_KINDS)
"""The 12 joint names in state/action column order."""
BODY_NAMES = ("trunk",) + tuple(f"{leg}_{kind}" for leg in LEG_NAMES for kind in JOINT_KINDS)
NUM_LEGS = 4
NUM_JOINTS = 12
NUM_BODIES = 13
NUM_DOF = 18

SUPPORTED_JOINT_PARENT = np.array([0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11], dtype=np.int64)
"""Parent body of each joint: the topology (trunk + four serial 3-joint legs) the kernels
assume; everything else about the robot comes from the record."""
TRUNK = np.int64(0)
"""Body index of the trunk."""
JOINT_TREE = tuple((j, j + 1, int(parent)) for j, parent in enumerate(SUPPORTED_JOINT_PARENT))
"""``(joint, body it moves, parent body)`` of every joint: ``SUPPORTED_JOINT_PARENT`` as a table
the SIMD kernels walk with one call per joint. ``TRUNK`` and the entries are typed ``int64`` by
Numba (a Python int constant would be a ``Literal[int]`` and compile a callee once per value);
the callees are ``forceinline``, so LLVM sees the indices as constants after inlining."""

MOTOR_PD = 0
"""Motor mode: target = default_q + action_scale * a; tau = Kp (target - q) - Kd qd."""
MOTOR_TORQUE = 1
"""Motor mode: tau = a * torque_limit."""


MODEL_DTYPE = np.dtype([
    ("body_mass", np.float64, (13,)),
    ("body_com", np.float64, (13, 3)),
    ("body_inertia", np.float64, (13, 3, 3)),
    ("joint_parent", np.int64, (12,)),
    ("joint_pos", np.float64, (12, 3)),
    ("joint_axis", np.float64, (12, 3)),
    ("joint_lower", np.float64, (12,)),
    ("joint_upper", np.float64, (12,)),
    ("joint_vel_limit", np.float64, (12,)),
    ("joint_torque_limit", np.float64, (12,)),
    ("joint_damping", np.float64, (12,)),
    ("joint_armature", np.float64, (12,)),
    ("joint_frictionloss", np.float64, (12,)),
    ("joint_friction_damping", np.float64, (12,)),
    ("default_q", np.float64, (12,)),
    ("kp", np.float64, (12,)),
    ("kd", np.float64, (12,)),
    ("foot_pos", np.float64, (4, 3)),
    ("foot_radius", np.float64),
    ("trunk_half_extents", np.float64, (3,)),
    ("trunk_box_center", np.float64, (3,)),
    ("knee_radius", np.float64),
    ("shank_radius", np.float64),
    ("standing_height", np.float64),
    ("nominal_height", np.float64),
    ("total_mass", np.float64),
], align=True)
"""Fields of the robot record (float64 unless noted; units SI):

    body_mass (13,) kg; body_com (13, 3) centre of mass in the body frame, m;
    body_inertia (13, 3, 3) about the COM in the body frame, kg·m²;
    joint_parent (12,) int64 parent body of joint j (child body is j + 1);
    joint_pos (12, 3) joint origin in the parent body frame, m; joint_axis (12, 3) unit axis;
    joint_lower, joint_upper (12,) rad (soft limits: spring-dampers);
    joint_vel_limit (12,) rad/s (a motor does no positive work beyond it);
    joint_torque_limit (12,) N·m; joint_damping (12,) N·m·s/rad; joint_armature (12,) kg·m²;
    joint_frictionloss (12,) dry friction torque, N·m, regularised as
    ``-clip(joint_friction_damping * qd, ±joint_frictionloss)`` with joint_friction_damping (12,)
    N·m·s/rad (the viscous slope below the friction limit; as MuJoCo's soft friction constraint);
    default_q (12,) default standing angles, rad; kp (12,) N·m/rad; kd (12,) N·m·s/rad;
    foot_pos (4, 3) foot sphere centre in each calf frame, m; foot_radius m;
    trunk_half_extents (3,) half sizes of the trunk box for ground contact and touch detection,
    m, centred at trunk_box_center (3,) in the trunk frame, m; knee_radius: sphere at each calf
    origin (the knee), m; shank_radius: capsule from the knee towards the foot, stopping a foot
    radius short of the foot centre, m;
    standing_height: trunk height of the default pose, level, feet just touching, no load, m;
    nominal_height: trunk height where the robot settles holding its default pose under its own
    weight, m (given, not derived: the balance task's height target and failure height scale
    with it); total_mass kg.
"""

RobotModel = np.record
"""Type of a robot record: a read-only ``numpy.record`` of ``MODEL_DTYPE`` (attribute access:
``model.kp``). Inside ``@njit`` code it is a Numba ``Record`` passed by pointer: no reference
counting, so kernels can pass it to every helper for free."""


def model_fields(model: RobotModel) -> dict:
    """The record as a dict of NumPy arrays / floats (copies)."""
    return {name: (np.array(model[name]) if MODEL_DTYPE[name].shape else float(model[name]))
            for name in MODEL_DTYPE.names}


class SimParams(NamedTuple):
    """Simulation parameters shared by all environments of a batch (scalars only).

    Attributes:
        dt: physics substep, s.
        substeps: physics substeps per control step (control period = dt * substeps).
        gravity: gravitational acceleration magnitude along -z, m/s².
        contact_stiffness: foot-ground normal spring, N/m.
        contact_damping: foot-ground normal damper, N·s/m (force never pulls).
        friction_stiffness: tangential stick spring of the stick-slip friction model, N/m.
        friction_damping: tangential stick damper, N·s/m.
        limit_stiffness: one-sided joint-limit spring, N·m/rad.
        limit_damping: one-sided joint-limit damper, N·m·s/rad.
        motor_mode: ``MOTOR_PD`` (0) or ``MOTOR_TORQUE`` (1).
        action_scale: PD target offset per unit action, rad.
        contacts: ground contact on (1) or off (0) (off: tests against MuJoCo, free flight).
        joint_limits: joint-limit springs on (1) or off (0).
    """

    dt: float = 0.001
    substeps: int = 20
    gravity: float = 9.81
    contact_stiffness: float = 1.0e5
    contact_damping: float = 400.0
    friction_stiffness: float = 5.0e4
    friction_damping: float = 200.0
    limit_stiffness: float = 500.0
    limit_damping: float = 2.0
    motor_mode: int = MOTOR_PD
    action_scale: float = 0.25
    contacts: int = 1
    joint_limits: int = 1

    @property
    def control_dt(self) -> float:
        """Seconds per control step."""
        return self.dt * self.substeps


class EnvParams(NamedTuple):
    """Per-environment physical parameters (domain randomisation), each shape (N,), float64.

    Attributes:
        friction: Coulomb friction coefficient foot-ground.
        added_mass: extra point mass at the trunk COM, kg (may be negative, > -trunk mass).
        motor_strength: multiplier of the motor torque limits.
        kp_scale: multiplier of the model's Kp.
        kd_scale: multiplier of the model's Kd.
    """

    friction: np.ndarray
    added_mass: np.ndarray
    motor_strength: np.ndarray
    kp_scale: np.ndarray
    kd_scale: np.ndarray

    @classmethod
    def allocate(cls, num_envs: int, friction: float = 1.0) -> "EnvParams":
        """Nominal parameters for ``num_envs`` environments."""
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        return cls(
            friction=np.full(num_envs, float(friction)),
            added_mass=np.zeros(num_envs),
            motor_strength=np.ones(num_envs),
            kp_scale=np.ones(num_envs),
            kd_scale=np.ones(num_envs),
        )


def validate_sim_params(sim: SimParams) -> SimParams:
    """Check ranges once at the edge; returns ``sim`` with exact field types."""
    if not sim.dt > 0 or sim.substeps < 1:
        raise ValueError(f"need dt > 0 and substeps >= 1, got dt={sim.dt}, substeps={sim.substeps}")
    if sim.motor_mode not in (MOTOR_PD, MOTOR_TORQUE):
        raise ValueError(f"motor_mode must be {MOTOR_PD} (pd) or {MOTOR_TORQUE} (torque), got {sim.motor_mode}")
    for name in ("contact_stiffness", "contact_damping", "friction_stiffness", "friction_damping",
                 "limit_stiffness", "limit_damping", "gravity"):
        if getattr(sim, name) < 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(sim, name)}")
    if sim.friction_stiffness <= 0:
        raise ValueError("friction_stiffness must be > 0")
    return SimParams(
        dt=float(sim.dt), substeps=int(sim.substeps), gravity=float(sim.gravity),
        contact_stiffness=float(sim.contact_stiffness), contact_damping=float(sim.contact_damping),
        friction_stiffness=float(sim.friction_stiffness), friction_damping=float(sim.friction_damping),
        limit_stiffness=float(sim.limit_stiffness), limit_damping=float(sim.limit_damping),
        motor_mode=int(sim.motor_mode), action_scale=float(sim.action_scale),
        contacts=int(bool(sim.contacts)), joint_limits=int(bool(sim.joint_limits)),
    )


# --------------------------------------------------------------------------------------------
# Unitree A1 defaults (public URDF figures; right-leg / front values mirrored for the others)

def _sym(ixx, iyy, izz, ixy, ixz, iyz) -> np.ndarray:
    return np.array([[ixx, ixy, ixz], [ixy, iyy, iyz], [ixz, iyz, izz]], dtype=np.float64)


def _mirror(com: np.ndarray, inertia: np.ndarray, flip_x: bool, flip_y: bool) -> tuple[np.ndarray, np.ndarray]:
    d = np.diag([-1.0 if flip_x else 1.0, -1.0 if flip_y else 1.0, 1.0])
    return d @ com, d @ inertia @ d


def _combine(m1, c1, i1, m2, c2, i2) -> tuple[float, np.ndarray, np.ndarray]:
    """Two rigidly joined bodies -> one (mass, COM, inertia about the COM)."""
    m = m1 + m2
    c = (m1 * c1 + m2 * c2) / m

    def shift(mass, com, inertia):
        r = com - c
        return inertia + mass * (r @ r * np.eye(3) - np.outer(r, r))

    return m, c, shift(m1, c1, i1) + shift(m2, c2, i2)


A1_NOMINAL_HEIGHT = 0.305
"""m: where the built-in A1 settles holding its default pose (0.3054 m measured; the balance task's
height target since the first sessions)."""


def _a1_fields() -> dict:
    trunk_m = 4.713
    trunk_c = np.array([0.012731, 0.002186, 0.000515])
    trunk_i = _sym(0.01683993, 0.056579028, 0.064713601, 8.3902e-05, 0.000597679, 2.5134e-05)
    # front-right values; mirrored per leg below
    hip_m, hip_c = 0.696, np.array([-0.003311, -0.000635, 3.1e-05])
    hip_i = _sym(0.000469246, 0.00080749, 0.000552929, 9.409e-06, -3.42e-07, 4.66e-07)
    thigh_m, thigh_c = 1.013, np.array([-0.003237, 0.022327, -0.027326])
    thigh_i = _sym(0.005529065, 0.005139339, 0.001367788, 4.825e-06, 0.000343869, 2.2448e-05)
    calf_m, calf_c = 0.166, np.array([0.006435, 0.0, -0.107388])
    calf_i = _sym(0.002997972, 0.003014022, 3.2426e-05, 0.0, -0.000141163, 0.0)
    foot_m, foot_r, foot_c = 0.06, 0.02, np.array([0.0, 0.0, -0.2])
    foot_i = np.eye(3) * (0.4 * foot_m * foot_r**2)
    cf_m, cf_c, cf_i = _combine(calf_m, calf_c, calf_i, foot_m, foot_c, foot_i)

    mass = np.zeros(13)
    com = np.zeros((13, 3))
    inertia = np.zeros((13, 3, 3))
    mass[0], com[0], inertia[0] = trunk_m, trunk_c, trunk_i
    joint_parent = np.zeros(12, dtype=np.int64)
    joint_pos = np.zeros((12, 3))
    joint_axis = np.zeros((12, 3))
    foot_pos = np.zeros((4, 3))
    for leg in range(4):
        front = leg < 2
        left = leg % 2 == 0
        sx = 1.0 if front else -1.0
        sy = 1.0 if left else -1.0
        b = 1 + 3 * leg
        mass[b], mass[b + 1], mass[b + 2] = hip_m, thigh_m, cf_m
        com[b], inertia[b] = _mirror(hip_c, hip_i, flip_x=not front, flip_y=left)
        com[b + 1], inertia[b + 1] = _mirror(thigh_c, thigh_i, flip_x=False, flip_y=left)
        com[b + 2], inertia[b + 2] = _mirror(cf_c, cf_i, flip_x=False, flip_y=left)
        j = 3 * leg
        joint_parent[j], joint_parent[j + 1], joint_parent[j + 2] = 0, b, b + 1
        joint_pos[j] = (sx * 0.183, sy * 0.047, 0.0)
        joint_pos[j + 1] = (0.0, sy * 0.08505, 0.0)
        joint_pos[j + 2] = (0.0, 0.0, -0.2)
        joint_axis[j], joint_axis[j + 1], joint_axis[j + 2] = (1, 0, 0), (0, 1, 0), (0, 1, 0)
        foot_pos[leg] = foot_c

    per_leg = lambda h, t, c: np.tile(np.array([h, t, c], dtype=np.float64), 4)  # noqa: E731
    return dict(
        body_mass=mass, body_com=com, body_inertia=inertia,
        joint_parent=joint_parent, joint_pos=joint_pos, joint_axis=joint_axis,
        joint_lower=per_leg(-0.802851455917, -1.0471975512, -2.69653369433),
        joint_upper=per_leg(0.802851455917, 4.18879020479, -0.916297857297),
        joint_vel_limit=per_leg(21.0, 21.0, 21.0),
        joint_torque_limit=per_leg(33.5, 33.5, 33.5),
        joint_damping=per_leg(0.0, 0.0, 0.0),
        joint_armature=per_leg(0.01, 0.01, 0.01),
        joint_frictionloss=per_leg(0.0, 0.0, 0.0),
        joint_friction_damping=per_leg(0.0, 0.0, 0.0),
        default_q=per_leg(0.0, 0.8, -1.5),
        kp=per_leg(80.0, 80.0, 80.0),
        kd=per_leg(2.0, 2.0, 2.0),
        foot_pos=foot_pos,
        foot_radius=foot_r,
        trunk_half_extents=np.array([0.1335, 0.097, 0.057]),
        trunk_box_center=np.zeros(3),
        knee_radius=0.02,
        shank_radius=0.012,
        nominal_height=A1_NOMINAL_HEIGHT,
    )


_ARRAY_SHAPES = {
    "body_mass": (13,), "body_com": (13, 3), "body_inertia": (13, 3, 3), "joint_parent": (12,),
    "joint_pos": (12, 3), "joint_axis": (12, 3), "joint_lower": (12,), "joint_upper": (12,),
    "joint_vel_limit": (12,), "joint_torque_limit": (12,), "joint_damping": (12,),
    "joint_armature": (12,), "joint_frictionloss": (12,), "joint_friction_damping": (12,), "default_q": (12,),
    "kp": (12,), "kd": (12,), "foot_pos": (4, 3), "trunk_half_extents": (3,), "trunk_box_center": (3,),
}


def reference_forward_kinematics(model: RobotModel, base_pos, base_quat, q) -> np.ndarray:
    """Slow NumPy forward kinematics of one robot (test reference and builder helper).

    Args:
        base_pos: (3,) trunk origin, world, m. base_quat: (4,) wxyz. q: (12,) rad.
    Returns: (4, 4, 3) world points per leg: hip joint, thigh joint, knee joint, foot centre.
    """
    w, x, y, z = np.asarray(base_quat, dtype=np.float64) / np.linalg.norm(base_quat)
    rot0 = np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])
    rots = [rot0] + [None] * 12
    poss = [np.asarray(base_pos, dtype=np.float64)] + [None] * 12
    for j in range(12):
        parent = int(model.joint_parent[j])
        a = model.joint_axis[j]
        k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
        local = np.eye(3) + np.sin(q[j]) * k + (1 - np.cos(q[j])) * (k @ k)
        rots[j + 1] = rots[parent] @ local
        poss[j + 1] = poss[parent] + rots[parent] @ model.joint_pos[j]
    out = np.zeros((4, 4, 3))
    for leg in range(4):
        b = 1 + 3 * leg
        out[leg, 0], out[leg, 1], out[leg, 2] = poss[b], poss[b + 1], poss[b + 2]
        out[leg, 3] = poss[b + 2] + rots[b + 2] @ model.foot_pos[leg]
    return out


def shank_ends(model: RobotModel) -> np.ndarray:
    """(4, 3) far end of each shank capsule in its calf frame, m: a foot radius short of the
    foot centre on the line from the knee (calf origin), so a standing foot keeps its single
    contact. ``contacts.shank_end`` computes the same inside the kernels."""
    foot = np.array(model.foot_pos, dtype=np.float64)
    return foot * (1.0 - float(model.foot_radius) / np.linalg.norm(foot, axis=1, keepdims=True))


def a1_model(**overrides) -> RobotModel:
    """The Unitree A1-sized quadruped record (about 12.45 kg), with optional field overrides.

    Any ``MODEL_DTYPE`` field may be overridden (arrays must keep their shapes);
    ``total_mass`` and ``standing_height`` are recomputed unless given.

    Defaults: default pose hip 0, thigh 0.8, knee -1.5 rad; Kp 80 N·m/rad, Kd 2 N·m·s/rad;
    torque limit 33.5 N·m; armature 0.01 kg·m²; no joint damping or friction loss; foot radius
    0.02 m. ``standing_height`` is then 0.3123 m (kinematic); holding the default pose under the
    robot's weight with the default gains (and SimParams contact), the trunk settles at
    0.3054 m (7 mm of PD sag), level, feet still (``nominal_height`` 0.305 m).
    """
    unknown = set(overrides) - set(MODEL_DTYPE.names)
    if unknown:
        raise ValueError(f"unknown RobotModel fields: {sorted(unknown)}")
    return robot_model({**_a1_fields(), **overrides})


def robot_model(fields: dict) -> RobotModel:
    """A validated, read-only record from a dict of every ``MODEL_DTYPE`` field (``total_mass``
    and ``standing_height`` may be left out: they are computed). Joint axes are normalised.
    Raises ValueError naming the first bad field."""
    fields = dict(fields)
    missing = set(MODEL_DTYPE.names) - set(fields) - {"total_mass", "standing_height"}
    if missing:
        raise ValueError(f"RobotModel fields missing: {sorted(missing)}")
    for name, shape in _ARRAY_SHAPES.items():
        dtype = np.int64 if name == "joint_parent" else np.float64
        arr = np.array(fields[name], dtype=dtype)
        if arr.shape != shape:
            arr = np.broadcast_to(arr, shape).copy() if arr.ndim <= 1 and name != "joint_parent" else arr
        if arr.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
        fields[name] = arr
    if not np.array_equal(fields["joint_parent"], SUPPORTED_JOINT_PARENT):
        raise ValueError(f"joint_parent must be {SUPPORTED_JOINT_PARENT.tolist()} (trunk + four 3-joint legs: "
                         f"the topology the kernels are written for), got {fields['joint_parent'].tolist()}")
    if np.any(fields["body_mass"] <= 0):
        raise ValueError("body masses must be > 0")
    axes = fields["joint_axis"]
    fields["joint_axis"] = axes / np.linalg.norm(axes, axis=1, keepdims=True)
    if np.any(fields["joint_lower"] >= fields["joint_upper"]):
        raise ValueError("joint_lower must be < joint_upper")
    for name in ("joint_frictionloss", "joint_friction_damping", "joint_damping", "joint_armature"):
        if np.any(fields[name] < 0):
            raise ValueError(f"{name} must be >= 0")
    for name in ("foot_radius", "knee_radius", "shank_radius", "nominal_height"):
        fields[name] = float(fields[name])
        if fields[name] <= 0:
            raise ValueError(f"{name} must be > 0")
    fields.setdefault("total_mass", float(fields["body_mass"].sum()))
    fields["total_mass"] = float(fields["total_mass"])
    if "standing_height" not in fields:
        fields["standing_height"] = 0.0
        tmp = _pack(fields)
        feet = reference_forward_kinematics(tmp, np.zeros(3), np.array([1.0, 0, 0, 0]), tmp.default_q)[:, 3]
        fields["standing_height"] = float(-feet[:, 2].min() + fields["foot_radius"])
    fields["standing_height"] = float(fields["standing_height"])
    return _pack(fields)


def _pack(fields: dict) -> RobotModel:
    arr = np.zeros(1, dtype=MODEL_DTYPE)
    for name in MODEL_DTYPE.names:
        arr[0][name] = fields[name]
    arr = arr.view(np.recarray)
    arr.flags.writeable = False
    return arr[0]


def replace_model(model: RobotModel, **changes) -> RobotModel:
    """A new record equal to ``model`` except for ``changes`` (``standing_height`` and
    ``total_mass`` are recomputed unless given)."""
    unknown = set(changes) - set(MODEL_DTYPE.names)
    if unknown:
        raise ValueError(f"unknown RobotModel fields: {sorted(unknown)}")
    fields = model_fields(model)
    fields.pop("standing_height")
    fields.pop("total_mass")
    return robot_model({**fields, **changes})
