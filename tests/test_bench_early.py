"""`quadlit bench early`: copies taken after the listed iterations (not references to the live
networks), their policies evaluated at the chosen pushes, the statistics swap consistent with the
plain evaluation, and bad input refused."""

import json
from argparse import Namespace
from pathlib import Path

import pytest
import torch

from quadlit.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
# a tiny balance run: 16 environments x 8 steps per iteration (128 env-steps), 2 iterations per epoch
TINY_BALANCE = ["--data.num_envs", "16", "--data.min_envs", "16", "--data.iterations_per_epoch", "2",
                "--data.rollout_steps", "8", "--trainer.enable_checkpointing", "false", "--trainer.logger", "false",
                "--trainer.max_epochs", "2"]  # a miscounted iteration then ends the run instead of hanging it


def test_copies_are_taken_after_their_iterations_across_epochs():
    from quadlit.bench.early import train_and_copy

    args = Namespace(config=str(REPO / "configs/balance.yaml"), seed=0, iterations=[1, 3])
    copies, dm = train_and_copy(args, TINY_BALANCE)
    assert [c["iteration"] for c in copies] == [1, 3]  # iteration 3 is the first of epoch 2
    assert [c["env_steps"] for c in copies] == [128, 384]
    # the observation statistics of each copy have seen exactly its iterations' observations:
    # a reference to the live normaliser would read 384 twice
    assert [int(c["norm"].count) for c in copies] == [128, 384]
    first, later = (dict(c["trained"].named_parameters()) for c in copies)
    assert any(not torch.equal(first[k], later[k]) for k in first)  # two more updates moved the policy
    assert set(copies[0]["update"]) >= {"train/approx_kl", "train/learning_rate", "train/action_std"}
    assert 0.0 < copies[0]["update"]["train/action_std"] <= 1.0  # the noise schedule starts at std 1
    assert dm.task_name == "balance"


def test_bench_early_reports_every_policy_and_the_swap_agrees_with_the_plain_evaluation(tmp_path):
    from quadlit.bench.early import main

    out = tmp_path / "early.json"
    assert main(["--config", str(REPO / "configs/balance.yaml"), "--iterations", "2", "1", "--pushes", "0.5", "1.0",
                 "--episodes", "2", "--swap-stats", "--out", str(out), *TINY_BALANCE]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["iteration"] for r in rows] == [1, 2]
    for r in rows:
        for name in ("deployed", "trained", "sampled"):
            assert list(r[name]) == ["0.5", "1.0"]
            assert all(v in (0.0, 0.5, 1.0) for v in r[name].values())  # 2 episodes per push
        # the deployed policy with its own statistics is the plain deployed evaluation, episode for episode
        own = rows.index(r)
        assert r["swap"][own] == r["deployed"]
        assert len(r["swap"]) == len(rows)


def test_bad_input_is_refused_in_one_line(tmp_path):
    from quadlit.bench.early import main

    balance = str(REPO / "configs/balance.yaml")
    with pytest.raises(ConfigError, match="counted from 1"):
        main(["--config", balance, "--iterations", "0"])
    with pytest.raises(ConfigError, match="--episodes"):
        main(["--config", balance, "--episodes", "0"])
    with pytest.raises(ConfigError, match="--pushes"):
        main(["--config", balance, "--pushes", "-1"])
    with pytest.raises(ConfigError, match="no config file"):
        main(["--config", str(tmp_path / "none.yaml")])
    with pytest.raises(ConfigError, match="balance task"):
        main(["--config", str(REPO / "configs/reach.yaml"), "--iterations", "1", "--data.num_envs", "8",
              "--data.rollout_steps", "8", "--trainer.enable_checkpointing", "false", "--trainer.logger", "false"])
