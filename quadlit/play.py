"""``quadlit play``: run a policy live in a raylib window, pause it, step it, push the robot.

    quadlit play --ckpt_path lightning_logs/version_0/checkpoints/last.ckpt
    quadlit play --task balance --policy zero        # no checkpoint: inspect the physics

The logic lives in ``PlaySession`` (task, policy, recurrent state, flags, push settings) and
takes abstract key names (``"space"``, ``"n"``, ``"up"``, ...), so it is tested without a
window; ``run_window`` is the thin loop that polls raylib's keys, advances the session at the
task's control rate and draws it.

Keys (the renderer owns the mouse, F = follow camera, R = reset view, Esc/Q = quit):

    Space      pause / resume              N or .       one control step (while paused)
    Backspace  reset the episode           D            deterministic / stochastic actions
    arrows or I J K L   push direction (forward, back, left, right of the robot's heading)
    + / -      push size                   P            push now
    H          show / hide the key legend
    G          show / hide the world model's ghost: the robot as the world model predicts it half a
               second ahead, drawn translucent (checkpoints of the balance task with a world model)
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Callable, NoReturn

import numpy as np
import torch

from quadlit.errors import ConfigError
from quadlit.models.baselines import RandomPolicy, ZeroPolicy

# Abstract key name -> session action. R (camera reset) and F (camera follow) belong to the
# renderer, Esc and Q close the window; the right arrow chooses a push direction, so single
# steps are N (or the full stop).
KEY_BINDINGS: dict[str, str] = {
    "space": "pause",
    "n": "step",
    "period": "step",
    "backspace": "reset",
    "d": "deterministic",
    "h": "legend",
    "g": "ghost",
    "up": "push_forward",
    "i": "push_forward",
    "down": "push_back",
    "k": "push_back",
    "left": "push_left",
    "j": "push_left",
    "right": "push_right",
    "l": "push_right",
    "plus": "push_bigger",
    "minus": "push_smaller",
    "p": "push",
}

# Actions pressed in the same frame run in this order (choose a direction, then push).
ACTION_ORDER = ("pause", "legend", "ghost", "deterministic", "push_forward", "push_back", "push_left", "push_right",
                "push_bigger", "push_smaller", "push", "reset", "step")

# raylib key constant (attribute of ``pyray``) -> abstract key name.
RAYLIB_KEYS: dict[str, str] = {
    "KEY_SPACE": "space",
    "KEY_N": "n",
    "KEY_PERIOD": "period",
    "KEY_BACKSPACE": "backspace",
    "KEY_D": "d",
    "KEY_H": "h",
    "KEY_G": "g",
    "KEY_UP": "up",
    "KEY_I": "i",
    "KEY_DOWN": "down",
    "KEY_K": "k",
    "KEY_LEFT": "left",
    "KEY_J": "j",
    "KEY_RIGHT": "right",
    "KEY_L": "l",
    "KEY_EQUAL": "plus",  # the + key without shift
    "KEY_KP_ADD": "plus",
    "KEY_MINUS": "minus",
    "KEY_KP_SUBTRACT": "minus",
    "KEY_P": "p",
}
# Keys that repeat while held (raylib's key repeat).
REPEATING_KEYS = frozenset({"n", "period", "plus", "minus"})

# Push direction in the robot's heading frame: (forward, left) unit vector.
PUSH_DIRECTIONS: dict[str, tuple[float, float]] = {
    "forward": (1.0, 0.0),
    "back": (-1.0, 0.0),
    "left": (0.0, 1.0),
    "right": (0.0, -1.0),
}
PUSH_SIZE_STEP = 0.25  # m/s per + or -
PUSH_SIZE_MIN, PUSH_SIZE_MAX = 0.25, 5.0  # m/s
PUSH_ARROW_S = 0.5  # simulated seconds a manual push stays drawn
MAX_STEPS_PER_FRAME = 4  # when the simulation falls behind real time it slows down instead
WINDOW_FPS = 60


class PlaySession:
    """One environment of a task driven by a policy, with the controls of ``quadlit play``.

    Args:
        task: a ``VecTask`` (only environment 0 is used; build it with ``num_envs=1``). When it
            has ``push(env_indices, delta_v_world)`` the push keys use it.
        policy: ``initial_state(B, device)`` and ``act(obs, state, episode_start, deterministic,
            generator) -> (action, raw, log_prob, value, state)``, as ``EntityBelief``.
        obs_norm: observation normaliser applied before the policy (None: identity).
        seed: reset seed of the first episode and seed of the stochastic actions.
        deterministic: start with the policy's mean action.
        policy_label: what the HUD calls the policy.
        frame_fn: ``frame_fn(task, env_index) -> Frame``; None: ``frame_function(task)``.
        push_size: initial push size, m/s.
        ghost: a ``quadlit.ghost.Ghost`` that G shows and hides (None: the key says there is none);
            it is recomputed once per control step while shown.
        kinematics: ``kinematics(pos, quat, joint_pos) -> (4, 4, 3)`` leg points, for the ghost.
    """

    def __init__(self, task: Any, policy: Any, obs_norm: Callable[[torch.Tensor], torch.Tensor] | None = None, *,
                 seed: int = 0, deterministic: bool = True, policy_label: str | None = None,
                 frame_fn: Callable[[Any, int], Any] | None = None, push_size: float = 1.0,
                 ghost: Any = None, kinematics: Callable[..., np.ndarray] | None = None) -> None:
        from quadlit.render.frames import frame_function

        self.task = task
        self.policy = policy
        self.obs_norm = obs_norm if obs_norm is not None else (lambda x: x)
        self.policy_label = policy_label or getattr(policy, "label", "policy")
        self.frame_fn = frame_fn if frame_fn is not None else frame_function(task)
        self.control_dt = float(task.spec.control_dt)
        self.can_push = callable(getattr(task, "push", None))
        self.generator = torch.Generator().manual_seed(int(seed))
        if ghost is not None and kinematics is None:
            raise ValueError("a ghost needs the robot's kinematics")
        self.ghost = ghost
        self.kinematics = kinematics
        self.show_ghost = False
        self._ghost_frame: tuple[int, Any] | None = None  # (total_steps, frame) of the latest ghost

        self.paused = False
        self.deterministic = bool(deterministic)
        self.show_legend = True
        self.push_direction = "forward"
        self.push_size = float(np.clip(push_size, PUSH_SIZE_MIN, PUSH_SIZE_MAX))
        self.last_push: np.ndarray | None = None  # (3,) world Δv of the latest manual push, m/s
        self.last_action: np.ndarray | None = None  # (A,) action of the latest step
        self.last_episode: dict[str, Any] | None = None  # return, length, end of the latest finished one
        self.episode = 0  # counts episodes started, resets and auto-resets alike
        self.total_steps = 0
        self._push_step = -1
        self._time_debt = 0.0
        self._begin_episode(task.reset(int(seed)))

    # ---- episodes -----------------------------------------------------------------------
    def _begin_episode(self, obs: np.ndarray) -> None:
        self.obs = torch.from_numpy(np.array(obs[:1], dtype=np.float32))
        self.lstm_state = self.policy.initial_state(1, torch.device("cpu"))
        self.episode_start = torch.ones(1)
        if self.ghost is not None:
            self.ghost.begin_episode(self.obs[0])
        self._ghost_frame = None
        self.step_count = 0
        self.episode_return = 0.0
        self.episode += 1

    def reset(self) -> None:
        """Start a new episode (the task's random streams continue) with a fresh LSTM state."""
        self._begin_episode(self.task.reset())
        self._time_debt = 0.0

    @torch.no_grad()
    def step(self) -> Any:
        """Advance one control step (paused or not); returns the task's ``StepResult``. When the
        episode ends the task has already reset it; the counters start again at 0."""
        action, _, _, _, self.lstm_state = self.policy.act(
            self.obs_norm(self.obs), self.lstm_state, self.episode_start,
            deterministic=self.deterministic, generator=self.generator)
        actions = np.zeros((self.task.num_envs, self.task.spec.action_dim), dtype=np.float32)
        actions[0] = action[0].float().cpu().numpy()
        self.last_action = actions[0].copy()
        result = self.task.step(actions)
        self.total_steps += 1
        self.step_count += 1
        self.episode_return += float(result.reward[0])
        done = bool(result.terminated[0] or result.truncated[0])
        self.obs = torch.from_numpy(np.array(result.obs[:1], dtype=np.float32))
        self.episode_start = torch.full((1,), float(done))
        if self.ghost is not None:
            if done:
                self.ghost.begin_episode(self.obs[0])
            else:
                self.ghost.observe(action[0], self.obs[0])
        if done:
            self.last_episode = {"return": self.episode_return, "length": self.step_count,
                                 "end": "failed" if result.terminated[0] else "time-out"}
            self.step_count = 0
            self.episode_return = 0.0
            self.episode += 1
        return result

    def advance(self, elapsed_s: float) -> int:
        """Run the control steps due after ``elapsed_s`` seconds of real time (none while
        paused; at most ``MAX_STEPS_PER_FRAME``, the rest is dropped). Returns the count."""
        if self.paused:
            self._time_debt = 0.0
            return 0
        self._time_debt += max(0.0, float(elapsed_s))
        n = int(self._time_debt / self.control_dt + 1e-9)
        if n > MAX_STEPS_PER_FRAME:
            n, self._time_debt = MAX_STEPS_PER_FRAME, 0.0
        else:
            self._time_debt -= n * self.control_dt
        for _ in range(n):
            self.step()
        return n

    # ---- pushes -------------------------------------------------------------------------
    def heading_yaw(self) -> float:
        """Yaw of the robot's trunk (rad, about z) when the frame has one, else 0."""
        frame = self.frame_fn(self.task, 0) if self.frame_fn is not None else None
        quat = getattr(frame, "trunk_quat", None)
        if quat is None:
            return 0.0
        w, x, y, z = (float(v) for v in quat)
        return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))

    def push_velocity(self) -> np.ndarray:
        """The world-frame Δv (3,) a push would give now: size x direction, the direction
        turned by the robot's heading."""
        forward, left = PUSH_DIRECTIONS[self.push_direction]
        yaw = self.heading_yaw()
        c, s = math.cos(yaw), math.sin(yaw)
        return self.push_size * np.array([c * forward - s * left, s * forward + c * left, 0.0])

    def push(self) -> np.ndarray | None:
        """Kick environment 0 with ``push_velocity()`` through the task's ``push`` hook;
        returns the Δv (m/s, world frame), or None when the task cannot be pushed."""
        if not self.can_push:
            return None
        delta_v = self.push_velocity()
        self.task.push(np.array([0], dtype=np.int64), delta_v[None, :].astype(np.float64))
        self.last_push = delta_v
        self._push_step = self.total_steps
        return delta_v

    # ---- keys ---------------------------------------------------------------------------
    def handle_keys(self, pressed: set[str] | frozenset[str]) -> list[str]:
        """Apply the keys pressed this frame (abstract names, see ``KEY_BINDINGS``; unknown
        names are ignored). Returns the actions taken, in the order they ran."""
        wanted = {KEY_BINDINGS[k] for k in pressed if k in KEY_BINDINGS}
        done = []
        for action in ACTION_ORDER:
            if action in wanted and self._apply(action):
                done.append(action)
        return done

    def _apply(self, action: str) -> bool:
        if action == "pause":
            self.paused = not self.paused
            self._time_debt = 0.0
        elif action == "legend":
            self.show_legend = not self.show_legend
        elif action == "ghost":
            if self.ghost is None:
                return False
            self.show_ghost = not self.show_ghost
        elif action == "deterministic":
            self.deterministic = not self.deterministic
        elif action.startswith("push_") and action[5:] in PUSH_DIRECTIONS:
            self.push_direction = action[5:]
        elif action in ("push_bigger", "push_smaller"):
            delta = PUSH_SIZE_STEP if action == "push_bigger" else -PUSH_SIZE_STEP
            self.push_size = float(np.clip(round(self.push_size + delta, 6), PUSH_SIZE_MIN, PUSH_SIZE_MAX))
        elif action == "push":
            return self.push() is not None
        elif action == "reset":
            self.reset()
        elif action == "step":
            if not self.paused:
                return False
            self.step()
        else:
            raise AssertionError(action)
        return True

    # ---- what to draw -------------------------------------------------------------------
    def frame(self) -> Any:
        """The frame of environment 0; a recent manual push is drawn as the push arrow when the
        task's frame shows none."""
        frame = self.frame_fn(self.task, 0)
        recent = self._push_step >= 0 and (self.total_steps - self._push_step) * self.control_dt <= PUSH_ARROW_S
        if recent and getattr(frame, "push", False) is None:
            frame = dataclasses.replace(frame, push=self.last_push)
        if self.show_ghost and self.ghost is not None:
            if self._ghost_frame is None or self._ghost_frame[0] != self.total_steps:
                self._ghost_frame = (self.total_steps, self.ghost.frame(frame, self.lstm_state, self.kinematics))
            frame = dataclasses.replace(frame, ghost=self._ghost_frame[1])
        return frame

    def hud(self) -> dict[str, Any]:
        """Heads-up display lines, ``label -> value``."""
        spec = self.task.spec
        has_modes = not isinstance(self.policy, ZeroPolicy)
        mode = f" ({'deterministic' if self.deterministic else 'stochastic'})" if has_modes else ""
        lines: dict[str, Any] = {
            "task": f"{spec.name} at {1.0 / self.control_dt:.0f} Hz" + ("   PAUSED" if self.paused else ""),
            "policy": self.policy_label + mode,
            "episode": f"{self.episode}   step {self.step_count}/{spec.max_episode_steps}",
            "return": float(self.episode_return),
        }
        if self.last_episode is not None:
            e = self.last_episode
            lines["last episode"] = f"return {e['return']:.2f}, {e['length']} steps, {e['end']}"
        if self.ghost is not None:
            lines["ghost"] = (f"world model, {self.ghost.steps * self.control_dt:.1f} s ahead" if self.show_ghost
                              else "off (G)")
        if self.can_push:
            lines["next push"] = f"{self.push_size:.2f} m/s {self.push_direction}"
        else:
            lines["push"] = "n/a for this task"
        if self.show_legend:
            lines["keys"] = ("Space pause | N step | Backspace reset" + (" | D det/stoch" if has_modes else "")
                             + (" | G ghost" if self.ghost is not None else ""))
            if self.can_push:
                lines["push keys"] = "arrows/IJKL direction | +/- size | P push"
            lines["mouse"] = "drag orbit | wheel zoom | right-drag pan | H hide keys | Esc/Q quit"
        return lines


# ---- the window -------------------------------------------------------------------------
def poll_keys(rl: Any) -> set[str]:
    """Abstract names of the keys raylib saw pressed this frame (held repeating keys included)."""
    pressed = set()
    for attr, name in RAYLIB_KEYS.items():
        code = getattr(rl, attr)
        if rl.is_key_pressed(code) or (name in REPEATING_KEYS and rl.is_key_pressed_repeat(code)):
            pressed.add(name)
    return pressed


def save_screen(rl: Any, path: Path) -> Path:
    """Write what the window shows as a PNG."""
    from PIL import Image

    image = rl.load_image_from_screen()
    try:
        if image.format != rl.PIXELFORMAT_UNCOMPRESSED_R8G8B8A8:
            raise RuntimeError(f"unexpected screen pixel format {image.format}")
        n = image.width * image.height * 4
        rgba = np.frombuffer(rl.ffi.buffer(image.data, n), dtype=np.uint8).reshape(image.height, image.width, 4)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgba[:, :, :3].copy()).save(path)
    finally:
        rl.unload_image(image)
    return path


def run_window(session: PlaySession, renderer: Any, max_frames: int | None = None,
               screenshot: Path | None = None) -> int:
    """Drive ``session`` in ``renderer``'s window until it is closed (or ``max_frames`` frames
    were drawn); optionally save the last frame as a PNG. Returns the number of frames drawn."""
    import pyray as rl

    renderer.open()
    frames = 0
    episode = session.episode
    last = time.perf_counter()
    while not renderer.should_close():
        session.handle_keys(poll_keys(rl))
        now = time.perf_counter()
        session.advance(now - last)
        last = now
        if session.episode != episode:
            renderer.clear_trail()
            episode = session.episode
        renderer.render(session.frame(), session.hud())
        frames += 1
        if max_frames is not None and frames >= max_frames:
            break
    if screenshot is not None and frames > 0:
        save_screen(rl, screenshot)
    return frames


# ---- command line -----------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"play: {message}")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="quadlit play", description="Run a policy live in a raylib window.")
    p.add_argument("--ckpt_path", "--ckpt-path", dest="ckpt_path", help="checkpoint to play (task and config from it)")
    p.add_argument("--task", help="task to run without a checkpoint (default: balance, else reach)")
    p.add_argument("--policy", choices=("zero", "random"), help="actions without a checkpoint (default: zero)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode and of stochastic actions")
    p.add_argument("--width", type=int, default=1024, help="window width, pixels")
    p.add_argument("--height", type=int, default=768, help="window height, pixels")
    p.add_argument("--max-frames", "--max_frames", dest="max_frames", type=int,
                   help="stop after this many drawn frames (tests, headless runs)")
    p.add_argument("--screenshot", type=Path, help="save the last frame as this PNG")
    p.add_argument("--ghost", action="store_true",
                   help="start with the world model's ghost shown (G toggles it; balance checkpoints with a world model)")
    p.add_argument("--robot", help="balance without a checkpoint: an MJCF/URDF quadruped to import (docs/robots.md)")
    p.add_argument("--robot-kp", "--robot_kp", dest="robot_kp", type=float, nargs="+",
                   help="its PD stiffness (1, 3 or 12 values) when the file has motors")
    p.add_argument("--robot-kd", "--robot_kd", dest="robot_kd", type=float, nargs="+", help="its PD damping, as --robot-kp")
    p.add_argument("--robot-pose", "--robot_pose", dest="robot_pose", type=float, nargs="+",
                   help="its standing pose (3 or 12 angles, rad) when the file has no 'home' keyframe")
    return p


def _default_task() -> str:
    return "balance"


def build_session(args: argparse.Namespace) -> PlaySession:
    """The task and policy that the arguments name (a checkpoint's, or zero/random actions)."""
    from quadlit.tasks import TASK_NAMES, make_task, task_params_from_dict

    robot_options = {k: getattr(args, k) for k in ("robot", "robot_kp", "robot_kd", "robot_pose")
                     if getattr(args, k, None) is not None}
    if args.ckpt_path is not None:
        if args.policy is not None:
            raise ConfigError("play: --policy is for runs without --ckpt_path (a checkpoint brings its policy)")
        if robot_options:
            raise ConfigError("play: --robot is for runs without --ckpt_path (a checkpoint brings its robot)")
        from quadlit.training.checkpoint import load_run

        run = load_run(args.ckpt_path)
        if args.task is not None and args.task != run.task_name:
            raise ConfigError(f"play: --task {args.task} disagrees with the checkpoint, trained on {run.task_name}")
        task = make_task(run.task_name, 1, run.task_params, args.seed)
        ghost, kinematics = _ghost_for(run, task)
        if args.ghost and ghost is None:
            task.close()
            raise ConfigError(f"play: --ghost needs a balance checkpoint with a world model; {args.ckpt_path} "
                              f"({run.task_name}, model.wm_updates {run.module.hparams.get('wm_updates')}) has none")
        session = PlaySession(task, run.module.deployed_policy, run.module.deployed_norm, seed=args.seed,
                              policy_label=f"checkpoint {Path(args.ckpt_path).name}", ghost=ghost,
                              kinematics=kinematics)
        session.show_ghost = bool(args.ghost)
        return session
    if args.ghost:
        raise ConfigError("play: --ghost shows a checkpoint's world model: it needs --ckpt_path")
    name = args.task or _default_task()
    if name not in TASK_NAMES:
        raise ConfigError(f"play: --task must be one of {', '.join(TASK_NAMES)}, got {name!r}")
    if robot_options and name != "balance":
        raise ConfigError(f"play: --robot is for the balance task, not {name}")
    try:
        params = task_params_from_dict(name, robot_options)
    except ValueError as exc:
        raise ConfigError(f"play: {exc}") from None
    task = make_task(name, 1, params, args.seed)
    policy_cls = RandomPolicy if args.policy == "random" else ZeroPolicy
    return PlaySession(task, policy_cls(task.spec.action_dim), seed=args.seed)


def _ghost_for(run: Any, task: Any) -> tuple[Any, Any]:
    """The world model's ghost of a balance checkpoint that trained a world model, and the robot's
    kinematics; (None, None) otherwise."""
    if run.task_name != "balance" or run.module.hparams.get("wm_updates", 1) == 0:
        return None, None
    from quadlit.ghost import Ghost
    from quadlit.physics.api import forward_kinematics
    from quadlit.tasks.balance.kernels import OBS_SLICES

    module = run.module
    # the world model reads observations normalised as in training (the run's current statistics)
    ghost = Ghost(module.world_model, module.deployed_policy, module.obs_norm, OBS_SLICES, task.model.default_q,
                  task.spec.control_dt)
    return ghost, lambda pos, quat, q: forward_kinematics(task.model, pos, quat, q)[0]


def main(argv: list[str] | None = None) -> int:
    """``quadlit play``; bad input or no usable display raise ``ConfigError`` (one line, exit 2)."""
    from quadlit.render import Renderer, display_available

    args = _parser().parse_args(argv)
    if args.width < 16 or args.height < 16:
        raise ConfigError(f"play: --width and --height must be >= 16, got {args.width} x {args.height}")
    if args.max_frames is not None and args.max_frames < 1:
        raise ConfigError(f"play: --max-frames must be >= 1, got {args.max_frames}")
    if args.screenshot is not None:  # checked before the window opens (was PIL's traceback after it closed)
        from PIL import Image

        from quadlit.outputs import check_output_file, holds_image

        check_output_file(args.screenshot, "play: --screenshot", inputs=[p for p in (args.ckpt_path,) if p],
                          rewritable=holds_image)
        if args.screenshot.suffix.lower() not in Image.registered_extensions():
            raise ConfigError(f"play: --screenshot: give an image file name such as frame.png, got {args.screenshot}")
    session = build_session(args)  # bad arguments and checkpoints are reported before the display
    try:
        if session.frame_fn is None:
            raise ConfigError(f"play: task {session.task.spec.name!r} cannot be drawn")
        ok, reason = display_available()
        if not ok:
            raise ConfigError(f"play needs a window: {reason}")
        title = f"quadlit play - {session.task.spec.name}"
        with Renderer(args.width, args.height, offscreen=False, title=title, target_fps=WINDOW_FPS) as renderer:
            run_window(session, renderer, args.max_frames, args.screenshot)
    finally:
        session.task.close()
    if args.screenshot is not None:
        print(f"screenshot: {args.screenshot}")
    return 0
