"""Cost of an evaluation video: render one balance episode and encode it as a GIF.

    xvfb-run -a quadlit bench render [--sizes 320x240@12 480x360@25] [--repeats 3]

Each setting renders what ``EvalVideo`` records during training — environment 0 of a
one-environment balance task for up to 300 control steps (6 s), one image every
``round(1 / (fps * 0.02))`` steps — with the zero-action policy, and encodes the GIF. The
first repeat includes starting raylib and the OpenGL context; the table shows the median of
the repeats after it. Needs an X display (``xvfb-run -a`` on a headless machine).
"""

from __future__ import annotations

import argparse
import re
import statistics
import time


def _setting(text: str) -> tuple[int, int, int]:
    m = re.fullmatch(r"(\d+)x(\d+)@(\d+)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT@FPS such as 320x240@12, got {text!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="quadlit bench render", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", type=_setting, default=[_setting("320x240@12"), _setting("480x360@25")],
                        help="settings to time, WIDTHxHEIGHT@FPS (the first is EvalVideo's default)")
    parser.add_argument("--repeats", type=int, default=3, help="recordings per setting (the first is not counted)")
    parser.add_argument("--max-steps", type=int, default=300, help="control steps of the episode")
    args = parser.parse_args(argv)
    if args.repeats < 2:
        parser.error("--repeats must be at least 2 (the first recording pays the start-up)")

    from quadlit.render.display import display_available

    ok, reason = display_available()
    if not ok:
        print(f"quadlit bench render: {reason}")
        return 2

    from quadlit.models.baselines import ZeroPolicy
    from quadlit.render.record import encode_gif, record_episode
    from quadlit.tasks import make_task
    from quadlit.tasks.balance.params import BalanceParams
    from quadlit.training.normalizer import RunningNorm
    from quadlit.training.video import frame_function

    task = make_task("balance", 1, BalanceParams(), 0)
    policy, norm = ZeroPolicy(task.spec.action_dim), RunningNorm(task.spec.obs_dim, enabled=False)
    frame_fn = frame_function(task)
    print(f"evaluation video, balance, zero action, {args.max_steps} control steps; median of "
          f"{args.repeats - 1} recordings after the first")
    print(f"  {'setting':>12}  {'frames':>6}  {'render s':>8}  {'ms/frame':>8}  {'encode s':>8}  {'total s':>7}  "
          f"{'GIF KiB':>7}  first (start-up) s")
    for width, height, fps in args.sizes:
        every = max(1, round(1.0 / (fps * task.spec.control_dt)))
        rows = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            frames = record_episode(policy, norm, task, 0, "cpu", frame_fn, args.max_steps, deterministic=True,
                                    every=every, width=width, height=height)
            t1 = time.perf_counter()
            gif = encode_gif(frames, fps)
            rows.append((len(frames), t1 - t0, time.perf_counter() - t1, len(gif)))
        first = rows[0][1] + rows[0][2]
        n = rows[1][0]
        render = statistics.median(r[1] for r in rows[1:])
        encode = statistics.median(r[2] for r in rows[1:])
        size = rows[-1][3]
        print(f"  {f'{width}x{height}@{fps}':>12}  {n:>6}  {render:>8.2f}  {1000 * render / n:>8.1f}  {encode:>8.2f}  "
              f"{render + encode:>7.2f}  {size / 1024:>7.0f}  {first:.2f}", flush=True)
    task.close()
    return 0
