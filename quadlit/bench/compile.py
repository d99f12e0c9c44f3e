"""Cold compilation of the physics and task kernels: what a first ``make train`` pays.

    quadlit bench compile [--task balance] [--repeats 1]

Each repeat runs a fresh Python process with an empty ``NUMBA_CACHE_DIR`` that builds 64
environments of ``--task`` and takes one step (that step compiles every kernel the task's
control step needs), then 50 more steps; it prints the import time, the first step's
wall-clock and the process's CPU time (compilation is single-threaded). A warm run in the
same process kind is shown for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time, resource
t0 = time.perf_counter()
import numpy as np
from quadlit.tasks import make_task, task_def
t1 = time.perf_counter()
name = sys.argv[1]
task = make_task(name, 64, task_def(name).params_type(), 0)
task.reset(0)
action = np.zeros((64, task.spec.action_dim), np.float32)
task.step(action)
t2 = time.perf_counter()
for _ in range(50):
    task.step(action)
t3 = time.perf_counter()
task.close()
cpu = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"import_s": t1 - t0, "first_step_s": t2 - t1, "next_50_steps_s": t3 - t2,
                  "cpu_s": cpu.ru_utime + cpu.ru_stime}))
"""


def measure(task: str, cache_dir: str) -> dict[str, float]:
    """One child process with ``cache_dir`` as its Numba cache; its timings."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", CHILD, task], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "child failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="quadlit bench compile", description=__doc__.split("\n")[0])
    p.add_argument("--task", default="balance", help="task whose kernels are compiled")
    p.add_argument("--repeats", type=int, default=1, help="cold runs (each with its own empty cache)")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    print(f"bench compile: {args.task}, 64 environments, one process per run")
    print(f"  {'run':10s} {'import s':>9s} {'first step s':>13s} {'50 steps s':>11s} {'process CPU s':>14s}")
    for k in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="quadlit-numba-") as cache:
            cold = measure(args.task, cache)
            print(f"  {'cold ' + str(k):10s} {cold['import_s']:9.1f} {cold['first_step_s']:13.1f} "
                  f"{cold['next_50_steps_s']:11.2f} {cold['cpu_s']:14.1f}", flush=True)
            if k == 0:
                warm = measure(args.task, cache)
                print(f"  {'warm':10s} {warm['import_s']:9.1f} {warm['first_step_s']:13.1f} "
                      f"{warm['next_50_steps_s']:11.2f} {warm['cpu_s']:14.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
