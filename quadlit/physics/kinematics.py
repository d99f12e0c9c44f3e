"""Kinematics stage: body poses, joint motion subspaces and body spatial inertias in frame O
(forward kinematics), body spatial velocities, and the per-env frame helpers tasks read.

Pairs (scalar reference <-> SIMD twin, same results to rounding):

* ``kinematics`` <-> ``kinematics_block``: ``R`` (body -> world rotations), ``p`` (body origins
  relative to the trunk origin, world axes, m), ``S`` (joint motion subspaces in O) and the body
  spatial inertias at O (``ws.Ib`` / ``w.I``). The SIMD twin reads the joint cosines/sines from
  ``w.cq``/``w.sq`` (libm's sin/cos do not vectorise) and uses Rodrigues' formula for every axis.
* ``velocities`` <-> ``velocities_block``: body spatial velocities in O (``V``).

Scalar only (one env, called by tasks and the Python API): ``leg_points``/``leg_points_env``
(world positions of the leg joints and feet), ``gravity_in_trunk``, ``lin_vel_in_trunk``,
``ang_vel_in_trunk``, ``trunk_rotation`` (read one row of ``PhysicsState``).
Frames and units: see ``workspace.py``; body/joint numbering: see ``model.py``.
"""

from __future__ import annotations

import math

import numba as nb

from quadlit.physics.model import JOINT_TREE, TRUNK, RobotModel
from quadlit.physics.spatial import cross3, quat_to_rot
from quadlit.physics.state import PhysicsState
from quadlit.physics.workspace import BLOCK, JIT, JITB


# ----------------------------------------------------------------------------- body inertias at O

@nb.njit(**JIT)
def _set_body_inertia(model: RobotModel, ws, b, m):
    """Body ``b``'s spatial inertia at O (10-parameter form, into ``ws.Ib[b]``) from its mass
    ``m`` (kg), COM and inertia (body frame). SIMD twin: ``_body_inertia``."""
    Ib, R, p, com, inertia = ws.Ib, ws.R, ws.p, model.body_com, model.body_inertia
    # c = p + R com (COM relative to O, world axes)
    c0 = p[b, 0] + R[b, 0, 0] * com[b, 0] + R[b, 0, 1] * com[b, 1] + R[b, 0, 2] * com[b, 2]
    c1 = p[b, 1] + R[b, 1, 0] * com[b, 0] + R[b, 1, 1] * com[b, 1] + R[b, 1, 2] * com[b, 2]
    c2 = p[b, 2] + R[b, 2, 0] * com[b, 0] + R[b, 2, 1] * com[b, 1] + R[b, 2, 2] * com[b, 2]
    # Iw = R I R^T, via T = R I
    t00 = R[b, 0, 0] * inertia[b, 0, 0] + R[b, 0, 1] * inertia[b, 1, 0] + R[b, 0, 2] * inertia[b, 2, 0]
    t01 = R[b, 0, 0] * inertia[b, 0, 1] + R[b, 0, 1] * inertia[b, 1, 1] + R[b, 0, 2] * inertia[b, 2, 1]
    t02 = R[b, 0, 0] * inertia[b, 0, 2] + R[b, 0, 1] * inertia[b, 1, 2] + R[b, 0, 2] * inertia[b, 2, 2]
    t10 = R[b, 1, 0] * inertia[b, 0, 0] + R[b, 1, 1] * inertia[b, 1, 0] + R[b, 1, 2] * inertia[b, 2, 0]
    t11 = R[b, 1, 0] * inertia[b, 0, 1] + R[b, 1, 1] * inertia[b, 1, 1] + R[b, 1, 2] * inertia[b, 2, 1]
    t12 = R[b, 1, 0] * inertia[b, 0, 2] + R[b, 1, 1] * inertia[b, 1, 2] + R[b, 1, 2] * inertia[b, 2, 2]
    t20 = R[b, 2, 0] * inertia[b, 0, 0] + R[b, 2, 1] * inertia[b, 1, 0] + R[b, 2, 2] * inertia[b, 2, 0]
    t21 = R[b, 2, 0] * inertia[b, 0, 1] + R[b, 2, 1] * inertia[b, 1, 1] + R[b, 2, 2] * inertia[b, 2, 1]
    t22 = R[b, 2, 0] * inertia[b, 0, 2] + R[b, 2, 1] * inertia[b, 1, 2] + R[b, 2, 2] * inertia[b, 2, 2]
    wxx = t00 * R[b, 0, 0] + t01 * R[b, 0, 1] + t02 * R[b, 0, 2]
    wyy = t10 * R[b, 1, 0] + t11 * R[b, 1, 1] + t12 * R[b, 1, 2]
    wzz = t20 * R[b, 2, 0] + t21 * R[b, 2, 1] + t22 * R[b, 2, 2]
    wxy = t00 * R[b, 1, 0] + t01 * R[b, 1, 1] + t02 * R[b, 1, 2]
    wxz = t00 * R[b, 2, 0] + t01 * R[b, 2, 1] + t02 * R[b, 2, 2]
    wyz = t10 * R[b, 2, 0] + t11 * R[b, 2, 1] + t12 * R[b, 2, 2]
    Ib[b, 0] = m
    Ib[b, 1] = m * c0
    Ib[b, 2] = m * c1
    Ib[b, 3] = m * c2
    Ib[b, 4] = wxx + m * (c1 * c1 + c2 * c2)
    Ib[b, 5] = wyy + m * (c0 * c0 + c2 * c2)
    Ib[b, 6] = wzz + m * (c0 * c0 + c1 * c1)
    Ib[b, 7] = wxy - m * c0 * c1
    Ib[b, 8] = wxz - m * c0 * c2
    Ib[b, 9] = wyz - m * c1 * c2


# The SIMD kinematics walk the fixed topology ``JOINT_TREE`` like ``dynamics.bias_and_mass_matrix_block``
# (see there): per-lane steps compiled once and inlined by LLVM (``forceinline``) into lane
# loops of ``kinematics_block``'s own, with the model values read before each loop.

@nb.njit(forceinline=True, **JITB)
def _body_constants(model: RobotModel, b):
    """Body ``b``'s COM (body frame, m) and inertia about it (body frame, kg m²: xx xy xz yy yz
    zz), as read by ``_body_inertia``."""
    x, k = model.body_com, model.body_inertia
    return x[b, 0], x[b, 1], x[b, 2], k[b, 0, 0], k[b, 0, 1], k[b, 0, 2], k[b, 1, 1], k[b, 1, 2], k[b, 2, 2]


@nb.njit(forceinline=True, **JITB)
def _body_inertia(w, b, body, m, l):
    """Spatial inertia at O of body ``b`` in lane ``l`` into ``w.I[b]``, from its mass ``m`` (kg)
    and ``body`` (``_body_constants``). Scalar reference: ``_set_body_inertia``."""
    x0, x1, x2, k00, k01, k02, k11, k12, k22 = body
    R, p, I = w.R, w.p, w.I
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


# ----------------------------------------------------------------------------- poses and joint subspaces

@nb.njit(**JIT)
def kinematics(model: RobotModel, ws):
    """Body rotations/positions (relative to the trunk origin), joint subspaces and spatial
    inertias from ``ws.quat`` (unit wxyz), ``ws.q`` (rad) and ``ws.added_mass`` (kg at the
    trunk COM). SIMD twin: ``kinematics_block``."""
    R, p, S, q = ws.R, ws.p, ws.S, ws.q
    added_mass = ws.added_mass
    quat = ws.quat
    quat_to_rot(quat, R[0])
    p[0, 0] = 0.0
    p[0, 1] = 0.0
    p[0, 2] = 0.0
    _set_body_inertia(model, ws, 0, model.body_mass[0] + added_mass)
    for j in range(12):
        b = j + 1
        P = model.joint_parent[j]
        ox, oy, oz = model.joint_pos[j, 0], model.joint_pos[j, 1], model.joint_pos[j, 2]
        p[b, 0] = p[P, 0] + R[P, 0, 0] * ox + R[P, 0, 1] * oy + R[P, 0, 2] * oz
        p[b, 1] = p[P, 1] + R[P, 1, 0] * ox + R[P, 1, 1] * oy + R[P, 1, 2] * oz
        p[b, 2] = p[P, 2] + R[P, 2, 0] * ox + R[P, 2, 1] * oy + R[P, 2, 2] * oz
        ax, ay, az = model.joint_axis[j, 0], model.joint_axis[j, 1], model.joint_axis[j, 2]
        c = math.cos(q[j])
        s = math.sin(q[j])
        if ax == 1.0 and ay == 0.0 and az == 0.0:  # R_b = R_P Rx(q)
            for r in range(3):
                pr1, pr2 = R[P, r, 1], R[P, r, 2]
                R[b, r, 0] = R[P, r, 0]
                R[b, r, 1] = c * pr1 + s * pr2
                R[b, r, 2] = c * pr2 - s * pr1
        elif ax == 0.0 and ay == 1.0 and az == 0.0:  # R_b = R_P Ry(q)
            for r in range(3):
                pr0, pr2 = R[P, r, 0], R[P, r, 2]
                R[b, r, 0] = c * pr0 - s * pr2
                R[b, r, 1] = R[P, r, 1]
                R[b, r, 2] = s * pr0 + c * pr2
        elif ax == 0.0 and ay == 0.0 and az == 1.0:  # R_b = R_P Rz(q)
            for r in range(3):
                pr0, pr1 = R[P, r, 0], R[P, r, 1]
                R[b, r, 0] = c * pr0 + s * pr1
                R[b, r, 1] = c * pr1 - s * pr0
                R[b, r, 2] = R[P, r, 2]
        else:  # general axis: Rodrigues
            t = 1.0 - c
            l00 = t * ax * ax + c
            l01 = t * ax * ay - s * az
            l02 = t * ax * az + s * ay
            l10 = t * ax * ay + s * az
            l11 = t * ay * ay + c
            l12 = t * ay * az - s * ax
            l20 = t * ax * az - s * ay
            l21 = t * ay * az + s * ax
            l22 = t * az * az + c
            for r in range(3):
                pr0, pr1, pr2 = R[P, r, 0], R[P, r, 1], R[P, r, 2]
                R[b, r, 0] = pr0 * l00 + pr1 * l10 + pr2 * l20
                R[b, r, 1] = pr0 * l01 + pr1 * l11 + pr2 * l21
                R[b, r, 2] = pr0 * l02 + pr1 * l12 + pr2 * l22
        a0 = R[P, 0, 0] * ax + R[P, 0, 1] * ay + R[P, 0, 2] * az
        a1 = R[P, 1, 0] * ax + R[P, 1, 1] * ay + R[P, 1, 2] * az
        a2 = R[P, 2, 0] * ax + R[P, 2, 1] * ay + R[P, 2, 2] * az
        S[j, 0] = a0
        S[j, 1] = a1
        S[j, 2] = a2
        m0, m1, m2 = cross3(p[b, 0], p[b, 1], p[b, 2], a0, a1, a2)
        S[j, 3] = m0
        S[j, 4] = m1
        S[j, 5] = m2
        _set_body_inertia(model, ws, b, model.body_mass[b])


@nb.njit(forceinline=True, **JITB)
def _joint_kinematics(w, joint, frame, body, m, l):
    """Pose and motion subspace of the body moved by ``joint`` = (j, b, P) of ``JOINT_TREE``, then
    its spatial inertia (mass ``m``, ``body`` from ``_body_constants``), in lane ``l``. ``frame``:
    the joint's position in the parent frame (m) and its axis (unit), 6 values."""
    j, b, P = joint
    ox, oy, oz, ax, ay, az = frame
    R, p, S, cq, sq = w.R, w.p, w.S, w.cq, w.sq
    p[b, 0, l] = p[P, 0, l] + R[P, 0, 0, l] * ox + R[P, 0, 1, l] * oy + R[P, 0, 2, l] * oz
    p[b, 1, l] = p[P, 1, l] + R[P, 1, 0, l] * ox + R[P, 1, 1, l] * oy + R[P, 1, 2, l] * oz
    p[b, 2, l] = p[P, 2, l] + R[P, 2, 0, l] * ox + R[P, 2, 1, l] * oy + R[P, 2, 2, l] * oz
    # Rodrigues for any axis (the dedicated x/y paths of the scalar kernel gain nothing once
    # vectorised)
    t00, t01, t02 = ax * ax, ax * ay, ax * az
    t11, t12, t22 = ay * ay, ay * az, az * az
    c, s = cq[j, l], sq[j, l]
    t = 1.0 - c
    for r in range(3):
        pr0, pr1, pr2 = R[P, r, 0, l], R[P, r, 1, l], R[P, r, 2, l]
        R[b, r, 0, l] = pr0 * (t * t00 + c) + pr1 * (t * t01 + s * az) + pr2 * (t * t02 - s * ay)
        R[b, r, 1, l] = pr0 * (t * t01 - s * az) + pr1 * (t * t11 + c) + pr2 * (t * t12 + s * ax)
        R[b, r, 2, l] = pr0 * (t * t02 + s * ay) + pr1 * (t * t12 - s * ax) + pr2 * (t * t22 + c)
    a0 = R[P, 0, 0, l] * ax + R[P, 0, 1, l] * ay + R[P, 0, 2, l] * az
    a1 = R[P, 1, 0, l] * ax + R[P, 1, 1, l] * ay + R[P, 1, 2, l] * az
    a2 = R[P, 2, 0, l] * ax + R[P, 2, 1, l] * ay + R[P, 2, 2, l] * az
    S[j, 0, l] = a0
    S[j, 1, l] = a1
    S[j, 2, l] = a2
    m0, m1, m2 = cross3(p[b, 0, l], p[b, 1, l], p[b, 2, l], a0, a1, a2)
    S[j, 3, l] = m0
    S[j, 4, l] = m1
    S[j, 5, l] = m2
    _body_inertia(w, b, body, m, l)


@nb.njit(inline="always", **JITB)
def _joint_kinematics_block(model: RobotModel, w, joint):
    """``_joint_kinematics`` for every lane (a lane loop of the caller's own), the model values
    read before the loop (the record may alias ``w``)."""
    j, b = joint[0], joint[1]
    pos, axis = model.joint_pos, model.joint_axis
    frame = (pos[j, 0], pos[j, 1], pos[j, 2], axis[j, 0], axis[j, 1], axis[j, 2])
    body = _body_constants(model, b)
    m = model.body_mass[b]
    for l in range(BLOCK):
        _joint_kinematics(w, joint, frame, body, m, l)


@nb.njit(**JITB)
def kinematics_block(model: RobotModel, w):
    """``kinematics`` (its scalar reference) for a block, from ``w.quat``, ``w.cq``/``w.sq``
    (cos/sin of ``w.q``) and ``w.mass0``. Walks the fixed topology ``JOINT_TREE``."""
    R, p, quat = w.R, w.p, w.quat
    trunk = _body_constants(model, TRUNK)
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
        _body_inertia(w, TRUNK, trunk, w.mass0[l], l)
    _joint_kinematics_block(model, w, JOINT_TREE[0])
    _joint_kinematics_block(model, w, JOINT_TREE[1])
    _joint_kinematics_block(model, w, JOINT_TREE[2])
    _joint_kinematics_block(model, w, JOINT_TREE[3])
    _joint_kinematics_block(model, w, JOINT_TREE[4])
    _joint_kinematics_block(model, w, JOINT_TREE[5])
    _joint_kinematics_block(model, w, JOINT_TREE[6])
    _joint_kinematics_block(model, w, JOINT_TREE[7])
    _joint_kinematics_block(model, w, JOINT_TREE[8])
    _joint_kinematics_block(model, w, JOINT_TREE[9])
    _joint_kinematics_block(model, w, JOINT_TREE[10])
    _joint_kinematics_block(model, w, JOINT_TREE[11])


# ----------------------------------------------------------------------------- velocities

@nb.njit(**JIT)
def velocities(model: RobotModel, ws):
    """Body spatial velocities ``ws.V`` in O from ``ws.v`` (world, m/s), ``ws.wb`` (trunk frame,
    rad/s), ``ws.qd`` (rad/s); needs ``kinematics``. SIMD twin: ``velocities_block``."""
    R, V, S, qd = ws.R, ws.V, ws.S, ws.qd
    lin_vel_world, ang_vel_body = ws.v, ws.wb
    w0 = R[0, 0, 0] * ang_vel_body[0] + R[0, 0, 1] * ang_vel_body[1] + R[0, 0, 2] * ang_vel_body[2]
    w1 = R[0, 1, 0] * ang_vel_body[0] + R[0, 1, 1] * ang_vel_body[1] + R[0, 1, 2] * ang_vel_body[2]
    w2 = R[0, 2, 0] * ang_vel_body[0] + R[0, 2, 1] * ang_vel_body[1] + R[0, 2, 2] * ang_vel_body[2]
    V[0, 0] = w0
    V[0, 1] = w1
    V[0, 2] = w2
    V[0, 3] = lin_vel_world[0]
    V[0, 4] = lin_vel_world[1]
    V[0, 5] = lin_vel_world[2]
    for j in range(12):
        b = j + 1
        P = model.joint_parent[j]
        for k in range(6):
            V[b, k] = V[P, k] + S[j, k] * qd[j]


@nb.njit(**JITB)
def velocities_block(model: RobotModel, w):
    """``velocities`` (its scalar reference) for a block: ``w.V``; needs ``kinematics_block``."""
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


# ----------------------------------------------------------------------------- frame helpers for tasks

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
