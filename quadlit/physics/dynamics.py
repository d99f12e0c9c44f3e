"""Floating-base articulated rigid-body dynamics of the quadruped (Numba kernels).

Internally every spatial quantity is expressed in the frame ``O``: world-aligned axes with its
origin at the trunk origin at this instant, so all positions are small whatever the drift.
Spatial motion vectors are ``(angular; linear at O)``, force vectors ``(moment about O; force)``.
The internal generalised velocity is ``nu = (omega_world, v_O, qd)`` with ``v_O`` the trunk origin
velocity; the public one follows MuJoCo (``v_world, omega_trunk, qd``).

Forward dynamics solves ``H(q) nu_dot = Q - C(q, nu)`` with
  * ``C`` by recursive Newton-Euler (RNEA, gravity as a base acceleration),
  * ``H`` by the composite-rigid-body algorithm (CRBA),
  * a branch-aware block solve: each leg's 3x3 block is factorised (Cholesky), its Schur
    complement folded into the 6x6 trunk block, which is factorised, then each leg is
    back-substituted. This is the exact sparse LDL of ``H`` for a trunk with 4 3-joint legs.
An articulated-body (ABA) implementation of the same is kept for comparison
(``forward_dynamics_aba_env``); see ``quadlit/bench/physics.py``.
"""

from __future__ import annotations

import math
import numba as nb
import numpy as np

from quadlit.physics.model import RobotModel

JIT = dict(cache=True, nogil=True, error_model="numpy")


WORKSPACE_DTYPE = np.dtype([
    # one environment's state while it is being stepped (copied in and out of PhysicsState)
    ("pos", np.float64, (3,)),  # trunk origin, world, m
    ("quat", np.float64, (4,)),  # wxyz
    ("q", np.float64, (12,)),  # rad
    ("v", np.float64, (3,)),  # trunk origin velocity, world, m/s
    ("wb", np.float64, (3,)),  # trunk angular velocity, trunk frame, rad/s
    ("qd", np.float64, (12,)),  # rad/s
    ("slip", np.float64, (4, 2)),  # foot stick-spring stretch, m
    ("contact", np.float64, (4,)),  # 1.0 where the foot touches the ground
    ("torque", np.float64, (12,)),  # motor torque summed over substeps, N·m
    ("power", np.float64),  # sum |tau qd| summed over substeps, W
    ("body_touch", np.float64),  # 1.0 if trunk/knee touched the ground this step
    # per-env parameters of the env being stepped
    ("friction", np.float64),
    ("added_mass", np.float64),
    ("strength", np.float64),
    ("kp_scale", np.float64),
    ("kd_scale", np.float64),
    ("target", np.float64, (12,)),  # PD targets (rad) or torque commands (N·m) of this step
    ("saved", np.float64, (19,)),  # position state at the start of the control step
    # dynamics scratch
    ("R", np.float64, (13, 3, 3)),  # body -> world rotation
    ("p", np.float64, (13, 3)),  # body origin relative to the trunk origin, world axes, m
    ("S", np.float64, (12, 6)),  # joint motion subspace in O
    ("Ib", np.float64, (13, 10)),  # body spatial inertia at O: m, h = m c (3), I about O (xx yy zz xy xz yz)
    ("Ic", np.float64, (13, 10)),  # composite inertia at O
    ("V", np.float64, (13, 6)),  # body spatial velocity in O
    ("A", np.float64, (13, 6)),  # bias acceleration (nu_dot = 0, gravity as base acceleration)
    ("f", np.float64, (13, 6)),  # body force (RNEA), then subtree force
    ("H", np.float64, (18, 18)),  # mass matrix, internal coordinates
    ("Q", np.float64, (18,)),  # applied generalised force, internal coordinates
    ("C", np.float64, (18,)),  # bias force
    ("acc", np.float64, (18,)),  # nu_dot, internal coordinates (linear part: spatial)
    ("L", np.float64, (4, 3, 3)),  # leg block Cholesky factors
    ("Y", np.float64, (4, 3, 6)),  # L^-1 H_leg,trunk
    ("y", np.float64, (4, 3)),  # L^-1 r_leg
    ("Mb", np.float64, (6, 6)),  # trunk Schur complement / its Cholesky factor
    ("rb", np.float64, (6,)),
    ("IA", np.float64, (13, 6, 6)),  # articulated inertias (ABA only)
    ("pA", np.float64, (13, 6)),  # articulated bias forces (ABA only)
    ("U", np.float64, (12, 6)),
    ("Dinv", np.float64, (12,)),
    ("u", np.float64, (12,)),
], align=True)
"""Per-thread scratch record: one environment's state and all intermediate quantities."""


@nb.njit(**JIT)
def new_workspace():
    """A fresh workspace buffer: a 1-element array of ``WORKSPACE_DTYPE``.

    Allocate one per kernel call (per thread) and pass it to ``control_step_env`` for every
    environment; helpers take the record ``ws = buf[0]`` (passed by pointer, no refcounting).
    """
    return np.zeros(1, dtype=WORKSPACE_DTYPE)


# ----------------------------------------------------------------------------- small helpers

@nb.njit(inline="always", **JIT)
def quat_to_rot(quat, R):
    """Write the rotation matrix (3, 3) of unit quaternion ``quat`` (wxyz) into ``R``."""
    w, x, y, z = quat[0], quat[1], quat[2], quat[3]
    R[0, 0] = 1.0 - 2.0 * (y * y + z * z)
    R[0, 1] = 2.0 * (x * y - w * z)
    R[0, 2] = 2.0 * (x * z + w * y)
    R[1, 0] = 2.0 * (x * y + w * z)
    R[1, 1] = 1.0 - 2.0 * (x * x + z * z)
    R[1, 2] = 2.0 * (y * z - w * x)
    R[2, 0] = 2.0 * (x * z - w * y)
    R[2, 1] = 2.0 * (y * z + w * x)
    R[2, 2] = 1.0 - 2.0 * (x * x + y * y)


@nb.njit(inline="always", **JIT)
def _cross(a0, a1, a2, b0, b1, b2):
    return a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0


@nb.njit(inline="always", **JIT)
def _inertia_mul(I, b, w0, w1, w2, v0, v1, v2):
    """Spatial inertia row ``I[b]`` (10-parameter form) times motion (w; v) -> force (n; f)."""
    m = I[b, 0]
    h0, h1, h2 = I[b, 1], I[b, 2], I[b, 3]
    ixx, iyy, izz, ixy, ixz, iyz = I[b, 4], I[b, 5], I[b, 6], I[b, 7], I[b, 8], I[b, 9]
    c0, c1, c2 = _cross(h0, h1, h2, v0, v1, v2)
    d0, d1, d2 = _cross(h0, h1, h2, w0, w1, w2)
    n0 = ixx * w0 + ixy * w1 + ixz * w2 + c0
    n1 = ixy * w0 + iyy * w1 + iyz * w2 + c1
    n2 = ixz * w0 + iyz * w1 + izz * w2 + c2
    return n0, n1, n2, m * v0 - d0, m * v1 - d1, m * v2 - d2


@nb.njit(inline="always", **JIT)
def _spatial_inertia_matrix(I, b, out):
    """Write row ``I[b]`` (10-parameter form: m, h, Ixx Iyy Izz Ixy Ixz Iyz) as the 6x6 spatial
    inertia [[I_bar, [h]x], [[h]x^T, m 1]] into the top-left 6x6 block of ``out``."""
    m = I[b, 0]
    h0, h1, h2 = I[b, 1], I[b, 2], I[b, 3]
    out[0, 0] = I[b, 4]
    out[1, 1] = I[b, 5]
    out[2, 2] = I[b, 6]
    out[0, 1] = out[1, 0] = I[b, 7]
    out[0, 2] = out[2, 0] = I[b, 8]
    out[1, 2] = out[2, 1] = I[b, 9]
    for r in range(3):
        for c in range(3):
            out[3 + r, 3 + c] = m if r == c else 0.0
    # upper right = [h]x, lower left = [h]x^T
    out[0, 3] = 0.0
    out[0, 4] = -h2
    out[0, 5] = h1
    out[1, 3] = h2
    out[1, 4] = 0.0
    out[1, 5] = -h0
    out[2, 3] = -h1
    out[2, 4] = h0
    out[2, 5] = 0.0
    for r in range(3):
        for c in range(3):
            out[3 + c, r] = out[r, 3 + c]


@nb.njit(**JIT)
def _set_body_inertia(model: RobotModel, ws, b, m):
    """Body ``b``'s spatial inertia at O from its mass ``m``, COM and inertia (body frame)."""
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


# ----------------------------------------------------------------------------- kinematics

@nb.njit(**JIT)
def kinematics(model: RobotModel, ws):
    """Body rotations/positions (relative to the trunk origin), joint subspaces and spatial
    inertias from ``ws.quat`` (unit wxyz), ``ws.q`` (rad) and ``ws.added_mass`` (kg at the
    trunk COM)."""
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
        m0, m1, m2 = _cross(p[b, 0], p[b, 1], p[b, 2], a0, a1, a2)
        S[j, 3] = m0
        S[j, 4] = m1
        S[j, 5] = m2
        _set_body_inertia(model, ws, b, model.body_mass[b])


@nb.njit(**JIT)
def velocities(model: RobotModel, ws):
    """Body spatial velocities in O from ``ws.v``, ``ws.wb``, ``ws.qd`` (after ``kinematics``)."""
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


@nb.njit(inline="always", **JIT)
def point_velocity(V, b, x0, x1, x2):
    """World velocity of the point of body ``b`` at ``x`` (relative to O)."""
    c0, c1, c2 = _cross(V[b, 0], V[b, 1], V[b, 2], x0, x1, x2)
    return V[b, 3] + c0, V[b, 4] + c1, V[b, 5] + c2


@nb.njit(inline="always", **JIT)
def add_point_force(model: RobotModel, ws, b, x0, x1, x2, f0, f1, f2):
    """Add a world force ``f`` (N) acting at point ``x`` (relative to O) of body ``b`` to ``ws.Q``."""
    n0, n1, n2 = _cross(x0, x1, x2, f0, f1, f2)
    Q = ws.Q
    Q[0] += n0
    Q[1] += n1
    Q[2] += n2
    Q[3] += f0
    Q[4] += f1
    Q[5] += f2
    while b != 0:
        j = b - 1
        Q[6 + j] += ws.S[j, 0] * n0 + ws.S[j, 1] * n1 + ws.S[j, 2] * n2 + ws.S[j, 3] * f0 + ws.S[j, 4] * f1 + ws.S[j, 5] * f2
        b = model.joint_parent[j]


# ----------------------------------------------------------------------------- RNEA + CRBA

@nb.njit(**JIT)
def bias_and_mass_matrix(model: RobotModel, gravity, ws):
    """Bias force ``ws.C`` (RNEA, gravity included) and mass matrix ``ws.H`` (CRBA, armature on
    the joint diagonal), internal coordinates. Needs ``kinematics`` and ``velocities``."""
    V, A, f, S, Ib, Ic, H, C, qd = ws.V, ws.A, ws.f, ws.S, ws.Ib, ws.Ic, ws.H, ws.C, ws.qd
    # trunk: bias acceleration = -gravity (upwards), f = I A + v x* I v
    for k in range(6):
        A[0, k] = 0.0
    A[0, 5] = gravity
    for b in range(13):
        if b == 0:
            P = -1
        else:
            j = b - 1
            P = model.joint_parent[j]
            sq0, sq1, sq2 = S[j, 0] * qd[j], S[j, 1] * qd[j], S[j, 2] * qd[j]
            sq3, sq4, sq5 = S[j, 3] * qd[j], S[j, 4] * qd[j], S[j, 5] * qd[j]
            # A_b = A_P + V_b x (S qd)
            e0, e1, e2 = _cross(V[b, 0], V[b, 1], V[b, 2], sq0, sq1, sq2)
            g0, g1, g2 = _cross(V[b, 0], V[b, 1], V[b, 2], sq3, sq4, sq5)
            h0, h1, h2 = _cross(V[b, 3], V[b, 4], V[b, 5], sq0, sq1, sq2)
            A[b, 0] = A[P, 0] + e0
            A[b, 1] = A[P, 1] + e1
            A[b, 2] = A[P, 2] + e2
            A[b, 3] = A[P, 3] + g0 + h0
            A[b, 4] = A[P, 4] + g1 + h1
            A[b, 5] = A[P, 5] + g2 + h2
        w0, w1, w2, v0, v1, v2 = V[b, 0], V[b, 1], V[b, 2], V[b, 3], V[b, 4], V[b, 5]
        n0, n1, n2, l0, l1, l2 = _inertia_mul(Ib, b, w0, w1, w2, v0, v1, v2)
        a0, a1, a2, a3, a4, a5 = _inertia_mul(Ib, b, A[b, 0], A[b, 1], A[b, 2], A[b, 3], A[b, 4], A[b, 5])
        # v x* (n; l) = (w x n + v x l; w x l)
        x0, x1, x2 = _cross(w0, w1, w2, n0, n1, n2)
        y0, y1, y2 = _cross(v0, v1, v2, l0, l1, l2)
        z0, z1, z2 = _cross(w0, w1, w2, l0, l1, l2)
        f[b, 0] = a0 + x0 + y0
        f[b, 1] = a1 + x1 + y1
        f[b, 2] = a2 + x2 + y2
        f[b, 3] = a3 + z0
        f[b, 4] = a4 + z1
        f[b, 5] = a5 + z2
        for k in range(10):
            Ic[b, k] = Ib[b, k]
    # backward pass: joint bias forces, composite inertias, mass matrix
    for j in range(11, -1, -1):
        b = j + 1
        P = model.joint_parent[j]
        C[6 + j] = S[j, 0] * f[b, 0] + S[j, 1] * f[b, 1] + S[j, 2] * f[b, 2] + S[j, 3] * f[b, 3] + S[j, 4] * f[b, 4] + S[j, 5] * f[b, 5]
        for k in range(6):
            f[P, k] += f[b, k]
        F0, F1, F2, F3, F4, F5 = _inertia_mul(Ic, b, S[j, 0], S[j, 1], S[j, 2], S[j, 3], S[j, 4], S[j, 5])
        H[6 + j, 6 + j] = S[j, 0] * F0 + S[j, 1] * F1 + S[j, 2] * F2 + S[j, 3] * F3 + S[j, 4] * F4 + S[j, 5] * F5 + model.joint_armature[j]
        H[0, 6 + j] = F0
        H[1, 6 + j] = F1
        H[2, 6 + j] = F2
        H[3, 6 + j] = F3
        H[4, 6 + j] = F4
        H[5, 6 + j] = F5
        for k in range(6):
            H[6 + j, k] = H[k, 6 + j]
        a = P
        while a != 0:
            k = a - 1
            hkj = S[k, 0] * F0 + S[k, 1] * F1 + S[k, 2] * F2 + S[k, 3] * F3 + S[k, 4] * F4 + S[k, 5] * F5
            H[6 + k, 6 + j] = hkj
            H[6 + j, 6 + k] = hkj
            a = model.joint_parent[k]
        for k in range(10):
            Ic[P, k] += Ic[b, k]
    for k in range(6):
        C[k] = f[0, k]
    _spatial_inertia_matrix(Ic, 0, H)


@nb.njit(**JIT)
def solve_accelerations(ws):
    """Solve ``H acc = Q - C`` exploiting the trunk + 4 legs structure (block Schur/Cholesky).
    Writes ``ws.acc``. Legs are joints 3l..3l+2 with no coupling between legs. Factor
    diagonals are stored as reciprocals (multiplications instead of divisions)."""
    H, L, Y, y, Mb, rb, acc, Q, C = ws.H, ws.L, ws.Y, ws.y, ws.Mb, ws.rb, ws.acc, ws.Q, ws.C
    for r in range(6):
        rb[r] = Q[r] - C[r]
        for c in range(r + 1):
            Mb[r, c] = H[r, c]
    for leg in range(4):
        o = 6 + 3 * leg
        i00 = 1.0 / math.sqrt(H[o, o])
        l10 = H[o + 1, o] * i00
        l20 = H[o + 2, o] * i00
        i11 = 1.0 / math.sqrt(H[o + 1, o + 1] - l10 * l10)
        l21 = (H[o + 2, o + 1] - l20 * l10) * i11
        i22 = 1.0 / math.sqrt(H[o + 2, o + 2] - l20 * l20 - l21 * l21)
        L[leg, 0, 0] = i00
        L[leg, 1, 0] = l10
        L[leg, 2, 0] = l20
        L[leg, 1, 1] = i11
        L[leg, 2, 1] = l21
        L[leg, 2, 2] = i22
        for c in range(6):
            y0 = H[o, c] * i00
            y1 = (H[o + 1, c] - l10 * y0) * i11
            y2 = (H[o + 2, c] - l20 * y0 - l21 * y1) * i22
            Y[leg, 0, c] = y0
            Y[leg, 1, c] = y1
            Y[leg, 2, c] = y2
        z0 = (Q[o] - C[o]) * i00
        z1 = (Q[o + 1] - C[o + 1] - l10 * z0) * i11
        z2 = (Q[o + 2] - C[o + 2] - l20 * z0 - l21 * z1) * i22
        y[leg, 0] = z0
        y[leg, 1] = z1
        y[leg, 2] = z2
        for r in range(6):
            yr0, yr1, yr2 = Y[leg, 0, r], Y[leg, 1, r], Y[leg, 2, r]
            rb[r] -= yr0 * z0 + yr1 * z1 + yr2 * z2
            for c in range(r + 1):
                Mb[r, c] -= yr0 * Y[leg, 0, c] + yr1 * Y[leg, 1, c] + yr2 * Y[leg, 2, c]
    # 6x6 Cholesky in place (lower triangle, reciprocal diagonal), forward/back substitution
    for c in range(6):
        d = Mb[c, c]
        for k in range(c):
            d -= Mb[c, k] * Mb[c, k]
        inv = 1.0 / math.sqrt(d)
        Mb[c, c] = inv
        for r in range(c + 1, 6):
            s = Mb[r, c]
            for k in range(c):
                s -= Mb[r, k] * Mb[c, k]
            Mb[r, c] = s * inv
    for r in range(6):
        s = rb[r]
        for k in range(r):
            s -= Mb[r, k] * rb[k]
        rb[r] = s * Mb[r, r]
    for r in range(5, -1, -1):
        s = rb[r]
        for k in range(r + 1, 6):
            s -= Mb[k, r] * acc[k]
        acc[r] = s * Mb[r, r]
    for leg in range(4):
        o = 6 + 3 * leg
        z0 = y[leg, 0]
        z1 = y[leg, 1]
        z2 = y[leg, 2]
        for c in range(6):
            z0 -= Y[leg, 0, c] * acc[c]
            z1 -= Y[leg, 1, c] * acc[c]
            z2 -= Y[leg, 2, c] * acc[c]
        a2 = z2 * L[leg, 2, 2]
        a1 = (z1 - L[leg, 2, 1] * a2) * L[leg, 1, 1]
        a0 = (z0 - L[leg, 1, 0] * a1 - L[leg, 2, 0] * a2) * L[leg, 0, 0]
        acc[o] = a0
        acc[o + 1] = a1
        acc[o + 2] = a2


# ----------------------------------------------------------------------------- ABA (comparison)

@nb.njit(**JIT)
def aba_accelerations(model: RobotModel, gravity, ws):
    """Featherstone's articulated-body algorithm in O, same result as ``bias_and_mass_matrix``
    + ``solve_accelerations`` (writes ``ws.acc``). Needs ``kinematics`` and ``velocities``;
    applied forces in ``ws.Q``."""
    V, A, S, Ib, IA, pA, U, Dinv, u, Q, acc, qd = ws.V, ws.A, ws.S, ws.Ib, ws.IA, ws.pA, ws.U, ws.Dinv, ws.u, ws.Q, ws.acc, ws.qd
    # pass 1: velocity-product accelerations c_b (in A) and bias forces pA = v x* I v
    for b in range(13):
        for k in range(6):
            A[b, k] = 0.0
        if b > 0:
            j = b - 1
            sq0, sq1, sq2 = S[j, 0] * qd[j], S[j, 1] * qd[j], S[j, 2] * qd[j]
            sq3, sq4, sq5 = S[j, 3] * qd[j], S[j, 4] * qd[j], S[j, 5] * qd[j]
            e0, e1, e2 = _cross(V[b, 0], V[b, 1], V[b, 2], sq0, sq1, sq2)
            g0, g1, g2 = _cross(V[b, 0], V[b, 1], V[b, 2], sq3, sq4, sq5)
            h0, h1, h2 = _cross(V[b, 3], V[b, 4], V[b, 5], sq0, sq1, sq2)
            A[b, 0] = e0
            A[b, 1] = e1
            A[b, 2] = e2
            A[b, 3] = g0 + h0
            A[b, 4] = g1 + h1
            A[b, 5] = g2 + h2
        w0, w1, w2, v0, v1, v2 = V[b, 0], V[b, 1], V[b, 2], V[b, 3], V[b, 4], V[b, 5]
        n0, n1, n2, l0, l1, l2 = _inertia_mul(Ib, b, w0, w1, w2, v0, v1, v2)
        x0, x1, x2 = _cross(w0, w1, w2, n0, n1, n2)
        y0, y1, y2 = _cross(v0, v1, v2, l0, l1, l2)
        z0, z1, z2 = _cross(w0, w1, w2, l0, l1, l2)
        pA[b, 0] = x0 + y0
        pA[b, 1] = x1 + y1
        pA[b, 2] = x2 + y2
        pA[b, 3] = z0
        pA[b, 4] = z1
        pA[b, 5] = z2
        # IA = 6x6 of Ib
        _spatial_inertia_matrix(Ib, b, IA[b])
    # applied trunk wrench enters as -Q on the trunk's bias force
    for k in range(6):
        pA[0, k] -= Q[k]
    # pass 2: articulated inertias, leaves to root
    for j in range(11, -1, -1):
        b = j + 1
        P = model.joint_parent[j]
        M = IA[b]
        for r in range(6):
            s = 0.0
            for c in range(6):
                s += M[r, c] * S[j, c]
            U[j, r] = s
        d = model.joint_armature[j]
        uj = Q[6 + j]
        for k in range(6):
            d += S[j, k] * U[j, k]
            uj -= S[j, k] * pA[b, k]
        Dinv[j] = 1.0 / d
        u[j] = uj
        # pa = pA + Ia c + U D^-1 u ; Ia = IA - U D^-1 U^T
        MP = IA[P]
        for r in range(6):
            ur = U[j, r] * Dinv[j]
            s = pA[b, r] + ur * uj
            for c in range(6):
                ia = M[r, c] - ur * U[j, c]
                MP[r, c] += ia
                s += ia * A[b, c]
            pA[P, r] += s
    # trunk: IA_0 a_0 = -pA_0 with a_0 the trunk acceleration (gravity as base acceleration)
    Mb, rb = ws.Mb, ws.rb
    for r in range(6):
        rb[r] = -pA[0, r]
        for c in range(6):
            Mb[r, c] = IA[0, r, c]
    for c in range(6):
        dd = Mb[c, c]
        for k in range(c):
            dd -= Mb[c, k] * Mb[c, k]
        dd = math.sqrt(dd)
        Mb[c, c] = dd
        for r in range(c + 1, 6):
            s = Mb[r, c]
            for k in range(c):
                s -= Mb[r, k] * Mb[c, k]
            Mb[r, c] = s / dd
    for r in range(6):
        s = rb[r]
        for k in range(r):
            s -= Mb[r, k] * rb[k]
        rb[r] = s / Mb[r, r]
    for r in range(5, -1, -1):
        s = rb[r]
        for k in range(r + 1, 6):
            s -= Mb[k, r] * acc[k]
        acc[r] = s / Mb[r, r]
    # acc[0:6] is a'_0 = a_0 - a_gravity (gravity folded in as a base acceleration): pass 3
    # propagates a', which differs from the true acceleration by the same constant everywhere
    for k in range(6):
        A[0, k] = acc[k]
    for j in range(12):
        b = j + 1
        P = model.joint_parent[j]
        s = u[j]
        for k in range(6):
            s -= U[j, k] * (A[P, k] + A[b, k])
        qdd = s * Dinv[j]
        acc[6 + j] = qdd
        for k in range(6):
            A[b, k] = A[P, k] + A[b, k] + S[j, k] * qdd
    acc[5] -= gravity
