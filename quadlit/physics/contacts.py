"""Contact stage: foot-ground spring-damper forces with regularised Coulomb friction, mapped to
generalised forces through the kinematic tree and added to ``Q``, and the trunk/knee
ground-touch detection (no force there: the tasks terminate on it).

Pairs (scalar reference <-> SIMD twin, same results to rounding):

* ``ground_contacts`` <-> ``ground_contacts_block`` (the SIMD twin computes every foot's force
  and selects it away when the foot is off the ground or ``sim.contacts`` is off; the scalar one
  branches, and ``control_step.substep`` skips it when ``sim.contacts`` is off);
* ``body_touches_ground`` <-> ``body_touches_ground_block``.

``point_velocity`` and ``add_point_force`` (scalar) are the contact Jacobian ``J v`` and its
transpose ``J^T f`` for a point of a body; the SIMD twin inlines them.
Frames and units: see ``workspace.py`` (frame O, spatial vectors).
"""

from __future__ import annotations

import math

import numba as nb

from quadlit.physics.model import RobotModel, SimParams
from quadlit.physics.spatial import cross3
from quadlit.physics.workspace import BLOCK, JIT, JITB


@nb.njit(inline="always", **JIT)
def point_velocity(V, b, x0, x1, x2):
    """Velocity (world axes, m/s) of the point of body ``b`` at ``x`` (relative to O, m)."""
    c0, c1, c2 = cross3(V[b, 0], V[b, 1], V[b, 2], x0, x1, x2)
    return V[b, 3] + c0, V[b, 4] + c1, V[b, 5] + c2


@nb.njit(inline="always", **JIT)
def add_point_force(model: RobotModel, ws, b, x0, x1, x2, f0, f1, f2):
    """Add a world force ``f`` (N) acting at point ``x`` (relative to O) of body ``b`` to ``ws.Q``."""
    n0, n1, n2 = cross3(x0, x1, x2, f0, f1, f2)
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


@nb.njit(**JIT)
def ground_contacts(model: RobotModel, sim: SimParams, ws):
    """Foot-ground spring-damper forces with regularised (stick-spring) Coulomb friction, added
    to ``ws.Q``. Updates the per-foot stick springs ``ws.slip`` and ``ws.contact``.
    Needs ``kinematics`` and ``velocities``.

    Normal force ``max(0, k pen - c vz)``; tangential force from a spring-damper anchored where
    the foot touched down (it sticks: no creep), capped at ``friction * normal`` (then it slides
    and the anchor follows: Coulomb). SIMD twin: ``ground_contacts_block``."""
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


@nb.njit(**JITB)
def ground_contacts_block(model: RobotModel, sim: SimParams, w):
    """Foot-ground forces of a block (see ``ground_contacts``, its scalar reference) with
    selects instead of branches, added to ``w.Q``; updates ``w.slip`` and ``w.contact``."""
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
            e0, e1, e2 = cross3(V[b, 0, l], V[b, 1, l], V[b, 2, l], x0, x1, c2)
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
            n0, n1, n2 = cross3(x0, x1, c2, ftx, fty, fn)
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


@nb.njit(**JIT)
def body_touches_ground(model: RobotModel, ws):
    """True if the trunk box or a knee touches the ground (detection only, no force).
    SIMD twin: ``body_touches_ground_block``."""
    R0 = ws.R[0]
    base_z = ws.pos[2]
    hx, hy, hz = model.trunk_half_extents[0], model.trunk_half_extents[1], model.trunk_half_extents[2]
    lowest = base_z - (abs(R0[2, 0]) * hx + abs(R0[2, 1]) * hy + abs(R0[2, 2]) * hz)
    touched = lowest < 0.0
    for leg in range(4):
        touched = touched or (base_z + ws.p[3 + 3 * leg, 2] < model.knee_radius)
    return touched


@nb.njit(**JITB)
def body_touches_ground_block(model: RobotModel, w):
    """Sets ``w.touch[l]`` to 1.0 where the trunk box or a knee touches the ground (lanes that
    touched earlier in the control step keep it). Scalar reference: ``body_touches_ground``."""
    R, p = w.R, w.p
    hx, hy, hz = model.trunk_half_extents[0], model.trunk_half_extents[1], model.trunk_half_extents[2]
    kr = model.knee_radius
    for l in range(BLOCK):
        z = w.pos[2, l]
        lowest = z - (abs(R[0, 2, 0, l]) * hx + abs(R[0, 2, 1, l]) * hy + abs(R[0, 2, 2, l]) * hz)
        knee = min(min(p[3, 2, l], p[6, 2, l]), min(p[9, 2, l], p[12, 2, l]))
        hit = lowest < 0.0 or z + knee < kr
        w.touch[l] = 1.0 if hit else w.touch[l]
