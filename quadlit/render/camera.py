"""An orbit camera around a target point, with a follow mode; pure Python state.

The camera sits at ``target + distance * (cos(pitch) cos(yaw), cos(pitch) sin(yaw), sin(pitch))``
(z up, angles in degrees). In follow mode the target tracks the subject (the trunk or the
creature) each frame; panning by hand leaves follow mode, ``reset`` restores the preset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from quadlit.render.geometry import look_at_basis, project_points

UP = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class CameraPreset:
    """Where the camera starts for a kind of scene.

    Args:
        distance: metres from the target.
        yaw: azimuth of the camera around the target, degrees from +x towards +y.
        pitch: elevation above the target, degrees.
        fovy: vertical field of view, degrees.
        target_offset: added to the subject's position to get the target, metres.
    """

    distance: float
    yaw: float = -60.0
    pitch: float = 22.0
    fovy: float = 45.0
    target_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)


QUADRUPED_PRESET = CameraPreset(distance=1.35, yaw=-55.0, pitch=18.0, target_offset=(0.0, 0.0, -0.05))


def reach_preset(box_half_extent: float) -> CameraPreset:
    """A view of the creature that keeps most of the arena in sight."""
    return CameraPreset(distance=2.6 * box_half_extent, yaw=-60.0, pitch=38.0)


class OrbitCamera:
    """Orbit/zoom/pan camera state.

    Args:
        preset: the starting (and reset) view.
        follow: track the subject passed to ``update_subject``.
    """

    MIN_PITCH, MAX_PITCH = -5.0, 89.0

    def __init__(self, preset: CameraPreset, follow: bool = True) -> None:
        self.preset = preset
        self.follow = follow
        self.target = np.array(preset.target_offset, dtype=np.float64)
        self.distance = preset.distance
        self.yaw = preset.yaw
        self.pitch = preset.pitch
        self.fovy = preset.fovy

    def reset(self, preset: CameraPreset | None = None) -> None:
        """Back to the preset view, follow mode on (keeps the current target until the next
        subject update)."""
        if preset is not None:
            self.preset = preset
        self.distance, self.yaw, self.pitch, self.fovy = (
            self.preset.distance, self.preset.yaw, self.preset.pitch, self.preset.fovy)
        self.follow = True

    def update_subject(self, subject_pos: np.ndarray) -> None:
        """Move the target onto the subject when following."""
        if self.follow:
            self.target = np.asarray(subject_pos, np.float64) + np.asarray(self.preset.target_offset)

    # ---- user input (window mode) ------------------------------------------------------
    def orbit(self, d_yaw: float, d_pitch: float) -> None:
        self.yaw = (self.yaw + d_yaw) % 360.0
        self.pitch = min(self.MAX_PITCH, max(self.MIN_PITCH, self.pitch + d_pitch))

    def zoom(self, wheel: float) -> None:
        """``wheel`` > 0 moves closer (10 % per notch)."""
        lo, hi = 0.05 * self.preset.distance, 20.0 * self.preset.distance
        self.distance = min(hi, max(lo, self.distance * 0.9**wheel))

    def pan(self, dx_px: float, dy_px: float, height_px: int) -> None:
        """Drag the scene by a mouse motion in pixels; leaves follow mode."""
        basis = self.basis()
        metres_per_px = 2.0 * self.distance * math.tan(math.radians(self.fovy) / 2.0) / max(height_px, 1)
        self.target = self.target - basis[0] * dx_px * metres_per_px + basis[1] * dy_px * metres_per_px
        self.follow = False

    # ---- geometry ----------------------------------------------------------------------
    @property
    def position(self) -> np.ndarray:
        yaw, pitch = math.radians(self.yaw), math.radians(self.pitch)
        offset = np.array([math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), math.sin(pitch)])
        return self.target + self.distance * offset

    def basis(self) -> np.ndarray:
        """Rows: right, up, forward of the camera (world frame)."""
        return look_at_basis(self.position, self.target, UP)

    def project(self, points: np.ndarray, width: int, height: int) -> np.ndarray:
        """Pixel (column, row) of world points in a ``width`` x ``height`` image. (..., 3) -> (..., 2)."""
        return project_points(points, self.position, self.target, UP, self.fovy, width, height)

    def copy(self) -> "OrbitCamera":
        other = OrbitCamera(replace(self.preset), self.follow)
        other.target, other.distance, other.yaw, other.pitch, other.fovy = (
            self.target.copy(), self.distance, self.yaw, self.pitch, self.fovy)
        return other
