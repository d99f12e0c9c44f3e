"""The balance task's reward terms and its failure rule, each a small Numba function.

After the physics step of environment ``i`` the kernel gathers what the terms read into one
``StepView`` (``step_view``), then every term maps ``(p, v)`` -> its scaled value (``p`` is the
``KernelParams`` record). Positive terms reward, negative ones cost.

Adding a term takes: its function here, its name in ``REWARD_TERMS``, its line in
``reward_terms`` and its scale as a field of ``BalanceParams``; a new quantity it reads goes
into ``StepView``. Everything else (the reward sum, logging of ``reward/<name>``, the Gymnasium
info) follows ``REWARD_TERMS``. A test checks that ``reward_terms`` writes every named term.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb

from quadlit.physics.kinematics import ang_vel_in_trunk, gravity_in_trunk, lin_vel_in_trunk
from quadlit.physics.state import STATUS_NONFINITE
from quadlit.physics.workspace import JIT

#: The reward terms, in the column order of ``StepResult.reward_terms``.
REWARD_TERMS = ("upright", "height", "lin_vel", "ang_vel", "energy", "action_rate", "pose", "alive",
                "termination", "recovery_step")
T_TERMINATION = REWARD_TERMS.index("termination")


class StepView(NamedTuple):
    """What the reward terms and the failure rule read of one environment after its step."""

    cos_tilt: float  # cosine of the trunk's tilt from upright
    height: float  # trunk height above the ground, m
    lin_vel_sq: float  # squared trunk linear velocity, (m/s)^2
    ang_vel_sq: float  # squared trunk angular velocity, (rad/s)^2
    motor_power: float  # mechanical motor power of the control step, W
    action_change_sq: float  # squared change of the (clipped) action since the previous step
    pose_error_sq: float  # squared joint-angle offset from the default pose, rad^2
    failed: bool  # the episode ended by failure this step
    recovery_steps: float  # feet that touched down this step in a recovery step (kernels.count_recovery_steps)


@nb.njit(inline="always", **JIT)
def clip_action(a):
    """One action component clipped to [-1, 1]; NaN and ±inf become 0 (as the motors read it)."""
    if not (a - a == 0.0):  # NaN or ±inf (inf - inf is NaN)
        a = 0.0
    return -1.0 if a < -1.0 else (1.0 if a > 1.0 else a)


@nb.njit(inline="always", **JIT)
def has_failed(p, st, i, status, cos_tilt):
    """The episode fails on a non-finite state, a tilt past ``max_tilt``, a trunk below
    ``min_height``, or the trunk or a knee touching the ground."""
    return (status == STATUS_NONFINITE or cos_tilt < p.cos_max_tilt or st.base_pos[i, 2] < p.min_height
            or st.body_contact[i])


@nb.njit(inline="always", **JIT)
def step_view(model, st, ts, p, i, action, status, recovery_steps):
    """The ``StepView`` of env ``i`` after its physics step with ``action`` (12,), in which
    ``recovery_steps`` feet touched down in a recovery step."""
    gx, gy, gz = gravity_in_trunk(st.base_quat, i)
    cos_tilt = -gz
    vx, vy, vz = lin_vel_in_trunk(st.base_quat, st.base_lin_vel, i)
    wx, wy, wz = ang_vel_in_trunk(st.base_ang_vel, i)
    change = 0.0
    pose = 0.0
    for j in range(12):
        d = clip_action(action[j]) - ts.prev_action[i, j]
        change += d * d
        e = st.joint_pos[i, j] - model.default_q[j]
        pose += e * e
    return StepView(cos_tilt, st.base_pos[i, 2], vx * vx + vy * vy + vz * vz, wx * wx + wy * wy + wz * wz,
                    st.motor_power[i], change, pose, has_failed(p, st, i, status, cos_tilt), float(recovery_steps))


# ---- the terms ----------------------------------------------------------------------------------
@nb.njit(inline="always", **JIT)
def upright(p, v):
    """Keep the trunk level: scale * ((1 + cos tilt) / 2)^2."""
    up = 0.5 * (1.0 + v.cos_tilt)
    return p.upright_scale * up * up


@nb.njit(inline="always", **JIT)
def height(p, v):
    """Hold the target height: scale * exp(-(dh / w)^2), w = 0.05 m for the built-in A1 (in
    proportion to the height it settles at for another robot: ``height_width``)."""
    dh = (v.height - p.height_target) / p.height_width
    return p.height_scale * math.exp(-dh * dh)


@nb.njit(inline="always", **JIT)
def lin_vel(p, v):
    """Keep the trunk still: -scale * |v|^2."""
    return -p.lin_vel_scale * v.lin_vel_sq


@nb.njit(inline="always", **JIT)
def ang_vel(p, v):
    """Keep the trunk from turning: -scale * |w|^2."""
    return -p.ang_vel_scale * v.ang_vel_sq


@nb.njit(inline="always", **JIT)
def energy(p, v):
    """Spend little motor power (stamina): -scale * power."""
    return -p.energy_scale * v.motor_power


@nb.njit(inline="always", **JIT)
def action_rate(p, v):
    """Move smoothly: -scale * |a - a_prev|^2."""
    return -p.action_rate_scale * v.action_change_sq


@nb.njit(inline="always", **JIT)
def pose(p, v):
    """Stay near the default pose: -scale * |q - q_default|^2."""
    return -p.pose_scale * v.pose_error_sq


@nb.njit(inline="always", **JIT)
def alive(p, v):
    """A bonus for every step survived."""
    return p.alive_bonus


@nb.njit(inline="always", **JIT)
def termination(p, v):
    """A penalty when the episode fails."""
    return -p.termination_penalty if v.failed else 0.0


@nb.njit(inline="always", **JIT)
def recovery_step(p, v):
    """Step to recover: scale for every recovery step of this control step
    (``kernels.count_recovery_steps``, the steps of the ``steps_per_push`` metric; 0 by default)."""
    return p.recovery_step_scale * v.recovery_steps


@nb.njit(inline="always", **JIT)
def reward_terms(p, v, terms):
    """Every term of ``REWARD_TERMS``, scaled, into ``terms`` (len(REWARD_TERMS),)."""
    terms[0] = upright(p, v)
    terms[1] = height(p, v)
    terms[2] = lin_vel(p, v)
    terms[3] = ang_vel(p, v)
    terms[4] = energy(p, v)
    terms[5] = action_rate(p, v)
    terms[6] = pose(p, v)
    terms[7] = alive(p, v)
    terms[8] = termination(p, v)
    terms[9] = recovery_step(p, v)
