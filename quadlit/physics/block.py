"""SIMD path: the same control step for a block of ``BLOCK`` environments at once.

The scalar kernels in ``dynamics.py``/``step.py`` are the reference. Here every quantity of the
workspace carries a trailing lane axis of ``BLOCK`` environments, every arithmetic statement is
a loop over lanes with a compile-time trip count, branches become selects, and no function is
called inside a lane loop unless it is inlined at Numba-IR level and takes scalars only — what
it takes for LLVM to emit packed AVX2/AVX-512 code (with ``error_model="numpy"``; check
``kernel.inspect_asm(sig)`` for packed ``zmm``/``ymm`` instructions). Joint sines/cosines are
computed exactly once per control step and advanced by the angle-addition formula each substep
(libm's sin/cos do not vectorise); the trunk quaternion uses a Taylor exponential map. Results
match the scalar kernel to rounding (about 1e-12 after a control step), not bit for bit.

Body and joint indices are compile-time constants in every lane loop (the per-joint helpers are
compiled per literal index with ``numba.literally``): with runtime indices LLVM cannot prove
that a body's rows and its parent's do not overlap and leaves those loops scalar. This costs
compile time (about 40 s once; ``cache=True`` keeps it) and is ~20 % faster than looping over
legs at run time (measured).

Public state stays one row per environment: a block is gathered from ``PhysicsState`` at the
start of a control step and scattered back at its end, where the non-finite check and the
agent-centred shift happen per environment exactly as in ``control_step_env``.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from quadlit.physics.model import MOTOR_PD, EnvParams, RobotModel, SimParams
from quadlit.physics.state import STATUS_OK, PhysicsState
from quadlit.physics.step import MAX_ANG_VEL, MAX_HEIGHT, MAX_LIN_VEL, flag_nonfinite

BLOCK = 32
"""Environments per block (lanes). 32, not 16: LLVM treats loops of fewer than 17 iterations as
"tiny" and then refuses the runtime alias checks some lane loops need (measured: the solve
stayed scalar with 16)."""

JITB = dict(cache=True, nogil=True, error_model="numpy", boundscheck=False)

_f8 = np.float64
BLOCK_DTYPE = np.dtype([
    ("pos", _f8, (3, BLOCK)), ("quat", _f8, (4, BLOCK)), ("q", _f8, (12, BLOCK)),
    ("v", _f8, (3, BLOCK)), ("wb", _f8, (3, BLOCK)), ("qd", _f8, (12, BLOCK)),
    ("slip", _f8, (4, 2, BLOCK)), ("contact", _f8, (4, BLOCK)), ("torque", _f8, (12, BLOCK)),
    ("power", _f8, (BLOCK,)), ("touch", _f8, (BLOCK,)),
    ("friction", _f8, (BLOCK,)), ("mass0", _f8, (BLOCK,)), ("strength", _f8, (BLOCK,)),
    ("kp_scale", _f8, (BLOCK,)), ("kd_scale", _f8, (BLOCK,)),
    ("target", _f8, (12, BLOCK)), ("cq", _f8, (12, BLOCK)), ("sq", _f8, (12, BLOCK)),
    ("R", _f8, (13, 3, 3, BLOCK)), ("p", _f8, (13, 3, BLOCK)), ("S", _f8, (12, 6, BLOCK)),
    ("I", _f8, (13, 10, BLOCK)),  # body spatial inertia at O, then composite (10-parameter form)
    ("V", _f8, (13, 6, BLOCK)), ("A", _f8, (13, 6, BLOCK)), ("f", _f8, (13, 6, BLOCK)),
    ("F", _f8, (12, 6, BLOCK)),  # composite inertia times S_j = H[trunk, j]
    ("Hl", _f8, (4, 3, 3, BLOCK)),  # leg blocks of H
    ("Q", _f8, (18, BLOCK)), ("C", _f8, (18, BLOCK)), ("acc", _f8, (18, BLOCK)),
    ("L", _f8, (4, 3, 3, BLOCK)), ("Y", _f8, (4, 3, 6, BLOCK)), ("y", _f8, (4, 3, BLOCK)),
    ("Mb", _f8, (6, 6, BLOCK)), ("rb", _f8, (6, BLOCK)),
], align=True)


@nb.njit(**JITB)
def new_block_workspace():
    """A block workspace buffer (1-element array of ``BLOCK_DTYPE``); use ``buf[0]``."""
    return np.zeros(1, dtype=BLOCK_DTYPE)


@nb.njit(inline="always", **JITB)
def _cross(a0, a1, a2, b0, b1, b2):
    return a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0


@nb.njit(inline="always", **JITB)
def _imul(m, h0, h1, h2, ixx, iyy, izz, ixy, ixz, iyz, w0, w1, w2, v0, v1, v2):
    """Spatial inertia (10-parameter form) times motion (w; v) -> force (n; f)."""
    c0, c1, c2 = _cross(h0, h1, h2, v0, v1, v2)
    d0, d1, d2 = _cross(h0, h1, h2, w0, w1, w2)
    return (ixx * w0 + ixy * w1 + ixz * w2 + c0, ixy * w0 + iyy * w1 + iyz * w2 + c1,
            ixz * w0 + iyz * w1 + izz * w2 + c2, m * v0 - d0, m * v1 - d1, m * v2 - d2)


# ----------------------------------------------------------------------------- kinematics

@nb.njit(**JITB)
def _body_inertia(model: RobotModel, w, b):
    """Spatial inertia at O of body ``b`` (mass ``w.mass0`` for the trunk) into ``w.I[b]``."""
    R, p, I = w.R, w.p, w.I
    k00, k01, k02 = model.body_inertia[b, 0, 0], model.body_inertia[b, 0, 1], model.body_inertia[b, 0, 2]
    k11, k12, k22 = model.body_inertia[b, 1, 1], model.body_inertia[b, 1, 2], model.body_inertia[b, 2, 2]
    m_body = model.body_mass[b]
    x0, x1, x2 = model.body_com[b, 0], model.body_com[b, 1], model.body_com[b, 2]
    for l in range(BLOCK):
        m = w.mass0[l] if b == 0 else m_body
        r00, r01, r02 = R[b, 0, 0, l], R[b, 0, 1, l], R[b, 0, 2, l]
        r10, r11, r12 = R[b, 1, 0, l], R[b, 1, 1, l], R[b, 1, 2, l]
        r20, r21, r22 = R[b, 2, 0, l], R[b, 2, 1, l], R[b, 2, 2, l]
        c0 = p[b, 0, l] + r00 * x0 + r01 * x1 + r02 * x2
        c1 = p[b, 1, l] + r10 * x0 + r11 * x1 + r12 * x2
        c2 = p[b, 2, l] + r20 * x0 + r21 * x1 + r22 * x2
        t00 = r00 * k00 + r01 * k01 + r02 * k02
        t01 = r00 * k01 + r01 * k11 + r02 * k12
        t02 = r00 * k02 + r01 * k12 + r02 * k22
        t10 = r10 * k00 + r11 * k01 + r12 * k02
        t11 = r10 * k01 + r11 * k11 + r12 * k12
        t12 = r10 * k02 + r11 * k12 + r12 * k22
        t20 = r20 * k00 + r21 * k01 + r22 * k02
        t21 = r20 * k01 + r21 * k11 + r22 * k12
        t22 = r20 * k02 + r21 * k12 + r22 * k22
        I[b, 0, l] = m
        I[b, 1, l] = m * c0
        I[b, 2, l] = m * c1
        I[b, 3, l] = m * c2
        I[b, 4, l] = t00 * r00 + t01 * r01 + t02 * r02 + m * (c1 * c1 + c2 * c2)
        I[b, 5, l] = t10 * r10 + t11 * r11 + t12 * r12 + m * (c0 * c0 + c2 * c2)
        I[b, 6, l] = t20 * r20 + t21 * r21 + t22 * r22 + m * (c0 * c0 + c1 * c1)
        I[b, 7, l] = t00 * r10 + t01 * r11 + t02 * r12 - m * c0 * c1
        I[b, 8, l] = t00 * r20 + t01 * r21 + t02 * r22 - m * c0 * c2
        I[b, 9, l] = t10 * r20 + t11 * r21 + t12 * r22 - m * c1 * c2


@nb.njit(**JITB)
def _kin_joint(model: RobotModel, w, j, b, P):
    """Pose and motion subspace of body ``b`` moved by joint ``j`` on parent ``P`` (compiled
    per literal index, so LLVM sees constant offsets and proves the lane loops alias-free)."""
    nb.literally(j)
    nb.literally(b)
    nb.literally(P)
    R, p, S, cq, sq = w.R, w.p, w.S, w.cq, w.sq
    ox, oy, oz = model.joint_pos[j, 0], model.joint_pos[j, 1], model.joint_pos[j, 2]
    ax, ay, az = model.joint_axis[j, 0], model.joint_axis[j, 1], model.joint_axis[j, 2]
    for l in range(BLOCK):
        p[b, 0, l] = p[P, 0, l] + R[P, 0, 0, l] * ox + R[P, 0, 1, l] * oy + R[P, 0, 2, l] * oz
        p[b, 1, l] = p[P, 1, l] + R[P, 1, 0, l] * ox + R[P, 1, 1, l] * oy + R[P, 1, 2, l] * oz
        p[b, 2, l] = p[P, 2, l] + R[P, 2, 0, l] * ox + R[P, 2, 1, l] * oy + R[P, 2, 2, l] * oz
    # Rodrigues for any axis (the dedicated x/y paths of the scalar kernel gain nothing once
    # vectorised, and three variants per joint would triple the compile time)
    t00, t01, t02 = ax * ax, ax * ay, ax * az
    t11, t12, t22 = ay * ay, ay * az, az * az
    for r in range(3):
        for l in range(BLOCK):
            c, s = cq[j, l], sq[j, l]
            t = 1.0 - c
            pr0, pr1, pr2 = R[P, r, 0, l], R[P, r, 1, l], R[P, r, 2, l]
            R[b, r, 0, l] = pr0 * (t * t00 + c) + pr1 * (t * t01 + s * az) + pr2 * (t * t02 - s * ay)
            R[b, r, 1, l] = pr0 * (t * t01 - s * az) + pr1 * (t * t11 + c) + pr2 * (t * t12 + s * ax)
            R[b, r, 2, l] = pr0 * (t * t02 + s * ay) + pr1 * (t * t12 - s * ax) + pr2 * (t * t22 + c)
    for l in range(BLOCK):
        a0 = R[P, 0, 0, l] * ax + R[P, 0, 1, l] * ay + R[P, 0, 2, l] * az
        a1 = R[P, 1, 0, l] * ax + R[P, 1, 1, l] * ay + R[P, 1, 2, l] * az
        a2 = R[P, 2, 0, l] * ax + R[P, 2, 1, l] * ay + R[P, 2, 2, l] * az
        S[j, 0, l] = a0
        S[j, 1, l] = a1
        S[j, 2, l] = a2
        m0, m1, m2 = _cross(p[b, 0, l], p[b, 1, l], p[b, 2, l], a0, a1, a2)
        S[j, 3, l] = m0
        S[j, 4, l] = m1
        S[j, 5, l] = m2
    _body_inertia(model, w, b)


@nb.njit(**JITB)
def _kinematics(model: RobotModel, w):
    R, p, quat = w.R, w.p, w.quat
    for l in range(BLOCK):
        qw, qx, qy, qz = quat[0, l], quat[1, l], quat[2, l], quat[3, l]
        R[0, 0, 0, l] = 1.0 - 2.0 * (qy * qy + qz * qz)
        R[0, 0, 1, l] = 2.0 * (qx * qy - qw * qz)
        R[0, 0, 2, l] = 2.0 * (qx * qz + qw * qy)
        R[0, 1, 0, l] = 2.0 * (qx * qy + qw * qz)
        R[0, 1, 1, l] = 1.0 - 2.0 * (qx * qx + qz * qz)
        R[0, 1, 2, l] = 2.0 * (qy * qz - qw * qx)
        R[0, 2, 0, l] = 2.0 * (qx * qz - qw * qy)
        R[0, 2, 1, l] = 2.0 * (qy * qz + qw * qx)
        R[0, 2, 2, l] = 1.0 - 2.0 * (qx * qx + qy * qy)
        p[0, 0, l] = 0.0
        p[0, 1, l] = 0.0
        p[0, 2, l] = 0.0
    _body_inertia(model, w, 0)
    # the fixed topology (validated by a1_model): joint j moves body j + 1; legs are chains
    _kin_joint(model, w, 0, 1, 0)
    _kin_joint(model, w, 1, 2, 1)
    _kin_joint(model, w, 2, 3, 2)
    _kin_joint(model, w, 3, 4, 0)
    _kin_joint(model, w, 4, 5, 4)
    _kin_joint(model, w, 5, 6, 5)
    _kin_joint(model, w, 6, 7, 0)
    _kin_joint(model, w, 7, 8, 7)
    _kin_joint(model, w, 8, 9, 8)
    _kin_joint(model, w, 9, 10, 0)
    _kin_joint(model, w, 10, 11, 10)
    _kin_joint(model, w, 11, 12, 11)


@nb.njit(**JITB)
def _velocities(model: RobotModel, w):
    R, V, S, qd, v, wb = w.R, w.V, w.S, w.qd, w.v, w.wb
    for l in range(BLOCK):
        b0, b1, b2 = wb[0, l], wb[1, l], wb[2, l]
        V[0, 0, l] = R[0, 0, 0, l] * b0 + R[0, 0, 1, l] * b1 + R[0, 0, 2, l] * b2
        V[0, 1, l] = R[0, 1, 0, l] * b0 + R[0, 1, 1, l] * b1 + R[0, 1, 2, l] * b2
        V[0, 2, l] = R[0, 2, 0, l] * b0 + R[0, 2, 1, l] * b1 + R[0, 2, 2, l] * b2
        V[0, 3, l] = v[0, l]
        V[0, 4, l] = v[1, l]
        V[0, 5, l] = v[2, l]
    for j in range(12):
        b = j + 1
        P = model.joint_parent[j]
        for k in range(6):
            for l in range(BLOCK):
                V[b, k, l] = V[P, k, l] + S[j, k, l] * qd[j, l]


# ----------------------------------------------------------------------------- actuators, contacts

@nb.njit(**JITB)
def _joint_forces(model: RobotModel, sim: SimParams, w):
    """Motor torques (PD or torque mode, clipped, velocity-limited), joint damping and
    one-sided joint-limit springs into ``w.Q[6:]``; motor torque and power accumulated."""
    q, qd, Q = w.q, w.qd, w.Q
    pd = sim.motor_mode == MOTOR_PD
    kl, cl = sim.limit_stiffness, sim.limit_damping
    limits_on = sim.joint_limits != 0
    for l in range(BLOCK):
        for k in range(6):
            Q[k, l] = 0.0
    for j in range(12):
        kp, kd, lim0 = model.kp[j], model.kd[j], model.joint_torque_limit[j]
        vlim, damp = model.joint_vel_limit[j], model.joint_damping[j]
        lo, hi = model.joint_lower[j], model.joint_upper[j]
        for l in range(BLOCK):
            qj, qdj = q[j, l], qd[j, l]
            cmd = w.target[j, l]
            tau = kp * w.kp_scale[l] * (cmd - qj) - kd * w.kd_scale[l] * qdj if pd else cmd
            lim = lim0 * w.strength[l]
            tau = lim if tau > lim else tau
            tau = -lim if tau < -lim else tau
            tau = 0.0 if (tau * qdj > 0.0 and abs(qdj) > vlim) else tau
            w.torque[j, l] += tau
            w.power[l] += abs(tau * qdj)
            t_lo = kl * (lo - qj) - cl * qdj
            t_lo = t_lo if (qj < lo and t_lo > 0.0) else 0.0
            t_hi = kl * (hi - qj) - cl * qdj
            t_hi = t_hi if (qj > hi and t_hi < 0.0) else 0.0
            lim_tau = t_lo + t_hi if limits_on else 0.0
            Q[6 + j, l] = tau - damp * qdj + lim_tau


@nb.njit(**JITB)
def _contacts(model: RobotModel, sim: SimParams, w):
    """Foot-ground forces (see ``step.ground_contacts``) with selects instead of branches,
    plus trunk/knee ground-touch detection into ``w.touch``."""
    R, p, V, slip, Q, S = w.R, w.p, w.V, w.slip, w.Q, w.S
    r = model.foot_radius
    kn, cn = sim.contact_stiffness, sim.contact_damping
    kt, ct = sim.friction_stiffness, sim.friction_damping
    inv_kt = 1.0 / kt
    dt = sim.dt
    contacts_on = sim.contacts != 0
    for leg in range(4):
        b = 3 + 3 * leg
        j0 = 3 * leg
        fx, fy, fz = model.foot_pos[leg, 0], model.foot_pos[leg, 1], model.foot_pos[leg, 2]
        for l in range(BLOCK):
            x0 = p[b, 0, l] + R[b, 0, 0, l] * fx + R[b, 0, 1, l] * fy + R[b, 0, 2, l] * fz
            x1 = p[b, 1, l] + R[b, 1, 0, l] * fx + R[b, 1, 1, l] * fy + R[b, 1, 2, l] * fz
            x2 = p[b, 2, l] + R[b, 2, 0, l] * fx + R[b, 2, 1, l] * fy + R[b, 2, 2, l] * fz
            pen = r - (w.pos[2, l] + x2)
            touching = contacts_on and pen > 0.0
            c2 = x2 - r
            e0, e1, e2 = _cross(V[b, 0, l], V[b, 1, l], V[b, 2, l], x0, x1, c2)
            v0 = V[b, 3, l] + e0
            v1 = V[b, 4, l] + e1
            v2 = V[b, 5, l] + e2
            fn = kn * pen - cn * v2
            fn = fn if fn > 0.0 else 0.0
            ux = slip[leg, 0, l] + v0 * dt
            uy = slip[leg, 1, l] + v1 * dt
            ftx = -kt * ux - ct * v0
            fty = -kt * uy - ct * v1
            fmax = w.friction[l] * fn
            ft2 = ftx * ftx + fty * fty
            sliding = ft2 > fmax * fmax
            scale = fmax / math.sqrt(ft2 + 1e-300) if sliding else 1.0
            ftx *= scale
            fty *= scale
            ux = -ftx * inv_kt if sliding else ux
            uy = -fty * inv_kt if sliding else uy
            slip[leg, 0, l] = ux if touching else 0.0
            slip[leg, 1, l] = uy if touching else 0.0
            w.contact[leg, l] = 1.0 if touching else 0.0
            ftx = ftx if touching else 0.0
            fty = fty if touching else 0.0
            fn = fn if touching else 0.0
            n0, n1, n2 = _cross(x0, x1, c2, ftx, fty, fn)
            Q[0, l] += n0
            Q[1, l] += n1
            Q[2, l] += n2
            Q[3, l] += ftx
            Q[4, l] += fty
            Q[5, l] += fn
            for k in range(3):
                j = j0 + k
                Q[6 + j, l] += (S[j, 0, l] * n0 + S[j, 1, l] * n1 + S[j, 2, l] * n2
                                + S[j, 3, l] * ftx + S[j, 4, l] * fty + S[j, 5, l] * fn)
    hx, hy, hz = model.trunk_half_extents[0], model.trunk_half_extents[1], model.trunk_half_extents[2]
    kr = model.knee_radius
    for l in range(BLOCK):
        z = w.pos[2, l]
        lowest = z - (abs(R[0, 2, 0, l]) * hx + abs(R[0, 2, 1, l]) * hy + abs(R[0, 2, 2, l]) * hz)
        knee = min(min(p[3, 2, l], p[6, 2, l]), min(p[9, 2, l], p[12, 2, l]))
        hit = lowest < 0.0 or z + knee < kr
        w.touch[l] = 1.0 if hit else w.touch[l]


# ----------------------------------------------------------------------------- dynamics

@nb.njit(inline="always", **JITB)
def _body_force(w, b):
    """RNEA body force f_b = I_b A_b + V_b x* I_b V_b (needs A_b)."""
    V, A, f, I = w.V, w.A, w.f, w.I
    for l in range(BLOCK):
        m, h0, h1, h2 = I[b, 0, l], I[b, 1, l], I[b, 2, l], I[b, 3, l]
        ixx, iyy, izz, ixy, ixz, iyz = I[b, 4, l], I[b, 5, l], I[b, 6, l], I[b, 7, l], I[b, 8, l], I[b, 9, l]
        w0, w1, w2, v0, v1, v2 = V[b, 0, l], V[b, 1, l], V[b, 2, l], V[b, 3, l], V[b, 4, l], V[b, 5, l]
        n0, n1, n2, l0, l1, l2 = _imul(m, h0, h1, h2, ixx, iyy, izz, ixy, ixz, iyz, w0, w1, w2, v0, v1, v2)
        a0, a1, a2, a3, a4, a5 = _imul(m, h0, h1, h2, ixx, iyy, izz, ixy, ixz, iyz,
                                       A[b, 0, l], A[b, 1, l], A[b, 2, l], A[b, 3, l], A[b, 4, l], A[b, 5, l])
        x0, x1, x2 = _cross(w0, w1, w2, n0, n1, n2)
        y0, y1, y2 = _cross(v0, v1, v2, l0, l1, l2)
        z0, z1, z2 = _cross(w0, w1, w2, l0, l1, l2)
        f[b, 0, l] = a0 + x0 + y0
        f[b, 1, l] = a1 + x1 + y1
        f[b, 2, l] = a2 + x2 + y2
        f[b, 3, l] = a3 + z0
        f[b, 4, l] = a4 + z1
        f[b, 5, l] = a5 + z2


@nb.njit(**JITB)
def _fwd_joint(w, j, b, P):
    """RNEA forward step for body ``b`` (joint ``j``, parent ``P``; literal indices)."""
    nb.literally(j)
    nb.literally(b)
    nb.literally(P)
    V, A, S, qd = w.V, w.A, w.S, w.qd
    for l in range(BLOCK):
        qdj = qd[j, l]
        s0, s1, s2 = S[j, 0, l] * qdj, S[j, 1, l] * qdj, S[j, 2, l] * qdj
        s3, s4, s5 = S[j, 3, l] * qdj, S[j, 4, l] * qdj, S[j, 5, l] * qdj
        w0, w1, w2, v0, v1, v2 = V[b, 0, l], V[b, 1, l], V[b, 2, l], V[b, 3, l], V[b, 4, l], V[b, 5, l]
        e0, e1, e2 = _cross(w0, w1, w2, s0, s1, s2)
        g0, g1, g2 = _cross(w0, w1, w2, s3, s4, s5)
        h0, h1, h2 = _cross(v0, v1, v2, s0, s1, s2)
        A[b, 0, l] = A[P, 0, l] + e0
        A[b, 1, l] = A[P, 1, l] + e1
        A[b, 2, l] = A[P, 2, l] + e2
        A[b, 3, l] = A[P, 3, l] + g0 + h0
        A[b, 4, l] = A[P, 4, l] + g1 + h1
        A[b, 5, l] = A[P, 5, l] + g2 + h2
    _body_force(w, b)


@nb.njit(**JITB)
def _bwd_joint(model: RobotModel, w, j, b, P, leg, jj):
    """RNEA/CRBA backward step for joint ``j`` (body ``b``, parent ``P``, local index ``jj``
    in leg ``leg``; literal indices): bias force, H column, subtree force and inertia."""
    nb.literally(j)
    nb.literally(b)
    nb.literally(P)
    nb.literally(leg)
    nb.literally(jj)
    S, f, I, C, F, Hl = w.S, w.f, w.I, w.C, w.F, w.Hl
    arm = model.joint_armature[j]
    for l in range(BLOCK):
        S0, S1, S2, S3, S4, S5 = S[j, 0, l], S[j, 1, l], S[j, 2, l], S[j, 3, l], S[j, 4, l], S[j, 5, l]
        C[6 + j, l] = S0 * f[b, 0, l] + S1 * f[b, 1, l] + S2 * f[b, 2, l] + S3 * f[b, 3, l] + S4 * f[b, 4, l] + S5 * f[b, 5, l]
        F0, F1, F2, F3, F4, F5 = _imul(I[b, 0, l], I[b, 1, l], I[b, 2, l], I[b, 3, l], I[b, 4, l], I[b, 5, l],
                                       I[b, 6, l], I[b, 7, l], I[b, 8, l], I[b, 9, l], S0, S1, S2, S3, S4, S5)
        F[j, 0, l] = F0
        F[j, 1, l] = F1
        F[j, 2, l] = F2
        F[j, 3, l] = F3
        F[j, 4, l] = F4
        F[j, 5, l] = F5
        Hl[leg, jj, jj, l] = S0 * F0 + S1 * F1 + S2 * F2 + S3 * F3 + S4 * F4 + S5 * F5 + arm
    for kk in range(jj):  # ancestors in the same leg: joints 3 leg + kk, kk < jj
        k = 3 * leg + kk
        for l in range(BLOCK):
            hkj = (S[k, 0, l] * F[j, 0, l] + S[k, 1, l] * F[j, 1, l] + S[k, 2, l] * F[j, 2, l]
                   + S[k, 3, l] * F[j, 3, l] + S[k, 4, l] * F[j, 4, l] + S[k, 5, l] * F[j, 5, l])
            Hl[leg, kk, jj, l] = hkj
            Hl[leg, jj, kk, l] = hkj
    for k in range(6):
        for l in range(BLOCK):
            f[P, k, l] += f[b, k, l]
    for k in range(10):
        for l in range(BLOCK):
            I[P, k, l] += I[b, k, l]


@nb.njit(**JITB)
def _rnea_crba(model: RobotModel, gravity, w):
    """Bias forces (RNEA, gravity as a base acceleration) and the mass matrix pieces (CRBA):
    ``w.C``, ``w.F`` (trunk-joint coupling), ``w.Hl`` (leg blocks); ``w.I[0]`` ends as the
    whole-robot composite inertia. Fixed topology, literal indices (see ``_kinematics``)."""
    A = w.A
    for l in range(BLOCK):
        for k in range(5):
            A[0, k, l] = 0.0
        A[0, 5, l] = gravity
    _body_force(w, 0)
    _fwd_joint(w, 0, 1, 0)
    _fwd_joint(w, 1, 2, 1)
    _fwd_joint(w, 2, 3, 2)
    _fwd_joint(w, 3, 4, 0)
    _fwd_joint(w, 4, 5, 4)
    _fwd_joint(w, 5, 6, 5)
    _fwd_joint(w, 6, 7, 0)
    _fwd_joint(w, 7, 8, 7)
    _fwd_joint(w, 8, 9, 8)
    _fwd_joint(w, 9, 10, 0)
    _fwd_joint(w, 10, 11, 10)
    _fwd_joint(w, 11, 12, 11)
    _bwd_joint(model, w, 11, 12, 11, 3, 2)
    _bwd_joint(model, w, 10, 11, 10, 3, 1)
    _bwd_joint(model, w, 9, 10, 0, 3, 0)
    _bwd_joint(model, w, 8, 9, 8, 2, 2)
    _bwd_joint(model, w, 7, 8, 7, 2, 1)
    _bwd_joint(model, w, 6, 7, 0, 2, 0)
    _bwd_joint(model, w, 5, 6, 5, 1, 2)
    _bwd_joint(model, w, 4, 5, 4, 1, 1)
    _bwd_joint(model, w, 3, 4, 0, 1, 0)
    _bwd_joint(model, w, 2, 3, 2, 0, 2)
    _bwd_joint(model, w, 1, 2, 1, 0, 1)
    _bwd_joint(model, w, 0, 1, 0, 0, 0)
    f, C = w.f, w.C
    for k in range(6):
        for l in range(BLOCK):
            C[k, l] = f[0, k, l]


@nb.njit(**JITB)
def _solve(w):
    """Block Schur/Cholesky solve of H acc = Q - C (see ``dynamics.solve_accelerations``)."""
    I, F, Hl, L, Y, y, Mb, rb, acc, Q, C = w.I, w.F, w.Hl, w.L, w.Y, w.y, w.Mb, w.rb, w.acc, w.Q, w.C
    for l in range(BLOCK):
        m, h0, h1, h2 = I[0, 0, l], I[0, 1, l], I[0, 2, l], I[0, 3, l]
        Mb[0, 0, l] = I[0, 4, l]
        Mb[1, 0, l] = I[0, 7, l]
        Mb[1, 1, l] = I[0, 5, l]
        Mb[2, 0, l] = I[0, 8, l]
        Mb[2, 1, l] = I[0, 9, l]
        Mb[2, 2, l] = I[0, 6, l]
        Mb[3, 0, l] = 0.0
        Mb[3, 1, l] = h2
        Mb[3, 2, l] = -h1
        Mb[4, 0, l] = -h2
        Mb[4, 1, l] = 0.0
        Mb[4, 2, l] = h0
        Mb[5, 0, l] = h1
        Mb[5, 1, l] = -h0
        Mb[5, 2, l] = 0.0
        Mb[3, 3, l] = m
        Mb[4, 3, l] = 0.0
        Mb[4, 4, l] = m
        Mb[5, 3, l] = 0.0
        Mb[5, 4, l] = 0.0
        Mb[5, 5, l] = m
        for r in range(6):
            rb[r, l] = Q[r, l] - C[r, l]
    for leg in range(4):
        o = 3 * leg
        for l in range(BLOCK):
            i00 = 1.0 / math.sqrt(Hl[leg, 0, 0, l])
            l10 = Hl[leg, 1, 0, l] * i00
            l20 = Hl[leg, 2, 0, l] * i00
            i11 = 1.0 / math.sqrt(Hl[leg, 1, 1, l] - l10 * l10)
            l21 = (Hl[leg, 2, 1, l] - l20 * l10) * i11
            i22 = 1.0 / math.sqrt(Hl[leg, 2, 2, l] - l20 * l20 - l21 * l21)
            L[leg, 0, 0, l] = i00
            L[leg, 1, 0, l] = l10
            L[leg, 2, 0, l] = l20
            L[leg, 1, 1, l] = i11
            L[leg, 2, 1, l] = l21
            L[leg, 2, 2, l] = i22
            for c in range(6):
                y0 = F[o, c, l] * i00
                y1 = (F[o + 1, c, l] - l10 * y0) * i11
                y2 = (F[o + 2, c, l] - l20 * y0 - l21 * y1) * i22
                Y[leg, 0, c, l] = y0
                Y[leg, 1, c, l] = y1
                Y[leg, 2, c, l] = y2
            z0 = (Q[6 + o, l] - C[6 + o, l]) * i00
            z1 = (Q[7 + o, l] - C[7 + o, l] - l10 * z0) * i11
            z2 = (Q[8 + o, l] - C[8 + o, l] - l20 * z0 - l21 * z1) * i22
            y[leg, 0, l] = z0
            y[leg, 1, l] = z1
            y[leg, 2, l] = z2
        for r in range(6):
            for l in range(BLOCK):
                yr0, yr1, yr2 = Y[leg, 0, r, l], Y[leg, 1, r, l], Y[leg, 2, r, l]
                rb[r, l] -= yr0 * y[leg, 0, l] + yr1 * y[leg, 1, l] + yr2 * y[leg, 2, l]
            for c in range(r + 1):
                for l in range(BLOCK):
                    Mb[r, c, l] -= (Y[leg, 0, r, l] * Y[leg, 0, c, l] + Y[leg, 1, r, l] * Y[leg, 1, c, l]
                                    + Y[leg, 2, r, l] * Y[leg, 2, c, l])
    for c in range(6):
        for l in range(BLOCK):
            d = Mb[c, c, l]
            for k in range(c):
                d -= Mb[c, k, l] * Mb[c, k, l]
            Mb[c, c, l] = 1.0 / math.sqrt(d)
        for r in range(c + 1, 6):
            for l in range(BLOCK):
                s = Mb[r, c, l]
                for k in range(c):
                    s -= Mb[r, k, l] * Mb[c, k, l]
                Mb[r, c, l] = s * Mb[c, c, l]
    for r in range(6):
        for l in range(BLOCK):
            s = rb[r, l]
            for k in range(r):
                s -= Mb[r, k, l] * rb[k, l]
            rb[r, l] = s * Mb[r, r, l]
    for r in range(5, -1, -1):
        for l in range(BLOCK):
            s = rb[r, l]
            for k in range(r + 1, 6):
                s -= Mb[k, r, l] * acc[k, l]
            acc[r, l] = s * Mb[r, r, l]
    for leg in range(4):
        o = 6 + 3 * leg
        for l in range(BLOCK):
            z0, z1, z2 = y[leg, 0, l], y[leg, 1, l], y[leg, 2, l]
            for c in range(6):
                a = acc[c, l]
                z0 -= Y[leg, 0, c, l] * a
                z1 -= Y[leg, 1, c, l] * a
                z2 -= Y[leg, 2, c, l] * a
            a2 = z2 * L[leg, 2, 2, l]
            a1 = (z1 - L[leg, 2, 1, l] * a2) * L[leg, 1, 1, l]
            a0 = (z0 - L[leg, 1, 0, l] * a1 - L[leg, 2, 0, l] * a2) * L[leg, 0, 0, l]
            acc[o, l] = a0
            acc[o + 1, l] = a1
            acc[o + 2, l] = a2


@nb.njit(**JITB)
def _integrate(sim: SimParams, w):
    """Semi-implicit Euler; quaternion by a Taylor exponential map; joint sin/cos advanced by
    the angle-addition formula with Taylor sin/cos of the (small) increment."""
    dt = sim.dt
    acc, V, R, v, wb, q, qd, pos, quat, cq, sq = w.acc, w.V, w.R, w.v, w.wb, w.q, w.qd, w.pos, w.quat, w.cq, w.sq
    for l in range(BLOCK):
        w0, w1, w2 = V[0, 0, l], V[0, 1, l], V[0, 2, l]
        v0, v1, v2 = v[0, l], v[1, l], v[2, l]
        v0 += dt * (acc[3, l] + w1 * v2 - w2 * v1)
        v1 += dt * (acc[4, l] + w2 * v[0, l] - w0 * v2)
        v2 += dt * (acc[5, l] + w0 * v[1, l] - w1 * v[0, l])
        v[0, l] = v0
        v[1, l] = v1
        v[2, l] = v2
        a0, a1, a2 = acc[0, l], acc[1, l], acc[2, l]
        b0 = wb[0, l] + dt * (R[0, 0, 0, l] * a0 + R[0, 1, 0, l] * a1 + R[0, 2, 0, l] * a2)
        b1 = wb[1, l] + dt * (R[0, 0, 1, l] * a0 + R[0, 1, 1, l] * a1 + R[0, 2, 1, l] * a2)
        b2 = wb[2, l] + dt * (R[0, 0, 2, l] * a0 + R[0, 1, 2, l] * a1 + R[0, 2, 2, l] * a2)
        wb[0, l] = b0
        wb[1, l] = b1
        wb[2, l] = b2
        pos[0, l] += dt * v0
        pos[1, l] += dt * v1
        pos[2, l] += dt * v2
        # quat <- quat * (cos th, sin th * omega / |omega|), th = |omega| dt / 2 (Taylor)
        h = 0.5 * dt
        t2 = (b0 * b0 + b1 * b1 + b2 * b2) * h * h
        cth = 1.0 - t2 * (0.5 - t2 * (1.0 / 24.0 - t2 * (1.0 / 720.0 - t2 * (1.0 / 40320.0))))
        sth = h * (1.0 - t2 * (1.0 / 6.0 - t2 * (1.0 / 120.0 - t2 * (1.0 / 5040.0 - t2 * (1.0 / 362880.0)))))
        e0, e1, e2 = sth * b0, sth * b1, sth * b2
        qw, qx, qy, qz = quat[0, l], quat[1, l], quat[2, l], quat[3, l]
        nw = qw * cth - (qx * e0 + qy * e1 + qz * e2)
        nx = qw * e0 + qx * cth + (qy * e2 - qz * e1)
        ny = qw * e1 + qy * cth + (qz * e0 - qx * e2)
        nz = qw * e2 + qz * cth + (qx * e1 - qy * e0)
        inv = 1.0 / math.sqrt(nw * nw + nx * nx + ny * ny + nz * nz)
        quat[0, l] = nw * inv
        quat[1, l] = nx * inv
        quat[2, l] = ny * inv
        quat[3, l] = nz * inv
    for j in range(12):
        for l in range(BLOCK):
            qdj = qd[j, l] + dt * acc[6 + j, l]
            qd[j, l] = qdj
            dq = dt * qdj
            q[j, l] += dq
            d2 = dq * dq
            cd = 1.0 - d2 * (0.5 - d2 * (1.0 / 24.0 - d2 * (1.0 / 720.0 - d2 * (1.0 / 40320.0))))
            sd = dq * (1.0 - d2 * (1.0 / 6.0 - d2 * (1.0 / 120.0 - d2 * (1.0 / 5040.0 - d2 * (1.0 / 362880.0)))))
            c, s = cq[j, l], sq[j, l]
            cq[j, l] = c * cd - s * sd
            sq[j, l] = s * cd + c * sd


@nb.njit(**JITB)
def substep_block(model: RobotModel, sim: SimParams, w):
    """One physics substep of the block in ``w``: actuators -> joint limits -> contacts ->
    dynamics (RNEA + CRBA + block Cholesky) -> integration."""
    _kinematics(model, w)
    _velocities(model, w)
    _joint_forces(model, sim, w)
    _contacts(model, sim, w)
    _rnea_crba(model, sim.gravity, w)
    _solve(w)
    _integrate(sim, w)


# ----------------------------------------------------------------------------- gather / scatter

@nb.njit(**JITB)
def _gather(model: RobotModel, sim: SimParams, envp: EnvParams, st: PhysicsState, actions, lo, hi, w):
    """Copy envs lo..hi-1 (at most BLOCK) into the lanes; empty lanes get a copy of env lo."""
    for l in range(BLOCK):
        i = lo + l if lo + l < hi else lo
        for k in range(3):
            w.pos[k, l] = st.base_pos[i, k]
            w.v[k, l] = st.base_lin_vel[i, k]
            w.wb[k, l] = st.base_ang_vel[i, k]
        for k in range(4):
            w.quat[k, l] = st.base_quat[i, k]
            w.slip[k, 0, l] = st.foot_slip[i, k, 0]
            w.slip[k, 1, l] = st.foot_slip[i, k, 1]
            w.contact[k, l] = 0.0
        w.strength[l] = envp.motor_strength[i]
        for j in range(12):
            qj = st.joint_pos[i, j]
            w.q[j, l] = qj
            w.cq[j, l] = math.cos(qj)
            w.sq[j, l] = math.sin(qj)
            w.qd[j, l] = st.joint_vel[i, j]
            w.torque[j, l] = 0.0
            a = actions[i, j]
            a = 1.0 if a > 1.0 else a
            a = -1.0 if a < -1.0 else a
            a = a if a == a else 0.0
            if sim.motor_mode == MOTOR_PD:
                w.target[j, l] = model.default_q[j] + sim.action_scale * a
            else:
                w.target[j, l] = a * model.joint_torque_limit[j] * w.strength[l]
        w.power[l] = 0.0
        w.touch[l] = 0.0
        w.friction[l] = envp.friction[i]
        w.mass0[l] = model.body_mass[0] + envp.added_mass[i]
        w.kp_scale[l] = envp.kp_scale[i]
        w.kd_scale[l] = envp.kd_scale[i]


@nb.njit(**JITB)
def _lane_ok(w, l):
    ok = abs(w.pos[0, l]) < MAX_HEIGHT and abs(w.pos[1, l]) < MAX_HEIGHT and abs(w.pos[2, l]) < MAX_HEIGHT
    for k in range(4):
        ok = ok and abs(w.quat[k, l]) <= 1.0 + 1e-6
        ok = ok and abs(w.slip[k, 0, l]) < MAX_HEIGHT and abs(w.slip[k, 1, l]) < MAX_HEIGHT
    for k in range(3):
        ok = ok and abs(w.v[k, l]) < MAX_LIN_VEL and abs(w.wb[k, l]) < MAX_ANG_VEL
    for j in range(12):
        ok = ok and abs(w.q[j, l]) < MAX_ANG_VEL and abs(w.qd[j, l]) < MAX_ANG_VEL
        ok = ok and abs(w.torque[j, l]) < 1e12
    return ok


@nb.njit(**JITB)
def _scatter(sim: SimParams, st: PhysicsState, lo, hi, w):
    inv_sub = 1.0 / sim.substeps
    flagged = 0
    for l in range(hi - lo):
        i = lo + l
        st.body_contact[i] = w.touch[l] > 0.0
        if _lane_ok(w, l):
            st.world_offset[i, 0] += w.pos[0, l]
            st.world_offset[i, 1] += w.pos[1, l]
            st.base_pos[i, 0] = 0.0
            st.base_pos[i, 1] = 0.0
            st.base_pos[i, 2] = w.pos[2, l]
            for k in range(3):
                st.base_lin_vel[i, k] = w.v[k, l]
                st.base_ang_vel[i, k] = w.wb[k, l]
            for k in range(4):
                st.base_quat[i, k] = w.quat[k, l]
                st.foot_slip[i, k, 0] = w.slip[k, 0, l]
                st.foot_slip[i, k, 1] = w.slip[k, 1, l]
                st.foot_contact[i, k] = w.contact[k, l] > 0.0
            for j in range(12):
                st.joint_pos[i, j] = w.q[j, l]
                st.joint_vel[i, j] = w.qd[j, l]
                st.joint_torque[i, j] = w.torque[j, l] * inv_sub
            st.motor_power[i] = w.power[l] * inv_sub
            st.status[i] = STATUS_OK
        else:
            flag_nonfinite(st, i)
            flagged += 1
    return flagged


@nb.njit(**JITB)
def control_step_block(model: RobotModel, sim: SimParams, envp: EnvParams, st: PhysicsState, actions, lo, hi, wbuf):
    """Advance envs ``lo..hi-1`` (``hi - lo <= BLOCK``) by one control step with SIMD code.

    Same contract as ``control_step_env`` for each env (status, outputs, agent-centred shift);
    ``actions``: (N, 12) in [-1, 1]; ``wbuf`` from ``new_block_workspace()``.
    Returns: number of envs flagged non-finite.
    """
    w = wbuf[0]
    _gather(model, sim, envp, st, actions, lo, hi, w)
    for _ in range(sim.substeps):
        substep_block(model, sim, w)
    return _scatter(sim, st, lo, hi, w)


@nb.njit(**JITB)
def step_shard_block(model: RobotModel, sim: SimParams, envp: EnvParams, st: PhysicsState, actions, lo, hi):
    """``step_shard`` with the SIMD block kernel: envs ``lo..hi-1`` in blocks of ``BLOCK``."""
    wbuf = new_block_workspace()
    flagged = 0
    for start in range(lo, hi, BLOCK):
        stop = start + BLOCK if start + BLOCK < hi else hi
        flagged += control_step_block(model, sim, envp, st, actions, start, stop, wbuf)
    return flagged


@nb.njit(parallel=True, **JITB)
def step_parallel_block(model_buf, sim: SimParams, envp: EnvParams, st: PhysicsState, actions):
    """All envs, blocks spread over Numba threads with ``prange`` (``model_buf``: the record as
    a 1-element array, see ``step.step_parallel``)."""
    n = st.base_pos.shape[0]
    nblocks = (n + BLOCK - 1) // BLOCK
    counts = np.zeros(nblocks, dtype=np.int64)
    for k in nb.prange(nblocks):
        lo = k * BLOCK
        hi = lo + BLOCK if lo + BLOCK < n else n
        counts[k] = step_shard_block(model_buf[0], sim, envp, st, actions, lo, hi)
    return counts.sum()
