"""``quadlit export``: the ONNX policy matches the PyTorch policy step by step (LSTM state and
episode resets included), the JSON sidecar describes it, bad input is a one-line error."""

import importlib.util
import json
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
import torch

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from quadlit.cli import main as cli_main  # noqa: E402
from quadlit.envs.pool import ShardPool  # noqa: E402
from quadlit.export import INPUT_NAMES, OUTPUT_NAMES, main as export_main  # noqa: E402
from quadlit.tasks import make_task  # noqa: E402
from quadlit.training.checkpoint import load_run  # noqa: E402
from tests.tiny import REPO, TINY as BASE_TINY  # noqa: E402

TINY = [*BASE_TINY, "--trainer.max_epochs", "1"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export_run")
    assert cli_main(["fit", "--config", str(REPO / "configs/reach.yaml"), *TINY,
                     "--trainer.default_root_dir", str(root)]) == 0
    (ckpt,) = root.rglob("last.ckpt")
    return ckpt


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exported") / "policy.onnx"
    assert export_main(["--ckpt_path", str(checkpoint), "--format", "onnx", "--out", str(out)]) == 0
    return out


def test_onnx_matches_pytorch_policy_over_200_steps_with_resets(checkpoint, exported):
    run = load_run(checkpoint)
    policy, obs_norm = run.module.policy, run.module.obs_norm
    assert obs_norm.enabled and obs_norm.count > 0  # the normalisation is really exercised
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    n, hidden = 5, policy.lstm_hidden  # a batch size the export never saw
    pool = ShardPool(1)
    task = make_task(run.task_name, n, run.task_params, seed=3, pool=pool)
    obs = task.reset(3).copy()
    h = np.zeros((n, hidden), np.float32)
    c = np.zeros((n, hidden), np.float32)
    state = policy.initial_state(n)
    start = np.ones(n, np.float32)
    episode_ends = 0
    worst = {"action": 0.0, "value": 0.0, "state": 0.0}
    for step in range(200):
        if step == 100:
            start[:2] = 1.0  # an explicit reset of two environments mid-episode
        action, value, h, c = session.run(None, {"obs": obs, "h": h, "c": c, "episode_start": start})
        with torch.no_grad():
            t_action, _, _, t_value, state = policy.act(obs_norm(torch.from_numpy(obs)), state,
                                                        torch.from_numpy(start), deterministic=True)
        worst["action"] = max(worst["action"], float(np.abs(action - t_action.numpy()).max()))
        worst["value"] = max(worst["value"], float(np.abs(value - t_value.numpy()).max()))
        worst["state"] = max(worst["state"], float(np.abs(h - state[0].numpy()).max()),
                             float(np.abs(c - state[1].numpy()).max()))
        result = task.step(action)
        obs = result.obs.copy()
        start = result.done.astype(np.float32)
        episode_ends += int(result.done.sum())
    task.close()
    pool.close()
    assert episode_ends == n * (200 // 40)  # reach.max_steps = 40: four resets per environment
    assert np.abs(h).max() > 1e-3  # the state is carried, not zero
    assert worst["action"] < 1e-5 and worst["value"] < 1e-5 and worst["state"] < 1e-5, worst


def test_onnx_interface_and_episode_start_zeroes_the_state(exported):
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == list(INPUT_NAMES)
    assert [o.name for o in session.get_outputs()] == list(OUTPUT_NAMES)
    assert all(i.type == "tensor(float)" for i in session.get_inputs())
    assert all(not isinstance(i.shape[0], int) for i in session.get_inputs())  # dynamic batch
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (1, 7)).astype(np.float32)
    h = rng.normal(size=(1, 16)).astype(np.float32)
    c = rng.normal(size=(1, 16)).astype(np.float32)
    zeros = np.zeros((1, 16), np.float32)
    fresh = session.run(None, {"obs": obs, "h": zeros, "c": zeros, "episode_start": np.zeros(1, np.float32)})
    reset = session.run(None, {"obs": obs, "h": h, "c": c, "episode_start": np.ones(1, np.float32)})
    kept = session.run(None, {"obs": obs, "h": h, "c": c, "episode_start": np.zeros(1, np.float32)})
    for x, y in zip(fresh, reset):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(kept[0], fresh[0])
    assert fresh[0].shape == (1, 3) and fresh[1].shape == (1,) and np.abs(fresh[0]).max() < 1


def test_sidecar_describes_the_policy(checkpoint, exported):
    meta = json.loads(exported.with_suffix(".json").read_text())
    run = load_run(checkpoint)
    assert meta["model_file"] == "policy.onnx"
    assert meta["quadlit_version"] == version("quadlit")
    assert meta["task"] == "reach" and meta["task_params"]["max_steps"] == 40
    assert meta["task_params"] == vars(run.task_params)
    assert (meta["obs_dim"], meta["action_dim"], meta["lstm_hidden"]) == (7, 3, 16)
    assert meta["control_dt"] == pytest.approx(0.05) and meta["control_rate_hz"] == pytest.approx(20.0)
    assert list(meta["inputs"]) == list(INPUT_NAMES) and list(meta["outputs"]) == list(OUTPUT_NAMES)
    assert meta["inputs"]["h"]["shape"] == ["batch", 16]
    layout = meta["observation"]
    assert sum(s["dim"] for s in layout["segments"]) == 7 and layout["description"]
    norm = layout["normalization"]
    assert norm["included_in_model"] is True and norm["clip"] == 10.0
    np.testing.assert_allclose(norm["mean"], run.module.obs_norm.mean.numpy())
    action = meta["action"]
    assert (action["low"], action["high"], action["dim"]) == (-1.0, 1.0, 3)
    assert "tanh" in action["deterministic"] and "jump" in action["meaning"]
    assert meta["reward_terms"][0] == "progress" and "goals" in meta["episode_metrics"]


def test_default_output_is_next_to_the_checkpoint(checkpoint, tmp_path):
    ckpt = tmp_path / "run.ckpt"
    ckpt.write_bytes(checkpoint.read_bytes())
    assert cli_main(["export", "--ckpt_path", str(ckpt)]) == 0
    assert (tmp_path / "run.onnx").is_file() and (tmp_path / "run.json").is_file()


def _one_line_error(capsys, argv, needle):
    capsys.readouterr()
    assert cli_main(["export", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("quadlit: error:") and needle in err, err
    assert "Traceback" not in err


def test_bad_input_is_a_one_line_error(checkpoint, tmp_path, capsys):
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(checkpoint.read_bytes()[:2000])
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    _one_line_error(capsys, ["--ckpt_path", str(tmp_path / "missing.ckpt")], "no checkpoint file")
    _one_line_error(capsys, ["--ckpt_path", str(truncated)], "not a readable quadlit checkpoint")
    _one_line_error(capsys, ["--ckpt_path", str(foreign)], "not a quadlit training checkpoint")
    _one_line_error(capsys, ["--ckpt_path", str(checkpoint), "--format", "tflite"], "unknown format 'tflite'")
    _one_line_error(capsys, ["--format", "onnx"], "--ckpt_path")
    _one_line_error(capsys, ["--ckpt_path", str(checkpoint), "--out", str(tmp_path / "p.json")], "--out")
    _one_line_error(capsys, ["--ckpt_path", str(checkpoint), "--bogus"], "--bogus")
    assert not list(tmp_path.glob("*.onnx"))


def test_missing_exporter_packages_say_how_to_install(checkpoint, tmp_path, capsys, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "onnxscript" else real_find_spec(name, *args))
    _one_line_error(capsys, ["--ckpt_path", str(checkpoint), "--out", str(tmp_path / "p.onnx")], "quadlit[export]")


def test_output_never_replaces_the_checkpoint_or_a_file_export_did_not_write(checkpoint, tmp_path, capsys):
    ckpt = tmp_path / "run.ckpt"
    ckpt.write_bytes(checkpoint.read_bytes())
    other = tmp_path / "other.ckpt"
    other.write_bytes(b"another run's checkpoint")
    notes = tmp_path / "notes.yaml"
    notes.write_text("model:\n  lr: 0.001\n")
    stranger = tmp_path / "stranger.json"  # the sidecar name of --out stranger.onnx
    stranger.write_text('{"mine": true}\n')
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    _one_line_error(capsys, ["--ckpt_path", str(ckpt), "--out", str(ckpt)], "input")
    _one_line_error(capsys, ["--ckpt_path", str(ckpt), "--out", str(tmp_path / "." / "run.ckpt")], "input")
    _one_line_error(capsys, ["--ckpt_path", str(ckpt), "--out", str(other)], "already exists")
    _one_line_error(capsys, ["--ckpt_path", str(ckpt), "--out", str(notes)], "already exists")
    _one_line_error(capsys, ["--ckpt_path", str(ckpt), "--out", str(tmp_path / "stranger.onnx")], "stranger.json")
    _one_line_error(capsys, ["--ckpt_path", str(ckpt), "--out", str(tmp_path)], "is a folder")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    # an earlier export of the same name is replaced, atomically (no temporary file is left)
    out = tmp_path / "policy.onnx"
    assert cli_main(["export", "--ckpt_path", str(ckpt), "--out", str(out)]) == 0
    assert cli_main(["export", "--ckpt_path", str(ckpt), "--out", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*before, "policy.onnx", "policy.json"])
