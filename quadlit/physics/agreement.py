"""How closely quadlit's physics of an imported robot agrees with MuJoCo on the robot's own file.

Used by the importer's tests and by ``quadlit bench robots``. Each function runs both engines on
the same robot and returns both readings:

* ``dynamics_agreement``: mass matrix, bias forces (gravity, Coriolis, centrifugal) and foot
  positions at random states (no contacts: rigid-body dynamics only);
* ``standing``: the trunk height and foot heights after the robot settles holding its standing
  pose (quadlit's PD law in both; the contact mapping's static error);
* ``limp_drop``: the trunk height after a limp robot (no motor torque) is dropped level;
* ``drop_bounce``: a robot holding its pose dropped from a little above its standing height: the
  lowest trunk height and the rebound above where it settles (the contact's damping).

MuJoCo runs the robot's file as ``importer.servo_spec`` prepares it (its own timestep, solver,
contact, damping, armature and friction loss; its actuators replaced by quadlit's PD law) on a
default floor; quadlit runs its record with the robot's foot contact at 1 ms substeps.
"""

from __future__ import annotations

import numpy as np

from quadlit.physics.api import forward_dynamics, forward_kinematics, mass_matrix, step
from quadlit.physics.importer import ServoLayout, require_mujoco, servo_layout, servo_spec
from quadlit.physics.model import MOTOR_PD, MOTOR_TORQUE, EnvParams
from quadlit.physics.robot import Robot
from quadlit.physics.state import PhysicsState


def mujoco_model(robot: Robot, *, floor: bool = True, servos: bool = True):
    """The robot's own file in MuJoCo with quadlit's PD servos (gains zero when ``servos`` is
    False: a limp robot) and a floor; returns (mujoco, MjModel, ServoLayout)."""
    mujoco = require_mujoco("comparing with MuJoCo")
    spec, names = servo_spec(robot, floor=floor)
    m = spec.compile()
    if not servos:
        m.actuator_gainprm[:, 0] = 0.0
        m.actuator_biasprm[:, 1:3] = 0.0
    return mujoco, m, servo_layout(mujoco, m, robot, names)


def _set_mujoco_state(m, d, lay: ServoLayout, pos, quat, q, v=None, w=None, qd=None) -> None:
    """A quadlit state (trunk pose, quadlit joint angles, velocities) into MuJoCo's qpos/qvel."""
    d.qpos[:] = m.qpos0
    d.qpos[lay.free_qpos:lay.free_qpos + 3] = pos
    d.qpos[lay.free_qpos + 3:lay.free_qpos + 7] = quat
    d.qpos[lay.qpos] = np.asarray(q) + lay.ref
    d.qvel[:] = 0.0
    if v is not None:
        d.qvel[lay.free_dof:lay.free_dof + 3] = v
        d.qvel[lay.free_dof + 3:lay.free_dof + 6] = w
        d.qvel[lay.dof] = qd


def dynamics_agreement(robot: Robot, states: int = 1000, seed: int = 0) -> dict[str, float]:
    """Rigid-body dynamics of the record against MuJoCo's at ``states`` random states (random
    orientation, joint angles over +-pi, velocities): the largest difference of the mass matrix
    and of the bias forces, each relative to the largest entry of MuJoCo's, and of the foot
    centres' world positions (m)."""
    mujoco, m, lay = mujoco_model(robot, floor=False)
    d = mujoco.MjData(m)
    rng = np.random.default_rng(seed)
    n = int(states)
    pos = rng.normal(size=(n, 3))
    quat = rng.normal(size=(n, 4))
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    q = rng.uniform(-np.pi, np.pi, (n, 12))
    v, w, qd = rng.normal(size=(n, 3)), 3.0 * rng.normal(size=(n, 3)), 5.0 * rng.normal(size=(n, 12))
    index = np.concatenate([lay.free_dof + np.arange(6), lay.dof])  # quadlit's 18 dofs in MuJoCo's
    model = robot.model
    H = mass_matrix(model, quat, q)
    # bias forces: the accelerations without torques (damping cancelled), times the mass matrix
    acc = forward_dynamics(model, quat, q, v, w, qd, np.asarray(model.joint_damping) * qd)
    bias = -np.einsum("nij,nj->ni", H, acc)
    feet = forward_kinematics(model, pos, quat, q)[:, :, 3]
    full = np.zeros((m.nv, m.nv))
    err_m = err_c = err_f = 0.0
    for k in range(n):
        _set_mujoco_state(m, d, lay, pos[k], quat[k], q[k], v[k], w[k], qd[k])
        mujoco.mj_forward(m, d)
        mujoco.mj_fullM(m, d, full)
        mm = full[np.ix_(index, index)]
        cc = d.qfrc_bias[index]
        err_m = max(err_m, np.abs(H[k] - mm).max() / np.abs(mm).max())
        err_c = max(err_c, np.abs(bias[k] - cc).max() / np.abs(cc).max())
        err_f = max(err_f, np.abs(feet[k] - d.geom_xpos[lay.feet]).max())
    return {"mass_matrix": float(err_m), "bias": float(err_c), "feet": float(err_f)}


def _quadlit_run(robot: Robot, height: float, seconds: float, motor_mode: int, trace: bool = False):
    """quadlit's engine: the robot level at ``height`` in its standing pose, at rest, stepped for
    ``seconds`` with zero actions (``MOTOR_PD``: hold the pose; ``MOTOR_TORQUE``: limp). Returns
    the final state and, with ``trace``, the trunk height after every 1 ms substep."""
    model = robot.model
    sim = robot.sim_params(motor_mode=motor_mode, substeps=1)
    st = PhysicsState.allocate(1)
    st.set_standing(model, height=height)
    envp = EnvParams.allocate(1)
    zero = np.zeros((1, 12))
    heights = []
    for _ in range(int(round(seconds / sim.dt))):
        step(model, sim, envp, st, zero)
        if trace:
            heights.append(float(st.base_pos[0, 2]))
    return st, np.array(heights)


def _mujoco_run(robot: Robot, height: float, seconds: float, servos: bool, trace: bool = False):
    """MuJoCo on the robot's file, started as ``_quadlit_run`` starts quadlit's engine. Returns
    (MjData, layout, trunk heights every 1 ms or every timestep if coarser)."""
    mujoco, m, lay = mujoco_model(robot, servos=servos)
    d = mujoco.MjData(m)
    model = robot.model
    _set_mujoco_state(m, d, lay, (0.0, 0.0, height), (1.0, 0.0, 0.0, 0.0), model.default_q)
    d.ctrl[:] = np.asarray(model.default_q) + lay.ref
    heights = []
    for _ in range(int(round(seconds / m.opt.timestep))):
        mujoco.mj_step(m, d)
        if trace:
            heights.append(float(d.qpos[lay.free_qpos + 2]))
    return d, lay, np.array(heights), float(m.opt.timestep)


def standing(robot: Robot, seconds: float = 2.0) -> dict[str, float]:
    """Both engines settle the robot holding its standing pose from its standing height (feet
    just touching): trunk height (m) and mean foot-centre height (m) in each."""
    model = robot.model
    st, _ = _quadlit_run(robot, float(model.standing_height), seconds, MOTOR_PD)
    feet = forward_kinematics(model, st.base_pos[0], st.base_quat[0], st.joint_pos[0])[0, :, 3, 2]
    d, lay, _, _ = _mujoco_run(robot, float(model.standing_height), seconds, servos=True)
    return {"quadlit_height": float(st.base_pos[0, 2]), "mujoco_height": float(d.qpos[lay.free_qpos + 2]),
            "quadlit_foot_z": float(feet.mean()), "mujoco_foot_z": float(d.geom_xpos[lay.feet][:, 2].mean())}


def limp_drop(robot: Robot, height: float = 0.4, seconds: float = 1.0) -> dict[str, float]:
    """A limp robot (no motor torque) in its standing pose dropped level from ``height`` m: the
    trunk height after ``seconds`` in each engine (m)."""
    st, _ = _quadlit_run(robot, height, seconds, MOTOR_TORQUE)
    d, lay, _, _ = _mujoco_run(robot, height, seconds, servos=False)
    return {"quadlit_height": float(st.base_pos[0, 2]), "mujoco_height": float(d.qpos[lay.free_qpos + 2])}


def drop_bounce(robot: Robot, drop: float = 0.05, seconds: float = 1.0) -> dict[str, float]:
    """The robot holding its pose dropped from ``drop`` m above its standing height: in each
    engine the lowest trunk height (m) and the rebound, the highest trunk height after that
    lowest point above where it ends (m)."""
    model = robot.model
    start = float(model.standing_height) + drop
    _, zq = _quadlit_run(robot, start, seconds, MOTOR_PD, trace=True)
    _, _, zm, _ = _mujoco_run(robot, start, seconds, servos=True, trace=True)
    out = {}
    for name, z in (("quadlit", zq), ("mujoco", zm)):
        low = int(np.argmin(z[: len(z) // 2]))
        out[f"{name}_lowest"] = float(z[low])
        out[f"{name}_rebound"] = float(z[low:].max() - z[-1])
    return out

