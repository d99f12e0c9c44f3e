"""Time to balance: run the default ``fit`` and evaluate the policy periodically.

    quadlit bench train [--config configs/balance.yaml] [--minutes 3] [--eval-every 2] [--out docs/images]

The clock starts when this command starts (imports and Numba compilation included) and stops
while the periodic evaluations run (they are measurement, not training). At the end the trained
policy's and the zero-action baseline's push-robustness curves are measured. Prints the learning
curve as a table and writes two PNGs: the learning curve (survival and return against wall-clock
and env-steps) and the robustness curves.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

T0 = time.perf_counter()

import numpy as np  # noqa: E402

from quadlit.models.baselines import ZeroPolicy  # noqa: E402


def _curve(policy, obs_norm, dm, device) -> dict[float, float]:
    from quadlit.tasks import evaluation_params, make_task
    from quadlit.training.rollout import evaluate_policy

    out = {}
    for name, params in evaluation_params(dm.task_name, dm.task_params).items():
        if not name:
            continue
        task = make_task(dm.task_name, dm.eval_episodes, params, dm.eval_seed)
        out[float(name.split("_")[1])] = float(np.mean(evaluate_policy(policy, obs_norm, task, dm.eval_seed,
                                                                       device)["survived"]))
        task.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="quadlit bench train", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/balance.yaml", help="the fit config to time")
    parser.add_argument("--minutes", type=float, default=3.0, help="training wall-clock budget")
    parser.add_argument("--eval-every", type=int, default=2, help="evaluate every N epochs")
    parser.add_argument("--eval-episodes", type=int, default=64, help="episodes per evaluation")
    parser.add_argument("--target", type=float, default=0.95, help="survival rate that counts as balanced")
    parser.add_argument("--out", default="docs/images", help="folder for the PNGs")
    args, extra = parser.parse_known_args(argv)  # the rest goes to fit, e.g. --data.num_envs=512

    from lightning.pytorch.callbacks import Callback

    from quadlit.bench import open_ended_fit
    from quadlit.cli import quiet_known_warnings, run_cli
    from quadlit.training.normalizer import RunningNorm
    from quadlit.training.plots import learning_curve_figure, robustness_figure

    class Clock(Callback):
        """Training wall-clock (evaluations excluded), env-steps and eval results per evaluation."""

        def __init__(self) -> None:
            self.eval_seconds = 0.0
            self.rows: list[dict[str, float]] = []
            self.collect = self.update = 0.0
            self._start = 0.0

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            m = trainer.callback_metrics
            self.collect += float(m.get("perf/collect_seconds", 0.0))
            self.update += float(m.get("perf/update_seconds", 0.0))
            if self.train_seconds() > args.minutes * 60:
                trainer.should_stop = True

        def train_seconds(self) -> float:
            return time.perf_counter() - T0 - self.eval_seconds

        def on_validation_start(self, trainer, module) -> None:
            self._start = time.perf_counter()

        def on_validation_end(self, trainer, module) -> None:
            m = trainer.callback_metrics
            self.rows.append({"seconds": self.train_seconds() - (time.perf_counter() - self._start),
                              "env_steps": float(module.env_steps), "survival": float(m["eval/survived"]),
                              "return": float(m["eval/return"])})
            self.eval_seconds += time.perf_counter() - self._start
            r = self.rows[-1]
            print(f"  {r['seconds']:7.1f} s  {r['env_steps'] / 1e6:6.2f} M steps  survival {100 * r['survival']:5.1f}%  "
                  f"return {r['return']:8.1f}", flush=True)

    quiet_known_warnings()
    clock = Clock()
    fit_args = open_ended_fit(args.config, "--trainer.check_val_every_n_epoch", str(args.eval_every),
                              "--data.eval_curve", "false", "--data.eval_episodes", str(args.eval_episodes), *extra)
    print(f"time to balance: {args.config}, budget {args.minutes} min of training wall-clock (evaluations excluded)")
    cli = run_cli(fit_args, extra_callbacks=[clock])
    module, dm = cli.model, cli.datamodule
    total_s = clock.train_seconds()
    steps = float(module.env_steps)
    reached = next((r for r in clock.rows if r["survival"] >= args.target), None)
    print(f"\ntrained {total_s:.0f} s, {steps / 1e6:.2f} M env-steps, {steps / total_s:.0f} env-steps/s overall; "
          f"collection {clock.collect:.0f} s, updates {clock.update:.0f} s, "
          f"other (start-up, compilation, logging) {total_s - clock.collect - clock.update:.0f} s")
    if reached:
        print(f"balanced (survival >= {100 * args.target:.0f}%) after {reached['seconds']:.0f} s, "
              f"{reached['env_steps'] / 1e6:.2f} M env-steps")
    else:
        best = max(clock.rows, key=lambda r: r["survival"]) if clock.rows else None
        print(f"not balanced within the budget; best survival {100 * best['survival']:.1f}%" if best else "no evaluation ran")

    device = module.device
    trained = _curve(module.policy, module.obs_norm, dm, device)
    zero = _curve(ZeroPolicy(dm.action_dim), RunningNorm(dm.obs_dim, enabled=False), dm, device)
    print("\npush-robustness (survival of 20 s episodes, deterministic, fixed seeds):")
    print("  push m/s     " + "  ".join(f"{m:>5.1f}" for m in trained))
    print("  trained      " + "  ".join(f"{100 * v:>4.0f}%" for v in trained.values()))
    print("  zero action  " + "  ".join(f"{100 * v:>4.0f}%" for v in zero.values()))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    learning_curve_figure(clock.rows, target=args.target).savefig(out / "learning_curve.png")
    robustness_figure({"trained": (list(trained), list(trained.values())),
                       "zero action": (list(zero), list(zero.values()))}).savefig(out / "push_robustness.png")
    print(f"wrote {out / 'learning_curve.png'} and {out / 'push_robustness.png'}")
    return 0
