"""A task's parameters that follow the run's env-steps (``VecTask.set_progress``): the balance
task's recovery-step ramp, told by the data module before every rollout."""

import sys

import pytest

from quadlit.cli import main, run_cli
from quadlit.tasks.balance.task import BalanceTask
from tests.tiny import REPO

BALANCE = [
    "fit", "--config", str(REPO / "configs/balance.yaml"),
    "--data.num_envs", "16", "--data.rollout_steps", "8", "--data.iterations_per_epoch", "2",
    "--data.eval_episodes", "4", "--data.eval_curve", "false", "--data.wm_eval_envs", "0",
    "--data.balance.max_steps", "60", "--data.physics_threads", "1",
    "--data.balance.recovery_step_scale", "0.5", "--data.balance.recovery_step_ramp", "1024",
    "--model.lstm_hidden", "16", "--model.num_minibatches", "2",
    "--trainer.max_epochs", "2", "--trainer.check_val_every_n_epoch", "2", "--trainer.logger", "false",
    "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
]


@pytest.fixture
def told(monkeypatch) -> list[int]:
    """Every env-step count a BalanceTask is told, in order."""
    calls: list[int] = []
    original = BalanceTask.set_progress
    monkeypatch.setattr(BalanceTask, "set_progress", lambda self, n: (calls.append(n), original(self, n))[1])
    monkeypatch.setattr(sys, "argv", ["quadlit"])
    return calls


def test_the_data_module_tells_the_task_the_runs_env_steps_before_each_rollout(tmp_path, told):
    cli = run_cli([*BALANCE, "--trainer.default_root_dir", str(tmp_path)])
    # 2 epochs x 2 rollouts of 16 envs x 8 steps: told 0, 128, 256, 384 (each before its rollout)
    assert told == [0, 128, 256, 384]
    assert int(cli.model.env_steps) == 512
    task = cli.datamodule.collector.task
    assert task.recovery_step_scale == pytest.approx(0.5 * 384 / 1024)
    cli.datamodule.collect()  # a rollout now is paid at the module's 512 env-steps
    assert task.recovery_step_scale == pytest.approx(0.25)


def test_a_resumed_run_continues_the_schedule(tmp_path, told):
    """Stopped after one epoch and resumed for a second, the run is told what the uninterrupted
    run was told (the schedule follows the checkpoint's env-steps, not the process's)."""
    assert main([*BALANCE, "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path),
                 "--trainer.logger", "true"]) == 0
    assert told == [0, 128]
    assert main([*BALANCE, "--trainer.default_root_dir", str(tmp_path), "--trainer.logger", "true",
                 "--ckpt_path", "last"]) == 0
    assert told == [0, 128, 256, 384]
