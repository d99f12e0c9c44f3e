"""Dynamics against MuJoCo (test-only dependency): mass matrix, accelerations, kinematics."""

import numpy as np
import pytest

from quadlit.physics import LEG_NAMES, SimParams, a1_model, forward_dynamics, forward_kinematics, mass_matrix
from quadlit.physics.mjcf import to_mjcf

mujoco = pytest.importorskip("mujoco")

NUM_STATES = 128


@pytest.fixture(scope="module")
def case():
    """Random states (random quaternion, joint angles over +-pi, velocities, torques) and
    MuJoCo's answers. Joint damping and armature are non-zero and identical in both models."""
    model = a1_model(joint_damping=0.3, joint_armature=0.02)
    sim = SimParams(contacts=0, joint_limits=0)
    mm = mujoco.MjModel.from_xml_string(to_mjcf(model, sim, actuators="none"))
    d = mujoco.MjData(mm)
    rng = np.random.default_rng(12345)
    n = NUM_STATES
    s = {
        "pos": rng.normal(size=(n, 3)),
        "quat": rng.normal(size=(n, 4)),
        "q": rng.uniform(-np.pi, np.pi, (n, 12)),
        "v": rng.normal(size=(n, 3)),
        "w": rng.normal(size=(n, 3)) * 3.0,
        "qd": rng.normal(size=(n, 12)) * 5.0,
        "tau": rng.uniform(-33.5, 33.5, (n, 12)),
    }
    s["quat"] /= np.linalg.norm(s["quat"], axis=1, keepdims=True)
    mj_M, mj_qacc, mj_feet = np.zeros((n, 18, 18)), np.zeros((n, 18)), np.zeros((n, 4, 3))
    foot_ids = [mujoco.mj_name2id(mm, mujoco.mjtObj.mjOBJ_GEOM, f"{leg}_foot") for leg in LEG_NAMES]
    for k in range(n):
        d.qpos[:] = np.concatenate([s["pos"][k], s["quat"][k], s["q"][k]])
        d.qvel[:] = np.concatenate([s["v"][k], s["w"][k], s["qd"][k]])
        d.qfrc_applied[:] = np.concatenate([np.zeros(6), s["tau"][k]])
        mujoco.mj_forward(mm, d)
        mujoco.mj_fullM(mm, d, mj_M[k])
        mj_qacc[k] = d.qacc
        mj_feet[k] = d.geom_xpos[foot_ids]
    return model, s, mj_M, mj_qacc, mj_feet


def test_mass_matrix_equals_mj_fullM(case):
    model, s, mj_M, _, _ = case
    H = mass_matrix(model, s["quat"], s["q"])
    for k in range(NUM_STATES):
        np.testing.assert_allclose(H[k], mj_M[k], rtol=1e-6, atol=1e-6 * np.abs(mj_M[k]).max())


@pytest.mark.parametrize("method", ["crba", "aba"])
def test_accelerations_equal_mj_forward_qacc(case, method):
    model, s, _, mj_qacc, _ = case
    qacc = forward_dynamics(model, s["quat"], s["q"], s["v"], s["w"], s["qd"], s["tau"], gravity=9.81, method=method)
    for k in range(NUM_STATES):
        np.testing.assert_allclose(qacc[k], mj_qacc[k], rtol=1e-6, atol=1e-6 * np.abs(mj_qacc[k]).max())


def test_foot_positions_equal_mujoco(case):
    model, s, _, _, mj_feet = case
    feet = forward_kinematics(model, s["pos"], s["quat"], s["q"])[:, :, 3]
    np.testing.assert_allclose(feet, mj_feet, rtol=0, atol=1e-9)


def test_exported_mjcf_stands_like_quadlit():
    """MuJoCo stepping the exported model (PD position servos holding the default pose) settles
    within 1 cm of the height quadlit's own engine settles at: same robot, same controller."""
    from quadlit.physics import EnvParams, PhysicsState, step

    model = a1_model()
    sim = SimParams()
    mm = mujoco.MjModel.from_xml_string(to_mjcf(model, sim, actuators="position"))
    d = mujoco.MjData(mm)
    mujoco.mj_resetDataKeyframe(mm, d, 0)
    for _ in range(2000):  # 2 s
        mujoco.mj_step(mm, d)
    st = PhysicsState.allocate(1)
    st.set_standing(model)
    envp = EnvParams.allocate(1)
    for _ in range(100):
        step(model, sim, envp, st, np.zeros((1, 12)))
    assert abs(d.qpos[2] - st.base_pos[0, 2]) < 0.01
    assert abs(d.qpos[2] - model.standing_height) < 0.015


def test_limp_robot_comes_to_rest_at_mujocos_height_with_body_contacts():
    """No motors, dropped level from 0.5 m: quadlit's engine (trunk, knee and shank contacts) and
    MuJoCo on ``to_mjcf(..., body_contacts=True)`` both leave the trunk lying on the floor, its
    centre at the same height within 3 mm (measured: 0.0567 m in quadlit)."""
    from quadlit.physics import MOTOR_TORQUE, EnvParams, PhysicsState, step

    model = a1_model()
    mm = mujoco.MjModel.from_xml_string(to_mjcf(model, SimParams(), actuators="none", body_contacts=True))
    d = mujoco.MjData(mm)
    d.qpos[:] = np.concatenate([[0.0, 0.0, 0.5, 1.0, 0.0, 0.0, 0.0], model.default_q])
    for _ in range(4000):  # 4 s
        mujoco.mj_step(mm, d)
    st = PhysicsState.allocate(1)
    st.set_standing(model, height=0.5)
    for _ in range(200):  # 4 s
        step(model, SimParams(motor_mode=MOTOR_TORQUE), EnvParams.allocate(1), st, np.zeros((1, 12)))
    assert abs(st.base_pos[0, 2] - d.qpos[2]) < 0.003
    assert abs(st.base_pos[0, 2] - model.trunk_half_extents[2]) < 0.002
