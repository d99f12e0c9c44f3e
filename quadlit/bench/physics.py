"""Benchmark of the quadruped physics kernel against MuJoCo (a script, not a test).

    python -m quadlit.bench.physics                 # or: quadlit bench physics
    python -m quadlit.bench.physics --envs 1024 4096 --steps 20 --repeats 3

Prints control steps per second (50 Hz control: every control step runs all physics
substeps) for 1 and 2 threads and N environments, for the SIMD block kernel
(``step_shard_block`` per shard on a ``ShardPool``, and over Numba ``prange``) and the scalar
reference kernel (``step_shard``), then MuJoCo stepping the exported MJCF (same dt, same
substeps per control step, PD position servos, ``mujoco.rollout`` with 2 threads over many
perturbed initial states) and the ratio. Also compares CRBA + block Cholesky with the
articulated-body algorithm (scalar kernel, one thread).

Each figure is the best of ``--repeats`` timed runs after a warm-up that also compiles.
Figures taken on a shared machine are preliminary.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from quadlit.bench import positive_int
from quadlit.envs.pool import ShardPool
from quadlit.physics import EnvParams, PhysicsState, SimParams, a1_model, step

DEFAULT_ENVS = (256, 512, 1024, 2048, 4096, 8192)


def quadlit_rate(num_envs: int, threads: int, steps: int, repeats: int, method: str = "shards",
                 sim: SimParams = SimParams()) -> float:
    """Control steps per second of ``quadlit.physics.step`` (robot standing under PD with small
    random actions, so feet are in contact as in the balance task)."""
    import numba

    model = a1_model()
    st = PhysicsState.allocate(num_envs)
    st.set_standing(model)
    envp = EnvParams.allocate(num_envs)
    actions = np.random.default_rng(0).uniform(-0.2, 0.2, (num_envs, 12))
    pool = ShardPool(threads)
    old_threads = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        for _ in range(3):
            step(model, sim, envp, st, actions, pool, method=method)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(steps):
                step(model, sim, envp, st, actions, pool, method=method)
            best = min(best, time.perf_counter() - start)
    finally:
        numba.set_num_threads(old_threads)
        pool.close()
    return num_envs * steps / best


def mujoco_rate(num_states: int, control_steps: int, repeats: int, threads: int = 2,
                sim: SimParams = SimParams()) -> float:
    """Control steps per second of MuJoCo on the exported model: ``mujoco.rollout`` of
    ``num_states`` perturbed standing states for ``control_steps * sim.substeps`` physics steps
    at ``sim.dt``, on ``threads`` threads."""
    try:
        import mujoco
        from mujoco import rollout
    except ImportError as exc:  # test-only dependency
        raise SystemExit("the MuJoCo comparison needs the 'mujoco' package: pip install 'quadlit[test]' "
                         f"(or pip install mujoco) [{exc}]") from exc
    from quadlit.physics.mjcf import to_mjcf

    model = a1_model()
    mm = mujoco.MjModel.from_xml_string(to_mjcf(model, sim, actuators="position"))
    data = [mujoco.MjData(mm) for _ in range(threads)]
    d = data[0]
    mujoco.mj_resetDataKeyframe(mm, d, 0)
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    size = mujoco.mj_stateSize(mm, spec)
    rng = np.random.default_rng(0)
    states = np.zeros((num_states, size))
    for k in range(num_states):
        mujoco.mj_resetDataKeyframe(mm, d, 0)
        d.qpos[7:] += rng.uniform(-0.05, 0.05, 12)
        d.qvel[:] = rng.normal(size=mm.nv) * 0.05
        mujoco.mj_getState(mm, d, states[k], spec)
    control = np.tile(model.default_q, (1, 1, 1))
    nstep = control_steps * sim.substeps
    out = np.empty((num_states, nstep, size))
    rollout.rollout(mm, data, states, control, nstep=nstep, state=out)  # warm-up (thread pool)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        rollout.rollout(mm, data, states, control, nstep=nstep, state=out)
        best = min(best, time.perf_counter() - start)
    return num_states * control_steps / best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="quadlit bench physics", description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", type=positive_int, nargs="+", default=list(DEFAULT_ENVS), help="environment counts")
    parser.add_argument("--threads", type=positive_int, nargs="+", default=[1, 2], help="thread counts")
    parser.add_argument("--steps", type=positive_int, default=10, help="timed control steps per run")
    parser.add_argument("--repeats", type=positive_int, default=3, help="timed runs per figure (best is kept)")
    parser.add_argument("--mujoco-states", type=positive_int, default=512, help="initial states in the MuJoCo rollout")
    parser.add_argument("--no-mujoco", action="store_true", help="skip the MuJoCo comparison")
    args = parser.parse_args(argv)
    sim = SimParams()
    print(f"quadlit physics: control steps/s, {1 / sim.control_dt:.0f} Hz control = {sim.substeps} substeps "
          f"of {sim.dt * 1e3:g} ms, float64 (preliminary on a shared machine)")
    mj = None
    if not args.no_mujoco:
        mj = mujoco_rate(args.mujoco_states, max(1, args.steps // 2), args.repeats, threads=2, sim=sim)
        print(f"MuJoCo {__import__('mujoco').__version__}: rollout, 2 threads, {args.mujoco_states} states, "
              f"same dt/substeps: {mj:,.0f} control steps/s ({mj * sim.substeps:,.0f} physics steps/s)")
    variants = [(f"scalar {t}thr", "shards", t) for t in args.threads]
    variants += [(f"simd {t}thr", "block", t) for t in args.threads]
    variants += [(f"simd prange {t}thr", "block-prange", t) for t in args.threads if t > 1]
    header = f"{'envs':>6} " + " ".join(f"{name:>17}" for name, _, _ in variants)
    if mj is not None:
        header += f" {'best/MuJoCo':>12}"
    print(header)
    for n in args.envs:
        rates = [quadlit_rate(n, t, args.steps, args.repeats, method, sim) for _, method, t in variants]
        line = f"{n:>6} " + " ".join(f"{r:>17,.0f}" for r in rates)
        if mj is not None:
            line += f" {max(rates) / mj:>11.1f}x"
        print(line, flush=True)
    n = min(1024, max(args.envs))
    crba = quadlit_rate(n, 1, args.steps, args.repeats, "shards", sim)
    aba = quadlit_rate(n, 1, args.steps, args.repeats, "aba", sim)
    print(f"dynamics algorithm, 1 thread, {n} envs: CRBA + block Cholesky {crba:,.0f} /s, "
          f"ABA {aba:,.0f} /s (CRBA/ABA = {crba / aba:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
