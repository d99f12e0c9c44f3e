"""quadlit tune: an Optuna study of tiny balance trials is stored, continued and summarised."""

import pytest

optuna = pytest.importorskip("optuna", reason="optuna is in the test extra: pip install -e '.[test]'")

from quadlit.cli import main  # noqa: E402
from quadlit.tune import SPACE, fit_options  # noqa: E402

TINY_BALANCE = ["--data.num_envs", "8", "--data.rollout_steps", "8", "--data.iterations_per_epoch", "2",
                "--data.balance.max_steps", "30", "--data.physics_threads", "1", "--model.lstm_hidden", "16",
                "--model.wm_batch_size", "32", "--trainer.max_epochs", "1"]


def test_tune_runs_trials_stores_them_and_continues_the_study(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    args = ["tune", "--trials", "1", "--minutes", "5", "--eval-episodes", "2", "--storage", storage,
            "--study", "tiny", *TINY_BALANCE]
    assert main(args) == 0
    assert main(args) == 0  # the same study, one more trial
    study = optuna.load_study(study_name="tiny", storage=storage)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 2
    for t in done:
        assert 0.0 <= t.value <= 1.0
        assert set(t.params) == set(SPACE)
        assert len(t.user_attrs["curve"]) == 6  # survival at each push magnitude of the curve
        assert t.value == pytest.approx(sum(t.user_attrs["curve"].values()) / 6)
    out = capsys.readouterr().out
    assert "best 2 of 2 finished trials" in out and "--model.lr" in out


def test_fit_options_are_what_fit_parses():
    assert fit_options({"model.lr": 0.0012345678, "model.ppo_epochs": 3}) == [
        "--model.lr", "0.00123457", "--model.ppo_epochs", "3"]
