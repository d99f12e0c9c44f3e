"""One control step of the quadruped: motors -> joint limits -> contacts -> dynamics ->
semi-implicit integration, repeated for every physics substep, then the non-finite check and
the agent-centred shift. ``control_step_env`` is the per-environment building block a task's
own fused kernel calls inside its env loop; ``step_shard`` / ``step_parallel`` loop over envs.
This scalar code is the reference; ``block.py`` is the same step vectorised over blocks of
environments (about 3x faster), checked against it in the tests.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from quadlit.physics.dynamics import (
    JIT,
    aba_accelerations,
    add_point_force,
    bias_and_mass_matrix,
    kinematics,
    new_workspace,
    point_velocity,
    quat_to_rot,
    solve_accelerations,
    velocities,
)
from quadlit.physics.model import MOTOR_PD, EnvParams, RobotModel, SimParams
from quadlit.physics.state import STATUS_NONFINITE, STATUS_OK, PhysicsState

# A state beyond these bounds is treated as diverged (flagged like a non-finite one).
MAX_LIN_VEL = 100.0  # m/s
MAX_ANG_VEL = 1.0e3  # rad/s (trunk and joints)
MAX_HEIGHT = 1.0e3  # m


# ----------------------------------------------------------------------------- motor model

@nb.njit(inline="always", **JIT)
def motor_command(model: RobotModel, sim: SimParams, strength, j, a):
    """Per-control-step motor command of joint ``j`` from action ``a`` (clipped to [-1, 1]):
    the PD target angle (rad) in ``pd`` mode, the torque (N·m) in ``torque`` mode."""
    if a > 1.0:
        a = 1.0
    elif a < -1.0:
        a = -1.0
    elif not (a == a):  # NaN action: hold the default pose / no torque
        a = 0.0
    if sim.motor_mode == MOTOR_PD:
        return model.default_q[j] + sim.action_scale * a
    return a * model.joint_torque_limit[j] * strength


@nb.njit(inline="always", **JIT)
def apply_motor_torques(model: RobotModel, sim: SimParams, j, command, q, qd, strength, kp_scale, kd_scale):
    """Motor torque of joint ``j`` (N·m) at joint angle ``q`` and velocity ``qd``.

    ``pd``: tau = Kp (command - q) - Kd qd; ``torque``: tau = command. Then clipped to
    +-torque_limit * strength, and zeroed if it would push a joint already faster than its
    velocity limit further (a motor does no positive work beyond its no-load speed).
    """
    if sim.motor_mode == MOTOR_PD:
        tau = model.kp[j] * kp_scale * (command - q) - model.kd[j] * kd_scale * qd
    else:
        tau = command
    lim = model.joint_torque_limit[j] * strength
    if tau > lim:
        tau = lim
    elif tau < -lim:
        tau = -lim
    if tau * qd > 0.0 and abs(qd) > model.joint_vel_limit[j]:
        tau = 0.0
    return tau


@nb.njit(inline="always", **JIT)
def joint_limit_torque(model: RobotModel, sim: SimParams, j, q, qd):
    """One-sided spring-damper torque (N·m) pushing joint ``j`` back inside its range; never pulls."""
    tau = 0.0
    if q < model.joint_lower[j]:
        tau = sim.limit_stiffness * (model.joint_lower[j] - q) - sim.limit_damping * qd
        if tau < 0.0:
            tau = 0.0
    elif q > model.joint_upper[j]:
        tau = sim.limit_stiffness * (model.joint_upper[j] - q) - sim.limit_damping * qd
        if tau > 0.0:
            tau = 0.0
    return tau


# ----------------------------------------------------------------------------- contacts

@nb.njit(**JIT)
def ground_contacts(model: RobotModel, sim: SimParams, ws):
    """Foot-ground spring-damper forces with regularised (stick-spring) Coulomb friction, added
    to ``ws.Q``. Updates the per-foot stick springs ``ws.slip`` and ``ws.contact``.
    Needs ``kinematics`` and ``velocities``.

    Normal force ``max(0, k pen - c vz)``; tangential force from a spring-damper anchored where
    the foot touched down (it sticks: no creep), capped at ``friction * normal`` (then it slides
    and the anchor follows: Coulomb)."""
    R, p, V, slip = ws.R, ws.p, ws.V, ws.slip
    r = model.foot_radius
    kt = sim.friction_stiffness
    ct = sim.friction_damping
    dt = sim.dt
    base_z = ws.pos[2]
    for leg in range(4):
        b = 3 + 3 * leg
        fx, fy, fz = model.foot_pos[leg, 0], model.foot_pos[leg, 1], model.foot_pos[leg, 2]
        x0 = p[b, 0] + R[b, 0, 0] * fx + R[b, 0, 1] * fy + R[b, 0, 2] * fz
        x1 = p[b, 1] + R[b, 1, 0] * fx + R[b, 1, 1] * fy + R[b, 1, 2] * fz
        x2 = p[b, 2] + R[b, 2, 0] * fx + R[b, 2, 1] * fy + R[b, 2, 2] * fz
        pen = r - (base_z + x2)
        if pen > 0.0:
            c2 = x2 - r  # lowest point of the sphere
            v0, v1, v2 = point_velocity(V, b, x0, x1, c2)
            fn = sim.contact_stiffness * pen - sim.contact_damping * v2
            if fn < 0.0:
                fn = 0.0
            ux = slip[leg, 0] + v0 * dt
            uy = slip[leg, 1] + v1 * dt
            ftx = -kt * ux - ct * v0
            fty = -kt * uy - ct * v1
            fmax = ws.friction * fn
            ft2 = ftx * ftx + fty * fty
            if ft2 > fmax * fmax:  # sliding: Coulomb force, anchor re-placed at the limit
                scale = fmax / math.sqrt(ft2)
                ftx *= scale
                fty *= scale
                ux = -ftx / kt
                uy = -fty / kt
            slip[leg, 0] = ux
            slip[leg, 1] = uy
            add_point_force(model, ws, b, x0, x1, c2, ftx, fty, fn)
            ws.contact[leg] = 1.0
        else:
            slip[leg, 0] = 0.0
            slip[leg, 1] = 0.0
            ws.contact[leg] = 0.0


@nb.njit(**JIT)
def body_touches_ground(model: RobotModel, ws):
    """True if the trunk box or a knee touches the ground (detection only, no force)."""
    R0 = ws.R[0]
    base_z = ws.pos[2]
    hx, hy, hz = model.trunk_half_extents[0], model.trunk_half_extents[1], model.trunk_half_extents[2]
    lowest = base_z - (abs(R0[2, 0]) * hx + abs(R0[2, 1]) * hy + abs(R0[2, 2]) * hz)
    touched = lowest < 0.0
    for leg in range(4):
        touched = touched or (base_z + ws.p[3 + 3 * leg, 2] < model.knee_radius)
    return touched


# ----------------------------------------------------------------------------- integration

@nb.njit(inline="always", **JIT)
def _integrate_quat(ws, w0, w1, w2, dt):
    """quat <- quat * exp(omega_body dt / 2), renormalised (exact for constant omega)."""
    quat = ws.quat
    wn = math.sqrt(w0 * w0 + w1 * w1 + w2 * w2)
    th = 0.5 * dt * wn
    if th < 1e-4:
        s = 0.5 * dt * (1.0 - th * th / 6.0)
    else:
        s = math.sin(th) / wn
    c = math.cos(th)
    e0, e1, e2 = s * w0, s * w1, s * w2
    w, x, y, z = quat[0], quat[1], quat[2], quat[3]
    nw = w * c - (x * e0 + y * e1 + z * e2)
    nx = w * e0 + x * c + (y * e2 - z * e1)
    ny = w * e1 + y * c + (z * e0 - x * e2)
    nz = w * e2 + z * c + (x * e1 - y * e0)
    inv = 1.0 / math.sqrt(nw * nw + nx * nx + ny * ny + nz * nz)
    quat[0] = nw * inv
    quat[1] = nx * inv
    quat[2] = ny * inv
    quat[3] = nz * inv


@nb.njit(**JIT)
def integrate(sim: SimParams, ws):
    """Semi-implicit Euler: velocities from ``ws.acc``, then positions from the new velocities,
    the quaternion by the exponential map of the new trunk-frame angular velocity."""
    dt = sim.dt
    acc, V, R0, v, wb, q, qd, pos = ws.acc, ws.V, ws.R[0], ws.v, ws.wb, ws.q, ws.qd, ws.pos
    w0, w1, w2 = V[0, 0], V[0, 1], V[0, 2]
    # classical acceleration of the trunk origin = spatial acceleration + omega x v
    a0 = acc[3] + w1 * v[2] - w2 * v[1]
    a1 = acc[4] + w2 * v[0] - w0 * v[2]
    a2 = acc[5] + w0 * v[1] - w1 * v[0]
    v[0] += dt * a0
    v[1] += dt * a1
    v[2] += dt * a2
    # d/dt omega_body = R^T d/dt omega_world
    wb[0] += dt * (R0[0, 0] * acc[0] + R0[1, 0] * acc[1] + R0[2, 0] * acc[2])
    wb[1] += dt * (R0[0, 1] * acc[0] + R0[1, 1] * acc[1] + R0[2, 1] * acc[2])
    wb[2] += dt * (R0[0, 2] * acc[0] + R0[1, 2] * acc[1] + R0[2, 2] * acc[2])
    for j in range(12):
        qd[j] += dt * acc[6 + j]
        q[j] += dt * qd[j]
    pos[0] += dt * v[0]
    pos[1] += dt * v[1]
    pos[2] += dt * v[2]
    _integrate_quat(ws, wb[0], wb[1], wb[2], dt)


# ----------------------------------------------------------------------------- control step

@nb.njit(**JIT)
def substep(model: RobotModel, sim: SimParams, ws, use_aba):
    """One physics substep of the env held in ``ws`` with the motor commands ``ws.target``:
    actuators -> joint limits -> contacts -> dynamics -> integration."""
    q, qd, Q = ws.q, ws.qd, ws.Q
    kinematics(model, ws)
    velocities(model, ws)
    for k in range(6):
        Q[k] = 0.0
    for j in range(12):
        tau = apply_motor_torques(model, sim, j, ws.target[j], q[j], qd[j], ws.strength, ws.kp_scale, ws.kd_scale)
        ws.torque[j] += tau
        ws.power += abs(tau * qd[j])
        extra = -model.joint_damping[j] * qd[j]
        if sim.joint_limits != 0:
            extra += joint_limit_torque(model, sim, j, q[j], qd[j])
        Q[6 + j] = tau + extra
    if sim.contacts != 0:
        ground_contacts(model, sim, ws)
    if body_touches_ground(model, ws):
        ws.body_touch = 1.0
    if use_aba:
        aba_accelerations(model, sim.gravity, ws)
    else:
        bias_and_mass_matrix(model, sim.gravity, ws)
        solve_accelerations(ws)
    integrate(sim, ws)


@nb.njit(**JIT)
def _load_env(envp: EnvParams, st: PhysicsState, i, ws):
    for k in range(3):
        ws.pos[k] = st.base_pos[i, k]
        ws.v[k] = st.base_lin_vel[i, k]
        ws.wb[k] = st.base_ang_vel[i, k]
    for k in range(4):
        ws.quat[k] = st.base_quat[i, k]
        ws.slip[k, 0] = st.foot_slip[i, k, 0]
        ws.slip[k, 1] = st.foot_slip[i, k, 1]
        ws.contact[k] = 0.0
    for j in range(12):
        ws.q[j] = st.joint_pos[i, j]
        ws.qd[j] = st.joint_vel[i, j]
        ws.torque[j] = 0.0
    ws.power = 0.0
    ws.body_touch = 0.0
    ws.friction = envp.friction[i]
    ws.added_mass = envp.added_mass[i]
    ws.strength = envp.motor_strength[i]
    ws.kp_scale = envp.kp_scale[i]
    ws.kd_scale = envp.kd_scale[i]


@nb.njit(**JIT)
def _ws_ok(ws):
    """Finite and within the divergence bounds (NaN fails every comparison)."""
    ok = abs(ws.pos[0]) < MAX_HEIGHT and abs(ws.pos[1]) < MAX_HEIGHT and abs(ws.pos[2]) < MAX_HEIGHT
    for k in range(4):
        ok = ok and abs(ws.quat[k]) <= 1.0 + 1e-6
        ok = ok and abs(ws.slip[k, 0]) < MAX_HEIGHT and abs(ws.slip[k, 1]) < MAX_HEIGHT
    for k in range(3):
        ok = ok and abs(ws.v[k]) < MAX_LIN_VEL and abs(ws.wb[k]) < MAX_ANG_VEL
    for j in range(12):
        ok = ok and abs(ws.q[j]) < MAX_ANG_VEL and abs(ws.qd[j]) < MAX_ANG_VEL
        ok = ok and abs(ws.torque[j]) < 1e12
    return ok


@nb.njit(**JIT)
def _store_env(sim: SimParams, st: PhysicsState, i, ws):
    inv_sub = 1.0 / sim.substeps
    if _ws_ok(ws):
        # agent-centred world: move the trunk back over the origin, remember where it was
        st.world_offset[i, 0] += ws.pos[0]
        st.world_offset[i, 1] += ws.pos[1]
        st.base_pos[i, 0] = 0.0
        st.base_pos[i, 1] = 0.0
        st.base_pos[i, 2] = ws.pos[2]
        for k in range(3):
            st.base_lin_vel[i, k] = ws.v[k]
            st.base_ang_vel[i, k] = ws.wb[k]
        for k in range(4):
            st.base_quat[i, k] = ws.quat[k]
            st.foot_slip[i, k, 0] = ws.slip[k, 0]
            st.foot_slip[i, k, 1] = ws.slip[k, 1]
            st.foot_contact[i, k] = ws.contact[k] > 0.0
        for j in range(12):
            st.joint_pos[i, j] = ws.q[j]
            st.joint_vel[i, j] = ws.qd[j]
            st.joint_torque[i, j] = ws.torque[j] * inv_sub
        st.motor_power[i] = ws.power * inv_sub
        st.body_contact[i] = ws.body_touch > 0.0
        st.status[i] = STATUS_OK
        return STATUS_OK
    flag_nonfinite(st, i)
    st.body_contact[i] = ws.body_touch > 0.0
    return STATUS_NONFINITE


@nb.njit(**JIT)
def flag_nonfinite(st: PhysicsState, i):
    """Env ``i`` produced a non-finite or diverged state: keep its start-of-step pose (still in
    ``st``), at rest, and flag it; the task resets it."""
    for k in range(3):
        st.base_lin_vel[i, k] = 0.0
        st.base_ang_vel[i, k] = 0.0
    for k in range(4):
        st.foot_slip[i, k, 0] = 0.0
        st.foot_slip[i, k, 1] = 0.0
        st.foot_contact[i, k] = False
    for j in range(12):
        st.joint_vel[i, j] = 0.0
        st.joint_torque[i, j] = 0.0
    st.motor_power[i] = 0.0
    st.status[i] = STATUS_NONFINITE


@nb.njit(**JIT)
def _control_step_env(model, sim, envp, st, i, action, ws, use_aba):
    _load_env(envp, st, i, ws)
    for j in range(12):
        ws.target[j] = motor_command(model, sim, ws.strength, j, action[j])
    for _ in range(sim.substeps):
        substep(model, sim, ws, use_aba)
    return _store_env(sim, st, i, ws)


@nb.njit(**JIT)
def control_step_env(model: RobotModel, sim: SimParams, envp: EnvParams, st: PhysicsState, i, action, ws_buf):
    """Advance environment ``i`` by one control step (``sim.substeps`` physics substeps).

    Args:
        model: the robot record. sim: batch simulation parameters. envp: per-env parameters.
        st: the batch state; row ``i`` is read and written (also its outputs ``foot_contact``,
            ``body_contact``, ``joint_torque``, ``motor_power``, ``status``).
        action: (12,) float32/float64 in [-1, 1] (clipped; NaN treated as 0), interpreted by
            ``sim.motor_mode``.
        ws_buf: a workspace buffer from ``new_workspace()`` (one per thread, reused for every
            env of the kernel call).
    Returns: ``STATUS_OK`` (0) or ``STATUS_NONFINITE`` (1: the step produced a non-finite or
        diverged state; the env keeps its start-of-step pose with zero velocities and the
        task should reset it).
    """
    return _control_step_env(model, sim, envp, st, i, action, ws_buf[0], False)


@nb.njit(**JIT)
def step_shard(model: RobotModel, sim: SimParams, envp: EnvParams, st: PhysicsState, actions, lo, hi):
    """Advance envs ``lo..hi-1`` by one control step (nogil: run shards on a ``ShardPool``).

    Args: actions: (N, 12) float32/float64 in [-1, 1].
    Returns: number of envs flagged non-finite in this shard.
    """
    buf = new_workspace()
    ws = buf[0]
    flagged = 0
    for i in range(lo, hi):
        flagged += _control_step_env(model, sim, envp, st, i, actions[i], ws, False)
    return flagged + 0 * buf.size  # buf stays alive while ws (a view into it) is used


@nb.njit(**JIT)
def step_shard_aba(model: RobotModel, sim: SimParams, envp: EnvParams, st: PhysicsState, actions, lo, hi):
    """``step_shard`` with the articulated-body algorithm instead of CRBA + block Cholesky
    (kept for the benchmark's comparison; same results to rounding)."""
    buf = new_workspace()
    ws = buf[0]
    flagged = 0
    for i in range(lo, hi):
        flagged += _control_step_env(model, sim, envp, st, i, actions[i], ws, True)
    return flagged + 0 * buf.size


@nb.njit(parallel=True, **JIT)
def step_parallel(model_buf, sim: SimParams, envp: EnvParams, st: PhysicsState, actions, num_chunks):
    """All envs by one control step with Numba ``prange`` over ``num_chunks`` contiguous chunks.

    ``model_buf``: the robot record as a 1-element ``MODEL_DTYPE`` array
    (``np.array([model])``; Numba's parallel backend cannot take a bare record argument).
    Returns the number of flagged envs."""
    n = st.base_pos.shape[0]
    counts = np.zeros(num_chunks, dtype=np.int64)
    for c in nb.prange(num_chunks):
        lo = (c * n) // num_chunks
        hi = ((c + 1) * n) // num_chunks
        counts[c] = step_shard(model_buf[0], sim, envp, st, actions, lo, hi)
    return counts.sum()


# ----------------------------------------------------------------------------- task helpers

@nb.njit(inline="always", **JIT)
def gravity_in_trunk(base_quat, i):
    """Unit gravity direction in the trunk frame of env ``i``, (gx, gy, gz); (0, 0, -1) when
    level. ``base_quat``: (N, 4) wxyz (``PhysicsState.base_quat``)."""
    w, x, y, z = base_quat[i, 0], base_quat[i, 1], base_quat[i, 2], base_quat[i, 3]
    # R^T (0, 0, -1) = -(third row of R)
    return -2.0 * (x * z - w * y), -2.0 * (y * z + w * x), -(1.0 - 2.0 * (x * x + y * y))


@nb.njit(inline="always", **JIT)
def lin_vel_in_trunk(base_quat, base_lin_vel, i):
    """Trunk origin velocity of env ``i`` in the trunk frame, m/s: R^T v_world."""
    w, x, y, z = base_quat[i, 0], base_quat[i, 1], base_quat[i, 2], base_quat[i, 3]
    v0, v1, v2 = base_lin_vel[i, 0], base_lin_vel[i, 1], base_lin_vel[i, 2]
    r00 = 1.0 - 2.0 * (y * y + z * z)
    r01 = 2.0 * (x * y - w * z)
    r02 = 2.0 * (x * z + w * y)
    r10 = 2.0 * (x * y + w * z)
    r11 = 1.0 - 2.0 * (x * x + z * z)
    r12 = 2.0 * (y * z - w * x)
    r20 = 2.0 * (x * z - w * y)
    r21 = 2.0 * (y * z + w * x)
    r22 = 1.0 - 2.0 * (x * x + y * y)
    return r00 * v0 + r10 * v1 + r20 * v2, r01 * v0 + r11 * v1 + r21 * v2, r02 * v0 + r12 * v1 + r22 * v2


@nb.njit(inline="always", **JIT)
def ang_vel_in_trunk(base_ang_vel, i):
    """Trunk angular velocity of env ``i`` in the trunk frame, rad/s (stored that way)."""
    return base_ang_vel[i, 0], base_ang_vel[i, 1], base_ang_vel[i, 2]


@nb.njit(inline="always", **JIT)
def trunk_rotation(base_quat, i, R_out):
    """Write the trunk -> world rotation matrix (3, 3) of env ``i`` into ``R_out``."""
    quat_to_rot(base_quat[i], R_out)


@nb.njit(inline="always", **JIT)
def kick_env(base_lin_vel, i, dvx, dvy):
    """Add a horizontal world-frame velocity kick (m/s) to env ``i``'s trunk."""
    base_lin_vel[i, 0] += dvx
    base_lin_vel[i, 1] += dvy


@nb.njit(**JIT)
def leg_points(model: RobotModel, ws, out):
    """World positions of each leg's hip joint, thigh joint, knee joint and foot centre for the
    robot in ``ws`` (``ws.pos``, ``ws.quat``, ``ws.q``), m, into ``out`` (4, 4, 3)."""
    kinematics(model, ws)
    R, p = ws.R, ws.p
    ox, oy, oz = ws.pos[0], ws.pos[1], ws.pos[2]
    for leg in range(4):
        for k in range(3):
            b = 1 + 3 * leg + k
            out[leg, k, 0] = ox + p[b, 0]
            out[leg, k, 1] = oy + p[b, 1]
            out[leg, k, 2] = oz + p[b, 2]
        b = 3 + 3 * leg
        fx, fy, fz = model.foot_pos[leg, 0], model.foot_pos[leg, 1], model.foot_pos[leg, 2]
        out[leg, 3, 0] = ox + p[b, 0] + R[b, 0, 0] * fx + R[b, 0, 1] * fy + R[b, 0, 2] * fz
        out[leg, 3, 1] = oy + p[b, 1] + R[b, 1, 0] * fx + R[b, 1, 1] * fy + R[b, 1, 2] * fz
        out[leg, 3, 2] = oz + p[b, 2] + R[b, 2, 0] * fx + R[b, 2, 1] * fy + R[b, 2, 2] * fz


@nb.njit(**JIT)
def leg_points_env(model: RobotModel, st: PhysicsState, i, out, ws_buf):
    """Forward kinematics of env ``i`` in true world coordinates (``world_offset`` added back):
    (4 legs FL FR RL RR, 4 points hip joint / thigh joint / knee joint / foot centre, xyz), m,
    written into ``out`` (4, 4, 3). ``ws_buf`` from ``new_workspace()``."""
    ws = ws_buf[0]
    for k in range(3):
        ws.pos[k] = st.base_pos[i, k]
    ws.pos[0] += st.world_offset[i, 0]
    ws.pos[1] += st.world_offset[i, 1]
    for k in range(4):
        ws.quat[k] = st.base_quat[i, k]
    for j in range(12):
        ws.q[j] = st.joint_pos[i, j]
    ws.added_mass = 0.0
    leg_points(model, ws, out)
