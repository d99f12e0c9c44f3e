"""Soak: train the default config for a long stretch and watch the process's resident memory.

    quadlit bench soak [--config configs/balance.yaml] [--minutes 10] [--interval 60] [--limit 2]

``fit`` runs with everything the default run does (evaluations, push-robustness curves,
evaluation videos, checkpoints every epoch, TensorBoard logging). Resident memory (RSS) is read
right after every training iteration, always at the same point of the loop, and each
``--interval`` seconds the median, lowest and highest reading of the interval are reported.
The median is the figure judged: a leak raises it, while memory that an evaluation or a video
takes and gives back (a few percent, up and down) does not move it. The first interval is
warm-up (imports, Numba, the first video, first allocations) and is not judged; growth is the
change of each later interval's median against the second interval's (the first minute after
warm-up). Exits 1 when the largest growth reaches ``--limit`` percent.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import psutil

from quadlit.bench import require_config

MIB = 2**20


class _Readings:
    """RSS readings grouped into intervals of ``interval`` seconds."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.start = time.perf_counter()
        self.reports: list[dict[str, float]] = []
        self._current: list[int] = []
        self._next = interval
        self._process = psutil.Process()

    def read(self, env_steps: int) -> None:
        self._current.append(self._process.memory_info().rss)
        t = time.perf_counter() - self.start
        if t < self._next:
            return
        r = {"minutes": t / 60, "median": statistics.median(self._current), "low": min(self._current),
             "high": max(self._current), "readings": len(self._current), "env_steps": env_steps}
        self.reports.append(r)
        if len(self.reports) <= 2:
            change = "warm-up" if len(self.reports) == 1 else "baseline"
        else:
            base = self.reports[1]["median"]
            change = f"{100 * (r['median'] - base) / base:+6.2f}%"
        print(f"  {r['minutes']:5.1f} min  RSS median {r['median'] / MIB:7.1f} MiB ({change})  "
              f"low {r['low'] / MIB:7.1f}  high {r['high'] / MIB:7.1f}  over {r['readings']:3d} iterations  "
              f"{env_steps / 1e6:6.2f} M env-steps", flush=True)
        self._current = []
        self._next += self.interval


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="quadlit bench soak", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/balance.yaml", help="the fit config to soak")
    parser.add_argument("--minutes", type=float, default=10.0, help="training wall-clock")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds per report; the first is warm-up")
    parser.add_argument("--limit", type=float, default=2.0, help="largest allowed growth of the median, %%")
    parser.add_argument("--root", default=None, help="run directory (default: a temporary one, removed after)")
    args, extra = parser.parse_known_args(argv)  # the rest goes to fit
    require_config(args.config, "quadlit bench soak")
    if args.interval <= 0 or args.minutes * 60 < 3 * args.interval:
        parser.error("--minutes must cover at least three --interval reports (warm-up + two to compare)")

    from lightning.pytorch.callbacks import Callback

    from quadlit.bench import open_ended_fit
    from quadlit.cli import quiet_known_warnings, run_cli

    readings = _Readings(args.interval)
    deadline = readings.start + args.minutes * 60

    class Watch(Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            readings.read(int(module.env_steps))
            if time.perf_counter() >= deadline:
                trainer.should_stop = True

    quiet_known_warnings()
    print(f"soak: {args.config} for {args.minutes:g} min, RSS after every iteration, reported every "
          f"{args.interval:g} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="quadlit-soak-") as tmp:
        run_cli(open_ended_fit(args.config, "--trainer.default_root_dir", args.root or tmp, *extra),
                extra_callbacks=[Watch()])
    if len(readings.reports) < 3:
        print("too few reports to judge growth")
        return 1
    base = readings.reports[1]["median"]
    growth = [100 * (r["median"] - base) / base for r in readings.reports[2:]]
    worst = max(growth)
    verdict = "PASS" if worst < args.limit else "FAIL"
    print(f"\nRSS median after warm-up {base / MIB:.1f} MiB, in the last interval "
          f"{readings.reports[-1]['median'] / MIB:.1f} MiB ({growth[-1]:+.2f}%); largest growth {worst:+.2f}% "
          f"(limit {args.limit:g}%): {verdict}")
    return 0 if verdict == "PASS" else 1
