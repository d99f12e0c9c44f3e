"""Compile the quadruped's SIMD physics kernels in a second process, beside the first step's own
compilation, so that a cold start uses both cores.

Numba compiles under one process-wide lock, so a process compiles one function at a time. A
task's fused step kernel calls ``control_step_block``, which calls a dozen SIMD stage kernels
(``gather_block``, ``kinematics_block``, ... ``scatter_block``); Numba compiles a callee when it
first types a call to it, checking its on-disk cache (``cache=True``) first. So while the main
process compiles the step top-down, in the order the calls appear, a helper process compiles the
stages bottom-up, in the reverse order, into the same cache: when the main process reaches a
stage the helper has finished, it loads it instead of compiling it. Where they meet at most one
stage is compiled twice. Nothing waits on the helper: if it is slow, fails or is missing, the
main process compiles what is not in the cache, exactly as without it. The helper is stopped
once the main process's first step has compiled (``stop_background_compile``).

    python -m quadlit.physics.precompile    # compile the stage kernels into $NUMBA_CACHE_DIR

``QUADLIT_PARALLEL_COMPILE=0`` (or false, no, off) switches the helper off.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import time

from quadlit.environment import switch

ENV_SWITCH = "QUADLIT_PARALLEL_COMPILE"

_helper: subprocess.Popen | None = None
_started = False


def stage_kernel_calls():
    """``[(dispatcher, args), ...]``: each SIMD stage kernel of ``control_step_block`` with
    arguments of the types it is called with inside a task's step kernel, in the reverse of the
    order in which compiling the step reaches them (the helper's order)."""
    import numpy as np

    from quadlit.physics.actuators import joint_forces_block
    from quadlit.physics.contacts import body_ground_contacts_block, body_touches_ground_block, ground_contacts_block
    from quadlit.physics.control_step import gather_block, scatter_block
    from quadlit.physics.dynamics import bias_and_mass_matrix_block, solve_accelerations_block
    from quadlit.physics.integration import integrate_block
    from quadlit.physics.kinematics import kinematics_block, velocities_block
    from quadlit.physics.model import EnvParams, SimParams, a1_model, validate_sim_params
    from quadlit.physics.state import PhysicsState
    from quadlit.physics.workspace import BLOCK_DTYPE

    model = a1_model()
    sim = validate_sim_params(SimParams())
    envp = EnvParams.allocate(1)
    st = PhysicsState.allocate(1)
    actions = np.zeros((1, 12), np.float32)  # tasks pass C-contiguous float32 actions
    w = np.zeros(1, dtype=BLOCK_DTYPE)[0]  # the type of ``new_block_workspace()[0]``
    lo, hi = 0, 1
    forward = [  # the order of the calls in control_step_block / substep_block
        (gather_block, (model, sim, envp, st, actions, lo, hi, w)),
        (kinematics_block, (model, w)),
        (velocities_block, (model, w)),
        (joint_forces_block, (model, sim, w)),
        (ground_contacts_block, (model, sim, w)),
        (body_ground_contacts_block, (model, sim, w)),
        (body_touches_ground_block, (model, w)),
        (bias_and_mass_matrix_block, (model, sim.gravity, w)),
        (solve_accelerations_block, (w,)),
        (integrate_block, (sim, w)),
        (scatter_block, (sim, st, lo, hi, w)),
    ]
    return forward[::-1]


def compile_stage_kernels(deadline_s: float | None = None) -> list[str]:
    """Compile (or load from the cache) every stage kernel, bottom-up; returns their names in the
    order done. Stops early after ``deadline_s`` seconds."""
    from numba import typeof

    start = time.perf_counter()
    done = []
    for dispatcher, args in stage_kernel_calls():
        if deadline_s is not None and time.perf_counter() - start > deadline_s:
            break
        dispatcher.compile(tuple(typeof(a) for a in args))
        done.append(dispatcher.py_func.__name__)
    return done


def stage_kernels_cached(step_kernel=None) -> bool:
    """Whether the on-disk cache already holds what a first step needs: the entry of
    ``step_kernel`` when given (a task's fused step kernel: when it loads, no stage kernel is
    compiled at all), else that of the first stage kernel the helper would compile. ``False``
    when that cannot be told."""
    dispatcher = step_kernel if step_kernel is not None else stage_kernel_calls()[0][0]
    try:
        return bool(dispatcher._cache._cache_file._load_index())  # Numba's cache index, stale-checked
    except Exception:  # a Numba without these internals: assume cold
        return False


def start_background_compile(step_kernel=None) -> bool:
    """Start the helper process once per process, unless switched off (``QUADLIT_PARALLEL_COMPILE=0``),
    fewer than 2 CPUs are usable, or the cache is already warm (``stage_kernels_cached``; pass
    the task's step kernel). Returns whether it was started."""
    global _helper, _started
    if _started:
        return False
    _started = True
    if not switch(ENV_SWITCH) or _usable_cpus() < 2 or stage_kernels_cached(step_kernel):
        return False
    try:
        _helper = subprocess.Popen([sys.executable, "-m", "quadlit.physics.precompile"],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:  # cannot start a process here: compile everything in this one
        return False
    atexit.register(stop_background_compile)
    return True


def stop_background_compile() -> None:
    """Stop the helper if it is still running (its finished kernels stay in the cache; Numba
    writes each cache file whole, by rename)."""
    global _helper
    if _helper is None:
        return
    if _helper.poll() is None:
        _helper.terminate()
        try:
            _helper.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _helper.kill()
            _helper.wait()
    _helper = None


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def main() -> int:
    done = compile_stage_kernels(deadline_s=120.0)
    print(f"compiled {len(done)} stage kernels: {', '.join(done)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
