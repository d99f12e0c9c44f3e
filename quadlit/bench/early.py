"""The first iterations of a balance run, one at a time: how the policy's survival moves from one
iteration to the next, and what moves it.

    quadlit bench early [--config configs/balance.yaml] [--seed 0] [--iterations 10 20 30]
                        [--pushes 0.5 1.0] [--episodes 256] [--policies deployed trained sampled]
                        [--swap-stats] [--out early.json] [any fit option, e.g. --model.desired_kl 0.005]

Trains the run in-process until the last of ``--iterations`` and, after each listed iteration,
copies the policies, the observation statistics and that update's statistics (approximate KL,
learning rate, clip fraction, gradient norm, action std, the critic's explained variance). Then
every copy runs the push-robustness curve's episodes at ``--pushes`` (``--episodes`` each, the
curve's reset seed): ``deployed`` is the policy a run evaluates (its weight average when
``model.policy_average`` is set), ``trained`` the policy PPO trains acting on its mean, ``sampled``
that policy sampling its actions as the rollouts do, at that iteration's noise. With
``--swap-stats`` the deployed policy of every listed iteration also runs with the observation
statistics of every other, which tells a change of the weights from a change of the statistics.

Evaluations draw nothing from the training generators, so a seed's iterations here are those of
``quadlit fit`` / ``quadlit bench train`` with the same seed and options (bitwise, on one machine).
docs/learning.md, screening 22, is what it was written for: the early falls of the default.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
from pathlib import Path

from quadlit.errors import ConfigError
from quadlit.outputs import check_output_file, json_result, write_text

POLICIES = ("deployed", "trained", "sampled")
#: The update's statistics kept per iteration: logged metric -> column title.
UPDATE_STATS = {"train/approx_kl": "KL", "train/learning_rate": "lr", "train/clip_fraction": "clip",
                "train/grad_norm": "grad", "train/action_std": "std", "train/explained_variance": "ev"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="quadlit bench early", description=__doc__.split("\n")[0],
                                epilog="Any other option goes to `quadlit fit` (e.g. --model.desired_kl 0.005).")
    p.add_argument("--config", default="configs/balance.yaml", help="a balance config (default configs/balance.yaml)")
    p.add_argument("--seed", type=int, default=0, help="the run's seed (seed_everything, data.seed, model.seed)")
    p.add_argument("--iterations", type=int, nargs="+", default=[10, 20, 30],
                   help="after which iterations (counted from 1) to copy the policies (default 10 20 30)")
    p.add_argument("--pushes", type=float, nargs="+", default=[0.5, 1.0], help="push magnitudes, m/s (default 0.5 1.0)")
    p.add_argument("--episodes", type=int, default=256, help="episodes per push magnitude (default 256)")
    p.add_argument("--policies", nargs="+", choices=POLICIES, default=list(POLICIES),
                   help="which policies of each copy (default: all three)")
    p.add_argument("--swap-stats", action="store_true",
                   help="also run each deployed policy with every other copy's observation statistics")
    p.add_argument("--out", help="write the results as JSON to this file")
    return p


def _check(args) -> None:
    if min(args.iterations) < 1:
        raise ConfigError("quadlit bench early: --iterations are counted from 1")
    if args.episodes < 1:
        raise ConfigError("quadlit bench early: --episodes must be >= 1")
    if min(args.pushes) <= 0:
        raise ConfigError("quadlit bench early: --pushes must be > 0 m/s")
    if not Path(args.config).is_file():
        raise ConfigError(f"quadlit bench early: no config file {args.config}")
    if args.out:
        check_output_file(args.out, "quadlit bench early: --out", inputs=[args.config], rewritable=json_result("config", "seed", "rows"))


def train_and_copy(args, extra: list[str]) -> tuple[list[dict], object]:
    """Train until the last listed iteration; per listed iteration a copy of what is evaluated.
    Returns the copies (oldest first) and the data module (the task's parameters and seeds)."""
    from lightning.pytorch.callbacks import Callback

    from quadlit.bench import open_ended_fit, seed_options
    from quadlit.cli import quiet_known_warnings, run_cli

    wanted, last = set(args.iterations), max(args.iterations)

    class Copies(Callback):
        def __init__(self) -> None:
            self.copies: list[dict] = []

        def on_fit_start(self, trainer, module) -> None:
            if trainer.datamodule.task_name != "balance":
                raise ConfigError(f"quadlit bench early: {args.config} trains task {trainer.datamodule.task_name!r}; "
                                  f"the push curve is the balance task's")

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            iteration = trainer.current_epoch * trainer.num_training_batches + batch_idx + 1
            if iteration in wanted:
                m = trainer.callback_metrics
                self.copies.append({
                    "iteration": iteration, "env_steps": int(module.env_steps),
                    "update": {k: float(m[k]) for k in UPDATE_STATS if k in m},
                    "deployed": copy.deepcopy(module.deployed_policy), "deployed_norm": copy.deepcopy(module.deployed_norm),
                    "trained": copy.deepcopy(module.policy), "norm": copy.deepcopy(module.obs_norm)})
                print(f"  iteration {iteration}: copied ({int(module.env_steps) / 1e6:.3f} M env-steps)", flush=True)
            if iteration >= last:
                trainer.should_stop = True

    quiet_known_warnings()
    copies = Copies()
    with tempfile.TemporaryDirectory(prefix="quadlit-bench-early-") as tmp:
        fit_args = open_ended_fit(args.config, "--trainer.check_val_every_n_epoch", "1000000",
                                  "--trainer.num_sanity_val_steps", "0", "--trainer.default_root_dir", tmp,
                                  *seed_options(args.seed), *extra)
        cli = run_cli(fit_args, extra_callbacks=[copies])
    if len(copies.copies) < len(wanted):
        raise ConfigError(f"quadlit bench early: the run stopped after {len(copies.copies)} of the listed iterations "
                          f"(a time or epoch limit in the options?)")
    return copies.copies, cli.datamodule


def evaluate_copies(copies: list[dict], dm, args) -> list[dict]:
    """Survival (push m/s -> rate) of each copy's policies, and with ``--swap-stats`` of each deployed
    policy under every copy's statistics (``swap``: one dict per statistics, oldest first)."""
    from quadlit.bench.falls import run_curve

    def survival(policy, norm, deterministic: bool) -> dict[float, float]:
        return run_curve(policy, norm, dm.task_params, args.episodes, dm.eval_seed, deterministic,
                         magnitudes=tuple(args.pushes)).survival()

    runs = {"deployed": lambda c: survival(c["deployed"], c["deployed_norm"], True),
            "trained": lambda c: survival(c["trained"], c["norm"], True),
            "sampled": lambda c: survival(c["trained"], c["norm"], False)}
    rows = []
    for c in copies:
        row = {"iteration": c["iteration"], "env_steps": c["env_steps"], "update": c["update"]}
        row.update({name: runs[name](c) for name in args.policies})
        if args.swap_stats:
            row["swap"] = [survival(c["deployed"], other["deployed_norm"], True) for other in copies]
        rows.append(row)
        print(format_row(row, args.policies), flush=True)
    return rows


def _pct(values: dict[float, float]) -> str:
    return "/".join(f"{100 * v:.0f}" for v in values.values())


def format_row(row: dict, policies) -> str:
    update = "  ".join(f"{title} {row['update'][k]:.3g}" for k, title in UPDATE_STATS.items() if k in row["update"])
    return (f"  iteration {row['iteration']:4d}  {row['env_steps'] / 1e6:6.3f} M  {update}  | "
            + "  ".join(f"{name} {_pct(row[name])}" for name in policies))


def format_swap(rows: list[dict]) -> str:
    lines = ["deployed policy of iteration (rows) with the observation statistics of iteration (columns), "
             "survival %:", "  " + " " * 10 + "".join(f"{r['iteration']:>14d}" for r in rows)]
    for r in rows:
        lines.append(f"  {r['iteration']:>10d}" + "".join(f"{_pct(v):>14}" for v in r["swap"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args, extra = _parser().parse_known_args(argv)
    _check(args)
    args.iterations = sorted(set(args.iterations))
    print(f"bench early: {args.config}, seed {args.seed}, copies after iterations "
          f"{' '.join(map(str, args.iterations))}{' ' + ' '.join(extra) if extra else ''}", flush=True)
    copies, dm = train_and_copy(args, extra)
    print(f"survival % at {'/'.join(f'{m:g}' for m in args.pushes)} m/s, {args.episodes} episodes each "
          f"(reset seed {dm.eval_seed}):", flush=True)
    rows = evaluate_copies(copies, dm, args)
    if args.swap_stats:
        print(format_swap(rows), flush=True)
    if args.out:  # (json writes the push magnitudes, float keys, as "0.5")
        write_text(args.out, json.dumps({"config": args.config, "seed": args.seed, "extra": extra,
                                         "episodes": args.episodes, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
