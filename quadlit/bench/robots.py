"""Every quadruped under a folder, imported and checked against MuJoCo on its own file; optionally
trained and run in MuJoCo.

    quadlit bench robots --dir DIR [--states 1000] [--train] [--minutes 3] [--seeds 0 1 2]
                         [--episodes 64] [--json PATH] [--root DIR] [robot options]

The folder is laid out as the MuJoCo Menagerie is (``unitree_a1/a1.xml``, ``unitree_go1/go1.xml``,
...): every ``.xml`` and ``.urdf`` under it is tried, ``scene*.xml`` files (a robot included into
a scene) are skipped, and a file that is not a 12-joint quadruped is listed with the importer's
one-line reason. Per robot (``quadlit.physics.agreement``):

* the agreement of the rigid-body dynamics at ``--states`` random states: mass matrix and bias
  forces (largest difference relative to MuJoCo's largest entry) and foot positions (m);
* the height it settles at holding its standing pose, in quadlit and in MuJoCo;
* the trunk height 1 s after a limp drop from 0.4 m, in both;
* a 5 cm drop holding the pose: the lowest trunk height and the rebound, in both.

With ``--train``, each robot is trained with ``quadlit bench train`` (``configs/balance.yaml``
plus ``--data.balance.robot``, ``--minutes`` per seed, each seed in its own process with a cold
Numba cache), and each seed's final policy runs the push-robustness episodes in both engines
(``quadlit sim2sim``: MuJoCo on the robot's own file, ``--episodes`` per magnitude): the table
gives quadlit's curve, MuJoCo's and the gap, mean over the seeds. Robot options
(``--data.balance.robot_kp`` and the like) apply to every robot.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from quadlit.bench import seed_int
from quadlit.errors import ConfigError
from quadlit.outputs import check_output_file, json_result, write_text

PUSHES = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)


def robot_files(folder: Path) -> list[Path]:
    """The robot descriptions under ``folder`` (``scene*.xml`` skipped), sorted."""
    files = [p for p in folder.rglob("*") if p.suffix.lower() in (".xml", ".urdf") and p.is_file()
             and not p.name.lower().startswith("scene")]
    return sorted(files)


def check_robot(path: Path, states: int, options: dict) -> dict:
    """Import one file and measure its agreement with MuJoCo; ``{"error": ...}`` if it is not a
    quadruped quadlit can import."""
    from quadlit.physics import agreement
    from quadlit.physics.importer import import_robot

    start = time.perf_counter()
    try:
        robot = import_robot(path, **options)
    except ConfigError as exc:
        return {"file": str(path), "error": str(exc)}
    out = {"file": str(path), "name": robot.name, "mass": float(robot.model.total_mass),
           "import_seconds": time.perf_counter() - start, "notes": list(robot.notes),
           "dynamics": agreement.dynamics_agreement(robot, states=states), "standing": agreement.standing(robot),
           "limp_drop": agreement.limp_drop(robot), "drop": agreement.drop_bounce(robot)}
    return out


def agreement_table(rows: list[dict]) -> str:
    """The printed agreement table, one block per robot."""
    lines = []
    for r in rows:
        if "error" in r:
            lines.append(f"{Path(r['file']).name}: not imported: {r['error']}")
            continue
        d, s, limp, drop = r["dynamics"], r["standing"], r["limp_drop"], r["drop"]
        lines += [
            f"{r['name']} ({r['file']}), {r['mass']:.2f} kg, imported in {r['import_seconds']:.1f} s",
            f"  dynamics vs MuJoCo: mass matrix {d['mass_matrix']:.1e}, bias forces {d['bias']:.1e} (relative), "
            f"feet {d['feet']:.1e} m",
            "                      quadlit   MuJoCo   difference",
            f"  standing height     {s['quadlit_height']:.4f}   {s['mujoco_height']:.4f}   "
            f"{1000 * (s['quadlit_height'] - s['mujoco_height']):+.1f} mm",
            f"  foot centre height  {s['quadlit_foot_z']:.4f}   {s['mujoco_foot_z']:.4f}   "
            f"{1000 * (s['quadlit_foot_z'] - s['mujoco_foot_z']):+.1f} mm",
            f"  limp drop, at rest  {limp['quadlit_height']:.4f}   {limp['mujoco_height']:.4f}   "
            f"{1000 * (limp['quadlit_height'] - limp['mujoco_height']):+.1f} mm",
            f"  5 cm drop, lowest   {drop['quadlit_lowest']:.4f}   {drop['mujoco_lowest']:.4f}   "
            f"{1000 * (drop['quadlit_lowest'] - drop['mujoco_lowest']):+.1f} mm",
            f"  5 cm drop, rebound  {drop['quadlit_rebound']:.4f}   {drop['mujoco_rebound']:.4f}   "
            f"{1000 * (drop['quadlit_rebound'] - drop['mujoco_rebound']):+.1f} mm",
        ]
    return "\n".join(lines)


def train_and_compare(path: Path, args, extra: list[str], root: Path) -> dict:
    """``bench train`` on the robot (one process per seed, cold caches), then each seed's final
    policy in both engines; returns the per-seed curves."""
    from quadlit.sim2sim import compare, load_policy

    root.mkdir(parents=True, exist_ok=True)
    record = root / "train.json"
    cmd = [sys.executable, "-m", "quadlit.launch", "bench", "train", "--config", args.config, "--minutes",
           str(args.minutes), "--seeds", *map(str, args.seeds), "--cold", "--eval-every", "2", "--eval-episodes",
           str(args.episodes), "--root", str(root), "--json", str(record), "--data.balance.robot", str(path), *extra]
    print("running: " + " ".join(cmd), flush=True)
    if subprocess.run(cmd).returncode != 0:
        raise SystemExit(f"quadlit bench robots: training on {path} failed")
    trained = json.loads(record.read_text())["records"]
    out = {"seeds": {}}
    for seed, rec in zip(args.seeds, trained):
        ckpts = sorted((root / f"seed{seed}").rglob("last.ckpt"))  # --cold: every seed in its own folder
        if not ckpts:
            raise SystemExit(f"quadlit bench robots: no checkpoint of seed {seed} under {root}")
        source = load_policy(argparse.Namespace(ckpt_path=str(ckpts[-1]), onnx=None, policy=None))
        result = compare(source, args.episodes, 12345, args.threads)
        out["seeds"][str(seed)] = {"train_final_curve": rec.get("final_curve"), "env_steps": rec.get("env_steps"),
                                   "quadlit": result.curve("quadlit"), "mujoco": result.curve("mujoco"),
                                   "agreement": result.agreement()}
        print(f"  seed {seed}: quadlit {_row(result.curve('quadlit'))} | MuJoCo {_row(result.curve('mujoco'))}",
              flush=True)
    return out


def _row(curve: dict) -> str:
    return " ".join(f"{100 * float(curve[m] if m in curve else curve[str(m)]):3.0f}" for m in PUSHES)


def training_table(name: str, result: dict) -> str:
    """Mean over the seeds of both engines' curves and the gap."""
    seeds = result["seeds"]
    mean = {engine: {m: float(np.mean([s[engine][m] if m in s[engine] else s[engine][str(m)] for s in seeds.values()]))
                     for m in PUSHES} for engine in ("quadlit", "mujoco")}
    cols = "".join(f"{m:>7.1f}" for m in PUSHES)
    return "\n".join([
        f"{name}: {len(seeds)} seeds, push-robustness of the final policy (mean)",
        f"  push m/s    {cols}",
        "  quadlit     " + "".join(f"{100 * mean['quadlit'][m]:>6.0f}%" for m in PUSHES),
        "  MuJoCo      " + "".join(f"{100 * mean['mujoco'][m]:>6.0f}%" for m in PUSHES),
        "  gap (pts)   " + "".join(f"{100 * (mean['mujoco'][m] - mean['quadlit'][m]):>+7.0f}" for m in PUSHES),
    ])


def _robot_options(extra: list[str]) -> tuple[dict, list[str]]:
    """``--data.balance.robot_kp/kd/pose`` among the extra options -> import keyword arguments
    (they also go on to ``bench train``)."""
    import yaml

    options = {}
    names = {"--data.balance.robot_kp": "kp", "--data.balance.robot_kd": "kd", "--data.balance.robot_pose": "pose"}
    for k, arg in enumerate(extra):
        key, eq, value = arg.partition("=")
        if key in names:
            value = value if eq else (extra[k + 1] if k + 1 < len(extra) else None)
            options[names[key]] = yaml.safe_load(value) if value is not None else None
    return options, extra


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="quadlit bench robots", description=__doc__.split("\n")[0])
    p.add_argument("--dir", required=True, help="a folder laid out as the MuJoCo Menagerie is")
    p.add_argument("--states", type=int, default=1000, help="random states of the dynamics comparison")
    p.add_argument("--train", action="store_true", help="also train each robot and run it in MuJoCo")
    p.add_argument("--config", default="configs/balance.yaml", help="the fit config of --train")
    p.add_argument("--minutes", type=float, default=3.0, help="training wall-clock per seed (--train)")
    p.add_argument("--seeds", type=seed_int, nargs="+", default=[0, 1, 2], help="seeds of --train")
    p.add_argument("--episodes", type=int, default=64, help="push-robustness episodes per magnitude (--train)")
    p.add_argument("--threads", type=int, default=2, help="threads of each engine in the sim2sim comparison")
    p.add_argument("--json", default=None, help="write every reading here")
    p.add_argument("--root", default=None, help="keep the training runs here (default: a temporary folder)")
    args, extra = p.parse_known_args(argv)
    folder = Path(args.dir)
    if not folder.is_dir():
        raise ConfigError(f"bench robots: --dir {folder}: no such folder")
    if args.states < 1 or args.minutes <= 0 or args.episodes < 1 or args.threads < 1:
        raise ConfigError("bench robots: --states, --minutes, --episodes and --threads must be positive")
    if args.json:  # checked before the work: an earlier result of this command may be replaced, nothing else
        check_output_file(args.json, "bench robots: --json", rewritable=json_result("robots"))
    files = robot_files(folder)
    if not files:
        raise ConfigError(f"bench robots: no .xml or .urdf files under {folder}")
    options, extra = _robot_options(extra)
    rows = []
    for path in files:
        print(f"importing {path} ...", flush=True)
        rows.append(check_robot(path, args.states, options))
    print()
    print(agreement_table(rows))
    if args.train:
        with tempfile.TemporaryDirectory(prefix="quadlit-bench-robots-") as tmp:
            root = Path(args.root) if args.root else Path(tmp)
            for row in rows:
                if "error" in row:
                    continue
                row["training"] = train_and_compare(Path(row["file"]), args, extra, root / row["name"])
                print()
                print(training_table(row["name"], row["training"]))
    if args.json:
        write_text(args.json, json.dumps({"robots": rows}, indent=1, default=float))
    return 0
