"""Featherstone's articulated-body algorithm (ABA): a reference/comparison forward dynamics,
not part of the control step's hot path.

The control step solves the dynamics with CRBA + block Cholesky (``dynamics.py``), which is
about 1.14x faster with this robot (``docs/benchmarks.md``). ABA is kept as an independent
second algorithm for the same accelerations: it is what ``api.forward_dynamics(method="aba")``
and ``api.step(method="aba")`` run, what ``quadlit bench physics`` compares CRBA against, and
it is tested against CRBA and against MuJoCo (``tests/physics``). Scalar only (no SIMD twin).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from quadlit.physics.actuators import joint_forces
from quadlit.physics.contacts import body_ground_contacts, body_touches_ground, ground_contacts
from quadlit.physics.control_step import load_env, store_env
from quadlit.physics.integration import integrate
from quadlit.physics.kinematics import kinematics, velocities
from quadlit.physics.model import EnvParams, RobotModel, SimParams
from quadlit.physics.spatial import cross3, inertia_row_times_motion, spatial_inertia_matrix
from quadlit.physics.state import PhysicsState
from quadlit.physics.workspace import JIT, new_workspace

ABA_SCRATCH_DTYPE = np.dtype([
    ("IA", np.float64, (13, 6, 6)),  # articulated-body inertias in O (6x6)
    ("pA", np.float64, (13, 6)),  # articulated-body bias forces in O
    ("U", np.float64, (12, 6)),  # IA_b S_j
    ("Dinv", np.float64, (12,)),  # 1 / (S_j^T U_j + armature_j)
    ("u", np.float64, (12,)),  # tau_j - S_j^T pA_b
], align=True)
"""ABA's own scratch, next to the scalar workspace (``WORKSPACE_DTYPE``) whose kinematics,
velocities, forces and outputs it shares."""


@nb.njit(**JIT)
def new_aba_scratch():
    """A 1-element array of ``ABA_SCRATCH_DTYPE`` (one per kernel call); use ``buf[0]``."""
    return np.zeros(1, dtype=ABA_SCRATCH_DTYPE)


@nb.njit(**JIT)
def aba_accelerations(model: RobotModel, gravity, ws, aba):
    """Featherstone's articulated-body algorithm in O, same result as ``bias_and_mass_matrix``
    + ``solve_accelerations`` (writes ``ws.acc``). Needs ``kinematics`` and ``velocities``;
    applied forces in ``ws.Q``; ``aba`` is an ``ABA_SCRATCH_DTYPE`` record (``new_aba_scratch()[0]``)."""
    V, A, S, Ib, IA, pA, U, Dinv, u, Q, acc, qd = ws.V, ws.A, ws.S, ws.Ib, aba.IA, aba.pA, aba.U, aba.Dinv, aba.u, ws.Q, ws.acc, ws.qd
    # pass 1: velocity-product accelerations c_b (in A) and bias forces pA = v x* I v
    for b in range(13):
        for k in range(6):
            A[b, k] = 0.0
        if b > 0:
            j = b - 1
            sq0, sq1, sq2 = S[j, 0] * qd[j], S[j, 1] * qd[j], S[j, 2] * qd[j]
            sq3, sq4, sq5 = S[j, 3] * qd[j], S[j, 4] * qd[j], S[j, 5] * qd[j]
            e0, e1, e2 = cross3(V[b, 0], V[b, 1], V[b, 2], sq0, sq1, sq2)
            g0, g1, g2 = cross3(V[b, 0], V[b, 1], V[b, 2], sq3, sq4, sq5)
            h0, h1, h2 = cross3(V[b, 3], V[b, 4], V[b, 5], sq0, sq1, sq2)
            A[b, 0] = e0
            A[b, 1] = e1
            A[b, 2] = e2
            A[b, 3] = g0 + h0
            A[b, 4] = g1 + h1
            A[b, 5] = g2 + h2
        w0, w1, w2, v0, v1, v2 = V[b, 0], V[b, 1], V[b, 2], V[b, 3], V[b, 4], V[b, 5]
        n0, n1, n2, l0, l1, l2 = inertia_row_times_motion(Ib, b, w0, w1, w2, v0, v1, v2)
        x0, x1, x2 = cross3(w0, w1, w2, n0, n1, n2)
        y0, y1, y2 = cross3(v0, v1, v2, l0, l1, l2)
        z0, z1, z2 = cross3(w0, w1, w2, l0, l1, l2)
        pA[b, 0] = x0 + y0
        pA[b, 1] = x1 + y1
        pA[b, 2] = x2 + y2
        pA[b, 3] = z0
        pA[b, 4] = z1
        pA[b, 5] = z2
        # IA = 6x6 of Ib
        spatial_inertia_matrix(Ib, b, IA[b])
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


@nb.njit(**JIT)
def substep_aba(model: RobotModel, sim: SimParams, ws, aba):
    """``control_step.substep`` with ``aba_accelerations`` in place of CRBA + block Cholesky
    (keep the two in step: ``test_aba_and_crba_steppers_agree`` compares them)."""
    kinematics(model, ws)
    velocities(model, ws)
    joint_forces(model, sim, ws)
    if sim.contacts != 0:
        ground_contacts(model, sim, ws)
        body_ground_contacts(model, sim, ws)
    if body_touches_ground(model, ws):
        ws.body_touch = 1.0
    aba_accelerations(model, sim.gravity, ws, aba)
    integrate(sim, ws)


@nb.njit(**JIT)
def step_shard_aba(model: RobotModel, sim: SimParams, envp: EnvParams, st: PhysicsState, actions, lo, hi):
    """``control_step.step_shard`` with the articulated-body algorithm (the benchmark's
    comparison; same results to rounding)."""
    buf = new_workspace()
    aba_buf = new_aba_scratch()
    ws = buf[0]
    aba = aba_buf[0]
    flagged = 0
    for i in range(lo, hi):
        load_env(model, sim, envp, st, i, actions[i], ws)
        for _ in range(sim.substeps):
            substep_aba(model, sim, ws, aba)
        flagged += store_env(sim, st, i, ws)
    return flagged + 0 * (buf.size + aba_buf.size)  # the buffers stay alive while their views are used
