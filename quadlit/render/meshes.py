"""Flat-shaded triangle soups for the renderer, built with NumPy and sent to raylib in one go.

Each builder appends triangles (world coordinates, metres) with one colour per triangle,
shaded by a fixed directional light (Lambert plus ambient), so boxes, links and spheres read
as solid shapes without a shader. ``TriangleSoup.draw`` emits them through rlgl's immediate
mode; everything else here is plain NumPy.
"""

from __future__ import annotations

import gc

import numpy as np

from quadlit.render.geometry import orthonormal_basis

LIGHT_DIR = np.array([0.35, -0.45, 0.82]) / np.linalg.norm([0.35, -0.45, 0.82])
AMBIENT, DIFFUSE = 0.5, 0.5
_CHUNK = 2000  # triangles per rlgl batch check


def _unit_sphere(n_lat: int = 7, n_lon: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Triangles (T, 3, 3) and outward face normals (T, 3) of a unit UV sphere."""
    lat = np.linspace(-np.pi / 2, np.pi / 2, n_lat + 1)
    lon = np.linspace(0.0, 2 * np.pi, n_lon + 1)
    v = np.stack(np.broadcast_arrays(
        np.cos(lat)[:, None] * np.cos(lon)[None, :],
        np.cos(lat)[:, None] * np.sin(lon)[None, :],
        np.sin(lat)[:, None] * np.ones_like(lon)[None, :]), axis=-1)  # fmt: skip
    tris = []
    for i in range(n_lat):
        for j in range(n_lon):
            a, b, c, d = v[i, j], v[i, j + 1], v[i + 1, j + 1], v[i + 1, j]
            if i > 0:
                tris.append((a, b, c))
            if i < n_lat - 1:
                tris.append((a, c, d))
    tris = np.array(tris)
    normals = tris.mean(axis=1)
    return tris, normals / np.linalg.norm(normals, axis=1, keepdims=True)


_SPHERE_TRIS, _SPHERE_NORMALS = _unit_sphere()


def shade(color: tuple[int, ...], normals: np.ndarray) -> np.ndarray:
    """Per-face RGBA (n, 4) uint8 of ``color`` lit from ``LIGHT_DIR``."""
    base = np.asarray(color, dtype=np.float64)
    if base.shape[0] == 3:
        base = np.append(base, 255.0)
    k = AMBIENT + DIFFUSE * np.clip(normals @ LIGHT_DIR, 0.0, 1.0)
    out = np.empty((normals.shape[0], 4))
    out[:, :3] = base[:3] * k[:, None]
    out[:, 3] = base[3]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


class TriangleSoup:
    """Triangles with one RGBA colour each, drawn in the order they were added."""

    def __init__(self) -> None:
        self._tris: list[np.ndarray] = []
        self._colors: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(t.shape[0] for t in self._tris)

    def add(self, tris: np.ndarray, colors: np.ndarray) -> None:
        """tris (n, 3, 3) metres; colors (n, 4) uint8 or one (4,)/(3,) colour for all."""
        tris = np.asarray(tris, dtype=np.float64).reshape(-1, 3, 3)
        colors = np.asarray(colors, dtype=np.uint8)
        if colors.ndim == 1:
            c = colors if colors.shape[0] == 4 else np.append(colors, 255).astype(np.uint8)
            colors = np.broadcast_to(c, (tris.shape[0], 4))
        self._tris.append(tris)
        self._colors.append(colors)

    def add_shaded(self, tris: np.ndarray, normals: np.ndarray, color: tuple[int, ...]) -> None:
        self.add(tris, shade(color, normals))

    # ---- primitives --------------------------------------------------------------------
    def box(self, center: np.ndarray, rotation: np.ndarray, half_extents: np.ndarray,
            color: tuple[int, ...]) -> None:
        """An oriented box; ``rotation`` (3, 3) has the box axes as columns."""
        tris, normals = [], []
        for axis in range(3):
            for sign in (-1.0, 1.0):
                n = rotation[:, axis] * sign
                u = rotation[:, (axis + 1) % 3] * half_extents[(axis + 1) % 3]
                v = rotation[:, (axis + 2) % 3] * half_extents[(axis + 2) % 3]
                c = center + n * half_extents[axis]
                quad = (c - u - v, c + u - v, c + u + v, c - u + v)
                tris += [(quad[0], quad[1], quad[2]), (quad[0], quad[2], quad[3])]
                normals += [n, n]
        self.add_shaded(np.array(tris), np.array(normals), color)

    def sphere(self, center: np.ndarray, radius: float, color: tuple[int, ...]) -> None:
        self.add_shaded(center + radius * _SPHERE_TRIS, _SPHERE_NORMALS, color)

    def cylinder(self, a: np.ndarray, b: np.ndarray, radius_a: float, color: tuple[int, ...],
                 radius_b: float | None = None, sides: int = 12, caps: bool = True) -> None:
        """A (possibly tapered) cylinder from ``a`` to ``b``; ``radius_b=0`` makes a cone."""
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        radius_b = radius_a if radius_b is None else radius_b
        axis = b - a
        length = np.linalg.norm(axis)
        if length < 1e-9:
            return
        axis = axis / length
        u, v = orthonormal_basis(axis)
        angles = np.linspace(0.0, 2 * np.pi, sides + 1)
        ring = np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * v  # (sides + 1, 3)
        ra, rb = a + radius_a * ring, b + radius_b * ring
        side = np.concatenate([
            np.stack([ra[:-1], ra[1:], rb[1:]], axis=1),
            np.stack([ra[:-1], rb[1:], rb[:-1]], axis=1)])  # fmt: skip
        mid = np.cos(angles[:-1] + np.pi / sides)[:, None] * u + np.sin(angles[:-1] + np.pi / sides)[:, None] * v
        slope = (radius_a - radius_b) / length
        side_normals = mid + slope * axis
        side_normals /= np.linalg.norm(side_normals, axis=1, keepdims=True)
        self.add_shaded(side, np.concatenate([side_normals, side_normals]), color)
        if caps:
            for center, rim, n, r in ((a, ra, -axis, radius_a), (b, rb, axis, radius_b)):
                if r > 0:
                    fan = np.stack([np.broadcast_to(center, (sides, 3)), rim[:-1], rim[1:]], axis=1)
                    self.add_shaded(fan, np.broadcast_to(n, (sides, 3)), color)

    def arrow(self, tail: np.ndarray, tip: np.ndarray, radius: float, color: tuple[int, ...]) -> None:
        """A shaft and a cone head ending at ``tip``."""
        tail, tip = np.asarray(tail, np.float64), np.asarray(tip, np.float64)
        length = np.linalg.norm(tip - tail)
        if length < 1e-9:
            return
        head = min(0.4 * length, 5.0 * radius)
        neck = tip - (tip - tail) / length * head
        self.cylinder(tail, neck, radius, color)
        self.cylinder(neck, tip, 2.4 * radius, color, radius_b=0.0)

    def quad(self, corners: np.ndarray, color: tuple[int, ...]) -> None:
        """A flat quad (4, 3), unshaded."""
        c = np.asarray(corners, np.float64)
        self.add(np.array([(c[0], c[1], c[2]), (c[0], c[2], c[3])]), np.asarray(color))

    def disc(self, center: np.ndarray, radius: float, color: tuple[int, ...], segments: int = 24,
             inner: float = 0.0) -> None:
        """A horizontal disc (or ring when ``inner`` > 0), unshaded."""
        angles = np.linspace(0.0, 2 * np.pi, segments + 1)
        circle = np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)], axis=1)
        outer_rim = center + radius * circle
        if inner <= 0:
            tris = np.stack([np.broadcast_to(center, (segments, 3)), outer_rim[:-1], outer_rim[1:]], axis=1)
        else:
            inner_rim = center + inner * circle
            tris = np.concatenate([
                np.stack([inner_rim[:-1], outer_rim[:-1], outer_rim[1:]], axis=1),
                np.stack([inner_rim[:-1], outer_rim[1:], inner_rim[1:]], axis=1)])  # fmt: skip
        self.add(tris, np.asarray(color))

    def ground_lines(self, lo: np.ndarray, hi: np.ndarray, spacing: float, width: float, z: float,
                     color: tuple[int, ...]) -> None:
        """Grid lines on the plane at height ``z`` over [lo, hi] (x, y), as thin quads."""
        tris = []
        half = width / 2
        for x in np.arange(np.ceil(lo[0] / spacing), np.floor(hi[0] / spacing) + 1) * spacing:
            c = [(x - half, lo[1], z), (x + half, lo[1], z), (x + half, hi[1], z), (x - half, hi[1], z)]
            tris += [(c[0], c[1], c[2]), (c[0], c[2], c[3])]
        for y in np.arange(np.ceil(lo[1] / spacing), np.floor(hi[1] / spacing) + 1) * spacing:
            c = [(lo[0], y - half, z), (hi[0], y - half, z), (hi[0], y + half, z), (lo[0], y + half, z)]
            tris += [(c[0], c[1], c[2]), (c[0], c[2], c[3])]
        if tris:
            self.add(np.array(tris), np.asarray(color))

    def ribbon(self, points: np.ndarray, width: float, view_dir: np.ndarray, colors: np.ndarray) -> None:
        """A polyline (K, 3) drawn as a camera-facing strip; colors (K - 1, 4), one per segment."""
        points = np.asarray(points, np.float64)
        if points.shape[0] < 2:
            return
        seg = np.diff(points, axis=0)
        side = np.cross(seg, view_dir)
        norm = np.linalg.norm(side, axis=1, keepdims=True)
        side = np.where(norm > 1e-12, side / np.maximum(norm, 1e-12), 0.0) * (width / 2)
        a, b = points[:-1], points[1:]
        tris = np.concatenate([
            np.stack([a - side, a + side, b + side], axis=1),
            np.stack([a - side, b + side, b - side], axis=1)])  # fmt: skip
        self.add(tris, np.concatenate([colors, colors]).astype(np.uint8))

    # ---- output ------------------------------------------------------------------------
    def draw(self) -> None:
        """Emit every triangle through rlgl (call between BeginMode3D and EndMode3D)."""
        if not self._tris:
            return
        import pyray as rl
        from raylib import rl as C

        # tens of thousands of short-lived lists a frame: with the garbage collector on, each
        # frame also paid for collections that walk every object of the process (torch, Lightning)
        gc_was_on = gc.isenabled()
        gc.disable()
        try:
            tris = np.concatenate(self._tris).tolist()
            colors = np.concatenate(self._colors).tolist()
            vertex, color4 = C.rlVertex3f, C.rlColor4ub
            for start in range(0, len(tris), _CHUNK):
                stop = min(start + _CHUNK, len(tris))
                C.rlCheckRenderBatchLimit(3 * (stop - start))
                C.rlBegin(rl.RL_TRIANGLES)
                for (p0, p1, p2), (r, g, b, a) in zip(tris[start:stop], colors[start:stop]):
                    color4(r, g, b, a)
                    vertex(*p0)
                    vertex(*p1)
                    vertex(*p2)
                C.rlEnd()
            del tris, colors
        finally:
            if gc_was_on:
                gc.enable()
