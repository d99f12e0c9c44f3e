"""Which difference between quadlit and MuJoCo costs a trained balance policy in MuJoCo? The
policy's push curve in both engines (``quadlit sim2sim``'s comparison) with one thing changed at
a time.

    quadlit bench gap --ckpt_path CKPT [--episodes 32] [--seed 12345]
                      [--changes none mj-dt=0.001 mj-rigid-foot+mj-dt=0.001 friction=0.5 ...] [--out gap.json]

A change is a name, or names joined by ``+`` applied together. ``mj-*`` changes edit MuJoCo's
model of the original file (``sim2sim`` never does: these are diagnoses, not ways to pass);
``ql-*`` changes edit what quadlit simulates at evaluation (the policy is not retrained); the
others change the episodes of both engines. Each variant prints both curves and, for each MuJoCo
fall, the first of the failure rules that holds at the end of the step it failed in: diverged,
tilt past the limit, trunk below the failure height, else a body touch (a touch is checked at
every substep). See ``CHANGES`` for the list.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import sys
from typing import Any, Callable

import numpy as np

from quadlit.errors import ConfigError
from quadlit.outputs import check_output_file, json_result, write_text

#: name -> (takes a value, what it changes).
CHANGES: dict[str, tuple[bool, str]] = {
    "none": (False, "nothing: the comparison sim2sim makes"),
    "mj-dt": (True, "MuJoCo's time step, s (the policy still acts every control period)"),
    "mj-rigid-foot": (False, "MuJoCo's foot contact nearly rigid: solimp (0.9, 0.95, 0.001), no margin"),
    "mj-no-frictionloss": (False, "MuJoCo's joints without friction loss"),
    "mj-no-limits": (False, "MuJoCo's joint limits off"),
    "mj-condim3": (False, "MuJoCo's feet with sliding friction only (no torsional or rolling friction)"),
    "mj-no-self-collision": (False, "MuJoCo's robot geoms collide with the ground only"),
    "mj-feet-only": (False, "only MuJoCo's feet collide (with the ground)"),
    "mj-impratio": (True, "MuJoCo's impratio (friction-to-normal impedance ratio)"),
    "mj-pyramidal": (False, "MuJoCo's friction cone pyramidal"),
    "mj-friction": (True, "MuJoCo's ground friction times this factor (quadlit's unchanged)"),
    "ql-dt": (True, "quadlit's physics step, s (substeps so that the control period stays; MuJoCo's export of "
                    "the built-in A1 follows it, an imported robot's file keeps its own)"),
    "ql-foot-spring": (True, "quadlit's foot-ground spring, N/m"),
    "ql-foot-damper": (True, "quadlit's foot-ground damper, N·s/m"),
    "friction": (True, "both engines' ground friction range times this factor"),
    "zero-action": (False, "the policy replaced by zero actions (the robot holds its standing pose)"),
}


def parse_change(text: str) -> list[tuple[str, float | None]]:
    """``"mj-dt=0.001+mj-rigid-foot"`` -> ``[("mj-dt", 0.001), ("mj-rigid-foot", None)]``; a
    ConfigError in one line for an unknown name or a missing or extra value."""
    out = []
    for atom in text.split("+"):
        name, _, value = atom.partition("=")
        if name not in CHANGES:
            raise ConfigError(f"quadlit bench gap: unknown change {name!r} (known: {', '.join(CHANGES)})")
        takes = CHANGES[name][0]
        if takes != bool(value):
            raise ConfigError(f"quadlit bench gap: change {name!r} " + ("needs a value, e.g. {name}=0.5" if takes
                                                                         else "takes no value").format(name=name))
        try:
            number = float(value) if takes else None
        except ValueError:
            raise ConfigError(f"quadlit bench gap: change {name!r}: {value!r} is not a number") from None
        if number is not None and not (np.isfinite(number) and number > 0):
            raise ConfigError(f"quadlit bench gap: change {name!r} must be positive; got {value}")
        out.append((name, number))
    return out


def mujoco_engine(changes: dict[str, float | None], reasons: collections.Counter) -> type:
    """A ``MujocoBalance`` with the ``mj-*`` changes applied to its models, counting in
    ``reasons`` the rule that ended each fall."""
    from quadlit.sim2sim import MujocoBalance

    class Changed(MujocoBalance):
        def _base_model(self, friction: str):
            m, lay = super()._base_model(friction)
            mj = self.mujoco
            feet = [int(g) for g in lay.feet]
            if "mj-dt" in changes:
                m.opt.timestep = changes["mj-dt"]
            if "mj-rigid-foot" in changes:
                for g in feet:
                    m.geom_solimp[g] = [0.9, 0.95, 0.001, 0.5, 2.0]
                    m.geom_margin[g] = 0.0
            if "mj-no-frictionloss" in changes:
                m.dof_frictionloss[:] = 0.0
            if "mj-no-limits" in changes:
                m.opt.disableflags |= int(mj.mjtDisableBit.mjDSBL_LIMIT)
            if "mj-condim3" in changes:
                m.geom_condim[feet] = 3
            if "mj-no-self-collision" in changes or "mj-feet-only" in changes:
                for g in range(m.ngeom):
                    colliding = bool(m.geom_contype[g] or m.geom_conaffinity[g])
                    if m.geom_bodyid[g] == 0:
                        m.geom_contype[g], m.geom_conaffinity[g] = (1, 1) if colliding else (0, 0)
                    elif colliding:
                        keep = "mj-feet-only" not in changes or g in feet
                        m.geom_contype[g], m.geom_conaffinity[g] = (1 if keep else 0), 0
            if "mj-impratio" in changes:
                m.opt.impratio = changes["mj-impratio"]
            if "mj-pyramidal" in changes:
                m.opt.cone = mj.mjtCone.mjCONE_PYRAMIDAL
            return m, lay

        def _randomised(self, base, envp, i: int):
            m = super()._randomised(base, envp, i)
            if "mj-friction" in changes:
                m.geom_friction[:, 0] *= changes["mj-friction"]
            return m

        def step(self, actions, running):
            obs, failed, diverged = super().step(actions, running)
            for row in np.flatnonzero(failed[self.last_stepped]):  # the first rule that holds, in their order
                reasons[next(rule for rule, holds in self.last_rules.items() if holds[row])] += 1
            return obs, failed, diverged

    return Changed


def run_variant(source: Any, text: str, episodes: int, seed: int, threads: int, max_steps: int | None = None) -> dict:
    """Both curves of ``source`` with the change ``text`` (episodes cut at ``max_steps``)."""
    from quadlit.models.baselines import ZeroPolicy
    from quadlit.sim2sim import _identity, compare
    from quadlit.tasks.balance.robots import register_robot, registered_robot, robot_for

    changes = dict(parse_change(text))
    params = source.params
    if "ql-dt" in changes:
        substeps = int(round(params.physics_dt * params.substeps / changes["ql-dt"]))
        if substeps < 1 or abs(substeps * changes["ql-dt"] - params.physics_dt * params.substeps) > 1e-9:
            raise ConfigError(f"quadlit bench gap: ql-dt={changes['ql-dt']} does not divide the control period")
        params = dataclasses.replace(params, physics_dt=changes["ql-dt"], substeps=substeps)
    if "friction" in changes:
        f = changes["friction"]
        params = dataclasses.replace(params, friction_min=params.friction_min * f, friction_max=params.friction_max * f)
    policy, norm = (ZeroPolicy(12), _identity) if "zero-action" in changes else (source.policy, source.obs_norm)
    changed = dataclasses.replace(source, policy=policy, obs_norm=norm, params=params)
    robot = robot_for(params)
    before = registered_robot(params)
    contact = {k: changes[n] for n, k in (("ql-foot-spring", "contact_stiffness"), ("ql-foot-damper", "contact_damping"))
               if n in changes}
    if contact:  # quadlit's side reads the registered record; MuJoCo's side never reads the contact
        register_robot(params, dataclasses.replace(robot, **contact))
    reasons: collections.Counter = collections.Counter()
    try:
        result = compare(changed, episodes, seed, threads, max_steps, engine=mujoco_engine(changes, reasons))
    finally:
        if contact:
            register_robot(params, before if before is not None else robot)
    return {"change": text, "quadlit": result.curve("quadlit"), "mujoco": result.curve("mujoco"),
            "mujoco_falls": dict(reasons)}


def _row(curve: dict) -> str:
    return " ".join(f"{100 * curve[m]:4.0f}" for m in sorted(curve))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="quadlit bench gap", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="changes:\n" + "\n".join(f"  {k}{'=X' if v[0] else ''}: {v[1]}"
                                                                for k, v in CHANGES.items()))
    p.add_argument("--ckpt_path", required=True, help="a balance checkpoint (an imported robot's or the built-in A1's)")
    p.add_argument("--changes", nargs="+", default=["none"], help="variants, each a change or changes joined by +")
    p.add_argument("--episodes", type=int, default=32, help="episodes per push magnitude")
    p.add_argument("--seed", type=int, default=12345, help="the episodes' seed (sim2sim's default)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max_steps", type=int, help="cut the episodes short (default: the task's)")
    p.add_argument("--out", help="JSON file of the results")
    args = p.parse_args(argv)
    if args.episodes < 1 or args.threads < 1 or (args.max_steps is not None and args.max_steps < 1):
        raise ConfigError("quadlit bench gap: --episodes, --threads and --max_steps must be >= 1")
    for text in args.changes:
        parse_change(text)  # every variant checked before the first runs
    if args.out:
        check_output_file(args.out, "quadlit bench gap: --out", inputs=[args.ckpt_path],
                          rewritable=json_result("ckpt_path", "episodes", "variants"))
    from quadlit.sim2sim import PUSH_CURVE, load_policy

    source = load_policy(argparse.Namespace(ckpt_path=args.ckpt_path, onnx=None, policy=None))
    print(f"{args.ckpt_path}: {args.episodes} episodes per push magnitude, seed {args.seed}")
    print(f"{'change':32s} {'quadlit':>7s} " + " ".join(f"{m:4.1f}" for m in PUSH_CURVE) + "  | MuJoCo "
          + " ".join(f"{m:4.1f}" for m in PUSH_CURVE) + "  | MuJoCo falls by rule", flush=True)
    variants = []
    for text in args.changes:
        row = run_variant(source, text, args.episodes, args.seed, args.threads, args.max_steps)
        variants.append(row)
        falls = ", ".join(f"{k} {v}" for k, v in sorted(row["mujoco_falls"].items())) or "-"
        print(f"{text:32s} {'':7s} {_row(row['quadlit'])}  |        {_row(row['mujoco'])}  | {falls}", flush=True)
    if args.out:
        write_text(args.out, json.dumps({"ckpt_path": args.ckpt_path, "episodes": args.episodes, "seed": args.seed,
                                         "variants": variants}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
