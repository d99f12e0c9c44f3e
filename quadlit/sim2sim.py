"""``quadlit sim2sim``: a balance policy in MuJoCo, on the robot ``quadlit export-mjcf`` writes.

    quadlit sim2sim --ckpt_path PATH [--episodes 64] [--plot sim2sim.png] [--log_dir RUN_DIR]
    quadlit sim2sim --onnx policy.onnx       # an exported policy (its JSON sidecar names the task)
    quadlit sim2sim --policy zero            # hold the default pose: the two physics engines alone

Both engines run the balance task's push-robustness evaluation (``PUSH_CURVE`` x ``--episodes``
deterministic 20 s episodes, quadlit/tasks/balance/evaluation.py), with quadlit's control loop:

* 50 Hz control, 20 physics substeps of 1 ms, PD position servos (``pd`` mode: target = default
  angle + action_scale x action, torque clipped to the motor limit) or torque motors;
* the same 37-D observation (``mujoco_observation``; MuJoCo's free-joint linear velocity is in
  the world frame, its angular velocity in the trunk frame, as in quadlit's state);
* the same episodes: episode k in MuJoCo starts from episode k's state in quadlit, with its
  domain parameters (ground friction, added trunk mass, motor strength as the actuators' force
  range, PD gains), and is pushed at the same steps, in the same directions, by the same amounts
  (a horizontal velocity kick added to the free joint). The schedule is replayed from the
  episode's own random stream with quadlit's own push function (``kernels.scheduled_push``);
* the same failure rules (``rewards.has_failed``): a non-finite or diverged state, a tilt past
  ``max_tilt``, a trunk below ``min_height``, or the trunk box or a knee touching the ground at
  any physics substep.

MuJoCo steps the episodes with ``mujoco.rollout`` on a pool of C++ threads (MuJoCo releases the
GIL), one call per control step for every running episode, and the policy acts once per control
step for all of them (one batched call). The printed table shows quadlit's curve, MuJoCo's and
the gap; ``--plot`` writes both curves, ``--log_dir`` logs them to TensorBoard. See docs/sim2sim.md.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, NoReturn

import numba as nb
import numpy as np
import torch

from quadlit.envs import rng
from quadlit.errors import ConfigError
from quadlit.outputs import atomic_write, check_output_file, check_output_folder, holds_image
from quadlit.physics.control_step import MAX_ANG_VEL, MAX_HEIGHT, MAX_LIN_VEL
from quadlit.physics.importer import ServoLayout, servo_layout, servo_spec, source_status
from quadlit.physics.mjcf import LEG_NAMES, SENSOR_LAYOUT, to_mjcf
from quadlit.physics.model import RobotModel
from quadlit.physics.robot import Robot
from quadlit.tasks.balance.evaluation import PUSH_CURVE, curve_key
from quadlit.tasks.balance.kernels import OBS_DIM, scheduled_push
from quadlit.tasks.balance.params import BalanceParams
from quadlit.tasks.balance.robots import robot_for
from quadlit.tasks.balance.task import sim_params, task_kernel_params

MUJOCO_HINT = "pip install 'quadlit[mujoco]'"


def require_mujoco():
    """The ``mujoco`` module, or a one-line ConfigError saying how to install it."""
    try:
        import mujoco
        from mujoco import rollout
    except ImportError as exc:
        raise ConfigError(f"sim2sim needs MuJoCo ({exc}): {MUJOCO_HINT}") from None
    if not hasattr(rollout, "Rollout"):
        raise ConfigError(f"sim2sim needs mujoco.rollout's thread pool, which MuJoCo {mujoco.__version__} lacks: "
                          "pip install -U mujoco")
    return mujoco


# ---- the observation ------------------------------------------------------------------------
def mujoco_observation(model: RobotModel, qpos: np.ndarray, qvel: np.ndarray, foot_z: np.ndarray) -> np.ndarray:
    """quadlit's 37-D balance observation (kernels.OBS_SLICES) from MuJoCo's state.

    Args:
        qpos: (N, 19) free joint (position, quaternion wxyz trunk -> world) and 12 hinges, rad.
        qvel: (N, 18) free joint (linear velocity, world frame; angular velocity, trunk frame)
            and 12 hinge velocities, rad/s.
        foot_z: (N, 4) world height of each foot sphere's centre at the start of the control
            step's last physics substep, m (quadlit's contact flags describe that instant: a foot
            touches when its sphere dips below the ground plane).
    Returns: (N, 37) float32.
    """
    qpos = np.asarray(qpos, dtype=np.float64)
    qvel = np.asarray(qvel, dtype=np.float64)
    w, x, y, z = (qpos[:, 3 + k] for k in range(4))
    # rotation trunk -> world; the trunk-frame vectors are R^T (world vector)
    r = np.empty((qpos.shape[0], 3, 3))
    r[:, 0, 0] = 1.0 - 2.0 * (y * y + z * z)
    r[:, 0, 1] = 2.0 * (x * y - w * z)
    r[:, 0, 2] = 2.0 * (x * z + w * y)
    r[:, 1, 0] = 2.0 * (x * y + w * z)
    r[:, 1, 1] = 1.0 - 2.0 * (x * x + z * z)
    r[:, 1, 2] = 2.0 * (y * z - w * x)
    r[:, 2, 0] = 2.0 * (x * z - w * y)
    r[:, 2, 1] = 2.0 * (y * z + w * x)
    r[:, 2, 2] = 1.0 - 2.0 * (x * x + y * y)
    obs = np.empty((qpos.shape[0], OBS_DIM), dtype=np.float64)
    obs[:, 0:3] = -r[:, 2, :]  # R^T (0, 0, -1)
    obs[:, 3:6] = np.einsum("nji,nj->ni", r, qvel[:, 0:3])
    obs[:, 6:9] = qvel[:, 3:6]
    obs[:, 9:21] = qpos[:, 7:19] - np.asarray(model.default_q)
    obs[:, 21:33] = qvel[:, 6:18]
    obs[:, 33:37] = np.asarray(foot_z) < float(model.foot_radius)
    return obs.astype(np.float32)


# ---- what quadlit draws, replayed ------------------------------------------------------------
@nb.njit(cache=True, nogil=True)
def _pushes_due(p, st, ts, running, dv):
    """Each running episode's push of this control step (quadlit's ``scheduled_push`` on a scratch
    velocity) into ``dv`` (N, 2), world frame, m/s; zero where none is due."""
    for i in range(running.shape[0]):
        dv[i, 0] = 0.0
        dv[i, 1] = 0.0
        if running[i]:
            st.base_lin_vel[i, 0] = 0.0
            st.base_lin_vel[i, 1] = 0.0
            scheduled_push(p, st, ts, i)
            dv[i, 0] = st.base_lin_vel[i, 0]
            dv[i, 1] = st.base_lin_vel[i, 1]


@nb.njit(cache=True, nogil=True)
def _after_step(p, ts, running, noise):
    """The step counter and the observation noise (``write_obs``'s draws, in its order) of each
    running episode after its control step; ``noise`` (N, 37)."""
    for i in range(running.shape[0]):
        if running[i]:
            ts.step[i] += 1
            for k in range(noise.shape[1]):
                noise[i, k] = p.obs_noise * rng.normal(ts.rng_state, i) if p.obs_noise > 0.0 else 0.0


@dataclass
class EpisodeStarts:
    """What quadlit drew for each episode at its reset (copies of the task's arrays).

    Attributes:
        physics: ``PhysicsState`` after the reset (pose, velocities).
        env_params: ``EnvParams`` (friction, added mass, motor strength, gain scales).
        task_state: ``TaskState`` (random streams, push schedule, per-episode push scales).
        obs: (N, 37) the first observation (same state, so the same in both engines).
    """

    physics: Any
    env_params: Any
    task_state: Any
    obs: np.ndarray

    @classmethod
    def from_task(cls, task) -> "EpisodeStarts":
        copy = lambda group: type(group)(*(a.copy() for a in group))  # noqa: E731
        return cls(copy(task.physics), copy(task.env_params), copy(task.task_state), task.out.obs.copy())


# ---- MuJoCo ---------------------------------------------------------------------------------
class MujocoBalance:
    """The balance episodes of ``starts`` in MuJoCo, one ``MjModel`` per episode (its domain
    parameters applied), stepped by ``mujoco.rollout`` on ``threads`` threads.

    The built-in A1 runs on the robot ``quadlit export-mjcf`` writes; an imported robot runs on
    its own file (``importer.servo_spec``: the file's contact, damping, armature, friction loss,
    timestep and solver settings, its actuators replaced by quadlit's PD law), or on the copy of
    it the run carries when the file is gone or changed.

    Args:
        params: the task parameters of the episodes (the evaluation's).
        starts: quadlit's draws for each episode (``EpisodeStarts.from_task``).
        threads: MuJoCo threads (1: the calling thread).
        friction: "default" (the exported A1: MuJoCo's soft pyramidal friction; an imported robot:
            its file's own) or "stiff" (elliptic cone, impratio 100: closest to quadlit's
            stick-slip friction; ``to_mjcf(stiff_friction=True)``).
        robot: the robot (None: the one ``params`` name).
    """

    def __init__(self, params: BalanceParams, starts: EpisodeStarts, threads: int = 2,
                 friction: str = "default", robot: Robot | None = None) -> None:
        mujoco = require_mujoco()
        from mujoco import rollout

        self.mujoco = mujoco
        self.params = params
        self.robot_info = robot_for(params) if robot is None else robot
        self.robot = self.robot_info.model
        self.sim = sim_params(params, self.robot_info)
        self.p = task_kernel_params(params, self.robot_info)
        self.pd = params.motor_mode == "pd"
        base, self.layout = self._base_model(friction)
        self.dt = float(base.opt.timestep)
        self.nstep = int(round(self.sim.control_dt / self.dt))
        self.n = starts.physics.num_envs
        self.models = [self._randomised(base, starts.env_params, i) for i in range(self.n)]
        self.threads = max(1, int(threads))
        self.data = [mujoco.MjData(base) for _ in range(self.threads)]
        self.pool = rollout.Rollout(nthread=self.threads if self.threads > 1 else 0)
        self.strength = np.asarray(starts.env_params.motor_strength, dtype=np.float64).copy()

        spec = mujoco.mjtState
        self.state_size = mujoco.mj_stateSize(base, spec.mjSTATE_FULLPHYSICS.value)
        t = mujoco.mj_stateSize(base, spec.mjSTATE_TIME.value)
        self.qpos_at = slice(t, t + base.nq)
        self.qvel_at = slice(t + base.nq, t + base.nq + base.nv)
        lay = self.layout
        # quadlit's 19 positions / 18 velocities (free joint, then its joint order) in the state vector
        self.qpos_index = t + np.concatenate([lay.free_qpos + np.arange(7), lay.qpos])
        self.qvel_index = t + base.nq + np.concatenate([lay.free_dof + np.arange(6), lay.dof])
        self.state = np.zeros((self.n, self.state_size))
        self.state[:, self.qpos_at] = base.qpos0
        st = starts.physics
        self.state[:, self.qpos_index] = np.concatenate([st.base_pos, st.base_quat, st.joint_pos + lay.ref], axis=1)
        self.state[:, self.qvel_index] = np.concatenate([st.base_lin_vel, st.base_ang_vel, st.joint_vel], axis=1)
        self._check_state_layout(base)
        self.scratch = type(st)(*(a.copy() for a in st))
        self.task_state = type(starts.task_state)(*(a.copy() for a in starts.task_state))
        self.first_obs = starts.obs.copy()

    def _base_model(self, friction: str):
        """The episodes' MjModel before their domain parameters, and where quadlit's quantities
        sit in it."""
        mujoco = self.mujoco
        robot = self.robot_info
        if not robot.imported:
            xml = to_mjcf(self.robot, self.sim, actuators="position" if self.pd else "motor", sensors=True,
                          stiff_friction=friction == "stiff")
            base = mujoco.MjModel.from_xml_string(xml)
            trunk = mujoco.mj_name2id(base, mujoco.mjtObj.mjOBJ_BODY, "trunk")
            feet = [mujoco.mj_name2id(base, mujoco.mjtObj.mjOBJ_GEOM, f"{leg}_foot") for leg in LEG_NAMES]
            return base, ServoLayout(trunk=trunk, free_qpos=0, free_dof=0, qpos=7 + np.arange(12), dof=6 + np.arange(12),
                                     feet=np.array(feet, dtype=np.int64), ref=np.zeros(12))
        if not self.pd:
            raise ConfigError("sim2sim of an imported robot runs the pd motor mode (quadlit's PD law as servos on its "
                              "own file); this policy was trained in torque mode")
        spec, names = servo_spec(robot, sensors=True)
        control_dt = self.sim.control_dt
        steps = control_dt / spec.option.timestep
        if abs(steps - round(steps)) > 1e-9 or round(steps) < 1:
            spec.option.timestep = self.sim.dt  # the file's step does not divide the control period
        if friction == "stiff":
            spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
            spec.option.impratio = 100.0
        try:
            base = spec.compile()
        except Exception as exc:
            raise ConfigError(f"sim2sim: MuJoCo cannot compile robot {robot.name!r} with quadlit's servos: {exc}") from None
        return base, servo_layout(mujoco, base, robot, names)

    def _randomised(self, base, envp, i: int):
        """A copy of ``base`` with episode ``i``'s domain parameters, as quadlit applies them."""
        m = base.__copy__()
        friction = float(envp.friction[i])
        for g in range(m.ngeom):
            if m.geom_contype[g] or m.geom_conaffinity[g]:  # MuJoCo takes the larger of a pair's values
                m.geom_friction[g, 0] = friction
        m.body_mass[self.layout.trunk] += float(envp.added_mass[i])  # a point mass at the trunk's COM
        strength = float(envp.motor_strength[i])
        limit = np.asarray(self.robot.joint_torque_limit)
        if self.pd:
            m.actuator_forcerange[:, 0] = -limit * strength
            m.actuator_forcerange[:, 1] = limit * strength
            kp = np.asarray(self.robot.kp) * float(envp.kp_scale[i])
            kd = np.asarray(self.robot.kd) * float(envp.kd_scale[i])
            m.actuator_gainprm[:, 0] = kp
            m.actuator_biasprm[:, 1] = -kp
            m.actuator_biasprm[:, 2] = -kd
        else:
            m.actuator_ctrlrange[:, 0] = -limit * strength
            m.actuator_ctrlrange[:, 1] = limit * strength
        return m

    def _check_state_layout(self, base) -> None:
        d = self.mujoco.MjData(base)
        probe = np.zeros(self.state_size)
        probe[self.qpos_at] = np.arange(base.nq) + 1.0
        probe[self.qvel_at] = -np.arange(base.nv) - 1.0
        self.mujoco.mj_setState(base, d, probe, self.mujoco.mjtState.mjSTATE_FULLPHYSICS.value)
        if not (np.array_equal(d.qpos, probe[self.qpos_at]) and np.array_equal(d.qvel, probe[self.qvel_at])):
            raise RuntimeError("unexpected MuJoCo state layout")
        if base.nq != 19 or base.nv != 18 or sorted(self.qpos_index - self.qpos_at.start) != list(range(19)):
            raise RuntimeError("the MuJoCo model holds more than quadlit's robot")

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    def controls(self, actions: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """MuJoCo controls (K, 12) of episodes ``idx`` from actions (K, 12): PD target angles
        (``pd``) or torques (``torque``), as quadlit's ``motor_command`` makes them."""
        a = np.nan_to_num(np.asarray(actions, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        a = np.clip(a, -1.0, 1.0)
        if self.pd:  # the servos act on MuJoCo's joint angle: quadlit's + the file's reference angle
            return np.asarray(self.robot.default_q) + self.layout.ref + self.sim.action_scale * a
        return a * np.asarray(self.robot.joint_torque_limit) * self.strength[idx, None]

    def step(self, actions: np.ndarray, running: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One control step of the running episodes: pushes, ``substeps`` MuJoCo steps, failure
        rules, observations.

        Args:
            actions: (N, 12) in [-1, 1] (rows of finished episodes are ignored).
            running: (N,) bool.
        Returns: obs (N, 37) float32 (rows of running episodes updated), failed (N,) bool,
            and diverged (N,) bool (non-finite or MuJoCo reset the state; counted as failed).
        """
        p, sim = self.p, self.sim
        idx = np.flatnonzero(running)
        if idx.size == 0:  # (an empty batch would crash mujoco.rollout's unchecked path)
            return np.zeros((self.n, OBS_DIM), np.float32), np.zeros(self.n, bool), np.zeros(self.n, bool)
        dv = np.zeros((self.n, 2))
        _pushes_due(p, self.scratch, self.task_state, running, dv)
        qvel0 = self.qvel_at.start
        self.state[idx, qvel0:qvel0 + 2] += dv[idx]
        time0 = self.state[idx, 0].copy()

        k = idx.size
        nstep = self.nstep
        control = np.repeat(self.controls(actions[idx], idx)[:, None, :], nstep, axis=1)
        out_state = np.empty((k, nstep, self.state_size))
        sensors = np.empty((k, nstep, self.models[0].nsensordata))
        self.pool.rollout([self.models[i] for i in idx], self.data, np.ascontiguousarray(self.state[idx]),
                          control, skip_checks=True, nstep=nstep, state=out_state, sensordata=sensors)
        final = out_state[:, -1]

        qpos, qvel = final[:, self.qpos_index].copy(), final[:, self.qvel_index]
        qpos[:, 7:] -= self.layout.ref  # quadlit's joint angles
        ok = np.isfinite(final).all(axis=1) & np.isfinite(sensors).all(axis=(1, 2))
        ok &= np.abs(qpos[:, 0:3]).max(axis=1) < MAX_HEIGHT
        ok &= np.abs(qvel[:, 0:3]).max(axis=1) < MAX_LIN_VEL
        ok &= np.abs(qvel[:, 3:6]).max(axis=1) < MAX_ANG_VEL
        ok &= (np.abs(qpos[:, 7:]).max(axis=1) < MAX_ANG_VEL) & (np.abs(qvel[:, 6:]).max(axis=1) < MAX_ANG_VEL)
        # MuJoCo resets a diverged simulation to its initial state (and its clock to zero)
        ok &= np.abs(final[:, 0] - (time0 + nstep * self.dt)) < 0.5 * self.dt
        self.state[idx] = final

        foot_z = sensors[:, -1, SENSOR_LAYOUT["foot_pos"]].reshape(k, 4, 3)[:, :, 2]
        obs_rows = mujoco_observation(self.robot, qpos, qvel, foot_z)
        noise = np.zeros((self.n, OBS_DIM))
        _after_step(p, self.task_state, running, noise)
        obs_rows = (obs_rows.astype(np.float64) + noise[idx]).astype(np.float32)

        touched = self.body_touches_ground(sensors)
        x, y = qpos[:, 4], qpos[:, 5]
        cos_tilt = 1.0 - 2.0 * (x * x + y * y)  # (trunk z axis) . (world z), as quadlit's -gravity_z
        #: each failure rule's verdict on the rows stepped (``idx``), for tools that ask which rule ended an episode
        self.last_rules = {"diverged": ~ok, "tilt": cos_tilt < p.cos_max_tilt, "height": qpos[:, 2] < p.min_height,
                           "body touch": touched}
        failed_rows = np.logical_or.reduce(list(self.last_rules.values()))
        self.last_stepped = idx
        failed = np.zeros(self.n, dtype=bool)
        diverged = np.zeros(self.n, dtype=bool)
        failed[idx] = failed_rows
        diverged[idx] = ~ok
        obs = np.zeros((self.n, OBS_DIM), dtype=np.float32)
        obs[idx] = obs_rows
        return obs, failed, diverged

    def body_touches_ground(self, sensors: np.ndarray) -> np.ndarray:
        """(K,) bool: at the start of some substep of the control step the trunk box reached
        the ground plane or a knee joint came within ``knee_radius`` of it (quadlit's
        ``body_touches_ground``); ``sensors`` (K, substeps, nsensordata)."""
        robot = self.robot
        z = sensors[:, :, SENSOR_LAYOUT["trunk_pos"]][..., 2]
        w, x, y, q3 = (sensors[:, :, SENSOR_LAYOUT["trunk_quat"]][..., k] for k in range(4))
        hx, hy, hz = (float(v) for v in robot.trunk_half_extents)
        cx, cy, cz = (float(v) for v in robot.trunk_box_center)
        r20, r21, r22 = 2.0 * (x * q3 - w * y), 2.0 * (y * q3 + w * x), 1.0 - 2.0 * (x * x + y * y)
        lowest = z + (r20 * cx + r21 * cy + r22 * cz) - (np.abs(r20) * hx + np.abs(r21) * hy + np.abs(r22) * hz)
        knee_z = sensors[:, :, SENSOR_LAYOUT["knee_pos"]].reshape(*z.shape, 4, 3)[..., 2]
        hit = (lowest < 0.0) | (knee_z.min(axis=-1) < float(robot.knee_radius))
        return hit.any(axis=1)

    @torch.no_grad()
    def run(self, policy: Any, obs_norm: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, np.ndarray]:
        """Every episode to its end with ``policy`` acting deterministically (one batched call
        per control step). Returns "survived", "length" (control steps) and "diverged", each (N,)."""
        n, max_steps = self.n, int(self.params.max_steps)
        obs = self.first_obs.copy()
        state = policy.initial_state(n, torch.device("cpu"))
        start = torch.ones(n)
        running = np.ones(n, dtype=bool)
        length = np.zeros(n, dtype=np.int64)
        diverged = np.zeros(n, dtype=bool)
        for _ in range(max_steps):
            action, _, _, _, state = policy.act(obs_norm(torch.from_numpy(obs)), state, start, deterministic=True)
            start = torch.zeros(n)
            new_obs, failed, bad = self.step(action.float().cpu().numpy(), running)
            obs[running] = new_obs[running]
            length[running] += 1
            diverged |= bad
            running &= ~failed
            if not running.any():
                break
        survived = running & (length >= max_steps)
        return {"survived": survived.astype(np.float32), "length": length.astype(np.float32),
                "diverged": diverged.astype(np.float32)}


# ---- policies -------------------------------------------------------------------------------
class OnnxPolicy:
    """An exported policy (``quadlit export``) with ``EntityBelief``'s ``initial_state`` and
    ``act`` API; observation normalisation is inside the ONNX model. Always deterministic."""

    def __init__(self, path: Path, hidden: int) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ConfigError("--onnx needs onnxruntime: pip install onnxruntime") from None
        try:
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # not an ONNX file, truncated, ...
            raise ConfigError(f"--onnx: {path} is not a readable ONNX model ({type(exc).__name__})") from None
        self.hidden = int(hidden)
        self.label = f"ONNX {path.name}"

    def initial_state(self, batch: int, device: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.zeros(batch, self.hidden)
        return z, z.clone()

    def act(self, obs: torch.Tensor, state: Any, episode_start: torch.Tensor, deterministic: bool = True,
            generator: Any = None) -> tuple:
        """Shape: obs (B, 37) -> action (B, 12), raw, log_prob (B,) zeros, value (B,) (zeros when
        the export has no value output), (h, c)."""
        h, c = state
        names = [o.name for o in self.session.get_outputs()]
        out = dict(zip(names, self.session.run(None, {
            "obs": obs.float().numpy(), "h": h.float().numpy(), "c": c.float().numpy(),
            "episode_start": episode_start.float().numpy()})))
        action = torch.from_numpy(out["action"])
        value = torch.from_numpy(out["value"]) if "value" in out else torch.zeros(action.shape[0])
        return action, action, torch.zeros(action.shape[0]), value, \
            (torch.from_numpy(out["h_out"]), torch.from_numpy(out["c_out"]))


@dataclass
class PolicySource:
    """The policy under test and the task parameters it was trained with."""

    policy: Any
    obs_norm: Callable[[torch.Tensor], torch.Tensor]
    params: BalanceParams
    label: str
    global_step: int = 0
    eval_seed: int | None = None


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def load_policy(args: argparse.Namespace) -> PolicySource:
    """The policy that ``--ckpt_path``, ``--onnx`` or ``--policy`` names."""
    from quadlit.tasks import restore_task_extras, task_params_from_dict

    given = [name for name in ("ckpt_path", "onnx", "policy") if getattr(args, name) is not None]
    if len(given) != 1:
        raise ConfigError("sim2sim: give exactly one of --ckpt_path, --onnx, --policy zero|random")
    if args.ckpt_path is not None:
        from quadlit.training.checkpoint import load_run, read_checkpoint

        run = load_run(args.ckpt_path)
        if run.task_name != "balance":
            raise ConfigError(f"--ckpt_path: {args.ckpt_path} was trained on task {run.task_name!r}; "
                              "sim2sim runs the balance task")
        contents = read_checkpoint(args.ckpt_path)
        return PolicySource(run.module.deployed_policy, run.module.deployed_norm, run.task_params,
                            f"checkpoint {Path(args.ckpt_path).name}", int(contents.get("global_step", 0)),
                            (contents.get("RolloutDataModule") or {}).get("eval_seed"))
    if args.onnx is not None:
        path = Path(args.onnx)
        if not path.is_file():
            raise ConfigError(f"--onnx: no file at {path}")
        sidecar = path.with_suffix(".json")
        try:
            meta = json.loads(sidecar.read_text())
        except (OSError, ValueError):
            raise ConfigError(f"--onnx: no readable JSON sidecar at {sidecar} (quadlit export writes it)") from None
        if meta.get("task") != "balance":
            raise ConfigError(f"--onnx: {path} is a policy of task {meta.get('task')!r}; sim2sim runs the balance task")
        params = task_params_from_dict("balance", meta.get("task_params", {}))
        restore_task_extras("balance", params, meta.get("task_extras"))  # an imported robot's record
        return PolicySource(OnnxPolicy(path, int(meta["lstm_hidden"])), _identity, params, f"ONNX {path.name}")
    from quadlit.models.baselines import RandomPolicy, ZeroPolicy

    policy = ZeroPolicy(12) if args.policy == "zero" else RandomPolicy(12, seed=0)
    return PolicySource(policy, _identity, BalanceParams(), f"{policy.label}")


# ---- both engines ---------------------------------------------------------------------------
@dataclass
class Comparison:
    """Per-episode results of both engines on the same episodes (``episodes`` per magnitude).

    Attributes:
        quadlit, mujoco: metric -> (len(PUSH_CURVE) * episodes,) values ("survived", "length").
        quadlit_seconds, mujoco_seconds: wall-clock of each engine's episodes.
    """

    episodes: int
    quadlit: dict[str, np.ndarray]
    mujoco: dict[str, np.ndarray]
    quadlit_seconds: float
    mujoco_seconds: float

    def curve(self, engine: str) -> dict[float, float]:
        survived = np.asarray(getattr(self, engine)["survived"], dtype=np.float64).reshape(len(PUSH_CURVE), -1)
        return {m: float(s) for m, s in zip(PUSH_CURVE, survived.mean(axis=1))}

    def agreement(self) -> float:
        """Fraction of episodes with the same outcome (survived or failed) in both engines."""
        return float(np.mean(self.quadlit["survived"] == self.mujoco["survived"]))

    @property
    def mujoco_steps(self) -> int:
        return int(np.sum(self.mujoco["length"]))


def compare(source: PolicySource, episodes: int, seed: int, threads: int, max_steps: int | None = None,
            friction: str = "default", engine: type | None = None) -> Comparison:
    """quadlit's push-robustness episodes of ``source`` and the same episodes in MuJoCo
    (``engine``: a ``MujocoBalance`` subclass to run them, as ``quadlit bench gap``'s)."""
    from quadlit.envs.pool import ShardPool
    from quadlit.tasks import evaluations, make_evaluation_task
    from quadlit.training.rollout import evaluate_policy

    params = source.params if max_steps is None else replace(source.params, max_steps=int(max_steps))
    evaluation = next(e for e in evaluations("balance", params, episodes) if e.name == "curve")
    pool = ShardPool(max(1, threads))
    task = make_evaluation_task("balance", evaluation, seed, pool)
    try:
        task.reset(seed)
        starts = EpisodeStarts.from_task(task)
        start = time.perf_counter()
        ours = evaluate_policy(source.policy, source.obs_norm, task, seed, torch.device("cpu"))
        quadlit_seconds = time.perf_counter() - start
    finally:
        task.close()
        pool.close()
    start = time.perf_counter()
    mj = (engine or MujocoBalance)(evaluation.params, starts, threads, friction)
    try:
        theirs = mj.run(source.policy, source.obs_norm)
    finally:
        mj.close()
    return Comparison(episodes, {k: ours[k] for k in ("survived", "length")}, theirs, quadlit_seconds,
                      time.perf_counter() - start)


def table(result: Comparison, label: str, seed: int) -> str:
    """The printed comparison: both curves, the gap, and how often single episodes agree."""
    q, m = result.curve("quadlit"), result.curve("mujoco")
    cols = "".join(f"{x:>7.1f}" for x in PUSH_CURVE)
    row = lambda name, c: f"  {name:<12}" + "".join(f"{100 * c[x]:>6.0f}%" for x in PUSH_CURVE)  # noqa: E731
    gap = "  gap (pts)   " + "".join(f"{100 * (m[x] - q[x]):>+7.0f}" for x in PUSH_CURVE)
    lines = [
        f"sim2sim push-robustness: {label}, {result.episodes} episodes per magnitude (seed {seed})",
        f"  push m/s    {cols}",
        row("quadlit", q),
        row("MuJoCo", m),
        gap,
        f"  same outcome in both engines: {100 * result.agreement():.0f}% of episodes"
        + (f"; MuJoCo diverged in {int(result.mujoco['diverged'].sum())}" if result.mujoco["diverged"].any() else ""),
        f"  wall-clock: quadlit {result.quadlit_seconds:.1f} s, MuJoCo {result.mujoco_seconds:.1f} s for "
        f"{len(PUSH_CURVE) * result.episodes} episodes ({result.mujoco_steps:,} control steps)",
    ]
    return "\n".join(lines)


def write_outputs(result: Comparison, source: PolicySource, plot: Path | None, log_dir: Path | None,
                  friction: str = "default") -> list[str]:
    """The plot (both curves) and the TensorBoard scalars/figure; returns what was written."""
    from quadlit.training.plots import robustness_figure

    stiff = friction == "stiff"
    mujoco_label, mujoco_tag = ("MuJoCo, stiff friction", "mujoco_stiff") if stiff else ("MuJoCo", "mujoco")
    curves = {name: (list(PUSH_CURVE), [c[x] for x in PUSH_CURVE])
              for name, c in (("quadlit", result.curve("quadlit")), (mujoco_label, result.curve("mujoco")))}
    written = []
    if plot is not None:
        import matplotlib.pyplot as plt

        fig = robustness_figure(curves, title=f"sim2sim: {source.label}")
        try:
            with atomic_write(plot) as tmp:
                fig.savefig(tmp)
        except OSError as exc:
            raise ConfigError(f"--plot: cannot write {plot} ({exc.strerror or exc})") from None
        finally:
            plt.close(fig)
        written.append(str(plot))
    if log_dir is not None:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(log_dir=str(log_dir))
        try:
            for engine, tag in (("quadlit", "quadlit"), ("mujoco", mujoco_tag)):
                for x, v in result.curve(engine).items():
                    writer.add_scalar(f"sim2sim_{tag}/{curve_key(x)}", v, source.global_step)
            writer.add_scalar(f"sim2sim/same_outcome_{mujoco_tag}", result.agreement(), source.global_step)
            writer.add_figure(f"sim2sim/push_robustness_{mujoco_tag}", robustness_figure(curves, title=f"sim2sim: {source.label}"),
                              global_step=source.global_step)
        finally:
            writer.close()
        written.append(f"TensorBoard {log_dir}")
    return written


def mujoco_source_line(robot: Robot) -> str:
    """What MuJoCo runs, in one line: the robot's own file, or the copy the run carries."""
    status = source_status(robot)
    if status == "built in":
        return f"robot {robot.name} (built in): MuJoCo runs the robot quadlit export-mjcf writes"
    if status == "file":
        return f"robot {robot.name}: MuJoCo runs its own file {robot.source} (actuators replaced by quadlit's PD law)"
    return (f"robot {robot.name}: {robot.source} is gone or changed since the run imported it; MuJoCo runs the copy "
            "of it the run carries (actuators replaced by quadlit's PD law)")


# ---- command line ---------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"sim2sim: {message}")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="quadlit sim2sim", description="Run a balance policy in MuJoCo on the exported robot and "
                                                     "compare its push-robustness curve with quadlit's.")
    p.add_argument("--ckpt_path", "--ckpt-path", dest="ckpt_path", help="checkpoint of a balance run")
    p.add_argument("--onnx", help="policy exported by quadlit export (its .json sidecar beside it)")
    p.add_argument("--policy", choices=("zero", "random"), help="a baseline instead (default task parameters)")
    p.add_argument("--episodes", type=int, default=64, help="episodes per push magnitude")
    p.add_argument("--seed", type=int, default=None, help="seed of the episodes (default: the run's eval_seed, "
                                                          "else 12345)")
    p.add_argument("--threads", type=int, default=None, help="threads of each engine (default: the CPU count)")
    p.add_argument("--max_steps", "--max-steps", dest="max_steps", type=int, default=None,
                   help="episode length in control steps (default: the task's, 1000 = 20 s)")
    p.add_argument("--friction", choices=("default", "stiff"), default="default",
                   help="MuJoCo's friction: its default soft pyramidal cone, or an elliptic cone with impratio "
                        "100 (feet stick as in quadlit); see docs/sim2sim.md")
    p.add_argument("--plot", default="sim2sim.png", help="where to write the plot of both curves ('' for none)")
    p.add_argument("--log_dir", "--log-dir", dest="log_dir", default=None,
                   help="a run directory: log both curves to TensorBoard there")
    return p


def main(argv: list[str] | None = None) -> int:
    """``quadlit sim2sim``; bad input raises ``ConfigError`` (one line, exit 2 through the CLI)."""
    args = _parser().parse_args(argv)
    if args.episodes < 1:
        raise ConfigError(f"sim2sim: --episodes must be >= 1, got {args.episodes}")
    if args.max_steps is not None and args.max_steps < 1:
        raise ConfigError(f"sim2sim: --max_steps must be >= 1, got {args.max_steps}")
    cpus = os.cpu_count() or 1
    threads = args.threads if args.threads is not None else cpus
    if not 1 <= threads <= cpus:  # each MuJoCo thread holds its own model and data
        raise ConfigError(f"sim2sim: --threads must be from 1 to {cpus} (this machine's CPU count), got {threads}")
    if args.plot:  # the outputs are checked before the episodes run, not after
        check_output_file(args.plot, "sim2sim: --plot", inputs=[p for p in (args.ckpt_path, args.onnx) if p],
                          rewritable=holds_image)
    if args.log_dir:
        check_output_folder(args.log_dir, "sim2sim: --log_dir")
    require_mujoco()
    source = load_policy(args)
    seed = args.seed if args.seed is not None else (source.eval_seed if source.eval_seed is not None else 12345)
    robot = robot_for(source.params)
    print(mujoco_source_line(robot))
    try:
        result = compare(source, args.episodes, int(seed), threads, args.max_steps, args.friction)
    except MemoryError:  # the episodes of all push magnitudes run at once
        raise ConfigError(f"sim2sim: --episodes {args.episodes}: not enough memory to run "
                          f"{len(PUSH_CURVE) * args.episodes:,} episodes at once; lower --episodes") from None
    label = source.label + (", MuJoCo friction stiff" if args.friction == "stiff" else "")
    print(table(result, label, int(seed)))
    written = write_outputs(result, source, Path(args.plot) if args.plot else None,
                            Path(args.log_dir) if args.log_dir else None, args.friction)
    if written:
        print("wrote " + ", ".join(written))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
