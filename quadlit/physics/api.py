"""Plain-Python entry points over batches of robots (validation at the edge, Numba inside).

Generalised coordinates here follow MuJoCo's free joint: velocity ``(v_world (3),
omega_trunk (3), qd (12))``, acceleration its time derivative.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from quadlit.envs.pool import ShardPool
from quadlit.physics.aba import aba_accelerations, new_aba_scratch, step_shard_aba
from quadlit.physics.control_step import step_parallel, step_parallel_block, step_shard, step_shard_block
from quadlit.physics.dynamics import bias_and_mass_matrix, solve_accelerations
from quadlit.physics.kinematics import kinematics, leg_points, velocities
from quadlit.physics.model import MODEL_DTYPE, EnvParams, RobotModel, SimParams, validate_sim_params
from quadlit.physics.state import PhysicsState
from quadlit.physics.workspace import JIT, new_workspace


def _rows(a, n: int, width: int, name: str) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    if a.ndim == 1:
        a = a[None]
    if a.shape != (n, width):
        raise ValueError(f"{name} must have shape ({n}, {width}) or ({width},), got {a.shape}")
    return a


@nb.njit(**JIT)
def _set_robot(ws, n, quat, q, v, wb, qd):
    for k in range(4):
        ws.quat[k] = quat[n, k]
    for k in range(3):
        ws.pos[k] = 0.0
        ws.v[k] = v[n, k]
        ws.wb[k] = wb[n, k]
    for j in range(12):
        ws.q[j] = q[n, j]
        ws.qd[j] = qd[n, j]
    ws.added_mass = 0.0


@nb.njit(**JIT)
def _fk_kernel(model, base_pos, quat, q, out):
    buf = new_workspace()
    ws = buf[0]
    zero = np.zeros((quat.shape[0], 12))
    for n in range(base_pos.shape[0]):
        _set_robot(ws, n, quat, q, zero, zero, zero)
        for k in range(3):
            ws.pos[k] = base_pos[n, k]
        leg_points(model, ws, out[n])
    return buf.size


def forward_kinematics(model: RobotModel, base_pos, base_quat, q) -> np.ndarray:
    """World positions of each leg's hip joint, thigh joint, knee joint and foot centre.

    Args:
        base_pos: (N, 3) or (3,) trunk origin, m. base_quat: (N, 4) or (4,) wxyz (normalised
            here). q: (N, 12) or (12,) joint angles, rad.
    Returns: (N, 4, 4, 3) float64: [env, leg (FL FR RL RR), point (hip, thigh, knee, foot), xyz].
    """
    q = np.ascontiguousarray(q, dtype=np.float64)
    n = 1 if q.ndim == 1 else q.shape[0]
    q = _rows(q, n, 12, "q")
    pos = _rows(base_pos, n, 3, "base_pos")
    quat = _rows(base_quat, n, 4, "base_quat")
    quat = quat / np.linalg.norm(quat, axis=1, keepdims=True)
    out = np.zeros((n, 4, 4, 3))
    _fk_kernel(model, pos, quat, q, out)
    return out


@nb.njit(**JIT)
def _mass_matrix_kernel(model, quat, q, H_out, R_out):
    buf = new_workspace()
    ws = buf[0]
    zero = np.zeros((quat.shape[0], 12))
    for n in range(quat.shape[0]):
        _set_robot(ws, n, quat, q, zero, zero, zero)
        kinematics(model, ws)
        velocities(model, ws)
        bias_and_mass_matrix(model, 0.0, ws)
        H_out[n] = ws.H
        R_out[n] = ws.R[0]
    return buf.size


def _to_mujoco(H: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Internal (omega_world, v, qd) -> MuJoCo (v, omega_body, qd): H_mj = T^T H T."""
    n = H.shape[0]
    T = np.zeros((n, 18, 18))
    T[:, 0:3, 3:6] = R
    T[:, 3:6, 0:3] = np.eye(3)
    T[:, 6:, 6:] = np.eye(12)
    return np.einsum("nra,nrs,nsb->nab", T, H, T)


def mass_matrix(model: RobotModel, base_quat, q) -> np.ndarray:
    """Joint-space mass matrix (armature included), MuJoCo coordinates (as ``mj_fullM``).

    Returns: (N, 18, 18) float64, kg / kg·m / kg·m².
    """
    q = np.ascontiguousarray(q, dtype=np.float64)
    n = 1 if q.ndim == 1 else q.shape[0]
    q = _rows(q, n, 12, "q")
    quat = _rows(base_quat, n, 4, "base_quat")
    quat = quat / np.linalg.norm(quat, axis=1, keepdims=True)
    H = np.zeros((n, 18, 18))
    R = np.zeros((n, 3, 3))
    _mass_matrix_kernel(model, quat, q, H, R)
    return _to_mujoco(H, R)


@nb.njit(**JIT)
def _forward_dynamics_kernel(model, gravity, quat, q, v, wb, qd, tau, use_aba, out):
    buf = new_workspace()
    aba_buf = new_aba_scratch()
    ws = buf[0]
    for n in range(quat.shape[0]):
        _set_robot(ws, n, quat, q, v, wb, qd)
        kinematics(model, ws)
        velocities(model, ws)
        for k in range(6):
            ws.Q[k] = 0.0
        for j in range(12):
            ws.Q[6 + j] = tau[n, j] - model.joint_damping[j] * qd[n, j]
        if use_aba:
            aba_accelerations(model, gravity, ws, aba_buf[0])
        else:
            bias_and_mass_matrix(model, gravity, ws)
            solve_accelerations(ws)
        acc, V, R0 = ws.acc, ws.V, ws.R[0]
        w0, w1, w2 = V[0, 0], V[0, 1], V[0, 2]
        out[n, 0] = acc[3] + w1 * v[n, 2] - w2 * v[n, 1]
        out[n, 1] = acc[4] + w2 * v[n, 0] - w0 * v[n, 2]
        out[n, 2] = acc[5] + w0 * v[n, 1] - w1 * v[n, 0]
        for r in range(3):
            out[n, 3 + r] = R0[0, r] * acc[0] + R0[1, r] * acc[1] + R0[2, r] * acc[2]
        for j in range(12):
            out[n, 6 + j] = acc[6 + j]
    return buf.size + aba_buf.size


def forward_dynamics(model: RobotModel, base_quat, q, base_lin_vel, base_ang_vel, joint_vel, joint_torque,
                     gravity: float = 9.81, method: str = "crba") -> np.ndarray:
    """Generalised accelerations with no contacts and no joint limits (MuJoCo's ``qacc``).

    Args:
        base_quat (N, 4) wxyz; q (N, 12) rad; base_lin_vel (N, 3) world m/s;
        base_ang_vel (N, 3) trunk frame rad/s; joint_vel (N, 12) rad/s;
        joint_torque (N, 12) N·m (joint damping of the model is applied on top);
        method: "crba" (CRBA + block Cholesky) or "aba" (articulated-body algorithm).
    Returns: (N, 18): trunk origin acceleration (world, m/s²), angular acceleration
        (trunk frame, rad/s²), joint accelerations (rad/s²).
    """
    if method not in ("crba", "aba"):
        raise ValueError(f"method must be 'crba' or 'aba', got {method!r}")
    q = np.ascontiguousarray(q, dtype=np.float64)
    n = 1 if q.ndim == 1 else q.shape[0]
    q = _rows(q, n, 12, "q")
    quat = _rows(base_quat, n, 4, "base_quat")
    quat = quat / np.linalg.norm(quat, axis=1, keepdims=True)
    args = (_rows(base_lin_vel, n, 3, "base_lin_vel"), _rows(base_ang_vel, n, 3, "base_ang_vel"),
            _rows(joint_vel, n, 12, "joint_vel"), _rows(joint_torque, n, 12, "joint_torque"))
    out = np.zeros((n, 18))
    _forward_dynamics_kernel(model, float(gravity), quat, q, *args, method == "aba", out)
    return out


@nb.njit(**JIT)
def _energy_kernel(model, gravity, added_mass, st, out):
    buf = new_workspace()
    ws = buf[0]
    for n in range(st.base_pos.shape[0]):
        _set_robot(ws, n, st.base_quat, st.joint_pos, st.base_lin_vel, st.base_ang_vel, st.joint_vel)
        ws.added_mass = added_mass[n]
        kinematics(model, ws)
        velocities(model, ws)
        ke = 0.0
        mass = 0.0
        h0 = h1 = h2 = 0.0
        L0 = L1 = L2 = P0 = P1 = P2 = 0.0
        for b in range(13):
            V = ws.V
            Ib = ws.Ib
            w0, w1, w2, v0, v1, v2 = V[b, 0], V[b, 1], V[b, 2], V[b, 3], V[b, 4], V[b, 5]
            m = Ib[b, 0]
            c0, c1, c2 = Ib[b, 1], Ib[b, 2], Ib[b, 3]
            n0 = Ib[b, 4] * w0 + Ib[b, 7] * w1 + Ib[b, 8] * w2 + (c1 * v2 - c2 * v1)
            n1 = Ib[b, 7] * w0 + Ib[b, 5] * w1 + Ib[b, 9] * w2 + (c2 * v0 - c0 * v2)
            n2 = Ib[b, 8] * w0 + Ib[b, 9] * w1 + Ib[b, 6] * w2 + (c0 * v1 - c1 * v0)
            f0 = m * v0 - (c1 * w2 - c2 * w1)
            f1 = m * v1 - (c2 * w0 - c0 * w2)
            f2 = m * v2 - (c0 * w1 - c1 * w0)
            ke += 0.5 * (w0 * n0 + w1 * n1 + w2 * n2 + v0 * f0 + v1 * f1 + v2 * f2)
            L0 += n0
            L1 += n1
            L2 += n2
            P0 += f0
            P1 += f1
            P2 += f2
            mass += m
            h0 += c0
            h1 += c1
            h2 += c2
        for j in range(12):
            ke += 0.5 * model.joint_armature[j] * st.joint_vel[n, j] ** 2
        com0, com1, com2 = h0 / mass, h1 / mass, h2 / mass
        out[n, 0] = ke
        out[n, 1] = gravity * (mass * st.base_pos[n, 2] + h2)
        out[n, 2] = P0
        out[n, 3] = P1
        out[n, 4] = P2
        out[n, 5] = L0 - (com1 * P2 - com2 * P1)
        out[n, 6] = L1 - (com2 * P0 - com0 * P2)
        out[n, 7] = L2 - (com0 * P1 - com1 * P0)
        out[n, 8] = st.base_pos[n, 0] + st.world_offset[n, 0] + com0
        out[n, 9] = st.base_pos[n, 1] + st.world_offset[n, 1] + com1
        out[n, 10] = st.base_pos[n, 2] + com2
    return buf.size


def energy_and_momentum(model: RobotModel, state: PhysicsState, gravity: float = 9.81, added_mass=None) -> dict:
    """Mechanical energy and momentum of every env (armature counted as rotor kinetic energy).

    Returns a dict of arrays: ``kinetic`` (N,) J, ``potential`` (N,) J (zero at z = 0),
    ``linear_momentum`` (N, 3) world kg·m/s, ``angular_momentum`` (N, 3) about the COM, world
    axes, kg·m²/s, ``com`` (N, 3) true world COM position (offset added back), m.
    """
    n = state.num_envs
    added = np.zeros(n) if added_mass is None else np.ascontiguousarray(added_mass, dtype=np.float64)
    out = np.zeros((n, 11))
    _energy_kernel(model, float(gravity), added, state, out)
    return {"kinetic": out[:, 0], "potential": out[:, 1], "linear_momentum": out[:, 2:5],
            "angular_momentum": out[:, 5:8], "com": out[:, 8:11]}


def step(model: RobotModel, sim: SimParams, envp: EnvParams, state: PhysicsState, actions,
         pool: ShardPool | None = None, method: str = "block") -> int:
    """Advance every env by one control step; returns how many were flagged non-finite.

    Args:
        actions: (N, 12) float32/float64 in [-1, 1].
        pool: shards run on it (``None``: one shard on the calling thread).
        method: "block" (SIMD kernel ``step_shard_block``, envs in blocks of ``BLOCK`` = 32,
            per shard on ``pool``; the fastest), "shards" (scalar reference ``step_shard`` per
            shard), "aba" (scalar, articulated-body algorithm: a comparison, see ``aba.py``),
            "prange" / "block-prange" (scalar / SIMD kernel over Numba's own threads; ``pool``
            then only sets the chunk count).
    """
    if actions.shape != (state.num_envs, 12):
        raise ValueError(f"actions must have shape ({state.num_envs}, 12), got {actions.shape}")
    if method == "prange":
        chunks = 4 * (pool.num_threads if pool is not None else nb.get_num_threads())
        model_buf = np.array([model], dtype=MODEL_DTYPE)
        return int(step_parallel(model_buf, sim, envp, state, actions, min(chunks, state.num_envs)))
    if method == "block-prange":
        model_buf = np.array([model], dtype=MODEL_DTYPE)
        return int(step_parallel_block(model_buf, sim, envp, state, actions))
    kernel = {"shards": step_shard, "aba": step_shard_aba, "block": step_shard_block}[method]
    if pool is None:
        return int(kernel(model, sim, envp, state, actions, 0, state.num_envs))
    return int(sum(pool.run(lambda lo, hi: kernel(model, sim, envp, state, actions, lo, hi), state.num_envs)))


__all__ = ["forward_kinematics", "mass_matrix", "forward_dynamics", "energy_and_momentum", "step",
           "validate_sim_params"]
