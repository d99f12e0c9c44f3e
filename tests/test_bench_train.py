"""`quadlit bench train`: its summary (time to 95 % and the stability check, for the deployed policy and,
with --eval-trained, for the trained policy beside it; synthetic records, numbers by hand) and the
falls a policy that never changes shows by evaluation noise alone (--chance); the evaluation grids of
`bench train` and `bench versus-sb3` (finer during the first seconds)."""

import json
from pathlib import Path

import numpy as np
import pytest

from quadlit.bench import TrainingClock, epochs_between_evaluations, next_evaluation
from quadlit.bench.train import _from_json, _json_ready, stability, summarize, time_to

MAGS = (1.0, 2.0)


def _row(seconds, deployed, trained=None):
    row = {"seconds": seconds, "env_steps": int(seconds * 1e4), "curve": dict(zip(MAGS, deployed))}
    if trained is not None:
        row["trained_curve"] = dict(zip(MAGS, trained))
    return row


def _record(rows):
    return {"seed": 3, "env_steps": 10**6, "train_seconds": 180.0, "evaluations": rows,
            "final_curve": rows[-1]["curve"], "zero_curve": dict(zip(MAGS, (0.1, 0.0)))}


def test_stability_is_the_largest_fall_below_the_best_after_reaching_95():
    rows = [_row(10, (0.5, 0.0)), _row(20, (0.96, 0.0)), _row(30, (1.0, 0.0)), _row(40, (0.83, 0.0)),
            _row(50, (0.9, 0.0))]
    assert time_to(rows, 1.0) == 20
    assert abs(stability(rows, 1.0) - 17.0) < 1e-9  # best 100 % at 30 s, 83 % at 40 s
    assert time_to(rows, 2.0) is None and stability(rows, 2.0) is None


def test_summary_judges_the_trained_policy_on_its_own_curves():
    rows = [_row(10, (0.97, 0.2), trained=(0.90, 0.1)), _row(20, (0.98, 0.5), trained=(1.0, 0.96)),
            _row(30, (0.99, 0.6), trained=(0.75, 0.7))]
    text = summarize([_record(rows)])
    deployed, trained = text.split("the same, for the trained policy")
    assert "1: 10 s, fall 0; 2: never" in deployed
    assert "1: 20 s, fall 25; 2: 20 s, fall 26" in trained  # 100 -> 75 and 96 -> 70 points


def test_trained_curves_survive_the_json_round_trip_of_a_multi_seed_run():
    record = _record([_row(10, (0.97, 0.2), trained=(0.9, 0.1)), _row(20, (0.98, 0.5))])
    back = _from_json(json.loads(json.dumps(_json_ready([record]))))[0]
    assert back["evaluations"][0]["trained_curve"] == {1.0: 0.9, 2.0: 0.1}
    assert "trained_curve" not in back["evaluations"][1]
    assert summarize([back]) == summarize([record])


def test_falls_by_chance_follow_the_stability_rule_run_by_run():
    from quadlit.bench.train import falls_by_chance

    got = falls_by_chance(0.93, 16, 9, runs=300, seed=5)
    # the same draws through the per-run rule of `stability`
    v = np.random.default_rng(5).binomial(16, 0.93, size=(300, 9)) / 16
    want = [stability([{"curve": {1.0: x}} for x in row], 1.0) for row in v]
    want = np.array([w for w in want if w is not None])
    np.testing.assert_allclose(got, want, atol=1e-9)
    assert len(got) > 200  # most runs reach 95 % at some evaluation


def test_a_policy_that_never_changes_falls_by_noise_alone():
    from quadlit.bench.train import falls_by_chance

    assert np.all(falls_by_chance(1.0, 64, 25, runs=500) == 0.0)  # always 100 %: nothing to fall
    at93 = falls_by_chance(0.93, 64, 25, runs=4000)
    assert 0.6 < np.mean(at93 > 10) < 0.8  # 64 episodes: a "fall" over 10 points in most runs
    assert np.mean(falls_by_chance(0.93, 256, 25, runs=4000) > 10) < 0.02  # 256: almost never


def _grid(first, until, every, fine_every=0.0, fine_until=0.0, step=0.5):
    """The training times at which a clock polled every ``step`` s evaluates (SB3's callback)."""
    due, times, now = first, [], 0.0
    while now <= until:
        if now >= due:
            times.append(now)
            due = next_evaluation(due, now, every, fine_every, fine_until)
        now += step
    return times


def test_the_evaluation_grid_is_fine_first_then_coarse():
    assert _grid(20.0, 100.0, 20.0) == [20.0, 40.0, 60.0, 80.0, 100.0]
    assert _grid(4.0, 100.0, 20.0, 4.0, 20.0) == [4.0, 8.0, 12.0, 16.0, 20.0, 40.0, 60.0, 80.0, 100.0]
    # a clock that jumps (the first poll after a 16.6 s start-up): one evaluation, then the grid
    assert next_evaluation(4.0, 16.6, 20.0, 4.0, 60.0) == 20.0
    assert next_evaluation(56.0, 70.0, 20.0, 4.0, 60.0) == 80.0
    with pytest.raises(ValueError):
        next_evaluation(4.0, 5.0, 0.0)
    with pytest.raises(ValueError):
        next_evaluation(4.0, 5.0, 20.0, 0.0, 60.0)


def test_bench_train_evaluates_after_every_epoch_while_young():
    assert [epochs_between_evaluations(t, 2, 60.0) for t in (0.0, 59.9, 60.0, 150.0)] == [1, 1, 2, 2]
    assert epochs_between_evaluations(10.0, 3) == 3  # no fine phase by default


def test_an_evaluation_is_stamped_when_it_starts_and_kept_off_the_training_clock():
    now = [100.0]
    clock = TrainingClock(90.0, now=lambda: now[0])
    assert clock.seconds() == 10.0

    def evaluation(duration):
        def run():
            now[0] += duration
            return "curve"
        return run

    assert clock.measure(evaluation(4.0)) == (10.0, "curve")  # stamped at 10 s, not 14 s
    assert clock.seconds() == 10.0
    now[0] += 3.0  # 3 s of training
    assert clock.measure(evaluation(5.0)) == (13.0, "curve") and clock.seconds() == 13.0
    # on a 4 s grid from 8 s, evaluations 4 s long: the next one is due at 16 s of training,
    # whatever the wall-clock (an evaluation stamped after it ran would skip to 20 s)
    assert next_evaluation(12.0, 13.0, 20.0, 4.0, 60.0) == 16.0


def test_bench_train_evaluates_after_every_epoch_during_the_fine_phase(tmp_path):
    # a tiny balance run of 3 epochs: with the whole run in the fine phase it is evaluated after
    # every epoch; without one, after epoch 2 of 3 only (--eval-every 2); then the final curve
    from quadlit.bench.train import main

    def evaluated_env_steps(fine_eval_s):
        out = tmp_path / f"fine{fine_eval_s}.json"
        assert main(["--config", str(Path(__file__).resolve().parents[1] / "configs/balance.yaml"), "--minutes", "60", "--seeds", "0", "--eval-every", "2",
                     "--fine-eval-s", str(fine_eval_s), "--eval-episodes", "2", "--json", str(out),
                     "--trainer.max_epochs", "3", "--data.num_envs", "16", "--data.min_envs", "16",
                     "--data.iterations_per_epoch", "1", "--data.rollout_steps", "8",
                     "--trainer.enable_checkpointing", "false", "--trainer.logger", "false"]) == 0
        rows = json.loads(out.read_text())["records"][0]["evaluations"]
        return [row["env_steps"] for row in rows[:-1]]  # the last row is the final curve

    assert evaluated_env_steps(1e9) == [128, 256, 384]
    assert evaluated_env_steps(0) == [256]
