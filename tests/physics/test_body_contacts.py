"""Ground contacts of the trunk box corners, knee spheres and shank capsules: each point type
against a NumPy reference, the SIMD twin against the scalar one, a limp robot dropped on its
belly, a standing robot untouched by them (bit for bit the feet-only step), and old saved
states (without ``body_slip``) loading with zeros."""

import sys

import numba as nb
import numpy as np
import pytest

from quadlit.physics import BLOCK, MOTOR_TORQUE, EnvParams, PhysicsState, SimParams, a1_model, step
from quadlit.physics.contacts import body_ground_contacts, body_ground_contacts_block
from quadlit.physics.control_step import gather_block, load_env, scatter_block, store_env
from quadlit.physics.kinematics import kinematics, kinematics_block, velocities, velocities_block
from quadlit.physics.model import shank_ends
from quadlit.physics.state import ADDED_FIELDS, KNEE0, NUM_BODY_POINTS, SHANK0, load_state_arrays
from quadlit.physics.workspace import new_block_workspace, new_workspace
from tests.physics.scenarios import kicked_trajectory
from tests.physics.test_simd import BODY_CONTACTS, STAGES, _block_stage, _scalar_stage

MODEL = a1_model()
#: An imported robot's trunk box need not be centred on the trunk origin.
OFFSET_BOX = a1_model(trunk_box_center=(0.05, -0.02, -0.01))
SIM = SimParams()
KINDS = {"trunk corners": slice(0, KNEE0), "knees": slice(KNEE0, SHANK0), "shanks": slice(SHANK0, NUM_BODY_POINTS)}


# ----------------------------------------------------------------------------- NumPy reference

def _rot(axis, angle):
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def _quat_rot(quat):
    w, x, y, z = quat
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def reference_body_contacts(model, sim, st, i, friction):
    """Slow reference of ``body_ground_contacts`` for env ``i`` of ``st``, written from the
    contact model's definition. Returns (generalised force (18,) in internal coordinates
    (moment about the trunk origin, force, joint torques), new stick springs (16, 2) m, (16,)
    touching flags, (16,) sliding flags)."""
    rot = [_quat_rot(st.base_quat[i])] + [None] * 12
    pos = [np.zeros(3)] + [None] * 12  # body origins relative to the trunk origin, m
    axes = [None] * 12  # joint axes, world
    omega = [rot[0] @ st.base_ang_vel[i]] + [None] * 12
    for j in range(12):
        parent = int(model.joint_parent[j])
        axes[j] = rot[parent] @ model.joint_axis[j]
        rot[j + 1] = rot[parent] @ _rot(model.joint_axis[j], st.joint_pos[i, j])
        pos[j + 1] = pos[parent] + rot[parent] @ model.joint_pos[j]
        omega[j + 1] = omega[parent] + axes[j] * st.joint_vel[i, j]

    def chain(b):  # joints between the trunk and body b
        return [] if b == 0 else [3 * ((b - 1) // 3) + k for k in range((b - 1) % 3 + 1)]

    def velocity(b, x):  # world velocity of the point x (relative to the trunk origin) of body b
        v = st.base_lin_vel[i] + np.cross(omega[0], x)
        for j in chain(b):
            v = v + st.joint_vel[i, j] * np.cross(axes[j], x - pos[j + 1])
        return v

    spheres = []  # (body, centre relative to the trunk origin, radius) per body point
    hx, hy, hz = model.trunk_half_extents
    for k in range(8):
        corner = model.trunk_box_center + np.array([hx if k & 1 else -hx, hy if k & 2 else -hy, hz if k & 4 else -hz])
        spheres.append((0, rot[0] @ corner, 0.0))
    for leg in range(4):
        spheres.append((3 + 3 * leg, pos[3 + 3 * leg], model.knee_radius))
    for leg in range(4):
        b = 3 + 3 * leg
        end = pos[b] + rot[b] @ shank_ends(model)[leg]
        spheres.append((b, end if end[2] < pos[b][2] else pos[b], model.shank_radius))
    Q = np.zeros(18)
    slip = np.zeros((NUM_BODY_POINTS, 2))
    touching = np.zeros(NUM_BODY_POINTS, dtype=bool)
    sliding = np.zeros(NUM_BODY_POINTS, dtype=bool)
    z0 = st.base_pos[i, 2]
    for k, (b, centre, radius) in enumerate(spheres):
        pen = radius - (z0 + centre[2])
        if pen <= 0:
            continue
        x = centre - (0.0, 0.0, radius)  # the sphere's lowest point
        v = velocity(b, x)
        fn = max(0.0, sim.contact_stiffness * pen - sim.contact_damping * v[2])
        u = st.body_slip[i, k] + v[:2] * sim.dt
        ft = -sim.friction_stiffness * u - sim.friction_damping * v[:2]
        if np.linalg.norm(ft) > friction * fn:
            ft *= friction * fn / np.linalg.norm(ft)
            u = -ft / sim.friction_stiffness
            sliding[k] = True
        f = np.array([ft[0], ft[1], fn])
        touching[k] = True
        slip[k] = u
        Q[0:3] += np.cross(x, f)
        Q[3:6] += f
        for j in chain(b):
            Q[6 + j] += axes[j] @ np.cross(x - pos[j + 1], f)
    return Q, slip, touching, sliding


@nb.njit(cache=True)
def _body_stage(model, sim, envp, st, i, buf):
    """Env ``i`` loaded, kinematics and velocities, ``Q`` zeroed, then ``body_ground_contacts``."""
    ws = buf[0]
    load_env(model, sim, envp, st, i, np.zeros(12), ws)
    kinematics(model, ws)
    velocities(model, ws)
    ws.Q[:] = 0.0
    body_ground_contacts(model, sim, ws)


def _fallen_states(kind, n, seed):
    """``n`` random states (any orientation, joint angles anywhere in their ranges, random
    velocities and stick springs) lowered until the lowest point of ``kind`` is 0-8 mm in the
    ground."""
    rng = np.random.default_rng(seed)
    st = PhysicsState.allocate(n)
    quat = rng.normal(size=(n, 4))
    if kind != "trunk corners":  # mostly upright, so the legs are the lowest
        quat = np.c_[np.ones(n), rng.normal(scale=0.3, size=(n, 3))]
    st.base_quat[:] = quat / np.linalg.norm(quat, axis=1, keepdims=True)
    st.joint_pos[:] = rng.uniform(MODEL.joint_lower, MODEL.joint_upper, (n, 12))
    st.base_lin_vel[:] = rng.normal(scale=0.3, size=(n, 3))
    st.base_ang_vel[:] = rng.normal(scale=1.0, size=(n, 3))
    st.joint_vel[:] = rng.normal(scale=2.0, size=(n, 12))
    st.body_slip[:] = rng.normal(scale=2e-4, size=(n, NUM_BODY_POINTS, 2))
    envp = EnvParams.allocate(n)
    envp.friction[:] = rng.uniform(0.1, 1.2, n)
    for i in range(n):
        st.base_pos[i, 2] = 10.0  # nothing touches: read each point's height above the ground
        lowest = _lowest_points(st, i) - 10.0
        st.base_pos[i, 2] = -lowest[KINDS[kind]].min() - rng.uniform(0.0, 0.008)
    return st, envp


def _lowest_points(st, i):
    """Height (m) of the lowest point of each body contact sphere of env ``i``."""
    rot = [_quat_rot(st.base_quat[i])] + [None] * 12
    pos = [np.array([0.0, 0.0, st.base_pos[i, 2]])] + [None] * 12
    for j in range(12):
        parent = int(MODEL.joint_parent[j])
        rot[j + 1] = rot[parent] @ _rot(MODEL.joint_axis[j], st.joint_pos[i, j])
        pos[j + 1] = pos[parent] + rot[parent] @ MODEL.joint_pos[j]
    hx, hy, hz = MODEL.trunk_half_extents
    c = MODEL.trunk_box_center
    out = [(pos[0] + rot[0] @ (c + (hx if k & 1 else -hx, hy if k & 2 else -hy, hz if k & 4 else -hz)))[2]
           for k in range(8)]
    out += [pos[3 + 3 * leg][2] - MODEL.knee_radius for leg in range(4)]
    for leg in range(4):
        b = 3 + 3 * leg
        out.append(min(pos[b][2], (pos[b] + rot[b] @ shank_ends(MODEL)[leg])[2]) - MODEL.shank_radius)
    return np.array(out)


@pytest.fixture(params=["a1", "offset box"])
def robot(request, monkeypatch):
    """The built-in A1, and a record whose trunk box is off the trunk origin."""
    model = MODEL if request.param == "a1" else OFFSET_BOX
    monkeypatch.setattr(sys.modules[__name__], "MODEL", model)
    return model


@pytest.mark.parametrize("kind", list(KINDS))
def test_body_contact_forces_equal_the_numpy_reference(kind, robot):
    """Generalised force and stick springs of ``body_ground_contacts`` against
    ``reference_body_contacts`` for 60 random states with a point of ``kind`` in the ground
    (sticking and sliding both exercised)."""
    n = 60
    st, envp = _fallen_states(kind, n, seed=len(kind))
    buf = new_workspace()
    touched = np.zeros(NUM_BODY_POINTS, dtype=int)
    slid = 0
    for i in range(n):
        _body_stage(MODEL, SIM, envp, st, i, buf)
        Q, slip, touching, sliding = reference_body_contacts(MODEL, SIM, st, i, envp.friction[i])
        ws = buf[0]
        np.testing.assert_allclose(ws["Q"], Q, rtol=0, atol=1e-9 * max(1.0, np.abs(Q).max()), err_msg=f"env {i}")
        np.testing.assert_allclose(ws["body_slip"], slip, rtol=0, atol=1e-15, err_msg=f"env {i}")
        touched += touching
        slid += sliding[KINDS[kind]].sum()
    assert touched[KINDS[kind]].sum() >= n  # every state has a point of this kind in the ground
    assert 0 < slid < touched[KINDS[kind]].sum()


# ----------------------------------------------------------------------------- SIMD twin

@nb.njit(cache=True)
def _block_body_stage(model, sim, envp, st, lo, hi, wbuf):
    w = wbuf[0]
    gather_block(model, sim, envp, st, np.zeros((st.base_pos.shape[0], 12)), lo, hi, w)
    kinematics_block(model, w)
    velocities_block(model, w)
    w.Q[:] = 0.0
    body_ground_contacts_block(model, sim, w)


@pytest.mark.parametrize("kind", list(KINDS))
def test_simd_body_contacts_equal_the_scalar_twin(kind):
    n = BLOCK + 5
    st, envp = _fallen_states(kind, n, seed=50 + len(kind))
    st.base_pos[3, 2] += 1.0  # one lane in the air
    buf, wbuf = new_workspace(), new_block_workspace()
    for lo in (0, BLOCK):
        _block_body_stage(MODEL, SIM, envp, st, lo, min(lo + BLOCK, n), wbuf)
        for i in range(lo, min(lo + BLOCK, n)):
            _body_stage(MODEL, SIM, envp, st, i, buf)
            Q, slip = buf[0]["Q"], buf[0]["body_slip"]
            np.testing.assert_allclose(wbuf[0]["Q"][:, i - lo], Q, rtol=0, atol=1e-14 * max(1.0, np.abs(Q).max()))
            np.testing.assert_allclose(wbuf[0]["body_slip"][..., i - lo], slip, rtol=0, atol=1e-18)
        if lo == 0:
            assert not wbuf[0]["body_slip"][..., 3].any()  # the lane in the air


def test_simd_block_of_standing_robots_skips_and_clears_the_anchors():
    """A block far from the ground adds nothing and clears stale anchors (as the scalar twin does)."""
    n = 6
    st = PhysicsState.allocate(n)
    st.set_standing(MODEL)
    st.body_slip[:] = 1e-3  # stale
    envp = EnvParams.allocate(n)
    wbuf = new_block_workspace()
    _block_body_stage(MODEL, SIM, envp, st, 0, n, wbuf)
    assert not wbuf[0]["Q"].any() and not wbuf[0]["body_slip"].any()
    buf = new_workspace()
    _body_stage(MODEL, SIM, envp, st, 0, buf)
    assert not buf[0]["Q"].any() and not buf[0]["body_slip"].any()


# ----------------------------------------------------------------------------- a limp robot falls

def _trunk_corner_heights(st):
    """(N, 8) heights of the trunk box corners, m."""
    hx, hy, hz = MODEL.trunk_half_extents
    corners = np.array([(sx * hx, sy * hy, sz * hz) for sz in (-1, 1) for sy in (-1, 1) for sx in (-1, 1)])
    return np.stack([st.base_pos[i, 2] + (corners @ _quat_rot(st.base_quat[i]).T)[:, 2] for i in range(st.num_envs)])


@pytest.mark.parametrize("method", ["block", "shards"])
def test_limp_robot_dropped_level_comes_to_rest_on_its_belly(method):
    """Zero torque, dropped level from 0.5 m: after 4 s the trunk lies on the floor (centre at its
    half height, 0.057 m, as MuJoCo has it with ``body_contacts``; measured 0.0567 m), lowest
    corner less than 1 mm in, at rest, no NaN. Without trunk contacts it sank to -0.24 m."""
    sim = SimParams(motor_mode=MOTOR_TORQUE)
    st = PhysicsState.allocate(2)
    st.set_standing(MODEL, height=0.5)
    st.base_ang_vel[1] = (0.5, -0.3, 0.2)  # the second one lands tilted and turning
    envp = EnvParams.allocate(2)
    for _ in range(200):  # 4 s
        assert step(MODEL, sim, envp, st, np.zeros((2, 12)), method=method) == 0
    assert np.all(np.isfinite(st.base_pos)) and np.all(np.isfinite(st.body_slip))
    assert np.all(st.base_pos[:, 2] > 0.03)
    np.testing.assert_allclose(st.base_pos[:, 2], MODEL.trunk_half_extents[2], atol=0.002)
    lowest = _trunk_corner_heights(st).min(axis=1)
    assert np.all(lowest > -0.001) and np.all(lowest < 0.002)
    assert np.abs(st.base_lin_vel).max() < 1e-3 and np.abs(st.joint_vel).max() < 1e-2
    assert st.body_contact.all()  # the failure rule still sees the trunk on the floor
    assert np.abs(st.body_slip).max() > 0  # the trunk corners hold it by friction


def test_scalar_and_simd_agree_on_a_fall():
    """A limp robot landing tilted, with body contacts coming and going: the SIMD control step
    follows the scalar one to rounding."""
    sim = SimParams(motor_mode=MOTOR_TORQUE)
    st = PhysicsState.allocate(3)
    st.set_standing(MODEL, height=0.4)
    st.base_ang_vel[:] = [(2.0, 0.0, 0.0), (0.0, -2.5, 0.5), (1.0, 1.0, 0.0)]
    ref, blk = st.copy(), st.copy()
    envp = EnvParams.allocate(3)
    touched = 0
    for _ in range(60):
        step(MODEL, sim, envp, ref, np.zeros((3, 12)), method="shards")
        step(MODEL, sim, envp, blk, np.zeros((3, 12)), method="block")
        touched += np.abs(ref.body_slip).max() > 0
        for name in ("base_pos", "base_quat", "joint_pos", "base_lin_vel", "base_ang_vel", "joint_vel",
                     "foot_slip", "body_slip"):
            np.testing.assert_allclose(getattr(blk, name), getattr(ref, name), rtol=0, atol=1e-8, err_msg=name)
    assert touched > 20


# ----------------------------------------------------------------------------- standing: unchanged

@nb.njit(cache=True)
def _feet_only_shard(model, sim, envp, st, actions, lo, hi, num_stages):
    """``step_shard`` without the body contact stage (the engine before it), scalar."""
    buf = new_workspace()
    for i in range(lo, hi):
        load_env(model, sim, envp, st, i, actions[i], buf[0])
        for _ in range(sim.substeps):
            for stage in range(num_stages):
                if stage != BODY_CONTACTS:
                    _scalar_stage(model, sim, buf, stage)
        store_env(sim, st, i, buf[0])


@nb.njit(cache=True)
def _feet_only_block(model, sim, envp, st, actions, lo, hi, num_stages):
    """``step_shard_block`` without the body contact stage, SIMD."""
    wbuf = new_block_workspace()
    for start in range(lo, hi, BLOCK):
        stop = min(start + BLOCK, hi)
        gather_block(model, sim, envp, st, actions, start, stop, wbuf[0])
        for _ in range(sim.substeps):
            for stage in range(num_stages):
                if stage != BODY_CONTACTS:
                    _block_stage(model, sim, wbuf, stage)
        scatter_block(sim, st, start, stop, wbuf[0])


@pytest.mark.parametrize("method", ["shards", "block"])
def test_robots_on_their_feet_step_bit_for_bit_as_without_body_contacts(method):
    """37 kicked robots with random actions (``kicked_trajectory``'s scenario), stepped with and
    without the body contact stage: identical states, bit for bit, while nothing else touches."""
    st = kicked_trajectory(None, method, steps=4)  # a used, moving state to start from
    assert not st.body_contact.any()
    feet_only = st.copy()
    envp = EnvParams.allocate(st.num_envs)
    actions = np.random.default_rng(3).uniform(-1, 1, (st.num_envs, 12))
    kernel = _feet_only_shard if method == "shards" else _feet_only_block
    for _ in range(5):
        step(MODEL, SIM, envp, st, actions, method=method)
        kernel(MODEL, SIM, envp, feet_only, actions, 0, st.num_envs, len(STAGES))
        assert not st.body_contact.any()
        for name, a, b in zip(PhysicsState._fields, st, feet_only):
            np.testing.assert_array_equal(a, b, err_msg=name)
    assert not st.body_slip.any()


# ----------------------------------------------------------------------------- saved states

def test_a_saved_state_without_body_slip_loads_with_zeros():
    """A checkpoint written before ``body_slip`` existed: the other arrays load as saved, the
    anchors are cleared; unknown or missing fields and wrong shapes are refused in one line."""
    assert ADDED_FIELDS == ("body_slip",)
    saved_state = kicked_trajectory(None, "block", steps=3)
    old = {k: v for k, v in saved_state._asdict().items() if k != "body_slip"}
    st = PhysicsState.allocate(saved_state.num_envs)
    st.body_slip[:] = 0.5
    load_state_arrays(st, old)
    assert not st.body_slip.any()
    for name in old:
        np.testing.assert_array_equal(getattr(st, name), old[name], err_msg=name)
    with pytest.raises(ValueError, match="no field 'joint_pos'"):
        load_state_arrays(st, {k: v for k, v in old.items() if k != "joint_pos"})
    with pytest.raises(ValueError, match="unknown field 'spin'"):
        load_state_arrays(st, {**old, "spin": np.zeros(3)})
    with pytest.raises(ValueError, match="body_slip has shape"):
        load_state_arrays(st, {**old, "body_slip": np.zeros((saved_state.num_envs, 4, 2))})


def test_balance_task_resumes_from_an_old_checkpoint_state():
    """``BalanceTask.load_state_dict`` of a state saved before ``body_slip``: loads, anchors zero,
    and steps on exactly as the task it was saved from (whose anchors are zero too)."""
    from quadlit.tasks.balance.task import BalanceTask

    a, b = BalanceTask(4, seed=1), BalanceTask(4, seed=2)
    actions = np.random.default_rng(0).uniform(-1, 1, (4, 12)).astype(np.float32)
    for _ in range(3):
        a.step(actions)
    saved = a.state_dict()
    del saved["physics"]["body_slip"]
    b.physics.body_slip[:] = 0.5
    b.load_state_dict(saved)
    assert not b.physics.body_slip.any()
    ra, rb = a.step(actions), b.step(actions)
    np.testing.assert_array_equal(ra.obs, rb.obs)
    np.testing.assert_array_equal(ra.reward, rb.reward)
    a.close()
    b.close()


@pytest.mark.parametrize("method", ["block", "shards"])
def test_touch_detection_follows_an_off_centre_trunk_box(method):
    """The failure rule's trunk box sits at ``trunk_box_center``: a level trunk 5 mm higher than
    its half height touches the ground when its box reaches 10 mm lower than the trunk origin's
    box would, and not when the box is centred (legs swung back, knees at trunk height)."""
    sim = SimParams(motor_mode=MOTOR_TORQUE, substeps=1)
    low = a1_model(trunk_box_center=(0.0, 0.0, -0.01))
    for model, height, touches in ((MODEL, 0.005, False), (low, 0.005, True), (low, 0.011, False)):
        st = PhysicsState.allocate(1)
        st.set_standing(model, height=float(model.trunk_half_extents[2]) + height)
        st.joint_pos[:] = np.tile([0.0, np.pi / 2, -0.5], 4)
        step(model, sim, EnvParams.allocate(1), st, np.zeros((1, 12)), method=method)
        assert bool(st.body_contact[0]) is touches, (model.trunk_box_center, height)
