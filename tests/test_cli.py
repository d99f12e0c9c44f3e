"""The command line: end-to-end fit -> validate on a tiny config, and one-line errors for bad input."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from quadlit.cli import main
from tests.tiny import REPO, TINY


def _fit(tmp_path, *extra):
    args = ["fit", "--config", str(REPO / "configs/reach.yaml"), *TINY,
            "--trainer.default_root_dir", str(tmp_path), *extra]
    assert main(args) == 0
    ckpts = sorted(tmp_path.rglob("last.ckpt"))
    assert len(ckpts) == 1
    return ckpts[0]


def test_fit_then_validate_from_checkpoint(tmp_path, capsys):
    last = _fit(tmp_path)
    state = torch.load(last, weights_only=False)
    assert state["global_step"] > 0
    # the module, optimizers, observation statistics and the environments' state are all saved
    assert any(k.startswith("policy.") for k in state["state_dict"])
    assert state["state_dict"]["obs_norm.count"] == 2 * 2 * 8 * 8  # epochs x iterations x envs x steps
    assert state["state_dict"]["env_steps"] == 2 * 2 * 8 * 8
    assert len(state["optimizer_states"]) == 2
    assert "RolloutDataModule" in state and state["RolloutDataModule"]["num_envs"] == 8
    assert len(list(tmp_path.rglob("best-*.ckpt"))) == 1
    assert len(list(tmp_path.rglob("events.out.tfevents.*"))) >= 1
    assert len(list(tmp_path.rglob("config.yaml"))) == 1

    capsys.readouterr()
    assert main(["validate", "--config", str(REPO / "configs/reach.yaml"), *TINY,
                 "--trainer.default_root_dir", str(tmp_path / "val"), "--ckpt_path", str(last)]) == 0
    out = capsys.readouterr().out
    assert "eval/return" in out and "eval/goals" in out


BAD_INPUTS = [
    (["--data.num_envs", "0"], "num_envs"),
    (["--data.num_envs", "-5"], "num_envs"),
    (["--data.task", "swim"], "data.task"),
    (["--model.gamma", "1.5"], "gamma"),
    (["--model.gamma", "0"], "gamma"),
    (["--model.gae_lambda", "-0.1"], "gae_lambda"),
    (["--model.lr", "-1"], "lr"),
    (["--model.ppo_epochs", "0"], "ppo_epochs"),
    (["--data.rollout_steps", "0"], "rollout_steps"),
    (["--data.reach.goal_threshold", "-1"], "goal_threshold"),
    (["--data.reach.max_steps", "0"], "max_steps"),
    (["--model.lr", "fast"], "lr"),
    (["--data.no_such_field", "1"], "no_such_field"),
    (["--ckpt_path", "/nonexistent/model.ckpt"], "ckpt_path"),
]


@pytest.mark.parametrize("extra,needle", BAD_INPUTS, ids=[n for _, n in BAD_INPUTS])
def test_bad_input_is_one_line_naming_the_field(tmp_path, capsys, extra, needle):
    code = main(["fit", "--config", str(REPO / "configs/reach.yaml"), *TINY,
                 "--trainer.default_root_dir", str(tmp_path), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("quadlit: error:") and needle in err, err
    assert "Traceback" not in err
    assert not any(tmp_path.iterdir()), "nothing may be written on bad input"


@pytest.mark.parametrize("content,needle", [
    ("data: [unclosed\n", "yaml"),
    ("data:\n  num_envs: {}\n", "num_envs"),
])
def test_bad_config_file(tmp_path, capsys, content, needle):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(content)
    code = main(["fit", "--config", str(cfg), "--trainer.default_root_dir", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and needle in err.lower(), err
    assert not (tmp_path / "out").exists()


def test_console_script_reports_bad_input_without_traceback(tmp_path):
    exe = Path(sys.executable).parent / "quadlit"
    proc = subprocess.run([str(exe), "fit", "--config", str(REPO / "configs/reach.yaml"), "--model.gamma", "2"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "model.gamma" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "lightning_logs").exists()


def test_load_run_restores_task_and_policy(tmp_path):
    from quadlit.tasks.reach import ReachParams
    from quadlit.training.checkpoint import load_run

    last = _fit(tmp_path, "--data.reach.goal_bonus", "7.5")
    run = load_run(last)
    assert run.task_name == "reach"
    assert run.task_params == ReachParams(max_steps=40, goal_bonus=7.5)
    saved = torch.load(last, weights_only=True)["state_dict"]
    for k, v in run.module.state_dict().items():
        assert torch.equal(v, saved[k]), k


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", None])
def test_load_run_rejects_bad_files_in_one_line(tmp_path, content):
    from quadlit.errors import ConfigError
    from quadlit.training.checkpoint import load_run

    path = tmp_path / "x.ckpt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match="ckpt_path"):
        load_run(path)


@pytest.fixture(scope="module")
def reach_checkpoint(tmp_path_factory):
    return _fit(tmp_path_factory.mktemp("reach_ckpt"))


def test_validate_reports_the_step_of_the_checkpoint_it_evaluates(tmp_path, capsys, reach_checkpoint):
    step = torch.load(reach_checkpoint, weights_only=True)["global_step"]
    capsys.readouterr()
    assert main(["validate", "--config", str(REPO / "configs/reach.yaml"), *TINY, "--trainer.default_root_dir",
                 str(tmp_path), "--ckpt_path", str(reach_checkpoint), "--data.wm_eval_envs", "4",
                 "--data.wm_eval_steps", "30"]) == 0
    out = capsys.readouterr().out
    assert step > 0 and f"world-model open-loop error (eval, step {step};" in out, out


@pytest.mark.parametrize("command", ["validate", "test"])
def test_untrained_with_a_checkpoint_is_refused(tmp_path, capsys, reach_checkpoint, command):
    out = tmp_path / "out"
    code = main([command, "--config", str(REPO / "configs/reach.yaml"), *TINY, "--trainer.default_root_dir", str(out),
                 "--untrained", "--ckpt_path", str(reach_checkpoint)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("quadlit: error:") and "--untrained evaluates newly initialised weights" in err, err
    assert not out.exists()


@pytest.mark.parametrize("case", ["other_task", "other_obs_size", "truncated", "not_a_checkpoint", "empty"])
def test_unusable_checkpoint_is_one_line_and_writes_nothing(tmp_path, capsys, reach_checkpoint, case):
    ckpt = reach_checkpoint
    extra: list[str] = []
    if case == "other_task":
        extra = ["--data.task", "balance"]
    elif case == "other_obs_size":  # a checkpoint whose policy saw a different observation length
        state = torch.load(reach_checkpoint, weights_only=True)
        state["hyper_parameters"]["obs_dim"] = 9
        state.pop("quadlit_digest")  # an edited file that is otherwise sound: the size check must catch it
        ckpt = tmp_path / "other_obs.ckpt"
        torch.save(state, ckpt)
    else:
        ckpt = tmp_path / "bad.ckpt"
        data = reach_checkpoint.read_bytes()
        ckpt.write_bytes({"truncated": data[: len(data) // 2], "not_a_checkpoint": b"hello", "empty": b""}[case])
    out = tmp_path / "out"
    code = main(["fit", "--config", str(REPO / "configs/reach.yaml"), *TINY, "--trainer.default_root_dir", str(out),
                 "--ckpt_path", str(ckpt), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "ckpt_path" in err, err
    assert not out.exists()


def test_fit_with_bf16_mixed_precision_on_cpu(tmp_path):
    last = _fit(tmp_path, "--trainer.precision", "bf16-mixed")
    state = torch.load(last, weights_only=True)
    assert state["global_step"] > 0
    assert all(torch.isfinite(v).all() for k, v in state["state_dict"].items() if v.is_floating_point())


def test_bf16_falls_back_to_float32_on_a_cpu_without_native_bf16(tmp_path, capsys, monkeypatch):
    import quadlit.cli

    monkeypatch.setattr(quadlit.cli, "cpu_has_native_bf16", lambda: False)
    last = _fit(tmp_path, "--trainer.precision", "bf16-mixed")
    assert "no native bf16 arithmetic: training in 32-true" in capsys.readouterr().err
    config = (last.parents[1] / "config.yaml").read_text()
    assert "precision: 32-true" in config


@pytest.mark.parametrize("policy,critic", [("entity_belief", "shared"), ("entity_belief", "privileged"),
                                           ("mlp", "separate")])
def test_balance_task_runs_end_to_end(tmp_path, capsys, policy, critic):
    """fit on the balance task (tiny) with each policy and critic, then validate prints the
    push-robustness table."""
    args = ["--model.policy", policy, "--model.critic", critic, "--model.mlp_hidden", "[16]",
            "--model.critic_hidden", "[16]", "--data.task", "balance", "--data.num_envs", "8", "--data.rollout_steps", "8",
            "--data.iterations_per_epoch", "2", "--data.eval_episodes", "2", "--data.balance.max_steps", "30",
            "--data.physics_threads", "1", "--model.lstm_hidden", "16", "--model.wm_batch_size", "32",
            "--model.num_minibatches", "2", "--trainer.max_epochs", "1", "--trainer.check_val_every_n_epoch", "1",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    assert main(["fit", *args, "--trainer.default_root_dir", str(tmp_path)]) == 0
    last = next(tmp_path.rglob("last.ckpt"))
    capsys.readouterr()
    assert main(["validate", *args, "--trainer.default_root_dir", str(tmp_path / "val"), "--ckpt_path", str(last)]) == 0
    out = capsys.readouterr().out
    assert "push-robustness" in out and "eval/survived" in out
    assert "eval_curve/push_3.0" in out
    if critic != "shared":  # the separate critic and its input statistics are in the checkpoint
        from quadlit.training.checkpoint import load_run

        module = load_run(last).module
        assert module.critic is not None and module.critic.norm.count > 0
        assert module.critic.in_dim == 37 + (9 if critic == "privileged" else 0)


def test_a_privileged_critic_needs_a_task_that_has_one(tmp_path, capsys):
    assert main(["fit", *TINY, "--data.task", "reach", "--model.critic", "privileged",
                 "--trainer.default_root_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "privileged" in err[0] and "separate" in err[0]
    assert not (tmp_path / "lightning_logs").exists()


def test_non_finite_losses_stop_the_run_naming_the_last_good_checkpoint(tmp_path, capsys, monkeypatch):
    import quadlit.training.module as module_mod

    real = module_mod.clipped_policy_loss
    calls = []

    def nan_loss(*args, **kwargs):  # finite for the first epoch (2 iterations x 4 epochs x 2 minibatches)
        calls.append(1)
        loss, stats = real(*args, **kwargs)
        return (loss * float("nan") if len(calls) > 16 else loss), stats

    monkeypatch.setattr(module_mod, "clipped_policy_loss", nan_loss)
    code = main(["fit", "--config", str(REPO / "configs/reach.yaml"), *TINY, "--trainer.max_epochs", "5",
                 "--trainer.check_val_every_n_epoch", "100", "--model.max_nonfinite_iterations", "3",
                 "--trainer.default_root_dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3
    assert len(err) == 1 and "non-finite in 3 iterations in a row" in err[0], err
    last = next(tmp_path.rglob("last.ckpt"))
    assert str(last) in err[0]
    # the non-finite updates were skipped: the saved parameters are finite
    state = torch.load(last, weights_only=True)["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_the_readme_says_how_often_the_default_run_evaluates():
    import re

    import yaml

    config = yaml.safe_load((REPO / "configs/balance.yaml").read_text())
    said = re.search(r"an evaluation every (\d+) epochs", (REPO / "README.md").read_text())
    assert said and int(said.group(1)) == config["trainer"]["check_val_every_n_epoch"]
