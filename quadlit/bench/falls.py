"""Which pushes does a balance policy fail? The push-robustness curve's episodes, every fall looked at.

    quadlit bench falls --ckpt_path A.ckpt [B.ckpt ...] [--policies deployed trained sampled]
                        [--episodes 64] [--seed 12345] [--out falls.json]

For each checkpoint and each policy (``deployed``: the policy a run evaluates and exports, its
weight average when ``model.policy_average`` is set; ``trained``: the policy PPO trains and the
rollouts use; ``sampled``: that policy sampling its actions as in training), the curve's
deterministic episodes are run (``--episodes`` per push magnitude, reset with ``--seed``: the
evaluation of ``validate`` with the default seed). For every episode that ends in a fall, the
privileged observation of its last step says which push it fell after: the push's direction in
the robot's heading frame (forward, left, back, right: 90-degree sectors), the time since it,
and the episode's randomised physics. The policies run in float32, as exported and played (the
in-run evaluations of a ``bf16-mixed`` run run under bf16 autocast and can differ by a few
points). One table per checkpoint: survival per magnitude, the falls at >= 1.5 m/s by direction
and by time since the push, and the fallers' mean physics against the survivors'.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass

import numpy as np
import torch

from quadlit.errors import ConfigError
from quadlit.outputs import check_output_file, json_result, write_text

POLICIES = ("deployed", "trained", "sampled")
DIRECTIONS = ("forward", "left", "back", "right")
#: Falls at pushes of at least this size are tabulated (smaller pushes are survived by any policy
#: that learned anything).
LARGE_PUSH = 1.5
#: Time-since-push buckets (s) of the table.
SINCE_EDGES = (0.5, 1.5)
PHYSICS = ("friction", "added_mass", "motor_strength", "gain_scale")


def push_direction(push_heading: np.ndarray) -> np.ndarray:
    """Shape (N, 2) push velocity in the heading frame (x forward, y left) -> (N,) index into
    ``DIRECTIONS``: the 90-degree sector around each axis."""
    angle = np.degrees(np.arctan2(push_heading[:, 1], push_heading[:, 0]))  # 0 forward, 90 left
    return (np.floor((angle + 45.0) / 90.0).astype(np.int64)) % 4


@dataclass
class Falls:
    """One policy's curve episodes: per episode its push magnitude (m/s), whether it fell, and the
    privileged observation of its last step (``PRIVILEGED_SLICES``)."""

    magnitude: np.ndarray
    fell: np.ndarray
    last: np.ndarray

    def survival(self) -> dict[float, float]:
        return {float(m): float(1.0 - self.fell[self.magnitude == m].mean()) for m in np.unique(self.magnitude)}

    def summary(self) -> dict:
        from quadlit.tasks.balance.kernels import PRIVILEGED_SLICES as PS

        large = self.magnitude >= LARGE_PUSH
        falls = self.fell & large
        push = self.last[:, PS["push_vel_heading"][0]:PS["push_vel_heading"][1]]
        since = self.last[:, PS["time_since_push"][0]]
        direction = push_direction(push)
        edges = (0.0, *SINCE_EDGES, math.inf)
        out = {"survival": self.survival(), "falls": int(falls.sum()),
               "direction": {d: int((falls & (direction == k)).sum()) for k, d in enumerate(DIRECTIONS)},
               "since_push": {f"{lo:g}-{hi:g} s": int((falls & (since >= lo) & (since < hi)).sum())
                              for lo, hi in zip(edges[:-1], edges[1:])},
               "physics": {}}
        for name in PHYSICS:
            value = self.last[:, PS[name][0]]
            out["physics"][name] = {"fallen": float(value[falls].mean()) if falls.any() else None,
                                    "survived": float(value[large & ~self.fell].mean()) if (large & ~self.fell).any()
                                    else None}
        return out


@torch.no_grad()
def run_curve(policy, obs_norm, params, episodes: int, seed: int, deterministic: bool = True,
              magnitudes: tuple[float, ...] | None = None) -> Falls:
    """The curve's episodes of the balance task with ``policy`` (``evaluate_policy``: the first
    episode in every environment), with the privileged observation at each one's end.
    ``magnitudes``: the curve's episodes at these pushes only (m/s; default: the whole curve)."""
    from quadlit.tasks import make_evaluation_task
    from quadlit.tasks.balance.evaluation import PUSH_CURVE, push_evaluation
    from quadlit.training.rollout import evaluate_policy

    magnitudes = PUSH_CURVE if magnitudes is None else tuple(float(m) for m in magnitudes)
    evaluation = push_evaluation(params, magnitudes, episodes)
    task = make_evaluation_task("balance", evaluation, seed)
    last = np.zeros((task.num_envs, task.spec.privileged_dim), dtype=np.float32)

    def keep_last(newly: np.ndarray, result) -> None:
        last[newly] = result.final_privileged[newly]

    generator = None
    if not deterministic:
        generator = torch.Generator()
        generator.manual_seed(seed)
    try:
        metrics = evaluate_policy(policy, obs_norm, task, seed, torch.device("cpu"), deterministic, generator,
                                  keep_last)
    finally:
        task.close()
    fell = metrics["survived"] < 0.5  # the episode ended before its time limit
    return Falls(np.repeat(np.asarray(magnitudes, dtype=np.float64), episodes), fell, last)


def format_table(label: str, rows: dict[str, dict]) -> str:
    mags = list(next(iter(rows.values()))["survival"])
    since = list(next(iter(rows.values()))["since_push"])
    lines = [f"{label}",
             f"  {'policy':<9} survival % at {'/'.join(f'{m:g}' for m in mags)} m/s   falls >= {LARGE_PUSH:g} m/s: "
             f"n, last push {'/'.join(DIRECTIONS)}, time since it {' / '.join(since)}"]
    for name, s in rows.items():
        curve = "/".join(f"{100 * v:.0f}" for v in s["survival"].values())
        lines.append(f"  {name:<9} {curve:<31} {s['falls']:>3d}   {'/'.join(str(v) for v in s['direction'].values()):<12}"
                     f"  {' / '.join(str(v) for v in s['since_push'].values())}")
    for name, s in rows.items():
        parts = []
        for k, v in s["physics"].items():
            if v["fallen"] is not None and v["survived"] is not None:
                parts.append(f"{k} {v['fallen']:.2f} vs {v['survived']:.2f}")
        if parts:
            lines.append(f"  {name}: fallen vs survived (mean): " + ", ".join(parts))
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="quadlit bench falls", description=__doc__.split("\n")[0])
    p.add_argument("--ckpt_path", nargs="+", required=True, help="checkpoints of balance runs")
    p.add_argument("--policies", nargs="+", choices=POLICIES, default=list(POLICIES),
                   help="which policies of each checkpoint (default: all three)")
    p.add_argument("--episodes", type=int, default=64, help="episodes per push magnitude (default 64)")
    p.add_argument("--seed", type=int, default=12345, help="reset seed (default 12345, validate's)")
    p.add_argument("--out", help="write every summary as JSON to this file")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.episodes < 1:
        raise ConfigError("quadlit bench falls: --episodes must be >= 1")
    if args.out:
        check_output_file(args.out, "quadlit bench falls: --out", inputs=args.ckpt_path, rewritable=json_result("episodes", "seed", "runs"))
    from quadlit.training.checkpoint import load_run

    results = {}
    for path in args.ckpt_path:
        run = load_run(path)
        if run.task_name != "balance":
            raise ConfigError(f"quadlit bench falls: {path} trained task {run.task_name!r}; falls are the balance task's")
        module = run.module
        policies = {"deployed": (module.deployed_policy, module.deployed_norm, True),
                    "trained": (module.policy, module.obs_norm, True), "sampled": (module.policy, module.obs_norm, False)}
        rows = {}
        for name in args.policies:
            policy, norm, deterministic = policies[name]
            rows[name] = run_curve(policy, norm, run.task_params, args.episodes, args.seed, deterministic).summary()
        print(format_table(f"{path} ({int(module.env_steps) / 1e6:.2f} M env-steps, {args.episodes} episodes per "
                           f"magnitude, seed {args.seed})", rows), flush=True)
        results[str(path)] = {"env_steps": int(module.env_steps), "policies": rows}
    if args.out:
        write_text(args.out, json.dumps({"episodes": args.episodes, "seed": args.seed, "runs": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
