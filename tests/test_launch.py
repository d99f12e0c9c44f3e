"""The entry point's early reading of the run's task (to start the physics compile helper), and its
checks of the environment variables quadlit and Numba read."""

import os
import subprocess
import sys

import pytest

from quadlit.environment import check_environment
from quadlit.launch import task_of
from tests.tiny import REPO


@pytest.mark.parametrize("argv,task", [
    (["fit", "--config", "configs/balance.yaml"], "balance"),
    (["fit", "--config=configs/reach.yaml"], "reach"),
    (["fit", "--config", "configs/reach.yaml", "--data.task", "balance"], "balance"),
    (["fit", "--data.task=reach", "--config", "configs/balance.yaml"], "balance"),  # later wins
    (["validate", "--config", "configs/balance_robust.yaml", "--ckpt_path", "x.ckpt"], "balance"),
    (["fit"], "balance"),  # the data module's default
    (["fit", "--config", "no/such/file.yaml"], None),  # the CLI reports it; nothing guessed
    (["fit", "--data", "{task: reach}"], None),
    (["fit", "--config"], None),
    (["bench", "train", "--config", "configs/balance.yaml"], None),  # starts its runs in other processes
    (["bench", "train", "--seeds", "0", "--single", "--config", "configs/reach.yaml"], "reach"),
    (["bench", "train", "--single", "--data.task", "balance"], "balance"),
    ([], None),
])
def test_task_of_reads_the_task_as_the_cli_would(argv, task):
    assert task_of(argv) == task


def test_a_config_without_a_task_keeps_the_earlier_one(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("trainer:\n  max_epochs: 1\ndata:\n  num_envs: 64\n")
    assert task_of(["fit", "--data.task", "reach", "--config", str(cfg)]) == "reach"
    cfg.write_text("data: [1, 2]\n")
    assert task_of(["fit", "--config", str(cfg)]) is None


@pytest.mark.parametrize("variable,value,needle", [
    ("NUMBA_NUM_THREADS", "abc", "NUMBA_NUM_THREADS='abc': must be an integer >= 1"),
    ("NUMBA_NUM_THREADS", "0", "NUMBA_NUM_THREADS='0': must be an integer >= 1"),
    ("QUADLIT_PARALLEL_COMPILE", "garbage", "QUADLIT_PARALLEL_COMPILE='garbage': must be 1 or 0"),
])
def test_a_bad_environment_variable_is_one_line_before_anything_runs(tmp_path, variable, value, needle):
    env = {**os.environ, variable: value, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "quadlit.launch", "fit", "--config", str(REPO / "configs/reach.yaml"),
                           "--trainer.default_root_dir", str(tmp_path)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith(f"quadlit: error: {needle}"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not any(tmp_path.iterdir())


def test_an_unwritable_numba_cache_dir_is_warned_about(tmp_path):
    (tmp_path / "afile").write_text("x")
    (warning,) = check_environment({"NUMBA_CACHE_DIR": str(tmp_path / "afile" / "cache")})
    assert warning.startswith(f"NUMBA_CACHE_DIR: {tmp_path / 'afile' / 'cache'} lies under") and "again" in warning
    assert check_environment({"NUMBA_CACHE_DIR": str(tmp_path / "new" / "cache")}) == []


@pytest.mark.parametrize("value,on", [("0", False), ("false", False), ("Off", False), ("no", False), ("1", True),
                                      ("yes", True), ("", True)])
def test_the_compile_helper_switch_takes_every_usual_spelling(monkeypatch, value, on):
    from quadlit.physics import precompile

    started = []
    monkeypatch.setenv("QUADLIT_PARALLEL_COMPILE", value)
    monkeypatch.setattr(precompile, "_started", False)
    monkeypatch.setattr(precompile, "_usable_cpus", lambda: 4)
    monkeypatch.setattr(precompile, "stage_kernels_cached", lambda kernel: False)  # a cold cache
    monkeypatch.setattr(precompile.subprocess, "Popen", lambda *a, **k: started.append(a))
    monkeypatch.setattr(precompile.atexit, "register", lambda fn: None)
    monkeypatch.setattr(precompile, "_helper", None)
    assert precompile.start_background_compile() is on
    assert len(started) == int(on)
