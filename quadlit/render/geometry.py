"""Small pure-NumPy geometry for rendering: rotations and the camera's pinhole projection.

Everything here is independent of raylib, so tests (and callers without a display) can
use it. World frame: z up, x forward, metres.
"""

from __future__ import annotations

import numpy as np


def quat_to_matrix(quat_wxyz: np.ndarray) -> np.ndarray:
    """Rotation matrix of a quaternion (w, x, y, z); normalised first, so near-unit is fine.

    Shape: (4,) -> (3, 3); columns are the body axes in the world frame.
    """
    w, x, y, z = np.asarray(quat_wxyz, dtype=np.float64) / np.linalg.norm(quat_wxyz)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])  # fmt: skip


def orthonormal_basis(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors perpendicular to the unit vector ``axis`` and to each other."""
    helper = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(axis, helper)
    u /= np.linalg.norm(u)
    return u, np.cross(axis, u)


def look_at_basis(position: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Rows: camera right, camera up, camera forward (unit vectors, world frame). Shape (3, 3)."""
    forward = np.asarray(target, np.float64) - np.asarray(position, np.float64)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    return np.stack([right, np.cross(right, forward), forward])


def project_points(
    points: np.ndarray,
    position: np.ndarray,
    target: np.ndarray,
    up: np.ndarray,
    fovy_deg: float,
    width: int,
    height: int,
) -> np.ndarray:
    """Pixel coordinates of world points seen by a perspective camera (raylib's convention:
    ``fovy`` is the vertical field of view, pixel (0, 0) is the top-left corner).

    Shape: points (..., 3) -> (..., 2) as (column, row), float64; points behind the camera
    get NaN.
    """
    basis = look_at_basis(position, target, up)
    rel = np.asarray(points, np.float64) - np.asarray(position, np.float64)
    cam = rel @ basis.T  # (..., 3): right, up, depth
    depth = cam[..., 2]
    tan_half = np.tan(np.radians(fovy_deg) / 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ndc_x = cam[..., 0] / (depth * tan_half * (width / height))
        ndc_y = cam[..., 1] / (depth * tan_half)
    out = np.stack([(ndc_x + 1.0) * 0.5 * width, (1.0 - ndc_y) * 0.5 * height], axis=-1)
    out[depth <= 0] = np.nan
    return out
