"""Standing, dropping and sliding: PD motors, spring-damper ground contact, Coulomb friction."""

import numpy as np
import pytest

from quadlit.physics import EnvParams, PhysicsState, SimParams, a1_model, energy_and_momentum, forward_kinematics, step

MODEL = a1_model()
SIM = SimParams()  # dt 1 ms x 20 substeps, contact k 1e5 N/m, c 400 N·s/m


def _run(st, envp, steps, sim=SIM, record=None):
    actions = np.zeros((st.num_envs, 12))
    for _ in range(steps):
        assert step(MODEL, sim, envp, st, actions) == 0
        if record is not None:
            record(st)


def _feet_world(st):
    return forward_kinematics(MODEL, st.world_base_pos(), st.base_quat, st.joint_pos)[:, :, 3]


def test_standing_pose_is_held_at_the_expected_height():
    """Default pose from rest, PD (zero action): settles within 1 cm of the nominal standing
    height 0.312 m (measured 0.305 m: 7 mm of PD sag under the robot's weight), then moves
    < 1 mm over 20 s with all four feet on the ground and none sliding."""
    st = PhysicsState.allocate(2)
    st.set_standing(MODEL)
    envp = EnvParams.allocate(2)
    _run(st, envp, 50)  # 1 s to settle
    assert abs(st.base_pos[0, 2] - MODEL.standing_height) < 0.01
    trunk0, feet0 = st.world_base_pos(), _feet_world(st)
    contacts = []
    _run(st, envp, 1000, record=lambda s: contacts.append(s.foot_contact.copy()))  # 20 s
    assert np.linalg.norm(st.world_base_pos() - trunk0, axis=1).max() < 1e-3
    assert np.abs(_feet_world(st) - feet0)[..., :2].max() < 1e-4  # feet do not slide
    assert np.all(contacts)
    assert not st.body_contact.any()
    assert np.abs(st.base_lin_vel).max() < 1e-4 and np.abs(st.joint_vel).max() < 1e-3


def test_drop_from_half_a_metre_comes_to_rest_without_sinking():
    """Trunk released level at 0.5 m (feet 0.19 m above the ground). The deepest foot
    penetration, sampled every physics substep, stays below 5 mm (measured about 3 mm)."""
    sim = SIM._replace(substeps=1)  # same physics, state observed after every substep
    st = PhysicsState.allocate(1)
    st.set_standing(MODEL, height=0.5)
    envp = EnvParams.allocate(1)
    lowest = []
    _run(st, envp, 5000, sim=sim, record=lambda s: lowest.append(_feet_world(s)[..., 2].min() - MODEL.foot_radius))
    print("deepest foot penetration", -min(lowest))
    assert min(lowest) > -0.005
    assert min(lowest) < -1e-4  # it did land
    assert np.abs(st.base_lin_vel).max() < 1e-3 and np.abs(st.joint_vel).max() < 1e-2
    assert abs(st.base_pos[0, 2] - MODEL.standing_height) < 0.01
    assert not st.body_contact.any() and st.foot_contact.all()


@pytest.mark.parametrize("friction", [1.0, 0.0])
def test_sideways_kick_stops_with_friction_and_slides_without(friction):
    st = PhysicsState.allocate(1)
    st.set_standing(MODEL)
    envp = EnvParams.allocate(1, friction=friction)
    _run(st, envp, 50)
    st.base_lin_vel[0, :2] += (0.0, 0.5)  # sideways kick, world frame, m/s
    _run(st, envp, 150)  # 3 s
    com_vel = energy_and_momentum(MODEL, st)["linear_momentum"][0] / MODEL.total_mass
    if friction > 0:
        assert np.abs(com_vel).max() < 1e-3  # Coulomb friction brought it to rest
        assert np.abs(st.base_lin_vel).max() < 1e-3
    else:
        # no horizontal force at all: the COM keeps its kick velocity (gravity and normal
        # forces are vertical)
        np.testing.assert_allclose(com_vel[:2], [0.0, 0.5], atol=1e-6)
        assert st.world_offset[0, 1] > 1.4


def test_friction_cone_bounds_the_ground_force():
    """A robot pushed hard sideways on friction 0.3 slides: COM deceleration <= mu g."""
    mu = 0.3
    st = PhysicsState.allocate(1)
    st.set_standing(MODEL)
    envp = EnvParams.allocate(1, friction=mu)
    _run(st, envp, 50)
    st.base_lin_vel[0, :2] += (1.5, 0.0)  # forward kick, world frame, m/s
    v0 = energy_and_momentum(MODEL, st)["linear_momentum"][0, 0] / MODEL.total_mass
    _run(st, envp, 5)  # 0.1 s
    v1 = energy_and_momentum(MODEL, st)["linear_momentum"][0, 0] / MODEL.total_mass
    decel = (v0 - v1) / 0.1
    assert 0.0 < decel <= mu * SIM.gravity * 1.05  # 5 %: vertical forces vary while it rocks


@pytest.mark.parametrize("method", ["shards", "block"])
def test_contact_flags_feet_and_body(method):
    """Feet flags follow the feet; trunk or knee touching the ground sets body_contact (the
    balance task terminates on it; the forces there: ``test_body_contacts.py``)."""
    st = PhysicsState.allocate(3)
    st.set_standing(MODEL, height=MODEL.standing_height - 0.001)  # feet 1 mm into the ground
    st.base_pos[1, 2] = 1.0  # in the air
    st.base_pos[2, 2] = 0.04  # trunk box (half height 0.057 m) through the ground
    envp = EnvParams.allocate(3)
    step(MODEL, SIM._replace(substeps=1), envp, st, np.zeros((3, 12)), method=method)
    np.testing.assert_array_equal(st.foot_contact[0], [True] * 4)
    np.testing.assert_array_equal(st.foot_contact[1], [False] * 4)
    np.testing.assert_array_equal(st.body_contact, [False, False, True])
    # knees: thighs straight down, calves folded up, lowest point is the knee
    st.set_standing(MODEL)
    st.joint_pos[:, 1::3] = 0.0
    st.joint_pos[:, 2::3] = -2.6
    points = forward_kinematics(MODEL, [0, 0, 0], [1, 0, 0, 0], st.joint_pos[0])[0]
    assert points[:, 2, 2].max() < points[:, 3, 2].min() - 0.1  # knees well below the feet
    st.base_pos[:, 2] = 0.01 - points[:, 2, 2].min()  # lowest knee 1 cm above the ground
    assert st.base_pos[0, 2] > MODEL.trunk_half_extents[2]
    high = st.copy()
    step(MODEL, SIM._replace(substeps=1), envp, st, np.zeros((3, 12)), method=method)
    assert st.body_contact.all()
    high.base_pos[:, 2] += 0.03  # knees 4 cm up: clear of the ground (knee radius 2 cm)
    step(MODEL, SIM._replace(substeps=1), envp, high, np.zeros((3, 12)), method=method)
    assert not high.body_contact.any()
