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
REWARD_TERMS = ("upright", "height", "lin_vel", "ang_vel", "energy", "action_rate", "pose", "alive",
                "termination")
EPISODE_METRICS = ("return", "length", "survived", "pushes")

# indices into the packed parameter vector
(P_MAX_STEPS, P_PUSH_MAG, P_PUSH_JITTER, P_PUSH_INT_MIN, P_PUSH_INT_MAX, P_COS_MAX_TILT, P_MIN_HEIGHT,
 P_TARGET_HEIGHT, P_RESET_TILT, P_RESET_JOINT, P_RESET_VEL, P_RESET_HEIGHT, P_FRICTION_MIN, P_FRICTION_MAX,
 P_MASS_MIN, P_MASS_MAX, P_STRENGTH_MIN, P_STRENGTH_MAX, P_GAIN_MIN, P_GAIN_MAX, P_OBS_NOISE,
 P_UPRIGHT, P_HEIGHT, P_LIN_VEL, P_ANG_VEL, P_ENERGY, P_ACTION_RATE, P_POSE, P_ALIVE, P_TERMINATION,
 P_CONTROL_DT, P_STANDING_HEIGHT, NUM_PARAMS) = range(33)


def pack_params(p, standing_height: float) -> np.ndarray:
    """The task parameters as a float64 vector indexed by the ``P_*`` constants."""
    v = np.zeros(NUM_PARAMS)
    v[P_MAX_STEPS] = p.max_steps
    v[P_PUSH_MAG] = p.push_magnitude
    v[P_PUSH_JITTER] = p.push_jitter
    v[P_PUSH_INT_MIN] = p.push_interval_min
    v[P_PUSH_INT_MAX] = p.push_interval_max
    v[P_COS_MAX_TILT] = math.cos(p.max_tilt)
    v[P_MIN_HEIGHT] = p.min_height
    v[P_TARGET_HEIGHT] = p.target_height if p.target_height > 0 else standing_height
    v[P_RESET_TILT] = p.reset_tilt
    v[P_RESET_JOINT] = p.reset_joint_noise
    v[P_RESET_VEL] = p.reset_velocity_noise
    v[P_RESET_HEIGHT] = p.reset_height_noise
    v[P_FRICTION_MIN], v[P_FRICTION_MAX] = p.friction_min, p.friction_max
    v[P_MASS_MIN], v[P_MASS_MAX] = p.added_mass_min, p.added_mass_max
    v[P_STRENGTH_MIN], v[P_STRENGTH_MAX] = p.motor_strength_min, p.motor_strength_max
    v[P_GAIN_MIN], v[P_GAIN_MAX] = p.gain_scale_min, p.gain_scale_max
    v[P_OBS_NOISE] = p.obs_noise
    v[P_UPRIGHT], v[P_HEIGHT] = p.upright_scale, p.height_scale
    v[P_LIN_VEL], v[P_ANG_VEL] = p.lin_vel_scale, p.ang_vel_scale
    v[P_ENERGY], v[P_ACTION_RATE], v[P_POSE] = p.energy_scale, p.action_rate_scale, p.pose_scale
    v[P_ALIVE], v[P_TERMINATION] = p.alive_bonus, p.termination_penalty
    v[P_CONTROL_DT] = p.control_dt
    v[P_STANDING_HEIGHT] = standing_height
    return v


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
        push_scale: (1,) f8, the curriculum's push multiplier (shared by all envs).
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

    @classmethod
    def allocate(cls, n: int) -> "TaskState":
        return cls(np.zeros((n, 12)), np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros((n, 2)),
                   np.full(n, -1, np.int64), np.zeros(n, np.int64), np.zeros(n), np.zeros(n, np.uint64),
                   np.ones(1))


class StepOutputs(NamedTuple):
    """Arrays the kernel writes every step (shapes as in ``StepResult``)."""

    obs: np.ndarray  # (N, 37) f4
    final_obs: np.ndarray  # (N, 37) f4
    reward: np.ndarray  # (N,) f4
    reward_terms: np.ndarray  # (N, 9) f4
    terminated: np.ndarray  # (N,) bool
    truncated: np.ndarray  # (N,) bool
    episode: np.ndarray  # (N, 4) f4: return, length, survived, pushes
    nonfinite: np.ndarray  # (N,) bool

    @classmethod
    def allocate(cls, n: int) -> "StepOutputs":
        return cls(np.zeros((n, OBS_DIM), np.float32), np.zeros((n, OBS_DIM), np.float32), np.zeros(n, np.float32),
                   np.zeros((n, len(REWARD_TERMS)), np.float32), np.zeros(n, np.bool_), np.zeros(n, np.bool_),
                   np.zeros((n, len(EPISODE_METRICS)), np.float32), np.zeros(n, np.bool_))


@nb.njit(**JIT)
def _schedule_push(p, ts, i):
    interval = rng.uniform_range(ts.rng_state, i, p[P_PUSH_INT_MIN], p[P_PUSH_INT_MAX])
    steps = int(interval / p[P_CONTROL_DT] + 0.5)
    if steps < 1:
        steps = 1
    ts.next_push[i] = ts.step[i] + steps


@nb.njit(**JIT)
def reset_env(model, envp, st, ts, p, i):
    """Neutral standing pose with small random offsets, fresh domain parameters and push schedule."""
    s = ts.rng_state
    # domain randomisation, drawn per episode
    envp.friction[i] = rng.uniform_range(s, i, p[P_FRICTION_MIN], p[P_FRICTION_MAX])
    envp.added_mass[i] = rng.uniform_range(s, i, p[P_MASS_MIN], p[P_MASS_MAX])
    envp.motor_strength[i] = rng.uniform_range(s, i, p[P_STRENGTH_MIN], p[P_STRENGTH_MAX])
    gain = rng.uniform_range(s, i, p[P_GAIN_MIN], p[P_GAIN_MAX])
    envp.kp_scale[i] = gain
    envp.kd_scale[i] = gain
    # pose: small roll and pitch (quaternion of a rotation about a horizontal axis), any yaw
    roll = rng.uniform_range(s, i, -p[P_RESET_TILT], p[P_RESET_TILT])
    pitch = rng.uniform_range(s, i, -p[P_RESET_TILT], p[P_RESET_TILT])
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
    st.base_pos[i, 2] = p[P_STANDING_HEIGHT] + rng.uniform_range(s, i, 0.0, p[P_RESET_HEIGHT])
    for k in range(3):
        st.base_lin_vel[i, k] = p[P_RESET_VEL] * rng.normal(s, i)
        st.base_ang_vel[i, k] = p[P_RESET_VEL] * rng.normal(s, i)
    for j in range(12):
        st.joint_pos[i, j] = model.default_q[j] + rng.uniform_range(s, i, -p[P_RESET_JOINT], p[P_RESET_JOINT])
        st.joint_vel[i, j] = p[P_RESET_VEL] * rng.normal(s, i)
        st.joint_torque[i, j] = 0.0
        ts.prev_action[i, j] = 0.0
    for k in range(4):
        st.foot_slip[i, k, 0] = 0.0
        st.foot_slip[i, k, 1] = 0.0
        st.foot_contact[i, k] = False
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
    sigma = p[P_OBS_NOISE]
    if sigma > 0.0:
        for k in range(OBS_DIM):
            obs[k] += sigma * rng.normal(ts.rng_state, i)


@nb.njit(inline="always", **JIT)
def reward_terms(model, st, ts, p, i, action, status, terms):
    """Each scaled reward term of env ``i`` after its physics step, into ``terms`` (9,) in
    ``REWARD_TERMS`` order; also stores the clipped action as ``prev_action``.

    Returns: True if the episode failed (non-finite state, tilt past the limit, trunk too low,
    trunk or knee touching the ground)."""
    gx, gy, gz = gravity_in_trunk(st.base_quat, i)
    cos_tilt = -gz
    vx, vy, vz = lin_vel_in_trunk(st.base_quat, st.base_lin_vel, i)
    wx, wy, wz = ang_vel_in_trunk(st.base_ang_vel, i)
    dh = (st.base_pos[i, 2] - p[P_TARGET_HEIGHT]) / 0.05
    rate = 0.0
    pose = 0.0
    for j in range(12):
        a = action[j]
        if a != a:
            a = 0.0
        a = -1.0 if a < -1.0 else (1.0 if a > 1.0 else a)
        d = a - ts.prev_action[i, j]
        rate += d * d
        ts.prev_action[i, j] = a
        e = st.joint_pos[i, j] - model.default_q[j]
        pose += e * e
    up = 0.5 * (1.0 + cos_tilt)
    failed = (status == STATUS_NONFINITE or cos_tilt < p[P_COS_MAX_TILT] or st.base_pos[i, 2] < p[P_MIN_HEIGHT]
              or st.body_contact[i])
    terms[0] = p[P_UPRIGHT] * up * up
    terms[1] = p[P_HEIGHT] * math.exp(-dh * dh)
    terms[2] = -p[P_LIN_VEL] * (vx * vx + vy * vy + vz * vz)
    terms[3] = -p[P_ANG_VEL] * (wx * wx + wy * wy + wz * wz)
    terms[4] = -p[P_ENERGY] * st.motor_power[i]
    terms[5] = -p[P_ACTION_RATE] * rate
    terms[6] = -p[P_POSE] * pose
    terms[7] = p[P_ALIVE]
    terms[8] = -p[P_TERMINATION] if failed else 0.0
    return failed


@nb.njit(**JIT)
def reset_shard(model, envp, st, ts, p, out, lo, hi):
    """Reset envs lo..hi-1 and write their observations."""
    for i in range(lo, hi):
        reset_env(model, envp, st, ts, p, i)
        write_obs(model, st, ts, p, i, out.obs[i])


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
            # push: a horizontal velocity kick in a random direction
            if ts.step[i] == ts.next_push[i]:
                angle = rng.uniform_range(ts.rng_state, i, -math.pi, math.pi)
                mag = p[P_PUSH_MAG] * ts.push_scale[0] * (1.0 - p[P_PUSH_JITTER] * rng.uniform(ts.rng_state, i))
                dvx, dvy = mag * math.cos(angle), mag * math.sin(angle)
                st.base_lin_vel[i, 0] += dvx
                st.base_lin_vel[i, 1] += dvy
                ts.push_vec[i, 0], ts.push_vec[i, 1] = dvx, dvy
                ts.push_step[i] = ts.step[i]
                ts.pushes[i] += 1
                _schedule_push(p, ts, i)

        nonfinite += control_step_block(model, sim, envp, st, actions, start, stop, wbuf)

        for i in range(start, stop):
            status = st.status[i]
            ts.step[i] += 1
            failed = reward_terms(model, st, ts, p, i, actions[i], status, terms[i])
            timed_out = (not failed) and ts.step[i] >= p[P_MAX_STEPS]
            if status == STATUS_NONFINITE:  # the state is meaningless: only the penalty counts
                for k in range(8):
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
            out.episode[i, 0] = ts.episode_return[i]
            out.episode[i, 1] = ts.step[i]
            out.episode[i, 2] = 1.0 if timed_out else 0.0
            out.episode[i, 3] = ts.pushes[i]
            if failed or timed_out:
                reset_env(model, envp, st, ts, p, i)
                write_obs(model, st, ts, p, i, out.obs[i])
            else:
                for k in range(OBS_DIM):
                    out.obs[i, k] = out.final_obs[i, k]
    return nonfinite + 0 * wbuf.size
