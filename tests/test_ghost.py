"""The world model's ghost in ``quadlit play``: its pose geometry, its imagination, and the toggle."""

import math

import numpy as np
import pytest
import torch

from quadlit.ghost import Ghost, pose_along, quat_from_gravity, rotation, yaw_of
from quadlit.models.world_model import WorldModel, history_inputs
from quadlit.play import PlaySession
from quadlit.render.frames import QuadrupedFrame
from quadlit.tasks import make_task, task_params_from_dict
from quadlit.tasks.balance.kernels import OBS_SLICES
from quadlit.training.module import QuadlitModule

DT = 0.02


def _random_quats(n, seed=0):
    q = np.random.default_rng(seed).normal(size=(n, 4))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def test_orientation_from_gravity_and_heading_round_trips():
    for q in _random_quats(50):
        gravity = rotation(q).T @ np.array([0.0, 0.0, -1.0])
        if abs(gravity[0]) > 0.999:  # pitch of +-90 deg: heading and roll are not separable
            continue
        back = quat_from_gravity(3.0 * gravity, yaw_of(q))
        assert min(np.abs(back - q).max(), np.abs(back + q).max()) < 1e-9
    with pytest.raises(ValueError):
        quat_from_gravity(np.zeros(3), 0.0)


def test_pose_integrates_the_predicted_velocities_in_the_world_frame():
    obs = np.zeros((25, 37))
    obs[:, 2] = -1.0  # level
    obs[:, 3] = 1.0  # 1 m/s forward in the trunk frame
    start = quat_from_gravity(np.array([0.0, 0.0, -1.0]), math.pi / 2)  # heading +y
    pos, quat = pose_along(obs, np.array([1.0, 2.0, 0.3]), start, DT, OBS_SLICES)
    np.testing.assert_allclose(pos, [1.0, 2.0 + 25 * DT, 0.3], atol=1e-12)
    np.testing.assert_allclose(quat, start, atol=1e-12)
    obs[:, 3], obs[:, 8] = 0.0, 2.0  # turning at 2 rad/s about the (vertical) trunk z axis
    pos, quat = pose_along(obs, np.zeros(3), start, DT, OBS_SLICES)
    assert yaw_of(quat) == pytest.approx(math.pi / 2 + 2.0 * 25 * DT)
    np.testing.assert_allclose(pos, 0.0, atol=1e-12)


@pytest.fixture(scope="module")
def balance():
    task = make_task("balance", 1, task_params_from_dict("balance", {}), seed=4)
    yield task
    task.close()


def _module(history=1):
    torch.manual_seed(0)
    module = QuadlitModule(obs_dim=37, action_dim=12, lstm_hidden=16, wm_history=history).eval()
    module.obs_norm.update(torch.randn(500, 37) * 0.3)
    return module


def test_the_ghost_reads_the_episodes_last_observations_and_actions(balance):
    module = _module(history=3)
    ghost = Ghost(module.world_model, module.policy, module.obs_norm, OBS_SLICES, balance.model.default_q, DT)
    gen = torch.Generator().manual_seed(1)
    obs, actions = torch.randn(5, 37, generator=gen), torch.randn(5, 12, generator=gen)
    ghost.begin_episode(obs[0])
    expected = history_inputs(module.obs_norm(obs).unsqueeze(1), actions.unsqueeze(1), torch.zeros(5, 1), 3)
    torch.testing.assert_close(ghost._inputs(), expected[0], rtol=0, atol=0)  # only the first observation
    for t in range(1, 5):
        ghost.observe(actions[t - 1], obs[t])
        torch.testing.assert_close(ghost._inputs(), expected[t], rtol=0, atol=0)


def test_imagination_is_the_world_model_stepped_along_the_policys_actions(balance):
    module = _module()
    ghost = Ghost(module.world_model, module.policy, module.obs_norm, OBS_SLICES, balance.model.default_q, DT,
                  steps=2)
    obs = torch.from_numpy(balance.reset(4)[0].copy())
    ghost.begin_episode(obs)
    state = module.policy.initial_state(1, torch.device("cpu"))
    saved = [s.clone() for s in state]
    predicted = ghost.imagine(state)
    assert predicted.shape == (2, 37)
    assert all(torch.equal(a, b) for a, b in zip(state, saved))  # the play's own state is untouched
    with torch.no_grad():  # by hand
        x = module.obs_norm(obs[None])
        action, *_, s = module.policy.act(x, state, torch.zeros(1), deterministic=True, generator=None)
        z = module.world_model.step_latent(module.world_model.encode(x), action)[0]
        x1 = module.world_model.decode(z)
        std = (module.obs_norm.var + module.obs_norm.eps).sqrt()
        np.testing.assert_allclose(predicted[0], (x1[0].double() * std + module.obs_norm.mean).numpy(), atol=1e-5)


class _Replay:
    """A world model that knows the future: it decodes the real observations that followed."""

    history = 1
    action_dim = 12

    def __init__(self, future_normalised):
        self.future = future_normalised

    def encode(self, inputs):
        return torch.zeros(inputs.shape[0], 1)

    def step_latent(self, latent, action):
        return (latent + 1,)

    def decode(self, latent):
        return self.future[int(latent[0, 0]) - 1].unsqueeze(0)


def test_an_exact_prediction_puts_the_ghost_on_the_robot_half_a_second_later():
    """The pose geometry against the physics: pushed sideways, the robot is stepped 25 control
    steps; a ghost fed exactly those observations lands where the robot did."""
    from quadlit.physics.api import forward_kinematics

    task = make_task("balance", 1, task_params_from_dict("balance", {}), seed=5)
    try:
        module = _module()
        policy, norm = module.policy, module.obs_norm
        obs = torch.from_numpy(task.reset(5)[:1].copy())
        task.push(np.array([0]), np.array([[0.3, 1.2, 0.0]]))
        now = task.render_frame(0)
        state = policy.initial_state(1, torch.device("cpu"))
        start_state, future = state, []
        with torch.no_grad():
            for step in range(25):
                action, *_, state = policy.act(norm(obs), state, torch.full((1,), float(step == 0)),
                                               deterministic=True, generator=None)
                obs = torch.from_numpy(task.step(action.numpy()).obs[:1].copy())
                future.append(norm(obs)[0])
        later = task.render_frame(0)
        ghost = Ghost(_Replay(future), policy, norm, OBS_SLICES, task.model.default_q, DT)
        ghost.begin_episode(torch.zeros(37))
        frame = ghost.frame(now, start_state, lambda p, q, j: forward_kinematics(task.model, p, q, j)[0])
    finally:
        task.close()
    moved = np.linalg.norm(later.trunk_pos[:2] - now.trunk_pos[:2])
    assert moved > 0.1  # the push carried it a visible distance
    assert np.linalg.norm(frame.trunk_pos - later.trunk_pos) < 0.1 * moved + 0.01
    assert min(np.abs(frame.trunk_quat - later.trunk_quat).max(), np.abs(frame.trunk_quat + later.trunk_quat).max()) < 0.03
    relative = frame.leg_points - frame.trunk_pos
    np.testing.assert_allclose(relative, later.leg_points - later.trunk_pos, atol=0.02)
    assert frame.ghost is None and frame.push is None


def test_play_toggles_the_ghost_and_recomputes_it_once_per_control_step(balance):
    from quadlit.physics.api import forward_kinematics

    module = _module()
    ghost = Ghost(module.world_model, module.policy, module.obs_norm, OBS_SLICES, balance.model.default_q, DT)
    calls = []
    original = ghost.imagine
    ghost.imagine = lambda state: calls.append(1) or original(state)
    session = PlaySession(balance, module.policy, module.obs_norm, seed=4, ghost=ghost,
                          kinematics=lambda p, q, j: forward_kinematics(balance.model, p, q, j)[0])
    assert session.frame().ghost is None and session.hud()["ghost"] == "off (G)"
    assert session.handle_keys({"g"}) == ["ghost"]
    first = session.frame()
    assert isinstance(first.ghost, QuadrupedFrame) and len(calls) == 1
    session.frame()
    assert len(calls) == 1  # no step since: the same ghost
    session.step()
    assert session.frame().ghost is not None and len(calls) == 2
    assert session.hud()["ghost"] == "world model, 0.5 s ahead"
    session.handle_keys({"g"})
    assert session.frame().ghost is None
    without = PlaySession(balance, module.policy, module.obs_norm, seed=4)
    assert without.handle_keys({"g"}) == [] and "ghost" not in without.hud()
    with pytest.raises(ValueError, match="kinematics"):
        PlaySession(balance, module.policy, module.obs_norm, ghost=ghost)


def test_a_world_model_with_memory_needs_its_history_in_the_ghost():
    model = WorldModel(37, 12, latent_dim=8, hidden=8, history=2)
    ghost = Ghost(model, None, lambda x: x, OBS_SLICES, np.zeros(12), DT)
    with pytest.raises(RuntimeError, match="begin_episode"):
        ghost.imagine(None)


def test_a_balance_checkpoint_with_a_world_model_gets_a_ghost(balance):
    from types import SimpleNamespace

    from quadlit.play import _ghost_for

    ghost, kinematics = _ghost_for(SimpleNamespace(task_name="balance", module=_module()), balance)
    assert ghost.steps == 25 and ghost.history == 1
    frame = balance.render_frame(0)
    np.testing.assert_allclose(kinematics(frame.trunk_pos, frame.trunk_quat, balance.physics.joint_pos[0]),
                               frame.leg_points)
    without = QuadlitModule(obs_dim=37, action_dim=12, lstm_hidden=16, wm_updates=0)
    assert _ghost_for(SimpleNamespace(task_name="balance", module=without), balance) == (None, None)
    assert _ghost_for(SimpleNamespace(task_name="reach", module=_module()), balance) == (None, None)
