"""Export the robot record as MuJoCo XML (MJCF): the same bodies, inertias and joints.

    quadlit export-mjcf [--out FILE]      # the CLI calls main(argv)

The model has a free joint on the trunk, one hinge per joint (range, damping, armature), a
sphere per foot and a ground plane; by default only the feet collide (the trunk box and leg
capsules are visual); ``--body-contacts`` makes the trunk, knees and shanks collide with the
ground too, as they do in quadlit's own engine (``contacts.body_ground_contacts``). Actuators are
``position`` servos with the record's Kp/Kd and torque limits (quadlit's ``pd`` motor mode,
control = target angle) or plain ``motor``s (``torque`` mode, control = torque in N·m).
"""

from __future__ import annotations

import argparse
import sys
from xml.sax.saxutils import quoteattr

import numpy as np

from quadlit.physics.model import BODY_NAMES, JOINT_NAMES, LEG_NAMES, RobotModel, SimParams, a1_model, shank_ends


#: Slices of ``MjData.sensordata`` when ``to_mjcf(..., sensors=True)``: world-frame positions (m)
#: of the trunk origin, the knee joints (calf body origins) and the foot sphere centres, and the
#: trunk orientation (unit quaternion wxyz, trunk -> world).
SENSOR_LAYOUT = {
    "trunk_pos": slice(0, 3),
    "trunk_quat": slice(3, 7),
    "knee_pos": slice(7, 19),  # (4, 3) FL FR RL RR
    "foot_pos": slice(19, 31),  # (4, 3) FL FR RL RR
}


def _fmt(*values) -> str:
    return " ".join(repr(float(v)) for v in np.concatenate([np.ravel(v) for v in values]))


#: Names of the ``<custom><numeric>`` entries ``to_mjcf`` writes for what MuJoCo cannot say
#: (``importer.import_robot`` reads them back, so an exported robot imports as the same record).
CUSTOM_VEL_LIMIT = "quadlit_joint_vel_limit"
CUSTOM_CONTACT = "quadlit_foot_contact"
CUSTOM_NOMINAL_HEIGHT = "quadlit_nominal_height"


def to_mjcf(model: RobotModel, sim: SimParams = SimParams(), *, contacts: bool | None = None,
            joint_limits: bool | None = None, actuators: str = "position", friction: float = 1.0,
            name: str = "quadlit_a1", sensors: bool = False, stiff_friction: bool = False,
            body_contacts: bool = False) -> str:
    """MJCF text of ``model``.

    Joints carry their range (none where unlimited), damping, armature and friction loss; what
    MuJoCo has no attribute for (the motors' velocity limits, quadlit's foot spring and damper
    from ``sim``, the height the robot settles at) goes into ``<custom>`` numerics that
    ``quadlit.physics.importer`` reads back.

    Args:
        sim: timestep (``sim.dt``) and gravity are taken from it; ``contacts`` and
            ``joint_limits`` default to ``sim.contacts`` / ``sim.joint_limits``.
        actuators: "position" (PD servos), "motor" (torque), or "none".
        friction: foot-ground sliding friction coefficient.
        sensors: add the position sensors ``quadlit sim2sim`` reads after every physics step
            (``SENSOR_LAYOUT``: trunk origin and orientation, knee joints, foot centres, world
            frame); they change nothing in the dynamics.
        stiff_friction: an elliptic friction cone with ``impratio`` 100, so a loaded foot sticks
            until Coulomb's limit, as quadlit's stick-spring friction does (MuJoCo's default,
            a pyramidal cone with impratio 1, is a soft constraint that lets a foot creep).
        body_contacts: the trunk box, a sphere of ``knee_radius`` at each knee and each shank
            (calf capsule) collide with the ground too, with the feet's contact and friction
            parameters (never with each other): a fallen robot lies on the floor instead of
            sinking through it, as in quadlit's engine. Off by default (the balance task fails
            an episode at the first trunk or knee touch in both engines, so its curves do not
            depend on it).
    Returns: the XML document as a string.
    """
    if actuators not in ("position", "motor", "none"):
        raise ValueError(f"actuators must be 'position', 'motor' or 'none', got {actuators!r}")
    contacts = bool(sim.contacts) if contacts is None else bool(contacts)
    joint_limits = bool(sim.joint_limits) if joint_limits is None else bool(joint_limits)
    lines: list[str] = []
    add = lines.append
    add(f"<mujoco model={quoteattr(name)}>")
    add('  <compiler angle="radian" autolimits="true"/>')
    flags = [] if contacts else ['contact="disable"']
    if not joint_limits:
        flags.append('limit="disable"')
    cone = ' cone="elliptic" impratio="100"' if stiff_friction else ""
    add(f'  <option timestep="{float(sim.dt)!r}" gravity="0 0 {-float(sim.gravity)!r}" integrator="Euler"{cone}>')
    if flags:
        add(f"    <flag {' '.join(flags)}/>")
    add("  </option>")
    add("  <default>")
    add('    <geom contype="0" conaffinity="0" group="1" rgba="0.6 0.6 0.65 1"/>')
    add("  </default>")
    add("  <worldbody>")
    # the feet collide as contype 1, the rest of the body (body_contacts) as contype 2 with
    # conaffinity 0: with the floor only (a pair collides when one's contype meets the other's conaffinity)
    floor_affinity = 3 if body_contacts else 1
    body = (f' contype="2" conaffinity="0" group="0" friction="{float(friction)!r} 0.005 0.0001"'
            if body_contacts else "")
    add(f'    <geom name="floor" type="plane" size="0 0 0.05" contype="1" conaffinity="{floor_affinity}" group="0" '
        f'friction="{float(friction)!r} 0.005 0.0001" rgba="0.3 0.35 0.4 1"/>')
    add('    <light pos="0 0 3" dir="0 0 -1" directional="true"/>')

    def inertial(b: int, indent: str) -> None:
        i = model.body_inertia[b]
        add(f'{indent}<inertial pos="{_fmt(model.body_com[b])}" mass="{_fmt(model.body_mass[b])}" '
            f'fullinertia="{_fmt(i[0, 0], i[1, 1], i[2, 2], i[0, 1], i[0, 2], i[1, 2])}"/>')

    add(f'    <body name="trunk" pos="0 0 {float(model.standing_height)!r}">')
    add('      <freejoint name="root"/>')
    inertial(0, "      ")
    center = np.asarray(model.trunk_box_center)
    at = f' pos="{_fmt(center)}"' if np.any(center != 0) else ""
    add(f'      <geom name="trunk" type="box" size="{_fmt(model.trunk_half_extents)}"{at}{body}/>')
    for leg in range(4):
        indent = "      "
        for k in range(3):
            j = 3 * leg + k
            b = j + 1
            add(f'{indent}<body name="{BODY_NAMES[b]}" pos="{_fmt(model.joint_pos[j])}">')
            indent += "  "
            inertial(b, indent)
            limited = joint_limits and np.isfinite(model.joint_lower[j]) and np.isfinite(model.joint_upper[j])
            rng = f' range="{_fmt(model.joint_lower[j], model.joint_upper[j])}"' if limited else ""
            fric = (f' frictionloss="{_fmt(model.joint_frictionloss[j])}"' if model.joint_frictionloss[j] > 0 else "")
            add(f'{indent}<joint name="{JOINT_NAMES[j]}" type="hinge" axis="{_fmt(model.joint_axis[j])}"{rng} '
                f'damping="{_fmt(model.joint_damping[j])}" armature="{_fmt(model.joint_armature[j])}"{fric}/>')
            if k < 2 and leg >= 0:
                nxt = model.joint_pos[j + 1]
                add(f'{indent}<geom type="capsule" size="0.015" fromto="0 0 0 {_fmt(nxt)}"/>')
        foot = model.foot_pos[leg]
        shank = float(model.shank_radius)
        add(f'{indent}<geom type="capsule" size="{shank!r}" fromto="0 0 0 {_fmt(foot)}"/>')
        if body_contacts:
            # the shank stops a foot radius short of the foot's centre: a standing foot keeps its one contact
            add(f'{indent}<geom name="{LEG_NAMES[leg]}_knee" type="sphere" size="{float(model.knee_radius)!r}"{body}/>')
            add(f'{indent}<geom name="{LEG_NAMES[leg]}_shank" type="capsule" size="{shank!r}" '
                f'fromto="0 0 0 {_fmt(shank_ends(model)[leg])}"{body}/>')
        add(f'{indent}<geom name="{LEG_NAMES[leg]}_foot" type="sphere" size="{float(model.foot_radius)!r}" '
            f'pos="{_fmt(foot)}" contype="1" conaffinity="1" group="0" friction="{float(friction)!r} 0.005 0.0001"/>')
        for _ in range(3):
            indent = indent[:-2]
            add(f"{indent}</body>")
    add("    </body>")
    add("  </worldbody>")
    if actuators != "none":
        add("  <actuator>")
        for j, jn in enumerate(JOINT_NAMES):
            lim = float(model.joint_torque_limit[j])
            if actuators == "position":
                add(f'    <position name="{jn}" joint="{jn}" kp="{_fmt(model.kp[j])}" kv="{_fmt(model.kd[j])}" '
                    f'forcerange="{-lim!r} {lim!r}"/>')
            else:
                add(f'    <motor name="{jn}" joint="{jn}" ctrlrange="{-lim!r} {lim!r}"/>')
        add("  </actuator>")
    if sensors:
        add("  <sensor>")
        add('    <framepos name="trunk_pos" objtype="xbody" objname="trunk"/>')
        add('    <framequat name="trunk_quat" objtype="xbody" objname="trunk"/>')
        for leg in LEG_NAMES:
            add(f'    <framepos name="{leg}_knee_pos" objtype="xbody" objname="{leg}_calf"/>')
        for leg in LEG_NAMES:
            add(f'    <framepos name="{leg}_foot_pos" objtype="geom" objname="{leg}_foot"/>')
        add("  </sensor>")
    add("  <custom>")
    vel = np.asarray(model.joint_vel_limit)
    if np.all(np.isfinite(vel)):
        add(f'    <numeric name="{CUSTOM_VEL_LIMIT}" size="12" data="{_fmt(vel)}"/>')
    add(f'    <numeric name="{CUSTOM_CONTACT}" size="2" data="{_fmt(sim.contact_stiffness, sim.contact_damping)}"/>')
    add(f'    <numeric name="{CUSTOM_NOMINAL_HEIGHT}" size="1" data="{_fmt(model.nominal_height)}"/>')
    add("  </custom>")
    qpos = _fmt(0.0, 0.0, model.standing_height, 1.0, 0.0, 0.0, 0.0, model.default_q)
    ctrl = f' ctrl="{_fmt(model.default_q)}"' if actuators == "position" else ""
    add("  <keyframe>")
    add(f'    <key name="home" qpos="{qpos}"{ctrl}/>')
    add("  </keyframe>")
    add("</mujoco>")
    return "\n".join(lines) + "\n"


def write_mjcf(path: str, model: RobotModel | None = None, sim: SimParams = SimParams(), **kwargs) -> str:
    """Write ``to_mjcf(model or a1_model(), sim, **kwargs)`` to ``path``; returns the path."""
    text = to_mjcf(model if model is not None else a1_model(), sim, **kwargs)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def main(argv: list[str] | None = None) -> int:
    """``quadlit export-mjcf [--robot PATH] [--out FILE] [--actuators position|motor|none]``."""
    parser = argparse.ArgumentParser(prog="quadlit export-mjcf",
                                     description="Write the quadruped model as MuJoCo XML (MJCF).")
    parser.add_argument("--out", default=None, help="output file (default: standard output)")
    parser.add_argument("--robot", default=None,
                        help="an MJCF/URDF quadruped to import first (default: the built-in A1); the export "
                             "imported again gives the same record (docs/robots.md)")
    parser.add_argument("--actuators", choices=("position", "motor", "none"), default="position",
                        help="position servos (pd mode), torque motors, or none")
    parser.add_argument("--stiff-friction", action="store_true",
                        help="elliptic friction cone, impratio 100: feet stick as in quadlit (see docs/sim2sim.md)")
    parser.add_argument("--body-contacts", action="store_true",
                        help="the trunk, knees and shanks collide with the ground too (a fallen robot lies on it; "
                             "always with --robot: an imported robot's shapes came from its collision geometry)")
    args = parser.parse_args(argv)
    if args.out is not None:  # before the work: never over the robot's own file or one export-mjcf did not write
        from quadlit.outputs import check_output_file

        check_output_file(args.out, "export-mjcf: --out", inputs=[args.robot] if args.robot else [],
                          rewritable=_written_by_export_mjcf)
        from pathlib import Path

        from quadlit.errors import ConfigError

        if not Path(args.out).absolute().parent.is_dir():
            raise ConfigError(f"export-mjcf: --out: cannot write {args.out}: its folder does not exist")
    if args.robot is None:
        model, sim, name = a1_model(), SimParams(), "quadlit_a1"
    else:
        from quadlit.physics.importer import import_robot

        robot = import_robot(args.robot)
        model, sim, name = robot.model, robot.sim_params(), f"quadlit_{robot.name}"
    text = to_mjcf(model, sim, actuators=args.actuators, stiff_friction=args.stiff_friction,
                   body_contacts=args.body_contacts or args.robot is not None, name=name)
    if args.out is None:
        sys.stdout.write(text)
    else:
        from quadlit.outputs import write_text

        write_text(args.out, text)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _written_by_export_mjcf(path) -> bool:
    """Whether ``path`` is an earlier ``export-mjcf`` output (it may be replaced)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return f'<numeric name="{CUSTOM_NOMINAL_HEIGHT}"' in fh.read(1_000_000)
    except (OSError, UnicodeDecodeError):
        return False


if __name__ == "__main__":
    raise SystemExit(main())
