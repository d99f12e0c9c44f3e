"""Never lose a run: a run killed with SIGKILL and resumed ends bitwise equal to an uninterrupted
one, and a kill while a checkpoint is being written leaves the previous checkpoint intact."""

import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import yaml

from quadlit.cli import main
from tests.tiny import REPO, TINY

# the balance task (pushes, domain randomisation, curriculum state) at a size that trains an
# epoch in a fraction of a second, so a random kill lands anywhere in the run
ARGS = [
    "fit", "--config", str(REPO / "configs/balance.yaml"),
    "--data.num_envs", "16", "--data.rollout_steps", "8", "--data.iterations_per_epoch", "2",
    "--data.eval_episodes", "4", "--data.eval_curve", "false", "--data.balance.max_steps", "60",
    "--model.lstm_hidden", "16", "--model.wm_batch_size", "32", "--model.wm_updates", "1",  # its stream too
    "--trainer.max_epochs", "10", "--trainer.check_val_every_n_epoch", "3", "--trainer.max_time", "null",
    "--trainer.deterministic", "true",
    "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
]


def _launch(root: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "quadlit.cli", *ARGS, "--trainer.default_root_dir", str(root),
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _last(root: Path) -> Path:
    return root / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300.0) -> float:
    """Wait until ``path`` exists; the wall-clock time it appeared."""
    start = time.monotonic()
    while not path.exists():
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() - start < timeout, f"no {path} after {timeout} s"
        time.sleep(0.02)
    return time.time()


def _differences(a, b, path: str = "") -> list[str]:
    """Paths at which two checkpoint trees are not bitwise equal."""
    if isinstance(a, torch.Tensor):
        return [] if isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b) else [path]
    if isinstance(a, dict):
        if set(a) != set(b):
            return [f"{path} keys"]
        return [d for k in a for d in _differences(a[k], b[k], f"{path}/{k}")]
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return [f"{path} length"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [path]


def test_sigkill_at_a_random_moment_then_resume_is_bitwise_equal(tmp_path):
    # the uninterrupted run, timed so the kill can be placed inside the killed run's training
    proc = _launch(tmp_path / "whole")
    first_ckpt = _wait_for(_last(tmp_path / "whole"), proc)
    assert proc.wait(timeout=600) == 0, proc.stdout.read()
    training_span = _last(tmp_path / "whole").stat().st_mtime - first_ckpt  # first to final checkpoint

    seed = int.from_bytes(os.urandom(4), "little")
    delay = random.Random(seed).uniform(0.0, 0.6 * training_span)
    proc = _launch(tmp_path / "killed")
    _wait_for(_last(tmp_path / "killed"), proc)
    time.sleep(delay)
    assert proc.poll() is None, f"the run ended before the kill (delay {delay:.2f} s, seed {seed})"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    interrupted = torch.load(_last(tmp_path / "killed"), weights_only=True)

    resumed = _launch(tmp_path / "killed", "--ckpt_path", "last")
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out
    assert "resuming from" in out

    whole = torch.load(_last(tmp_path / "whole"), weights_only=True)
    final = torch.load(_last(tmp_path / "killed"), weights_only=True)
    assert interrupted["global_step"] < whole["global_step"] == final["global_step"]
    for key in ("state_dict", "optimizer_states", "RolloutDataModule", "quadlit_generators"):
        diffs = _differences(whole[key], final[key], key)
        assert not diffs, f"resumed run differs (kill after {delay:.2f} s, seed {seed}): {diffs[:5]}"
    # the resumed run continued the killed run's directory instead of opening a new one
    assert not (tmp_path / "killed" / "lightning_logs" / "version_1").exists()


KILL_DURING_SAVE = textwrap.dedent("""
    import os, sys, time, torch
    from quadlit.training.checkpoint import AtomicCheckpointIO
    io = AtomicCheckpointIO()
    target = sys.argv[1]
    io.save_checkpoint({"generation": 1, "weights": torch.arange(10)}, target)
    real_fsync = os.fsync
    def stall(fd):  # the new bytes are written; the rename has not happened yet
        real_fsync(fd)
        print("writing", flush=True)
        time.sleep(600)
    os.fsync = stall
    io.save_checkpoint({"generation": 2, "weights": torch.zeros(1 << 22)}, target)
""")


def test_a_kill_while_a_checkpoint_is_written_leaves_the_previous_file(tmp_path):
    target = tmp_path / "checkpoints" / "last.ckpt"
    proc = subprocess.Popen([sys.executable, "-c", KILL_DURING_SAVE, str(target)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = torch.load(target, weights_only=True)
    assert saved["generation"] == 1 and torch.equal(saved["weights"], torch.arange(10))
    # the half-finished write is a hidden temporary beside it, never a file named *.ckpt
    assert [p.name for p in target.parent.glob("*.ckpt")] == ["last.ckpt"]


def test_atomic_save_replaces_the_file_and_leaves_no_temporary(tmp_path):
    from quadlit.training.checkpoint import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    target = tmp_path / "a" / "x.ckpt"
    for generation in range(3):
        io.save_checkpoint({"generation": generation}, target)
        assert torch.load(target, weights_only=True)["generation"] == generation
    assert [p.name for p in target.parent.iterdir()] == ["x.ckpt"]


def test_ckpt_path_last_without_a_saved_run(tmp_path, capsys):
    tiny = ["--config", str(REPO / "configs/reach.yaml"), *TINY, "--trainer.max_epochs", "1",
            "--trainer.default_root_dir", str(tmp_path)]
    # validate has nothing to evaluate: one line, exit 2
    assert main(["validate", *tiny, "--ckpt_path", "last"]) == 2
    assert "no run under" in capsys.readouterr().err
    # fit starts a new run, says so, and saves a checkpoint that a later "last" finds
    assert main(["fit", *tiny, "--ckpt_path", "last"]) == 0
    assert "starting a new run" in capsys.readouterr().err
    assert _last(tmp_path).is_file()
    assert main(["validate", *tiny, "--ckpt_path", "last"]) == 0
    assert f"evaluating {_last(tmp_path)}" in capsys.readouterr().err


# ------------------------------------------------------------------ resuming a run that was moved,
# refused, or continued with new model options (reach task, tiny: a second per epoch)
def _reach(root: Path, *extra: str) -> list[str]:
    return ["fit", "--config", str(REPO / "configs/reach.yaml"), *TINY, "--trainer.max_epochs", "1",
            "--trainer.check_val_every_n_epoch", "100", "--trainer.default_root_dir", str(root), *extra]


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def reach_run(tmp_path_factory) -> Path:
    """A finished one-epoch reach run (2 iterations); tests copy it."""
    root = tmp_path_factory.mktemp("reach_run")
    assert main(_reach(root)) == 0
    return root


def _copy_of(reach_run: Path, tmp_path: Path) -> Path:
    """A private copy of the finished reach run, to resume or damage."""
    root = tmp_path / "run"
    shutil.copytree(reach_run, root)
    return root


def test_a_refused_resume_writes_nothing(reach_run, tmp_path, capsys):
    root = _copy_of(reach_run, tmp_path)
    before = _snapshot(root)
    capsys.readouterr()
    assert main(_reach(root, "--ckpt_path", "last", "--data.num_envs", "4", "--trainer.max_epochs", "2")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith("quadlit: resuming from"), err  # the note, then the refusal
    assert err[1].startswith("quadlit: error:") and "data.num_envs=8" in err[1], err
    assert _snapshot(root) == before  # config.yaml not rewritten, no new events file


def test_a_run_directory_is_written_by_one_process_at_a_time(reach_run, tmp_path, capsys):
    root = _copy_of(reach_run, tmp_path)
    run_dir = root / "lightning_logs" / "version_0"
    holder = subprocess.Popen(  # another process continuing the same run
        [sys.executable, "-c", "import sys, time\nfrom quadlit.training.run_lock import RunDirectoryLock\n"
         "RunDirectoryLock(sys.argv[1]).acquire()\nprint('locked', flush=True)\ntime.sleep(300)", str(run_dir)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = _snapshot(root)
        capsys.readouterr()
        assert main(_reach(root, "--ckpt_path", "last", "--trainer.max_epochs", "2")) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("quadlit: error:") and f"pid {holder.pid}" in err[-1] and str(run_dir) in err[-1], err
        assert _snapshot(root) == before
    finally:
        holder.kill()
        holder.wait()
    # the killed process's lock file is left behind, and recognised as stale
    assert (run_dir / ".quadlit.lock").is_file()
    assert main(_reach(root, "--ckpt_path", "last", "--trainer.max_epochs", "2")) == 0
    assert not (run_dir / ".quadlit.lock").exists()
    first = torch.load(_last(reach_run), weights_only=True)["global_step"]
    assert torch.load(_last(root), weights_only=True)["global_step"] == 2 * first  # it trained the second epoch


def test_a_run_whose_max_time_is_spent_is_refused_and_one_with_time_left_says_how_much(tmp_path, capsys):
    root = tmp_path / "timed"
    # the default config's way of ending a run: trainer.max_time (here 1 s of training)
    assert main(_reach(root, "--trainer.max_time", "00:00:00:01", "--trainer.max_epochs", "100000")) == 0
    timer = torch.load(_last(root), weights_only=True)["callbacks"]["Timer"]
    assert timer["time_elapsed"]["train"] >= 1.0
    before = _snapshot(root)
    capsys.readouterr()
    assert main(_reach(root, "--ckpt_path", "last", "--trainer.max_time", "00:00:00:01",
                       "--trainer.max_epochs", "100000")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "nothing would be trained" in err[1] and "--trainer.max_time" in err[1], err
    assert _snapshot(root) == before  # no events file, no config.yaml rewritten
    # with time left: one line before starting says how much, then the run continues
    step = torch.load(_last(root), weights_only=True)["global_step"]
    epoch = torch.load(_last(root), weights_only=True)["epoch"]
    assert main(_reach(root, "--ckpt_path", "last", "--trainer.max_time", "00:01:00:00",
                       "--trainer.max_epochs", str(epoch + 2))) == 0
    err = capsys.readouterr().err
    assert "left (for more, give a longer --trainer.max_time" in err and "0:59:5" in err, err
    assert torch.load(_last(root), weights_only=True)["global_step"] > step


def test_ckpt_path_last_continues_a_run_without_a_logger(tmp_path, capsys):
    root = tmp_path / "run"
    assert main(_reach(root, "--trainer.logger", "false")) == 0
    checkpoints = root / "checkpoints"  # where Lightning saves without a logger
    first = torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"]
    capsys.readouterr()
    assert main(_reach(root, "--trainer.logger", "false", "--ckpt_path", "last", "--trainer.max_epochs", "2")) == 0
    assert f"resuming from {checkpoints / 'last.ckpt'}" in capsys.readouterr().err
    assert sorted(p.name for p in checkpoints.glob("last*.ckpt")) == ["last.ckpt"]  # no last-v1.ckpt beside it
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] == 2 * first


def test_a_moved_run_resumes_from_its_newest_checkpoint_each_time(reach_run, tmp_path, capsys):
    moved = tmp_path / "elsewhere"
    shutil.copytree(reach_run, moved)  # saved paths inside the checkpoint still name reach_run
    checkpoints = moved / "lightning_logs" / "version_0" / "checkpoints"
    steps_per_epoch = torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"]
    for epochs in (2, 3):
        assert main(_reach(moved, "--ckpt_path", "last", "--trainer.max_epochs", str(epochs))) == 0
        assert sorted(p.name for p in checkpoints.glob("last*.ckpt")) == ["last.ckpt"]  # no last-v1, last-v2
        # each resume continued from the previous one's end: no epoch was repeated
        assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] == epochs * steps_per_epoch
    # the latest-* top-1 checkpoint is the moved run's own: replaced, not accumulated
    assert len(list(checkpoints.glob("latest-*.ckpt"))) == 1


def test_ckpt_path_last_takes_the_newest_of_last_and_its_versions(reach_run, tmp_path):
    from quadlit.training.checkpoint import find_last_checkpoint

    root = _copy_of(reach_run, tmp_path)
    checkpoints = root / "lightning_logs" / "version_0" / "checkpoints"
    state = torch.load(checkpoints / "last.ckpt", weights_only=True)
    state["global_step"] += 10
    torch.save(state, checkpoints / "last-v1.ckpt")  # what the stale-last.ckpt resumes used to leave
    os.utime(checkpoints / "last.ckpt")  # newer on disk, older in steps: steps decide
    assert find_last_checkpoint(root) == (checkpoints / "last-v1.ckpt", 0)


def test_model_options_given_on_resume_are_applied_and_recorded(reach_run, tmp_path, capsys):
    root = _copy_of(reach_run, tmp_path)
    capsys.readouterr()
    assert main(_reach(root, "--ckpt_path", "last", "--trainer.max_epochs", "2", "--model.lr", "0.002",
                       "--model.desired_kl", "null", "--model.entropy_coef", "0.03")) == 0
    err = capsys.readouterr().err
    assert "applying --model.lr 0.002 (the checkpoint had 0.0003)" in err, err
    config = yaml.safe_load((root / "lightning_logs" / "version_0" / "config.yaml").read_text())
    assert config["model"]["lr"] == 0.002 and config["model"]["entropy_coef"] == 0.03
    assert config["model"]["desired_kl"] is None
    last = torch.load(root / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["hyper_parameters"]["lr"] == 0.002
    # the restored optimizer took the new rate (fixed: the KL schedule is off)
    assert last["optimizer_states"][0]["param_groups"][0]["lr"] == 0.002


def test_model_options_that_cannot_change_on_resume_are_refused_by_name(reach_run, tmp_path, capsys):
    root = _copy_of(reach_run, tmp_path)
    before = _snapshot(root)
    capsys.readouterr()
    assert main(_reach(root, "--ckpt_path", "last", "--model.lstm_hidden", "32", "--model.lr", "0.002")) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("quadlit: error:") and "--model.lstm_hidden" in err and "lstm_hidden=16" in err, err
    assert "--model.lr" not in err  # the learning rate could change; only the network size cannot
    assert _snapshot(root) == before


def test_a_checkpoint_stores_a_digest_of_its_contents(reach_run):
    from quadlit.training.checkpoint import DIGEST_KEY, read_checkpoint, state_digest

    last = _last(reach_run)
    state = read_checkpoint(last)  # verifies the digest: the saved and the loaded state agree
    assert state[DIGEST_KEY].startswith("blake2b:") and state_digest(state) == state[DIGEST_KEY]
    first = next(k for k, v in state["state_dict"].items() if v.is_floating_point() and v.numel() > 1)
    state["state_dict"][first][0] += 1.0
    assert state_digest(state) != state[DIGEST_KEY]


@pytest.mark.parametrize("how", ["tensor_bytes_in_the_file", "weights_resaved"])
def test_a_changed_checkpoint_is_refused_in_one_line(reach_run, tmp_path, capsys, how):
    root = _copy_of(reach_run, tmp_path)
    last = _last(root)
    state = torch.load(last, weights_only=True)
    name = next(k for k, v in state["state_dict"].items() if v.is_floating_point() and v.numel() >= 16)
    if how == "tensor_bytes_in_the_file":  # one byte of a weight, flipped in place: the file still loads
        data = bytearray(last.read_bytes())
        at = data.find(state["state_dict"][name].numpy().tobytes())
        assert at > 0
        data[at + 5] ^= 0x40
        last.write_bytes(bytes(data))
        assert not torch.equal(torch.load(last, weights_only=True)["state_dict"][name], state["state_dict"][name])
    else:  # the weights edited and saved again, the stored digest kept
        state["state_dict"][name] += 0.5
        torch.save(state, last)
    before = _snapshot(root)
    capsys.readouterr()
    for command in ("fit", "validate"):
        args = _reach(root, "--ckpt_path", str(last), "--trainer.max_epochs", "2")
        args[0] = command
        assert main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "changed or damaged" in err[0] and str(last) in err[0], err
    assert _snapshot(root) == before
