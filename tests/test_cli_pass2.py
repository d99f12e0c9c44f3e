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
