"""The robot record, forward kinematics against a NumPy reference, MJCF export."""

import numpy as np
import pytest

from quadlit.physics import JOINT_NAMES, a1_model, forward_kinematics, replace_model
from quadlit.physics.model import reference_forward_kinematics


def test_a1_record_matches_the_published_sizes():
    m = a1_model()
    assert m.total_mass == pytest.approx(12.453, abs=1e-9)
    assert m.body_mass[0] == pytest.approx(4.713)
    assert m.body_mass[1:4] == pytest.approx([0.696, 1.013, 0.226])
    np.testing.assert_allclose(m.joint_pos[0], [0.183, 0.047, 0.0])  # FL hip
    np.testing.assert_allclose(m.joint_pos[4], [0.0, -0.08505, 0.0])  # FR thigh, outwards
    np.testing.assert_allclose(m.joint_pos[2], [0.0, 0.0, -0.2])  # knee 0.2 m below thigh joint
    assert len(JOINT_NAMES) == 12 and JOINT_NAMES[0] == "FL_hip_joint"
    # every body inertia is symmetric positive definite and satisfies the triangle inequality
    for inertia in m.body_inertia:
        np.testing.assert_allclose(inertia, inertia.T)
        ev = np.linalg.eigvalsh(inertia)
        assert ev.min() > 0 and ev.max() <= ev.sum() - ev.max() + 1e-12
    # default pose, level, feet touching: 0.2 cos(0.8) + 0.2 cos(0.7) + foot radius
    assert m.standing_height == pytest.approx(0.2 * np.cos(0.8) + 0.2 * np.cos(0.7) + 0.02, abs=1e-12)


def test_record_is_immutable_and_overrides_validate():
    m = a1_model()
    with pytest.raises(ValueError):
        m.kp[0] = 1.0
    m2 = replace_model(m, kp=100.0, foot_radius=0.025)
    assert np.all(m2.kp == 100.0) and m2.standing_height == pytest.approx(m.standing_height + 0.005)
    assert np.all(m.kp == 80.0)
    with pytest.raises(ValueError):
        a1_model(not_a_field=1)
    with pytest.raises(ValueError):
        a1_model(body_mass=np.zeros(13))
    with pytest.raises(ValueError):
        a1_model(joint_pos=np.zeros((11, 3)))


def test_forward_kinematics_matches_numpy_reference():
    m = a1_model()
    rng = np.random.default_rng(3)
    n = 50
    pos = rng.normal(size=(n, 3))
    quat = rng.normal(size=(n, 4))
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    q = rng.uniform(-3, 3, (n, 12))
    got = forward_kinematics(m, pos, quat, q)
    assert got.shape == (n, 4, 4, 3)
    for k in range(n):
        np.testing.assert_allclose(got[k], reference_forward_kinematics(m, pos[k], quat[k], q[k]), atol=1e-12)
    # segment lengths are preserved whatever the pose
    np.testing.assert_allclose(np.linalg.norm(got[:, :, 2] - got[:, :, 1], axis=-1), 0.2, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(got[:, :, 1] - got[:, :, 0], axis=-1), 0.08505, atol=1e-12)


def test_mjcf_export_loads_in_mujoco_with_the_same_masses(tmp_path):
    mujoco = pytest.importorskip("mujoco")
    from quadlit.physics.mjcf import main

    out = tmp_path / "a1.xml"
    assert main(["--out", str(out)]) == 0
    mm = mujoco.MjModel.from_xml_path(str(out))
    m = a1_model()
    assert (mm.nq, mm.nv, mm.nu) == (19, 18, 12)
    assert mm.body_mass.sum() == pytest.approx(m.total_mass, rel=1e-12)
    assert [mm.joint(j + 1).name for j in range(12)] == list(JOINT_NAMES)
    np.testing.assert_allclose(mm.jnt_range[1:], np.stack([m.joint_lower, m.joint_upper], 1))
    np.testing.assert_allclose(mm.dof_armature[6:], m.joint_armature)
