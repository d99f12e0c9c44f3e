"""``quadlit sim2sim``: the observation built from MuJoCo's data equals quadlit's from identical
states; the tiny balance run's policy goes end to end through the command; bad input is one line."""

import sys

import numpy as np
import pytest

from quadlit.cli import main
from quadlit.physics import PhysicsState, SimParams, a1_model, forward_kinematics
from quadlit.physics.api import step as physics_step
from quadlit.physics.mjcf import SENSOR_LAYOUT, to_mjcf
from quadlit.physics.model import EnvParams
from quadlit.tasks.balance import kernels
from quadlit.tasks.balance.params import BalanceParams, kernel_params
from tests.tiny import REPO, TINY

mujoco = pytest.importorskip("mujoco")

from quadlit.sim2sim import mujoco_observation  # noqa: E402

#: Feet closer to the ground than this are left out of the random states: there the contact flag
#: is decided by rounding (see test_contact_flags_agree_within_a_nanometre_of_the_ground).
FLAG_MARGIN = 1e-6  # m


def _random_states(model, n: int, seed: int) -> dict[str, np.ndarray]:
    """Trunk tilted up to 0.6 rad (any yaw), 0.22-0.40 m high, joints up to 0.4 rad off the default
    pose, velocities of a pushed robot: feet in the air, on the ground, and in between."""
    rng = np.random.default_rng(seed)
    axis = rng.normal(size=(n, 3))
    axis[:, 2] *= 0.2
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    tilt = rng.uniform(0.0, 0.6, n)
    yaw = rng.uniform(-np.pi, np.pi, n)
    q_tilt = np.concatenate([np.cos(tilt / 2)[:, None], np.sin(tilt / 2)[:, None] * axis], axis=1)
    q_yaw = np.stack([np.cos(yaw / 2), 0 * yaw, 0 * yaw, np.sin(yaw / 2)], axis=1)
    w1, x1, y1, z1 = q_yaw.T
    w2, x2, y2, z2 = q_tilt.T
    quat = np.stack([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2], axis=1)
    return {
        "pos": np.stack([rng.uniform(-1, 1, n), rng.uniform(-1, 1, n), rng.uniform(0.22, 0.40, n)], axis=1),
        "quat": quat,
        "q": np.asarray(model.default_q) + rng.uniform(-0.4, 0.4, (n, 12)),
        "v": rng.normal(size=(n, 3)) * 1.5,
        "w": rng.normal(size=(n, 3)) * 3.0,
        "qd": rng.normal(size=(n, 12)) * 5.0,
    }


def _quadlit_observations(model, s: dict[str, np.ndarray]) -> np.ndarray:
    """quadlit's observations of states ``s``: its contact flags come from its own contact stage
    (a one-substep physics step from the state: the flags describe the state the substep started
    from), the rest from the state itself, written by the task's ``write_obs``."""
    n = len(s["pos"])
    st = PhysicsState.allocate(n)
    st.base_pos[:] = s["pos"]
    st.base_quat[:] = s["quat"]
    st.joint_pos[:] = s["q"]
    st.base_lin_vel[:] = s["v"]
    st.base_ang_vel[:] = s["w"]
    st.joint_vel[:] = s["qd"]
    stepped = st.copy()
    assert physics_step(model, SimParams(substeps=1), EnvParams.allocate(n), stepped, np.zeros((n, 12))) == 0
    st.foot_contact[:] = stepped.foot_contact
    p = kernel_params(BalanceParams(), float(model.standing_height), float(model.nominal_height))
    ts = kernels.TaskState.allocate(n)
    obs = np.zeros((n, kernels.OBS_DIM), np.float32)
    for i in range(n):
        kernels.write_obs(model, st, ts, p, i, obs[i])
    return obs


def _mujoco_observations(model, s: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The observations ``quadlit sim2sim`` builds from MuJoCo's data for states ``s``, and the
    foot heights MuJoCo computed."""
    mm = mujoco.MjModel.from_xml_string(to_mjcf(model, SimParams(), sensors=True))
    d = mujoco.MjData(mm)
    n = len(s["pos"])
    qpos = np.concatenate([s["pos"], s["quat"], s["q"]], axis=1)
    qvel = np.concatenate([s["v"], s["w"], s["qd"]], axis=1)
    foot_z = np.zeros((n, 4))
    for i in range(n):
        d.qpos[:], d.qvel[:] = qpos[i], qvel[i]
        mujoco.mj_forward(mm, d)
        foot_z[i] = d.sensordata[SENSOR_LAYOUT["foot_pos"]].reshape(4, 3)[:, 2]
    return mujoco_observation(model, qpos, qvel, foot_z), foot_z


def test_observation_from_mujoco_equals_quadlits_from_identical_states():
    model = a1_model()
    s = _random_states(model, 400, seed=7)
    feet = forward_kinematics(model, s["pos"], s["quat"], s["q"])[:, :, 3, 2]
    keep = np.abs(feet - model.foot_radius).min(axis=1) > FLAG_MARGIN
    s = {k: v[keep] for k, v in s.items()}
    ours = _quadlit_observations(model, s)
    theirs, foot_z = _mujoco_observations(model, s)
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-6)
    np.testing.assert_allclose(foot_z, feet[keep], rtol=0, atol=1e-9)  # the two engines' kinematics
    contacts = ours[:, 33:37]
    touching = contacts.sum(axis=1)
    # every contact state is exercised: no foot, some feet, all feet; the velocities are not small
    assert (touching == 0).sum() > 20 and ((touching > 0) & (touching < 4)).sum() > 20 and (touching == 4).sum() > 5
    assert np.abs(ours[:, 3:6]).max() > 2.0 and np.abs(ours[:, 0:2]).max() > 0.4


@pytest.mark.parametrize("penetration", [1e-9, -1e-9])
def test_contact_flags_agree_within_a_nanometre_of_the_ground(penetration):
    """Both engines flag a foot whose sphere dips below the ground; their forward kinematics
    agree to about 1e-16 m, so the flags differ only for a foot within rounding of the surface.
    Level trunk, default pose, every foot ``penetration`` m into the ground (negative: above)."""
    model = a1_model()
    one = lambda a: np.asarray(a, dtype=np.float64)[None]  # noqa: E731
    feet = forward_kinematics(model, np.zeros((1, 3)), one([1.0, 0, 0, 0]), one(model.default_q))[0, :, 3, 2]
    height = model.foot_radius - feet.mean() - penetration
    s = {"pos": one([0.0, 0.0, height]), "quat": one([1.0, 0.0, 0.0, 0.0]), "q": one(model.default_q),
         "v": np.zeros((1, 3)), "w": np.zeros((1, 3)), "qd": np.zeros((1, 12))}
    expected = 1.0 if penetration > 0 else 0.0
    assert np.all(_quadlit_observations(model, s)[0, 33:37] == expected)
    assert np.all(_mujoco_observations(model, s)[0][0, 33:37] == expected)


# ---- the command ------------------------------------------------------------------------------
BALANCE_TINY = [*TINY, "--trainer.max_epochs", "1", "--data.task", "balance", "--data.balance.max_steps", "30",
                "--data.eval_episodes", "2"]


@pytest.fixture(scope="module")
def balance_checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("sim2sim_run")
    assert main(["fit", *BALANCE_TINY, "--trainer.default_root_dir", str(root)]) == 0
    return next(root.rglob("last.ckpt"))


def _rows(out: str) -> dict[str, list[float]]:
    """The table's rows: name -> six values (survival percentages, gap points)."""
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] in ("quadlit", "MuJoCo"):
            rows[parts[0]] = [float(v.rstrip("%")) for v in parts[1:]]
        elif line.strip().startswith("gap"):
            rows["gap"] = [float(v) for v in parts[2:]]
    return rows


def test_tiny_run_policy_end_to_end(balance_checkpoint, tmp_path, capsys):
    plot, logs = tmp_path / "curve.png", tmp_path / "tb"
    capsys.readouterr()
    code = main(["sim2sim", "--ckpt_path", str(balance_checkpoint), "--episodes", "2", "--max_steps", "150",
                 "--threads", "2", "--plot", str(plot), "--log_dir", str(logs)])
    out = capsys.readouterr().out
    assert code == 0, out
    rows = _rows(out)
    assert set(rows) == {"quadlit", "MuJoCo", "gap"}, out
    assert all(len(v) == 6 for v in rows.values())
    # 2 episodes per magnitude: survival is 0, 50 or 100 %; the gap is MuJoCo minus quadlit
    assert all(v in (0.0, 50.0, 100.0) for v in rows["quadlit"] + rows["MuJoCo"])
    assert rows["gap"] == [m - q for m, q in zip(rows["MuJoCo"], rows["quadlit"])]
    assert plot.stat().st_size > 1000
    assert list(logs.glob("events.out.tfevents.*"))


def test_exported_onnx_policy_gives_the_checkpoints_table(balance_checkpoint, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    onnx = tmp_path / "policy.onnx"
    assert main(["export", "--ckpt_path", str(balance_checkpoint), "--out", str(onnx)]) == 0
    args = ["--episodes", "2", "--max_steps", "150", "--plot", ""]
    capsys.readouterr()
    assert main(["sim2sim", "--ckpt_path", str(balance_checkpoint), *args]) == 0
    from_checkpoint = _rows(capsys.readouterr().out)
    assert main(["sim2sim", "--onnx", str(onnx), *args]) == 0
    out = capsys.readouterr().out
    assert "ONNX policy.onnx" in out
    assert _rows(out) == from_checkpoint  # the same policy (to float32 rounding) on the same episodes


def test_zero_policy_survives_small_pushes_in_both_engines(capsys):
    """Holding the default pose (no checkpoint): every episode survives 150 steps (3 s, one push
    at most) of 0.5 m/s pushes in both engines: the exported robot stands in MuJoCo."""
    assert main(["sim2sim", "--policy", "zero", "--episodes", "2", "--max_steps", "150", "--plot", ""]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows["quadlit"][0] == 100.0 and rows["MuJoCo"][0] == 100.0


def test_stiff_friction_option_of_the_export():
    """``--friction stiff`` / ``export-mjcf --stiff-friction``: elliptic cone, impratio 100; the
    default export keeps MuJoCo's pyramidal cone."""
    stiff = mujoco.MjModel.from_xml_string(to_mjcf(a1_model(), SimParams(), stiff_friction=True))
    plain = mujoco.MjModel.from_xml_string(to_mjcf(a1_model(), SimParams()))
    assert stiff.opt.cone == mujoco.mjtCone.mjCONE_ELLIPTIC and stiff.opt.impratio == 100.0
    assert plain.opt.cone == mujoco.mjtCone.mjCONE_PYRAMIDAL and plain.opt.impratio == 1.0


def _one_line_error(capsys, argv: list[str], needle: str) -> None:
    capsys.readouterr()
    assert main(["sim2sim", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("quadlit: error:") and needle in err, err


def test_bad_input_is_one_line(balance_checkpoint, tmp_path, capsys, monkeypatch):
    _one_line_error(capsys, ["--ckpt_path", str(tmp_path / "missing.ckpt")], "no checkpoint file")
    _one_line_error(capsys, ["--onnx", str(tmp_path / "missing.onnx")], "no file")
    _one_line_error(capsys, ["--ckpt_path", str(balance_checkpoint), "--policy", "zero"], "exactly one")
    _one_line_error(capsys, ["--ckpt_path", str(balance_checkpoint), "--episodes", "0"], "--episodes")
    _one_line_error(capsys, ["--bogus"], "--bogus")
    reach = tmp_path / "reach"
    assert main(["fit", "--config", str(REPO / "configs/reach.yaml"), *TINY, "--trainer.max_epochs", "1",
                 "--trainer.check_val_every_n_epoch", "5", "--trainer.default_root_dir", str(reach)]) == 0
    _one_line_error(capsys, ["--ckpt_path", str(next(reach.rglob("last.ckpt")))], "task 'reach'")
    monkeypatch.setitem(sys.modules, "mujoco", None)  # as if MuJoCo were not installed
    _one_line_error(capsys, ["--ckpt_path", str(balance_checkpoint)], "pip install 'quadlit[mujoco]'")


# ---- trunk, knee and shank contacts of the exported robot ---------------------------------------
@pytest.mark.parametrize("body_contacts", [True, False])
def test_limp_robot_dropped_in_mujoco_lies_on_the_floor_with_body_contacts(body_contacts):
    """No motors, dropped level from 0.5 m: with ``body_contacts`` the trunk comes to rest on the
    floor (its lowest corner within MuJoCo's soft penetration of it), without them it sinks
    through (quadlit's engine: ``tests/physics/test_body_contacts.py``)."""
    model = a1_model()
    mm = mujoco.MjModel.from_xml_string(to_mjcf(model, SimParams(), actuators="none", sensors=True,
                                                body_contacts=body_contacts))
    d = mujoco.MjData(mm)
    d.qpos[:] = np.concatenate([[0.0, 0.0, 0.5, 1.0, 0.0, 0.0, 0.0], model.default_q])
    for _ in range(3000):  # 3 s
        mujoco.mj_step(mm, d)
    w, x, y, z = d.qpos[3:7]
    hx, hy, hz = model.trunk_half_extents
    lowest = d.qpos[2] - (abs(2 * (x * z - w * y)) * hx + abs(2 * (y * z + w * x)) * hy
                          + abs(1 - 2 * (x * x + y * y)) * hz)
    if body_contacts:
        assert -0.01 < lowest < 0.2 and d.qpos[2] > 0.0
        assert np.abs(d.qvel[:6]).max() < 0.05  # at rest
    else:
        assert d.qpos[2] < -0.1  # fell through the floor


def test_too_many_episodes_for_memory_names_episodes(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _one_line_error(capsys, ["--policy", "zero", "--episodes", "100000000000"], "lower --episodes")
    assert not any(tmp_path.iterdir())
