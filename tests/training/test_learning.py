"""Learning: the default reach config, trained for under 2 minutes on 2 cores, reaches clearly
more goals per episode than a random policy.

Measured on the development machine (2 cores): a uniform random policy reaches 0.07 goals per
1000-step episode (1000 envs, `quadlit bench reach --baselines`; 0.06 on this test's 64 evaluation episodes); the
policy trained for 160 iterations (1.3 M env-steps, about 60 s) reached 5.02 goals per episode
in deterministic evaluation. The test asserts at least 1 goal per episode and 1 more than the random policy
on the same evaluation seeds.
"""

from pathlib import Path

import numpy as np
import torch

from quadlit.cli import main
from quadlit.models.baselines import RandomPolicy
from quadlit.tasks import make_task
from quadlit.tasks.reach import ReachParams
from quadlit.training.module import QuadlitModule
from quadlit.training.normalizer import RunningNorm
from quadlit.training.rollout import evaluate_policy

REPO = Path(__file__).resolve().parents[2]


def test_reach_policy_beats_random_within_two_minutes(tmp_path):
    # a fixed iteration budget (160 iterations, 1.3 M env-steps: about 100 s on 2 cores) keeps the
    # outcome reproducible: every random draw is seeded, so the same weights come out on any machine
    assert main(["fit", "--config", str(REPO / "configs/reach.yaml"), "--trainer.max_epochs", "16",
                 "--trainer.check_val_every_n_epoch", "1000",
                 "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path)]) == 0
    last = next(tmp_path.rglob("last.ckpt"))
    module = QuadlitModule.load_from_checkpoint(last, map_location="cpu")
    module.eval()

    eval_task = make_task("reach", 64, ReachParams(), seed=0)
    trained = evaluate_policy(module.policy, module.obs_norm, eval_task, seed=2024, device=torch.device("cpu"))
    random = evaluate_policy(RandomPolicy(3, seed=0), RunningNorm(7, enabled=False), eval_task, seed=2024,
                             device=torch.device("cpu"))
    trained_goals, random_goals = float(np.mean(trained["goals"])), float(np.mean(random["goals"]))
    print(f"goals per episode: trained {trained_goals:.2f}, random {random_goals:.2f}")
    assert trained_goals >= 1.0
    assert trained_goals >= random_goals + 1.0
