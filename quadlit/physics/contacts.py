"""Contact stage: ground forces on the feet and, once a robot is down, on its trunk, knees and
shanks (spring-damper normal force with regularised Coulomb friction), mapped to generalised
forces through the kinematic tree and added to ``Q``; and the trunk/knee ground-touch detection
(the tasks' failure rule).

Contact geometry (the collision geometry of ``to_mjcf(..., body_contacts=True)``): a sphere of
``foot_radius`` per foot; the trunk box (``trunk_half_extents``, centred at ``trunk_box_center``
in the trunk frame) by its 8 corners; a sphere of ``knee_radius`` at each knee (the calf origin); each shank, a capsule
of ``shank_radius`` from the knee to ``shank_end`` (a foot radius short of the foot centre), by
its end closest to the ground. Every point has its own stick-spring anchor: ``foot_slip`` for the
feet, ``body_slip`` (``state.NUM_BODY_POINTS`` rows) for the others.

Pairs (scalar reference <-> SIMD twin, same results to rounding):

* ``ground_contacts`` <-> ``ground_contacts_block`` (feet; the SIMD twin computes every foot's
  force and selects it away when the foot is off the ground or ``sim.contacts`` is off; the
  scalar one branches, and ``control_step.substep`` skips it when ``sim.contacts`` is off);
* ``body_ground_contacts`` <-> ``body_ground_contacts_block`` (trunk corners, knees, shanks; the
  SIMD twin skips a block whose lanes all clear the ground by more than ``SKIP_CLEARANCE``);
* ``body_touches_ground`` <-> ``body_touches_ground_block``.

``point_velocity`` and ``add_point_force`` (scalar) are the contact Jacobian ``J v`` and its
transpose ``J^T f`` for a point of a body; the SIMD twin inlines them (``_lane_ground_force``,
``_lane_add_force``). While no trunk, knee or shank point is below the ground the body stage adds
nothing to ``Q``: the feet's dynamics are bit for bit those of the feet-only engine.
Frames and units: see ``workspace.py`` (frame O, spatial vectors).
"""

from __future__ import annotations

import math

import numba as nb

from quadlit.physics.model import RobotModel, SimParams
from quadlit.physics.spatial import cross3
from quadlit.physics.state import KNEE0, NUM_BODY_POINTS, SHANK0
from quadlit.physics.workspace import BLOCK, JIT, JITB

SKIP_CLEARANCE = 1.0e-6
"""m: ``body_ground_contacts_block`` skips its work (and zeroes the anchors) when every trunk
corner, knee and shank of every lane is at least this far above touching; a margin far above
the rounding of its quick check, so the skip never drops a force the scalar twin applies."""


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


@nb.njit(inline="always", **JIT)
def shank_end(model: RobotModel, leg):
    """Far end of ``leg``'s shank capsule in its calf frame, m: a foot radius short of the foot
    centre on the line from the knee (``model.shank_ends`` in NumPy)."""
    fx, fy, fz = model.foot_pos[leg, 0], model.foot_pos[leg, 1], model.foot_pos[leg, 2]
    s = 1.0 - model.foot_radius / math.sqrt(fx * fx + fy * fy + fz * fz)
    return fx * s, fy * s, fz * s


@nb.njit(inline="always", **JIT)
def _point_of_body(ws, b, x, y, z):
    """The point at ``(x, y, z)`` of body ``b``'s frame, relative to O (world axes), m."""
    R, p = ws.R, ws.p
    return (p[b, 0] + R[b, 0, 0] * x + R[b, 0, 1] * y + R[b, 0, 2] * z,
            p[b, 1] + R[b, 1, 0] * x + R[b, 1, 1] * y + R[b, 1, 2] * z,
            p[b, 2] + R[b, 2, 0] * x + R[b, 2, 1] * y + R[b, 2, 2] * z)


@nb.njit(inline="always", **JIT)
def _sphere_ground_contact(model: RobotModel, sim: SimParams, ws, slip, k, b, x0, x1, x2, radius):
    """Ground force on a sphere of ``radius`` (m; 0: a point) of body ``b`` centred at ``x``
    (relative to O, m), added to ``ws.Q``; ``slip[k]`` (2,) is its stick spring (m), cleared when
    it does not touch. Returns whether it touches.

    Normal force ``max(0, k pen - c vz)`` at the sphere's lowest point; tangential force from a
    spring-damper anchored where it touched down (it sticks: no creep), capped at ``friction *
    normal`` (then it slides and the anchor follows: Coulomb)."""
    pen = radius - (ws.pos[2] + x2)
    if pen > 0.0:
        kt = sim.friction_stiffness
        ct = sim.friction_damping
        dt = sim.dt
        c2 = x2 - radius  # lowest point of the sphere
        v0, v1, v2 = point_velocity(ws.V, b, x0, x1, c2)
        fn = sim.contact_stiffness * pen - sim.contact_damping * v2
        if fn < 0.0:
            fn = 0.0
        ux = slip[k, 0] + v0 * dt
        uy = slip[k, 1] + v1 * dt
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
        slip[k, 0] = ux
        slip[k, 1] = uy
        add_point_force(model, ws, b, x0, x1, c2, ftx, fty, fn)
        return True
    slip[k, 0] = 0.0
    slip[k, 1] = 0.0
    return False


@nb.njit(**JIT)
def ground_contacts(model: RobotModel, sim: SimParams, ws):
    """Foot-ground forces (``_sphere_ground_contact`` of each foot sphere), added to ``ws.Q``.
    Updates the per-foot stick springs ``ws.slip`` and ``ws.contact``. Needs ``kinematics`` and
    ``velocities``. SIMD twin: ``ground_contacts_block``."""
    r = model.foot_radius
    for leg in range(4):
        b = 3 + 3 * leg
        x0, x1, x2 = _point_of_body(ws, b, model.foot_pos[leg, 0], model.foot_pos[leg, 1], model.foot_pos[leg, 2])
        touching = _sphere_ground_contact(model, sim, ws, ws.slip, leg, b, x0, x1, x2, r)
        ws.contact[leg] = 1.0 if touching else 0.0


@nb.njit(inline="always", **JIT)
def trunk_corner(model: RobotModel, k):
    """Trunk box corner ``k`` (0-7) in the trunk frame, m: the sign of x from bit 0 of ``k``,
    y bit 1, z bit 2 (set: plus), about the box centre ``trunk_box_center``."""
    hx, hy, hz = model.trunk_half_extents[0], model.trunk_half_extents[1], model.trunk_half_extents[2]
    cx, cy, cz = model.trunk_box_center[0], model.trunk_box_center[1], model.trunk_box_center[2]
    return cx + (hx if k & 1 else -hx), cy + (hy if k & 2 else -hy), cz + (hz if k & 4 else -hz)


@nb.njit(inline="always", **JIT)
def trunk_box(model: RobotModel):
    """The trunk box as six scalars for ``trunk_box_lowest``: half extents and centre (trunk
    frame, m). Read before a lane loop (the record may alias a workspace as far as LLVM knows)."""
    h, c = model.trunk_half_extents, model.trunk_box_center
    return h[0], h[1], h[2], c[0], c[1], c[2]


@nb.njit(inline="always", **JIT)
def trunk_box_lowest(box, z, r20, r21, r22):
    """Height of the trunk box's lowest point (m) for a trunk origin at height ``z`` whose
    rotation's bottom row is ``(r20, r21, r22)`` (world z of the trunk axes); ``box`` from
    ``trunk_box``."""
    hx, hy, hz, cx, cy, cz = box
    return z + (r20 * cx + r21 * cy + r22 * cz) - (abs(r20) * hx + abs(r21) * hy + abs(r22) * hz)


@nb.njit(**JIT)
def body_ground_contacts(model: RobotModel, sim: SimParams, ws):
    """Ground forces on the trunk box corners, knee spheres and shank capsules
    (``_sphere_ground_contact`` of each, see the module docstring), added to ``ws.Q``; updates
    their stick springs ``ws.body_slip``. Adds nothing while none is below the ground. Needs
    ``kinematics`` and ``velocities``. SIMD twin: ``body_ground_contacts_block``."""
    slip, p = ws.body_slip, ws.p
    for k in range(8):
        cx, cy, cz = trunk_corner(model, k)
        x0, x1, x2 = _point_of_body(ws, 0, cx, cy, cz)
        _sphere_ground_contact(model, sim, ws, slip, k, 0, x0, x1, x2, 0.0)
    for leg in range(4):
        b = 3 + 3 * leg
        _sphere_ground_contact(model, sim, ws, slip, KNEE0 + leg, b, p[b, 0], p[b, 1], p[b, 2], model.knee_radius)
        ex, ey, ez = shank_end(model, leg)
        e0, e1, e2 = _point_of_body(ws, b, ex, ey, ez)
        if not e2 < p[b, 2]:  # the knee end is the lower one
            e0, e1, e2 = p[b, 0], p[b, 1], p[b, 2]
        _sphere_ground_contact(model, sim, ws, slip, SHANK0 + leg, b, e0, e1, e2, model.shank_radius)


# ----------------------------------------------------------------------------- SIMD

@nb.njit(inline="always", **JITB)
def _lane_ground_force(w, slip, k, b, l, x0, x1, x2, radius, on, kn, cn, kt, ct, inv_kt, dt):
    """``_sphere_ground_contact`` in lane ``l`` with selects: the force on the sphere (zero
    unless ``on`` and it touches) and its stick spring ``slip[k, :, l]`` updated. Returns
    ``(c2, ftx, fty, fn, touching)``: the height of the force's point (relative to O, m) and
    the force (world, N). The caller adds it to ``w.Q`` (``_lane_add_force``)."""
    V = w.V
    pen = radius - (w.pos[2, l] + x2)
    touching = on and pen > 0.0
    c2 = x2 - radius
    e0, e1, e2 = cross3(V[b, 0, l], V[b, 1, l], V[b, 2, l], x0, x1, c2)
    v0 = V[b, 3, l] + e0
    v1 = V[b, 4, l] + e1
    v2 = V[b, 5, l] + e2
    fn = kn * pen - cn * v2
    fn = fn if fn > 0.0 else 0.0
    ux = slip[k, 0, l] + v0 * dt
    uy = slip[k, 1, l] + v1 * dt
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
    slip[k, 0, l] = ux if touching else 0.0
    slip[k, 1, l] = uy if touching else 0.0
    ftx = ftx if touching else 0.0
    fty = fty if touching else 0.0
    fn = fn if touching else 0.0
    return c2, ftx, fty, fn, touching


@nb.njit(inline="always", **JITB)
def _lane_add_force(w, j0, nj, l, x0, x1, x2, f0, f1, f2):
    """``add_point_force`` in lane ``l`` for a point of the trunk (``nj = 0``) or of the calf
    moved by joints ``j0 .. j0 + nj - 1`` (``j0 = 3 leg``, ``nj = 3``)."""
    Q, S = w.Q, w.S
    n0, n1, n2 = cross3(x0, x1, x2, f0, f1, f2)
    Q[0, l] += n0
    Q[1, l] += n1
    Q[2, l] += n2
    Q[3, l] += f0
    Q[4, l] += f1
    Q[5, l] += f2
    for k in range(nj):
        j = j0 + k
        Q[6 + j, l] += (S[j, 0, l] * n0 + S[j, 1, l] * n1 + S[j, 2, l] * n2
                        + S[j, 3, l] * f0 + S[j, 4, l] * f1 + S[j, 5, l] * f2)


@nb.njit(inline="always", **JITB)
def _lane_point(w, b, l, x, y, z):
    """``_point_of_body`` in lane ``l``."""
    R, p = w.R, w.p
    return (p[b, 0, l] + R[b, 0, 0, l] * x + R[b, 0, 1, l] * y + R[b, 0, 2, l] * z,
            p[b, 1, l] + R[b, 1, 0, l] * x + R[b, 1, 1, l] * y + R[b, 1, 2, l] * z,
            p[b, 2, l] + R[b, 2, 0, l] * x + R[b, 2, 1, l] * y + R[b, 2, 2, l] * z)


@nb.njit(**JITB)
def ground_contacts_block(model: RobotModel, sim: SimParams, w):
    """Foot-ground forces of a block (see ``ground_contacts``, its scalar reference) with
    selects instead of branches, added to ``w.Q``; updates ``w.slip`` and ``w.contact``."""
    r = model.foot_radius
    kn, cn = sim.contact_stiffness, sim.contact_damping
    kt, ct = sim.friction_stiffness, sim.friction_damping
    inv_kt = 1.0 / kt
    dt = sim.dt
    on = sim.contacts != 0
    for leg in range(4):
        b = 3 + 3 * leg
        fx, fy, fz = model.foot_pos[leg, 0], model.foot_pos[leg, 1], model.foot_pos[leg, 2]
        for l in range(BLOCK):
            x0, x1, x2 = _lane_point(w, b, l, fx, fy, fz)
            c2, ftx, fty, fn, touching = _lane_ground_force(w, w.slip, leg, b, l, x0, x1, x2, r, on,
                                                            kn, cn, kt, ct, inv_kt, dt)
            w.contact[leg, l] = 1.0 if touching else 0.0
            _lane_add_force(w, 3 * leg, 3, l, x0, x1, c2, ftx, fty, fn)


@nb.njit(**JITB)
def _count_near_ground_block(model: RobotModel, w):
    """How many (lane, trunk corner / knee / shank) pairs of a block are within
    ``SKIP_CLEARANCE`` of touching the ground or below it (a quick check with the trunk's lowest
    corner for all 8; an integer count, so the lane loops vectorise as a sum)."""
    R, p = w.R, w.p
    kr, sr = model.knee_radius + SKIP_CLEARANCE, model.shank_radius + SKIP_CLEARANCE
    box = trunk_box(model)
    near = 0
    for l in range(BLOCK):
        lowest = trunk_box_lowest(box, w.pos[2, l], R[0, 2, 0, l], R[0, 2, 1, l], R[0, 2, 2, l])
        near += 1 if lowest < SKIP_CLEARANCE else 0
    for leg in range(4):
        b = 3 + 3 * leg
        ex, ey, ez = shank_end(model, leg)
        for l in range(BLOCK):
            knee = w.pos[2, l] + p[b, 2, l]
            end = knee + R[b, 2, 0, l] * ex + R[b, 2, 1, l] * ey + R[b, 2, 2, l] * ez
            near += 1 if knee < kr else 0
            near += 1 if end < sr or knee < sr else 0
    return near


@nb.njit(**JITB)
def body_ground_contacts_block(model: RobotModel, sim: SimParams, w):
    """Ground forces on the trunk corners, knees and shanks of a block (see
    ``body_ground_contacts``, its scalar reference) with selects, added to ``w.Q``; updates
    ``w.body_slip``. A block whose lanes all clear the ground by ``SKIP_CLEARANCE`` only has its
    anchors cleared (the common case: a robot on its feet)."""
    slip = w.body_slip
    on = sim.contacts != 0
    if not on or _count_near_ground_block(model, w) == 0:
        for k in range(NUM_BODY_POINTS):
            for l in range(BLOCK):
                slip[k, 0, l] = 0.0
                slip[k, 1, l] = 0.0
        return
    kn, cn = sim.contact_stiffness, sim.contact_damping
    kt, ct = sim.friction_stiffness, sim.friction_damping
    inv_kt = 1.0 / kt
    dt = sim.dt
    p = w.p
    for k in range(8):
        cx, cy, cz = trunk_corner(model, k)
        for l in range(BLOCK):
            x0, x1, x2 = _lane_point(w, 0, l, cx, cy, cz)
            c2, ftx, fty, fn, _ = _lane_ground_force(w, slip, k, 0, l, x0, x1, x2, 0.0, on, kn, cn, kt, ct, inv_kt, dt)
            _lane_add_force(w, 0, 0, l, x0, x1, c2, ftx, fty, fn)
    kr, sr = model.knee_radius, model.shank_radius
    for leg in range(4):
        b = 3 + 3 * leg
        ex, ey, ez = shank_end(model, leg)
        for l in range(BLOCK):
            x0, x1, x2 = p[b, 0, l], p[b, 1, l], p[b, 2, l]
            c2, ftx, fty, fn, _ = _lane_ground_force(w, slip, KNEE0 + leg, b, l, x0, x1, x2, kr, on,
                                                     kn, cn, kt, ct, inv_kt, dt)
            _lane_add_force(w, 3 * leg, 3, l, x0, x1, c2, ftx, fty, fn)
            e0, e1, e2 = _lane_point(w, b, l, ex, ey, ez)
            lower = e2 < x2
            e0 = e0 if lower else x0
            e1 = e1 if lower else x1
            e2 = e2 if lower else x2
            c2, ftx, fty, fn, _ = _lane_ground_force(w, slip, SHANK0 + leg, b, l, e0, e1, e2, sr, on,
                                                     kn, cn, kt, ct, inv_kt, dt)
            _lane_add_force(w, 3 * leg, 3, l, e0, e1, c2, ftx, fty, fn)


@nb.njit(**JIT)
def body_touches_ground(model: RobotModel, ws):
    """True if the trunk box or a knee touches the ground (the failure rule; the forces there come
    from ``body_ground_contacts``). SIMD twin: ``body_touches_ground_block``."""
    R0 = ws.R[0]
    base_z = ws.pos[2]
    lowest = trunk_box_lowest(trunk_box(model), base_z, R0[2, 0], R0[2, 1], R0[2, 2])
    touched = lowest < 0.0
    for leg in range(4):
        touched = touched or (base_z + ws.p[3 + 3 * leg, 2] < model.knee_radius)
    return touched


@nb.njit(**JITB)
def body_touches_ground_block(model: RobotModel, w):
    """Sets ``w.touch[l]`` to 1.0 where the trunk box or a knee touches the ground (lanes that
    touched earlier in the control step keep it). Scalar reference: ``body_touches_ground``."""
    R, p = w.R, w.p
    kr = model.knee_radius
    box = trunk_box(model)
    for l in range(BLOCK):
        z = w.pos[2, l]
        lowest = trunk_box_lowest(box, z, R[0, 2, 0, l], R[0, 2, 1, l], R[0, 2, 2, l])
        knee = min(min(p[3, 2, l], p[6, 2, l]), min(p[9, 2, l], p[12, 2, l]))
        hit = lowest < 0.0 or z + knee < kr
        w.touch[l] = 1.0 if hit else w.touch[l]
