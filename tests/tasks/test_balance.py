"""The balance task: observation slots, reward terms, terminations, pushes, resets, time-outs,
determinism and parameter validation."""

import dataclasses
import math

import numpy as np
import pytest

from quadlit.envs.pool import ShardPool
from quadlit.physics.state import STATUS_NONFINITE, STATUS_OK
from quadlit.tasks.balance import BalanceParams, BalanceTask
from quadlit.tasks.balance import kernels as K

QUIET = BalanceParams(reset_tilt=0.0, reset_joint_noise=0.0, reset_velocity_noise=0.0, reset_height_noise=0.0,
                      friction_min=1.0, friction_max=1.0, added_mass_min=0.0, added_mass_max=0.0,
                      motor_strength_min=1.0, motor_strength_max=1.0, gain_scale_min=1.0, gain_scale_max=1.0,
                      push_interval_min=100.0, push_interval_max=100.0)


def _quat_axis_angle(axis, angle):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    return np.concatenate([[math.cos(angle / 2)], math.sin(angle / 2) * axis])


def _obs(task, i=0):
    out = np.zeros(K.OBS_DIM, np.float32)
    K.write_obs(task.model, task.physics, task.task_state, task._p, i, out)
    return out


@pytest.fixture(scope="module")
def task():
    t = BalanceTask(4, QUIET, seed=0)
    yield t
    t.close()


def _neutral(task, i=0):
    """Default pose, level, at rest, at the height the height reward aims at."""
    task.physics.set_standing(task.model, [i], height=task._p.target_height)
    task.task_state.prev_action[i] = 0.0


def test_reset_returns_to_the_neutral_pose(task):
    obs = task.reset(3)
    ph = task.physics
    assert np.allclose(ph.joint_pos, task.model.default_q)
    assert np.allclose(ph.base_pos[:, 2], task.model.standing_height)
    assert np.allclose(ph.base_lin_vel, 0) and np.allclose(ph.base_ang_vel, 0) and np.allclose(ph.joint_vel, 0)
    # level (any yaw): gravity straight down in the trunk frame, joints at default
    assert np.allclose(obs[:, 0:3], [0, 0, -1], atol=1e-6)
    assert np.allclose(obs[:, 9:33], 0)
    assert np.all(task.task_state.step == 0)


@pytest.mark.parametrize("axis,angle,expected", [
    ((1, 0, 0), 0.3, (0.0, -math.sin(0.3), -math.cos(0.3))),   # roll: gravity leans to -y in the trunk
    ((0, 1, 0), 0.4, (math.sin(0.4), 0.0, -math.cos(0.4))),    # pitch nose-down: gravity leans to +x
    ((0, 0, 1), 1.0, (0.0, 0.0, -1.0)),                        # yaw changes nothing
])
def test_gravity_slot_follows_trunk_tilt(task, axis, angle, expected):
    _neutral(task)
    task.physics.base_quat[0] = _quat_axis_angle(axis, angle)
    assert np.allclose(_obs(task)[0:3], expected, atol=1e-6)


def test_velocity_slots_are_in_the_trunk_frame(task):
    _neutral(task)
    task.physics.base_quat[0] = _quat_axis_angle((0, 0, 1), math.pi / 2)  # facing +y
    task.physics.base_lin_vel[0] = (1.0, 0.0, 0.5)  # world frame
    task.physics.base_ang_vel[0] = (0.1, 0.2, 0.3)  # trunk frame already
    obs = _obs(task)
    assert np.allclose(obs[3:6], (0.0, -1.0, 0.5), atol=1e-6)
    assert np.allclose(obs[6:9], (0.1, 0.2, 0.3), atol=1e-6)


def test_joint_slots(task):
    _neutral(task)
    task.physics.joint_pos[0, 4] += 0.1  # FR thigh
    task.physics.joint_vel[0, 11] = -2.0  # RR calf
    obs = _obs(task)
    expected = np.zeros(24)
    expected[4], expected[12 + 11] = 0.1, -2.0
    assert np.allclose(obs[9:33], expected, atol=1e-6)


def test_contact_flags_lifted_foot_and_airborne_robot():
    task = BalanceTask(2, QUIET, seed=0)
    zero = np.zeros((2, 12), np.float32)
    for _ in range(25):  # settle on all four feet
        result = task.step(zero)
    assert np.all(result.obs[:, 33:37] == 1.0)
    # env 0: bend the FL knee fully so its foot leaves the ground; env 1: lift the whole robot
    task.physics.joint_pos[0, 2] = task.model.joint_lower[2] + 0.05
    task.physics.base_pos[1, 2] = 0.6
    result = task.step(zero)
    assert result.obs[0, 33:37].tolist() == [0.0, 1.0, 1.0, 1.0]
    assert result.obs[1, 33:37].tolist() == [0.0, 0.0, 0.0, 0.0]
    task.close()


def _terms(task, action=None, status=STATUS_OK, recovery_steps=0, p=None):
    terms = np.zeros(len(K.REWARD_TERMS))
    a = np.zeros(12) if action is None else np.asarray(action, float)
    p = task._p if p is None else p
    failed = K.score_step(task.model, task.physics, task.task_state, p, 0, a, status, recovery_steps, terms)
    return dict(zip(K.REWARD_TERMS, terms)), failed


def test_reward_terms_at_the_neutral_pose(task):
    _neutral(task)
    task.physics.motor_power[0] = 0.0
    terms, failed = _terms(task)
    p = QUIET
    assert not failed
    assert terms == pytest.approx({"upright": p.upright_scale, "height": p.height_scale, "lin_vel": 0, "ang_vel": 0,
                                   "energy": 0, "action_rate": 0, "pose": 0, "alive": p.alive_bonus,
                                   "termination": 0, "recovery_step": 0})


def test_each_reward_term_at_hand_made_states(task):
    p = QUIET
    _neutral(task)
    task.physics.base_quat[0] = _quat_axis_angle((1, 0, 0), 0.5)
    task.physics.base_pos[0, 2] = task._p.target_height + 0.05  # one width (0.05 m for the A1) off
    task.physics.base_lin_vel[0] = (1.0, 2.0, 0.0)  # |v|^2 = 5 whatever the frame
    task.physics.base_ang_vel[0] = (0.0, 0.0, 2.0)
    task.physics.motor_power[0] = 100.0
    task.physics.joint_pos[0, :3] += 0.1
    terms, failed = _terms(task, action=np.full(12, 0.5))
    assert not failed
    assert terms["upright"] == pytest.approx(p.upright_scale * ((1 + math.cos(0.5)) / 2) ** 2)
    assert terms["height"] == pytest.approx(p.height_scale * math.exp(-1.0))
    assert terms["lin_vel"] == pytest.approx(-p.lin_vel_scale * 5.0)
    assert terms["ang_vel"] == pytest.approx(-p.ang_vel_scale * 4.0)
    assert terms["energy"] == pytest.approx(-p.energy_scale * 100.0)
    assert terms["action_rate"] == pytest.approx(-p.action_rate_scale * 12 * 0.25)
    assert terms["pose"] == pytest.approx(-p.pose_scale * 3 * 0.01)
    # the action was remembered: the same action again costs no action rate
    terms, _ = _terms(task, action=np.full(12, 0.5))
    assert terms["action_rate"] == 0.0
    # recovery steps: nothing at the default scale, scale x the feet set down otherwise
    assert _terms(task, recovery_steps=3)[0]["recovery_step"] == 0.0
    terms, _ = _terms(task, recovery_steps=3, p=task._p._replace(recovery_step_scale=0.25))
    assert terms["recovery_step"] == pytest.approx(0.75)


@pytest.mark.parametrize("case", ["tilt", "low", "body_contact", "nonfinite"])
def test_each_termination_condition(task, case):
    _neutral(task)
    status = STATUS_OK
    if case == "tilt":
        task.physics.base_quat[0] = _quat_axis_angle((0, 1, 0), QUIET.max_tilt + 0.01)
    elif case == "low":
        task.physics.base_pos[0, 2] = task._p.min_height - 0.01
    elif case == "body_contact":
        task.physics.body_contact[0] = True
    else:
        status = STATUS_NONFINITE
    terms, failed = _terms(task, status=status)
    assert failed and terms["termination"] == -QUIET.termination_penalty
    # just inside the limits nothing fails
    _neutral(task)
    task.physics.base_quat[0] = _quat_axis_angle((0, 1, 0), QUIET.max_tilt - 0.01)
    assert not _terms(task)[1]


def test_step_terminates_and_resets_a_tipped_robot():
    task = BalanceTask(2, QUIET, seed=0)
    task.physics.base_quat[0] = _quat_axis_angle((1, 0, 0), 1.2)
    result = task.step(np.zeros((2, 12), np.float32))
    assert result.terminated.tolist() == [True, False] and not result.truncated.any()
    assert result.reward[0] == pytest.approx(result.reward_terms[0].sum())
    assert result.reward_terms[0, K.REWARD_TERMS.index("termination")] == -QUIET.termination_penalty
    assert result.final_obs[0, 2] > -math.cos(1.2) - 0.05  # final obs: still tipped
    assert np.allclose(result.obs[0, 0:3], [0, 0, -1], atol=1e-6)  # obs: the new episode, level
    assert result.episode["length"][0] == 1 and result.episode["survived"][0] == 0
    task.close()


def test_time_out_is_truncation_not_termination():
    task = BalanceTask(3, dataclasses.replace(QUIET, max_steps=5), seed=0)
    zero = np.zeros((3, 12), np.float32)
    for _ in range(4):
        assert not task.step(zero).done.any()
    result = task.step(zero)
    assert result.truncated.all() and not result.terminated.any()
    assert np.all(result.episode["survived"] == 1) and np.all(result.episode["length"] == 5)
    assert np.all(task.task_state.step == 0)
    task.close()


def test_infinite_actions_count_as_zero_in_motors_and_observation():
    """±inf action components are stepped as zero (as NaN is): the motors, the previous-action
    slots of the observation and the action-rate reward read 0, not ±1."""
    broken = np.zeros((2, 12), np.float32)
    broken[0, :6], broken[1, 6:] = np.inf, -np.inf
    results = []
    for actions in (broken, np.zeros((2, 12), np.float32)):
        task = BalanceTask(2, QUIET, seed=0)
        for _ in range(3):
            result = task.step(actions)
        results.append((result.obs.copy(), result.reward.copy()))
        task.close()
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_push_changes_trunk_velocity_by_the_drawn_amount():
    """Two copies of a standing robot, one pushed this step: the trunk velocities differ by the
    drawn kick (up to what the legs absorb in one 20 ms step)."""
    params = dataclasses.replace(QUIET, push_magnitude=1.0)
    a, b = BalanceTask(1, params, seed=0), BalanceTask(1, params, seed=0)
    zero = np.zeros((1, 12), np.float32)
    for _ in range(10):
        a.step(zero)
    b.load_state_dict(a.state_dict())
    b.task_state.next_push[0] = b.task_state.step[0]  # push b now
    a.step(zero), b.step(zero)
    dv = b.task_state.push_vec[0]
    assert np.linalg.norm(dv) == pytest.approx(1.0)
    assert b.task_state.pushes[0] == 1 and a.task_state.pushes[0] == 0
    diff = b.physics.base_lin_vel[0, :2] - a.physics.base_lin_vel[0, :2]
    assert np.dot(diff, dv) / (np.linalg.norm(diff) * np.linalg.norm(dv)) > 0.95
    assert 0.6 < np.linalg.norm(diff) < 1.05
    a.close(), b.close()


def test_pushes_arrive_every_two_to_four_seconds():
    params = dataclasses.replace(QUIET, push_magnitude=0.2, push_interval_min=2.0, push_interval_max=4.0)
    task = BalanceTask(16, params, seed=5)
    zero = np.zeros((16, 12), np.float32)
    times = [[] for _ in range(16)]
    for t in range(500):  # 10 s
        task.step(zero)
        for i in np.flatnonzero(task.task_state.push_step == task.task_state.step - 1):
            times[i].append(t)
    gaps = np.concatenate([np.diff([0] + ts) for ts in times]) * params.control_dt
    assert len(gaps) >= 16 * 2
    assert gaps.min() >= 2.0 - 1e-9 and gaps.max() <= 4.0 + 0.02
    task.close()


def test_pushed_marks_the_steps_in_which_a_push_landed():
    """pushed() after a step is True exactly where the episode's push count grew in it, for
    scheduled pushes and for a push given by hand between steps."""
    params = dataclasses.replace(QUIET, push_magnitude=0.2, push_interval_min=0.1, push_interval_max=0.2)
    task = BalanceTask(4, params, seed=3)
    zero = np.zeros((4, 12), np.float32)
    marked = 0
    for t in range(60):
        before = task.task_state.pushes.copy()
        if t == 31:
            task.push([2], [0.1, 0.0])  # lands in the coming step
        result = task.step(zero)
        assert not result.done.any()
        assert np.array_equal(task.pushed(), task.task_state.pushes > before)
        marked += int(task.pushed().sum())
    assert marked >= 4 * 6  # a push every 5-10 steps
    task.close()


def test_results_identical_across_thread_counts_and_runs():
    params = dataclasses.replace(BalanceParams(), push_interval_min=0.2, push_interval_max=0.5, push_magnitude=1.5)
    actions = np.random.default_rng(0).uniform(-1, 1, (60, 32, 12)).astype(np.float32)

    def run(threads):
        pool = ShardPool(threads)
        task = BalanceTask(32, params, seed=9, pool=pool)
        rewards = [task.step(a).reward.copy() for a in actions]
        out = np.stack(rewards), task.physics.base_quat.copy(), task.out.obs.copy()
        pool.close()
        return out

    r1, r2, r1b = run(1), run(2), run(1)
    for x, y, z in zip(r1, r2, r1b):
        assert np.array_equal(x, y) and np.array_equal(x, z)


def test_state_dict_round_trip_continues_identically():
    params = dataclasses.replace(BalanceParams(), push_interval_min=0.2, push_interval_max=0.4)
    a = BalanceTask(8, params, seed=1)
    acts = np.random.default_rng(1).uniform(-1, 1, (40, 8, 12)).astype(np.float32)
    for x in acts[:20]:
        a.step(x)
    b = BalanceTask(8, params, seed=99)
    b.load_state_dict(a.state_dict())
    for x in acts[20:]:
        ra, rb = a.step(x), b.step(x)
        assert np.array_equal(ra.obs, rb.obs) and np.array_equal(ra.reward, rb.reward)


@pytest.mark.parametrize("field,value", [
    ("push_magnitude", -1.0), ("max_tilt", 0.0), ("substeps", 0), ("physics_dt", 0.01), ("motor_mode", "force"),
    ("push_interval_max", 1.0), ("friction_min", -0.1), ("push_jitter", 1.5), ("max_steps", 0),
    ("recovery_step_scale", -0.1), ("recovery_step_ramp", -1), ("recovery_step_ramp", 1.5),
    ("recovery_step_ramp", True),
])
def test_bad_params_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"balance.{field}"):
        BalanceParams(**{field: value})


def test_reward_terms_writes_every_named_term_in_its_column(task):
    """Each name of REWARD_TERMS is a function of rewards.py, and reward_terms puts that
    function's value in the name's column (a term appended without its line is caught)."""
    from quadlit.tasks.balance import rewards as R

    _neutral(task)
    task.physics.base_quat[0] = _quat_axis_angle((1, 1, 0), 0.9)  # past max_tilt: termination is non-zero
    task.physics.base_lin_vel[0] = (0.3, -0.2, 0.1)
    task.physics.base_ang_vel[0] = (0.1, 0.4, -0.2)
    task.physics.motor_power[0] = 35.0
    task.physics.joint_pos[0] += 0.05
    p = task._p._replace(recovery_step_scale=0.2)
    view = R.step_view(task.model, task.physics, task.task_state, p, 0, np.full(12, 0.3), STATUS_OK, 2)
    terms = np.full(len(R.REWARD_TERMS), np.nan)
    R.reward_terms(p, view, terms)
    for k, name in enumerate(R.REWARD_TERMS):
        expected = getattr(R, name)(p, view)
        assert expected != 0.0, name  # the state makes every term non-zero, so a swap would show
        assert terms[k] == expected, name


def test_kernel_params_carry_every_numeric_field_by_name():
    from quadlit.tasks.balance.params import ROBOT_DEFAULTED, ROBOT_FIELDS, kernel_params

    p = dataclasses.replace(QUIET, upright_scale=0.123, max_tilt=0.7, target_height=0.0, min_height=0.12,
                            push_curriculum=True)
    kp = kernel_params(p, standing_height=0.31, nominal_height=0.3)
    for f in dataclasses.fields(p):
        if f.name != "motor_mode" and f.name not in ROBOT_FIELDS:
            assert getattr(kp, f.name) == float(getattr(p, f.name)), f.name
    assert kp.cos_max_tilt == math.cos(0.7)
    assert kp.height_target == 0.31 and kp.standing_height == 0.31  # target 0: the standing height
    assert kp.control_dt == p.physics_dt * p.substeps
    assert set(ROBOT_DEFAULTED) == {"min_height", "target_height"}


def test_heights_left_null_scale_with_the_robot():
    """Null heights are the robot's own: the built-in A1's 0.305 m target, 0.15 m failure height
    and 0.05 m reward width exactly, and in proportion for a robot that settles twice as high."""
    from quadlit.physics.model import A1_NOMINAL_HEIGHT
    from quadlit.tasks.balance.params import kernel_params

    a1 = kernel_params(QUIET, standing_height=0.312, nominal_height=A1_NOMINAL_HEIGHT)
    assert (a1.height_target, a1.target_height, a1.min_height, a1.height_width) == (0.305, 0.305, 0.15, 0.05)
    tall = kernel_params(QUIET, standing_height=0.62, nominal_height=0.61)
    assert tall.height_target == 0.61
    assert tall.min_height == pytest.approx(0.30) and tall.height_width == pytest.approx(0.10)


def test_each_env_is_pushed_at_its_own_scale():
    params = dataclasses.replace(QUIET, push_magnitude=1.0, push_interval_min=0.1, push_interval_max=0.1)
    task = BalanceTask(3, params, seed=0)
    task.set_push_scales([0.5, 2.0, 3.0])
    zero = np.zeros((3, 12), np.float32)
    while np.any(task.task_state.push_step < 0):
        task.step(zero)
    assert np.linalg.norm(task.task_state.push_vec, axis=1) == pytest.approx([0.5, 2.0, 3.0])
    with pytest.raises(ValueError, match="push scales"):
        task.set_push_scales([1.0, 2.0])
    task.close()


def test_push_curve_evaluation_groups_episodes_by_magnitude():
    from quadlit.tasks import evaluations, make_evaluation_task
    from quadlit.tasks.balance import PUSH_CURVE

    plain, curve = evaluations("balance", dataclasses.replace(QUIET, push_jitter=0.5, push_curriculum=True,
                                                             obs_noise=0.05), 4)
    assert plain.params.push_jitter == 0.0 and not plain.params.push_curriculum and plain.num_envs == 4
    # the curve observes without noise whatever the run trains with; the plain evaluation as configured
    assert curve.params.obs_noise == 0.0 and plain.params.obs_noise == 0.05
    assert curve.num_envs == 4 * len(PUSH_CURVE) and curve.params.push_magnitude == 1.0
    # the curve pushes every 2-4 s whatever the training run uses (QUIET: every 100 s); the plain
    # evaluation keeps the task as configured
    assert (curve.params.push_interval_min, curve.params.push_interval_max) == (2.0, 4.0)
    assert (plain.params.push_interval_min, plain.params.push_interval_max) == (100.0, 100.0)
    task = make_evaluation_task("balance", curve, seed=0)
    assert task.task_state.push_scale.tolist() == np.repeat(PUSH_CURVE, 4).tolist()
    task.close()
    survived = np.repeat(np.arange(len(PUSH_CURVE)) % 2, 4).astype(np.float32)  # every other magnitude survives
    survived[1] = 0.0  # one of four episodes at 0.5 m/s falls
    values = curve.summarize({"survived": survived})
    assert values["push_0.5"] == 0.0 and values["push_1.0"] == 1.0 and values["push_3.0"] == 1.0
    survived[5] = 0.0
    assert curve.summarize({"survived": survived})["push_1.0"] == 0.75
    assert curve.table(values)[1] == [(m, values[f"push_{m:.1f}"]) for m in PUSH_CURVE]


def test_privileged_observation_at_a_hand_made_state():
    """Push vector in the heading frame, time since and until a push, the episode's physical
    parameters and the true trunk height; the policy's observation never holds them."""
    params = dataclasses.replace(QUIET, friction_min=0.7, friction_max=0.7, added_mass_min=1.2,
                                 added_mass_max=1.2, motor_strength_min=0.95, motor_strength_max=0.95,
                                 gain_scale_min=1.05, gain_scale_max=1.05)
    task = BalanceTask(1, params, seed=0)
    _neutral(task)
    task.physics.base_quat[0] = _quat_axis_angle((0, 0, 1), math.pi / 2)  # facing +y
    task.push(0, (1.5, 0.0))  # a push towards +x is towards the robot's right
    ts = task.task_state
    ts.step[0] = 10
    ts.push_step[0] = 5
    ts.next_push[0] = 60
    out = np.zeros(K.PRIVILEGED_DIM, np.float32)
    K.write_privileged(task.env_params, task.physics, ts, task._p, 0, out)
    named = {name: out[lo:hi] for name, (lo, hi) in K.PRIVILEGED_SLICES.items()}
    assert named["push_vel_heading"] == pytest.approx([0.0, -1.5], abs=1e-6)
    assert named["time_since_push"] == pytest.approx([5 * params.control_dt])
    assert named["time_to_push"] == pytest.approx([50 * params.control_dt])
    assert named["friction"] == pytest.approx([0.7]) and named["added_mass"] == pytest.approx([1.2])
    assert named["motor_strength"] == pytest.approx([0.95]) and named["gain_scale"] == pytest.approx([1.05])
    assert named["trunk_height"] == pytest.approx([task._p.target_height])
    ts.step[0] = 400  # long after the push, long before the next: both capped
    ts.next_push[0] = 1000
    K.write_privileged(task.env_params, task.physics, ts, task._p, 0, out)
    assert out[2] == K.PUSH_HORIZON_S and out[3] == K.PUSH_HORIZON_S
    # the step's outputs carry it, and the spec names it
    result = task.step(np.zeros((1, 12), np.float32))
    assert result.privileged.shape == (1, K.PRIVILEGED_DIM) and task.spec.privileged_dim == K.PRIVILEGED_DIM
    assert result.privileged[0, 8] == pytest.approx(task.physics.base_pos[0, 2])
    task.close()


@pytest.mark.parametrize("ramp,progress,expected", [
    (0, None, 0.5),  # no ramp: the full scale
    (1000, None, 0.5),  # a ramp, never told the progress (the Gymnasium environment): the full scale
    (1000, 0, 0.0), (1000, 250, 0.125), (1000, 1000, 0.5), (1000, 10**7, 0.5),
])
def test_recovery_step_reward_pays_each_counted_step_in_a_run(ramp, progress, expected):
    """In real steps with pushes and random actions, the recovery_step column is the scale (0.5,
    times min(1, progress / ramp) when the task is told its ``progress`` in env-steps and has a
    ramp) times the recovery steps the episode metric counted in that step, the reward includes
    it, and steps are counted."""
    params = dataclasses.replace(BalanceParams(), push_magnitude=1.5, push_interval_min=0.5, push_interval_max=1.0,
                                 recovery_step_scale=0.5, recovery_step_ramp=ramp)
    task = BalanceTask(16, params, seed=3)
    if progress is not None:
        task.set_progress(progress)
    assert task.recovery_step_scale == expected
    col = K.REWARD_TERMS.index("recovery_step")
    rng = np.random.default_rng(0)
    counted_total = 0
    for _ in range(150):
        before = task.task_state.push_steps.copy()
        result = task.step(rng.uniform(-1, 1, (16, 12)).astype(np.float32))
        done = result.terminated | result.truncated
        counted = task.task_state.push_steps - before
        assert np.allclose(result.reward_terms[~done, col], expected * counted[~done], rtol=1e-6, atol=0)
        assert np.allclose(result.reward, result.reward_terms.sum(1), atol=1e-5)
        counted_total += counted[~done].sum()
    assert counted_total > 0
    task.close()


def test_without_a_ramp_progress_changes_nothing():
    params = dataclasses.replace(BalanceParams(), recovery_step_scale=0.5)
    task = BalanceTask(2, params, seed=0)
    before = task._p
    task.set_progress(0)
    assert task._p == before and task.recovery_step_scale == 0.5
    task.close()


def test_recovery_steps_count_touch_downs_after_a_push():
    task = BalanceTask(1, QUIET, seed=0)
    ts, st, p = task.task_state, task.physics, task._p
    ts.push_step[0] = 0
    ts.step[0] = 1
    pattern = [(True,) * 4, (False, True, True, True), (False, True, True, True), (True,) * 4,  # FL: a step
               (True, False, True, True), (True,) * 4]  # FR: one step in the air is contact chatter
    counted = []
    for contacts in pattern:
        st.foot_contact[0] = contacts
        counted.append(K.count_recovery_steps(st, ts, p, 0))
        ts.step[0] += 1
    assert ts.push_steps[0] == 1
    assert counted == [0, 0, 0, 1, 0, 0]  # the step is counted when the foot touches down
    ts.step[0] = int(K.STEP_WINDOW_S / p.control_dt) + 5  # long after the push: not a recovery step
    for contacts in pattern:
        st.foot_contact[0] = contacts
        assert K.count_recovery_steps(st, ts, p, 0) == 0
    assert ts.push_steps[0] == 1
    task.close()
