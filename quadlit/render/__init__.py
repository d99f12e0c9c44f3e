"""raylib rendering of quadlit scenes: off screen into NumPy images (any X display, Xvfb
included) or live in a window, plus episode recording and GIF encoding.

Importing this package does not import raylib; the first ``Renderer.open`` does.
"""

from quadlit.render.camera import CameraPreset, OrbitCamera
from quadlit.render.display import display_available
from quadlit.render.frames import (
    Frame,
    QuadrupedFrame,
    ReachFrame,
    frame_function,
    reach_frames,
    standing_quadruped,
)
from quadlit.render.record import encode_gif, frames_to_gif, record_episode
from quadlit.render.renderer import Renderer, RenderUnavailable

__all__ = [
    "CameraPreset", "Frame", "OrbitCamera", "QuadrupedFrame", "ReachFrame", "RenderUnavailable",
    "Renderer", "display_available", "encode_gif", "frame_function", "frames_to_gif", "reach_frames",
    "record_episode", "standing_quadruped",
]  # fmt: skip
