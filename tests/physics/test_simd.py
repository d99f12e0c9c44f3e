"""The SIMD block kernels against their scalar references: stage by stage, then whole control
steps, for a few envs (a partial block), a full block of ``BLOCK`` and more than one block.

Stage tests give the SIMD stage exactly the inputs its scalar twin saw (the scalar workspace of
each env copied into one lane; empty lanes hold env 0, as ``gather_block`` does), so the only
differences left are rounding: the SIMD code writes some formulas in another order or form
(Rodrigues' formula for every joint axis, sums reordered, selects for branches, Taylor series
for the quaternion exponential and the joint sin/cos updates). Tolerance: ``STAGE_RTOL`` =
1e-14 of the largest magnitude of the quantity compared, about 100 float64 roundings (1.1e-16
each); measured: at most 1.1e-16 (kinematics, Rodrigues' formula against the dedicated axis
paths), most stages bit for bit. Any wrong term would show at 1e-6 or more. The joint sin/cos update also carries the truncation error
of its degree-9 Taylor series, ``|dq|^10 / 10!`` for a joint increment ``dq`` in one substep
(below 1e-20 for the 0.03 rad of a fast joint; 1e-12 for the 0.3 rad an env with its trunk
rammed into the ground reaches here), added to that joint's tolerance.
Gather and scatter are copies: bit for bit.

Whole control steps (20 substeps each, with stiff contacts that amplify rounding differences
from step to step) use the absolute tolerances of ``_assert_states_close``: 50-250 times the
largest difference measured over these tests (from 2e-16 m in positions to 1e-10 W in motor
power after 10 kicked control steps), rounded up to a power of ten.
"""

import sys

import numba as nb
import numpy as np
import pytest

from quadlit.physics import BLOCK, MOTOR_PD, MOTOR_TORQUE, EnvParams, PhysicsState, SimParams, a1_model, step
from quadlit.physics.actuators import joint_forces, joint_forces_block
from quadlit.physics import contacts as contact_stage
from quadlit.physics.contacts import body_touches_ground, body_touches_ground_block, ground_contacts, ground_contacts_block
from quadlit.physics.control_step import gather_block, load_env, scatter_block, store_env
from quadlit.physics.dynamics import (
    bias_and_mass_matrix,
    bias_and_mass_matrix_block,
    solve_accelerations,
    solve_accelerations_block,
)
from quadlit.physics.integration import integrate, integrate_block
from quadlit.physics.kinematics import kinematics, kinematics_block, velocities, velocities_block
from quadlit.physics.workspace import new_block_workspace, new_workspace
from tests.physics.scenarios import kicked_trajectory

MODEL = a1_model()
#: What an imported robot has and the built-in A1 does not: joint friction loss (in both branches
#: of its law: the random joint velocities are above and below its slope's limit) and a trunk box
#: off the trunk origin.
IMPORTED_LIKE = a1_model(joint_frictionloss=0.2, joint_friction_damping=3.0, joint_damping=1.0,
                         trunk_box_center=(0.04, -0.01, 0.006))
STAGE_RTOL = 1e-14


@pytest.fixture(params=["a1", "imported-like"])
def robot(request, monkeypatch):
    """Each test that takes it runs on the built-in A1 and on a record with what imports add."""
    model = MODEL if request.param == "a1" else IMPORTED_LIKE
    monkeypatch.setattr(sys.modules[__name__], "MODEL", model)
    return model
ENV_COUNTS = [5, BLOCK]  # a partial block, a full one

# stage ids, in the order of a substep
(KINEMATICS, VELOCITIES, JOINT_FORCES, GROUND_CONTACTS, BODY_CONTACTS, BODY_TOUCH, BIAS_AND_MASS, SOLVE,
 INTEGRATE) = range(9)
STAGES = ("kinematics", "velocities", "joint_forces", "ground_contacts", "body_ground_contacts",
          "body_touches_ground", "bias_and_mass_matrix", "solve_accelerations", "integrate")


@nb.njit(cache=True)
def _scalar_stage(model, sim, buf, stage):
    ws = buf[0]
    if stage == KINEMATICS:
        kinematics(model, ws)
    elif stage == VELOCITIES:
        velocities(model, ws)
    elif stage == JOINT_FORCES:
        joint_forces(model, sim, ws)
    elif stage == GROUND_CONTACTS:
        ground_contacts(model, sim, ws)
    elif stage == BODY_CONTACTS:
        contact_stage.body_ground_contacts(model, sim, ws)
    elif stage == BODY_TOUCH:
        if body_touches_ground(model, ws):
            ws.body_touch = 1.0
    elif stage == BIAS_AND_MASS:
        bias_and_mass_matrix(model, sim.gravity, ws)
    elif stage == SOLVE:
        solve_accelerations(ws)
    else:
        integrate(sim, ws)


@nb.njit(cache=True)
def _block_stage(model, sim, wbuf, stage):
    w = wbuf[0]
    if stage == KINEMATICS:
        kinematics_block(model, w)
    elif stage == VELOCITIES:
        velocities_block(model, w)
    elif stage == JOINT_FORCES:
        joint_forces_block(model, sim, w)
    elif stage == GROUND_CONTACTS:
        ground_contacts_block(model, sim, w)
    elif stage == BODY_CONTACTS:
        contact_stage.body_ground_contacts_block(model, sim, w)
    elif stage == BODY_TOUCH:
        body_touches_ground_block(model, w)
    elif stage == BIAS_AND_MASS:
        bias_and_mass_matrix_block(model, sim.gravity, w)
    elif stage == SOLVE:
        solve_accelerations_block(w)
    else:
        integrate_block(sim, w)


@nb.njit(cache=True)
def _load(model, sim, envp, st, i, actions, buf):
    load_env(model, sim, envp, st, i, actions[i], buf[0])


@nb.njit(cache=True)
def _gather(model, sim, envp, st, actions, lo, hi, wbuf):
    gather_block(model, sim, envp, st, actions, lo, hi, wbuf[0])


@nb.njit(cache=True)
def _store(sim, st, i, buf):
    return store_env(sim, st, i, buf[0])


@nb.njit(cache=True)
def _scatter(sim, st, lo, hi, wbuf):
    return scatter_block(sim, st, lo, hi, wbuf[0])


def _random_batch(n, seed, motor_mode=MOTOR_PD, deepest=0.02, extremes=True):
    """``n`` envs near the standing pose, shaken: some feet in the ground (up to ``deepest`` m),
    some in the air, some sliding (random stick-spring stretch, low friction); random domain
    parameters; actions beyond [-1, 1] (clipped) and one NaN; random stick springs of the body
    contact points. ``extremes``: env 1 has a joint past its limit and one past its velocity
    limit, env 2 its trunk box in the ground, env 3 (if any) its legs folded with the knees and
    shanks in the ground."""
    rng = np.random.default_rng(seed)
    st = PhysicsState.allocate(n)
    st.set_standing(MODEL)
    st.base_pos[:, 2] += rng.uniform(-deepest, 0.04, n)
    quat = np.c_[np.ones(n), rng.normal(scale=0.08, size=(n, 3))]
    st.base_quat[:] = quat / np.linalg.norm(quat, axis=1, keepdims=True)
    st.joint_pos[:] += rng.uniform(-0.3, 0.3, (n, 12))
    st.base_lin_vel[:] = rng.normal(scale=0.5, size=(n, 3))
    st.base_ang_vel[:] = rng.normal(scale=1.0, size=(n, 3))
    st.joint_vel[:] = rng.normal(scale=3.0, size=(n, 12))
    st.foot_slip[:] = rng.normal(scale=2e-3, size=(n, 4, 2))
    st.world_offset[:] = rng.uniform(-10.0, 10.0, (n, 2))
    envp = EnvParams.allocate(n)
    envp.friction[:] = rng.uniform(0.05, 1.2, n)
    envp.added_mass[:] = rng.uniform(-0.5, 2.0, n)
    envp.motor_strength[:] = rng.uniform(0.7, 1.2, n)
    envp.kp_scale[:] = rng.uniform(0.8, 1.2, n)
    envp.kd_scale[:] = rng.uniform(0.8, 1.2, n)
    actions = rng.uniform(-1.3, 1.3, (n, 12))
    actions[0, 4] = np.nan
    if extremes and n > 2:
        st.joint_pos[1, 2] = MODEL.joint_lower[2] - 0.02
        st.joint_vel[1, 5] = MODEL.joint_vel_limit[5] + 4.0
        st.base_pos[2, 2] = 0.04
    if extremes and n > 3:
        st.joint_pos[3, 1::3] = 0.2  # thighs nearly straight down, calves folded back up
        st.joint_pos[3, 2::3] = -2.6
        st.base_pos[3, 2] = 0.2 * np.cos(0.2) + 0.005  # knee centres about 5 mm up: 15 mm in
    st.body_slip[:] = rng.normal(scale=2e-4, size=st.body_slip.shape)
    return st, envp, actions, SimParams(motor_mode=motor_mode)


# the workspace fields a stage reads or writes, scalar name -> block name (same unless noted)
_SAME = ("pos", "quat", "q", "v", "wb", "qd", "slip", "body_slip", "contact", "torque", "power", "friction", "strength",
         "kp_scale", "kd_scale", "target", "R", "p", "S", "V", "A", "f", "Q", "C", "acc")


def _to_block(model, scalar_bufs, stage):
    """A block workspace whose lane ``l`` holds ``scalar_bufs[l]`` (lanes past the envs: env 0)."""
    wbuf = new_block_workspace()
    w = wbuf[0]
    for lane in range(BLOCK):
        s = scalar_bufs[lane if lane < len(scalar_bufs) else 0][0]
        for name in _SAME:
            w[name][..., lane] = s[name]
        w["touch"][lane] = s["body_touch"]
        w["mass0"][lane] = model.body_mass[0] + s["added_mass"]
        w["cq"][:, lane] = np.cos(s["q"])
        w["sq"][:, lane] = np.sin(s["q"])
        # body inertias before the dynamics stage; its outputs (composite inertia, H pieces) after
        w["I"][..., lane] = s["Ic"] if stage == SOLVE else s["Ib"]
        for j in range(12):
            w["F"][j, :, lane] = s["H"][0:6, 6 + j]
        for leg in range(4):
            o = 6 + 3 * leg
            w["Hl"][leg, :, :, lane] = s["H"][o:o + 3, o:o + 3]
    return wbuf


def _assert_lanes_close(block_field, scalar_fields, what, extra_atol=0.0):
    """``block_field[..., l]`` against ``scalar_fields[l]`` for every env ``l``, to ``STAGE_RTOL``
    of the largest magnitude plus ``extra_atol`` (per element, shaped like the stacked fields)."""
    ref = np.stack(scalar_fields, axis=-1)
    got = block_field[..., :ref.shape[-1]]
    scale = max(1.0, float(np.abs(ref).max()))
    np.testing.assert_array_less(np.abs(got - ref), STAGE_RTOL * scale + extra_atol + 1e-300, err_msg=what)


def _stage_outputs(stage, wbuf, after, sim):
    """(name, block values, scalar values per env, extra tolerance) of what ``stage`` produces."""
    w = wbuf[0]
    s = [b[0] for b in after]
    # truncation of the degree-9 Taylor sin/cos of the joint increment dq = dt qd (integrate_block)
    taylor = np.stack([(sim.dt * np.abs(x["qd"])) ** 10 / 3628800.0 for x in s], axis=-1)
    out = {
        KINEMATICS: [("R", w["R"], [x["R"] for x in s]), ("p", w["p"], [x["p"] for x in s]),
                     ("S", w["S"], [x["S"] for x in s]), ("I", w["I"], [x["Ib"] for x in s])],
        VELOCITIES: [("V", w["V"], [x["V"] for x in s])],
        JOINT_FORCES: [("Q", w["Q"], [x["Q"] for x in s]), ("torque", w["torque"], [x["torque"] for x in s]),
                       ("power", w["power"], [x["power"] for x in s])],
        GROUND_CONTACTS: [("Q", w["Q"], [x["Q"] for x in s]), ("slip", w["slip"], [x["slip"] for x in s]),
                          ("contact", w["contact"], [x["contact"] for x in s])],
        BODY_CONTACTS: [("Q", w["Q"], [x["Q"] for x in s]), ("body_slip", w["body_slip"], [x["body_slip"] for x in s])],
        BODY_TOUCH: [("touch", w["touch"], [x["body_touch"] for x in s])],
        BIAS_AND_MASS: [("C", w["C"], [x["C"] for x in s]), ("f", w["f"], [x["f"] for x in s]),
                        ("I (composite)", w["I"], [x["Ic"] for x in s]),
                        ("F = H[0:6, 6:]", w["F"], [x["H"][0:6, 6:].T for x in s]),
                        ("Hl", w["Hl"], [np.stack([x["H"][6 + 3 * g:9 + 3 * g, 6 + 3 * g:9 + 3 * g] for g in range(4)])
                                         for x in s])],
        SOLVE: [("acc", w["acc"], [x["acc"] for x in s])],
        INTEGRATE: [(name, w[name], [x[name] for x in s]) for name in ("pos", "quat", "q", "v", "wb", "qd")]
        + [("cq", w["cq"], [np.cos(x["q"]) for x in s], taylor), ("sq", w["sq"], [np.sin(x["q"]) for x in s], taylor)],
    }
    return [item if len(item) == 4 else item + (0.0,) for item in out[stage]]


@pytest.mark.parametrize("motor_mode", [MOTOR_PD, MOTOR_TORQUE])
@pytest.mark.parametrize("num_envs", ENV_COUNTS)
def test_each_simd_stage_matches_its_scalar_twin_on_the_same_inputs(num_envs, motor_mode, robot):
    st, envp, actions, sim = _random_batch(num_envs, seed=100 + num_envs, motor_mode=motor_mode)
    bufs = [new_workspace() for _ in range(num_envs)]
    for i, buf in enumerate(bufs):
        _load(MODEL, sim, envp, st, i, actions, buf)
    touched = contacts = body_points = 0
    for stage in range(len(STAGES)):
        before = [b.copy() for b in bufs]
        for buf in bufs:
            _scalar_stage(MODEL, sim, buf, stage)
        wbuf = _to_block(MODEL, before, stage)
        _block_stage(MODEL, sim, wbuf, stage)
        for name, got, ref, extra_atol in _stage_outputs(stage, wbuf, bufs, sim):
            _assert_lanes_close(got, ref, f"{STAGES[stage]}: {name}", extra_atol)
        touched += sum(b[0]["body_touch"] for b in bufs) if stage == BODY_TOUCH else 0
        contacts += sum(b[0]["contact"].sum() for b in bufs) if stage == GROUND_CONTACTS else 0
        body_points += sum((b[0]["body_slip"] != 0).any(axis=1).sum() for b in bufs) if stage == BODY_CONTACTS else 0
    # the random states did exercise both branches of the contact model and the touch detection
    assert 0 < contacts < 4 * num_envs
    assert touched >= 1
    assert 6 <= body_points < 16 * num_envs  # trunk corners (env 2), knees and shanks (env 3)


@pytest.mark.parametrize("num_envs", ENV_COUNTS)
def test_gather_block_copies_exactly_what_load_env_loads(num_envs):
    st, envp, actions, sim = _random_batch(num_envs, seed=7)
    actions = actions.astype(np.float32)  # tasks pass float32 actions
    wbuf = new_block_workspace()
    _gather(MODEL, sim, envp, st, actions, 0, num_envs, wbuf)
    w = wbuf[0]
    for lane in range(BLOCK):
        i = lane if lane < num_envs else 0  # empty lanes repeat env 0
        buf = new_workspace()
        _load(MODEL, sim, envp, st, i, actions, buf)
        s = buf[0]
        for name in ("pos", "quat", "q", "v", "wb", "qd", "slip", "body_slip", "contact", "torque", "power", "friction",
                     "strength", "kp_scale", "kd_scale", "target"):
            np.testing.assert_array_equal(w[name][..., lane], s[name], err_msg=name)
        assert w["touch"][lane] == s["body_touch"]
        assert w["mass0"][lane] == MODEL.body_mass[0] + s["added_mass"]
        np.testing.assert_array_equal(w["cq"][:, lane], np.cos(s["q"]))
        np.testing.assert_array_equal(w["sq"][:, lane], np.sin(s["q"]))


def test_scatter_block_writes_exactly_what_store_env_writes():
    """Same rows bit for bit, the non-finite check included (env 1 gets a NaN)."""
    n = BLOCK - 3
    st, envp, actions, sim = _random_batch(n, seed=8)
    bufs = [new_workspace() for _ in range(n)]
    for i, buf in enumerate(bufs):
        _load(MODEL, sim, envp, st, i, actions, buf)
        for stage in range(len(STAGES)):
            _scalar_stage(MODEL, sim, buf, stage)
    bufs[1][0]["qd"][3] = np.nan
    wbuf = _to_block(MODEL, bufs, KINEMATICS)
    by_scalar, by_block = st.copy(), st.copy()
    flagged = sum(_store(sim, by_scalar, i, bufs[i]) for i in range(n))
    assert _scatter(sim, by_block, 0, n, wbuf) == flagged == 1
    for name, a, b in zip(PhysicsState._fields, by_block, by_scalar):
        np.testing.assert_array_equal(a, b, err_msg=name)


STATE_ATOL = {  # field: absolute tolerance (unit)
    "base_pos": 1e-12,  # m
    "world_offset": 1e-12,  # m
    "base_quat": 1e-12,
    "foot_slip": 1e-13,  # m
    "body_slip": 1e-13,  # m
    "joint_pos": 1e-11,  # rad
    "base_lin_vel": 1e-11,  # m/s
    "base_ang_vel": 1e-10,  # rad/s
    "joint_vel": 1e-9,  # rad/s
    "joint_torque": 1e-10,  # N·m
    "motor_power": 1e-8,  # W
}


def _assert_states_close(blk: PhysicsState, ref: PhysicsState):
    for name, atol in STATE_ATOL.items():
        np.testing.assert_allclose(getattr(blk, name), getattr(ref, name), rtol=0, atol=atol, err_msg=name)
    for name in ("foot_contact", "body_contact", "status"):
        np.testing.assert_array_equal(getattr(blk, name), getattr(ref, name), err_msg=name)


@pytest.mark.parametrize("motor_mode", [MOTOR_PD, MOTOR_TORQUE])
@pytest.mark.parametrize("num_envs", [5, BLOCK, BLOCK + 13])
def test_control_step_block_matches_control_step_env_from_random_states(num_envs, motor_mode, robot):
    st, envp, actions, sim = _random_batch(num_envs, seed=200 + num_envs, motor_mode=motor_mode,
                                           deepest=0.005, extremes=False)
    st.joint_pos[1, 2] = MODEL.joint_lower[2] - 0.02  # a joint past its limit
    ref, blk = st.copy(), st.copy()
    for _ in range(3):
        assert step(MODEL, sim, envp, ref, actions, method="shards") == 0
        assert step(MODEL, sim, envp, blk, actions, method="block") == 0
        _assert_states_close(blk, ref)
    assert 0 < ref.foot_contact.sum() < 4 * num_envs


@pytest.mark.parametrize("motor_mode", [MOTOR_PD, MOTOR_TORQUE])
def test_simd_block_kernel_matches_scalar_reference(motor_mode):
    """10 control steps of 37 envs (a full and a partial block) with kicks and random domain
    parameters: the SIMD kernel equals the scalar one to rounding."""
    ref = kicked_trajectory(None, "shards", steps=10, motor_mode=motor_mode)
    blk = kicked_trajectory(None, "block", steps=10, motor_mode=motor_mode)
    _assert_states_close(blk, ref)
