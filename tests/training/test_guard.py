"""The deployment guard (``model.guard_tolerance``): the latest policy is deployed only if the
guard's episodes show it no worse than the best deployed one by more than the tolerance."""

import numpy as np
import pytest
import torch

from quadlit.cli import main
from quadlit.training.module import QuadlitModule
from tests.tiny import REPO


def _fill(module: torch.nn.Module, value: float) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.fill_(value)


def test_the_guard_deploys_a_policy_only_if_no_score_fell_more_than_the_tolerance():
    m = QuadlitModule(obs_dim=37, action_dim=12, policy_average=0.95, guard_tolerance=0.1)
    assert m.deployed_policy is m.guarded_policy and m.deployed_norm is m.guarded_norm
    assert m.latest_policy is m.policy_avg
    _fill(m.policy_avg, 1.0)
    m.obs_norm.update(torch.full((4, 37), 2.0))
    assert m.guard_decide([0.5, 0.2])  # the first check always deploys
    assert all(bool((p == 1.0).all()) for p in m.guarded_policy.parameters())
    torch.testing.assert_close(m.guarded_norm.mean, m.obs_norm.mean)
    _fill(m.policy_avg, 2.0)
    m.obs_norm.update(torch.full((4, 37), 6.0))
    assert m.guard_decide([0.45, 0.3])  # 0.45 >= 0.5 - 0.1: deployed; the best becomes [0.5, 0.3]
    assert m.guard_best == [0.5, 0.3]
    assert all(bool((p == 2.0).all()) for p in m.guarded_policy.parameters())
    deployed_mean = m.guarded_norm.mean.clone()
    _fill(m.policy_avg, 3.0)
    m.obs_norm.update(torch.full((4, 37), -9.0))
    assert not m.guard_decide([0.39, 0.9])  # 0.39 < 0.5 - 0.1: the last deployed stays, with its statistics
    assert all(bool((p == 2.0).all()) for p in m.guarded_policy.parameters())
    torch.testing.assert_close(m.guarded_norm.mean, deployed_mean)
    assert not torch.equal(m.guarded_norm.mean, m.obs_norm.mean)
    assert m.guard_best == [0.5, 0.3]  # a rejected policy's scores do not count
    # a slow slide is caught: each step 0.06 below the last, but the bar is the best, not the last
    assert m.guard_decide([0.44, 0.3]) and not m.guard_decide([0.38, 0.3])
    # without a guard the deployed policy is the latest, acting with the run's statistics
    plain = QuadlitModule(obs_dim=37, action_dim=12, policy_average=0.95)
    assert plain.deployed_policy is plain.policy_avg and plain.deployed_norm is plain.obs_norm
    assert plain.guarded_policy is None


def test_the_balance_guard_pushes_each_magnitude_in_short_episodes():
    from quadlit.models.baselines import ZeroPolicy
    from quadlit.tasks import guard_evaluation, make_evaluation_task
    from quadlit.tasks.balance import BalanceParams
    from quadlit.tasks.balance.evaluation import GUARD_PUSHES, GUARD_STEPS
    from quadlit.training.evaluation import run_evaluation
    from quadlit.training.normalizer import RunningNorm

    evaluation = guard_evaluation("balance", BalanceParams(push_magnitude=3.5, push_jitter=0.7), 8)
    assert evaluation.num_envs == 8 * len(GUARD_PUSHES)
    assert evaluation.params.max_steps == GUARD_STEPS and evaluation.params.push_jitter == 0.0
    task = make_evaluation_task("balance", evaluation, 777)
    try:
        values = run_evaluation(evaluation, task, ZeroPolicy(12), RunningNorm(37, enabled=False), 777, "cpu")
    finally:
        task.close()
    assert sorted(values) == [f"push_{m:.1f}" for m in GUARD_PUSHES]
    # every guard episode holds a push (the first comes 2-4 s in, the episode lasts 6 s): standing
    # still survives none from 1.5 m/s up (as on the curve), some at 1.0 m/s
    assert all(values[f"push_{m:.1f}"] == 0.0 for m in GUARD_PUSHES if m >= 1.5)
    assert values["push_1.0"] > 0.0
    with pytest.raises(ValueError, match="no guard evaluation"):
        guard_evaluation("reach", None, 8)


ARGS = [
    "fit", "--config", str(REPO / "configs/balance.yaml"),
    "--data.num_envs", "16", "--data.rollout_steps", "8", "--data.iterations_per_epoch", "2",
    "--data.eval_episodes", "4", "--data.eval_curve", "false", "--data.balance.max_steps", "60",
    "--data.guard_episodes", "2", "--model.lstm_hidden", "16", "--trainer.max_time", "null",
    "--trainer.check_val_every_n_epoch", "2", "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
]


def _fit(root, *extra):
    assert main([*ARGS, "--trainer.default_root_dir", str(root), *extra]) == 0
    return torch.load(root / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)


def test_the_guard_reads_the_training_and_resumes_exactly(tmp_path):
    guarded = ["--model.guard_tolerance", "0.05"]
    plain = _fit(tmp_path / "plain", "--trainer.max_epochs", "4")
    whole = _fit(tmp_path / "whole", "--trainer.max_epochs", "4", *guarded)
    # training is the same with and without the guard: it only reads the policy
    trained = {k: v for k, v in whole["state_dict"].items() if not k.startswith("guarded")}
    assert set(trained) == set(plain["state_dict"])
    assert all(torch.equal(v, plain["state_dict"][k]) for k, v in trained.items())
    assert any(k.startswith("guarded_policy.") for k in whole["state_dict"])
    assert len(whole["quadlit_guard_best"]) == 5 and all(0.0 <= v <= 1.0 for v in whole["quadlit_guard_best"])
    # stopped after 2 epochs and continued to 4: the same choice and the same best scores
    _fit(tmp_path / "part", "--trainer.max_epochs", "2", *guarded)
    resumed = _fit(tmp_path / "part", "--trainer.max_epochs", "4", "--ckpt_path", "last", *guarded)
    assert resumed["quadlit_guard_best"] == whole["quadlit_guard_best"]
    for k, v in whole["state_dict"].items():
        assert torch.equal(v, resumed["state_dict"][k]), k
    # what a checkpoint's users run is the guard's choice, with its statistics
    from quadlit.training.checkpoint import load_run

    run = load_run(tmp_path / "whole" / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt")
    assert run.module.deployed_policy is run.module.guarded_policy
    np.testing.assert_array_equal(run.module.deployed_norm.mean.numpy(),
                                  whole["state_dict"]["guarded_norm.mean"].numpy())
