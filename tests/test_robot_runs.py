"""A run on an imported robot, end to end through the command line (``data.balance.robot``):
the checkpoint carries the robot, so the run's tools and its continuation work after the robot's
file is gone; continuing with another robot, and robot files that cannot be imported, are
refused in one line with nothing written."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("mujoco")

from quadlit.cli import main  # noqa: E402
from quadlit.tasks.balance.robots import _registered  # noqa: E402
from tests.tiny import REPO, TINY  # noqa: E402

ROBOTS = Path(__file__).parent / "physics" / "robots"
# the shipped default config, shrunk: an epoch of 2 iterations of 8 steps on 8 robots, 30-step episodes
TINY_BALANCE = [arg for k, arg in enumerate(TINY) if "data.reach." not in arg and "data.reach." not in TINY[k - 1]]
BALANCE = ["--config", str(REPO / "configs/balance.yaml"), *TINY_BALANCE, "--trainer.max_epochs", "1",
           "--data.balance.max_steps", "30", "--data.eval_episodes", "2", "--trainer.max_time", "null",
           "--trainer.precision", "32-true"]
ROBOT_OPTIONS = ["--data.balance.robot_kp", "[60, 80, 80]", "--data.balance.robot_kd", "1.5"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run on a copy of rotated_quadruped.xml, then the copy deleted: (root, checkpoint, path)."""
    root = tmp_path_factory.mktemp("robot_run")
    robot = root / "robot" / "quadruped.xml"
    robot.parent.mkdir()
    shutil.copy(ROBOTS / "rotated_quadruped.xml", robot)
    assert main(["fit", *BALANCE, "--data.balance.robot", str(robot), *ROBOT_OPTIONS,
                 "--trainer.default_root_dir", str(root)]) == 0
    (ckpt,) = root.rglob("last.ckpt")
    shutil.rmtree(robot.parent)
    _registered.clear()  # a new process knows nothing of the robot but what the checkpoint holds
    return root, ckpt, robot


def test_the_checkpoint_carries_the_robot_record(run):
    _, ckpt, robot = run
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["RolloutDataModule"]
    saved = state["task_extras"]
    assert saved["robot"]["source"] == str(robot.resolve())
    assert saved["robot"]["model"]["kp"] == [60.0, 80.0, 80.0] * 4
    assert len(saved["digest"]) == 64 and "<mujoco" in saved["robot"]["mjcf"]


def test_tools_work_when_the_robot_file_is_gone(run, tmp_path, capsys):
    root, ckpt, robot = run
    assert not robot.exists()
    onnx = tmp_path / "policy.onnx"
    assert main(["export", "--ckpt_path", str(ckpt), "--out", str(onnx)]) == 0
    meta = json.loads(onnx.with_suffix(".json").read_text())
    law = meta["control_law"]
    assert law["robot"] == "rotated_quadruped" and law["kp"] == [60.0, 80.0, 80.0] * 4
    assert law["torque_limit"] == [20.0, 20.0, 36.0] * 4 and len(law["default_pose"]) == 12
    assert law["file_joints"][:3] == ["leg_b_abd", "leg_b_flex", "leg_b_knee"]
    assert "value" not in meta["outputs"]  # the default config's critic is privileged: not exported
    capsys.readouterr()
    _registered.clear()
    assert main(["sim2sim", "--ckpt_path", str(ckpt), "--episodes", "1", "--max_steps", "40", "--threads", "1",
                 "--plot", ""]) == 0
    out = capsys.readouterr().out
    assert "is gone or changed" in out and "MuJoCo" in out
    _registered.clear()
    assert main(["sim2sim", "--onnx", str(onnx), "--episodes", "1", "--max_steps", "40", "--threads", "1",
                 "--plot", ""]) == 0  # the sidecar carries the robot too
    _registered.clear()
    assert main(["validate", *BALANCE, "--data.balance.robot", str(robot), *ROBOT_OPTIONS, "--ckpt_path", str(ckpt),
                 "--trainer.default_root_dir", str(root)]) == 0


def test_a_run_continues_on_its_robot_after_the_file_is_gone(run):
    root, ckpt, robot = run
    before = torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"]
    _registered.clear()
    assert main(["fit", *BALANCE, "--data.balance.robot", str(robot), *ROBOT_OPTIONS, "--ckpt_path", str(ckpt),
                 "--trainer.max_epochs", "2", "--trainer.default_root_dir", str(root)]) == 0
    saved = [torch.load(p, map_location="cpu", weights_only=True) for p in root.rglob("last.ckpt")]
    after = max(saved, key=lambda c: c["global_step"])  # the continued run's newest checkpoint
    assert after["global_step"] > before > 0
    assert after["RolloutDataModule"]["task_extras"]["robot"]["name"] == "rotated_quadruped"


def _one_line(capsys, argv, needle) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err
    return err


def test_continuing_with_another_robot_is_refused_in_one_line(run, tmp_path, capsys):
    root, ckpt, _ = run
    before = sorted(str(p) for p in root.rglob("*"))
    _registered.clear()
    _one_line(capsys, ["fit", *BALANCE, "--data.balance.robot", str(ROBOTS / "small_quadruped.urdf"),
                       "--data.balance.robot_kp", "30", "--data.balance.robot_kd", "0.8",
                       "--data.balance.robot_pose", "[0, 0.8, -1.5]", "--ckpt_path", str(ckpt),
                       "--trainer.default_root_dir", str(root)], "trained on robot 'rotated_quadruped'")
    _one_line(capsys, ["fit", *BALANCE, "--ckpt_path", str(ckpt), "--trainer.default_root_dir", str(root)],
              "the built-in A1")
    assert sorted(str(p) for p in root.rglob("*")) == before


@pytest.mark.parametrize("options,needle", [
    (["--data.balance.robot", "/no/such/robot.xml"], "no such file"),
    (["--data.balance.robot", str(ROBOTS / "rotated_quadruped.xml")], "give the PD gains"),
    (["--data.balance.robot", str(ROBOTS / "rotated_quadruped.xml"), *ROBOT_OPTIONS, "--data.balance.min_height",
      "0.45"], "min_height must be below the height"),
    (["--data.balance.robot_kp", "50"], "robot_kp is for an imported robot"),
])
def test_bad_robot_options_are_one_line_and_write_nothing(options, needle, tmp_path, capsys):
    _one_line(capsys, ["fit", *BALANCE, *options, "--trainer.default_root_dir", str(tmp_path)], needle)
    assert not any(tmp_path.iterdir())


def test_the_builtin_a1_refuses_a_min_height_above_its_standing_height(tmp_path, capsys):
    """Issue 32's case: 0.45 m passed the static bound but every episode failed in one step."""
    _one_line(capsys, ["fit", *BALANCE, "--data.balance.min_height", "0.45", "--trainer.default_root_dir",
                       str(tmp_path)], "min_height must be below the height the robot a1 stands at")
    assert not any(tmp_path.iterdir())


def test_imported_robot_stands_in_the_task_as_in_mujoco():
    """The balance task on an imported robot resets it to the robot's own standing pose and
    height, and holding still it settles at the height MuJoCo settled it at."""
    from quadlit.tasks.balance import BalanceParams, BalanceTask

    params = BalanceParams(robot=str(ROBOTS / "rotated_quadruped.xml"), robot_kp=[60, 80, 80], robot_kd=1.5,
                           push_interval_min=100.0, push_interval_max=100.0, reset_tilt=0.0, reset_joint_noise=0.0,
                           reset_velocity_noise=0.0, reset_height_noise=0.0, added_mass_min=0.0, added_mass_max=0.0,
                           motor_strength_min=1.0, gain_scale_min=1.0, motor_strength_max=1.0, gain_scale_max=1.0)
    task = BalanceTask(2, params, seed=0)
    try:
        model = task.model
        np.testing.assert_allclose(task.physics.joint_pos, np.tile(model.default_q, (2, 1)))
        for _ in range(100):  # 2 s of zero actions: hold the pose
            result = task.step(np.zeros((2, 12), np.float32))
            assert not result.terminated.any()
        np.testing.assert_allclose(task.physics.base_pos[:, 2], model.nominal_height, atol=0.003)
        assert task._p.height_target == model.nominal_height
        # drawn where it collides: the trunk box of this robot is off its trunk origin
        assert np.any(model.trunk_box_center != 0)
        np.testing.assert_array_equal(task.render_frame(0).trunk_box_center, model.trunk_box_center)
    finally:
        task.close()


def test_without_mujoco_the_import_names_the_install(monkeypatch, tmp_path, capsys):
    """MuJoCo is an extra: without it, a robot file is refused in one line naming the install."""
    import sys

    from quadlit.tasks.balance import robots

    monkeypatch.setitem(sys.modules, "mujoco", None)  # import mujoco -> ImportError
    monkeypatch.setattr(robots, "_imported", {})
    err = _one_line(capsys, ["fit", *BALANCE, "--data.balance.robot", str(ROBOTS / "rotated_quadruped.xml"),
                             *ROBOT_OPTIONS, "--trainer.default_root_dir", str(tmp_path)], "needs MuJoCo")
    assert "pip install 'quadlit[mujoco]'" in err
    assert not any(tmp_path.iterdir())
