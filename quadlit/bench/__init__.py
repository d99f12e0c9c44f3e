"""Benchmarks (scripts, not tests): ``quadlit bench reach|physics|train|soak|render|fingerprint|versus|versus-sb3|compile|update|world-model|falls|early|robots|gap|all``."""

from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path
from typing import Any, Callable

from quadlit.errors import ConfigError
from quadlit.outputs import check_output_file, check_output_folder

BENCHES = {
    "reach": "quadlit.bench.reach",
    "physics": "quadlit.bench.physics",
    "train": "quadlit.bench.train",
    "soak": "quadlit.bench.soak",
    "render": "quadlit.bench.render",
    "fingerprint": "quadlit.bench.fingerprint",
    "versus": "quadlit.bench.versus",
    "versus-sb3": "quadlit.bench.versus_sb3",
    "compile": "quadlit.bench.compile",
    "update": "quadlit.bench.update",
    "world-model": "quadlit.bench.world_model",
    "falls": "quadlit.bench.falls",
    "early": "quadlit.bench.early",
    "robots": "quadlit.bench.robots",
    "gap": "quadlit.bench.gap",
}


def open_ended_fit(config: str, *extra: str) -> list[str]:
    """``quadlit fit`` arguments for a benchmark that decides itself when training stops (a
    callback sets ``trainer.should_stop``): no time or epoch limit, no progress bar or summary.
    ``extra`` comes last, so it can override any of them."""
    return ["fit", "--config", config, "--trainer.max_time", "null", "--trainer.max_epochs", "1000000",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", *extra]


def seed_options(seed: int) -> list[str]:
    """``quadlit fit`` options that seed a run everywhere: Lightning's global seed, the data
    module's generators and the model's."""
    return ["--seed_everything", str(seed), "--data.seed", str(seed), "--model.seed", str(seed)]


class TrainingClock:
    """A run's training wall-clock: seconds since ``start`` (a ``perf_counter`` reading, the
    process's start for a cold run), the time spent in measurements excluded. A measurement is
    either ``measure(fn)`` or a ``pause()`` ... ``resume()`` pair (for hooks that begin and end it
    in different calls); either way it is stamped with the training time at which it began."""

    def __init__(self, start: float, now: Callable[[], float] = time.perf_counter) -> None:
        self.start, self._now = start, now
        self.excluded = 0.0
        self._paused_at: float | None = None

    def seconds(self) -> float:
        return self._now() - self.start - self.excluded

    def pause(self) -> float:
        """Stop the training clock; returns the training seconds it stopped at."""
        self._paused_at = self._now()
        return self._paused_at - self.start - self.excluded

    def resume(self) -> None:
        """Start the training clock again (the time since ``pause`` is not training)."""
        self.excluded += self._now() - self._paused_at
        self._paused_at = None

    def measure(self, fn: Callable[[], Any]) -> tuple[float, Any]:
        """Run ``fn`` outside the training clock; returns (the training seconds when it started,
        its result)."""
        at = self.pause()
        try:
            return at, fn()
        finally:
            self.resume()


def next_evaluation(due: float, now: float, every: float, fine_every: float = 0.0, fine_until: float = 0.0) -> float:
    """The next evaluation time on a training-clock grid, after an evaluation at ``now`` that was
    ``due``: every ``fine_every`` s until ``fine_until`` s, then every ``every`` s. Points the
    clock has already passed are skipped (one evaluation, not one per missed point)."""
    if every <= 0 or (fine_until > 0 and fine_every <= 0):
        raise ValueError("evaluation intervals must be positive")
    while due <= now:
        due += fine_every if due < fine_until else every
    return due


class EvaluationSchedule:
    """When a benchmark's baseline evaluates and when it stops training, read off its training
    clock after every chunk of training (an SB3 environment step, an rsl_rl iteration).

    An evaluation runs at the first reading at or after a due time (one, however many due times
    that reading passed), off the training clock, stamped with the training time at which it
    began; training goes on while the clock is under the budget. The due times are either given
    (``at``: e.g. quadlit's own evaluation stamps, to judge both at the same moments) or a grid
    (``next_evaluation``: every ``fine_every`` s until ``fine_until`` s, then every ``every`` s).
    ``start_seconds`` is the first reading: when the baseline could first act. ``report(row)`` is
    called with every stamped row (e.g. to print it).
    """

    def __init__(self, clock: TrainingClock, budget_s: float, at: list[float] | None = None, every: float = 20.0,
                 fine_every: float = 4.0, fine_until: float = 60.0,
                 report: Callable[[dict], None] | None = None) -> None:
        if budget_s <= 0:
            raise ValueError("the training budget must be positive")
        self.clock, self.budget_s, self.report = clock, float(budget_s), report
        self._at = None if at is None else sorted(float(t) for t in at)
        self._grid = (every, fine_every, fine_until)
        first = fine_every if fine_until > 0 else every
        self.due = self._next(-float("inf")) if self._at is not None else first
        self.rows: list[dict] = []
        self.start_seconds: float | None = None

    def _next(self, now: float) -> float:
        if self._at is not None:
            return next((t for t in self._at if t > now), float("inf"))
        return next_evaluation(self.due, now, *self._grid)

    def after_chunk(self, evaluate: Callable[[], dict]) -> bool:
        """Call after every chunk of training: returns whether training goes on. Runs ``evaluate()``
        (returns a row without "seconds") when due and keeps the stamped row in ``rows``; a reading
        past the budget evaluates nothing (the final evaluation follows)."""
        now = self.clock.seconds()
        if self.start_seconds is None:
            self.start_seconds = now
        if now >= self.budget_s:
            return False
        if now >= self.due:
            self.evaluate_now(evaluate)
            self.due = self._next(self.rows[-1]["seconds"])
        return True

    def evaluate_now(self, evaluate: Callable[[], dict]) -> dict:
        """Run ``evaluate()`` now, off the training clock (e.g. the final one, at the end of training);
        keeps and returns its row, stamped with the training time at which it began."""
        seconds, row = self.clock.measure(evaluate)
        self.rows.append({"seconds": seconds, **row})
        if self.report is not None:
            self.report(self.rows[-1])
        return self.rows[-1]


def epochs_between_evaluations(train_seconds: float, every: int, fine_until: float = 0.0) -> int:
    """Epochs between a ``bench train`` run's evaluations at ``train_seconds`` of training: 1
    (after every epoch) until ``fine_until`` s, then ``every``."""
    return 1 if train_seconds < fine_until else every


def check_result_paths(prog: str, json_path: str | None, plots: str | None,
                       is_result: Callable[[Path], bool]) -> None:
    """A benchmark's ``--json`` file (an earlier result, ``is_result(path)``, may be replaced,
    another file not) and ``--out`` plot folder, checked before its runs rather than after
    minutes of them."""
    if json_path:
        check_output_file(json_path, f"{prog}: --json", rewritable=is_result)
    if plots:
        check_output_folder(plots, f"{prog}: --out")


def positive_int(text: str) -> int:
    """argparse ``type`` of a count (environments, threads, steps, epochs): an integer >= 1;
    argparse names the option in its one-line error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def seed_int(text: str) -> int:
    """argparse ``type`` of a run's seed: an integer from 0 to 2**32 - 1 (it becomes the run's
    ``--seed_everything``, whose error would name that option, not ``--seeds``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to {2**32 - 1}, got {text!r}") from None
    if not 0 <= value <= 2**32 - 1:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to {2**32 - 1}, got {value}")
    return value


def require_config(path: str | None, prog: str) -> None:
    """One line and exit 2 when a benchmark's ``--config`` is not a file (instead of a traceback
    from a child process, or a run that fails after minutes of another one)."""
    if path is not None and not Path(path).is_file():
        raise ConfigError(f"{prog}: --config {path}: no such file (run from the repository root, or give a path)")


def main(argv: list[str] | None = None) -> int:
    if argv and argv[0] in BENCHES:  # its own options and --help
        return int(importlib.import_module(BENCHES[argv[0]]).main(argv[1:]) or 0)
    parser = argparse.ArgumentParser(prog="quadlit bench", description="Run a benchmark and print its table.")
    parser.add_argument("name", choices=[*BENCHES, "all"],
                        help="reach: task kernel + fit throughput; physics: quadruped physics vs MuJoCo; "
                             "train: time to balance with the default fit; soak: resident memory over a 10-minute fit; "
                             "render: cost of an evaluation video; fingerprint: digests of a short fixed-seed run; "
                             "compile: start-up (cold Numba compilation, time to the first iteration); update: cost of a PPO and world-model step; "
                             "world-model: world-model designs trained and judged on one run's data; "
                             "falls: which pushes a balance policy fails; "
                             "versus: quadlit against Stable-Baselines3 or rsl_rl PPO, same clock and episodes "
                             "(versus-sb3: versus --baseline sb3); "
                             "early: a balance run's first iterations, policy by policy; "
                             "robots: every quadruped under a folder against MuJoCo (and trained, --train) "
                             "(all = reach + physics)")
    args, rest = parser.parse_known_args(argv)
    names = ["reach", "physics"] if args.name == "all" else [args.name]
    for name in names:
        importlib.import_module(BENCHES[name]).main(rest)
    return 0
