"""Robustness (random full-range torques and kicks), non-finite handling, determinism across
thread counts and runs, agent-centred coordinates, motor and joint-limit models."""

import numba as nb
import numpy as np
import pytest

from quadlit.envs.pool import ShardPool
from quadlit.physics import (
    BLOCK,
    MOTOR_PD,
    MOTOR_TORQUE,
    STATUS_NONFINITE,
    EnvParams,
    PhysicsState,
    SimParams,
    a1_model,
    ang_vel_in_trunk,
    apply_motor_torques,
    control_step_block,
    control_step_env,
    forward_kinematics,
    gravity_in_trunk,
    leg_points_env,
    lin_vel_in_trunk,
    new_block_workspace,
    new_workspace,
    step,
    trunk_rotation,
)
from quadlit.physics.actuators import joint_limit_torque
from tests.physics.scenarios import kicked_trajectory

MODEL = a1_model()


@nb.njit(cache=True)
def _observation(st, out):
    """The balance task's physics part of the observation (gravity, velocities in the trunk
    frame, joint angles/velocities, foot contacts), through the public njit helpers."""
    for i in range(out.shape[0]):
        out[i, 0:3] = gravity_in_trunk(st.base_quat, i)
        out[i, 3:6] = lin_vel_in_trunk(st.base_quat, st.base_lin_vel, i)
        out[i, 6:9] = ang_vel_in_trunk(st.base_ang_vel, i)
        out[i, 9:21] = st.joint_pos[i]
        out[i, 21:33] = st.joint_vel[i]
        for k in range(4):
            out[i, 33 + k] = 1.0 if st.foot_contact[i, k] else 0.0


def _abuse(num_envs: int, steps: int, pool: ShardPool | None = None, method: str = "block") -> int:
    """Random full-range torques every step, random 0-4 m/s kicks to random envs, random
    domain parameters. Asserts every state and observation stays finite; returns flagged count."""
    rng = np.random.default_rng(2024)
    sim = SimParams(motor_mode=MOTOR_TORQUE)
    st = PhysicsState.allocate(num_envs)
    st.set_standing(MODEL)
    envp = EnvParams.allocate(num_envs)
    envp.friction[:] = rng.uniform(0.0, 1.5, num_envs)
    envp.added_mass[:] = rng.uniform(-1.0, 3.0, num_envs)
    envp.motor_strength[:] = rng.uniform(0.5, 1.5, num_envs)
    obs = np.zeros((num_envs, 37))
    flagged = 0
    for _ in range(steps):
        actions = rng.uniform(-1.0, 1.0, (num_envs, 12))
        kicked = rng.random(num_envs) < 0.02
        st.base_lin_vel[kicked, :2] += rng.normal(size=(int(kicked.sum()), 2)) * 2.0  # world x, y kicks, m/s
        n = step(MODEL, sim, envp, st, actions, pool, method=method)
        assert n == int((st.status == STATUS_NONFINITE).sum())
        flagged += n
        # the task resets flagged envs; so do we
        if n:
            st.set_standing(MODEL, np.flatnonzero(st.status))
        _observation(st, obs)
        assert np.isfinite(obs).all()
        for arr in st:
            assert np.isfinite(arr).all()
    return flagged


@pytest.mark.parametrize("method", ["shards", "block"])
def test_random_torques_and_kicks_stay_finite_short(method):
    _abuse(num_envs=64, steps=100, method=method)


def test_random_torques_and_kicks_stay_finite_one_million_steps():
    """1024 envs x 1000 control steps = 1.02 M control steps (20.5 M physics substeps), SIMD
    kernel on 2 threads: about 10 s here, so not marked slow."""
    pool = ShardPool(2)
    try:
        flagged = _abuse(num_envs=1024, steps=1000, pool=pool)
    finally:
        pool.close()
    print("flagged non-finite/diverged envs:", flagged)


@pytest.mark.parametrize("serial,threaded", [("shards", "prange"), ("block", "block-prange")])
def test_results_identical_with_1_and_2_threads_and_run_to_run(serial, threaded):
    one = kicked_trajectory(None, serial)
    pool = ShardPool(2)
    try:
        two = kicked_trajectory(pool, serial)
        again = kicked_trajectory(pool, serial)
        par = kicked_trajectory(pool, threaded)
    finally:
        pool.close()
    for a, b, c, d in zip(one, two, again, par):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(a, d)


def test_aba_and_crba_steppers_agree():
    a = kicked_trajectory(None, "shards", steps=5)
    b = kicked_trajectory(None, "aba", steps=5)
    np.testing.assert_allclose(a.base_pos, b.base_pos, atol=1e-9)
    np.testing.assert_allclose(a.joint_pos, b.joint_pos, atol=1e-8)


@pytest.mark.parametrize("method", ["shards", "block"])
def test_non_finite_env_is_flagged_restored_and_isolated(method):
    sim = SimParams()
    envp = EnvParams.allocate(4)
    st = PhysicsState.allocate(4)
    st.set_standing(MODEL)
    clean = st.copy()
    st.joint_vel[1, 3] = np.nan
    st.base_ang_vel[2, 0] = 1e9  # finite but absurd: diverges
    actions = np.zeros((4, 12))
    pose = st.joint_pos[1].copy()
    assert step(MODEL, sim, envp, st, actions, method=method) == 2
    np.testing.assert_array_equal(st.status, [0, 1, 1, 0])
    for arr in st:
        assert np.isfinite(arr).all()
    np.testing.assert_array_equal(st.joint_pos[1], pose)  # start-of-step pose, at rest
    assert not st.joint_vel[1].any() and not st.base_lin_vel[1].any()
    # the others are exactly as if the bad envs were not there
    step(MODEL, sim, envp, clean, actions, method=method)
    for a, b in zip(st, clean):
        np.testing.assert_array_equal(a[[0, 3]], b[[0, 3]])
    # NaN actions are treated as zero, not propagated
    act = np.full((4, 12), np.nan)
    st.set_standing(MODEL)
    assert step(MODEL, sim, envp, st, act, method=method) == 0


@pytest.mark.parametrize("method", ["shards", "block"])
def test_infinite_actions_step_as_zero_like_nan(method):
    """The README and the warnings say non-finite actions are stepped as zero: ±inf as well as
    NaN, not clipped to ±1."""
    sim, envp = SimParams(), EnvParams.allocate(3)
    bad, zero = PhysicsState.allocate(3), PhysicsState.allocate(3)
    bad.set_standing(MODEL)
    zero.set_standing(MODEL)
    actions = np.tile(np.random.default_rng(1).uniform(-0.5, 0.5, 12), (3, 1))
    broken = actions.copy()
    broken[0, :4] = np.inf
    broken[1, 4:8] = -np.inf
    broken[2, 8:] = (np.nan, np.inf, -np.inf, np.nan)
    actions[0, :4], actions[1, 4:8], actions[2, 8:] = 0.0, 0.0, 0.0
    for _ in range(3):
        assert step(MODEL, sim, envp, bad, broken, method=method) == 0
        step(MODEL, sim, envp, zero, actions, method=method)
    for a, b in zip(bad, zero):
        np.testing.assert_array_equal(a, b)


def test_agent_centred_world_is_independent_of_distance_travelled():
    """An env whose robot is 1e7 m away evolves bit-for-bit like one at the origin."""
    sim = SimParams()
    envp = EnvParams.allocate(2)
    st = PhysicsState.allocate(2)
    st.set_standing(MODEL)
    st.world_offset[1] = (1e7, -3e6)
    st.base_lin_vel[:, :2] += (0.3, -0.2)  # the same kick for both, m/s
    actions = np.tile(np.random.default_rng(0).uniform(-0.5, 0.5, 12), (2, 1))
    for _ in range(20):
        step(MODEL, sim, envp, st, actions)
        assert not st.base_pos[:, :2].any()  # trunk re-centred after every control step
    for name in ("base_pos", "base_quat", "joint_pos", "base_lin_vel", "base_ang_vel", "joint_vel", "foot_slip",
                 "body_slip"):
        arr = getattr(st, name)
        np.testing.assert_array_equal(arr[0], arr[1])
    np.testing.assert_allclose(st.world_offset[1] - st.world_offset[0], (1e7, -3e6), atol=1e-6)
    assert np.abs(st.world_offset[0]).max() > 0.01  # it did move


def test_motor_models_and_limits():
    pd = SimParams(motor_mode=MOTOR_PD)
    tq = SimParams(motor_mode=MOTOR_TORQUE)
    j = 2  # FL knee: Kp 80, Kd 2, limit 33.5 N·m, velocity limit 21 rad/s
    # pd: Kp (target - q) - Kd qd with target = default + action_scale a
    target = MODEL.default_q[j] + 0.25 * 0.4
    assert apply_motor_torques(MODEL, pd, j, target, -1.5, 1.0, 1.0, 1.0, 1.0) == pytest.approx(80 * 0.1 - 2 * 1.0)
    assert apply_motor_torques(MODEL, pd, j, target, -1.5, 1.0, 1.0, 2.0, 0.5) == pytest.approx(160 * 0.1 - 1.0)
    assert apply_motor_torques(MODEL, pd, j, 1.0, -1.5, 0.0, 1.0, 1.0, 1.0) == pytest.approx(33.5)  # clipped
    assert apply_motor_torques(MODEL, pd, j, 1.0, -1.5, 0.0, 0.5, 1.0, 1.0) == pytest.approx(16.75)  # weaker motor
    # torque mode: command already a * limit; clipped; no positive work beyond the velocity limit
    assert apply_motor_torques(MODEL, tq, j, -40.0, 0.0, 0.0, 1.0, 1.0, 1.0) == pytest.approx(-33.5)
    assert apply_motor_torques(MODEL, tq, j, 10.0, 0.0, 25.0, 1.0, 1.0, 1.0) == 0.0
    assert apply_motor_torques(MODEL, tq, j, -10.0, 0.0, 25.0, 1.0, 1.0, 1.0) == -10.0
    # joint limits: one-sided spring-damper that never pulls
    lo, hi = MODEL.joint_lower[j], MODEL.joint_upper[j]
    assert joint_limit_torque(MODEL, pd, j, -1.5, 5.0) == 0.0
    assert joint_limit_torque(MODEL, pd, j, lo - 0.01, 0.0) == pytest.approx(500 * 0.01)
    assert joint_limit_torque(MODEL, pd, j, lo - 0.01, 10.0) == 0.0  # leaving fast: no pull
    assert joint_limit_torque(MODEL, pd, j, hi + 0.02, -1.0) == pytest.approx(-500 * 0.02 + 2.0)


@nb.njit(cache=True, nogil=True)
def _task_like_kernel(model, sim, envp, st, actions, lo, hi, obs, points):
    """What the balance task's fused kernel does: step each env with control_step_env, then
    read the per-env helpers (here: observation pieces and rendering points)."""
    ws_buf = new_workspace()
    flagged = 0
    for i in range(lo, hi):
        flagged += control_step_env(model, sim, envp, st, i, actions[i], ws_buf)
        g0, g1, g2 = gravity_in_trunk(st.base_quat, i)
        obs[i, 0] = g0
        obs[i, 1] = g1
        obs[i, 2] = g2
        leg_points_env(model, st, i, points[i], ws_buf)
    return flagged


def test_control_step_env_inside_a_task_kernel_matches_step_shard():
    rng = np.random.default_rng(11)
    n = 6
    sim = SimParams()
    envp = EnvParams.allocate(n)
    a = PhysicsState.allocate(n)
    a.set_standing(MODEL)
    b = a.copy()
    obs = np.zeros((n, 3))
    points = np.zeros((n, 4, 4, 3))
    for _ in range(5):
        actions = rng.uniform(-1, 1, (n, 12)).astype(np.float32)
        assert _task_like_kernel(MODEL, sim, envp, a, actions, 0, n, obs, points) == 0
        step(MODEL, sim, envp, b, actions, method="shards")
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_allclose(points, forward_kinematics(MODEL, a.world_base_pos(), a.base_quat, a.joint_pos), atol=1e-12)
    assert np.all(obs[:, 2] < -0.9)  # still roughly upright


@nb.njit(cache=True, nogil=True)
def _task_like_block_kernel(model, sim, envp, st, actions, lo, hi, obs):
    """The SIMD variant a task kernel can use: blocks of BLOCK envs, then per-env reads."""
    wbuf = new_block_workspace()
    flagged = 0
    for start in range(lo, hi, BLOCK):
        stop = min(start + BLOCK, hi)
        flagged += control_step_block(model, sim, envp, st, actions, start, stop, wbuf)
        for i in range(start, stop):
            v0, v1, v2 = lin_vel_in_trunk(st.base_quat, st.base_lin_vel, i)
            obs[i, 0] = v0
            obs[i, 1] = v1
            obs[i, 2] = v2
    return flagged


def test_control_step_block_inside_a_task_kernel_matches_step():
    rng = np.random.default_rng(12)
    n = BLOCK + 5
    sim = SimParams()
    envp = EnvParams.allocate(n)
    a = PhysicsState.allocate(n)
    a.set_standing(MODEL)
    b = a.copy()
    obs = np.zeros((n, 3))
    for _ in range(4):
        actions = rng.uniform(-1, 1, (n, 12)).astype(np.float32)
        assert _task_like_block_kernel(MODEL, sim, envp, a, actions, 3, n, obs) == 0
        step(MODEL, sim, envp, b, actions, method="block")
    # envs 0..2 were not stepped by the kernel; the rest match step() exactly
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x[3:], y[3:])
    np.testing.assert_array_equal(a.base_pos[:3], PhysicsState.allocate(3).base_pos + [0, 0, MODEL.standing_height])
    R = np.zeros((3, 3))
    for i in range(3, n):
        trunk_rotation(a.base_quat, i, R)
        np.testing.assert_allclose(obs[i], R.T @ a.base_lin_vel[i], atol=1e-12)
