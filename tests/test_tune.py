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
    assert [t.user_attrs["seed"] for t in done] == [0, 1]  # trial k trains with seed k
    out = capsys.readouterr().out
    assert "best 2 of 2 finished trials" in out and "--model.desired_kl" in out
    assert "--seed_everything 1" in out and "--data.balance.push_interval_max" in out
    # --trials 0: only the summary of the stored study, and its trials as CSV
    csv_path = tmp_path / "trials.csv"
    assert main(["tune", "--trials", "0", "--storage", storage, "--study", "tiny", "--export", str(csv_path)]) == 0
    assert len(optuna.load_study(study_name="tiny", storage=storage).trials) == 2  # nothing ran
    assert "best 2 of 2 finished trials" in capsys.readouterr().out
    import csv
    rows = list(csv.DictReader(csv_path.open()))
    assert [r["trial"] for r in rows] == ["0", "1"] and [r["seed"] for r in rows] == ["0", "1"]
    for r, t in zip(rows, done):
        assert float(r["objective"]) == pytest.approx(t.value, abs=1e-4)
        assert float(r["push_2.0"]) == pytest.approx(t.user_attrs["curve"]["2.0"], abs=1e-4)
        assert float(r["model.desired_kl"]) == pytest.approx(t.params["model.desired_kl"])


def test_fit_options_are_what_fit_parses():
    assert fit_options({"model.lr": 0.0012345678, "model.ppo_epochs": 3}) == [
        "--model.lr", "0.00123457", "--model.ppo_epochs", "3"]


def test_the_longest_push_gap_is_twice_the_searched_shortest():
    options = fit_options({"data.balance.push_interval_min": 1.25})
    assert options == ["--data.balance.push_interval_min", "1.25", "--data.balance.push_interval_max", "2.5"]


def test_only_searches_the_named_hyperparameters():
    from quadlit.tune import suggest

    trial = optuna.trial.FixedTrial({"model.desired_kl": 0.012, "data.balance.push_interval_min": 1.5})
    values = suggest(trial, ["model.desired_kl", "data.balance.push_interval_min"])
    assert values == {"model.desired_kl": 0.012, "data.balance.push_interval_min": 1.5}
    assert set(suggest(optuna.trial.FixedTrial({}), [])) == set()


def test_only_with_a_name_outside_the_space_is_a_one_line_error(capsys):
    assert main(["tune", "--trials", "1", "--only", "model.desired_kl", "model.bogus"]) == 2
    err = capsys.readouterr().err
    assert "--only: not in the search space: model.bogus" in err


@pytest.mark.parametrize("argv,needle", [
    (["--trials", "1", "--storage", "bogus://nowhere"], "--storage bogus://nowhere: cannot open it"),
    (["--trials", "0"], "lightning_logs/tune.db does not exist"),  # the default storage, never created
    (["--trials", "1", "--export", "notes.txt"], "--export: notes.txt already exists"),
])
def test_bad_storage_summary_or_export_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch, argv, needle):
    from tests.tiny import REPO

    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine\n")
    code = main(["tune", "--config", str(REPO / "configs/balance.yaml"), *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("quadlit: error:") and needle in err, err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"] and (tmp_path / "notes.txt").read_text() == "mine\n"
