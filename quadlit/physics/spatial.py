"""Spatial-vector algebra helpers shared by the stages (scalars in, scalars out).

All are ``inline="always"``: Numba inlines them at IR level into the caller, so they cost
nothing inside the SIMD lane loops (see ``workspace.py``). Motion vectors ``(w; v)`` are
``(angular; linear at O)``, force vectors ``(n; f)`` ``(moment about O; force)``; a spatial
inertia in 10-parameter form is ``(m, h = m c (3), Ixx Iyy Izz Ixy Ixz Iyz about O)``.
"""

from __future__ import annotations

import numba as nb

from quadlit.physics.workspace import JIT


@nb.njit(inline="always", **JIT)
def quat_to_rot(quat, R):
    """Write the rotation matrix (3, 3) of unit quaternion ``quat`` (wxyz) into ``R``."""
    w, x, y, z = quat[0], quat[1], quat[2], quat[3]
    R[0, 0] = 1.0 - 2.0 * (y * y + z * z)
    R[0, 1] = 2.0 * (x * y - w * z)
    R[0, 2] = 2.0 * (x * z + w * y)
    R[1, 0] = 2.0 * (x * y + w * z)
    R[1, 1] = 1.0 - 2.0 * (x * x + z * z)
    R[1, 2] = 2.0 * (y * z - w * x)
    R[2, 0] = 2.0 * (x * z - w * y)
    R[2, 1] = 2.0 * (y * z + w * x)
    R[2, 2] = 1.0 - 2.0 * (x * x + y * y)


@nb.njit(inline="always", **JIT)
def cross3(a0, a1, a2, b0, b1, b2):
    """Cross product ``a x b`` of two 3-vectors given as scalars."""
    return a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0


@nb.njit(inline="always", **JIT)
def inertia_times_motion(m, h0, h1, h2, ixx, iyy, izz, ixy, ixz, iyz, w0, w1, w2, v0, v1, v2):
    """Spatial inertia (10-parameter form) times motion (w; v) -> force (n; f)."""
    c0, c1, c2 = cross3(h0, h1, h2, v0, v1, v2)
    d0, d1, d2 = cross3(h0, h1, h2, w0, w1, w2)
    return (ixx * w0 + ixy * w1 + ixz * w2 + c0, ixy * w0 + iyy * w1 + iyz * w2 + c1,
            ixz * w0 + iyz * w1 + izz * w2 + c2, m * v0 - d0, m * v1 - d1, m * v2 - d2)


@nb.njit(inline="always", **JIT)
def inertia_row_times_motion(I, b, w0, w1, w2, v0, v1, v2):
    """Spatial inertia row ``I[b]`` (10-parameter form) times motion (w; v) -> force (n; f)."""
    return inertia_times_motion(I[b, 0], I[b, 1], I[b, 2], I[b, 3], I[b, 4], I[b, 5], I[b, 6], I[b, 7], I[b, 8],
                                I[b, 9], w0, w1, w2, v0, v1, v2)


@nb.njit(inline="always", **JIT)
def spatial_inertia_matrix(I, b, out):
    """Write row ``I[b]`` (10-parameter form: m, h, Ixx Iyy Izz Ixy Ixz Iyz) as the 6x6 spatial
    inertia [[I_bar, [h]x], [[h]x^T, m 1]] into the top-left 6x6 block of ``out``."""
    m = I[b, 0]
    h0, h1, h2 = I[b, 1], I[b, 2], I[b, 3]
    out[0, 0] = I[b, 4]
    out[1, 1] = I[b, 5]
    out[2, 2] = I[b, 6]
    out[0, 1] = out[1, 0] = I[b, 7]
    out[0, 2] = out[2, 0] = I[b, 8]
    out[1, 2] = out[2, 1] = I[b, 9]
    for r in range(3):
        for c in range(3):
            out[3 + r, 3 + c] = m if r == c else 0.0
    # upper right = [h]x, lower left = [h]x^T
    out[0, 3] = 0.0
    out[0, 4] = -h2
    out[0, 5] = h1
    out[1, 3] = h2
    out[1, 4] = 0.0
    out[1, 5] = -h0
    out[2, 3] = -h1
    out[2, 4] = h0
    out[2, 5] = 0.0
    for r in range(3):
        for c in range(3):
            out[3 + c, r] = out[r, 3 + c]
