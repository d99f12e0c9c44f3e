"""Quadruped physics: robot record, per-env state, fused Numba control-step kernels, MJCF export.

Typical use::

    model = a1_model()                     # immutable record (numpy.record of MODEL_DTYPE)
    sim = SimParams()                      # dt 1 ms x 20 substeps = 50 Hz control
    envp = EnvParams.allocate(n)           # per-env friction, added mass, motor strength, PD scales
    state = PhysicsState.allocate(n); state.set_standing(model)
    flagged = step(model, sim, envp, state, actions, pool)   # actions (n, 12) in [-1, 1]

Modules, one per stage of a physics substep in textbook order, each holding a scalar reference
kernel (one env) next to its SIMD twin (a block of ``BLOCK`` envs, suffix ``_block``):

* ``workspace``: compile options (``JIT``, ``JITB``), the scratch records, frame conventions;
* ``spatial``: spatial-vector algebra helpers;
* ``kinematics``: body poses, joint subspaces, body inertias and velocities in frame O; the
  per-env frame helpers for tasks;
* ``actuators``: motors, joint damping and joint limits (generalised joint forces);
* ``contacts``: ground forces with friction on the feet, trunk corners, knees and shanks;
  trunk/knee ground-touch detection (the failure rule);
* ``dynamics``: RNEA bias forces, CRBA mass matrix, block Cholesky solve;
* ``integration``: semi-implicit Euler, quaternion exponential map;
* ``control_step``: the stages composed into a substep and a control step (gather/scatter,
  non-finite check, agent-centred shift), scalar and SIMD, per env, per shard, over ``prange``;
* ``aba``: the articulated-body algorithm, a comparison for the benchmark and tests only;
* ``api``: plain-Python entry points (validation at the edge); ``model``, ``state``, ``mjcf``.

Inside a task's own fused ``@njit(nogil=True)`` shard kernel, step envs with either

* ``control_step_block(model, sim, envp, st, actions, lo, hi, wbuf)`` (SIMD, ``hi - lo <=
  BLOCK`` envs at once, ``wbuf = new_block_workspace()`` once per kernel call; the fast path), or
* ``control_step_env(model, sim, envp, st, i, actions[i], ws_buf)`` (scalar reference, one env,
  ``ws_buf = new_workspace()`` once per kernel call),

then read per-env results with the helpers (``gravity_in_trunk``, ``lin_vel_in_trunk``,
``ang_vel_in_trunk``, ``trunk_rotation``, ``st.foot_contact``, ``st.body_contact``,
``st.joint_torque``, ``st.motor_power``, ``st.status``, ``leg_points_env``).
"""

from quadlit.physics.actuators import apply_motor_torques
from quadlit.physics.api import energy_and_momentum, forward_dynamics, forward_kinematics, mass_matrix, step
from quadlit.physics.control_step import (
    control_step_block,
    control_step_env,
    step_parallel,
    step_parallel_block,
    step_shard,
    step_shard_block,
)
from quadlit.physics.kinematics import (
    ang_vel_in_trunk,
    gravity_in_trunk,
    leg_points_env,
    lin_vel_in_trunk,
    trunk_rotation,
)
from quadlit.physics.model import (
    BODY_NAMES,
    JOINT_NAMES,
    LEG_NAMES,
    MOTOR_PD,
    MOTOR_TORQUE,
    NUM_DOF,
    NUM_JOINTS,
    MODEL_DTYPE,
    EnvParams,
    RobotModel,
    SimParams,
    a1_model,
    replace_model,
    validate_sim_params,
)
from quadlit.physics.state import STATUS_NONFINITE, STATUS_OK, PhysicsState
from quadlit.physics.workspace import BLOCK, BLOCK_DTYPE, WORKSPACE_DTYPE, new_block_workspace, new_workspace

__all__ = [
    "BODY_NAMES", "JOINT_NAMES", "LEG_NAMES", "MOTOR_PD", "MOTOR_TORQUE", "NUM_DOF", "NUM_JOINTS",
    "EnvParams", "PhysicsState", "RobotModel", "MODEL_DTYPE", "SimParams", "WORKSPACE_DTYPE", "STATUS_OK", "STATUS_NONFINITE",
    "a1_model", "replace_model", "validate_sim_params", "new_workspace", "control_step_env", "step_shard",
    "step_parallel", "step", "apply_motor_torques", "gravity_in_trunk", "lin_vel_in_trunk",
    "ang_vel_in_trunk", "trunk_rotation", "leg_points_env", "forward_kinematics",
    "mass_matrix", "forward_dynamics", "energy_and_momentum", "BLOCK", "BLOCK_DTYPE",
    "control_step_block", "new_block_workspace", "step_shard_block", "step_parallel_block",
]
