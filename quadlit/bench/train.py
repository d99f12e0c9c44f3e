"""Time to balance and push robustness: run ``fit`` and evaluate the policy as it learns.

    quadlit bench train [--config configs/balance.yaml] [--minutes 3] [--seeds 0 1 2] [--cold]
                        [--eval-every 2] [--fine-eval-s 0] [--eval-episodes 64] [--eval-trained]
                        [--json PATH] [--out DIR] [fit options]

The clock starts when a run's process starts (imports and Numba compilation included) and stops
while the periodic evaluations run (they are measurement, not training). Every evaluation
measures the push-robustness curve: survival of deterministic 20 s episodes with pushes every
2-4 s at 0.5-3.0 m/s, domain randomisation on, ``--eval-episodes`` episodes per magnitude, every
``--eval-every`` epochs, and after every epoch during the first ``--fine-eval-s`` s of training
(where the times to the first robustness levels are read). At the end the trained policy's and
the zero-action baseline's curves are measured.

With several ``--seeds`` (or ``--cold``) each seed runs in its own process, one after the other;
``--cold`` gives each a fresh, empty Numba cache (compilation counted, as on a first ``make
train``). The summary gives, per seed, the learning curve, the time to 95 % survival at each
magnitude and the stability check (once a magnitude reached 95 %, how far a later evaluation
fell below that). ``--json`` saves every evaluation and the per-iteration training metrics;
``--out`` writes the learning-curve and robustness PNGs. Any other option goes to ``quadlit
fit`` (e.g. ``--model.lr 1e-3``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

T0 = time.perf_counter()

import numpy as np  # noqa: E402

from quadlit.bench import TrainingClock, check_result_paths, epochs_between_evaluations, require_config, seed_int  # noqa: E402
from quadlit.outputs import json_result, write_text  # noqa: E402

#: Training metrics kept per iteration in the --json output (when logged).
TRACE_KEYS = ("episode/return", "episode/length", "episode/survived", "train/explained_variance",
              "train/approx_kl", "train/learning_rate", "train/entropy", "train/value_loss", "train/clip_fraction",
              "train/policy_loss", "train/grad_norm", "perf/collect_seconds", "perf/update_seconds",
              "train/mirror_loss")  # the last only in runs with model.mirror_coef
TARGET = 0.95


def _curve_from_metrics(metrics) -> dict[float, float]:
    """``eval_curve/push_1.5`` -> {1.5: survival} from logged metrics."""
    out = {}
    for k, v in metrics.items():
        if k.startswith("eval_curve/push_"):
            out[float(k.rsplit("_", 1)[1])] = float(v)
    return dict(sorted(out.items()))


def run_one(args, extra: list[str]) -> dict:
    """One training run in this process; returns its record."""
    from lightning.pytorch.callbacks import Callback

    from quadlit.bench import open_ended_fit, seed_options
    from quadlit.cli import quiet_known_warnings, run_cli
    from quadlit.models.baselines import ZeroPolicy
    from quadlit.training.normalizer import RunningNorm

    class Clock(Callback):
        """Training wall-clock (evaluations excluded), per-iteration metrics, and the push curve of
        every evaluation."""

        def __init__(self) -> None:
            self.clock = TrainingClock(T0)
            self.rows: list[dict] = []
            self.trace: list[dict] = []
            self.collect = self.update = 0.0
            self._eval_began = 0.0

        def train_seconds(self) -> float:
            return self.clock.seconds()

        def on_train_epoch_start(self, trainer, module) -> None:
            # Lightning reads this at every epoch's end: after every epoch while the run is young
            trainer.check_val_every_n_epoch = epochs_between_evaluations(self.train_seconds(), args.eval_every,
                                                                         args.fine_eval_s)

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            m = trainer.callback_metrics
            self.collect += float(m.get("perf/collect_seconds", 0.0))
            self.update += float(m.get("perf/update_seconds", 0.0))
            row = {"seconds": self.train_seconds(), "env_steps": int(module.env_steps)}
            row.update({k: float(m[k]) for k in TRACE_KEYS if k in m})
            self.trace.append(row)
            if self.train_seconds() > args.minutes * 60:
                trainer.should_stop = True

        def on_validation_start(self, trainer, module) -> None:
            self._eval_began = self.clock.pause()

        def on_validation_end(self, trainer, module) -> None:
            m = trainer.callback_metrics
            row = {"seconds": self._eval_began,
                   "env_steps": int(module.env_steps), "survival": float(m["eval/survived"]),
                   "return": float(m["eval/return"]), "curve": _curve_from_metrics(m)}
            if args.eval_trained and module.deployed_policy is module.policy and not self.rows:
                print("  --eval-trained: this run deploys the trained policy itself (no model.policy_average, no "
                      "guard): there is no second policy to judge", flush=True)
            if args.eval_trained and module.deployed_policy is not module.policy:  # the policy PPO trains
                from quadlit.training.evaluation import push_curve

                dm = trainer.datamodule
                row["trained_curve"] = push_curve(module.policy, module.obs_norm, dm.task_name, dm.task_params,
                                                  args.eval_episodes, dm.eval_seed, module.device)
                if module.guarded_policy is not None and module.latest_policy is not module.policy:
                    # what would be deployed without the guard: the latest average
                    row["latest_curve"] = push_curve(module.latest_policy, module.obs_norm, dm.task_name,
                                                     dm.task_params, args.eval_episodes, dm.eval_seed, module.device)
            self.rows.append(row)
            self.clock.resume()
            curve = "  ".join(f"{100 * v:4.0f}" for v in row["curve"].values())
            print(f"  {row['seconds']:7.1f} s  {row['env_steps'] / 1e6:6.2f} M steps  return {row['return']:7.1f}  "
                  f"survival % at {'/'.join(f'{k:g}' for k in row['curve'])} m/s: {curve}"
                  + ("" if "latest_curve" not in row else
                     "   latest average: " + "  ".join(f"{100 * v:4.0f}" for v in row["latest_curve"].values()))
                  + ("" if "trained_curve" not in row else
                     "   trained policy: " + "  ".join(f"{100 * v:4.0f}" for v in row["trained_curve"].values())),
                  flush=True)

    quiet_known_warnings()
    clock = Clock()
    with tempfile.TemporaryDirectory(prefix="quadlit-bench-train-") as tmp:
        fit_args = open_ended_fit(args.config, "--trainer.check_val_every_n_epoch", str(args.eval_every),
                                  "--data.eval_curve", "true", "--data.eval_episodes", str(args.eval_episodes),
                                  "--trainer.default_root_dir", args.root or tmp, *seed_options(args.seeds[0]),
                                  *extra)
        print(f"bench train: {args.config}, seed {args.seeds[0]}, budget {args.minutes:g} min of training "
              f"wall-clock (evaluations excluded){' ' + ' '.join(extra) if extra else ''}", flush=True)
        cli = run_cli(fit_args, extra_callbacks=[clock])
    module, dm = cli.model, cli.datamodule
    total_s = clock.train_seconds()
    # the final policy, once more (the last periodic evaluation may be up to --eval-every epochs old)
    from quadlit.training.evaluation import push_curve

    final = push_curve(module.deployed_policy, module.deployed_norm, dm.task_name, dm.task_params, args.eval_episodes,
                       dm.eval_seed, module.device)
    zero = push_curve(ZeroPolicy(dm.action_dim), RunningNorm(dm.obs_dim, enabled=False), dm.task_name,
                      dm.task_params, args.eval_episodes, dm.eval_seed, module.device)
    return {"config": args.config, "seed": args.seeds[0], "extra": extra, "train_seconds": total_s,
            "env_steps": int(module.env_steps), "collect_seconds": clock.collect, "update_seconds": clock.update,
            "evaluations": clock.rows + [{"seconds": total_s, "env_steps": int(module.env_steps), "curve": final}],
            "final_curve": final, "zero_curve": zero, "trace": clock.trace}


def time_to(rows: list[dict], mag: float, target: float = TARGET) -> float | None:
    """Training seconds at the first evaluation with survival >= target at ``mag``."""
    return next((r["seconds"] for r in rows if r["curve"].get(mag, 0.0) >= target), None)


def stability(rows: list[dict], mag: float, target: float = TARGET) -> float | None:
    """Once ``mag`` reached ``target``: the largest fall (in points) of a later evaluation below the
    best survival reached up to then (None: never reached)."""
    reached, best, worst = False, 0.0, 0.0
    for r in rows:
        v = r["curve"].get(mag, 0.0)
        if reached:
            worst = max(worst, best - v)
        if v >= target:
            reached = True
        best = max(best, v) if reached else best
    return 100 * worst if reached else None


def falls_by_chance(survival: float, episodes: int, evaluations: int, runs: int = 20000,
                    seed: int = 0) -> np.ndarray:
    """What ``stability`` reports for a policy that never changes: ``runs`` simulated runs of
    ``evaluations`` evaluations, each ``episodes`` episodes surviving with probability ``survival``
    (binomial). Returns the falls in points of the runs that reached the target (the rest never
    count). Any measured fall of that size can be evaluation noise alone."""
    draws = np.random.default_rng(seed).binomial(episodes, survival, size=(runs, evaluations)) / episodes
    falls = (stability([{"curve": {0.0: v}} for v in run.tolist()], 0.0) for run in draws)
    return np.array([f for f in falls if f is not None], dtype=np.float64)


def chance_table(episodes: int, evaluations: int) -> str:
    lines = [f"falls of a policy that never changes ({episodes} episodes per evaluation, {evaluations} evaluations, "
             f"20000 simulated runs): true survival -> median fall, 90th percentile, P(fall > 10 points)"]
    for p in (0.90, 0.93, 0.95, 0.97, 0.99):
        f = falls_by_chance(p, episodes, evaluations)
        lines.append(f"  {100 * p:3.0f} %: {np.median(f):4.1f}  {np.percentile(f, 90):4.1f}  {np.mean(f > 10):.2f}"
                     f"   (reached 95 % in {len(f) / 20000:.2f} of runs)")
    return "\n".join(lines)


def summarize(records: list[dict]) -> str:
    lines = []
    mags = list(records[0]["final_curve"])
    head = "  ".join(f"{m:>5g}" for m in mags)
    lines.append(f"push-robustness at the end (survival %, {len(records)} seed(s)), push m/s: {head}")
    for r in records:
        lines.append(f"  seed {r['seed']:<3d} {r['env_steps'] / 1e6:5.2f} M steps {r['train_seconds']:5.0f} s   "
                     + "  ".join(f"{100 * r['final_curve'][m]:5.0f}" for m in mags))
    mean = {m: float(np.mean([r["final_curve"][m] for r in records])) for m in mags}
    lines.append("  mean                              " + "  ".join(f"{100 * mean[m]:5.0f}" for m in mags))
    lines.append("  zero action                       " + "  ".join(f"{100 * records[0]['zero_curve'][m]:5.0f}"
                                                                  for m in mags))
    lines.append("time to 95 % survival (training s) and stability (largest fall after reaching it, points):")
    lines += [_milestones(r["seed"], r["evaluations"], mags) for r in records]
    for key, what in (("latest_curve", "the latest average, which the guard chose from"),
                      ("trained_curve", "the trained policy")):
        judged = [r for r in records if any(key in row for row in r["evaluations"])]
        if judged:
            lines.append(f"the same, for {what} (--eval-trained; the rows above: the deployed policy):")
        for r in judged:
            rows = [{"seconds": row["seconds"], "curve": row[key]} for row in r["evaluations"] if key in row]
            lines.append(_milestones(r["seed"], rows, mags))
    return "\n".join(lines)


def _milestones(seed: int, rows: list[dict], mags) -> str:
    """One seed's line: per magnitude the time to 95 % and the largest fall after it."""
    parts = []
    for m in mags:
        t, s = time_to(rows, m), stability(rows, m)
        parts.append(f"{m:g}: " + ("never" if t is None else f"{t:.0f} s, fall {s:.0f}"))
    return f"  seed {seed}: " + "; ".join(parts)


def write_plots(records: list[dict], out: Path, mags=(1.0, 2.0, 2.5), others: dict | None = None) -> None:
    """learning_curve.png (survival at ``mags`` against training wall-clock, every seed) and
    push_robustness.png (final curves: mean over seeds, zero action, ``others``)."""
    from quadlit.training.plots import multi_learning_curve_figure, robustness_figure

    out.mkdir(parents=True, exist_ok=True)
    multi_learning_curve_figure({"quadlit": records, **(others or {})}, mags).savefig(out / "learning_curve.png")
    m = list(records[0]["final_curve"])
    curves = {f"quadlit (mean of {len(records)})": (m, [float(np.mean([r["final_curve"][k] for r in records]))
                                                         for k in m]),
              "zero action": (m, [records[0]["zero_curve"][k] for k in m])}
    for label, recs in (others or {}).items():
        curves[f"{label} (mean of {len(recs)})"] = (m, [float(np.mean([r["final_curve"][k] for r in recs]))
                                                        for k in m])
    robustness_figure(curves).savefig(out / "push_robustness.png")
    print(f"wrote {out / 'learning_curve.png'} and {out / 'push_robustness.png'}")


def run_seeds_in_processes(args, extra: list[str], prog: list[str]) -> list[dict]:
    """Each seed in its own process (a fresh Numba cache each with ``--cold``); their records."""
    records = []
    with tempfile.TemporaryDirectory(prefix="quadlit-bench-seeds-") as tmp:
        for seed in args.seeds:
            path = Path(tmp) / f"seed{seed}.json"
            env = dict(os.environ)
            if args.cold:
                env["NUMBA_CACHE_DIR"] = str(Path(tmp) / f"numba-cache-{seed}")
            cmd = [*prog, "--seeds", str(seed), "--json", str(path), "--single", *_passthrough(args), *extra]
            if args.root:  # each seed's run (checkpoints, logs) kept in its own folder
                cmd += ["--root", str(Path(args.root) / f"seed{seed}")]
            result = subprocess.run(cmd, env=env)
            if result.returncode != 0:
                raise SystemExit(f"seed {seed} failed with exit status {result.returncode}")
            records.append(json.loads(path.read_text())["records"][0])
    return records


def _passthrough(args) -> list[str]:
    return ["--config", args.config, "--minutes", str(args.minutes), "--eval-every", str(args.eval_every),
            "--fine-eval-s", str(args.fine_eval_s), "--eval-episodes", str(args.eval_episodes),
            *(["--eval-trained"] if args.eval_trained else [])]


def _json_ready(records: list[dict]) -> list[dict]:
    def fix(x):
        if isinstance(x, dict):
            return {str(k): fix(v) for k, v in x.items()}
        if isinstance(x, list):
            return [fix(v) for v in x]
        return x
    return fix(records)


def _from_json(records: list[dict]) -> list[dict]:
    """Curve keys back to floats after a JSON round trip."""
    for r in records:
        for key in ("final_curve", "zero_curve"):
            r[key] = {float(k): v for k, v in r[key].items()}
        for row in r["evaluations"]:
            for key in ("curve", "trained_curve", "latest_curve"):
                if key in row:
                    row[key] = {float(k): v for k, v in row[key].items()}
    return records


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="quadlit bench train", description=__doc__.split("\n")[0])
    p.add_argument("--config", default="configs/balance.yaml", help="the fit config to run")
    p.add_argument("--minutes", type=float, default=3.0, help="training wall-clock budget per seed")
    p.add_argument("--seeds", type=seed_int, nargs="+", default=[0], help="seeds (several: one process each)")
    p.add_argument("--cold", action="store_true", help="each seed with a fresh, empty Numba cache")
    p.add_argument("--eval-every", type=int, default=2, help="evaluate every N epochs")
    p.add_argument("--fine-eval-s", type=float, default=0.0,
                   help="during the first N s of training evaluate after every epoch (then every --eval-every)")
    p.add_argument("--eval-episodes", type=int, default=64, help="episodes per push magnitude")
    p.add_argument("--eval-trained", action="store_true",
                   help="at every evaluation also measure the policy PPO trains (when the deployed one is its weight "
                        "average, model.policy_average, or a guard's choice) and, with a guard, the latest average "
                        "it chose from: the same training, each policy judged")
    p.add_argument("--chance", type=int, metavar="EVALUATIONS", default=None,
                   help="train nothing: print how far the stability check's falls go by evaluation noise alone, "
                        "for a policy that never changes, over this many evaluations of --eval-episodes episodes")
    p.add_argument("--json", default=None, help="write every evaluation and the training trace here")
    p.add_argument("--out", default=None, help="folder for learning_curve.png and push_robustness.png")
    p.add_argument("--root", default=None, help="run directory, kept (several seeds: one folder per seed under it; default: a temporary one, removed after)")
    p.add_argument("--single", action="store_true", help=argparse.SUPPRESS)  # a child of a multi-seed run
    return p


def main(argv: list[str] | None = None) -> int:
    args, extra = parser().parse_known_args(argv)
    if args.minutes <= 0 or args.eval_every < 1 or args.eval_episodes < 1 or args.fine_eval_s < 0:
        raise SystemExit("quadlit bench train: --minutes, --eval-every and --eval-episodes must be positive, "
                         "--fine-eval-s at least 0")
    if args.chance is not None:
        if args.chance < 2:
            raise SystemExit("quadlit bench train: --chance needs at least 2 evaluations")
        print(chance_table(args.eval_episodes, args.chance))
        return 0
    require_config(args.config, "quadlit bench train")
    check_result_paths("quadlit bench train", args.json, args.out, json_result("records"))
    if args.single or (len(args.seeds) == 1 and not args.cold):
        records = [run_one(args, extra)]
    else:
        records = _from_json(run_seeds_in_processes(args, extra, [sys.executable, "-m", "quadlit.launch", "bench",
                                                                  "train"]))
    if args.json:
        write_text(args.json, json.dumps({"records": _json_ready(records)}, indent=1))
    if args.single:
        return 0
    print()
    print(summarize(records))
    if args.out:
        write_plots(records, Path(args.out))
    return 0
