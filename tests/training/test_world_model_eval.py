"""Open-loop error against horizon (quadlit.training.world_model_eval) on toy linear systems whose
exact predictor is known, with the baselines' errors worked out by hand."""

import math
import sys

import pytest
import torch

from quadlit.training.world_model_eval import (
    HORIZONS,
    CopyLast,
    flat_metrics,
    format_table,
    open_loop,
    open_loop_errors,
)


class ExactLinear(CopyLast):
    """A world-model-like object that knows x_{t+1} = x_t @ A.T + a_t @ B.T + b exactly (its latent
    is the observation)."""

    def __init__(self, A, B, b):
        self.A, self.B, self.b = A, B, b

    def step_latent(self, latent, action):
        return latent @ self.A.T.to(latent) + action @ self.B.T.to(latent) + self.b.to(latent), None, None


def _ramp(steps=30, envs=4, c=(0.5, -2.0)):
    """x_t = c * t in every environment, one zero action dimension: (obs (T+1, N, 2), action (T, N, 1))."""
    t = torch.arange(steps + 1, dtype=torch.float64)[:, None, None]
    obs = (t * torch.tensor(c, dtype=torch.float64)).expand(steps + 1, envs, 2).float()
    return obs, torch.zeros(steps, envs, 1)


def _linear_system(steps=40, envs=8, seed=0, reset_every=None, push_at=()):
    """x_{t+1} = A x_t + B a_t + b with random actions; env i's episode ends (a random new state)
    every ``reset_every`` + i steps; a kick (+3 on every slot) lands at each step of ``push_at``."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    A, B, b = 0.9 * q, torch.randn(3, 2, generator=g, dtype=torch.float64), torch.tensor([0.1, -0.2, 0.3],
                                                                                          dtype=torch.float64)
    action = torch.rand(steps, envs, 2, generator=g, dtype=torch.float64) * 2 - 1
    obs = torch.empty(steps + 1, envs, 3, dtype=torch.float64)
    obs[0] = torch.randn(envs, 3, generator=g, dtype=torch.float64)
    done = torch.zeros(steps, envs, dtype=torch.bool)
    pushed = torch.zeros(steps, envs, dtype=torch.bool)
    for t in range(steps):
        obs[t + 1] = obs[t] @ A.T + action[t] @ B.T + b
        if t in push_at:
            obs[t + 1] += 3.0
            pushed[t] = True
        if reset_every is not None:
            ends = (t + 1) % (reset_every + torch.arange(envs)) == 0
            obs[t + 1, ends] = torch.randn(int(ends.sum()), 3, generator=g, dtype=torch.float64)
            done[t] = ends
    return obs.float(), action.float(), done, pushed, ExactLinear(A, B, b)


def test_copy_last_error_on_a_ramp_is_k_steps_over_the_std():
    """x_{t+1} = x_t + c: copy-last is off by k|c| at horizon k. Over t = 0..30 the slot's std is
    |c| sqrt(((T+1)^2 - 1) / 12) = |c| sqrt(80), so the error is k / sqrt(80) in every slot."""
    obs, action = _ramp()
    exact = ExactLinear(torch.eye(2), torch.zeros(2, 1), torch.tensor([0.5, -2.0]))
    report = open_loop_errors(exact, obs, action, torch.zeros(30, 4, dtype=torch.bool), fit_envs=2)
    assert torch.allclose(report.scale, torch.tensor([0.5, 2.0], dtype=torch.float64) * math.sqrt(80), rtol=1e-6)
    errors = report.without_push
    assert errors.horizons == HORIZONS
    assert errors.windows == tuple((31 - k) * 2 for k in HORIZONS)  # starts 0..T-k in 2 judged envs
    assert errors.overall["copy_last"] == pytest.approx([k / math.sqrt(80) for k in HORIZONS], rel=1e-6)
    assert errors.overall["world_model"] == pytest.approx([0.0] * 4, abs=1e-6)
    assert errors.overall["linear"] == pytest.approx([0.0] * 4, abs=1e-6)
    assert report.with_push is None


def test_exact_predictor_and_least_squares_recover_a_linear_system_across_resets():
    """Episodes end at a random new state: a window that crossed one would give the exact
    predictor an error, so an error of ~0 at every horizon shows none is counted."""
    obs, action, done, _, exact = _linear_system(steps=60, envs=8, reset_every=27)
    report = open_loop_errors(exact, obs, action, done, groups=(("first", 1), ("rest", 2)))
    errors = report.without_push
    assert errors.overall["world_model"] == pytest.approx([0.0] * 4, abs=1e-5)
    assert errors.overall["linear"] == pytest.approx([0.0] * 4, abs=1e-5)
    assert all(e > 0.1 for e in errors.overall["copy_last"])
    for group in ("first", "rest"):
        assert errors.by_group["world_model"][group] == pytest.approx([0.0] * 4, abs=1e-5)
    # env 4..7 end every 31..34 steps: a 25-step window fits once or twice in each 60-step record
    assert 0 < errors.windows[3] < errors.windows[0] < 4 * 60

    # the same records judged across their resets are far off: the windows above excluded them
    crossing = open_loop(exact, obs[:, 4:], action[:, 4:], (25,))[25]
    assert (crossing - obs[25:, 4:]).abs().max() > 0.1


def test_push_windows_are_reported_apart():
    """A kick the observation cannot show lands in steps 10 and 20: the exact predictor is exact in
    every window without one and off in the windows with one; the linear baseline, fitted
    without the push steps, is exact too."""
    obs, action, done, pushed, exact = _linear_system(steps=50, envs=6, push_at=(10, 20))
    report = open_loop_errors(exact, obs, action, done, pushed, fit_envs=3)
    assert report.without_push.overall["world_model"] == pytest.approx([0.0] * 4, abs=1e-5)
    assert report.without_push.overall["linear"] == pytest.approx([0.0] * 4, abs=1e-5)
    assert all(e > 0.1 for e in report.with_push.overall["world_model"])
    # horizon 1: 2 push steps x 3 judged envs; horizon 5: the 5 starts before each push
    assert report.with_push.windows[:2] == (6, 30)
    assert report.without_push.windows[:2] == ((50 - 2) * 3, (46 - 10) * 3)


def test_window_counts_by_hand():
    """T = 6, judged env 1: an episode ends in step 2, a push lands in step 4.
    k=1: starts 0..5; 2 ends -> calm {0, 1, 3, 5}, push {4}.
    k=2: starts 0..4 cover (s, s+1); 1 and 2 hold the end -> calm {0}, push {3, 4}.
    k=3: starts 0..3; 0, 1 and 2 hold the end -> calm none (nan), push {3}."""
    obs = torch.randn(7, 2, 3)
    action = torch.randn(6, 2, 1)
    done = torch.zeros(6, 2, dtype=torch.bool)
    pushed = torch.zeros(6, 2, dtype=torch.bool)
    done[2, 1] = True
    pushed[4, 1] = True
    report = open_loop_errors(CopyLast(), obs, action, done, pushed, horizons=(1, 2, 3), fit_envs=1)
    assert report.without_push.windows == (4, 1, 0)
    assert report.with_push.windows == (1, 2, 1)
    assert math.isnan(report.without_push.overall["copy_last"][2])
    assert not math.isnan(report.with_push.overall["copy_last"][2])
    assert "      -" in format_table(report)  # a horizon without windows


def test_a_slot_that_never_moves_is_divided_by_the_floor():
    obs, action = _ramp()
    obs = torch.cat([obs, torch.ones(31, 4, 1)], dim=-1)  # a third slot stuck at 1
    report = open_loop_errors(CopyLast(), obs, action, torch.zeros(30, 4, dtype=torch.bool), min_std=0.25)
    assert report.scale[2] == 0.25
    assert report.without_push.overall["copy_last"][0] == pytest.approx(math.sqrt(2 / 3) / math.sqrt(80), rel=1e-6)


def test_flat_metrics_and_table_name_every_horizon_predictor_and_group():
    obs, action, done, pushed, exact = _linear_system(steps=40, envs=4, push_at=(20,))
    report = open_loop_errors(exact, obs, action, done, pushed, groups=(("a", 1), ("b", 2)))
    metrics = flat_metrics(report)
    for k in HORIZONS:
        for name in ("error", "copy", "linear", "windows"):
            assert f"world_model/{name}_h{k}" in metrics and f"world_model_push/{name}_h{k}" in metrics
        assert {f"world_model_groups/error_h{k}_a", f"world_model_groups/error_h{k}_b"} <= set(metrics)
    assert len(metrics) == 2 * 4 * 4 + 2 * 4
    table = format_table(report)
    assert "world model" in table and "copy last" in table and "with a push" in table and "b: linear" in table


@pytest.mark.parametrize("change,match", [
    (dict(obs=torch.zeros(40, 4, 3)), "obs must have shape"),
    (dict(done=torch.zeros(40, 4)), "done must be a bool"),
    (dict(pushed=torch.zeros(39, 4, dtype=torch.bool)), "pushed must be a bool"),
    (dict(horizons=(1, 41)), "horizons"),
    (dict(fit_envs=4), "fit_envs"),
    (dict(groups=(("a", 2),)), "groups cover 2"),
    (dict(min_std=0.0), "min_std"),
])
def test_bad_input_is_refused_in_one_line(change, match):
    obs, action, done, _, exact = _linear_system(steps=40, envs=4)
    args = dict(world_model=exact, obs=obs, action=action, done=done) | change
    with pytest.raises(ValueError, match=match) as info:
        open_loop_errors(**args)
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- in validation
BALANCE = ["--data.task", "balance", "--data.num_envs", "8", "--data.eval_episodes", "2", "--data.eval_curve", "false",
           "--data.physics_threads", "1", "--data.wm_eval_envs", "4", "--data.wm_eval_steps", "60",
           "--model.lstm_hidden", "16", "--trainer.enable_progress_bar", "false",
           "--trainer.enable_model_summary", "false"]


def test_validation_logs_error_against_horizon_with_both_baselines(tmp_path, capsys, monkeypatch):
    from quadlit.cli import run_cli

    monkeypatch.setattr(sys, "argv", ["quadlit"])  # the CLI reads its arguments only from the list

    cli = run_cli(["validate", "--untrained", *BALANCE, "--trainer.default_root_dir", str(tmp_path)])
    logged = set(cli.trainer.callback_metrics)
    for k in HORIZONS:
        for name in ("error", "copy", "linear"):
            assert {f"eval_world_model/{name}_h{k}", f"eval_world_model_push/{name}_h{k}"} <= logged
        assert f"eval_world_model_groups/error_h{k}_joint_vel" in logged
    assert cli.trainer.callback_metrics["eval_world_model/windows_h1"] > 0
    out = capsys.readouterr().out
    assert "world-model open-loop error (eval" in out and "copy last" in out and "foot_contact: linear" in out
    events = b"".join(p.read_bytes() for p in tmp_path.rglob("events.out.tfevents.*"))
    assert b"eval/world_model_error" in events  # the plot

    cli = run_cli(["validate", "--untrained", *BALANCE, "--model.wm_updates", "0",
                   "--trainer.default_root_dir", str(tmp_path / "off")])
    assert not any(k.startswith("eval_world_model") for k in cli.trainer.callback_metrics)
    assert "world-model open-loop error" not in capsys.readouterr().out


def _recorded_fit(root, *extra):
    """A tiny reach fit: the training metrics after every iteration (no evaluation or timing
    ones), the final state dict, and the final callback metrics."""
    from lightning.pytorch.callbacks import Callback

    from quadlit.cli import run_cli
    from tests.tiny import REPO, TINY

    rows = []

    class Record(Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            rows.append({k: float(v) for k, v in trainer.callback_metrics.items()
                         if not k.startswith(("perf/", "eval"))})

    cli = run_cli(["fit", "--config", str(REPO / "configs/reach.yaml"), *TINY, "--trainer.logger", "false",
                   "--trainer.default_root_dir", str(root), *extra], extra_callbacks=[Record()])
    return rows, cli.model.state_dict(), dict(cli.trainer.callback_metrics)


def test_the_evaluation_leaves_training_unchanged(tmp_path, monkeypatch):
    """Two tiny fits with a validation after each epoch, one measuring the world model and one
    not: every training metric and the final parameters are bitwise the same, so the measurement
    drew from none of the training random streams."""
    monkeypatch.setattr(sys, "argv", ["quadlit"])
    rows_off, state_off, _ = _recorded_fit(tmp_path / "off", "--data.wm_eval_envs", "0")
    rows_on, state_on, final = _recorded_fit(tmp_path / "on", "--data.wm_eval_envs", "4", "--data.wm_eval_steps", "25")
    assert "eval_world_model/error_h25" in final  # measured after each of the 2 epochs
    assert len(rows_on) == 4 and rows_on == rows_off
    assert state_on.keys() == state_off.keys()
    assert all(torch.equal(state_on[k], state_off[k]) for k in state_on)


def test_the_world_models_training_leaves_ppo_unchanged(tmp_path, monkeypatch):
    """The world model draws its batches from a stream of its own: without it, or trained
    differently, every PPO metric and every parameter outside it are bitwise the same."""
    monkeypatch.setattr(sys, "argv", ["quadlit"])
    runs = [_recorded_fit(tmp_path / name, "--data.wm_eval_envs", "0", *extra) for name, extra in (
        ("none", ("--model.wm_updates", "0")),
        ("one_step", ("--model.wm_updates", "1", "--model.wm_horizon", "1")),
        ("unrolled", ("--model.wm_updates", "2", "--model.wm_horizon", "4", "--model.wm_every", "2")))]

    def ppo(rows):
        return [{k: v for k, v in row.items() if not k.startswith("world_model/")} for row in rows]

    (rows0, state0, _), *others = runs
    assert len(rows0) == 4 and not any(k.startswith("world_model/") for k in rows0[-1])
    for rows, state, _ in others:
        assert any(k.startswith("world_model/") for k in rows[-1])
        assert ppo(rows) == ppo(rows0)
        for key in state0:
            if not key.startswith("world_model."):
                assert torch.equal(state[key], state0[key]), key
    assert not torch.equal(runs[1][1]["world_model.decoder.0.weight"], runs[2][1]["world_model.decoder.0.weight"])
