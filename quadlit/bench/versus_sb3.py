"""quadlit against Stable-Baselines3 PPO on quadlit's own environment, side by side.

    quadlit bench versus-sb3 [--minutes 3] [--seeds 0 1 2] [--cold] [--config configs/balance.yaml]
                             [--eval-every-s 20] [--eval-every 2] [--fine-eval-s 60] [--fine-every-s 4]
                             [--eval-episodes 64] [--out DIR] [--json PATH]

For each seed, one after the other, each in its own process with the same training wall-clock
budget (evaluations excluded, start-up and Numba compilation included):

- Stable-Baselines3 PPO, ``MlpPolicy`` (64x64, its default), 8 environments of
  ``quadlit/Balance-v0`` in a ``DummyVecEnv``, n_steps 256, batch 256, 10 epochs, lr 3e-4,
  everything else SB3's defaults, on the balance task's default parameters (1.0 m/s pushes;
  ``--sb3-params config`` trains it on the config's task parameters instead);
- ``quadlit fit`` on ``--config`` (through ``quadlit bench train``).

Both are evaluated with the same episodes: the push-robustness curve of ``--config``'s task
(deterministic 20 s episodes, pushes every 2-4 s at 0.5-3.0 m/s, domain randomisation on,
``--eval-episodes`` per magnitude, fixed seeds), SB3 every ``--eval-every-s`` seconds of its
training, quadlit every ``--eval-every`` epochs; during the first ``--fine-eval-s`` seconds both
more often, SB3 every ``--fine-every-s`` s and quadlit after every epoch (~3.3 s of training on 2
cores), so that the times to the first robustness levels are read on comparable grids (a coarse
grid gives only an upper bound of such a time; docs/benchmarks.md shows how far off it was).
Prints both final curves, the time each needed to reach 95 % survival at each magnitude,
and writes the learning-curve and robustness PNGs with both. Stable-Baselines3 is a
benchmark-only extra: ``pip install 'quadlit[bench]'``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

T0 = time.perf_counter()

import numpy as np  # noqa: E402

from quadlit.bench import TrainingClock, check_result_paths, next_evaluation, require_config  # noqa: E402
from quadlit.outputs import json_result, write_text  # noqa: E402


class SB3Policy:
    """A Stable-Baselines3 model behind the ``act`` API of quadlit's policies (for evaluation)."""

    def __init__(self, model) -> None:
        self.model = model

    def initial_state(self, batch: int, device=None):
        import torch

        z = torch.zeros(batch, 1)
        return z, z.clone()

    def act(self, obs, state, episode_start, deterministic: bool = True, generator=None):
        import torch

        action, _ = self.model.predict(obs.cpu().numpy(), deterministic=deterministic)
        action = torch.as_tensor(np.asarray(action, np.float32))
        zeros = torch.zeros(obs.shape[0])
        return action, action.clone(), zeros, zeros, state


def _task_params(config: str, which: str):
    """The balance parameters of ``config`` ("config") or the defaults ("default")."""
    import yaml

    from quadlit.tasks.balance import BalanceParams

    if which == "default":
        return BalanceParams()
    data = yaml.safe_load(Path(config).read_text()).get("data", {})
    return BalanceParams(**(data.get("balance") or {}))


def run_sb3(args) -> dict:
    """One SB3 training run in this process; returns its record (as ``bench train`` does)."""
    try:
        from stable_baselines3 import PPO
        from stable_baselines3.common.callbacks import BaseCallback
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.vec_env import DummyVecEnv
    except ImportError:
        raise SystemExit("quadlit bench versus-sb3 needs Stable-Baselines3: pip install 'quadlit[bench]'")
    import dataclasses

    import quadlit.gym  # noqa: F401  (registers quadlit/Balance-v0)
    from quadlit.models.baselines import ZeroPolicy
    from quadlit.training.evaluation import push_curve
    from quadlit.training.normalizer import RunningNorm

    eval_params = _task_params(args.config, "config")
    train_params = _task_params(args.config, args.sb3_params)
    identity = RunningNorm(37, enabled=False)  # SB3 sees raw observations
    env = make_vec_env("quadlit/Balance-v0", n_envs=8, seed=args.seed, vec_env_cls=DummyVecEnv,
                       env_kwargs={"params": dataclasses.asdict(train_params)})
    model = PPO("MlpPolicy", env, n_steps=256, batch_size=256, n_epochs=10, learning_rate=3e-4, seed=args.seed,
                device="cpu", verbose=0)
    rows: list[dict] = []
    clock = TrainingClock(T0)

    def evaluate() -> dict:
        # the row is stamped with the training time at which the evaluation began
        seconds, curve = clock.measure(lambda: push_curve(SB3Policy(model), identity, "balance", eval_params,
                                                          args.eval_episodes, args.eval_seed, "cpu"))
        row = {"seconds": seconds, "env_steps": int(model.num_timesteps), "curve": curve}
        print(f"  sb3 {row['seconds']:7.1f} s  {row['env_steps'] / 1e6:6.3f} M steps  survival % at "
              f"{'/'.join(f'{k:g}' for k in curve)} m/s: " + "  ".join(f"{100 * v:4.0f}" for v in curve.values()),
              flush=True)
        return row

    class Budget(BaseCallback):
        due = args.fine_every_s if args.fine_eval_s > 0 else args.eval_every_s  # the next evaluation

        def _on_step(self) -> bool:
            if clock.seconds() >= self.due:
                rows.append(evaluate())
                self.due = next_evaluation(self.due, rows[-1]["seconds"], args.eval_every_s, args.fine_every_s,
                                           args.fine_eval_s)
            return clock.seconds() < args.minutes * 60

    print(f"bench versus-sb3: Stable-Baselines3 PPO, seed {args.seed}, budget {args.minutes:g} min", flush=True)
    model.learn(total_timesteps=10**9, callback=Budget())
    final = evaluate()
    rows.append(final)
    zero = push_curve(ZeroPolicy(12), identity, "balance", eval_params, args.eval_episodes, args.eval_seed, "cpu")
    env.close()
    return {"config": "sb3", "seed": args.seed, "train_seconds": final["seconds"], "env_steps": final["env_steps"],
            "evaluations": rows, "final_curve": final["curve"], "zero_curve": zero, "trace": []}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="quadlit bench versus-sb3", description=__doc__.split("\n")[0])
    p.add_argument("--config", default="configs/balance.yaml", help="quadlit's fit config (and the evaluation task)")
    p.add_argument("--minutes", type=float, default=3.0, help="training wall-clock budget of each run")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (each run in its own process)")
    p.add_argument("--cold", action="store_true", help="every run with a fresh, empty Numba cache")
    p.add_argument("--eval-every-s", type=float, default=20.0, help="SB3: evaluate every N s of training")
    p.add_argument("--eval-every", type=int, default=2, help="quadlit: evaluate every N epochs")
    p.add_argument("--fine-eval-s", type=float, default=60.0,
                   help="during the first N s of training evaluate more often: SB3 every --fine-every-s, quadlit "
                        "after every epoch (0: never)")
    p.add_argument("--fine-every-s", type=float, default=4.0, help="SB3: evaluate every N s during --fine-eval-s")
    p.add_argument("--eval-episodes", type=int, default=64, help="episodes per push magnitude")
    p.add_argument("--eval-seed", type=int, default=12345, help="seed of the evaluation episodes")
    p.add_argument("--sb3-params", choices=["default", "config"], default="default",
                   help="SB3 trains on the task's default parameters or on the config's")
    p.add_argument("--skip-quadlit", action="store_true", help="run only SB3")
    p.add_argument("--json", default=None, help="write every record here")
    p.add_argument("--out", default=None, help="folder for learning_curve.png and push_robustness.png")
    p.add_argument("--seed", type=int, default=None, help=argparse.SUPPRESS)  # an SB3 child process
    p.add_argument("--child-json", default=None, help=argparse.SUPPRESS)
    args, extra = p.parse_known_args(argv)
    if args.eval_every_s <= 0 or args.eval_every < 1 or args.fine_eval_s < 0 or args.fine_every_s <= 0:
        raise SystemExit("quadlit bench versus-sb3: --eval-every-s, --eval-every and --fine-every-s must be positive, "
                         "--fine-eval-s at least 0")
    require_config(args.config, "quadlit bench versus-sb3")
    check_result_paths("quadlit bench versus-sb3", args.json, args.out, json_result("sb3", "quadlit"))
    if args.seed is not None:  # child: one SB3 run
        record = run_sb3(args)
        Path(args.child_json).write_text(json.dumps(record))
        return 0

    from quadlit.bench.train import _from_json, summarize, time_to, write_plots

    sb3, ours = [], []
    with tempfile.TemporaryDirectory(prefix="quadlit-versus-") as tmp:
        for seed in args.seeds:
            env = dict(os.environ)
            if args.cold:
                env["NUMBA_CACHE_DIR"] = str(Path(tmp) / f"cache-sb3-{seed}")
            path = Path(tmp) / f"sb3-{seed}.json"
            cmd = [sys.executable, "-m", "quadlit.cli", "bench", "versus-sb3", "--seed", str(seed), "--child-json",
                   str(path), "--config", args.config, "--minutes", str(args.minutes), "--eval-every-s",
                   str(args.eval_every_s), "--fine-eval-s", str(args.fine_eval_s), "--fine-every-s",
                   str(args.fine_every_s), "--eval-episodes", str(args.eval_episodes), "--eval-seed",
                   str(args.eval_seed), "--sb3-params", args.sb3_params]
            if subprocess.run(cmd, env=env).returncode != 0:
                raise SystemExit(f"the SB3 run of seed {seed} failed")
            sb3.append(json.loads(path.read_text()))
            if args.skip_quadlit:
                continue
            path = Path(tmp) / f"quadlit-{seed}.json"
            if args.cold:
                env["NUMBA_CACHE_DIR"] = str(Path(tmp) / f"cache-quadlit-{seed}")
            cmd = [sys.executable, "-m", "quadlit.launch", "bench", "train", "--single", "--seeds", str(seed),
                   "--json", str(path), "--config", args.config, "--minutes", str(args.minutes), "--eval-every",
                   str(args.eval_every), "--fine-eval-s", str(args.fine_eval_s), "--eval-episodes",
                   str(args.eval_episodes), *extra]
            if subprocess.run(cmd, env=env).returncode != 0:
                raise SystemExit(f"the quadlit run of seed {seed} failed")
            ours.append(json.loads(path.read_text())["records"][0])
    sb3, ours = _from_json(sb3), _from_json(ours)
    if args.json:
        write_text(args.json, json.dumps({"sb3": sb3, "quadlit": ours}, indent=1, default=str))
    print("\nStable-Baselines3 PPO:")
    print(summarize(sb3))
    if not ours:
        return 0
    print("\nquadlit:")
    print(summarize(ours))
    mags = list(ours[0]["final_curve"])
    q = {m: float(np.mean([r["final_curve"][m] for r in ours])) for m in mags}
    s = {m: float(np.mean([r["final_curve"][m] for r in sb3])) for m in mags}
    print("\nmean final survival %   " + "  ".join(f"{m:>5g}" for m in mags))
    print("  quadlit               " + "  ".join(f"{100 * q[m]:5.0f}" for m in mags))
    print("  Stable-Baselines3     " + "  ".join(f"{100 * s[m]:5.0f}" for m in mags))
    ahead = all(q[m] > s[m] or q[m] == 1.0 for m in mags if q[m] + s[m] > 0)
    tq = [time_to(r["evaluations"], 1.0) for r in ours]
    ts = [time_to(r["evaluations"], 1.0) for r in sb3]
    print(f"quadlit ahead (or at 100 %) at every magnitude: {'yes' if ahead else 'no'}")
    print(f"time to 95 % at 1.0 m/s (s): quadlit {tq}, Stable-Baselines3 {ts}")
    if args.out:
        write_plots(ours, Path(args.out), others={"Stable-Baselines3 PPO": sb3})
    return 0


if __name__ == "__main__":
    sys.exit(main())
