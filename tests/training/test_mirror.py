"""Mirror symmetry (``model.mirror_coef``): the balance task's left-right mirror maps, checked
against the physics of an exactly symmetric robot, and the loss that trains a policy towards it."""

import sys

import numpy as np
import pytest
import torch

from quadlit.algo.losses import mirror_loss
from quadlit.physics import MOTOR_PD, EnvParams, PhysicsState, SimParams, a1_model, step
from quadlit.physics.state import KNEE0, SHANK0
from quadlit.tasks import require_mirror
from quadlit.tasks.balance.kernels import OBS_DIM
from quadlit.tasks.balance.mirror import balance_mirror
from quadlit.tasks.registry import Mirror

MIRROR = balance_mirror()
LEG_SWAP = [1, 0, 3, 2]


def _symmetric_a1():
    """The A1 with its trunk made its own mirror image (centre of mass on the x-z plane, no
    products of inertia with y): the legs already are mirror images of each other."""
    model = a1_model()
    com, inertia = model.body_com.copy(), model.body_inertia.copy()
    com[0, 1] = 0.0
    inertia[0, 0, 1] = inertia[0, 1, 0] = inertia[0, 1, 2] = inertia[0, 2, 1] = 0.0
    return a1_model(body_com=com, body_inertia=inertia)


def _mirror_joints(q: np.ndarray) -> np.ndarray:
    """(N, 12) joint values of the mirror image (legs swapped, abduction reversed)."""
    out = q.reshape(-1, 4, 3)[:, LEG_SWAP].copy()
    out[..., 0] *= -1.0
    return out.reshape(-1, 12)


def _mirror_state(st: PhysicsState) -> PhysicsState:
    """The physical mirror image (y -> -y) of every environment's state: a slow reference."""
    flip = np.array([1.0, -1.0, 1.0])
    corners = [k ^ 2 for k in range(8)]  # bit 1 of a trunk corner's index is the sign of its y
    body_rows = corners + [KNEE0 + leg for leg in LEG_SWAP] + [SHANK0 + leg for leg in LEG_SWAP]
    return st._replace(
        base_pos=st.base_pos * flip, base_quat=st.base_quat * np.array([1.0, -1.0, 1.0, -1.0]),
        joint_pos=_mirror_joints(st.joint_pos), base_lin_vel=st.base_lin_vel * flip,
        base_ang_vel=st.base_ang_vel * np.array([-1.0, 1.0, -1.0]), joint_vel=_mirror_joints(st.joint_vel),
        foot_slip=st.foot_slip[:, LEG_SWAP] * np.array([1.0, -1.0]),
        body_slip=st.body_slip[:, body_rows] * np.array([1.0, -1.0]),
        world_offset=st.world_offset * np.array([1.0, -1.0]), foot_contact=st.foot_contact[:, LEG_SWAP].copy(),
        body_contact=st.body_contact.copy(), joint_torque=_mirror_joints(st.joint_torque),
        motor_power=st.motor_power.copy(), status=st.status.copy())


def _observation(model, st: PhysicsState) -> np.ndarray:
    """The balance observation of every environment, from the state (NumPy, float64)."""
    w, x, y, z = st.base_quat.T
    rot = np.stack([np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
                    np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
                    np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)], -2)
    gravity = -rot[:, 2, :]  # R^T (0, 0, -1)
    lin = np.einsum("nji,nj->ni", rot, st.base_lin_vel)  # R^T v
    return np.concatenate([gravity, lin, st.base_ang_vel, st.joint_pos - model.default_q, st.joint_vel,
                           st.foot_contact.astype(np.float64)], axis=1)


def test_the_maps_are_the_legs_and_vectors_of_the_mirror_image():
    obs = np.arange(OBS_DIM, dtype=np.float64) + 100.0
    m = MIRROR.obs(obs)
    assert m[:9].tolist() == [100, -101, 102, 103, -104, 105, -106, 107, -108]
    assert m[9:12].tolist() == [-112, 113, 114]  # FL's joint offsets are FR's, abduction reversed
    assert m[18:21].tolist() == [-115, 116, 117]  # RR's are RL's
    assert m[21:24].tolist() == [-124, 125, 126]  # joint velocities likewise
    assert m[33:].tolist() == [134, 133, 136, 135]  # contacts FL FR RL RR <- FR FL RR RL
    a = MIRROR.action(np.arange(12.0))
    assert a.tolist() == [-3, 4, 5, -0, 1, 2, -9, 10, 11, -6, 7, 8]
    np.testing.assert_array_equal(MIRROR.obs(MIRROR.obs(obs)), obs)
    t = torch.randn(5, 2, OBS_DIM, dtype=torch.float64)
    torch.testing.assert_close(MIRROR.obs(t), torch.from_numpy(MIRROR.obs(t.numpy())), rtol=0, atol=0)
    with pytest.raises(ValueError, match="involution"):
        Mirror([1, 2, 0], [1, 1, 1], [0], [1])
    with pytest.raises(ValueError, match="permutation"):
        Mirror([0, 0], [1, 1], [0], [1])
    assert require_mirror("balance") is not None
    with pytest.raises(ValueError, match="no mirror symmetry"):
        require_mirror("reach")


def test_the_mirror_image_of_a_motion_is_a_motion_of_the_mirror_image():
    """Physics as a law: step a kicked, randomly driven robot and its mirror image driven by the
    mirrored actions; every later state is the mirror image of the first's, and the balance
    observation's map (``balance_mirror``) takes each observation to the other's."""
    model = _symmetric_a1()
    rng = np.random.default_rng(3)
    n = 6
    st = PhysicsState.allocate(n)
    st.set_standing(model)
    envp = EnvParams.allocate(n)
    for arr, lo, hi in ((envp.friction, 0.4, 1.2), (envp.added_mass, -0.5, 2.0), (envp.motor_strength, 0.8, 1.2),
                        (envp.kp_scale, 0.8, 1.2), (envp.kd_scale, 0.8, 1.2)):
        arr[:] = rng.uniform(lo, hi, n)
    sim = SimParams(motor_mode=MOTOR_PD)
    for k in range(20):  # a moving, stepping robot with some contacts made and broken
        if k % 6 == 2:
            st.base_lin_vel[:, :2] += rng.normal(0.0, 0.8, (n, 2))
        step(model, sim, envp, st, rng.uniform(-1, 1, (n, 12)))
    assert st.foot_contact.any() and not st.foot_contact.all()
    mirrored = _mirror_state(st)
    mirrored = mirrored._replace(**{k: v.copy() for k, v in mirrored._asdict().items()})
    for k in range(25):
        if k == 10:
            kick = rng.normal(0.0, 1.0, (n, 2))
            st.base_lin_vel[:, :2] += kick
            mirrored.base_lin_vel[:, :2] += kick * np.array([1.0, -1.0])
        actions = rng.uniform(-1, 1, (n, 12))
        step(model, sim, envp, st, actions)
        step(model, sim, envp, mirrored, MIRROR.action(actions))
        expected = _mirror_state(st)
        for name in ("base_pos", "base_quat", "joint_pos", "base_lin_vel", "base_ang_vel", "joint_vel", "foot_slip"):
            np.testing.assert_allclose(getattr(mirrored, name), getattr(expected, name), rtol=1e-7, atol=1e-9,
                                       err_msg=f"{name} at step {k}")
        np.testing.assert_array_equal(mirrored.foot_contact, expected.foot_contact)
        np.testing.assert_allclose(_observation(model, mirrored), MIRROR.obs(_observation(model, st)),
                                   rtol=1e-7, atol=1e-9)
    # and the robot as simulated (its trunk 2 mm off-centre) is only approximately symmetric
    assert abs(a1_model().body_com[0, 1]) > 1e-3


class _LinearPolicy(torch.nn.Module):
    """mean = obs @ W: a policy whose mirror loss can be worked out by hand."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(weight)

    def initial_state(self, batch, device):
        return torch.zeros(batch, 1, device=device), torch.zeros(batch, 1, device=device)

    def forward(self, obs, state, episode_start, need_state=True):
        return obs @ self.weight, torch.zeros(obs.shape[:-1]), state


def test_the_mirror_loss_on_a_worked_example_and_zero_for_a_symmetric_policy():
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(OBS_DIM, 12, generator=gen, dtype=torch.float64)
    obs = torch.randn(4, 3, OBS_DIM, generator=gen, dtype=torch.float64)
    starts = torch.zeros(4, 3, dtype=torch.float64)
    policy = _LinearPolicy(weight.clone())
    loss = mirror_loss(policy, obs, MIRROR.obs(obs), starts, MIRROR.action)
    # by hand: the mean for the mirrored observation against the mirrored mean
    o, w = obs.numpy(), weight.numpy()
    by_hand = np.mean((MIRROR.obs(o) @ w - MIRROR.action(o @ w)) ** 2)
    assert float(loss) == pytest.approx(by_hand, rel=1e-12)
    # a symmetric weight (its mirror-averaged version, M_o^T W M_a... built by mirroring columns and rows)
    p_o = np.eye(OBS_DIM)[MIRROR.obs_perm] * MIRROR.obs_sign[:, None]  # mirrored obs = P_o @ obs
    p_a = np.eye(12)[MIRROR.action_perm] * MIRROR.action_sign[:, None]
    symmetric = 0.5 * (w + p_o.T @ w @ p_a)  # satisfies P_o^T W P_a = W, i.e. M_o(o) W = M_a(o W)
    sym_policy = _LinearPolicy(torch.from_numpy(symmetric))
    assert float(mirror_loss(sym_policy, obs, MIRROR.obs(obs), starts, MIRROR.action)) < 1e-25
    # gradient steps on the loss alone make an EntityBelief more symmetric
    from quadlit.models.entity_belief import EntityBelief

    torch.manual_seed(0)
    net = EntityBelief(OBS_DIM, 12, lstm_hidden=16)
    seq = torch.randn(8, 16, OBS_DIM, generator=gen)
    starts = torch.zeros(8, 16)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    first = float(mirror_loss(net, seq, MIRROR.obs(seq), starts, MIRROR.action))
    for _ in range(60):
        opt.zero_grad()
        mirror_loss(net, seq, MIRROR.obs(seq), starts, MIRROR.action).backward()
        opt.step()
    assert float(mirror_loss(net, seq, MIRROR.obs(seq), starts, MIRROR.action)) < 0.2 * first


def test_a_balance_run_with_the_mirror_loss_trains_and_logs_it(tmp_path, monkeypatch):
    from quadlit.cli import run_cli
    from tests.tiny import REPO

    monkeypatch.setattr(sys, "argv", ["quadlit"])
    cli = run_cli(["fit", "--config", str(REPO / "configs/balance.yaml"), "--data.num_envs", "8",
                   "--data.rollout_steps", "8", "--data.iterations_per_epoch", "2", "--data.eval_episodes", "2",
                   "--data.physics_threads", "1", "--model.lstm_hidden", "16", "--trainer.max_epochs", "1",
                   "--trainer.max_time", "null", "--trainer.check_val_every_n_epoch", "1000",
                   "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
                   "--trainer.logger", "false", "--model.mirror_coef", "1.0", "--model.mirror_envs", "2",
                   "--trainer.default_root_dir", str(tmp_path)])
    metrics = cli.trainer.callback_metrics
    assert float(metrics["train/mirror_loss"]) > 0.0 and torch.isfinite(metrics["train/policy_loss"])
