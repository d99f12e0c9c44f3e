"""Compile options and the scratch records the control-step stages work in.

Every stage module (``kinematics``, ``actuators``, ``contacts``, ``dynamics``, ``integration``)
holds a scalar reference kernel over one environment's ``WORKSPACE_DTYPE`` record and its SIMD
twin over a ``BLOCK_DTYPE`` record of ``BLOCK`` environments; ``control_step`` composes them.

Frame ``O`` (all stages): world-aligned axes with the origin at the trunk origin at this
instant, so every position stays small whatever the drift. Spatial motion vectors are
``(angular; linear at O)``, force vectors ``(moment about O; force)``. The internal generalised
velocity is ``nu = (omega_world, v_O, qd)`` with ``v_O`` the trunk origin velocity; the public
one follows MuJoCo (``v_world, omega_trunk, qd``).

What it takes for Numba/LLVM to emit packed AVX2/AVX-512 code in the SIMD kernels (measured;
missing any one gave scalar code): ``error_model="numpy"`` (``JITB``); selects instead of
branches; helpers called inside lane loops inlined (at Numba-IR level, ``inline="always"``, or by
LLVM, ``forceinline=True``) and taking scalars only; lane loops ``for l in range(BLOCK)`` with a
compile-time trip count from 0, in the kernel's own code (a lane loop compiled inside a helper
with unknown body/joint indices stays scalar: too many runtime alias checks); body/joint indices
that LLVM sees as constants; model values read before a lane loop, not in it (the model record
may alias the workspace as far as LLVM knows); under ``prange``, a separate per-block function
(``control_step.step_shard_block``) rather than code inlined in the loop body.
Check with ``kernel.inspect_asm(sig)`` for packed ``zmm``/``ymm`` instructions.

How the tree walks get constant indices without compiling a helper once per joint (that took
most of the first step's compile time): ``model.JOINT_TREE`` rows, typed ``int64``, go to
per-lane steps compiled once with ``forceinline=True``; small ``inline="always"`` wrappers put
the lane loop around each call in the stage kernel itself (``dynamics.bias_and_mass_matrix_block``,
``kinematics.kinematics_block``), where LLVM inlines the step and folds the indices.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from quadlit.physics.state import NUM_BODY_POINTS

JIT = dict(cache=True, nogil=True, error_model="numpy")
"""Options of the scalar kernels (and of task kernels that call them)."""

JITB = dict(cache=True, nogil=True, error_model="numpy", boundscheck=False)
"""Options of the SIMD block kernels."""


# ----------------------------------------------------------------------------- scalar: one env

WORKSPACE_DTYPE = np.dtype([
    # one environment's state while it is being stepped (copied in and out of PhysicsState)
    ("pos", np.float64, (3,)),  # trunk origin, world, m
    ("quat", np.float64, (4,)),  # wxyz
    ("q", np.float64, (12,)),  # rad
    ("v", np.float64, (3,)),  # trunk origin velocity, world, m/s
    ("wb", np.float64, (3,)),  # trunk angular velocity, trunk frame, rad/s
    ("qd", np.float64, (12,)),  # rad/s
    ("slip", np.float64, (4, 2)),  # foot stick-spring stretch, m
    ("body_slip", np.float64, (NUM_BODY_POINTS, 2)),  # trunk/knee/shank stick-spring stretch, m
    ("contact", np.float64, (4,)),  # 1.0 where the foot touches the ground
    ("torque", np.float64, (12,)),  # motor torque summed over substeps, N·m
    ("power", np.float64),  # sum |tau qd| summed over substeps, W
    ("body_touch", np.float64),  # 1.0 if trunk/knee touched the ground this step
    # per-env parameters of the env being stepped
    ("friction", np.float64),
    ("added_mass", np.float64),
    ("strength", np.float64),
    ("kp_scale", np.float64),
    ("kd_scale", np.float64),
    ("target", np.float64, (12,)),  # PD targets (rad) or torque commands (N·m) of this step
    # dynamics scratch
    ("R", np.float64, (13, 3, 3)),  # body -> world rotation
    ("p", np.float64, (13, 3)),  # body origin relative to the trunk origin, world axes, m
    ("S", np.float64, (12, 6)),  # joint motion subspace in O
    ("Ib", np.float64, (13, 10)),  # body spatial inertia at O: m, h = m c (3), I about O (xx yy zz xy xz yz)
    ("Ic", np.float64, (13, 10)),  # composite inertia at O
    ("V", np.float64, (13, 6)),  # body spatial velocity in O
    ("A", np.float64, (13, 6)),  # bias acceleration (nu_dot = 0, gravity as base acceleration)
    ("f", np.float64, (13, 6)),  # body force (RNEA), then subtree force
    ("H", np.float64, (18, 18)),  # mass matrix, internal coordinates
    ("Q", np.float64, (18,)),  # applied generalised force, internal coordinates
    ("C", np.float64, (18,)),  # bias force
    ("acc", np.float64, (18,)),  # nu_dot, internal coordinates (linear part: spatial)
    ("L", np.float64, (4, 3, 3)),  # leg block Cholesky factors
    ("Y", np.float64, (4, 3, 6)),  # L^-1 H_leg,trunk
    ("y", np.float64, (4, 3)),  # L^-1 r_leg
    ("Mb", np.float64, (6, 6)),  # trunk Schur complement / its Cholesky factor
    ("rb", np.float64, (6,)),
], align=True)
"""Per-thread scratch record of the scalar kernels: one environment's state and all
intermediate quantities (field comments: frame, unit)."""


@nb.njit(**JIT)
def new_workspace():
    """A fresh workspace buffer: a 1-element array of ``WORKSPACE_DTYPE``.

    Allocate one per kernel call (per thread) and pass it to ``control_step_env`` for every
    environment; helpers take the record ``ws = buf[0]`` (passed by pointer, no refcounting).
    """
    return np.zeros(1, dtype=WORKSPACE_DTYPE)


# ----------------------------------------------------------------------------- SIMD: a block of envs

BLOCK = 32
"""Environments per block (lanes). 32, not 16: LLVM treats loops of fewer than 17 iterations as
"tiny" and then refuses the runtime alias checks some lane loops need (measured: the solve
stayed scalar with 16)."""

_f8 = np.float64
BLOCK_DTYPE = np.dtype([
    ("pos", _f8, (3, BLOCK)), ("quat", _f8, (4, BLOCK)), ("q", _f8, (12, BLOCK)),
    ("v", _f8, (3, BLOCK)), ("wb", _f8, (3, BLOCK)), ("qd", _f8, (12, BLOCK)),
    ("slip", _f8, (4, 2, BLOCK)), ("body_slip", _f8, (NUM_BODY_POINTS, 2, BLOCK)), ("contact", _f8, (4, BLOCK)),
    ("torque", _f8, (12, BLOCK)),
    ("power", _f8, (BLOCK,)), ("touch", _f8, (BLOCK,)),
    ("friction", _f8, (BLOCK,)), ("mass0", _f8, (BLOCK,)), ("strength", _f8, (BLOCK,)),
    ("kp_scale", _f8, (BLOCK,)), ("kd_scale", _f8, (BLOCK,)),
    ("target", _f8, (12, BLOCK)), ("cq", _f8, (12, BLOCK)), ("sq", _f8, (12, BLOCK)),
    ("R", _f8, (13, 3, 3, BLOCK)), ("p", _f8, (13, 3, BLOCK)), ("S", _f8, (12, 6, BLOCK)),
    ("I", _f8, (13, 10, BLOCK)),  # body spatial inertia at O, then composite (10-parameter form)
    ("V", _f8, (13, 6, BLOCK)), ("A", _f8, (13, 6, BLOCK)), ("f", _f8, (13, 6, BLOCK)),
    ("F", _f8, (12, 6, BLOCK)),  # composite inertia times S_j = H[trunk, j]
    ("Hl", _f8, (4, 3, 3, BLOCK)),  # leg blocks of H
    ("Q", _f8, (18, BLOCK)), ("C", _f8, (18, BLOCK)), ("acc", _f8, (18, BLOCK)),
    ("L", _f8, (4, 3, 3, BLOCK)), ("Y", _f8, (4, 3, 6, BLOCK)), ("y", _f8, (4, 3, BLOCK)),
    ("Mb", _f8, (6, 6, BLOCK)), ("rb", _f8, (6, BLOCK)),
], align=True)
"""Per-thread scratch record of the SIMD kernels: the same quantities as ``WORKSPACE_DTYPE`` for
``BLOCK`` environments, lane index last. Differences: ``touch`` is ``body_touch``; ``mass0`` is
the trunk mass with the env's added mass (``body_mass[0] + added_mass``); ``cq``/``sq`` hold the
joint cosines/sines (computed at gather, advanced by the integrator); ``I`` holds the body
inertias, then the composite ones (``Ib``/``Ic``); the mass matrix is kept in its nonzero
pieces: ``I[0]`` (trunk 6x6, composite), ``F`` (trunk-joint coupling ``H[0:6, 6 + j]``) and ``Hl``
(the legs' 3x3 blocks; legs do not couple)."""


@nb.njit(**JITB)
def new_block_workspace():
    """A block workspace buffer (1-element array of ``BLOCK_DTYPE``); use ``buf[0]``.

    Allocate one per kernel call (per thread) and pass it to ``control_step_block``."""
    return np.zeros(1, dtype=BLOCK_DTYPE)
