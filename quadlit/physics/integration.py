"""Integration stage: semi-implicit (symplectic) Euler over one substep ``sim.dt``: velocities
from the accelerations ``acc``, then positions from the new velocities; the trunk quaternion by
the exponential map of the new trunk-frame angular velocity.

Pair (scalar reference <-> SIMD twin, same results to rounding): ``integrate`` <->
``integrate_block``. The SIMD twin evaluates the quaternion exponential with Taylor series
(libm's sin/cos do not vectorise) and also advances the joint cosines/sines ``w.cq``/``w.sq``
by the angle-addition formula (the scalar kinematics calls cos/sin every substep instead).
"""

from __future__ import annotations

import math

import numba as nb

from quadlit.physics.model import SimParams
from quadlit.physics.workspace import BLOCK, JIT, JITB


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
    the quaternion by the exponential map of the new trunk-frame angular velocity; step
    ``sim.dt`` s. SIMD twin: ``integrate_block``."""
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


@nb.njit(**JITB)
def integrate_block(sim: SimParams, w):
    """Semi-implicit Euler; quaternion by a Taylor exponential map; joint sin/cos advanced by
    the angle-addition formula with Taylor sin/cos of the (small) increment. Scalar reference:
    ``integrate``."""
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
