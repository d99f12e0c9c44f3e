"""Inputs of the second pass of issue 32 (docs/user_paths.md) that went wrong: each one line on
stderr, exit status 2, nothing written, or the behaviour the option's help promises."""

import pytest

from quadlit.cli import main
from tests.test_cli_edges import _assert_one_line, _files, _fit_args


def test_num_sanity_val_steps_below_minus_one_is_refused(tmp_path, capsys):
    # accepted without a word (and a whole run trained) before
    _assert_one_line(capsys, main(_fit_args(tmp_path / "out", "--trainer.num_sanity_val_steps", "-5")),
                     "trainer.num_sanity_val_steps")
    assert _files(tmp_path) == []


def test_seed_everything_true_chooses_a_random_seed_and_says_it(tmp_path, capsys, monkeypatch):
    # the option's help says "Set to True to use a random seed"; Lightning's seed_everything()
    # without a seed takes 0, so every `--seed_everything true` run had seed 0
    from quadlit.cli import QuadlitCLI
    from quadlit.errors import ConfigError

    seeds = []

    def stop(self):
        seeds.append(self._get(self.config, "seed_everything"))
        raise ConfigError("stopped before building anything")

    monkeypatch.setattr(QuadlitCLI, "instantiate_classes", stop)
    for _ in range(2):
        monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
        assert main(_fit_args(tmp_path / "out", "--seed_everything", "true")) == 2
        err = capsys.readouterr().err
        assert f"seed {seeds[-1]} chosen at random" in err, err
    assert all(isinstance(s, int) and not isinstance(s, bool) for s in seeds), seeds
    assert seeds[0] != seeds[1], seeds


def test_bench_compile_refuses_an_unknown_task_in_one_line(capsys):
    # was a RuntimeError traceback from the cold child process
    _assert_one_line(capsys, main(["bench", "compile", "--task", "swim"]), "--task")


@pytest.mark.parametrize("shape", [(3,), (2, 6), (12, 1)])
def test_gym_step_refuses_an_action_of_another_shape(shape):
    # (3,) was numpy's "cannot reshape"; (2, 6) and (12, 1) were stepped silently as one action
    import gymnasium
    import numpy as np

    import quadlit.gym  # noqa: F401 (registers the ids)

    env = gymnasium.make("quadlit/Balance-v0").unwrapped
    try:
        env.reset(seed=0)
        with pytest.raises(ValueError, match=r"action must have shape \(12,\)"):
            env.step(np.zeros(shape))
        env.step(np.zeros(12))  # the right shape still steps
    finally:
        env.close()


@pytest.mark.parametrize("bench", ["train", "versus", "robots"])
def test_a_negative_bench_seed_is_named_as_seeds(capsys, bench):
    # bench train --seeds -1 printed its header, then "seed_everything must be ..." of the child run
    _assert_one_line(capsys, main(["bench", bench, "--seeds", "-1"]), "--seeds")


@pytest.mark.parametrize("argv,needle", [
    # the renderer's ValueError traceback (under a display; without one: "cannot render")
    (["record", "--ckpt_path", "/nonexistent.ckpt", "--out", "x.gif", "--width", "0"], "--width and --height"),
    # GIF bytes were written to x.mp4 without a word
    (["record", "--ckpt_path", "/nonexistent.ckpt", "--out", "x.mp4"], "give a .gif name"),
    # PIL's traceback after the window had run
    (["play", "--task", "balance", "--policy", "zero", "--screenshot", "."], "--screenshot: . is a folder"),
    (["play", "--task", "balance", "--policy", "zero", "--screenshot", "frame"], "give an image file name"),
])
def test_record_and_play_outputs_are_checked_first(tmp_path, monkeypatch, capsys, argv, needle):
    monkeypatch.chdir(tmp_path)
    _assert_one_line(capsys, main(argv), needle)
    assert _files(tmp_path) == []


def test_more_physics_threads_than_cpus_is_said_when_the_run_starts(tmp_path, capsys, monkeypatch):
    # 1000 threads on 2 cores were taken without a word (a tiny run at half its speed); the line
    # is kept for the start of the run (bad input found later stays one line)
    from quadlit.cli import QuadlitCLI
    from quadlit.errors import ConfigError

    notes = []

    def stop(self):
        notes.append(getattr(self, "_threads_note", None))
        raise ConfigError("stopped before building anything")

    monkeypatch.setattr("os.cpu_count", lambda: 2)
    monkeypatch.setattr(QuadlitCLI, "instantiate_classes", stop)
    for threads in ("2", "1000"):
        assert main(_fit_args(tmp_path / "out", "--data.physics_threads", threads)) == 2
    assert notes[0] is None
    assert "data.physics_threads is 1000, more than this machine's 2 CPUs" in notes[1], notes
