"""The background compile helper: what it compiles is exactly what a task's step kernel needs."""

import json
import os
import subprocess
import sys

import numpy as np

from quadlit.physics import precompile
from quadlit.tasks import make_task, task_def
from quadlit.tasks.balance import kernels as balance_kernels

# Builds a balance task with the helper switched off, steps it once and reports, for every stage
# kernel, how often the step's compilation loaded it from the cache and how often it compiled it.
STEP_CHILD = r"""
import json
import numpy as np
from quadlit.physics.precompile import stage_kernel_calls
from quadlit.tasks import make_task, task_def
from quadlit.tasks.balance import kernels as balance_kernels
task = make_task("balance", 8, task_def("balance").params_type(), 0)
task.step(np.zeros((8, task.spec.action_dim), np.float32))
report = {}
for dispatcher, _ in stage_kernel_calls():
    stats = dispatcher.stats
    report[dispatcher.py_func.__name__] = [sum(stats.cache_hits.values()), sum(stats.cache_misses.values())]
print(json.dumps(report))
"""


def _child(args, cache_dir, **env):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, check=True,
                          env=dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), **env))


CACHED_CHILD = (
    "from quadlit.physics.precompile import stage_kernels_cached\n"
    "from quadlit.tasks.balance.kernels import step_shard\n"
    "print(stage_kernels_cached(step_shard), stage_kernels_cached())\n"
)


def test_every_stage_the_helper_compiles_is_loaded_not_compiled_by_the_step(tmp_path):
    def cached():  # (the step kernel's entry, the first stage kernel's entry) in this cache
        return _child(["-c", CACHED_CHILD], tmp_path).stdout.split()

    assert cached() == ["False", "False"]  # an empty cache: the helper would start
    helper = _child(["-m", "quadlit.physics.precompile"], tmp_path)
    assert cached() == ["False", "True"]
    names = [d.py_func.__name__ for d, _ in precompile.stage_kernel_calls()]
    assert names[0] == "scatter_block" and names[-1] == "gather_block" and len(names) == 11
    assert helper.stdout.strip().endswith(", ".join(names))
    step = _child(["-c", STEP_CHILD], tmp_path, QUADLIT_PARALLEL_COMPILE="0")
    report = json.loads(step.stdout.strip().splitlines()[-1])
    assert sorted(report) == sorted(names)
    # a signature the helper got wrong would show here as a miss: the step compiling it again
    assert {name: hits_misses for name, hits_misses in report.items() if hits_misses != [1, 0]} == {}
    assert cached() == ["True", "True"]  # the next process loads the step whole: no helper


def test_the_helper_starts_once_and_not_when_switched_off(monkeypatch):
    monkeypatch.setattr(precompile, "_started", False)
    monkeypatch.setattr(precompile, "_helper", None)
    monkeypatch.setenv(precompile.ENV_SWITCH, "0")
    assert precompile.start_background_compile() is False and precompile._helper is None
    monkeypatch.setattr(precompile, "_started", False)
    monkeypatch.setenv(precompile.ENV_SWITCH, "1")
    monkeypatch.setattr(precompile, "stage_kernels_cached", lambda step_kernel=None: True)  # a warm cache
    assert precompile.start_background_compile() is False and precompile._helper is None
    monkeypatch.setattr(precompile, "_started", False)
    monkeypatch.setattr(precompile, "stage_kernels_cached", lambda step_kernel=None: False)
    monkeypatch.setattr(precompile, "_usable_cpus", lambda: 2)
    started = []
    monkeypatch.setattr(precompile.subprocess, "Popen", lambda cmd, **kw: started.append(cmd) or _FakeProcess())
    assert precompile.start_background_compile() is True
    assert started == [[sys.executable, "-m", "quadlit.physics.precompile"]]
    assert precompile.start_background_compile() is False  # once per process
    fake = precompile._helper
    precompile.stop_background_compile()
    assert fake.terminated and precompile._helper is None


def test_the_cache_check_sees_a_warm_cache():
    # once a balance task has stepped, its step kernel is in this cache (compiled or loaded), so
    # the next process would load it whole and needs no helper (whatever the stage kernels'
    # own entries say: a step kernel loaded from the cache never looks at them)
    task = make_task("balance", 4, task_def("balance").params_type(), 0)
    task.step(np.zeros((4, task.spec.action_dim), np.float32))
    assert precompile.stage_kernels_cached(balance_kernels.step_shard) is True


class _FakeProcess:
    terminated = False

    def poll(self):
        return None

    def terminate(self):
        self.terminated = True

    def wait(self, timeout=None):
        return 0
