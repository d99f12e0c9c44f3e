"""Learning the balance task: a short run of the default recipe survives pushes that neither
the zero-action policy (which, in pd mode, holds the default pose) nor a random policy
survives, and that the recipe before the learning work never survived (1.5 and 2.0 m/s).

Measured on the development machine (2 cores) with the assertions' settings (EPOCHS epochs of
the default config, seed 0, 64 deterministic 20 s episodes per magnitude, pushes every 2-4 s,
domain randomisation on), survival % at 0.5/1.0/1.5/2.0/2.5/3.0 m/s:

    trained (12 epochs, 0.98 M env-steps, about 55 s)   100 100 100 100  91  73   (2026-12-07, Intel Xeon)
    the same with the recovery_step reward unramped     100 100 100  97  84  56   (2026-12-07, Intel Xeon)
    the same before the recovery_step reward            100 100  94  70  50  39   (2026-11-29, AMD EPYC)
    zero action                                          100   8   0   0   0   0
    random actions                                         0   0   0   0   0   0

(The curve pushes every 2-4 s; the training run every 1-2 s with 1.0-3.5 m/s. With training
pushes of 1.0-3.5 m/s every 2-4 s the same run gave 100/100/94/44/25/14, with 0-3 m/s every
2-4 s 100/98/64/30/12/2.)

The old default (learned std from 0.37, 1.0 m/s pushes, shared critic) survived 0 % at
1.5 m/s even after a full 3-minute run. The assertions leave margin below the measurement
(the run is deterministic on one machine, not bit for bit across CPUs). They were not raised
with the ramp: at 0.98 M env-steps the default's trajectories spread widely (seeds 1 and 2 of
`quadlit bench train`, docs/learning.md screening 18: 100/100/100/94/55/28 and
100/100/91/33/17/9), and another CPU follows another trajectory.
"""

from pathlib import Path

import torch

from quadlit.cli import main
from quadlit.models.baselines import RandomPolicy, ZeroPolicy
from quadlit.training.checkpoint import load_run
from quadlit.training.evaluation import push_curve
from quadlit.training.normalizer import RunningNorm

REPO = Path(__file__).resolve().parents[2]
EPOCHS = 12  # 0.98 M env-steps


def test_balance_recipe_survives_large_pushes(tmp_path):
    assert main(["fit", "--config", str(REPO / "configs/balance.yaml"), "--trainer.max_time", "null",
                 "--trainer.max_epochs", str(EPOCHS), "--trainer.check_val_every_n_epoch", "1000",
                 "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path)]) == 0
    run = load_run(next(tmp_path.rglob("last.ckpt")))
    assert run.task_name == "balance"

    def curve(policy, norm):
        return push_curve(policy, norm, "balance", run.task_params, episodes=64, seed=4242, device=torch.device("cpu"))

    trained = curve(run.module.policy, run.module.obs_norm)
    zero = curve(ZeroPolicy(12), RunningNorm(37, enabled=False))
    random = curve(RandomPolicy(12, seed=0), RunningNorm(37, enabled=False))
    for name, c in (("trained", trained), ("zero action", zero), ("random", random)):
        print(f"{name:12s} " + " ".join(f"{m:g} m/s {100 * v:3.0f} %" for m, v in c.items()))
    for push in (1.5, 2.0):
        assert zero[push] <= 0.1 and random[push] <= 0.1  # pushes no baseline survives
    assert trained[1.0] >= 0.9
    assert trained[1.5] >= 0.8
    assert trained[2.0] >= zero[2.0] + 0.6
    assert trained[2.5] >= zero[2.5] + 0.3
