"""Which robot a balance task simulates: the built-in A1, or the file ``BalanceParams.robot``
names, imported once per process (``quadlit.physics.importer``), or the robot a checkpoint
carries (``register_robot``), which wins over reading the file again: a run's tools and a
resumed run simulate the robot it was trained on, even when its file has moved or changed."""

from __future__ import annotations

import json
import os
from pathlib import Path

from quadlit.errors import ConfigError
from quadlit.physics.robot import BUILTIN_NAME, Robot, builtin_robot
from quadlit.tasks.balance.params import MIN_HEIGHT_FRACTION, BalanceParams, robot_heights

_BUILTIN: Robot | None = None
_registered: dict[tuple, Robot] = {}
_imported: dict[tuple, Robot] = {}


def is_builtin(params: BalanceParams) -> bool:
    """Whether ``params`` simulate the built-in A1."""
    return params.robot is None or params.robot == BUILTIN_NAME


def robot_key(params: BalanceParams) -> tuple:
    """What identifies the robot of ``params``: the path as given and the options applied to it."""
    return (BUILTIN_NAME if is_builtin(params) else params.robot, params.robot_kp, params.robot_kd, params.robot_pose)


def register_robot(params: BalanceParams, robot: Robot) -> None:
    """Make every later task built with ``params``' robot options simulate ``robot`` (a
    checkpoint's) instead of importing the file they name."""
    _registered[robot_key(params)] = robot


def registered_robot(params: BalanceParams) -> Robot | None:
    """The robot registered for ``params`` (None: none is)."""
    return _registered.get(robot_key(params))


def robot_for(params: BalanceParams) -> Robot:
    """The robot a task with ``params`` simulates (imported at most once per process and file
    version; a ``ConfigError`` in one line when the file cannot be imported)."""
    global _BUILTIN
    key = robot_key(params)
    if key in _registered:
        return _registered[key]
    if is_builtin(params):
        if _BUILTIN is None:
            _BUILTIN = builtin_robot()
        return _BUILTIN
    from quadlit.physics.importer import import_robot

    path = Path(params.robot).expanduser()
    try:
        stat = path.stat()
        version = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    except OSError:
        version = (str(path), None, None)
    cache_key = (*version, params.robot_kp, params.robot_kd, params.robot_pose)
    if cache_key not in _imported:
        _imported[cache_key] = import_robot(path, kp=params.robot_kp, kd=params.robot_kd, pose=params.robot_pose)
    return _imported[cache_key]


def check_robot_bounds(params: BalanceParams, robot: Robot) -> None:
    """The parameters whose sensible range depends on the robot, checked against it (one-line
    ``ConfigError``): heights against how tall it stands, added mass against its trunk."""
    model = robot.model
    min_height, target = robot_heights(params, float(model.nominal_height))
    name = f"robot {robot.name}"
    if min_height >= float(model.nominal_height):
        raise ConfigError(f"data.balance.min_height must be below the height the {name} stands at "
                          f"({model.nominal_height:.3f} m), or every episode fails at once; got {min_height} "
                          f"(null: {MIN_HEIGHT_FRACTION * model.nominal_height:.3f} m)")
    if target > float(model.standing_height) * 1.1:
        raise ConfigError(f"data.balance.target_height must be at most a tenth above the {name}'s standing height "
                          f"({model.standing_height:.3f} m: its legs cannot reach higher); got {target}")
    trunk = float(model.body_mass[0])
    if params.added_mass_min <= -0.85 * trunk:
        raise ConfigError(f"data.balance.added_mass_min must be > {-0.85 * trunk:.2f} kg (the {name}'s trunk weighs "
                          f"{trunk:.2f} kg), got {params.added_mass_min}")


def _key_text(params: BalanceParams) -> str:
    return json.dumps(robot_key(params))  # tuples as lists: the same text after a checkpoint round trip


def checkpoint_extras(params: BalanceParams) -> dict:
    """What a checkpoint keeps of the robot: the whole imported robot, its digest and the options
    that named it (nothing for the A1). Compared by ``digest``."""
    if is_builtin(params):
        return {}
    robot = robot_for(params)
    check_robot_bounds(params, robot)
    return {"robot": robot.to_dict(), "digest": robot.digest(), "key": _key_text(params)}


def restore_checkpoint_extras(params: BalanceParams, extras: dict) -> None:
    """Make tasks with ``params`` simulate a checkpoint's robot: registered (its file is not read
    again) when ``params`` name the robot as the run did; otherwise the robot ``params`` name
    must be the same robot, or a one-line ConfigError refuses it."""
    if "robot" not in extras:
        return
    try:
        robot = Robot.from_dict(extras["robot"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"the checkpoint's robot record cannot be read ({exc})") from None
    if extras.get("key") == _key_text(params):
        register_robot(params, robot)
        return
    if is_builtin(params) or robot_for(params).digest() != robot.digest():
        ours = "the built-in A1" if is_builtin(params) else f"robot {robot_for(params).name!r} ({params.robot})"
        raise ConfigError(f"the checkpoint was trained on robot {robot.name!r} ({robot.source}), but "
                          f"data.balance.robot gives {ours}; use the robot it was trained on")


def describe_source(robot: Robot) -> str:
    """Where MuJoCo reads the robot from, for messages (its file, or the copy it carries)."""
    if robot.source is None:
        return "built in"
    return robot.source if os.path.isfile(robot.source) else f"{robot.source} (gone; the copy the run carries)"
