"""quadlit against another trainer's PPO on quadlit's own environment, side by side.

    quadlit bench versus --baseline sb3|rsl_rl|rsl_rl_lstm [--minutes 3] [--seeds 0 1 2] [--cold]
                         [--config configs/balance.yaml] [--baseline-params config|default] [--baseline-envs N]
                         [--eval-every 2] [--fine-eval-s 60] [--eval-episodes 64] [--out DIR] [--json PATH]
    quadlit bench versus-sb3 ...   # = versus --baseline sb3 --baseline-params default (issue 11's comparison)

For each seed, one after the other, each in its own process with the same training wall-clock
budget (evaluations excluded, start-up and Numba compilation included; ``--cold``: each from an
empty Numba cache):

- ``quadlit fit`` on ``--config`` (through ``quadlit bench train``), evaluated after every epoch
  during the first ``--fine-eval-s`` s of training, then every ``--eval-every`` epochs;
- then the baseline (``quadlit.bench.baselines``) on the config's task parameters
  (``--baseline-params default``: the balance task's defaults), ``--baseline-envs`` environments:
  ``sb3``, Stable-Baselines3 PPO (``MlpPolicy``, 8 environments); ``rsl_rl``, rsl_rl PPO with
  Isaac Lab's Unitree A1 flat-terrain settings (``baselines.rsl_rl_train_cfg``, 256
  environments, the critic also given the privileged inputs); ``rsl_rl_lstm``, the same with
  rsl_rl's recurrent model. It is evaluated at quadlit's moments: after the first chunk of its
  training (an SB3 step, an rsl_rl iteration) at or past each training time at which quadlit's run
  evaluated (with ``--skip-quadlit``, on a grid: every ``--fine-every-s`` s during the first
  ``--fine-eval-s`` s, then every ``--eval-every-s`` s).

Both on the same episodes: the push-robustness curve of ``--config``'s task (deterministic 20 s
episodes, pushes every 2-4 s at 0.5-3.0 m/s, domain randomisation on, ``--eval-episodes`` per
magnitude, fixed seeds). Prints both final curves, where quadlit is ahead, the times to 95 %
survival at every magnitude (also counted from each side's start: quadlit's first finished
iteration, the baseline's first step or iteration), and writes learning_curve.png (both sides'
learning curves) and push_robustness.png. The baselines are benchmark-only extras:
``pip install 'quadlit[bench]'`` (SB3), ``pip install 'quadlit[rsl_rl]'``.
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

from quadlit.bench import EvaluationSchedule, TrainingClock, check_result_paths, require_config, seed_int  # noqa: E402
from quadlit.outputs import json_result, write_text  # noqa: E402
from quadlit.bench.baselines import DEFAULT_ENVS, LABELS, RUNS, print_row  # noqa: E402
from quadlit.errors import ConfigError  # noqa: E402

#: The learning curve's panels (push m/s): the issue's goals are read at 1.5 and 3.0 m/s.
PLOT_MAGNITUDES = (1.0, 1.5, 2.0, 3.0)


def start_of(record: dict) -> float:
    """Training seconds at which a run could first act: a baseline's first step or iteration, quadlit's
    first finished iteration (0 when unknown)."""
    if record.get("start_seconds") is not None:
        return float(record["start_seconds"])
    trace = record.get("trace") or []
    return float(trace[0]["seconds"]) if trace else 0.0


def _times(records: list[dict], mag: float) -> str:
    """Per seed: time to 95 % at ``mag`` (from the start in brackets), or "never (best N %)"."""
    from quadlit.bench.train import time_to

    parts = []
    for r in records:
        t = time_to(r["evaluations"], mag)
        if t is None:
            best = max((row["curve"].get(mag, 0.0) for row in r["evaluations"]), default=0.0)
            parts.append(f"never (best {100 * best:.0f} %)")
        else:
            parts.append(f"{t:.0f} ({t - start_of(r):.0f})")
    return " / ".join(parts)


def _from_start_ratio(ours: list[dict], theirs: list[dict], mag: float) -> str:
    """quadlit's mean time to 95 % from the start over the baseline's ("-" unless every seed of both got there)."""
    from quadlit.bench.train import time_to

    def mean(records):
        times = [time_to(r["evaluations"], mag) for r in records]
        return None if None in times else float(np.mean([t - start_of(r) for t, r in zip(times, records)]))

    q, b = mean(ours), mean(theirs)
    return "-" if q is None or b is None or b <= 0 else f"{q / b:.2f}"


def comparison(ours: list[dict], theirs: list[dict], label: str) -> str:
    """The side-by-side table: mean final survival, where quadlit is ahead, and per magnitude each
    side's time to 95 % per seed (from its start in brackets) with the ratio of the means from the start."""
    mags = list(ours[0]["final_curve"])
    q = {m: float(np.mean([r["final_curve"][m] for r in ours])) for m in mags}
    b = {m: float(np.mean([r["final_curve"][m] for r in theirs])) for m in mags}
    ahead = {m: q[m] > b[m] or q[m] == 1.0 for m in mags}  # both at 100 % counts as not behind
    lines = ["mean final survival %   " + "  ".join(f"{m:>5g}" for m in mags),
             "  quadlit               " + "  ".join(f"{100 * q[m]:5.0f}" for m in mags),
             f"  {label:<22}" + "  ".join(f"{100 * b[m]:5.0f}" for m in mags),
             "  quadlit ahead         " + "  ".join(f"{'yes' if ahead[m] else 'no':>5}" for m in mags)]
    lines.append(f"time to 95 % survival, training s (from each side's start), seeds "
                 f"{' / '.join(str(r['seed']) for r in ours)}; ratio: quadlit's mean from the start over the baseline's")
    for m in mags:
        lines.append(f"  {m:g} m/s: quadlit {_times(ours, m)};  {label} {_times(theirs, m)};  ratio "
                     f"{_from_start_ratio(ours, theirs, m)}")
    return "\n".join(lines)


def child_command(args, seed: int, json_path: Path, eval_at: list[float] | None) -> list[str]:
    """The command line of one baseline run (``--seed``: in its own process), evaluated at
    ``eval_at`` (training seconds) or, when None, on the ``--eval-every-s`` grid."""
    cmd = [sys.executable, "-m", "quadlit.cli", "bench", "versus", "--baseline", args.baseline, "--seed", str(seed),
           "--child-json", str(json_path), "--config", args.config, "--minutes", str(args.minutes),
           "--baseline-params", args.baseline_params, "--baseline-envs", str(args.baseline_envs),
           "--eval-every-s", str(args.eval_every_s), "--fine-eval-s", str(args.fine_eval_s), "--fine-every-s",
           str(args.fine_every_s), "--eval-episodes", str(args.eval_episodes), "--eval-seed", str(args.eval_seed)]
    if eval_at is not None:
        cmd += ["--eval-at", *(f"{t:.6f}" for t in eval_at)]
    return cmd


def quadlit_command(args, seed: int, json_path: Path, extra: list[str]) -> list[str]:
    """The command line of quadlit's run of ``seed`` (``bench train --single``)."""
    return [sys.executable, "-m", "quadlit.launch", "bench", "train", "--single", "--seeds", str(seed), "--json",
            str(json_path), "--config", args.config, "--minutes", str(args.minutes), "--eval-every",
            str(args.eval_every), "--fine-eval-s", str(args.fine_eval_s), "--eval-episodes", str(args.eval_episodes),
            *extra]


def evaluation_moments(record: dict) -> list[float]:
    """The training seconds of a quadlit run's periodic evaluations (its last row, the final policy
    at the end of the budget, is not one: the baseline measures its own end)."""
    return [float(row["seconds"]) for row in record["evaluations"][:-1]]


def parser(prog: str = "quadlit bench versus") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("--baseline", choices=list(LABELS), required=True,
                   help="sb3: Stable-Baselines3 PPO; rsl_rl: rsl_rl PPO with Isaac Lab's A1 flat-terrain settings; "
                        "rsl_rl_lstm: the same with rsl_rl's recurrent model")
    p.add_argument("--config", default="configs/balance.yaml", help="quadlit's fit config (and the evaluation task)")
    p.add_argument("--minutes", type=float, default=3.0, help="training wall-clock budget of each run")
    p.add_argument("--seeds", type=seed_int, nargs="+", default=[0, 1, 2], help="seeds (each run in its own process)")
    p.add_argument("--cold", action="store_true", help="every run with a fresh, empty Numba cache")
    p.add_argument("--baseline-params", "--sb3-params", dest="baseline_params", choices=["config", "default"],
                   default="config", help="the baseline trains on the config's task parameters or the task's defaults")
    p.add_argument("--baseline-envs", type=int, default=None,
                   help="the baseline's environments (default: 8 for sb3, 256 for rsl_rl)")
    p.add_argument("--eval-every", type=int, default=2, help="quadlit: evaluate every N epochs")
    p.add_argument("--fine-eval-s", type=float, default=60.0,
                   help="during the first N s of training quadlit evaluates after every epoch (and a baseline on "
                        "the grid every --fine-every-s); 0: never")
    p.add_argument("--eval-every-s", type=float, default=20.0,
                   help="the baseline's grid (only without quadlit's moments, --skip-quadlit): every N s")
    p.add_argument("--fine-every-s", type=float, default=4.0, help="the grid during --fine-eval-s: every N s")
    p.add_argument("--eval-episodes", type=int, default=64, help="episodes per push magnitude")
    p.add_argument("--eval-seed", type=int, default=12345, help="seed of the evaluation episodes")
    p.add_argument("--skip-quadlit", action="store_true", help="run only the baseline")
    p.add_argument("--json", default=None, help="write every record here")
    p.add_argument("--out", default=None, help="folder for learning_curve.png and push_robustness.png")
    p.add_argument("--seed", type=int, default=None, help=argparse.SUPPRESS)  # a baseline's child process
    p.add_argument("--child-json", default=None, help=argparse.SUPPRESS)
    p.add_argument("--eval-at", type=float, nargs="*", default=None, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None, prog: str = "quadlit bench versus") -> int:
    args, extra = parser(prog).parse_known_args(argv)
    if (args.eval_every_s <= 0 or args.eval_every < 1 or args.fine_eval_s < 0 or args.fine_every_s <= 0
            or args.minutes <= 0 or args.eval_episodes < 1):
        raise ConfigError(f"{prog}: --minutes, --eval-every-s, --eval-every, --fine-every-s and --eval-episodes must "
                          "be positive, --fine-eval-s at least 0")
    if args.baseline_envs is None:
        args.baseline_envs = DEFAULT_ENVS[args.baseline]
    elif args.baseline_envs < 1:
        raise ConfigError(f"{prog}: --baseline-envs must be at least 1, got {args.baseline_envs}")
    require_config(args.config, prog)
    if args.child_json is None:  # checked before the runs, not after minutes of them
        check_result_paths(prog, args.json, args.out, json_result(args.baseline, "quadlit"))
    if args.seed is not None:  # child: one baseline run
        schedule = EvaluationSchedule(TrainingClock(T0), args.minutes * 60, at=args.eval_at, every=args.eval_every_s,
                                      fine_every=args.fine_every_s, fine_until=args.fine_eval_s,
                                      report=print_row(args.baseline))
        print(f"bench versus: {LABELS[args.baseline]}, seed {args.seed}, budget {args.minutes:g} min", flush=True)
        Path(args.child_json).write_text(json.dumps(RUNS[args.baseline](args, schedule)))
        return 0

    from quadlit.bench.train import _from_json, summarize, write_plots

    label = LABELS[args.baseline]
    theirs, ours = [], []
    with tempfile.TemporaryDirectory(prefix="quadlit-versus-") as tmp:
        for seed in args.seeds:
            env = dict(os.environ)
            eval_at = None
            if not args.skip_quadlit:
                path = Path(tmp) / f"quadlit-{seed}.json"
                if args.cold:
                    env["NUMBA_CACHE_DIR"] = str(Path(tmp) / f"cache-quadlit-{seed}")
                if subprocess.run(quadlit_command(args, seed, path, extra), env=env).returncode != 0:
                    raise SystemExit(f"the quadlit run of seed {seed} failed")
                ours.append(json.loads(path.read_text())["records"][0])
                eval_at = evaluation_moments(ours[-1])
            if args.cold:
                env["NUMBA_CACHE_DIR"] = str(Path(tmp) / f"cache-{args.baseline}-{seed}")
            path = Path(tmp) / f"{args.baseline}-{seed}.json"
            if subprocess.run(child_command(args, seed, path, eval_at), env=env).returncode != 0:
                raise SystemExit(f"the {label} run of seed {seed} failed")
            theirs.append(json.loads(path.read_text()))
    theirs, ours = _from_json(theirs), _from_json(ours)
    if args.json:
        write_text(args.json, json.dumps({args.baseline: theirs, "quadlit": ours}, indent=1, default=str))
    print(f"\n{label}:")
    print(summarize(theirs))
    if not ours:
        return 0
    print("\nquadlit:")
    print(summarize(ours))
    print()
    print(comparison(ours, theirs, label))
    if args.out:
        write_plots(ours, Path(args.out), mags=PLOT_MAGNITUDES, others={label: theirs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
