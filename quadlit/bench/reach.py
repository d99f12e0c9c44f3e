"""Benchmarks of the reach task.

    python -m quadlit.bench.reach                     # kernel env-steps/s, 1 and 2 threads
    python -m quadlit.bench.reach --baselines         # goals/episode: random vs scripted policy

Kernel throughput is measured through ``ReachTask.step`` (fused kernel per shard plus the
shard dispatch), with fixed actions, after a warm-up that also triggers compilation; each
figure is the median of ``--repeats`` timed runs. Figures on a shared machine are preliminary.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import numpy as np

from quadlit.envs.pool import ShardPool
from quadlit.tasks.reach import ReachParams, ReachTask

DEFAULT_ENVS = (1024, 2048, 4096, 8192, 16384)
DEFAULT_THREADS = (1, 2)


def kernel_throughput(
    num_envs: int, threads: int, steps: int, params: ReachParams = ReachParams()
) -> float:
    """Env-steps per second of ``ReachTask.step`` (one fused kernel call per shard).

    Args:
        num_envs: environments in the batch.
        threads: shard threads (``ShardPool(threads)``).
        steps: timed control steps (after 10 warm-up steps).
    """
    pool = ShardPool(threads)
    task = ReachTask(num_envs, params, seed=0, pool=pool)
    actions = np.random.default_rng(0).uniform(-1, 1, (num_envs, 3)).astype(np.float32)
    try:
        for _ in range(10):
            task.step(actions)
        start = time.perf_counter()
        for _ in range(steps):
            task.step(actions)
        elapsed = time.perf_counter() - start
    finally:
        task.close()
        pool.close()
    return num_envs * steps / elapsed


# ---- end-to-end fit measurement ---------------------------------------------------------------
def fit_throughput(num_envs: int, threads: int | None, iterations: int = 30, warmup: int = 3,
                   rollout_steps: int = 32) -> dict[str, float]:
    """Env-steps per second of a whole ``quadlit fit`` on reach (rollout collection + world-model
    and PPO updates), timed over ``iterations`` after ``warmup`` iterations (compilation excluded).

    Returns: {"steps_per_s", "collect_steps_per_s", "collect_share"}.
    """
    import tempfile

    from lightning.pytorch.callbacks import Callback

    from quadlit.cli import quiet_known_warnings, run_cli

    class _Timer(Callback):
        def __init__(self) -> None:
            self.stamps: list[float] = []
            self.collect: list[float] = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self.stamps.append(time.perf_counter())
            self.collect.append(batch.collect_seconds)

    timer = _Timer()
    quiet_known_warnings()
    total = warmup + iterations
    with tempfile.TemporaryDirectory() as tmp:
        args = ["fit", "--data.task", "reach", "--data.num_envs", str(num_envs),
                "--data.rollout_steps", str(rollout_steps), "--data.iterations_per_epoch", str(total),
                "--trainer.max_epochs", "1", "--trainer.limit_val_batches", "0",
                "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
                "--trainer.logger", "false",
                "--trainer.default_root_dir", tmp]
        if threads is not None:
            args += ["--data.physics_threads", str(threads)]
        run_cli(args, extra_callbacks=[timer])
    seconds = timer.stamps[-1] - timer.stamps[warmup - 1]
    steps = iterations * num_envs * rollout_steps
    collect = sum(timer.collect[warmup:])
    return {"steps_per_s": steps / seconds, "collect_steps_per_s": steps / collect, "collect_share": collect / seconds}


# ---- policy baselines: what learning can be expected to achieve -----------------------------
Policy = Callable[[np.ndarray, np.random.Generator, ReachParams], np.ndarray]


def random_policy(obs: np.ndarray, rng: np.random.Generator, params: ReachParams) -> np.ndarray:
    """Uniform actions in [-1, 1]^3."""
    return rng.uniform(-1, 1, (len(obs), 3)).astype(np.float32)


def scripted_policy(obs: np.ndarray, rng: np.random.Generator, params: ReachParams) -> np.ndarray:
    """Full horizontal acceleration toward the goal; a proportional jump when the goal is above
    and horizontally close. Ignores stamina (never rests)."""
    rel = obs[:, :3].astype(np.float64)
    rel_xy = rel[:, :2] * (2 * params.box_half_extent)
    rel_z = rel[:, 2] * params.box_height
    dist_xy = np.linalg.norm(rel_xy, axis=1)
    actions = np.zeros((len(obs), 3), dtype=np.float32)
    actions[:, :2] = rel_xy / np.maximum(dist_xy, 1e-9)[:, None]
    jump = (rel_z > 0.3) & (dist_xy < 1.5)
    actions[:, 2] = np.where(jump, np.clip(rel_z, 0.0, 1.0), -1.0)
    return actions


def goals_per_episode(
    policy: Policy,
    num_envs: int = 1000,
    params: ReachParams = ReachParams(),
    threads: int = 1,
    seed: int = 0,
) -> tuple[float, float]:
    """Run every environment for one full episode; returns (mean goals, mean return) per episode."""
    pool = ShardPool(threads)
    task = ReachTask(num_envs, params, seed=seed, pool=pool)
    rng = np.random.default_rng(seed)
    obs = task.reset().copy()
    goals, returns = [], []
    try:
        for _ in range(params.max_steps):
            res = task.step(policy(obs, rng, params))
            done = res.done
            goals.append(res.episode["goals"][done].copy())
            returns.append(res.episode["return"][done].copy())
            obs = res.obs.copy()
    finally:
        task.close()
        pool.close()
    return float(np.concatenate(goals).mean()), float(np.concatenate(returns).mean())


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(","))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="quadlit bench reach", description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--envs", type=_ints, default=DEFAULT_ENVS, help="comma-separated env counts")
    add("--threads", type=_ints, default=DEFAULT_THREADS, help="comma-separated thread counts")
    add("--steps", type=int, default=200, help="timed steps per repeat")
    add("--repeats", type=int, default=5, help="repeats; the median is reported")
    add("--baselines", action="store_true", help="also report random/scripted goals per episode")
    add("--no-fit", action="store_true", help="skip the end-to-end fit measurement")
    add("--fit-envs", type=_ints, default=(256, 1024), help="env counts of the end-to-end fit measurement")
    args = parser.parse_args(argv)

    print("reach kernel throughput (ReachTask.step), env-steps/s, median of", args.repeats)
    header = " ".join(f"{f'{t} thread(s)':>14}" for t in args.threads)
    print(f"{'envs':>7} {header} {'us/step':>9}")
    for n in args.envs:
        rates = [
            statistics.median(kernel_throughput(n, t, args.steps) for _ in range(args.repeats))
            for t in args.threads
        ]
        cells = " ".join(f"{r / 1e6:>12.2f} M" for r in rates)
        print(f"{n:>7} {cells} {n / max(rates) * 1e6:>9.1f}", flush=True)

    if args.baselines:
        for name, policy in (("random", random_policy), ("scripted", scripted_policy)):
            goals, ret = goals_per_episode(policy)
            print(f"{name:>9} policy: {goals:.2f} goals/episode, return {ret:.1f} (1000 envs)")

    if not args.no_fit:
        print("end-to-end fit (rollout + world model + 4 PPO epochs), env-steps/s, 30 iterations after 3 warm-up")
        for n in args.fit_envs:
            r = fit_throughput(n, None)
            print(f"{n:>7} envs: {r['steps_per_s']:>10.0f} overall, {r['collect_steps_per_s']:>10.0f} while "
                  f"collecting, collection {100 * r['collect_share']:.0f}% of wall time", flush=True)


if __name__ == "__main__":
    main()
