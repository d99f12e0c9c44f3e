"""Actuator stage: motor torques, joint damping, joint friction loss and the one-sided joint-limit
springs, as generalised joint forces (N·m) in ``Q[6:]``; the trunk part ``Q[0:6]`` is cleared here.

Motors sit here rather than in ``contacts.py``: like damping and limits they act along a joint
axis (one torque per joint, no Jacobian), while contacts are point forces mapped through it.

Pairs (scalar reference <-> SIMD twin, same results to rounding):

* ``joint_forces`` <-> ``joint_forces_block`` (per substep; the SIMD twin inlines the motor
  model and the limit spring with selects instead of branches);
* ``motor_command`` (per control step: action -> PD target or torque command) is shared: the
  scalar ``control_step.load_env`` and the SIMD ``control_step.gather_block`` both call it.

``apply_motor_torques``, ``joint_limit_torque`` and ``joint_friction_torque`` are the scalar
per-joint laws.
"""

from __future__ import annotations

import numba as nb

from quadlit.physics.model import MOTOR_PD, RobotModel, SimParams
from quadlit.physics.workspace import BLOCK, JIT, JITB


@nb.njit(inline="always", **JIT)
def motor_command(model: RobotModel, sim: SimParams, strength, j, a):
    """Per-control-step motor command of joint ``j`` from action ``a`` (clipped to [-1, 1]; NaN
    and ±inf count as 0): the PD target angle (rad) in ``pd`` mode, the torque (N·m) in
    ``torque`` mode. Shared by the scalar and the SIMD path (``control_step.load_env`` /
    ``control_step.gather_block``)."""
    if not (a - a == 0.0):  # NaN or ±inf (inf - inf is NaN): hold the default pose / no torque
        a = 0.0
    elif a > 1.0:
        a = 1.0
    elif a < -1.0:
        a = -1.0
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


@nb.njit(inline="always", **JIT)
def joint_friction_torque(model: RobotModel, j, qd):
    """Dry friction of joint ``j`` (N·m) at velocity ``qd``: ``-clip(c qd, -f, f)`` with ``f`` the
    joint's friction loss and ``c`` its ``joint_friction_damping``, a viscous slope below the limit
    (what MuJoCo's soft friction-loss constraint does; a true Coulomb step cannot be integrated
    with an explicit 1 ms step). Zero for a joint without friction loss."""
    f = model.joint_frictionloss[j]
    t = model.joint_friction_damping[j] * qd
    if t > f:
        t = f
    elif t < -f:
        t = -f
    return -t


@nb.njit(**JIT)
def joint_forces(model: RobotModel, sim: SimParams, ws):
    """Motor torques (``apply_motor_torques``), joint damping, friction loss
    (``joint_friction_torque``) and joint-limit springs (``joint_limit_torque``) into
    ``ws.Q[6:]``, N·m; ``ws.Q[0:6]`` cleared. Accumulates the motor
    torque (``ws.torque``, N·m) and power (``ws.power``, W) over the substeps.
    SIMD twin: ``joint_forces_block``."""
    q, qd, Q = ws.q, ws.qd, ws.Q
    for k in range(6):
        Q[k] = 0.0
    for j in range(12):
        tau = apply_motor_torques(model, sim, j, ws.target[j], q[j], qd[j], ws.strength, ws.kp_scale, ws.kd_scale)
        ws.torque[j] += tau
        ws.power += abs(tau * qd[j])
        extra = -model.joint_damping[j] * qd[j]
        if sim.joint_limits != 0:
            extra += joint_limit_torque(model, sim, j, q[j], qd[j])
        Q[6 + j] = tau + extra + joint_friction_torque(model, j, qd[j])


@nb.njit(**JITB)
def joint_forces_block(model: RobotModel, sim: SimParams, w):
    """Motor torques (PD or torque mode, clipped, velocity-limited), joint damping, friction loss
    and one-sided joint-limit springs into ``w.Q[6:]``, N·m; motor torque and power accumulated.
    Scalar reference: ``joint_forces`` (which sums the three in another order: equal to rounding)."""
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
        fric, fric_c = model.joint_frictionloss[j], model.joint_friction_damping[j]
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
            t_f = fric_c * qdj
            t_f = fric if t_f > fric else t_f
            t_f = -fric if t_f < -fric else t_f
            Q[6 + j, l] = tau - damp * qdj + lim_tau - t_f
