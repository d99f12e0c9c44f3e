"""Record an episode of a task as rendered frames, and encode frames as an animated GIF."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from quadlit.outputs import atomic_write
from quadlit.render.frames import FrameFn
from quadlit.render.renderer import Renderer


@torch.no_grad()
def record_episode(
    policy: torch.nn.Module,
    obs_norm: torch.nn.Module,
    task: Any,
    seed: int,
    device: torch.device | str,
    frame_fn: FrameFn,
    max_steps: int,
    deterministic: bool = True,
    *,
    every: int = 1,
    renderer: Renderer | None = None,
    width: int = 640,
    height: int = 480,
) -> list[np.ndarray]:
    """Run one episode of environment 0 of ``task`` with ``policy`` and render it.

    Every environment of the task is stepped (the policy acts on the whole batch, as in
    ``evaluate_policy``), but only environment 0 is drawn. The first image shows the state
    after ``task.reset(seed)``; then one image per ``every`` control steps, until environment
    0's episode ends or ``max_steps`` steps have run (the auto-reset state after the end is
    not drawn).

    Args:
        policy: provides ``initial_state(B, device)`` and ``act(obs, state, episode_start,
            deterministic=...) -> (action, raw, log_prob, value, state)``.
        obs_norm: observation normaliser applied before the policy.
        task: a ``VecTask``.
        seed: reset seed of the episode.
        device: where the policy runs.
        frame_fn: ``frame_fn(task, env_index) -> QuadrupedFrame | ReachFrame``.
        max_steps: most control steps to run.
        deterministic: act with the policy's mean action.
        every: draw every k-th step.
        renderer: an off-screen renderer to use (left open); None opens and closes one of
            ``width`` x ``height``.

    Returns: RGB images, each (H, W, 3) uint8.
    """
    if max_steps < 1 or every < 1:
        raise ValueError(f"max_steps and every must be >= 1, got {max_steps} and {every}")
    device = torch.device(device)
    own = renderer is None
    renderer = Renderer(width, height, offscreen=True) if own else renderer
    try:
        renderer.open()
        renderer.clear_trail()
        n = task.num_envs
        obs = torch.from_numpy(task.reset(seed).copy()).to(device)
        state = policy.initial_state(n, device)
        start = torch.ones(n, dtype=torch.float32, device=device)
        episode_return = 0.0
        images = [renderer.render(frame_fn(task, 0), {"step": 0, "return": episode_return})]
        for step in range(1, max_steps + 1):
            action, _, _, _, state = policy.act(obs_norm(obs), state, start, deterministic=deterministic)
            result = task.step(action.float().cpu().numpy())
            episode_return += float(result.reward[0])
            if result.done[0]:
                break
            if step % every == 0:
                hud = {"step": step, "return": episode_return}
                images.append(renderer.render(frame_fn(task, 0), hud))
            start = torch.from_numpy(result.done).to(device=device, dtype=torch.float32)
            obs = torch.from_numpy(result.obs).to(device)
        return images
    finally:
        if own:
            renderer.close()


def encode_gif(frames: Sequence[np.ndarray], fps: float) -> bytes:
    """An animated GIF (looping) of RGB frames (H, W, 3) uint8, encoded by Pillow."""
    from PIL import Image

    if len(frames) == 0:
        raise ValueError("encode_gif needs at least one frame")
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    images = [Image.fromarray(np.ascontiguousarray(f, dtype=np.uint8)) for f in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:],
                   duration=max(20, int(round(1000.0 / fps))), loop=0)
    return buffer.getvalue()


def frames_to_gif(frames: Sequence[np.ndarray], path: str | Path, fps: float) -> Path:
    """Write ``frames`` as an animated GIF at ``path``, atomically (parent folders are created)."""
    path = Path(path)
    data = encode_gif(frames, fps)
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)
    return path
