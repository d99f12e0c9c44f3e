"""``quadlit tune``: search training hyperparameters with Optuna, for push robustness.

    quadlit tune --config configs/balance.yaml --trials 20 [--minutes 2] [--study NAME]
                 [--storage sqlite:///lightning_logs/tune.db] [--seed 0] [--same-seed]
                 [--only NAME ...] [--startup-trials 10] [--export trials.csv] [fit options]

Each trial is one ``quadlit fit`` of ``--config`` in its own process, with the trial's
hyperparameters, for ``--minutes`` of training wall-clock (evaluations excluded; a trial's
clock starts when its process starts, so compilation counts as in ``make train``). Its
objective is the mean survival over the push-robustness curve (deterministic 20 s episodes at
0.5-3.0 m/s, ``--eval-episodes`` per magnitude) of the final policy: higher is better. The
study lives in an SQLite file, so a killed search continues where it stopped (``--study`` with
the same name and storage), and the best trials are printed as a table with the exact
``quadlit fit`` options that reproduce them (``--trials 0`` prints that table of a stored study
without running anything; ``--export`` writes every finished trial to a CSV). Trial k trains
with seed k unless ``--same-seed``: a recipe that only suits one seed does not win the study.
Optuna is a benchmark extra: ``pip install 'quadlit[bench]'``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from quadlit.bench import require_config
from quadlit.errors import ConfigError
from quadlit.outputs import atomic_write, check_output_file

#: The searched hyperparameters: name -> (kind, low/choices, high, log scale), as fit options.
#: The knobs of the balance recipe that the screenings (docs/learning.md) left open: the
#: exploration-noise schedule, the KL target (it sets the policy's step size; the initial lr only
#: starts the adaptation), the critic's step size, the gradient steps per sample, the return
#: horizon, the training pushes (largest, smallest as 1 - jitter of it, and how often) and the
#: averaged policy's decay. ``--only`` searches a subset (the rest keep the config's values).
SPACE = {
    "model.desired_kl": ("float", 0.005, 0.02, True),
    "model.critic_lr": ("float", 3e-4, 3e-3, True),
    "model.final_log_std": ("float", -2.0, -1.0, False),
    "model.log_std_decay_steps": ("int_log", 300_000, 1_500_000, True),
    "model.ppo_epochs": ("int", 2, 5, False),
    "model.num_minibatches": ("categorical", [1, 2, 4], None, False),
    "model.gamma": ("categorical", [0.98, 0.99, 0.995], None, False),
    "model.gae_lambda": ("float", 0.9, 0.99, False),
    "model.policy_average": ("float", 0.8, 0.98, False),
    "data.balance.push_magnitude": ("float", 3.0, 4.5, False),
    "data.balance.push_jitter": ("float", 0.5, 0.9, False),
    "data.balance.push_interval_min": ("float", 0.8, 2.0, False),
}

#: The longest gap between training pushes is twice the searched shortest (as in the default's
#: 1-2 s), so one knob says how often the training run is pushed.
PUSH_GAP_MIN, PUSH_GAP_MAX = "data.balance.push_interval_min", "data.balance.push_interval_max"


def suggest(trial, names: list[str] | None = None) -> dict[str, object]:
    """The trial's values of the hyperparameters ``names`` of ``SPACE`` (all of them by default)."""
    values: dict[str, object] = {}
    for name, (kind, low, high, log) in SPACE.items():
        if names is not None and name not in names:
            continue
        if kind == "float":
            values[name] = trial.suggest_float(name, low, high, log=log)
        elif kind == "int":
            values[name] = trial.suggest_int(name, low, high)
        elif kind == "int_log":
            values[name] = trial.suggest_int(name, low, high, log=True)
        else:
            values[name] = trial.suggest_categorical(name, low)
    return values


def fit_options(values: dict[str, object]) -> list[str]:
    """``--name value`` pairs for ``quadlit fit``; a searched shortest push gap brings its longest."""
    if PUSH_GAP_MIN in values and PUSH_GAP_MAX not in values:
        values = {**values, PUSH_GAP_MAX: 2.0 * values[PUSH_GAP_MIN]}
    out: list[str] = []
    for name, value in values.items():
        out += [f"--{name}", f"{value:.6g}" if isinstance(value, float) else str(value)]
    return out


def objective_of(record: dict) -> float:
    """Mean survival over the final push-robustness curve."""
    curve = record["final_curve"]
    return float(sum(curve.values()) / len(curve))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="quadlit tune", description=__doc__.split("\n")[0])
    p.add_argument("--config", default="configs/balance.yaml", help="the fit config every trial starts from")
    p.add_argument("--trials", type=int, required=True,
                   help="trials to run now (added to the study's earlier ones); 0 only summarises (and exports)")
    p.add_argument("--minutes", type=float, default=2.0, help="training wall-clock of each trial")
    p.add_argument("--eval-episodes", type=int, default=32, help="episodes per push magnitude of the objective")
    p.add_argument("--study", default="balance-robustness", help="study name (continue it by naming it again)")
    p.add_argument("--storage", default="sqlite:///lightning_logs/tune.db", help="Optuna storage URL")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler (TPE)")
    p.add_argument("--same-seed", action="store_true",
                   help="train every trial with the config's seed (default: trial k trains with seed k, so "
                        "the study favours recipes that work for any seed, not for one)")
    p.add_argument("--only", nargs="+", default=None, metavar="NAME",
                   help="search only these hyperparameters of the space (e.g. model.desired_kl); the rest keep the "
                        "config's values")
    p.add_argument("--startup-trials", type=int, default=10,
                   help="random trials before TPE starts modelling the objective")
    p.add_argument("--export", default=None, metavar="CSV",
                   help="write every finished trial of the study (seed, objective, curve, hyperparameters) here")
    args, extra = p.parse_known_args(argv)  # the rest goes to every trial's fit
    if args.trials < 0 or args.minutes <= 0 or args.eval_episodes < 1 or args.startup_trials < 0:
        p.error("--minutes and --eval-episodes must be positive, --trials and --startup-trials >= 0")
    unknown = sorted(set(args.only or []) - set(SPACE))
    if unknown:
        p.error(f"--only: not in the search space: {', '.join(unknown)} (the space: {', '.join(SPACE)})")
    require_config(args.config, "quadlit tune")
    if args.export:
        check_output_file(args.export, "quadlit tune: --export", rewritable=_is_trials_csv)
    try:
        import optuna
    except ImportError:
        print("quadlit: error: quadlit tune needs Optuna: pip install 'quadlit[bench]'", file=sys.stderr)
        return 2
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=args.seed, n_startup_trials=args.startup_trials)
    study = open_study(optuna, args.storage, args.study, sampler, create=args.trials > 0)
    done_before = len(study.trials)
    print(f"quadlit tune: study {args.study!r} in {args.storage} ({done_before} trials so far), {args.trials} "
          f"more of {args.minutes:g} min each", flush=True)

    def objective(trial) -> float:
        values = suggest(trial, args.only)
        options = fit_options(values)
        seed = [] if args.same_seed else ["--seed_everything", str(trial.number)]
        trial.set_user_attr("seed", None if args.same_seed else trial.number)
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="quadlit-tune-") as tmp:
            out = Path(tmp) / "record.json"
            cmd = [sys.executable, "-m", "quadlit.launch", "bench", "train", "--single", "--config", args.config,
                   "--minutes", str(args.minutes), "--eval-every", "1000000", "--eval-episodes",
                   str(args.eval_episodes), "--json", str(out), *options, *seed, *extra]
            result = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if result.returncode != 0:
                tail = result.stderr.strip().splitlines()[-1:] or ["(no output)"]
                raise RuntimeError(f"trial {trial.number} failed: {tail[0]}")
            record = json.loads(out.read_text())["records"][0]
        value = objective_of(record)
        trial.set_user_attr("curve", {str(k): v for k, v in record["final_curve"].items()})
        trial.set_user_attr("env_steps", record["env_steps"])
        curve = " ".join(f"{100 * v:3.0f}" for v in record["final_curve"].values())
        print(f"  trial {trial.number:3d}: mean survival {100 * value:5.1f} %  (curve {curve})  "
              f"{time.perf_counter() - start:5.0f} s  {' '.join(options + seed)}", flush=True)
        return value

    if args.trials:
        study.optimize(objective, n_trials=args.trials, catch=(RuntimeError,))
    print(summary(study))
    if args.export:
        rows = export_csv(study, args.export)
        print(f"quadlit tune: {rows} finished trials written to {args.export}")
    return 0


def open_study(optuna, storage: str, name: str, sampler, create: bool):
    """The study ``name`` in Optuna storage URL ``storage``, created when missing if ``create``
    (with --trials 0 nothing is created: there is only a study to summarise, or an error)."""
    db = Path(storage[len("sqlite:///"):]) if storage.startswith("sqlite:///") else None
    if not create and db is not None and not db.is_file():
        raise ConfigError(f"quadlit tune: --trials 0 summarises a stored study, but {db} does not exist")
    if create and db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    try:
        if create:
            return optuna.create_study(study_name=name, storage=storage, direction="maximize", sampler=sampler,
                                       load_if_exists=True)
        return optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    except KeyError:
        raise ConfigError(f"quadlit tune: --trials 0 summarises a stored study, but {storage} has no study "
                          f"{name!r}") from None
    except Exception as exc:  # noqa: BLE001 (each storage backend, SQLAlchemy's above all, has its own errors)
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"quadlit tune: --storage {storage}: cannot open it ({detail}); give an Optuna storage "
                          f"URL such as sqlite:///lightning_logs/tune.db") from None


def _is_trials_csv(path: Path) -> bool:
    """Whether ``path`` is a trials CSV that ``export_csv`` wrote (which a new export may replace)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.readline().startswith("trial,seed,objective,env_steps")
    except (OSError, UnicodeDecodeError):
        return False


def export_csv(study, path: str | Path) -> int:
    """Every finished trial as one CSV row: number, seed, objective, env-steps, the final curve (one
    column per push magnitude) and the hyperparameters (one column each). Returns the row count."""
    import csv

    done = sorted((t for t in study.trials if t.value is not None), key=lambda t: t.number)
    magnitudes = sorted({m for t in done for m in t.user_attrs.get("curve", {})}, key=float)
    params = [n for n in SPACE if any(n in t.params for t in done)]
    params += sorted({n for t in done for n in t.params} - set(params))
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["trial", "seed", "objective", "env_steps", *(f"push_{m}" for m in magnitudes), *params])
        for t in done:
            curve = t.user_attrs.get("curve", {})
            out.writerow([t.number, t.user_attrs.get("seed", ""), f"{t.value:.4f}", t.user_attrs.get("env_steps", ""),
                          *(f"{curve[m]:.4f}" if m in curve else "" for m in magnitudes),
                          *(t.params.get(n, "") for n in params)])
    return len(done)


def summary(study, top: int = 5) -> str:
    """The best trials: objective, curve and the fit options that reproduce them."""
    done = [t for t in study.trials if t.value is not None]
    if not done:
        return "no trial finished"
    done.sort(key=lambda t: t.value, reverse=True)
    lines = [f"best {min(top, len(done))} of {len(done)} finished trials (mean survival over 0.5-3.0 m/s):"]
    for t in done[:top]:
        curve = " ".join(f"{100 * v:3.0f}" for v in t.user_attrs.get("curve", {}).values())
        seed = t.user_attrs.get("seed")
        seed_option = "" if seed is None else f" --seed_everything {seed}"
        lines.append(f"  #{t.number:<3d} {100 * t.value:5.1f} %  curve {curve}\n       "
                     f"{' '.join(fit_options(t.params))}{seed_option}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
