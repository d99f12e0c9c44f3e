"""Fingerprint of a short fixed-seed run: the guard for behaviour-preserving refactoring.

    quadlit bench fingerprint [--task balance|reach|all] [--epochs 3] [--json PATH] [--compare PATH]

Runs ``quadlit fit`` on the task's default config for a few epochs with fixed seeds (one
evaluation at the end, push-robustness curve included) and prints a SHA-256 digest of

- every logged metric of every iteration and evaluation (``perf/*`` timings excluded: they are
  wall-clock readings, not behaviour),
- every parameter and buffer of the trained module (policy, world model, observation statistics),

each written bit for bit (float64 values as their IEEE bytes). A refactoring that preserves
behaviour gives the same digests before and after; ``--json`` saves the digests and
``--compare`` checks them against a saved file (exit 1 on any difference, naming the first
metric that differs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
import tempfile
from pathlib import Path

from quadlit.bench import check_result_paths, positive_int, require_config
from quadlit.errors import ConfigError
from quadlit.outputs import write_text

CONFIGS = {"balance": "configs/balance.yaml", "reach": "configs/reach.yaml"}


def _digest_run(task: str, epochs: int, config: str | None, extra: list[str]) -> dict:
    import torch
    from lightning.pytorch.callbacks import Callback

    from quadlit.bench import open_ended_fit
    from quadlit.cli import quiet_known_warnings, run_cli

    rows: list[tuple[int, str, float]] = []

    class Record(Callback):
        def _take(self, trainer, where: int) -> None:
            for k, v in sorted(trainer.callback_metrics.items()):
                if not k.startswith("perf/"):
                    rows.append((where, k, float(v)))

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            self._take(trainer, int(trainer.global_step))

        def on_validation_end(self, trainer, module) -> None:
            self._take(trainer, -1 - int(trainer.current_epoch))

    quiet_known_warnings()
    with tempfile.TemporaryDirectory(prefix="quadlit-fingerprint-") as tmp:
        args = open_ended_fit(config or CONFIGS[task], "--trainer.max_epochs", str(epochs),
                              "--trainer.check_val_every_n_epoch", str(epochs), "--data.eval_episodes", "8",
                              "--trainer.default_root_dir", tmp, "--trainer.logger", "false", *extra)
        cli = run_cli(args, extra_callbacks=[Record()])
        state = cli.model.state_dict()
    metrics = hashlib.sha256()
    for where, k, v in rows:
        metrics.update(f"{where}:{k}:".encode() + struct.pack("<d", v))
    params = hashlib.sha256()
    for k, t in state.items():
        params.update(k.encode() + t.detach().cpu().contiguous().numpy().tobytes())
    final = {k: v for where, k, v in rows if where == -epochs}
    return {"metrics": metrics.hexdigest(), "parameters": params.hexdigest(), "rows": len(rows),
            "env_steps": int(cli.model.env_steps), "final_eval": final,
            "values": [[w, k, v] for w, k, v in rows]}


def read_fingerprints(path: str | Path, option: str = "--compare") -> dict:
    """The digests per task that a ``--json`` file saved; a one-line ConfigError naming
    ``option`` when ``path`` is not such a file."""
    where = f"quadlit bench fingerprint: {option} {path}"
    try:
        saved = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{where}: not a --json file of this benchmark ({exc})") from None
    if not isinstance(saved, dict) or not saved or not all(
            isinstance(r, dict) and {"metrics", "parameters", "values"} <= set(r) for r in saved.values()):
        raise ConfigError(f"{where}: not a --json file of this benchmark (no metrics and parameters digests per task)")
    return saved


def _is_fingerprint_file(path: Path) -> bool:
    try:
        read_fingerprints(path)
        return True
    except ConfigError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="quadlit bench fingerprint", description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=[*CONFIGS, "all"], default="all", help="which default config(s) to run")
    parser.add_argument("--epochs", type=positive_int, default=3,
                        help="epochs of training (10 iterations each by default)")
    parser.add_argument("--config", default=None, help="another config instead of the task's default")
    parser.add_argument("--json", default=None, help="write the digests (and every value) here")
    parser.add_argument("--compare", default=None, help="a --json file of an earlier run to compare with")
    args, extra = parser.parse_known_args(argv)  # the rest goes to fit
    require_config(args.config, "quadlit bench fingerprint")
    tasks = list(CONFIGS) if args.task == "all" else [args.task]
    # the inputs and outputs are checked before the run, not after it
    saved = read_fingerprints(args.compare) if args.compare else None
    if saved is not None and not set(tasks) & set(saved):
        raise ConfigError(f"quadlit bench fingerprint: --compare {args.compare} holds {', '.join(sorted(saved))}, "
                          f"not {', '.join(tasks)}")
    check_result_paths("quadlit bench fingerprint", args.json, None, _is_fingerprint_file)
    result = {}
    for task in tasks:
        result[task] = _digest_run(task, args.epochs, args.config, extra)
        r = result[task]
        print(f"{task}: {r['rows']} metric values over {r['env_steps']} env-steps\n"
              f"  metrics    {r['metrics']}\n  parameters {r['parameters']}", flush=True)
    if args.json:
        write_text(args.json, json.dumps(result, indent=1))
    if saved is None:
        return 0
    same = True
    for task, r in result.items():
        old = saved.get(task)
        if old is None:
            print(f"{task}: not in {args.compare}")
            same = False
            continue
        for key in ("metrics", "parameters"):
            ok = old[key] == r[key]
            same &= ok
            print(f"{task} {key}: {'identical' if ok else 'DIFFERENT'}")
        if old["metrics"] != r["metrics"]:
            for a, b in zip(old["values"], r["values"]):
                if a != b:
                    print(f"  first difference: {a} before, {b} now")
                    break
            else:
                print(f"  {len(old['values'])} values before, {len(r['values'])} now")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
