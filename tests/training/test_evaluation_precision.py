"""In-run evaluations judge the deployed policy in float32, as it is exported and run, even when
the run trains under bf16 autocast."""

import torch

from quadlit.cli import run_cli
from quadlit.training.evaluation import evaluate_once
from tests.tiny import REPO


def test_a_bf16_runs_evaluation_equals_a_float32_evaluation_of_its_policy(tmp_path, monkeypatch):
    import sys

    monkeypatch.setattr(sys, "argv", ["quadlit"])
    cli = run_cli(["fit", "--config", str(REPO / "configs/balance.yaml"), "--data.num_envs", "16",
                   "--data.rollout_steps", "8", "--data.iterations_per_epoch", "2", "--data.eval_episodes", "3",
                   "--data.balance.max_steps", "150", "--model.lstm_hidden", "16", "--trainer.max_time", "null",
                   "--trainer.max_epochs", "2", "--trainer.check_val_every_n_epoch", "2",
                   "--trainer.precision", "bf16-mixed", "--trainer.logger", "false",
                   "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path)])
    trainer, module, dm = cli.trainer, cli.model, cli.datamodule
    logged = {k.split("/", 1)[1]: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("eval/")}

    def judge() -> dict[str, float]:
        return evaluate_once(dm.task_name, dm.task_params, module.deployed_policy, module.deployed_norm, 3,
                             dm.eval_seed, "cpu", "")

    float32 = judge()
    assert "return" in float32 and {k: logged[k] for k in float32} == float32  # bit for bit
    if trainer.precision == "bf16-mixed":  # quadlit trains in float32 on a CPU without native bf16
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = judge()
        assert bf16["return"] != float32["return"]  # what the in-run numbers were before
