"""Dynamics stage: bias forces, mass matrix and the accelerations of the floating-base tree.

Forward dynamics solves ``H(q) nu_dot = Q - C(q, nu)`` (internal coordinates, frame O: see
``workspace.py``) with
  * ``C`` by recursive Newton-Euler (RNEA, gravity as a base acceleration),
  * ``H`` by the composite-rigid-body algorithm (CRBA, armature on the joint diagonal),
  * a branch-aware block solve: each leg's 3x3 block is factorised (Cholesky), its Schur
    complement folded into the 6x6 trunk block, which is factorised, then each leg is
    back-substituted. This is the exact sparse LDL of ``H`` for a trunk with 4 3-joint legs.

Pairs (scalar reference <-> SIMD twin, same results to rounding):

* ``bias_and_mass_matrix`` <-> ``bias_and_mass_matrix_block``: the scalar one fills the full
  ``ws.H`` (18, 18); the SIMD one keeps only its nonzero pieces (``w.I[0]`` trunk block as the
  composite inertia, ``w.F`` trunk-joint coupling, ``w.Hl`` leg blocks) and walks the fixed
  topology ``JOINT_TREE`` with indices that LLVM sees as constants (see ``workspace.py``).
* ``solve_accelerations`` <-> ``solve_accelerations_block``: ``acc = H^-1 (Q - C)``.

The articulated-body algorithm, kept as a comparison, is in ``aba.py`` (not on this path).
"""

from __future__ import annotations

import math

import numba as nb

from quadlit.physics.model import JOINT_TREE, TRUNK, RobotModel
from quadlit.physics.spatial import cross3, inertia_row_times_motion, inertia_times_motion, spatial_inertia_matrix
from quadlit.physics.workspace import BLOCK, JIT, JITB


# ----------------------------------------------------------------------------- RNEA + CRBA

@nb.njit(**JIT)
def bias_and_mass_matrix(model: RobotModel, gravity, ws):
    """Bias force ``ws.C`` (RNEA, gravity included) and mass matrix ``ws.H`` (CRBA, armature on
    the joint diagonal), internal coordinates; ``gravity`` m/s² (along -z). Needs ``kinematics``
    and ``velocities``. SIMD twin: ``bias_and_mass_matrix_block``."""
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
            e0, e1, e2 = cross3(V[b, 0], V[b, 1], V[b, 2], sq0, sq1, sq2)
            g0, g1, g2 = cross3(V[b, 0], V[b, 1], V[b, 2], sq3, sq4, sq5)
            h0, h1, h2 = cross3(V[b, 3], V[b, 4], V[b, 5], sq0, sq1, sq2)
            A[b, 0] = A[P, 0] + e0
            A[b, 1] = A[P, 1] + e1
            A[b, 2] = A[P, 2] + e2
            A[b, 3] = A[P, 3] + g0 + h0
            A[b, 4] = A[P, 4] + g1 + h1
            A[b, 5] = A[P, 5] + g2 + h2
        w0, w1, w2, v0, v1, v2 = V[b, 0], V[b, 1], V[b, 2], V[b, 3], V[b, 4], V[b, 5]
        n0, n1, n2, l0, l1, l2 = inertia_row_times_motion(Ib, b, w0, w1, w2, v0, v1, v2)
        a0, a1, a2, a3, a4, a5 = inertia_row_times_motion(Ib, b, A[b, 0], A[b, 1], A[b, 2], A[b, 3], A[b, 4], A[b, 5])
        # v x* (n; l) = (w x n + v x l; w x l)
        x0, x1, x2 = cross3(w0, w1, w2, n0, n1, n2)
        y0, y1, y2 = cross3(v0, v1, v2, l0, l1, l2)
        z0, z1, z2 = cross3(w0, w1, w2, l0, l1, l2)
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
        F0, F1, F2, F3, F4, F5 = inertia_row_times_motion(Ic, b, S[j, 0], S[j, 1], S[j, 2], S[j, 3], S[j, 4], S[j, 5])
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
    spatial_inertia_matrix(Ic, 0, H)


# ----------------------------------------------------------------------------- dynamics

# The per-lane steps below are compiled once (int64 indices) and inlined by LLVM (``forceinline``)
# into the lane loops of ``bias_and_mass_matrix_block``, where the indices from ``JOINT_TREE`` are
# constants: every address is then a constant offset plus the lane, so the loops vectorise
# without runtime alias checks. A step that holds its own lane loop would not do: compiled on
# its own, with unknown indices, such a loop stays scalar (too many alias checks) and its
# machine-prepared form no longer vectorises once inlined.

@nb.njit(forceinline=True, **JITB)
def _body_force(w, b, l):
    """RNEA body force f_b = I_b A_b + V_b x* I_b V_b of lane ``l`` (needs A_b)."""
    V, A, f, I = w.V, w.A, w.f, w.I
    m, h0, h1, h2 = I[b, 0, l], I[b, 1, l], I[b, 2, l], I[b, 3, l]
    ixx, iyy, izz, ixy, ixz, iyz = I[b, 4, l], I[b, 5, l], I[b, 6, l], I[b, 7, l], I[b, 8, l], I[b, 9, l]
    w0, w1, w2, v0, v1, v2 = V[b, 0, l], V[b, 1, l], V[b, 2, l], V[b, 3, l], V[b, 4, l], V[b, 5, l]
    n0, n1, n2, l0, l1, l2 = inertia_times_motion(m, h0, h1, h2, ixx, iyy, izz, ixy, ixz, iyz, w0, w1, w2, v0, v1, v2)
    a0, a1, a2, a3, a4, a5 = inertia_times_motion(m, h0, h1, h2, ixx, iyy, izz, ixy, ixz, iyz,
                                   A[b, 0, l], A[b, 1, l], A[b, 2, l], A[b, 3, l], A[b, 4, l], A[b, 5, l])
    x0, x1, x2 = cross3(w0, w1, w2, n0, n1, n2)
    y0, y1, y2 = cross3(v0, v1, v2, l0, l1, l2)
    z0, z1, z2 = cross3(w0, w1, w2, l0, l1, l2)
    f[b, 0, l] = a0 + x0 + y0
    f[b, 1, l] = a1 + x1 + y1
    f[b, 2, l] = a2 + x2 + y2
    f[b, 3, l] = a3 + z0
    f[b, 4, l] = a4 + z1
    f[b, 5, l] = a5 + z2


@nb.njit(forceinline=True, **JITB)
def _forward_joint(w, joint, l):
    """RNEA forward step of lane ``l`` for ``joint`` = (j, b, P) of ``JOINT_TREE``:
    A_b = A_P + V_b x (S_j qd_j), then the body force of b."""
    j, b, P = joint
    V, A, S, qd = w.V, w.A, w.S, w.qd
    qdj = qd[j, l]
    s0, s1, s2 = S[j, 0, l] * qdj, S[j, 1, l] * qdj, S[j, 2, l] * qdj
    s3, s4, s5 = S[j, 3, l] * qdj, S[j, 4, l] * qdj, S[j, 5, l] * qdj
    w0, w1, w2, v0, v1, v2 = V[b, 0, l], V[b, 1, l], V[b, 2, l], V[b, 3, l], V[b, 4, l], V[b, 5, l]
    e0, e1, e2 = cross3(w0, w1, w2, s0, s1, s2)
    g0, g1, g2 = cross3(w0, w1, w2, s3, s4, s5)
    h0, h1, h2 = cross3(v0, v1, v2, s0, s1, s2)
    A[b, 0, l] = A[P, 0, l] + e0
    A[b, 1, l] = A[P, 1, l] + e1
    A[b, 2, l] = A[P, 2, l] + e2
    A[b, 3, l] = A[P, 3, l] + g0 + h0
    A[b, 4, l] = A[P, 4, l] + g1 + h1
    A[b, 5, l] = A[P, 5, l] + g2 + h2
    _body_force(w, b, l)


@nb.njit(forceinline=True, **JITB)
def _leg_coupling(w, l, leg, kk, jj, k, F0, F1, F2, F3, F4, F5):
    """H entry of lane ``l`` between joint ``k`` (local index ``kk`` in ``leg``) and a
    descendant joint (local index ``jj``) whose composite inertia times motion subspace is F:
    S_k . F, into both triangles of ``Hl``."""
    S, Hl = w.S, w.Hl
    hkj = S[k, 0, l] * F0 + S[k, 1, l] * F1 + S[k, 2, l] * F2 + S[k, 3, l] * F3 + S[k, 4, l] * F4 + S[k, 5, l] * F5
    Hl[leg, kk, jj, l] = hkj
    Hl[leg, jj, kk, l] = hkj


@nb.njit(forceinline=True, **JITB)
def _backward_joint(w, joint, armature, l):
    """RNEA/CRBA backward step of lane ``l`` for ``joint`` = (j, b, P) of ``JOINT_TREE``: bias
    force, H column (``armature``: the joint's, kg m²), then b's subtree force and inertia
    added to P's."""
    j, b, P = joint
    leg, jj = j // 3, j % 3  # legs are joints 3 leg .. 3 leg + 2
    S, f, I, C, F, Hl = w.S, w.f, w.I, w.C, w.F, w.Hl
    S0, S1, S2, S3, S4, S5 = S[j, 0, l], S[j, 1, l], S[j, 2, l], S[j, 3, l], S[j, 4, l], S[j, 5, l]
    C[6 + j, l] = S0 * f[b, 0, l] + S1 * f[b, 1, l] + S2 * f[b, 2, l] + S3 * f[b, 3, l] + S4 * f[b, 4, l] + S5 * f[b, 5, l]
    F0, F1, F2, F3, F4, F5 = inertia_times_motion(I[b, 0, l], I[b, 1, l], I[b, 2, l], I[b, 3, l], I[b, 4, l], I[b, 5, l],
                                   I[b, 6, l], I[b, 7, l], I[b, 8, l], I[b, 9, l], S0, S1, S2, S3, S4, S5)
    F[j, 0, l] = F0
    F[j, 1, l] = F1
    F[j, 2, l] = F2
    F[j, 3, l] = F3
    F[j, 4, l] = F4
    F[j, 5, l] = F5
    Hl[leg, jj, jj, l] = S0 * F0 + S1 * F1 + S2 * F2 + S3 * F3 + S4 * F4 + S5 * F5 + armature
    # ancestors in the same leg: branches on jj, not a loop of jj iterations (LLVM cannot
    # unroll that one in the step compiled on its own, and a loop left inside the lane loop
    # keeps the lane loop from vectorising)
    if jj >= 1:
        _leg_coupling(w, l, leg, jj - 1, jj, j - 1, F0, F1, F2, F3, F4, F5)
    if jj == 2:
        _leg_coupling(w, l, leg, 0, jj, j - 2, F0, F1, F2, F3, F4, F5)
    for k in range(6):
        f[P, k, l] += f[b, k, l]
    for k in range(10):
        I[P, k, l] += I[b, k, l]


@nb.njit(inline="always", **JITB)
def _forward_joint_block(w, joint):
    """``_forward_joint`` for every lane (a lane loop of the caller's own, see above)."""
    for l in range(BLOCK):
        _forward_joint(w, joint, l)


@nb.njit(inline="always", **JITB)
def _backward_joint_block(model: RobotModel, w, joint):
    """``_backward_joint`` for every lane (a lane loop of the caller's own, see above)."""
    armature = model.joint_armature[joint[0]]  # read before the loop: the record may alias w
    for l in range(BLOCK):
        _backward_joint(w, joint, armature, l)


@nb.njit(**JITB)
def bias_and_mass_matrix_block(model: RobotModel, gravity, w):
    """Bias forces (RNEA, gravity as a base acceleration) and the mass matrix pieces (CRBA):
    ``w.C``, ``w.F`` (trunk-joint coupling), ``w.Hl`` (leg blocks); ``w.I[0]`` ends as the
    whole-robot composite inertia. Walks the fixed topology ``JOINT_TREE``.
    Scalar reference: ``bias_and_mass_matrix``."""
    A, f, C = w.A, w.f, w.C
    for l in range(BLOCK):
        for k in range(5):
            A[0, k, l] = 0.0
        A[0, 5, l] = gravity
        _body_force(w, TRUNK, l)
    # one call per joint, written out (not a loop): each gets constant indices and LLVM inlines it
    # without the per-joint specialisations that cost 30 s of compilation (quadlit/physics/model.py)
    _forward_joint_block(w, JOINT_TREE[0])
    _forward_joint_block(w, JOINT_TREE[1])
    _forward_joint_block(w, JOINT_TREE[2])
    _forward_joint_block(w, JOINT_TREE[3])
    _forward_joint_block(w, JOINT_TREE[4])
    _forward_joint_block(w, JOINT_TREE[5])
    _forward_joint_block(w, JOINT_TREE[6])
    _forward_joint_block(w, JOINT_TREE[7])
    _forward_joint_block(w, JOINT_TREE[8])
    _forward_joint_block(w, JOINT_TREE[9])
    _forward_joint_block(w, JOINT_TREE[10])
    _forward_joint_block(w, JOINT_TREE[11])
    _backward_joint_block(model, w, JOINT_TREE[11])
    _backward_joint_block(model, w, JOINT_TREE[10])
    _backward_joint_block(model, w, JOINT_TREE[9])
    _backward_joint_block(model, w, JOINT_TREE[8])
    _backward_joint_block(model, w, JOINT_TREE[7])
    _backward_joint_block(model, w, JOINT_TREE[6])
    _backward_joint_block(model, w, JOINT_TREE[5])
    _backward_joint_block(model, w, JOINT_TREE[4])
    _backward_joint_block(model, w, JOINT_TREE[3])
    _backward_joint_block(model, w, JOINT_TREE[2])
    _backward_joint_block(model, w, JOINT_TREE[1])
    _backward_joint_block(model, w, JOINT_TREE[0])
    for k in range(6):
        for l in range(BLOCK):
            C[k, l] = f[0, k, l]


# ----------------------------------------------------------------------------- block Cholesky solve

@nb.njit(**JIT)
def solve_accelerations(ws):
    """Solve ``H acc = Q - C`` exploiting the trunk + 4 legs structure (block Schur/Cholesky).
    Writes ``ws.acc``. Legs are joints 3l..3l+2 with no coupling between legs. Factor
    diagonals are stored as reciprocals (multiplications instead of divisions).
    SIMD twin: ``solve_accelerations_block``."""
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


@nb.njit(**JITB)
def solve_accelerations_block(w):
    """Block Schur/Cholesky solve of H acc = Q - C into ``w.acc``, H given by its pieces ``w.I[0]``,
    ``w.F``, ``w.Hl``. Scalar reference: ``solve_accelerations``."""
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
