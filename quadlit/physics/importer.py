"""Import a 12-joint quadruped from its own MJCF (or a URDF MuJoCo's compiler accepts) into a
``Robot``: the physics record the kernels read, the foot contact, and the map back to the file.

    robot = import_robot("go1.xml")                       # MuJoCo must be installed
    robot = import_robot("my.urdf", kp=60.0, kd=1.5, pose=[0, 0.8, -1.6] * 4)

The file is read with MuJoCo's own compiler (``mujoco.MjSpec``): defaults classes, ``fromto``,
angle units, ``autolimits``, inertias from geoms and ``body_iquat`` rotations are MuJoCo's
business, not a parser's here. What the importer then does (docs/robots.md says it for users):

* Topology: one free joint on the trunk and four legs of three hinges in series. Bodies without
  a joint are welded to their parent (mass, COM and inertia combined). Anything else (a ball or
  slide joint, a fifth leg, a leg of 2 or 4 hinges, a tendon, an equality constraint) is refused.
* Legs are mapped to quadlit's FL FR RL RR by where they attach on the trunk (front: the two
  with the larger x; left: the larger y of each pair), each leg's joints to hip, thigh, calf by
  their order from the trunk, whatever the file names them.
* Frames: every quadlit body frame sits at its joint's anchor with the trunk's orientation at the
  zero pose (the file's joint reference angles), so rotated body frames (``quat``/``euler``),
  joint anchors off the body origin and axes such as -x in a rotated frame are baked into the
  record's joint positions, axes, COMs and inertia tensors (full tensors, ``diaginertia`` +
  ``quat`` turned into off-diagonal terms); the kernels stay as they are.
* Joints: range (or none), ``damping``, ``armature``, ``frictionloss`` (with the viscous slope of
  MuJoCo's soft friction constraint at the standing pose); a joint spring is refused.
* Actuators: position servos (``kp``, ``kv``, ``forcerange``, ``gear``) give the PD gains and
  torque limits; motors (``gear``, ``ctrlrange``/``forcerange``) give the torque limits, the
  gains then come from ``kp``/``kd``; a joint's ``actuatorfrcrange`` (a URDF's effort limit)
  limits it too. ``kp``/``kd`` given here override the file's.
* Contact shapes: the foot is the collision sphere at the end of each leg (the one farthest from
  the knee); the trunk box bounds the trunk's collision primitives (box, capsule, cylinder,
  sphere, ellipsoid); the knee sphere is the largest leg primitive through the knee, the shank
  the calf's thickest capsule. A foot that is a mesh, or feet of different sizes, are refused.
* Foot contact: MuJoCo's soft contact (``solref``/``solimp``/``margin`` of the foot and a
  default floor) is not a spring, so it is measured instead: MuJoCo settles the robot on the
  file's own contact holding the standing pose, at its weight and at twice its weight, and
  quadlit's spring (stiffness, and an effective foot radius that absorbs the sink at no load)
  goes through both points; the damper is critical for a quarter of the robot's mass. The same
  settle gives the height the robot stands at (``nominal_height``).
* Standing pose: the keyframe named ``home`` (or ``pose`` given here).

Every refusal is a ``RobotImportError`` (a ``ConfigError``: one line through the CLI) that names
what is unsupported and where.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from quadlit.errors import ConfigError
from quadlit.physics.mjcf import CUSTOM_CONTACT, CUSTOM_NOMINAL_HEIGHT, CUSTOM_VEL_LIMIT, SENSOR_LAYOUT
from quadlit.physics.model import JOINT_KINDS, LEG_NAMES, SUPPORTED_JOINT_PARENT, reference_forward_kinematics, robot_model
from quadlit.physics.robot import Robot

MUJOCO_HINT = "pip install 'quadlit[mujoco]'"
GRAVITY = 9.81
SETTLE_S = 1.5
"""s of MuJoCo simulation per settle of the contact calibration."""
STABLE_DT = 0.001
"""s: the physics step the foot damper must stay stable at (quadlit's default ``physics_dt``)."""


class RobotImportError(ConfigError):
    """A robot file quadlit cannot import; the message names the file and what is unsupported."""


def require_mujoco(why: str = "importing a robot"):
    """The ``mujoco`` module (with ``MjSpec``), or a one-line ConfigError naming the install."""
    try:
        import mujoco
    except ImportError:
        raise ConfigError(f"{why} needs MuJoCo: {MUJOCO_HINT}") from None
    if not hasattr(mujoco, "MjSpec"):
        raise ConfigError(f"{why} needs MuJoCo >= 3.2 (mujoco.MjSpec); found {mujoco.__version__}: pip install -U mujoco")
    return mujoco


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().replace("Error: ", "", 1)
    return text.splitlines()[0] if text else type(exc).__name__


# ---- reading the file -----------------------------------------------------------------------
def _is_urdf(path: Path, head: bytes) -> bool:
    return path.suffix.lower() == ".urdf" or b"<robot" in head[:4096] and b"<mujoco" not in head[:4096]


def read_spec(path: str | Path) -> tuple[Any, list[str]]:
    """The file as an ``MjSpec`` ready to compile: visual meshes (and textures, height fields,
    skins) dropped, a URDF's root given a free joint. Returns (spec, notes)."""
    mujoco = require_mujoco()
    path = Path(path)
    if not path.exists():
        raise RobotImportError(f"robot file {path}: no such file")
    if not path.is_file():
        raise RobotImportError(f"robot file {path}: not a file")
    try:
        head = path.read_bytes()[:4096]
    except OSError as exc:
        raise RobotImportError(f"robot file {path}: cannot read it ({exc.strerror or exc})") from None
    urdf = _is_urdf(path, head)
    try:
        spec = mujoco.MjSpec.from_file(str(path))
    except Exception as exc:
        raise RobotImportError(f"robot file {path}: MuJoCo cannot read it: {_first_line(exc)}") from None
    notes: list[str] = []
    if urdf:
        notes.append("read as URDF by MuJoCo's compiler")
        _float_urdf_root(spec, path, notes)
        try:
            spec.compile()
        except Exception as exc:
            msg = _first_line(exc)
            if "file" in msg.lower() and any(k in msg.lower() for k in ("mesh", ".stl", ".obj", ".dae", "open")):
                raise RobotImportError(f"robot file {path}: the URDF's meshes cannot be found ({msg}); put them "
                                       "where the URDF's filenames point, relative to the URDF") from None
            raise RobotImportError(f"robot file {path}: MuJoCo cannot compile it: {msg}") from None
        return spec, notes
    _drop_meshes(mujoco, spec, path, notes)
    return spec, notes


def _float_urdf_root(spec, path: Path, notes: list[str]) -> None:
    """A URDF's root link is welded to the world by MuJoCo: give it a free joint."""
    roots = list(spec.worldbody.bodies)
    if len(roots) != 1:
        raise RobotImportError(f"robot file {path}: a URDF with {len(roots)} root links; quadlit needs one trunk")
    root = roots[0]
    if not list(root.joints):
        root.add_freejoint()
        notes.append(f"URDF root link {root.name!r} given a free joint")


def _drop_meshes(mujoco, spec, path: Path, notes: list[str]) -> None:
    """Remove mesh geoms (and the assets that need files): quadlit's contact shapes are
    primitives. A body whose inertia MuJoCo would compute from a mesh keeps it: computed from
    the full file when its meshes can be read, refused when they cannot."""
    mesh_type = mujoco.mjtGeom.mjGEOM_MESH
    meshes = [g for g in spec.geoms if g.type == mesh_type or g.type == mujoco.mjtGeom.mjGEOM_SDF
              or g.type == mujoco.mjtGeom.mjGEOM_HFIELD]
    if not meshes and not list(spec.textures) and not list(spec.hfields) and not list(spec.skins):
        return
    inertia_from = {}
    if spec.compiler.inertiafromgeom != mujoco.mjtInertiaFromGeom.mjINERTIAFROMGEOM_FALSE:
        lo, hi = spec.compiler.inertiagrouprange
        force = spec.compiler.inertiafromgeom == mujoco.mjtInertiaFromGeom.mjINERTIAFROMGEOM_TRUE
        for g in meshes:
            body = g.parent
            if (force or not body.explicitinertial) and lo <= g.group <= hi and (g.mass > 0 or g.density > 0):
                inertia_from.setdefault(body.name, body)
    if inertia_from:
        try:
            full = spec.copy().compile()
        except Exception as exc:
            names = ", ".join(repr(n) for n in inertia_from)
            raise RobotImportError(f"robot file {path}: the inertia of body {names} comes from mesh geoms whose "
                                   f"files cannot be read ({_first_line(exc)})") from None
        for name, body in inertia_from.items():
            b = full.body(name).id
            body.explicitinertial = True
            body.mass = float(full.body_mass[b])
            body.ipos = np.array(full.body_ipos[b])
            body.iquat = np.array(full.body_iquat[b])
            body.inertia = np.array(full.body_inertia[b])
        notes.append(f"inertia of {', '.join(repr(n) for n in inertia_from)} computed from the file's meshes")
    for g in meshes:
        spec.delete(g)
    for asset in list(spec.meshes) + list(spec.textures) + list(spec.hfields) + list(spec.skins):
        spec.delete(asset)
    for material in spec.materials:
        material.textures = [""] * len(material.textures)
    notes.append(f"{len(meshes)} mesh geoms dropped (quadlit's contact shapes are primitives)")


# ---- the record -----------------------------------------------------------------------------
def _combine(parts: list[tuple[float, np.ndarray, np.ndarray]]) -> tuple[float, np.ndarray, np.ndarray]:
    """Rigidly joined (mass, COM, inertia about the COM), world axes -> one body."""
    mass = sum(p[0] for p in parts)
    com = sum(p[0] * p[1] for p in parts) / mass
    inertia = np.zeros((3, 3))
    for m, c, i in parts:
        r = c - com
        inertia += i + m * (r @ r * np.eye(3) - np.outer(r, r))
    return mass, com, 0.5 * (inertia + inertia.T)


class _Model:
    """The compiled MjModel at its zero pose (trunk at the origin, level; joints at their
    reference angles) and the body groups the importer works with."""

    def __init__(self, mujoco, m, path: Path) -> None:
        self.mj, self.m, self.path = mujoco, m, path
        self.d = mujoco.MjData(m)
        free = [j for j in range(m.njnt) if m.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE]
        if len(free) != 1:
            raise self.error(f"{len(free)} free joints; quadlit needs exactly one, on the trunk")
        self.trunk = int(m.jnt_bodyid[free[0]])
        if m.body_parentid[self.trunk] != 0:
            raise self.error("the free joint is not on a body of the world body")
        self.free_qpos = int(m.jnt_qposadr[free[0]])
        self.d.qpos[:] = m.qpos0
        self.d.qpos[self.free_qpos:self.free_qpos + 7] = (0, 0, 0, 1, 0, 0, 0)
        mujoco.mj_kinematics(m, self.d)
        if m.ntendon:
            raise self.error(f"{m.ntendon} tendons; quadlit simulates serial legs without tendons")
        if m.neq:
            raise self.error(f"{m.neq} equality constraints (a closed chain or coupled joints); quadlit's legs are "
                             "open serial chains")
        if m.nflex:
            raise self.error("flexible bodies (flex) are not supported")

    def error(self, what: str) -> RobotImportError:
        return RobotImportError(f"robot file {self.path}: {what}")

    def name(self, obj, i: int) -> str:
        return self.mj.mj_id2name(self.m, obj, int(i)) or ""

    def body_label(self, b: int) -> str:
        return repr(self.name(self.mj.mjtObj.mjOBJ_BODY, b) or f"body #{b}")

    def joint_label(self, j: int) -> str:
        return repr(self.name(self.mj.mjtObj.mjOBJ_JOINT, j) or f"joint #{j}")


def _groups(mm: _Model) -> tuple[dict[int, list[int]], list[list[int]]]:
    """Moving groups (a body with a joint and the jointless bodies welded to it, keyed by the
    jointed body; the trunk is one) and the four legs as lists of jointed bodies from the trunk."""
    mj, m = mm.mj, mm.m
    owner: dict[int, int] = {}
    groups: dict[int, list[int]] = {}
    for b in range(1, m.nbody):
        if m.body_rootid[b] != mm.trunk:
            if m.body_jntnum[b]:
                raise mm.error(f"{mm.body_label(b)} moves but is not part of the robot; the file must hold one robot")
            continue
        njnt = int(m.body_jntnum[b])
        if b == mm.trunk:
            if njnt != 1:
                raise mm.error(f"the trunk {mm.body_label(b)} has {njnt} joints; it needs only its free joint")
            owner[b] = b
        elif njnt == 0:
            owner[b] = owner[int(m.body_parentid[b])]  # welded: parents come before children
        else:
            if njnt > 1:
                raise mm.error(f"{mm.body_label(b)} has {njnt} joints; every leg body needs exactly one hinge")
            j = int(m.body_jntadr[b])
            kind = int(m.jnt_type[j])
            if kind != mj.mjtJoint.mjJNT_HINGE:
                kind_name = {int(mj.mjtJoint.mjJNT_BALL): "ball", int(mj.mjtJoint.mjJNT_SLIDE): "slide",
                             int(mj.mjtJoint.mjJNT_FREE): "free"}.get(kind, str(kind))
                raise mm.error(f"{mm.joint_label(j)} is a {kind_name} joint; quadlit's legs have hinges only")
            owner[b] = b
        groups.setdefault(owner[b], []).append(b)
    children: dict[int, list[int]] = {g: [] for g in groups}
    for g in groups:
        if g != mm.trunk:
            children[owner[int(m.body_parentid[g])]].append(g)
    roots = children[mm.trunk]
    legs = []
    for root in roots:
        chain = [root]
        while children[chain[-1]]:
            if len(children[chain[-1]]) > 1:
                raise mm.error(f"the leg from {mm.body_label(root)} branches at {mm.body_label(chain[-1])}; "
                               "quadlit's legs are serial chains of 3 hinges")
            chain.append(children[chain[-1]][0])
        legs.append(chain)
    shape = sorted(len(c) for c in legs)
    if len(legs) != 4 or shape != [3, 3, 3, 3]:
        raise mm.error(f"a trunk with {len(legs)} legs of {shape} hinges; quadlit simulates a trunk with four "
                       "legs of 3 hinges each")
    return groups, legs


def _order_legs(mm: _Model, legs: list[list[int]]) -> list[list[int]]:
    """The legs as FL, FR, RL, RR by where their first joint sits on the trunk."""
    anchors = np.array([mm.d.xanchor[mm.m.body_jntadr[leg[0]]] for leg in legs])
    order = np.argsort(-anchors[:, 0], kind="stable")
    front, rear = list(order[:2]), list(order[2:])
    if anchors[front, 0].min() - anchors[rear, 0].max() < 1e-6:
        raise mm.error(f"cannot tell front legs from rear legs: their hips sit at x = {np.round(anchors[:, 0], 4).tolist()} "
                       "in the trunk frame (x must point forward)")
    out = []
    for pair in (front, rear):
        left, right = sorted(pair, key=lambda k: -anchors[k, 1])
        if anchors[left, 1] - anchors[right, 1] < 1e-6:
            raise mm.error("cannot tell left legs from right legs: a pair of hips sits at the same y in the trunk frame")
        out += [legs[left], legs[right]]
    return out


def _body_parts(mm: _Model, bodies: list[int]) -> list[tuple[float, np.ndarray, np.ndarray]]:
    m, d = mm.m, mm.d
    parts = []
    for b in bodies:
        mass = float(m.body_mass[b])
        if mass < 0:
            raise mm.error(f"{mm.body_label(b)} has negative mass {mass}")
        r = d.ximat[b].reshape(3, 3)
        parts.append((mass, np.array(d.xipos[b]), r @ np.diag(m.body_inertia[b]) @ r.T))
    return parts


def _collision_geoms(mm: _Model, bodies: list[int]) -> list[int]:
    m = mm.m
    return [g for g in range(m.ngeom) if m.geom_bodyid[g] in bodies and (m.geom_contype[g] or m.geom_conaffinity[g])]


def _geom_segment(mm: _Model, g: int) -> tuple[np.ndarray, np.ndarray, float] | None:
    """A capsule's, cylinder's or sphere's axis segment (world, m) and radius; None otherwise."""
    mj, m, d = mm.mj, mm.m, mm.d
    t = int(m.geom_type[g])  # (a pybind enum does not compare equal to a NumPy integer in a tuple)
    c, r = np.array(d.geom_xpos[g]), float(m.geom_size[g, 0])
    if t == mj.mjtGeom.mjGEOM_SPHERE:
        return c, c, r
    if t == mj.mjtGeom.mjGEOM_CAPSULE or t == mj.mjtGeom.mjGEOM_CYLINDER:
        axis = d.geom_xmat[g].reshape(3, 3)[:, 2] * float(m.geom_size[g, 1])
        return c - axis, c + axis, r
    return None


def _point_segment_distance(p, a, b) -> float:
    ab = b - a
    t = 0.0 if not ab @ ab > 0 else float(np.clip((p - a) @ ab / (ab @ ab), 0.0, 1.0))
    return float(np.linalg.norm(p - (a + t * ab)))


def _geom_aabb(mm: _Model, g: int) -> tuple[np.ndarray, np.ndarray] | None:
    """World axis-aligned bounds of a primitive geom (None for planes and meshes)."""
    mj, m, d = mm.mj, mm.m, mm.d
    t, size = int(m.geom_type[g]), m.geom_size[g]
    c, r = np.array(d.geom_xpos[g]), d.geom_xmat[g].reshape(3, 3)
    if t == mj.mjtGeom.mjGEOM_SPHERE:
        half = np.full(3, size[0])
    elif t == mj.mjtGeom.mjGEOM_CAPSULE:
        half = np.abs(r[:, 2]) * size[1] + size[0]
    elif t == mj.mjtGeom.mjGEOM_CYLINDER:
        a = r[:, 2]
        half = np.abs(a) * size[1] + size[0] * np.sqrt(np.clip(1.0 - a * a, 0.0, 1.0))
    elif t == mj.mjtGeom.mjGEOM_BOX:
        half = np.abs(r) @ size[:3]
    elif t == mj.mjtGeom.mjGEOM_ELLIPSOID:
        half = np.sqrt((r * size[:3]) ** 2 @ np.ones(3))
    else:
        return None
    return c - half, c + half


def _solimp_impedance(solimp, r: float) -> float:
    """MuJoCo's impedance d(r) at violation ``r`` >= 0 (its polynomial sigmoid)."""
    dmin, dmax, width, mid, power = (float(v) for v in solimp[:5])
    x = min(1.0, r / width) if width > 0 else 1.0
    if x >= 1.0 or power == 1.0:
        y = x
    elif x <= mid:
        y = (x / mid) ** power * mid if mid > 0 else 1.0
    else:
        y = 1.0 - (1.0 - x) ** power / (1.0 - mid) ** (power - 1.0) if mid < 1 else 0.0
    return dmin + y * (dmax - dmin)


def _friction_damping(mm: _Model, dofs: list[int]) -> np.ndarray:
    """The viscous slope of MuJoCo's soft friction-loss constraint of each dof at the zero pose:
    ``d b I_eff`` (impedance at zero violation, reference damping of ``dof_solref``, and the
    dof's effective inertia 1 / (M^-1)_jj with the trunk free), N·m·s/rad."""
    mj, m, d = mm.mj, mm.m, mm.d
    mj.mj_forward(m, d)
    full = np.zeros((m.nv, m.nv))
    mj.mj_fullM(m, d, full)
    inv = np.linalg.inv(full)
    out = np.zeros(len(dofs))
    for k, dof in enumerate(dofs):
        timeconst, ratio = float(m.dof_solref[dof, 0]), float(m.dof_solref[dof, 1])
        dimp = _solimp_impedance(m.dof_solimp[dof], 0.0)
        dmax = float(m.dof_solimp[dof, 1])
        if timeconst > 0:
            timeconst = max(timeconst, 2.0 * float(m.opt.timestep))  # MuJoCo's refsafe
            b = 2.0 / (dmax * timeconst)
        else:  # (-stiffness, -damping)
            b = -ratio / dmax
        out[k] = dimp * b / inv[dof, dof]
    return out


def _actuation(mm: _Model, joints: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(kp, kd, torque limit) per joint from the file's actuators (NaN gains where a joint has a
    motor or none) and what was found, for the notes."""
    mj, m = mm.mj, mm.m
    kp, kd, limit = np.full(12, np.nan), np.full(12, np.nan), np.full(12, np.inf)
    kinds = []
    by_joint: dict[int, list[int]] = {}
    for a in range(m.nu):
        if m.actuator_trntype[a] != mj.mjtTrn.mjTRN_JOINT:
            raise mm.error(f"actuator {mm.name(mj.mjtObj.mjOBJ_ACTUATOR, a) or '#' + str(a)!r} does not drive a joint "
                           "directly (tendon, site or slider-crank transmission); quadlit takes joint actuators only")
        by_joint.setdefault(int(m.actuator_trnid[a, 0]), []).append(a)
    for k, j in enumerate(joints):
        if m.jnt_actfrclimited[j]:
            limit[k] = min(abs(m.jnt_actfrcrange[j, 0]), abs(m.jnt_actfrcrange[j, 1]))
        acts = by_joint.get(j, [])
        if len(acts) > 1:
            raise mm.error(f"{mm.joint_label(j)} has {len(acts)} actuators; quadlit drives each joint with one motor")
        if not acts:
            kinds.append("none")
            continue
        a = acts[0]
        label = repr(mm.name(mj.mjtObj.mjOBJ_ACTUATOR, a) or f"#{a}")
        if m.actuator_dyntype[a] != mj.mjtDyn.mjDYN_NONE:
            raise mm.error(f"actuator {label} has activation dynamics; quadlit takes position servos or motors")
        if m.actuator_gaintype[a] != mj.mjtGain.mjGAIN_FIXED:
            raise mm.error(f"actuator {label} has a non-constant gain; quadlit takes position servos or motors")
        gear = float(m.actuator_gear[a, 0])
        gain = float(m.actuator_gainprm[a, 0])
        bias = m.actuator_biasprm[a]
        force_lim = np.inf
        if m.actuator_forcelimited[a]:
            force_lim = abs(gear) * min(abs(m.actuator_forcerange[a, 0]), abs(m.actuator_forcerange[a, 1]))
        if m.actuator_biastype[a] == mj.mjtBias.mjBIAS_NONE:  # a motor: torque = gear * gain * ctrl
            ctrl_lim = np.inf
            if m.actuator_ctrllimited[a]:
                ctrl_lim = abs(gear * gain) * min(abs(m.actuator_ctrlrange[a, 0]), abs(m.actuator_ctrlrange[a, 1]))
            limit[k] = min(limit[k], force_lim, ctrl_lim)
            kinds.append("motor")
        elif (m.actuator_biastype[a] == mj.mjtBias.mjBIAS_AFFINE and gain > 0 and abs(bias[0]) < 1e-12
              and abs(bias[1] + gain) < 1e-9 * gain and bias[2] <= 0):
            kp[k] = gain * gear * gear
            kd[k] = abs(float(bias[2])) * gear * gear
            limit[k] = min(limit[k], force_lim)
            kinds.append("position")
        else:
            raise mm.error(f"actuator {label} is neither a position servo nor a motor (a velocity servo or a general "
                           "actuator); quadlit takes position servos or motors")
    return kp, kd, limit, kinds


def _per_joint(name: str, value, path: Path) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.size == 1:
        arr = np.full(12, float(arr[0]))
    elif arr.size == 3:
        arr = np.tile(arr, 4)
    if arr.size != 12 or not np.all(np.isfinite(arr)):
        raise RobotImportError(f"robot {path}: {name} must be one finite number, 3 (hip, thigh, calf) or 12 "
                               f"(FL FR RL RR x hip thigh calf), got {np.asarray(value).tolist()}")
    return arr


def _gain(mm: _Model, name: str, given, from_file: np.ndarray, joints: list[int], notes: list[str]) -> np.ndarray:
    """PD gain ``name`` ("kp" or "kd") per joint: the config's where given, else the file's
    position servos' (NaN where a joint has a motor or nothing: refused)."""
    if given is not None:
        notes.append(f"PD gain {name} from the config")
        return _per_joint(f"robot_{name}", given, mm.path)
    if np.all(np.isfinite(from_file)):
        notes.append(f"PD gain {name} from the file's position actuators" + (" (their kv)" if name == "kd" else ""))
        return from_file
    which = ", ".join(mm.joint_label(j) for j, g in zip(joints, from_file) if not np.isfinite(g))
    raise mm.error(f"{which} {'is' if ',' not in which else 'are'} driven by a motor or by nothing: give the PD "
                   "gains (data.balance.robot_kp and robot_kd)")


def _analyse(mm: _Model, kp_given, kd_given, pose_given) -> tuple[dict, dict, list[str]]:
    """The record's fields, the map back to the file, and notes."""
    mj, m, d = mm.mj, mm.m, mm.d
    notes: list[str] = []
    groups, legs = _groups(mm)
    legs = _order_legs(mm, legs)
    jointed = [mm.trunk] + [b for leg in legs for b in leg]  # quadlit body order
    joints = [int(m.body_jntadr[b]) for b in jointed[1:]]
    dofs = [int(m.jnt_dofadr[j]) for j in joints]
    origin = {mm.trunk: np.array(d.xpos[mm.trunk])}
    for b, j in zip(jointed[1:], joints):
        origin[b] = np.array(d.xanchor[j])

    mass, com, inertia = np.zeros(13), np.zeros((13, 3)), np.zeros((13, 3, 3))
    for i, b in enumerate(jointed):
        parts = _body_parts(mm, groups[b])
        if not sum(p[0] for p in parts) > 0:
            raise mm.error(f"{mm.body_label(b)} (with the bodies welded to it) has zero mass; every moving body "
                           "needs a mass > 0")
        mass[i], c, inertia[i] = _combine(parts)
        com[i] = c - origin[b]
    joint_pos = np.zeros((12, 3))
    for k, b in enumerate(jointed[1:]):
        parent = jointed[int(SUPPORTED_JOINT_PARENT[k])]
        joint_pos[k] = origin[b] - origin[parent]
    joint_axis = np.array([d.xaxis[j] for j in joints])
    ref = np.array([m.qpos0[m.jnt_qposadr[j]] for j in joints])
    for j in joints:
        if m.jnt_stiffness[j] != 0:
            raise mm.error(f"{mm.joint_label(j)} has a joint spring (stiffness {m.jnt_stiffness[j]}); not supported")
    lower = np.where(m.jnt_limited[joints] > 0, m.jnt_range[joints, 0] - ref, -np.inf)
    upper = np.where(m.jnt_limited[joints] > 0, m.jnt_range[joints, 1] - ref, np.inf)
    if not np.all(m.jnt_limited[joints]):
        notes.append("joints without a range: " + ", ".join(mm.joint_label(j) for j in joints if not m.jnt_limited[j]))

    # feet, knees, shanks, trunk box
    foot_geoms, foot_pos, foot_r, knee_r, shank_r = [], np.zeros((4, 3)), [], [], []
    for leg, chain in enumerate(legs):
        calf, thigh = chain[2], chain[1]
        knee = origin[calf]
        calf_geoms = _collision_geoms(mm, groups[calf])
        if not calf_geoms:
            raise mm.error(f"leg {LEG_NAMES[leg]} ({mm.body_label(calf)}) has no collision geometry; quadlit needs a "
                           "sphere foot at the end of each leg")
        end = max(calf_geoms, key=lambda g: np.linalg.norm(d.geom_xpos[g] - knee))
        if int(m.geom_type[end]) != mj.mjtGeom.mjGEOM_SPHERE:
            kind = {int(mj.mjtGeom.mjGEOM_MESH): "a mesh", int(mj.mjtGeom.mjGEOM_BOX): "a box",
                    int(mj.mjtGeom.mjGEOM_CAPSULE): "a capsule", int(mj.mjtGeom.mjGEOM_CYLINDER): "a cylinder",
                    int(mj.mjtGeom.mjGEOM_ELLIPSOID): "an ellipsoid"}.get(int(m.geom_type[end]), "not a sphere")
            raise mm.error(f"the foot of leg {LEG_NAMES[leg]} (geom {mm.name(mj.mjtObj.mjOBJ_GEOM, end) or '#' + str(end)!r}) "
                           f"is {kind}; quadlit's feet are spheres")
        foot_geoms.append(end)
        foot_pos[leg] = d.geom_xpos[end] - knee
        foot_r.append(float(m.geom_size[end, 0]))
        through_knee = [seg[2] for g in _collision_geoms(mm, groups[thigh] + groups[calf]) if g != end
                        and (seg := _geom_segment(mm, g)) is not None
                        and _point_segment_distance(knee, seg[0], seg[1]) <= 1e-3]
        knee_r.append(max(through_knee) if through_knee else None)
        shanks = [seg[2] for g in calf_geoms if g != end and int(m.geom_type[g]) != mj.mjtGeom.mjGEOM_SPHERE
                  and (seg := _geom_segment(mm, g)) is not None]
        shank_r.append(max(shanks) if shanks else None)
    if max(foot_r) - min(foot_r) > 1e-9:
        raise mm.error(f"feet of different radii {foot_r}; quadlit's four feet share one radius")
    radius = foot_r[0]
    knee_radius = max((r for r in knee_r if r is not None), default=radius)
    shank_radius = max((r for r in shank_r if r is not None), default=0.5 * radius)
    if all(r is None for r in knee_r):
        notes.append(f"no leg geometry through the knees: knee spheres of the foot radius ({radius:.4f} m)")
    trunk_bounds = [b for g in _collision_geoms(mm, groups[mm.trunk]) if (b := _geom_aabb(mm, g)) is not None]
    if trunk_bounds:
        lo = np.min([b[0] for b in trunk_bounds], axis=0) - origin[mm.trunk]
        hi = np.max([b[1] for b in trunk_bounds], axis=0) - origin[mm.trunk]
        notes.append(f"trunk box: the bounds of its {len(trunk_bounds)} collision primitives")
    else:  # the box of the trunk's mass and inertia (principal axes taken as the trunk's)
        i = np.diag(inertia[0])
        sq = np.clip(np.array([i[1] + i[2] - i[0], i[0] + i[2] - i[1], i[0] + i[1] - i[2]]) * 1.5 / mass[0], 1e-8, None)
        half = np.sqrt(sq)
        lo, hi = com[0] - half, com[0] + half
        notes.append("the trunk has no primitive collision geometry: its box is the box of its mass and inertia")

    # actuators and gains
    kp_file, kd_file, limit, kinds = _actuation(mm, joints)
    missing = [mm.joint_label(j) for j, lim in zip(joints, limit) if not np.isfinite(lim)]
    if missing:
        raise mm.error(f"no torque limit for {', '.join(missing)}: give the joint an actuator with a forcerange or "
                       "ctrlrange, or an actuatorfrcrange (a URDF: <limit effort=...>)")
    kp = _gain(mm, "kp", kp_given, kp_file, joints, notes)
    kd = _gain(mm, "kd", kd_given, kd_file, joints, notes)
    if np.any(kp <= 0) or np.any(kd < 0):
        raise mm.error(f"PD gains must be kp > 0 and kd >= 0, got kp {kp.tolist()}, kd {kd.tolist()}")
    notes.append("actuators: " + ", ".join(f"{n} {kinds.count(n)}" for n in ("position", "motor", "none") if n in kinds))

    # standing pose
    if pose_given is not None:
        default_q = _per_joint("robot_pose", pose_given, mm.path)
        notes.append("standing pose from the config (data.balance.robot_pose)")
    else:
        keys = [k for k in range(m.nkey) if mm.name(mj.mjtObj.mjOBJ_KEY, k) == "home"]
        if not keys:
            raise mm.error("no keyframe named 'home' for the standing pose: give data.balance.robot_pose "
                           "(12 angles FL FR RL RR x hip thigh calf, or 3 for every leg)")
        default_q = np.array([m.key_qpos[keys[0], m.jnt_qposadr[j]] for j in joints]) - ref
        notes.append("standing pose from the keyframe 'home'")
    outside = [f"{LEG_NAMES[k // 3]}_{JOINT_KINDS[k % 3]}" for k in range(12)
               if not lower[k] - 1e-9 <= default_q[k] <= upper[k] + 1e-9]
    if outside:
        raise mm.error(f"the standing pose puts {', '.join(outside)} outside the joint range")

    fields = dict(
        body_mass=mass, body_com=com, body_inertia=inertia, joint_parent=SUPPORTED_JOINT_PARENT.copy(),
        joint_pos=joint_pos, joint_axis=joint_axis, joint_lower=lower, joint_upper=upper,
        joint_vel_limit=np.full(12, np.inf), joint_torque_limit=limit,
        joint_damping=np.array(m.dof_damping[dofs]), joint_armature=np.array(m.dof_armature[dofs]),
        joint_frictionloss=np.array(m.dof_frictionloss[dofs]),
        joint_friction_damping=np.where(m.dof_frictionloss[dofs] > 0, _friction_damping(mm, dofs), 0.0),
        default_q=default_q, kp=kp, kd=kd, foot_pos=foot_pos, foot_radius=radius,
        trunk_half_extents=0.5 * (hi - lo), trunk_box_center=0.5 * (hi + lo),
        knee_radius=knee_radius, shank_radius=shank_radius, nominal_height=1.0,
    )
    mapping = dict(mj_joints=tuple(joints), mj_joint_names=tuple(mm.name(mj.mjtObj.mjOBJ_JOINT, j) for j in joints),
                   mj_joint_ref=tuple(float(r) for r in ref), mj_trunk=mm.trunk, mj_feet=tuple(foot_geoms))
    return fields, mapping, notes


# ---- MuJoCo on the robot's own file ---------------------------------------------------------
@dataclass(frozen=True)
class ServoLayout:
    """Where quadlit's quantities sit in a compiled ``servo_spec`` model (ids of that model).

    Attributes:
        trunk: body id of the trunk; free_qpos: qpos address of its free joint (7 values),
        free_dof: its dof address (6); qpos, dof: (12,) addresses of quadlit's joints;
        feet: (4,) geom ids of the foot spheres; ref: (12,) joint reference angles, rad."""

    trunk: int
    free_qpos: int
    free_dof: int
    qpos: np.ndarray
    dof: np.ndarray
    feet: np.ndarray
    ref: np.ndarray


def servo_spec(robot: Robot, spec=None, *, floor: bool = True, sensors: bool = False):
    """The robot's own description (its file, else the copy the robot carries) with the file's
    actuators replaced by quadlit's PD law as position servos (``kp``, ``kd``, torque limits of
    the record; no control range: a target is a target) on quadlit's 12 joints in quadlit's
    order, a default floor plane (the robot files of the Menagerie have none), and optionally the
    sensors ``sim2sim`` reads (``SERVO_SENSORS``). Returns ``(spec, names)``; ``servo_layout``
    finds the ids in the compiled model by ``names``.

    The control of servo ``k`` is MuJoCo's joint angle: quadlit's target plus ``mj_joint_ref[k]``."""
    mujoco = require_mujoco("MuJoCo on the robot's file")
    if spec is None:
        spec = original_spec(robot)
    names = _name_objects(spec, robot)
    for act in list(spec.actuators):
        spec.delete(act)
    for key in spec.keys:  # their controls were the file's actuators'
        key.ctrl = []
        key.act = []
    model = robot.model
    for k, name in enumerate(names["joints"]):
        act = spec.add_actuator()
        act.name = f"quadlit_{k}"
        act.target = name
        act.trntype = mujoco.mjtTrn.mjTRN_JOINT
        act.gear = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]  # (the file's actuator defaults must not apply)
        act.dyntype = mujoco.mjtDyn.mjDYN_NONE
        act.gaintype = mujoco.mjtGain.mjGAIN_FIXED
        act.biastype = mujoco.mjtBias.mjBIAS_AFFINE
        kp, kd = float(model.kp[k]), float(model.kd[k])
        act.gainprm = [kp] + [0.0] * 9
        act.biasprm = [0.0, -kp, -kd] + [0.0] * 7
        act.ctrllimited = mujoco.mjtLimited.mjLIMITED_FALSE
        lim = float(model.joint_torque_limit[k])
        act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.forcerange = [-lim, lim]
    if floor:
        g = spec.worldbody.add_geom()
        g.name = "quadlit_floor"
        g.type = mujoco.mjtGeom.mjGEOM_PLANE
        g.size = [0.0, 0.0, 0.05]
        # MuJoCo's own geom defaults, not the file's default class
        g.contype, g.conaffinity, g.condim, g.priority, g.group = 1, 1, 3, 0, 0
        g.friction = [1.0, 0.005, 0.0001]
        g.solref, g.solimp, g.solmix = [0.02, 1.0], [0.9, 0.95, 0.001, 0.5, 2.0], 1.0
        g.margin, g.gap = 0.0, 0.0
    if sensors:
        def sensor(kind, objtype, name):
            s = spec.add_sensor()
            s.type = kind
            s.objtype, s.objname = objtype, name

        sensor(mujoco.mjtSensor.mjSENS_FRAMEPOS, mujoco.mjtObj.mjOBJ_XBODY, names["trunk"])
        sensor(mujoco.mjtSensor.mjSENS_FRAMEQUAT, mujoco.mjtObj.mjOBJ_XBODY, names["trunk"])
        joints = {j.name: j for j in spec.joints}
        for k in range(4):  # the knee: a site at each calf hinge's anchor
            joint = joints[names["joints"][3 * k + 2]]
            site = joint.parent.add_site()
            site.name = f"quadlit_knee_{k}"
            site.pos = np.array(joint.pos)
            sensor(mujoco.mjtSensor.mjSENS_FRAMEPOS, mujoco.mjtObj.mjOBJ_SITE, site.name)
        for k in range(4):
            sensor(mujoco.mjtSensor.mjSENS_FRAMEPOS, mujoco.mjtObj.mjOBJ_GEOM, names["feet"][k])
    return spec, names


SERVO_SENSORS = SENSOR_LAYOUT
"""Slices of ``MjData.sensordata`` of ``servo_spec(..., sensors=True)``, as ``to_mjcf``'s
(world frame): trunk origin, trunk orientation (wxyz), knee joint anchors (4, 3) and foot sphere
centres (4, 3) in quadlit's leg order."""


def servo_layout(mujoco, m, robot: Robot, names: dict) -> ServoLayout:
    """The ids of quadlit's trunk, joints and feet in ``m``, compiled from ``servo_spec``."""
    obj = mujoco.mjtObj
    trunk = mujoco.mj_name2id(m, obj.mjOBJ_BODY, names["trunk"])
    free = int(m.body_jntadr[trunk])
    joints = [mujoco.mj_name2id(m, obj.mjOBJ_JOINT, n) for n in names["joints"]]
    return ServoLayout(trunk=trunk, free_qpos=int(m.jnt_qposadr[free]), free_dof=int(m.jnt_dofadr[free]),
                       qpos=np.array([m.jnt_qposadr[j] for j in joints]), dof=np.array([m.jnt_dofadr[j] for j in joints]),
                       feet=np.array([mujoco.mj_name2id(m, obj.mjOBJ_GEOM, n) for n in names["feet"]]),
                       ref=np.asarray(robot.mj_joint_ref, dtype=np.float64))


def _name_objects(spec, robot: Robot) -> dict:
    """Names to address quadlit's joints, trunk and feet in ``spec`` by (the file's, or given
    here where it has none). The spec's element lists are in the compiled model's id order."""
    def named(elements, ids, prefix):
        out = []
        for k, i in enumerate(ids):
            element = elements[i]
            if not element.name:
                element.name = f"quadlit_{prefix}_{k}"
            out.append(element.name)
        return out

    return {"joints": named(list(spec.joints), robot.mj_joints, "joint"),
            "trunk": named(list(spec.bodies), [robot.mj_trunk], "trunk")[0],
            "feet": named(list(spec.geoms), robot.mj_feet, "foot")}


def original_spec(robot: Robot):
    """The ``MjSpec`` of the robot's own file when it is there unchanged, else of the copy the
    robot carries (``Robot.mjcf``): the file's own contact, damping, armature and solver settings."""
    mujoco = require_mujoco("MuJoCo on the robot's file")
    if robot.source is not None:
        path = Path(robot.source)
        if path.is_file() and _sha256(path) == robot.source_sha256:
            return read_spec(path)[0]
    if robot.mjcf is None:
        raise ConfigError(f"robot {robot.name}: no description of it to run MuJoCo on")
    return mujoco.MjSpec.from_string(robot.mjcf)


def source_status(robot: Robot) -> str:
    """'file' when MuJoCo can run the robot's own file as it was imported, 'copy' otherwise."""
    if robot.source is None:
        return "built in"
    path = Path(robot.source)
    if path.is_file() and _sha256(path) == robot.source_sha256:
        return "file"
    return "copy"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- calibration of the foot contact --------------------------------------------------------
def _settle(mujoco, m, robot: Robot, lay: ServoLayout, extra_mass: float, height: float) -> tuple[float, float]:
    """MuJoCo settles the robot holding its standing pose (quadlit's PD law) from ``height``;
    returns (mean foot penetration below the floor, m; trunk height, m) after ``SETTLE_S``."""
    d = mujoco.MjData(m)
    m.body_mass[lay.trunk] += extra_mass
    try:
        d.qpos[:] = m.qpos0
        d.qpos[lay.free_qpos:lay.free_qpos + 7] = (0.0, 0.0, height, 1.0, 0.0, 0.0, 0.0)
        target = np.asarray(robot.model.default_q) + lay.ref
        d.qpos[lay.qpos] = target
        d.ctrl[:] = target
        for _ in range(int(round(SETTLE_S / m.opt.timestep))):
            mujoco.mj_step(m, d)
        feet = d.geom_xpos[lay.feet][:, 2]
        return float(np.mean(robot.model.foot_radius - feet)), float(d.xpos[lay.trunk][2])
    finally:
        m.body_mass[lay.trunk] -= extra_mass


def _foot_mass(mujoco, m, robot: Robot, lay: ServoLayout) -> float:
    """The smallest effective mass of a foot along the ground normal at the standing pose, kg:
    1 / (J M^-1 J^T) for the vertical Jacobian J of each foot centre (the trunk free)."""
    d = mujoco.MjData(m)
    d.qpos[:] = m.qpos0
    d.qpos[lay.free_qpos:lay.free_qpos + 7] = (0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0)
    d.qpos[lay.qpos] = np.asarray(robot.model.default_q) + lay.ref
    mujoco.mj_forward(m, d)
    full = np.zeros((m.nv, m.nv))
    mujoco.mj_fullM(m, d, full)
    inv = np.linalg.inv(full)
    masses = []
    for g in lay.feet:
        jacp = np.zeros((3, m.nv))
        mujoco.mj_jac(m, d, jacp, None, d.geom_xpos[g], int(m.geom_bodyid[g]))
        masses.append(1.0 / float(jacp[2] @ inv @ jacp[2]))
    return min(masses)


def _calibrate(robot: Robot) -> tuple[dict, list[str]]:
    """Foot contact (effective radius, stiffness, damping) and the standing height from two
    MuJoCo settles on the robot's own file; see the module docstring."""
    mujoco = require_mujoco()
    spec, names = servo_spec(robot, floor=True)
    m = spec.compile()
    lay = servo_layout(mujoco, m, robot, names)
    model = robot.model
    weight = float(model.total_mass) * GRAVITY / 4.0
    start = float(model.standing_height) + 0.005
    pen1, h1 = _settle(mujoco, m, robot, lay, 0.0, start)
    pen2, _ = _settle(mujoco, m, robot, lay, float(model.total_mass), start)
    foot_mass = _foot_mass(mujoco, m, robot, lay)
    notes = []
    if not (np.isfinite(pen1) and np.isfinite(pen2) and pen2 > pen1 > -1e-4):
        raise RobotImportError(f"robot {robot.source}: it does not stand in MuJoCo holding its standing pose "
                               f"(feet {1000 * pen1:.1f} / {1000 * pen2:.1f} mm into the floor at 1x / 2x its weight)")
    stiffness = weight / (pen2 - pen1)
    sink0 = pen1 - weight / stiffness
    if sink0 < 0.0:  # stiffer than linear: a spring through the origin and the heavier point
        sink0, stiffness = 0.0, 2.0 * weight / max(pen2, 1e-9)
    sink0 = min(sink0, 0.9 * float(model.foot_radius))
    mass_share = float(model.total_mass) / 4.0
    critical = 2.0 * math.sqrt(stiffness * mass_share)
    stable = 0.5 * foot_mass / STABLE_DT  # explicit integration: c dt / m well below 2 for the foot itself
    damping = min(critical, stable)
    why = "critical for a quarter of the mass" if damping == critical else (
        f"critical {critical:.0f} capped for the foot's own {foot_mass:.3f} kg at 1 ms steps")
    notes.append(f"foot contact: MuJoCo sinks {1000 * pen1:.1f} / {1000 * pen2:.1f} mm at 1x / 2x the weight -> "
                 f"spring {stiffness:.0f} N/m from an effective foot radius {1000 * (model.foot_radius - sink0):.1f} mm "
                 f"(file: {1000 * model.foot_radius:.1f} mm), damper {damping:.0f} N·s/m ({why})")
    notes.append(f"settles in MuJoCo at {h1:.4f} m (the balance task's nominal height)")
    return {"foot_radius": float(model.foot_radius) - sink0, "nominal_height": h1,
            "contact_stiffness": stiffness, "contact_damping": damping}, notes


# ---- the entry point ------------------------------------------------------------------------
def import_robot(path: str | Path, *, kp: float | Sequence[float] | None = None,
                 kd: float | Sequence[float] | None = None, pose: Sequence[float] | None = None) -> Robot:
    """The quadruped described by the MJCF or URDF file at ``path`` as a ``Robot``.

    Args:
        kp, kd: PD gains (N·m/rad, N·m·s/rad): one number, 3 (hip, thigh, calf) or 12 (FL FR RL
            RR x hip thigh calf); None: from the file's position actuators (required for motors).
        pose: the standing pose (same shapes, rad); None: the file's keyframe ``home``.
    Raises: RobotImportError (one line) for anything unsupported.
    """
    mujoco = require_mujoco()
    path = Path(path)
    spec, notes = read_spec(path)
    try:
        m = spec.compile()
    except Exception as exc:
        raise RobotImportError(f"robot file {path}: MuJoCo cannot compile it: {_first_line(exc)}") from None
    mm = _Model(mujoco, m, path)
    fields, mapping, more = _analyse(mm, kp, kd, pose)
    notes += more
    custom = _quadlit_numerics(mujoco, m)
    if CUSTOM_VEL_LIMIT in custom:
        fields["joint_vel_limit"] = custom[CUSTOM_VEL_LIMIT]
        notes.append("motor velocity limits from quadlit's export")
    try:
        record = robot_model(fields)
    except ValueError as exc:
        raise RobotImportError(f"robot file {path}: {exc}") from None
    feet = reference_forward_kinematics(record, np.zeros(3), np.array([1.0, 0.0, 0.0, 0.0]), record.default_q)[:, 3]
    if np.any(feet[:, 2] > -2.0 * record.foot_radius):
        raise RobotImportError(f"robot file {path}: in its standing pose the feet are not below the trunk (foot "
                               f"heights {np.round(feet[:, 2], 3).tolist()} m in the trunk frame): quadlit needs the "
                               "trunk frame's z axis up and x forward")
    name = str(spec.modelname or path.stem)
    robot = Robot(name=name, model=record, source=str(path.resolve()), source_sha256=_sha256(path),
                  mjcf=spec.to_xml(), notes=tuple(notes), **mapping)
    if CUSTOM_CONTACT in custom and CUSTOM_NOMINAL_HEIGHT in custom:
        # a robot quadlit exported says its own contact: the same record back, not a re-measured one
        calibrated = {"nominal_height": float(custom[CUSTOM_NOMINAL_HEIGHT][0]),
                      "contact_stiffness": float(custom[CUSTOM_CONTACT][0]),
                      "contact_damping": float(custom[CUSTOM_CONTACT][1])}
        more = ["foot contact and nominal height from quadlit's export"]
    else:
        calibrated, more = _calibrate(robot)
    contact = {k: calibrated.pop(k) for k in ("contact_stiffness", "contact_damping")}
    fields.update(calibrated)
    if fields["shank_radius"] > 1.5 * fields["foot_radius"]:
        # the shank stops a foot radius short of the foot centre: thicker, it would touch the
        # ground beside a standing foot
        more.append(f"shank radius {1000 * fields['shank_radius']:.1f} mm cut to 1.5 foot radii")
        fields["shank_radius"] = 1.5 * fields["foot_radius"]
    record = robot_model(fields)
    return Robot(**{**robot.__dict__, "model": record, **contact, "notes": tuple(notes + more)})


def _quadlit_numerics(mujoco, m) -> dict[str, np.ndarray]:
    """The ``<custom><numeric>`` entries ``quadlit export-mjcf`` writes, where the file has them."""
    out = {}
    for name, size in ((CUSTOM_VEL_LIMIT, 12), (CUSTOM_CONTACT, 2), (CUSTOM_NOMINAL_HEIGHT, 1)):
        i = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_NUMERIC, name)
        if i >= 0 and m.numeric_size[i] == size:
            adr = int(m.numeric_adr[i])
            out[name] = np.array(m.numeric_data[adr:adr + size], dtype=np.float64)
    return out
