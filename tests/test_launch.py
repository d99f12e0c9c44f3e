"""The entry point's early reading of the run's task (to start the physics compile helper)."""

import pytest

from quadlit.launch import task_of


@pytest.mark.parametrize("argv,task", [
    (["fit", "--config", "configs/balance.yaml"], "balance"),
    (["fit", "--config=configs/reach.yaml"], "reach"),
    (["fit", "--config", "configs/reach.yaml", "--data.task", "balance"], "balance"),
    (["fit", "--data.task=reach", "--config", "configs/balance.yaml"], "balance"),  # later wins
    (["validate", "--config", "configs/balance_robust.yaml", "--ckpt_path", "x.ckpt"], "balance"),
    (["fit"], "balance"),  # the data module's default
    (["fit", "--config", "no/such/file.yaml"], None),  # the CLI reports it; nothing guessed
    (["fit", "--data", "{task: reach}"], None),
    (["fit", "--config"], None),
    (["bench", "train", "--config", "configs/balance.yaml"], None),  # starts its runs in other processes
    (["bench", "train", "--seeds", "0", "--single", "--config", "configs/reach.yaml"], "reach"),
    (["bench", "train", "--single", "--data.task", "balance"], "balance"),
    ([], None),
])
def test_task_of_reads_the_task_as_the_cli_would(argv, task):
    assert task_of(argv) == task


def test_a_config_without_a_task_keeps_the_earlier_one(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("trainer:\n  max_epochs: 1\ndata:\n  num_envs: 64\n")
    assert task_of(["fit", "--data.task", "reach", "--config", str(cfg)]) == "reach"
    cfg.write_text("data: [1, 2]\n")
    assert task_of(["fit", "--config", str(cfg)]) is None
