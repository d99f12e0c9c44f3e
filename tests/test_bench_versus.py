"""`quadlit bench versus`: when a baseline evaluates and stops (fake clocks, times by hand), the side-by-side
table (synthetic records, numbers by hand), the orchestration (quadlit first, the baseline evaluated at
quadlit's moments, `versus-sb3` = `versus --baseline sb3` on the default parameters; fake processes), the
rsl_rl policy adapter, and tiny real baseline runs of every kind."""

import argparse
import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest

from quadlit.bench import EvaluationSchedule, TrainingClock
from quadlit.bench.versus import comparison

PUSH_CURVE = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]


def _train_and_evaluate(schedule, now, chunk_s, eval_s, max_chunks=100):
    """Train in chunks of ``chunk_s`` s of wall-clock until the schedule stops; each evaluation takes ``eval_s``."""
    def evaluate():
        now[0] += eval_s
        return {"env_steps": 0, "curve": {}}

    for chunks in range(1, max_chunks):
        now[0] += chunk_s
        if not schedule.after_chunk(evaluate):
            return chunks
    raise AssertionError("the schedule never stopped")


def test_the_baseline_evaluates_at_the_given_moments_off_the_clock_and_stops_at_the_budget():
    now = [100.0]
    schedule = EvaluationSchedule(TrainingClock(100.0, now=lambda: now[0]), budget_s=30.0, at=[5.0, 6.0, 20.0])
    chunks = _train_and_evaluate(schedule, now, chunk_s=3.0, eval_s=10.0)
    # readings at 3, 6 (>= 5: evaluate; 6 is passed too, so next due 20), 9, ..., 18, 21 (>= 20: evaluate;
    # nothing due after), 24, 27, 30 (the budget: stop, no evaluation) -- the 2 x 10 s of evaluation are not training
    assert [row["seconds"] for row in schedule.rows] == [6.0, 21.0]
    assert chunks == 10 and schedule.start_seconds == 3.0
    assert now[0] == 100.0 + 30.0 + 20.0
    assert schedule.evaluate_now(lambda: {"curve": {}})["seconds"] == 30.0


def test_without_moments_the_baseline_evaluates_on_the_fine_then_coarse_grid():
    now = [0.0]
    schedule = EvaluationSchedule(TrainingClock(0.0, now=lambda: now[0]), budget_s=60.0, every=20.0, fine_every=4.0,
                                  fine_until=12.0)
    _train_and_evaluate(schedule, now, chunk_s=3.0, eval_s=1.0)
    # due 4: evaluated at 6 (next 8), at 9 (next 12), at 12 (12 is not under 12: next 32), at 33 (next 52), at 54
    # (next 72); at 60 the budget
    assert [row["seconds"] for row in schedule.rows] == [6.0, 9.0, 12.0, 33.0, 54.0]

    # a reading past the budget with an evaluation due: none (the final evaluation follows)
    now = [0.0]
    schedule = EvaluationSchedule(TrainingClock(0.0, now=lambda: now[0]), budget_s=10.0, at=[4.0])
    assert _train_and_evaluate(schedule, now, chunk_s=12.0, eval_s=1.0) == 1 and schedule.rows == []
    with pytest.raises(ValueError):
        EvaluationSchedule(TrainingClock(0.0), budget_s=0.0)


def _row(seconds, curve):
    return {"seconds": seconds, "env_steps": int(seconds * 1e4), "curve": dict(zip((1.5, 3.0), curve))}


def _record(seed, rows, start=None, trace_start=None):
    record = {"seed": seed, "env_steps": 10**6, "train_seconds": 180.0, "evaluations": rows,
              "final_curve": rows[-1]["curve"], "zero_curve": {1.5: 0.0, 3.0: 0.0},
              "trace": [] if trace_start is None else [{"seconds": trace_start}]}
    if start is not None:
        record["start_seconds"] = start
    return record


def test_comparison_gives_means_who_is_ahead_and_times_from_each_start():
    ours = [_record(0, [_row(20, (0.96, 0.5)), _row(180, (1.0, 0.9))], trace_start=10.0),
            _record(1, [_row(30, (0.97, 0.6)), _row(180, (1.0, 0.8))], trace_start=12.0)]
    theirs = [_record(0, [_row(60, (0.95, 0.1)), _row(180, (0.98, 0.85))], start=12.0),
              _record(1, [_row(64, (0.99, 0.2)), _row(180, (1.0, 0.95))], start=12.0)]
    text = comparison(ours, theirs, "rsl_rl PPO (MLP)")
    lines = text.splitlines()
    assert lines[1].split()[1:] == ["100", "85"]  # quadlit's mean final survival: (90 + 80) / 2
    assert lines[2].split()[-2:] == ["99", "90"]  # the baseline's: (98 + 100) / 2, (85 + 95) / 2
    assert lines[3].split()[-2:] == ["yes", "no"]  # at 3.0 m/s 85 < 90
    # 1.5 m/s: quadlit 20 - 10 and 30 - 12 s after its starts (mean 14), the baseline 60 - 12, 64 - 12 (mean 50)
    assert "1.5 m/s: quadlit 20 (10) / 30 (18);  rsl_rl PPO (MLP) 60 (48) / 64 (52);  ratio 0.28" in text
    # 3.0 m/s: quadlit never (best 90 and 80 %), the baseline's seed 1 at the end
    assert "3 m/s: quadlit never (best 90 %) / never (best 80 %);  rsl_rl PPO (MLP) never (best 85 %) / 180 (168);" \
           "  ratio -" in text


def _fake_records(cmd):
    """What a fake child process writes: a quadlit run evaluated at 13, 16.5 and 19 s (and its end), or a baseline."""
    if "train" in cmd:
        rows = [_row(t, (0.5 + 0.1 * k, 0.1)) for k, t in enumerate((13.0, 16.5, 19.0, 30.0))]
        return {"records": [_record(int(cmd[cmd.index("--seeds") + 1]), rows, trace_start=12.0)]}
    seed = int(cmd[cmd.index("--seed") + 1])
    return _record(seed, [_row(13.2, (0.2, 0.0)), _row(30.1, (0.4, 0.0))], start=11.0)


def test_versus_sb3_runs_quadlit_then_sb3_on_default_parameters_at_quadlits_moments(tmp_path, monkeypatch, capsys):
    import quadlit.bench.versus as versus
    from quadlit.bench.versus_sb3 import main

    calls = []

    def fake_run(cmd, env):
        calls.append((cmd, env.get("NUMBA_CACHE_DIR")))
        flag = "--json" if "--json" in cmd else "--child-json"
        Path(cmd[cmd.index(flag) + 1]).write_text(json.dumps(_fake_records(cmd)))
        return argparse.Namespace(returncode=0)

    monkeypatch.setattr(versus.subprocess, "run", fake_run)
    assert main(["--seeds", "4", "5", "--cold", "--minutes", "0.5", "--out", str(tmp_path), "--json",
                 str(tmp_path / "all.json")]) == 0
    kinds = [("bench train" if "train" in cmd else "baseline") for cmd, _ in calls]
    assert kinds == ["bench train", "baseline"] * 2
    baseline = calls[1][0]
    assert baseline[baseline.index("--baseline") + 1] == "sb3"
    assert baseline[baseline.index("--baseline-params") + 1] == "default"
    assert baseline[baseline.index("--baseline-envs") + 1] == "8"
    at = baseline[baseline.index("--eval-at") + 1:]
    assert [float(t) for t in at] == [13.0, 16.5, 19.0]  # quadlit's evaluations, not its end
    assert len({cache for _, cache in calls}) == 4  # every run from its own empty cache
    assert (tmp_path / "learning_curve.png").stat().st_size > 0
    saved = json.loads((tmp_path / "all.json").read_text())
    assert [r["seed"] for r in saved["sb3"]] == [4, 5] and [r["seed"] for r in saved["quadlit"]] == [4, 5]
    out = capsys.readouterr().out
    # 1.5 m/s never reached: quadlit's best 80 %, SB3's 40 %
    assert re.search(r"1\.5 m/s: quadlit never \(best 80 %\) / never \(best 80 %\);  Stable-Baselines3 PPO "
                     r"never \(best 40 %\)", out), out


@pytest.fixture
def one_torch_thread():
    """Tiny networks: a second torch thread only waits for the first (and for a busy machine's other work)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_rsl_rl_policy_acts_with_its_own_copy_and_zeroes_the_state_at_episode_starts(one_torch_thread):
    pytest.importorskip("rsl_rl")
    import torch
    from rsl_rl.models import RNNModel
    from tensordict import TensorDict

    from quadlit.bench.baselines import RslRlPolicy

    torch.manual_seed(0)
    obs = TensorDict({"policy": torch.randn(3, 5)}, batch_size=[3])
    actor = RNNModel(obs, {"actor": ["policy"]}, "actor", 2, hidden_dims=[8], rnn_hidden_dim=4,
                     distribution_cfg={"class_name": "GaussianDistribution", "init_std": 1.0})
    policy = RslRlPolicy(actor)
    with torch.inference_mode():
        actor(obs, stochastic_output=True)  # a rollout step of the training actor: it has a state now
    training_state = tuple(h.clone() for h in actor.get_hidden_state())
    with torch.no_grad():
        for p in actor.parameters():
            p.add_(0.1)  # an update
        policy.load_from(actor)
        first, second = torch.randn(3, 5), torch.randn(3, 5)
        start, going_on = torch.ones(3), torch.zeros(3)
        policy.initial_state(3)
        policy.act(first, None, start)
        after_first = policy.act(second, None, going_on)[0]
        fresh = policy.act(second, None, start)[0]  # the state zeroed: as from the episode's first step
        policy.initial_state(3)
        assert torch.equal(policy.act(second, None, start)[0], fresh)
        assert not torch.allclose(after_first, fresh)  # the state matters
    for h, h0 in zip(actor.get_hidden_state(), training_state):
        assert torch.equal(h, h0)  # the training actor's state untouched
    assert torch.equal(policy.actor.mlp[0].weight, actor.mlp[0].weight)  # its weights taken


@pytest.mark.parametrize("baseline", ["rsl_rl", "rsl_rl_lstm", "sb3"])
def test_a_tiny_baseline_run_gives_a_record_of_its_evaluations(tmp_path, baseline, one_torch_thread):
    pytest.importorskip("rsl_rl" if baseline.startswith("rsl_rl") else "stable_baselines3")
    from quadlit.bench.baselines import RUNS

    config = tmp_path / "tiny.yaml"
    config.write_text("data:\n  balance:\n    max_steps: 30\n")  # 0.6 s evaluation episodes
    ticks = itertools.count()  # every reading of the clock: one more second
    schedule = EvaluationSchedule(TrainingClock(0.0, now=lambda: float(next(ticks))), budget_s=4.0, at=[1.0])
    args = argparse.Namespace(baseline=baseline, config=str(config), baseline_params="config", baseline_envs=4,
                              seed=0, eval_episodes=1, eval_seed=1)
    record = RUNS[baseline](args, schedule)
    assert record["config"] == baseline and record["seed"] == 0
    # readings after chunk 1 at 0 s (its start), chunk 2 at 1 s (>= 1: evaluate, stamped at 2 s; its second off
    # the clock), chunk 3 at 3 s, chunk 4 at 4 s (the budget: stop); the final evaluation stamped at 5 s
    assert record["start_seconds"] == 0.0
    assert [row["seconds"] for row in record["evaluations"]] == [2.0, 5.0] and record["train_seconds"] == 5.0
    per_chunk = 4 if baseline == "sb3" else 4 * 24  # an SB3 step, an rsl_rl iteration
    assert record["evaluations"][0]["env_steps"] == 2 * per_chunk and record["env_steps"] == 4 * per_chunk
    assert list(record["final_curve"]) == PUSH_CURVE and list(record["zero_curve"]) == PUSH_CURVE
    assert np.isfinite(list(record["final_curve"].values())).all()
