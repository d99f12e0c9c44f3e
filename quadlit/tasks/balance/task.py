"""BalanceTask: the VecTask of the quadruped that stands and recovers from pushes."""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Any

import numpy as np

from quadlit.envs.base import EnvSpec, StepResult, VecTask
from quadlit.envs.pool import ShardPool
from quadlit.envs.rng import seed_streams
from quadlit.physics import precompile
from quadlit.physics.model import JOINT_NAMES, MOTOR_PD, MOTOR_TORQUE, EnvParams, SimParams, validate_sim_params
from quadlit.physics.robot import Robot
from quadlit.physics.state import PhysicsState, load_state_arrays
from quadlit.tasks.balance import kernels
from quadlit.tasks.balance.params import BalanceParams, kernel_params
from quadlit.tasks.balance.rewards import REWARD_TERMS
from quadlit.tasks.balance.robots import check_robot_bounds, robot_for


def balance_spec(params: BalanceParams) -> EnvSpec:
    """The static description of the balance task with ``params``."""
    return EnvSpec(
        name="balance",
        obs_dim=kernels.OBS_DIM,
        action_dim=kernels.ACTION_DIM,
        reward_terms=REWARD_TERMS,
        episode_metrics=kernels.EPISODE_METRICS,
        max_episode_steps=params.max_steps,
        control_dt=params.control_dt,
        obs_segments=tuple((name, hi - lo) for name, (lo, hi) in kernels.OBS_SLICES.items()),
        action_names=tuple(f"{name}_{'target' if params.motor_mode == 'pd' else 'torque'}" for name in JOINT_NAMES),
        privileged_dim=kernels.PRIVILEGED_DIM,
        privileged_segments=tuple((name, hi - lo) for name, (lo, hi) in kernels.PRIVILEGED_SLICES.items()),
    )


def sim_params(params: BalanceParams, robot: Robot | None = None) -> SimParams:
    """The physics simulation record for these task parameters (and the robot's foot contact;
    None: the robot ``params`` name)."""
    robot = robot_for(params) if robot is None else robot
    return validate_sim_params(robot.sim_params(
        dt=params.physics_dt, substeps=params.substeps,
        motor_mode=MOTOR_PD if params.motor_mode == "pd" else MOTOR_TORQUE,
        action_scale=params.action_scale,
    ))


def task_kernel_params(params: BalanceParams, robot: Robot):
    """The kernels' parameter record of ``params`` on ``robot``."""
    return kernel_params(params, float(robot.model.standing_height), float(robot.model.nominal_height))


class BalanceTask(VecTask):
    """``num_envs`` quadrupeds that must stay upright at their standing height under pushes.

    Args:
        num_envs: environments (rows of every state array).
        params: the task parameters (``params.robot`` chooses the robot: ``robots.robot_for``).
        seed: master seed of the per-environment random streams.
        pool: thread pool stepping the shards (None: run inline on the calling thread).
    """

    def __init__(self, num_envs: int, params: BalanceParams = BalanceParams(), seed: int = 0,
                 pool: ShardPool | None = None) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        if not isinstance(params, BalanceParams):
            raise TypeError(f"params must be a BalanceParams, got {type(params).__name__}")
        n = self.num_envs = int(num_envs)
        self.params = params
        self.spec = balance_spec(params)
        self.robot = robot_for(params)
        check_robot_bounds(params, self.robot)
        self.model = self.robot.model
        self.sim = sim_params(params, self.robot)
        self._p = task_kernel_params(params, self.robot)
        self.physics = PhysicsState.allocate(n)
        self.env_params = EnvParams.allocate(n)
        self.task_state = kernels.TaskState.allocate(n)
        self.out = kernels.StepOutputs.allocate(n)
        self._owns_pool = pool is None
        self.pool = ShardPool(1) if pool is None else pool
        self._window: deque[bool] = deque(maxlen=params.curriculum_window)
        self.task_state.push_scale[:] = params.curriculum_start if params.push_curriculum else 1.0
        precompile.start_background_compile(kernels.step_shard)  # a cold cache: a second process compiles the physics stages
        self.reset(seed)

    # ---- the VecTask contract ----------------------------------------------------------------
    def reset(self, seed: int | None = None) -> np.ndarray:
        if seed is not None:
            self.task_state.rng_state[:] = seed_streams(seed, self.num_envs)
        args = (self.model, self.env_params, self.physics, self.task_state, self._p, self.out)
        self.pool.run(lambda lo, hi: kernels.reset_shard(*args, lo, hi), self.num_envs)
        return self.out.obs

    def step(self, actions: np.ndarray) -> StepResult:
        actions = np.ascontiguousarray(actions, dtype=np.float32)
        if actions.shape != (self.num_envs, kernels.ACTION_DIM):
            raise ValueError(f"actions must have shape ({self.num_envs}, {kernels.ACTION_DIM}), got {actions.shape}")
        args = (self.model, self.sim, self.env_params, self.physics, self.task_state, self._p, actions, self.out)
        counts = self.pool.run(lambda lo, hi: kernels.step_shard(*args, lo, hi), self.num_envs)
        precompile.stop_background_compile()  # the step kernel is compiled now (no-op when none runs)
        out = self.out
        done = out.terminated | out.truncated
        if self.params.push_curriculum and done.any():
            self._update_curriculum(out.truncated[done])
        episode = {name: out.episode[:, k] for k, name in enumerate(kernels.EPISODE_METRICS)}
        return StepResult(obs=out.obs, reward=out.reward, terminated=out.terminated, truncated=out.truncated,
                          final_obs=out.final_obs, reward_terms=out.reward_terms, episode=episode,
                          num_nonfinite=int(sum(counts)), privileged=out.privileged,
                          final_privileged=out.final_privileged)

    def privileged(self) -> np.ndarray:
        return self.out.privileged

    def set_progress(self, env_steps: int) -> None:
        # the recovery-step reward's ramp; the kernels read the scale from the parameter record
        # (a NamedTuple of floats: a new value is no new type, nothing recompiles)
        ramp = self.params.recovery_step_ramp
        if ramp > 0:
            scale = self.params.recovery_step_scale * min(1.0, max(0, int(env_steps)) / ramp)
            self._p = self._p._replace(recovery_step_scale=scale)

    def control_law(self) -> dict[str, Any]:
        """How an action becomes joint torques on this robot, as plain data (the ONNX sidecar's
        ``control_law``): with it and the policy, another engine or the robot itself runs the
        policy. Angles in rad, gains in N·m/rad and N·m·s/rad, torques in N·m."""
        m, p, robot = self.model, self.params, self.robot
        finite = lambda a: [float(x) if np.isfinite(x) else None for x in np.asarray(a)]  # noqa: E731
        pd = p.motor_mode == "pd"
        return {
            "robot": robot.name,
            "robot_source": robot.source,
            "robot_digest": robot.digest(),
            "joints": list(JOINT_NAMES),
            "file_joints": list(robot.mj_joint_names) or None,
            "file_joint_ref": list(robot.mj_joint_ref) or None,
            "joint_angle": "q = the file's joint angle - file_joint_ref (the built-in A1: as exported)",
            "motor_mode": p.motor_mode,
            "formula": ("target = default_pose + action_scale * clip(action, -1, 1); torque = clip(kp * (target - q) "
                        "- kd * dq/dt, -torque_limit, torque_limit), evaluated every physics step" if pd else
                        "torque = clip(action, -1, 1) * torque_limit"),
            "action_scale": float(p.action_scale) if pd else None,
            "default_pose": finite(m.default_q),
            "kp": finite(m.kp) if pd else None,
            "kd": finite(m.kd) if pd else None,
            "torque_limit": finite(m.joint_torque_limit),
            "velocity_limit": finite(m.joint_vel_limit),
            "physics_dt": float(p.physics_dt),
            "substeps": int(p.substeps),
            "control_dt": float(p.control_dt),
        }

    @property
    def recovery_step_scale(self) -> float:
        """The recovery-step reward's scale the next step pays (``recovery_step_ramp``)."""
        return self._p.recovery_step_scale

    def pushed(self) -> np.ndarray:
        # a push lands at the start of a control step, before the physics, and step counts it after
        ts = self.task_state
        return (ts.push_step >= 0) & (ts.step - ts.push_step == 1)

    def _update_curriculum(self, survived: np.ndarray) -> None:
        """Grow the push size by 0.1 (of push_magnitude) once a full window of episodes survived
        at a rate above ``curriculum_up``."""
        self._window.extend(bool(s) for s in survived)
        if len(self._window) == self._window.maxlen and np.mean(self._window) > self.params.curriculum_up:
            self.task_state.push_scale[:] = min(1.0, self.task_state.push_scale[0] + 0.1)
            self._window.clear()

    @property
    def push_scale(self) -> float:
        """The curriculum's current push multiplier (1.0 without a curriculum)."""
        return float(self.task_state.push_scale[0])

    def set_push_scales(self, scales) -> None:
        """Give each environment its own push multiplier (N,) (an evaluation's magnitudes when
        push_magnitude is 1 m/s); a curriculum would overwrite them."""
        scales = np.asarray(scales, dtype=np.float64)
        if scales.shape != (self.num_envs,) or not np.all(np.isfinite(scales)) or np.any(scales < 0):
            raise ValueError(f"push scales must be {self.num_envs} finite values >= 0, got shape {scales.shape}")
        self.task_state.push_scale[:] = scales

    def state_dict(self) -> dict[str, Any]:
        return {
            "physics": {k: v.copy() for k, v in self.physics._asdict().items()},
            "env_params": {k: v.copy() for k, v in self.env_params._asdict().items()},
            "task_state": {k: v.copy() for k, v in self.task_state._asdict().items()},
            "obs": self.out.obs.copy(),
            "privileged": self.out.privileged.copy(),
            "curriculum_window": np.array(list(self._window), dtype=bool),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_state_arrays(self.physics, state["physics"])  # zeros for arrays added since (body_slip)
        for group in ("env_params", "task_state"):
            target = getattr(self, group)._asdict()
            for k, v in state[group].items():
                v = np.asarray(v)
                if group == "task_state" and k == "push_scale" and v.shape == (1,):
                    v = np.broadcast_to(v, target[k].shape)  # saved before push scales were per env
                if v.shape != target[k].shape:
                    raise ValueError(f"balance state {group}.{k} has shape {v.shape}, expected {target[k].shape}")
                target[k][...] = v
        self.out.obs[...] = state["obs"]
        if "privileged" in state:
            self.out.privileged[...] = state["privileged"]
        self._window.clear()
        self._window.extend(bool(s) for s in np.asarray(state["curriculum_window"]))

    def close(self) -> None:
        if self._owns_pool:
            self.pool.close()

    # ---- pushes and inspection ---------------------------------------------------------------
    def push(self, env_indices, delta_v_world) -> None:
        """Kick the trunk of ``env_indices`` by a horizontal world-frame Δv, (K, 2|3) or (2|3,), m/s."""
        idx = np.atleast_1d(np.asarray(env_indices, dtype=np.int64))
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_envs):
            raise IndexError(f"env_indices must be in [0, {self.num_envs}), got {idx.tolist()}")
        dv = np.asarray(delta_v_world, dtype=np.float64)
        dv = np.ascontiguousarray(np.broadcast_to(dv[..., :2], (idx.size, 2)))
        kernels.push_envs(self.physics, self.task_state, idx, dv)

    def with_params(self, **changes) -> BalanceParams:
        """These parameters with some fields replaced (e.g. a fixed push magnitude for evaluation)."""
        return dataclasses.replace(self.params, **changes)

    def render_frame(self, env_index: int = 0):
        """A ``QuadrupedFrame`` of env ``env_index`` in true world coordinates, for the renderer."""
        from quadlit.physics.api import forward_kinematics
        from quadlit.render.frames import QuadrupedFrame

        i = int(env_index)
        pos = self.physics.world_base_pos()[i]
        quat = self.physics.base_quat[i].copy()
        points = forward_kinematics(self.model, pos, quat, self.physics.joint_pos[i])[0]
        ts = self.task_state
        recent = ts.push_step[i] >= 0 and ts.step[i] - ts.push_step[i] < int(0.5 / self.spec.control_dt)
        push = np.array([ts.push_vec[i, 0], ts.push_vec[i, 1], 0.0]) if recent else None
        return QuadrupedFrame(
            trunk_pos=pos, trunk_quat=quat, trunk_half_extents=np.array(self.model.trunk_half_extents),
            trunk_box_center=np.array(self.model.trunk_box_center),
            leg_points=points, foot_contact=self.physics.foot_contact[i].copy(),
            foot_radius=float(self.model.foot_radius), push=push,
        )
