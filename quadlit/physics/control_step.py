"""One control step of the quadruped, composed from the stages in textbook order, for every
physics substep: kinematics -> actuators -> contacts (feet, then trunk/knees/shanks) ->
dynamics -> integration; then the non-finite check and the agent-centred shift.

Pairs (scalar reference <-> SIMD twin over a block of ``BLOCK`` envs, same results to rounding
(about 1e-12 after a control step, not bit for bit), checked stage by stage in
``tests/physics/test_simd.py``):

* ``substep`` <-> ``substep_block``: one physics substep (stages of ``kinematics``,
  ``actuators``, ``contacts``, ``dynamics``, ``integration``);
* ``load_env`` <-> ``gather_block``: one env's row of ``PhysicsState`` (and its parameters and
  motor commands) into the workspace at the start of a control step;
* ``store_env`` <-> ``scatter_block``: back into ``PhysicsState`` at its end, with the
  non-finite/divergence check and the agent-centred shift per env (``flag_nonfinite`` is shared);
* ``control_step_env`` <-> ``control_step_block``: the building blocks a task's own fused
  ``@njit(nogil=True)`` kernel calls inside its env loop;
* ``step_shard`` <-> ``step_shard_block`` (envs ``lo..hi-1``, nogil: one shard per ``ShardPool``
  thread) and ``step_parallel`` <-> ``step_parallel_block`` (Numba ``prange``).

The SIMD path is about 2.7x faster on one core; public state stays one row per environment, so a
block is gathered at the start of a control step and scattered back at its end.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from quadlit.physics.actuators import joint_forces, joint_forces_block, motor_command
from quadlit.physics.contacts import (
    body_ground_contacts,
    body_ground_contacts_block,
    body_touches_ground,
    body_touches_ground_block,
    ground_contacts,
    ground_contacts_block,
)
from quadlit.physics.dynamics import (
    bias_and_mass_matrix,
    bias_and_mass_matrix_block,
    solve_accelerations,
    solve_accelerations_block,
)
from quadlit.physics.integration import integrate, integrate_block
from quadlit.physics.kinematics import kinematics, kinematics_block, velocities, velocities_block
from quadlit.physics.model import EnvParams, RobotModel, SimParams
from quadlit.physics.state import NUM_BODY_POINTS, STATUS_NONFINITE, STATUS_OK, PhysicsState
from quadlit.physics.workspace import BLOCK, JIT, JITB, new_block_workspace, new_workspace

# A state beyond these bounds is treated as diverged (flagged like a non-finite one).
MAX_LIN_VEL = 100.0  # m/s
MAX_ANG_VEL = 1.0e3  # rad/s (trunk and joints)
MAX_HEIGHT = 1.0e3  # m


# ----------------------------------------------------------------------------- one substep

@nb.njit(**JIT)
def substep(model: RobotModel, sim: SimParams, ws):
    """One physics substep of the env held in ``ws`` with the motor commands ``ws.target``.
    SIMD twin: ``substep_block``."""
    kinematics(model, ws)
    velocities(model, ws)
    joint_forces(model, sim, ws)
    if sim.contacts != 0:
        ground_contacts(model, sim, ws)
        body_ground_contacts(model, sim, ws)
    if body_touches_ground(model, ws):
        ws.body_touch = 1.0
    bias_and_mass_matrix(model, sim.gravity, ws)
    solve_accelerations(ws)
    integrate(sim, ws)


@nb.njit(inline="always", **JITB)
def substep_block(model: RobotModel, sim: SimParams, w):
    """One physics substep of the block in ``w``. Scalar reference: ``substep``.

    Inlined into its caller at Numba IR level (as is ``control_step_block``): compiled as
    functions of their own, LLVM would optimise and emit the whole stage tree once for each of
    them and again for the task's step kernel (4.5 s of a cold start; the same machine code
    speed, bit-identical results: docs/benchmarks.md, start-up)."""
    kinematics_block(model, w)
    velocities_block(model, w)
    joint_forces_block(model, sim, w)
    ground_contacts_block(model, sim, w)
    body_ground_contacts_block(model, sim, w)
    body_touches_ground_block(model, w)
    bias_and_mass_matrix_block(model, sim.gravity, w)
    solve_accelerations_block(w)
    integrate_block(sim, w)


# ----------------------------------------------------------------------------- state in

@nb.njit(**JIT)
def load_env(model: RobotModel, sim: SimParams, envp: EnvParams, st: PhysicsState, i, action, ws):
    """Env ``i``'s state and parameters into ``ws``, the step's accumulators zeroed, and its
    motor commands ``ws.target`` from ``action`` (12,). SIMD twin: ``gather_block``."""
    for k in range(3):
        ws.pos[k] = st.base_pos[i, k]
        ws.v[k] = st.base_lin_vel[i, k]
        ws.wb[k] = st.base_ang_vel[i, k]
    for k in range(4):
        ws.quat[k] = st.base_quat[i, k]
        ws.slip[k, 0] = st.foot_slip[i, k, 0]
        ws.slip[k, 1] = st.foot_slip[i, k, 1]
        ws.contact[k] = 0.0
    for k in range(NUM_BODY_POINTS):
        ws.body_slip[k, 0] = st.body_slip[i, k, 0]
        ws.body_slip[k, 1] = st.body_slip[i, k, 1]
    for j in range(12):
        ws.q[j] = st.joint_pos[i, j]
        ws.qd[j] = st.joint_vel[i, j]
        ws.torque[j] = 0.0
    ws.power = 0.0
    ws.body_touch = 0.0
    ws.friction = envp.friction[i]
    ws.added_mass = envp.added_mass[i]
    ws.strength = envp.motor_strength[i]
    ws.kp_scale = envp.kp_scale[i]
    ws.kd_scale = envp.kd_scale[i]
    for j in range(12):
        ws.target[j] = motor_command(model, sim, ws.strength, j, action[j])


@nb.njit(**JITB)
def gather_block(model: RobotModel, sim: SimParams, envp: EnvParams, st: PhysicsState, actions, lo, hi, w):
    """Copy envs lo..hi-1 (at most BLOCK) into the lanes; empty lanes get a copy of env lo.
    Scalar reference: ``load_env`` (the block also gets the joint cosines/sines ``cq``/``sq``)."""
    for l in range(BLOCK):
        i = lo + l if lo + l < hi else lo
        for k in range(3):
            w.pos[k, l] = st.base_pos[i, k]
            w.v[k, l] = st.base_lin_vel[i, k]
            w.wb[k, l] = st.base_ang_vel[i, k]
        for k in range(4):
            w.quat[k, l] = st.base_quat[i, k]
            w.slip[k, 0, l] = st.foot_slip[i, k, 0]
            w.slip[k, 1, l] = st.foot_slip[i, k, 1]
            w.contact[k, l] = 0.0
        for k in range(NUM_BODY_POINTS):
            w.body_slip[k, 0, l] = st.body_slip[i, k, 0]
            w.body_slip[k, 1, l] = st.body_slip[i, k, 1]
        w.strength[l] = envp.motor_strength[i]
        for j in range(12):
            qj = st.joint_pos[i, j]
            w.q[j, l] = qj
            w.cq[j, l] = math.cos(qj)
            w.sq[j, l] = math.sin(qj)
            w.qd[j, l] = st.joint_vel[i, j]
            w.torque[j, l] = 0.0
            w.target[j, l] = motor_command(model, sim, w.strength[l], j, actions[i, j])
        w.power[l] = 0.0
        w.touch[l] = 0.0
        w.friction[l] = envp.friction[i]
        w.mass0[l] = model.body_mass[0] + envp.added_mass[i]
        w.kp_scale[l] = envp.kp_scale[i]
        w.kd_scale[l] = envp.kd_scale[i]


# ----------------------------------------------------------------------------- state out

@nb.njit(**JIT)
def _ws_ok(ws):
    """Finite and within the divergence bounds (NaN fails every comparison). SIMD twin: ``_lane_ok``."""
    ok = abs(ws.pos[0]) < MAX_HEIGHT and abs(ws.pos[1]) < MAX_HEIGHT and abs(ws.pos[2]) < MAX_HEIGHT
    for k in range(4):
        ok = ok and abs(ws.quat[k]) <= 1.0 + 1e-6
        ok = ok and abs(ws.slip[k, 0]) < MAX_HEIGHT and abs(ws.slip[k, 1]) < MAX_HEIGHT
    for k in range(NUM_BODY_POINTS):
        ok = ok and abs(ws.body_slip[k, 0]) < MAX_HEIGHT and abs(ws.body_slip[k, 1]) < MAX_HEIGHT
    for k in range(3):
        ok = ok and abs(ws.v[k]) < MAX_LIN_VEL and abs(ws.wb[k]) < MAX_ANG_VEL
    for j in range(12):
        ok = ok and abs(ws.q[j]) < MAX_ANG_VEL and abs(ws.qd[j]) < MAX_ANG_VEL
        ok = ok and abs(ws.torque[j]) < 1e12
    return ok


@nb.njit(**JITB)
def _lane_ok(w, l):
    """``_ws_ok`` for lane ``l`` of a block."""
    ok = abs(w.pos[0, l]) < MAX_HEIGHT and abs(w.pos[1, l]) < MAX_HEIGHT and abs(w.pos[2, l]) < MAX_HEIGHT
    for k in range(4):
        ok = ok and abs(w.quat[k, l]) <= 1.0 + 1e-6
        ok = ok and abs(w.slip[k, 0, l]) < MAX_HEIGHT and abs(w.slip[k, 1, l]) < MAX_HEIGHT
    for k in range(NUM_BODY_POINTS):
        ok = ok and abs(w.body_slip[k, 0, l]) < MAX_HEIGHT and abs(w.body_slip[k, 1, l]) < MAX_HEIGHT
    for k in range(3):
        ok = ok and abs(w.v[k, l]) < MAX_LIN_VEL and abs(w.wb[k, l]) < MAX_ANG_VEL
    for j in range(12):
        ok = ok and abs(w.q[j, l]) < MAX_ANG_VEL and abs(w.qd[j, l]) < MAX_ANG_VEL
        ok = ok and abs(w.torque[j, l]) < 1e12
    return ok


@nb.njit(**JIT)
def flag_nonfinite(st: PhysicsState, i):
    """Env ``i`` produced a non-finite or diverged state: keep its start-of-step pose (still in
    ``st``), at rest, and flag it; the task resets it."""
    for k in range(3):
        st.base_lin_vel[i, k] = 0.0
        st.base_ang_vel[i, k] = 0.0
    for k in range(4):
        st.foot_slip[i, k, 0] = 0.0
        st.foot_slip[i, k, 1] = 0.0
        st.foot_contact[i, k] = False
    for k in range(NUM_BODY_POINTS):
        st.body_slip[i, k, 0] = 0.0
        st.body_slip[i, k, 1] = 0.0
    for j in range(12):
        st.joint_vel[i, j] = 0.0
        st.joint_torque[i, j] = 0.0
    st.motor_power[i] = 0.0
    st.status[i] = STATUS_NONFINITE


@nb.njit(**JIT)
def store_env(sim: SimParams, st: PhysicsState, i, ws):
    """Write the env in ``ws`` back to row ``i`` of ``st`` (outputs averaged over the substeps)
    if it is finite and within bounds, shifted back over the origin (agent-centred world);
    otherwise ``flag_nonfinite``. Returns the env's status. SIMD twin: ``scatter_block``."""
    inv_sub = 1.0 / sim.substeps
    if _ws_ok(ws):
        # agent-centred world: move the trunk back over the origin, remember where it was
        st.world_offset[i, 0] += ws.pos[0]
        st.world_offset[i, 1] += ws.pos[1]
        st.base_pos[i, 0] = 0.0
        st.base_pos[i, 1] = 0.0
        st.base_pos[i, 2] = ws.pos[2]
        for k in range(3):
            st.base_lin_vel[i, k] = ws.v[k]
            st.base_ang_vel[i, k] = ws.wb[k]
        for k in range(4):
            st.base_quat[i, k] = ws.quat[k]
            st.foot_slip[i, k, 0] = ws.slip[k, 0]
            st.foot_slip[i, k, 1] = ws.slip[k, 1]
            st.foot_contact[i, k] = ws.contact[k] > 0.0
        for k in range(NUM_BODY_POINTS):
            st.body_slip[i, k, 0] = ws.body_slip[k, 0]
            st.body_slip[i, k, 1] = ws.body_slip[k, 1]
        for j in range(12):
            st.joint_pos[i, j] = ws.q[j]
            st.joint_vel[i, j] = ws.qd[j]
            st.joint_torque[i, j] = ws.torque[j] * inv_sub
        st.motor_power[i] = ws.power * inv_sub
        st.body_contact[i] = ws.body_touch > 0.0
        st.status[i] = STATUS_OK
        return STATUS_OK
    flag_nonfinite(st, i)
    st.body_contact[i] = ws.body_touch > 0.0
    return STATUS_NONFINITE


@nb.njit(**JITB)
def scatter_block(sim: SimParams, st: PhysicsState, lo, hi, w):
    """``store_env`` for lanes ``0..hi-lo-1`` into rows ``lo..hi-1``; returns how many were
    flagged non-finite."""
    inv_sub = 1.0 / sim.substeps
    flagged = 0
    for l in range(hi - lo):
        i = lo + l
        st.body_contact[i] = w.touch[l] > 0.0
        if _lane_ok(w, l):
            st.world_offset[i, 0] += w.pos[0, l]
            st.world_offset[i, 1] += w.pos[1, l]
            st.base_pos[i, 0] = 0.0
            st.base_pos[i, 1] = 0.0
            st.base_pos[i, 2] = w.pos[2, l]
            for k in range(3):
                st.base_lin_vel[i, k] = w.v[k, l]
                st.base_ang_vel[i, k] = w.wb[k, l]
            for k in range(4):
                st.base_quat[i, k] = w.quat[k, l]
                st.foot_slip[i, k, 0] = w.slip[k, 0, l]
                st.foot_slip[i, k, 1] = w.slip[k, 1, l]
                st.foot_contact[i, k] = w.contact[k, l] > 0.0
            for k in range(NUM_BODY_POINTS):
                st.body_slip[i, k, 0] = w.body_slip[k, 0, l]
                st.body_slip[i, k, 1] = w.body_slip[k, 1, l]
            for j in range(12):
                st.joint_pos[i, j] = w.q[j, l]
                st.joint_vel[i, j] = w.qd[j, l]
                st.joint_torque[i, j] = w.torque[j, l] * inv_sub
            st.motor_power[i] = w.power[l] * inv_sub
            st.status[i] = STATUS_OK
        else:
            flag_nonfinite(st, i)
            flagged += 1
    return flagged


# ----------------------------------------------------------------------------- control step

@nb.njit(**JIT)
def _control_step_env(model, sim, envp, st, i, action, ws):
    load_env(model, sim, envp, st, i, action, ws)
    for _ in range(sim.substeps):
        substep(model, sim, ws)
    return store_env(sim, st, i, ws)


@nb.njit(**JIT)
def control_step_env(model: RobotModel, sim: SimParams, envp: EnvParams, st: PhysicsState, i, action, ws_buf):
    """Advance environment ``i`` by one control step (``sim.substeps`` physics substeps).

    Args:
        model: the robot record. sim: batch simulation parameters. envp: per-env parameters.
        st: the batch state; row ``i`` is read and written (also its outputs ``foot_contact``,
            ``body_contact``, ``joint_torque``, ``motor_power``, ``status``).
        action: (12,) float32/float64 in [-1, 1] (clipped; NaN and ±inf treated as 0), interpreted by
            ``sim.motor_mode``.
        ws_buf: a workspace buffer from ``new_workspace()`` (one per thread, reused for every
            env of the kernel call).
    Returns: ``STATUS_OK`` (0) or ``STATUS_NONFINITE`` (1: the step produced a non-finite or
        diverged state; the env keeps its start-of-step pose with zero velocities and the
        task should reset it).
    """
    return _control_step_env(model, sim, envp, st, i, action, ws_buf[0])


@nb.njit(inline="always", **JITB)
def control_step_block(model: RobotModel, sim: SimParams, envp: EnvParams, st: PhysicsState, actions, lo, hi, wbuf):
    """Advance envs ``lo..hi-1`` (``hi - lo <= BLOCK``) by one control step with SIMD code.

    Same contract as ``control_step_env`` (its scalar reference) for each env (status, outputs,
    agent-centred shift); ``actions``: (N, 12) in [-1, 1]; ``wbuf`` from ``new_block_workspace()``.
    Returns: number of envs flagged non-finite.
    """
    w = wbuf[0]
    gather_block(model, sim, envp, st, actions, lo, hi, w)
    for _ in range(sim.substeps):
        substep_block(model, sim, w)
    return scatter_block(sim, st, lo, hi, w)


# ----------------------------------------------------------------------------- shards and prange

@nb.njit(**JIT)
def step_shard(model: RobotModel, sim: SimParams, envp: EnvParams, st: PhysicsState, actions, lo, hi):
    """Advance envs ``lo..hi-1`` by one control step (nogil: run shards on a ``ShardPool``).
    SIMD twin: ``step_shard_block``.

    Args: actions: (N, 12) float32/float64 in [-1, 1].
    Returns: number of envs flagged non-finite in this shard.
    """
    buf = new_workspace()
    ws = buf[0]
    flagged = 0
    for i in range(lo, hi):
        flagged += _control_step_env(model, sim, envp, st, i, actions[i], ws)
    return flagged + 0 * buf.size  # buf stays alive while ws (a view into it) is used


@nb.njit(**JITB)
def step_shard_block(model: RobotModel, sim: SimParams, envp: EnvParams, st: PhysicsState, actions, lo, hi):
    """``step_shard`` (its scalar reference) with the SIMD block kernel: envs ``lo..hi-1`` in
    blocks of ``BLOCK``. A separate function, not inlined into ``step_parallel_block``'s
    ``prange`` body: inlined there, the lane loops lost their vectorisation (measured)."""
    wbuf = new_block_workspace()
    flagged = 0
    for start in range(lo, hi, BLOCK):
        stop = start + BLOCK if start + BLOCK < hi else hi
        flagged += control_step_block(model, sim, envp, st, actions, start, stop, wbuf)
    return flagged


@nb.njit(parallel=True, **JIT)
def step_parallel(model_buf, sim: SimParams, envp: EnvParams, st: PhysicsState, actions, num_chunks):
    """All envs by one control step with Numba ``prange`` over ``num_chunks`` contiguous chunks.
    SIMD twin: ``step_parallel_block``.

    ``model_buf``: the robot record as a 1-element ``MODEL_DTYPE`` array
    (``np.array([model])``; Numba's parallel backend cannot take a bare record argument).
    Returns the number of flagged envs."""
    n = st.base_pos.shape[0]
    counts = np.zeros(num_chunks, dtype=np.int64)
    for c in nb.prange(num_chunks):
        lo = (c * n) // num_chunks
        hi = ((c + 1) * n) // num_chunks
        counts[c] = step_shard(model_buf[0], sim, envp, st, actions, lo, hi)
    return counts.sum()


@nb.njit(parallel=True, **JITB)
def step_parallel_block(model_buf, sim: SimParams, envp: EnvParams, st: PhysicsState, actions):
    """All envs, blocks spread over Numba threads with ``prange`` (``model_buf``: the record as
    a 1-element array, see ``step_parallel``, its scalar reference)."""
    n = st.base_pos.shape[0]
    nblocks = (n + BLOCK - 1) // BLOCK
    counts = np.zeros(nblocks, dtype=np.int64)
    for k in nb.prange(nblocks):
        lo = k * BLOCK
        hi = lo + BLOCK if lo + BLOCK < n else n
        counts[k] = step_shard_block(model_buf[0], sim, envp, st, actions, lo, hi)
    return counts.sum()
