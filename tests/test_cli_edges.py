"""The edges of the command line: whole classes of error (Lightning's configuration errors,
output paths that cannot be written, memory exhaustion) are one line on stderr, exit status 2,
and leave nothing behind; Ctrl-C, evaluation without a checkpoint, and the silent cases of
issue 14 (union-typed fields, empty configs, NaN actions, too many minibatches). The table of
bad options is tests/test_cli_bad_inputs.py."""

import os
from pathlib import Path

import pytest
import torch

from quadlit.cli import main
from tests.tiny import REPO, TINY


def _fit_args(root: Path, *extra: str) -> list[str]:
    return ["fit", "--config", str(REPO / "configs/reach.yaml"), *TINY, "--trainer.max_epochs", "1",
            "--trainer.default_root_dir", str(root), *extra]


def _files(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


def _assert_one_line(capsys, code: int, needle: str) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("quadlit: error:") and needle in err, err
    return err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_gpu_accelerator_without_a_gpu(tmp_path, capsys):
    _assert_one_line(capsys, main(_fit_args(tmp_path / "out", "--trainer.accelerator", "gpu")), "gpu")
    assert _files(tmp_path) == []


def test_root_dir_that_is_a_file(tmp_path, capsys):
    root = tmp_path / "out"
    root.write_text("not a directory")
    _assert_one_line(capsys, main(_fit_args(root)), "default_root_dir")
    assert _files(tmp_path) == ["out"] and root.read_text() == "not a directory"


def test_root_dir_below_a_file(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    _assert_one_line(capsys, main(_fit_args(tmp_path / "file" / "runs")), "is a file")
    assert _files(tmp_path) == ["file"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_root_dir(tmp_path, capsys):
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o555)
    try:
        _assert_one_line(capsys, main(_fit_args(root)), "cannot write")
        assert _files(root) == []
    finally:
        root.chmod(0o755)


def test_unwritable_root_dir_is_refused_before_anything_is_built(tmp_path, capsys, monkeypatch):
    # root ignores permission bits, so the check is shown an unwritable directory instead
    import quadlit.cli as cli

    real_access = os.access
    monkeypatch.setattr(cli.os, "access", lambda path, mode: False if Path(path) == tmp_path else real_access(path, mode))
    _assert_one_line(capsys, main(_fit_args(tmp_path / "runs")), f"cannot write to {tmp_path}")
    assert _files(tmp_path) == []


def test_root_dir_that_cannot_be_created(tmp_path, capsys):
    # /proc accepts no new directories, not even from root: the OSError comes from Lightning's
    # logger and is caught at the edge
    _assert_one_line(capsys, main(_fit_args(Path("/proc/quadlit-no-such-dir/runs"))), "/proc/quadlit-no-such-dir")


def test_memory_exhausted_while_building_environments_leaves_no_run_dir(tmp_path, capsys, monkeypatch):
    import quadlit.training.data as data_mod

    def exhausted(*args, **kwargs):
        raise MemoryError("Unable to allocate 26.1 GiB for an array with shape (1000000000, 7)")

    monkeypatch.setattr(data_mod, "make_task", exhausted)
    root = tmp_path / "out"
    _assert_one_line(capsys, main(_fit_args(root)), "out of memory")
    assert _files(tmp_path) == []  # Lightning had created version_0 and an events file: removed


def test_memory_exhausted_keeps_a_root_dir_that_existed(tmp_path, capsys, monkeypatch):
    import quadlit.training.data as data_mod

    monkeypatch.setattr(data_mod, "make_task", lambda *a, **k: (_ for _ in ()).throw(MemoryError("no memory")))
    (tmp_path / "lightning_logs" / "version_0").mkdir(parents=True)
    (tmp_path / "lightning_logs" / "version_0" / "keep.txt").write_text("an earlier run")
    _assert_one_line(capsys, main(_fit_args(tmp_path)), "out of memory")
    assert _files(tmp_path) == ["lightning_logs", "lightning_logs/version_0", "lightning_logs/version_0/keep.txt"]


def test_disk_full_names_the_run_and_the_intact_checkpoint(tmp_path, capsys, monkeypatch):
    import errno

    from quadlit.training.checkpoint import AtomicCheckpointIO

    real_save = AtomicCheckpointIO.save_checkpoint

    def save_until_full(self, checkpoint, path, storage_options=None):
        if (Path(path).parent / "last.ckpt").exists():  # the disk fills up after the first epoch's checkpoints
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(self, checkpoint, path, storage_options)

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", save_until_full)
    root = tmp_path / "out"
    err = _assert_one_line(capsys, main(_fit_args(root, "--trainer.max_epochs", "2", "--trainer.check_val_every_n_epoch",
                                                  "100")), "no space left on device")
    (last,) = root.rglob("last.ckpt")
    step = torch.load(last, weights_only=True)["global_step"]
    assert step > 0 and f"the previous checkpoint {last} (step {step}) is intact" in err, err
    assert f"writing {last.parents[1]}" in err and f"--ckpt_path {last}" in err, err


def test_export_mjcf_into_a_missing_directory(tmp_path, capsys):
    out = tmp_path / "missing" / "a1.xml"
    _assert_one_line(capsys, main(["export-mjcf", "--out", str(out)]), str(out))
    assert _files(tmp_path) == []


def test_training_with_checkpointing_off_writes_no_checkpoint(tmp_path, capsys):
    assert main(_fit_args(tmp_path, "--trainer.enable_checkpointing", "false")) == 0
    assert list(tmp_path.rglob("*.ckpt")) == []
    assert len(list(tmp_path.rglob("config.yaml"))) == 1


def test_ctrl_c_during_fit_exits_130_naming_the_checkpoint(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    # the child starts as from a shell: Ctrl-C at its default disposition. An ignored SIGINT is
    # inherited across exec, and Lightning sets SIGINT to "ignore" in a process whose fit it shut
    # down after an interrupt, so an earlier in-process test could leave this pytest process
    # ignoring it (suspected cause of this test hanging in 2 of 2 full fresh-clone CI runs while
    # passing alone; not confirmed). Also without a display (no evaluation videos, which flooded
    # stderr with Mesa's XDG_RUNTIME_DIR complaints in those runs).
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    proc = subprocess.Popen([sys.executable, "-m", "quadlit.cli", *_fit_args(tmp_path, "--trainer.max_epochs", "1000")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        start = time.monotonic()
        while not list(tmp_path.rglob("last.ckpt")):
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() - start < 300
            time.sleep(0.02)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            raise AssertionError(f"still running 120 s after Ctrl-C; its stderr:\n{err[-3000:]}") from None
    finally:
        if proc.poll() is None:  # never leave a training process behind
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    notes = [line for line in err.splitlines() if "interrupted" in line]
    assert len(notes) == 1 and err.strip().splitlines()[-1] == notes[0], err
    last = tmp_path / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    assert notes[0].endswith(f"continue with --ckpt_path {last}"), notes[0]
    assert torch.load(last, weights_only=True)["global_step"] > 0


@pytest.mark.parametrize("command", ["validate", "test"])
def test_evaluating_without_a_checkpoint_needs_untrained(tmp_path, capsys, command):
    args = _fit_args(tmp_path / "out")
    args[0] = command
    _assert_one_line(capsys, main(args), "--untrained")
    assert _files(tmp_path) == []
    assert main([*args, "--untrained"]) == 0  # said on purpose: the newly initialised policy is scored
    assert {"validate": "eval/", "test": "test/"}[command] in capsys.readouterr().out


def test_untrained_is_refused_by_fit(tmp_path, capsys):
    _assert_one_line(capsys, main(_fit_args(tmp_path / "out", "--untrained")), "--untrained")
    assert _files(tmp_path) == []


UNION_FIELDS = [
    ("--data.num_envs", "lots", "must be int or 'auto', got 'lots'"),
    ("--model.desired_kl", "abc", "must be float or null, got 'abc'"),
    ("--data.physics_threads", "many", "must be int or null, got 'many'"),
    ("--model.policy_average", "nan", "must be a finite number or null, got 'nan'"),
]


@pytest.mark.parametrize("flag,value,reason", UNION_FIELDS, ids=[f for f, _, _ in UNION_FIELDS])
def test_a_union_typed_field_keeps_the_reason(tmp_path, capsys, flag, value, reason):
    err = _assert_one_line(capsys, main(_fit_args(tmp_path / "out", flag, value)), flag[2:])
    assert err.endswith(reason), err
    assert _files(tmp_path) == []


@pytest.mark.parametrize("content,needle", [("", "is empty"), ("# only a comment\n", "is empty"),
                                            ("- a\n- b\n", "got a list"),
                                            # a section that is not a mapping was an AttributeError
                                            # traceback (issue 32, second pass: docs/user_paths.md)
                                            ("model: 5\n", "model: must be a mapping"),
                                            ("trainer: [1, 2]\n", "trainer: must be a mapping"),
                                            ("data: fast\n", "data: must be a mapping"),
                                            ("data:\n  task: balance\n  balance: 3\n",
                                             "data.balance: must be a mapping")])
def test_a_config_file_that_is_not_a_mapping(tmp_path, capsys, content, needle):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(content)
    err = _assert_one_line(capsys, main(["fit", "--config", str(cfg), "--trainer.default_root_dir",
                                         str(tmp_path / "out")]), needle)
    assert str(cfg) in err
    assert _files(tmp_path) == ["c.yaml"]


def test_non_finite_actions_are_logged_as_a_metric(tmp_path, monkeypatch):
    from lightning.pytorch.callbacks import Callback

    from quadlit.cli import run_cli
    from quadlit.models.entity_belief import EntityBelief

    real_act = EntityBelief.act

    def act_with_a_nan(self, obs, *args, **kwargs):
        action, *rest = real_act(self, obs, *args, **kwargs)
        if obs.shape[0] == 8:  # collection steps (not the values of final observations)
            action = action.clone()
            action[0, 0] = float("nan")
        return (action, *rest)

    monkeypatch.setattr(EntityBelief, "act", act_with_a_nan)
    counts = []

    class Record(Callback):
        def on_train_batch_end(self, trainer, *args):
            counts.append(float(trainer.callback_metrics["env/nonfinite_actions"]))

    with pytest.warns(RuntimeWarning, match="non-finite actions"):
        run_cli(_fit_args(tmp_path), extra_callbacks=[Record()])
    assert counts == [8.0, 8.0]  # env 0 at each of the 8 steps of each of the 2 iterations


def test_more_minibatches_than_environments_is_said_once(tmp_path):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(_fit_args(tmp_path, "--model.num_minibatches", "16")) == 0
    said = [str(w.message) for w in caught if "num_minibatches" in str(w.message)]
    assert said == ["model.num_minibatches=16 is more than the 8 environments (minibatches are split by "
                    "environment): using 8 minibatches"]
