"""Start-up: cold compilation of the physics and task kernels, and the time a first ``quadlit
fit`` waits for its first finished training iteration.

    quadlit bench compile [--task balance] [--repeats 1] [--kernels N] [--fit CONFIG]

Each repeat runs a fresh Python process with an empty ``NUMBA_CACHE_DIR`` that builds 64
environments of ``--task`` and takes one step (that step compiles every kernel the task's
control step needs), then 50 more steps; it prints the import time, the first step's
wall-clock and the process's CPU time (compilation is single-threaded). A warm run in the
same process kind is shown for comparison. The first cold run also lists the ``--kernels``
functions whose compilation took longest (Numba's compile events; a function's own time, its
callees' compilation excluded).

With ``--fit CONFIG`` it also times ``quadlit fit --config CONFIG`` from process start to the
end of its first training iteration (collection and update), cold (a fresh cache) and warm
(the same cache again).

Cold runs are made twice: as a user gets them, with the physics compile helper
(``quadlit.physics.precompile``: a second process compiles the physics stage kernels), and with
it switched off (``QUADLIT_PARALLEL_COMPILE=0``, one process compiles everything). The compile
list is that of the run with the helper: what the main process itself compiled.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from quadlit.bench import require_config

CHILD = r"""
import json, sys, time, resource
t0 = time.perf_counter()
import numpy as np
from numba.core import event
from quadlit.tasks import make_task, task_def
t1 = time.perf_counter()
name = sys.argv[1]
task = make_task(name, 64, task_def(name).params_type(), 0)
task.reset(0)
action = np.zeros((64, task.spec.action_dim), np.float32)
with event.install_recorder("numba:compile") as compiles:
    task.step(action)
t2 = time.perf_counter()
for _ in range(50):
    task.step(action)
t3 = time.perf_counter()
task.close()
cpu = resource.getrusage(resource.RUSAGE_SELF)
# each function's own compile time: its span minus the spans of compilations nested in it
own, stack = {}, []
for stamp, ev in compiles.buffer:
    if ev.is_start:
        stack.append([stamp, 0.0])
    else:
        start, nested = stack.pop()
        span = stamp - start
        key = getattr(ev.data.get("dispatcher"), "__qualname__", None) or str(ev.data.get("dispatcher"))
        own[key] = own.get(key, 0.0) + span - nested
        if stack:
            stack[-1][1] += span
print(json.dumps({"import_s": t1 - t0, "first_step_s": t2 - t1, "next_50_steps_s": t3 - t2,
                  "cpu_s": cpu.ru_utime + cpu.ru_stime, "kernels": own}))
"""

FIT_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from quadlit.launch import start_compile_helper_for
start_compile_helper_for(["fit", "--config", sys.argv[1]])  # as the console entry point does
from lightning.pytorch.callbacks import Callback
from quadlit.bench import open_ended_fit
from quadlit.cli import quiet_known_warnings, run_cli
t1 = time.perf_counter()

class FirstIteration(Callback):
    seconds = None
    def on_train_batch_end(self, trainer, *args):
        FirstIteration.seconds = time.perf_counter() - t0
        trainer.should_stop = True

quiet_known_warnings()
run_cli(open_ended_fit(sys.argv[1], "--trainer.default_root_dir", sys.argv[2], "--trainer.logger", "false",
                       "--trainer.enable_checkpointing", "false", "--trainer.num_sanity_val_steps", "0"),
        extra_callbacks=[FirstIteration()])
print(json.dumps({"import_s": t1 - t0, "first_iteration_s": FirstIteration.seconds}))
"""


def measure(task: str, cache_dir: str, child: str = CHILD, *args: str, helper: bool = True) -> dict:
    """One child process with ``cache_dir`` as its Numba cache; its timings. ``helper``: the
    physics compile helper may run (else ``QUADLIT_PARALLEL_COMPILE=0``)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, QUADLIT_PARALLEL_COMPILE="1" if helper else "0")
    out = subprocess.run([sys.executable, "-c", child, task, *args], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "child failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="quadlit bench compile", description=__doc__.split("\n")[0])
    from quadlit.tasks import TASK_NAMES

    p.add_argument("--task", default="balance", choices=TASK_NAMES, help="task whose kernels are compiled")
    p.add_argument("--repeats", type=int, default=1, help="cold runs (each with its own empty cache)")
    p.add_argument("--kernels", type=int, default=8, help="list the N functions that took longest to compile")
    p.add_argument("--fit", metavar="CONFIG", help="also time a fit with this config to its first finished iteration")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.kernels < 0:
        p.error("--repeats must be at least 1 and --kernels at least 0")
    if args.fit is not None:
        require_config(args.fit, "bench compile")
    print(f"bench compile: {args.task}, 64 environments, one process per run "
          f"(cold*: the compile helper switched off)")
    print(f"  {'run':10s} {'import s':>9s} {'first step s':>13s} {'50 steps s':>11s} {'process CPU s':>14s}")

    def row(label: str, r: dict) -> None:
        print(f"  {label:10s} {r['import_s']:9.1f} {r['first_step_s']:13.1f} {r['next_50_steps_s']:11.2f} "
              f"{r['cpu_s']:14.1f}", flush=True)

    for k in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="quadlit-numba-") as alone:
            row(f"cold* {k}", measure(args.task, alone, helper=False))
        with tempfile.TemporaryDirectory(prefix="quadlit-numba-") as cache:
            cold = measure(args.task, cache)
            row(f"cold {k}", cold)
            if k == 0:
                row("warm", measure(args.task, cache))
                slowest = sorted(cold["kernels"].items(), key=lambda kv: -kv[1])[:args.kernels]
                if slowest:
                    total = sum(cold["kernels"].values())
                    print(f"  compiled by the main process (own time; {len(cold['kernels'])} functions, "
                          f"{total:.1f} s):")
                    for name, seconds in slowest:
                        print(f"    {seconds:6.2f} s  {name}")
    if args.fit is not None:
        print(f"fit --config {args.fit}: process start to the end of the first training iteration")

        def fit_row(label: str, r: dict) -> None:
            print(f"  {label:5s} imports {r['import_s']:5.1f} s   first iteration done at "
                  f"{r['first_iteration_s']:6.1f} s", flush=True)

        with tempfile.TemporaryDirectory(prefix="quadlit-numba-") as alone, \
                tempfile.TemporaryDirectory(prefix="quadlit-fit-") as root:
            fit_row("cold*", measure(args.fit, alone, FIT_CHILD, root, helper=False))
        with tempfile.TemporaryDirectory(prefix="quadlit-numba-") as cache, \
                tempfile.TemporaryDirectory(prefix="quadlit-fit-") as root:
            for label in ("cold", "warm"):
                fit_row(label, measure(args.fit, cache, FIT_CHILD, root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
