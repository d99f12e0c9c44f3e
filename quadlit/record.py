"""``quadlit record``: render an episode of a trained policy to a GIF (and a still PNG).

    quadlit record --ckpt_path PATH [--out episode.gif] [--still still.png] [--seconds 8]

Needs an X display (run under ``xvfb-run -a`` on a server). The task and its parameters are
taken from the checkpoint; ``--push`` overrides the push magnitude of the balance task.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from quadlit.errors import ConfigError
from quadlit.outputs import atomic_write, check_output_file, holds_image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="quadlit record", description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt_path", required=True, help="checkpoint of a trained run")
    parser.add_argument("--out", default="episode.gif", help="GIF to write")
    parser.add_argument("--still", default=None, help="also write the frame with the most recent push as a PNG")
    parser.add_argument("--seconds", type=float, default=8.0, help="simulated seconds to record")
    parser.add_argument("--fps", type=float, default=25.0, help="GIF frame rate (frames are skipped to play in real time)")
    parser.add_argument("--push", type=float, default=None, help="balance: push magnitude, m/s")
    parser.add_argument("--seed", type=int, default=1, help="seed of the recorded episode")
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=360)
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.fps <= 0:
        raise ConfigError("--seconds and --fps must be > 0")
    if args.width < 16 or args.height < 16:  # the renderer's bound (was its traceback)
        raise ConfigError(f"--width and --height must be >= 16, got {args.width} x {args.height}")
    check_output_file(args.out, "--out", inputs=[args.ckpt_path], rewritable=holds_image)
    if Path(args.out).suffix.lower() != ".gif":  # the frames are GIF bytes whatever the name says
        raise ConfigError(f"--out: record writes an animated GIF; give a .gif name, got {args.out}")
    if args.still:
        check_output_file(args.still, "--still", inputs=[args.ckpt_path, args.out], rewritable=holds_image)

    from PIL import Image

    from quadlit.render import display_available, frame_function, frames_to_gif, record_episode
    from quadlit.tasks import make_task
    from quadlit.training.checkpoint import load_run

    run = load_run(args.ckpt_path)
    ok, why = display_available()
    if not ok:
        raise ConfigError(f"cannot render: {why}")
    params = run.task_params
    if args.push is not None:
        if run.task_name != "balance":
            raise ConfigError("--push applies to the balance task only")
        params = dataclasses.replace(params, push_magnitude=args.push, push_jitter=0.0, push_curriculum=False)
    task = make_task(run.task_name, 1, params, seed=args.seed)
    dt = task.spec.control_dt
    every = max(1, round(1.0 / (args.fps * dt)))
    frames = record_episode(run.module.deployed_policy, run.module.deployed_norm, task, args.seed, "cpu", frame_function(task),
                            max_steps=int(args.seconds / dt), every=every, width=args.width, height=args.height)
    path = frames_to_gif(frames, args.out, fps=1.0 / (every * dt))
    print(f"wrote {path} ({len(frames)} frames)")
    if args.still:
        with atomic_write(args.still) as tmp:
            Image.fromarray(frames[_frame_after_push(frames)]).save(tmp)
        print(f"wrote {args.still}")
    task.close()
    return 0


def _frame_after_push(frames: list[np.ndarray]) -> int:
    """Index of a frame showing the push arrow (magenta pixels), else the middle one."""
    for k, f in enumerate(frames):
        magenta = (f[..., 0] > 150) & (f[..., 1] < 80) & (f[..., 2] > 150)
        if magenta.sum() > 30:
            return k
    return len(frames) // 2


if __name__ == "__main__":
    raise SystemExit(main())
