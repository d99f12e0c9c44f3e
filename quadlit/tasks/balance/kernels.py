"""The balance task's fused kernel: pushes -> physics control step -> reward -> observation ->
termination -> auto-reset, for every environment of a shard, in one nogil call.

Observation layout (37, float32), all in the trunk frame:
    [0:3]   gravity direction (unit vector; (0, 0, -1) when level)
    [3:6]   trunk linear velocity, m/s
    [6:9]   trunk angular velocity, rad/s
    [9:21]  joint angles minus the default pose, rad (JOINT_NAMES order: FL, FR, RL, RR x hip, thigh, calf)
    [21:33] joint velocities, rad/s
    [33:37] foot contact flags (1.0 touching), FL FR RL RR
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np

from quadlit.envs import rng
from quadlit.physics.control_step import control_step_block
from quadlit.physics.kinematics import ang_vel_in_trunk, gravity_in_trunk, lin_vel_in_trunk
from quadlit.physics.state import STATUS_NONFINITE
from quadlit.physics.workspace import BLOCK, JIT, new_block_workspace
from quadlit.tasks.balance.rewards import REWARD_TERMS, T_TERMINATION, clip_action, reward_terms, step_view  # noqa: F401 (REWARD_TERMS re-exported)

OBS_DIM = 37
ACTION_DIM = 12
OBS_SLICES = {
    "gravity_trunk": (0, 3),
    "lin_vel_trunk": (3, 6),
    "ang_vel_trunk": (6, 9),
    "joint_pos_offset": (9, 21),
    "joint_vel": (21, 33),
    "foot_contact": (33, 37),
}
#: What only the simulator knows, for an asymmetric critic (never the policy): layout of the
#: privileged observation (9, float32).
PRIVILEGED_SLICES = {
    "push_vel_heading": (0, 2),  # Δv of the latest push in the heading frame (yaw only), m/s (0: none yet)
    "time_since_push": (2, 3),  # s since the latest push, at most PUSH_HORIZON_S
    "time_to_push": (3, 4),  # s until the next push, at most PUSH_HORIZON_S
    "friction": (4, 5),  # ground friction coefficient of this episode
    "added_mass": (5, 6),  # extra trunk mass of this episode, kg
    "motor_strength": (6, 7),  # torque-limit multiplier of this episode
    "gain_scale": (7, 8),  # PD-gain multiplier of this episode
    "trunk_height": (8, 9),  # trunk height above the ground, m
}
PRIVILEGED_DIM = 9
PUSH_HORIZON_S = 4.0
#: A foot touching down after at least this many control steps in the air, within this many
#: seconds after a push, counts as a recovery step (``steps_per_push``).
MIN_AIR_STEPS = 2
STEP_WINDOW_S = 1.0
EPISODE_METRICS = ("return", "length", "survived", "pushes", "steps_per_push")


class TaskState(NamedTuple):
    """Per-environment task bookkeeping (one row per env).

    Attributes:
        prev_action: (N, 12) f8, last action (for the action-rate penalty).
        step: (N,) i8, control steps into the episode.
        next_push: (N,) i8, episode step at which the next push lands.
        push_vec: (N, 2) f8, world Δv of the latest push, m/s.
        push_step: (N,) i8, episode step of the latest push (-1: none yet).
        pushes: (N,) i8, pushes this episode.
        episode_return: (N,) f8.
        rng_state: (N,) u8, the env's random stream.
        push_scale: (N,) f8, each env's push multiplier (the curriculum's, or an evaluation's magnitude).
        air_steps: (N, 4) i8, control steps each foot has been off the ground.
        push_steps: (N,) i8, recovery steps (touch-downs within STEP_WINDOW_S of a push) this episode.
    """

    prev_action: np.ndarray
    step: np.ndarray
    next_push: np.ndarray
    push_vec: np.ndarray
    push_step: np.ndarray
    pushes: np.ndarray
    episode_return: np.ndarray
    rng_state: np.ndarray
    push_scale: np.ndarray
    air_steps: np.ndarray
    push_steps: np.ndarray

    @classmethod
    def allocate(cls, n: int) -> "TaskState":
        return cls(np.zeros((n, 12)), np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros((n, 2)),
                   np.full(n, -1, np.int64), np.zeros(n, np.int64), np.zeros(n), np.zeros(n, np.uint64),
                   np.ones(n), np.zeros((n, 4), np.int64), np.zeros(n, np.int64))


class StepOutputs(NamedTuple):
    """Arrays the kernel writes every step (shapes as in ``StepResult``)."""

    obs: np.ndarray  # (N, 37) f4
    final_obs: np.ndarray  # (N, 37) f4
    reward: np.ndarray  # (N,) f4
    reward_terms: np.ndarray  # (N, 9) f4
    terminated: np.ndarray  # (N,) bool
    truncated: np.ndarray  # (N,) bool
    episode: np.ndarray  # (N, 5) f4: EPISODE_METRICS
    nonfinite: np.ndarray  # (N,) bool
    privileged: np.ndarray  # (N, 9) f4, PRIVILEGED_SLICES, after the step (the next episode's after a reset)
    final_privileged: np.ndarray  # (N, 9) f4, before the reset where an episode ended

    @classmethod
    def allocate(cls, n: int) -> "StepOutputs":
        return cls(np.zeros((n, OBS_DIM), np.float32), np.zeros((n, OBS_DIM), np.float32), np.zeros(n, np.float32),
                   np.zeros((n, len(REWARD_TERMS)), np.float32), np.zeros(n, np.bool_), np.zeros(n, np.bool_),
                   np.zeros((n, len(EPISODE_METRICS)), np.float32), np.zeros(n, np.bool_),
                   np.zeros((n, PRIVILEGED_DIM), np.float32), np.zeros((n, PRIVILEGED_DIM), np.float32))


@nb.njit(**JIT)
def _schedule_push(p, ts, i):
    interval = rng.uniform_range(ts.rng_state, i, p.push_interval_min, p.push_interval_max)
    steps = int(interval / p.control_dt + 0.5)
    if steps < 1:
        steps = 1
    ts.next_push[i] = ts.step[i] + steps


@nb.njit(inline="always", **JIT)
def push_env(st, ts, i, dvx, dvy):
    """The push: kick the trunk of env ``i`` by a horizontal world-frame velocity (dvx, dvy) m/s,
    and remember it (the latest push vector, its step, the episode's push count)."""
    st.base_lin_vel[i, 0] += dvx
    st.base_lin_vel[i, 1] += dvy
    ts.push_vec[i, 0], ts.push_vec[i, 1] = dvx, dvy
    ts.push_step[i] = ts.step[i]
    ts.pushes[i] += 1


@nb.njit(inline="always", **JIT)
def scheduled_push(p, st, ts, i):
    """When env ``i``'s next push is due: a random direction, ``push_magnitude`` x the curriculum's
    scale x a factor in [1 - push_jitter, 1]; then the next one is scheduled."""
    if ts.step[i] == ts.next_push[i]:
        angle = rng.uniform_range(ts.rng_state, i, -math.pi, math.pi)
        mag = p.push_magnitude * ts.push_scale[i] * (1.0 - p.push_jitter * rng.uniform(ts.rng_state, i))
        push_env(st, ts, i, mag * math.cos(angle), mag * math.sin(angle))
        _schedule_push(p, ts, i)


@nb.njit(**JIT)
def push_envs(st, ts, env_indices, dv):
    """Push envs ``env_indices`` (K,) by ``dv`` (K, 2) m/s (world frame), e.g. from ``quadlit play``."""
    for k in range(env_indices.shape[0]):
        push_env(st, ts, env_indices[k], dv[k, 0], dv[k, 1])


@nb.njit(**JIT)
def reset_env(model, envp, st, ts, p, i):
    """Env ``i``'s next episode: neutral standing pose with small random offsets, fresh domain parameters and push schedule."""
    s = ts.rng_state
    # domain randomisation, drawn per episode
    envp.friction[i] = rng.uniform_range(s, i, p.friction_min, p.friction_max)
    envp.added_mass[i] = rng.uniform_range(s, i, p.added_mass_min, p.added_mass_max)
    envp.motor_strength[i] = rng.uniform_range(s, i, p.motor_strength_min, p.motor_strength_max)
    gain = rng.uniform_range(s, i, p.gain_scale_min, p.gain_scale_max)
    envp.kp_scale[i] = gain
    envp.kd_scale[i] = gain
    # pose: small roll and pitch (quaternion of a rotation about a horizontal axis), any yaw
    roll = rng.uniform_range(s, i, -p.reset_tilt, p.reset_tilt)
    pitch = rng.uniform_range(s, i, -p.reset_tilt, p.reset_tilt)
    yaw = rng.uniform_range(s, i, -math.pi, math.pi)
    cr, sr = math.cos(0.5 * roll), math.sin(0.5 * roll)
    cp, sp = math.cos(0.5 * pitch), math.sin(0.5 * pitch)
    cy, sy = math.cos(0.5 * yaw), math.sin(0.5 * yaw)
    st.base_quat[i, 0] = cr * cp * cy + sr * sp * sy
    st.base_quat[i, 1] = sr * cp * cy - cr * sp * sy
    st.base_quat[i, 2] = cr * sp * cy + sr * cp * sy
    st.base_quat[i, 3] = cr * cp * sy - sr * sp * cy
    st.base_pos[i, 0] = 0.0
    st.base_pos[i, 1] = 0.0
    st.base_pos[i, 2] = p.standing_height + rng.uniform_range(s, i, 0.0, p.reset_height_noise)
    for k in range(3):
        st.base_lin_vel[i, k] = p.reset_velocity_noise * rng.normal(s, i)
        st.base_ang_vel[i, k] = p.reset_velocity_noise * rng.normal(s, i)
    for j in range(12):
        st.joint_pos[i, j] = model.default_q[j] + rng.uniform_range(s, i, -p.reset_joint_noise, p.reset_joint_noise)
        st.joint_vel[i, j] = p.reset_velocity_noise * rng.normal(s, i)
        st.joint_torque[i, j] = 0.0
        ts.prev_action[i, j] = 0.0
    for k in range(4):
        st.foot_slip[i, k, 0] = 0.0
        st.foot_slip[i, k, 1] = 0.0
        st.foot_contact[i, k] = False
    for k in range(st.body_slip.shape[1]):
        st.body_slip[i, k, 0] = 0.0
        st.body_slip[i, k, 1] = 0.0
    st.world_offset[i, 0] = 0.0
    st.world_offset[i, 1] = 0.0
    st.body_contact[i] = False
    st.motor_power[i] = 0.0
    st.status[i] = 0
    ts.step[i] = 0
    ts.pushes[i] = 0
    ts.push_step[i] = -1
    ts.push_vec[i, 0] = 0.0
    ts.push_vec[i, 1] = 0.0
    ts.episode_return[i] = 0.0
    for k in range(4):
        ts.air_steps[i, k] = 0
    ts.push_steps[i] = 0
    _schedule_push(p, ts, i)


@nb.njit(inline="always", **JIT)
def write_obs(model, st, ts, p, i, obs):
    """The 37-vector of env ``i`` (layout in the module docstring) into ``obs`` (37,)."""
    gx, gy, gz = gravity_in_trunk(st.base_quat, i)
    vx, vy, vz = lin_vel_in_trunk(st.base_quat, st.base_lin_vel, i)
    wx, wy, wz = ang_vel_in_trunk(st.base_ang_vel, i)
    obs[0], obs[1], obs[2] = gx, gy, gz
    obs[3], obs[4], obs[5] = vx, vy, vz
    obs[6], obs[7], obs[8] = wx, wy, wz
    for j in range(12):
        obs[9 + j] = st.joint_pos[i, j] - model.default_q[j]
        obs[21 + j] = st.joint_vel[i, j]
    for k in range(4):
        obs[33 + k] = 1.0 if st.foot_contact[i, k] else 0.0
    sigma = p.obs_noise
    if sigma > 0.0:
        for k in range(OBS_DIM):
            obs[k] += sigma * rng.normal(ts.rng_state, i)


@nb.njit(inline="always", **JIT)
def write_privileged(envp, st, ts, p, i, out):
    """The privileged 9-vector of env ``i`` (``PRIVILEGED_SLICES``) into ``out`` (9,)."""
    qw, qx, qy, qz = st.base_quat[i, 0], st.base_quat[i, 1], st.base_quat[i, 2], st.base_quat[i, 3]
    yaw = math.atan2(2.0 * (qw * qz + qx * qy), 1.0 - 2.0 * (qy * qy + qz * qz))
    c, s = math.cos(yaw), math.sin(yaw)
    dvx, dvy = ts.push_vec[i, 0], ts.push_vec[i, 1]
    out[0] = c * dvx + s * dvy
    out[1] = -s * dvx + c * dvy
    since = PUSH_HORIZON_S if ts.push_step[i] < 0 else (ts.step[i] - ts.push_step[i]) * p.control_dt
    until = (ts.next_push[i] - ts.step[i]) * p.control_dt
    out[2] = since if since < PUSH_HORIZON_S else PUSH_HORIZON_S
    out[3] = until if until < PUSH_HORIZON_S else PUSH_HORIZON_S
    out[4] = envp.friction[i]
    out[5] = envp.added_mass[i]
    out[6] = envp.motor_strength[i]
    out[7] = envp.kp_scale[i]
    out[8] = st.base_pos[i, 2]


@nb.njit(inline="always", **JIT)
def count_recovery_steps(st, ts, p, i):
    """After env ``i``'s control step: a foot that touches down after at least ``MIN_AIR_STEPS``
    in the air, within ``STEP_WINDOW_S`` of the latest push, is a recovery step.

    Returns: the recovery steps of this control step (0-4)."""
    recent = ts.push_step[i] >= 0 and (ts.step[i] - ts.push_step[i]) * p.control_dt <= STEP_WINDOW_S
    n = 0
    for k in range(4):
        if st.foot_contact[i, k]:
            if recent and ts.air_steps[i, k] >= MIN_AIR_STEPS:
                n += 1
            ts.air_steps[i, k] = 0
        else:
            ts.air_steps[i, k] += 1
    ts.push_steps[i] += n
    return n


@nb.njit(inline="always", **JIT)
def score_step(model, st, ts, p, i, action, status, recovery_steps, terms):
    """After env ``i``'s physics step with ``action`` (12,), in which ``recovery_steps`` feet set
    down in a recovery step: its scaled reward terms into ``terms`` (``reward_terms``), then the
    action is remembered for the next step's action-rate term.

    Returns: True if the episode failed (``rewards.has_failed``)."""
    view = step_view(model, st, ts, p, i, action, status, recovery_steps)
    reward_terms(p, view, terms)
    for j in range(12):
        ts.prev_action[i, j] = clip_action(action[j])
    return view.failed


@nb.njit(**JIT)
def reset_shard(model, envp, st, ts, p, out, lo, hi):
    """Reset envs lo..hi-1 and write their observations."""
    for i in range(lo, hi):
        reset_env(model, envp, st, ts, p, i)
        write_obs(model, st, ts, p, i, out.obs[i])
        write_privileged(envp, st, ts, p, i, out.privileged[i])


@nb.njit(**JIT)
def step_shard(model, sim, envp, st, ts, p, actions, out, lo, hi):
    """Advance envs lo..hi-1 by one control step, fused: push -> physics -> reward -> obs ->
    termination -> auto-reset. Physics runs on blocks of ``BLOCK`` envs with the SIMD kernel.
    Returns the number of envs with a non-finite physics state."""
    wbuf = new_block_workspace()
    nonfinite = 0
    terms = out.reward_terms
    for start in range(lo, hi, BLOCK):
        stop = start + BLOCK if start + BLOCK < hi else hi
        for i in range(start, stop):
            scheduled_push(p, st, ts, i)

        nonfinite += control_step_block(model, sim, envp, st, actions, start, stop, wbuf)

        for i in range(start, stop):
            status = st.status[i]
            ts.step[i] += 1
            recovered = count_recovery_steps(st, ts, p, i)
            failed = score_step(model, st, ts, p, i, actions[i], status, recovered, terms[i])
            timed_out = (not failed) and ts.step[i] >= p.max_steps
            if status == STATUS_NONFINITE:  # the state is meaningless: only the penalty counts
                for k in range(len(REWARD_TERMS)):
                    if k != T_TERMINATION:
                        terms[i, k] = 0.0
            total = 0.0
            for k in range(len(REWARD_TERMS)):
                total += terms[i, k]
            out.reward[i] = total
            ts.episode_return[i] += total
            out.terminated[i] = failed
            out.truncated[i] = timed_out
            out.nonfinite[i] = status == STATUS_NONFINITE

            write_obs(model, st, ts, p, i, out.final_obs[i])
            write_privileged(envp, st, ts, p, i, out.final_privileged[i])
            out.episode[i, 0] = ts.episode_return[i]
            out.episode[i, 1] = ts.step[i]
            out.episode[i, 2] = 1.0 if timed_out else 0.0
            out.episode[i, 3] = ts.pushes[i]
            out.episode[i, 4] = ts.push_steps[i] / ts.pushes[i] if ts.pushes[i] > 0 else 0.0
            if failed or timed_out:
                reset_env(model, envp, st, ts, p, i)
                write_obs(model, st, ts, p, i, out.obs[i])
                write_privileged(envp, st, ts, p, i, out.privileged[i])
            else:
                for k in range(OBS_DIM):
                    out.obs[i, k] = out.final_obs[i, k]
                for k in range(PRIVILEGED_DIM):
                    out.privileged[i, k] = out.final_privileged[i, k]
    return nonfinite + 0 * wbuf.size
