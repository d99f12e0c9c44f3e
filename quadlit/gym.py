"""Gymnasium (1.x) front ends of the quadlit tasks: a single environment and a vector env.

Gymnasium is an optional extra (``pip install 'quadlit[gym]'``); ``import quadlit`` never
imports it, only ``import quadlit.gym`` does. Importing this module registers one single
environment per registered task (``quadlit.tasks.TASKS``), named ``quadlit/<Task>-v0``:
``quadlit/Balance-v0`` and ``quadlit/Reach-v0``.

    import gymnasium as gym
    import quadlit.gym  # registers the ids

    env = gym.make("quadlit/Reach-v0", render_mode="rgb_array")
    envs = gym.make_vec("quadlit/Reach-v0", num_envs=64)  # a QuadlitVectorEnv, no subprocesses

Time limits: the tasks end their own episodes with ``truncated`` after
``EnvSpec.max_episode_steps`` control steps, so the ids are registered with
``max_episode_steps=None`` and ``gym.make`` adds no ``TimeLimit`` wrapper.

Autoreset: ``QuadlitVectorEnv`` uses ``AutoresetMode.SAME_STEP`` (declared in
``metadata["autoreset_mode"]``), because the task kernels reset a finished environment inside
the same fused step. For an environment whose episode ends at a step, that step returns its
final reward and ``terminated``/``truncated``, and ``obs[i]`` is already the first observation
of its next episode; the last observation of the finished episode is ``infos["final_obs"][i]``
and that step's info is in ``infos["final_info"]`` (``infos["_final_obs"]`` and
``infos["_final_info"]`` mark the environments that ended). Keep the policy's recurrent state
reset for those environments before the next step.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

try:
    import gymnasium
    from gymnasium import spaces
    from gymnasium.vector import AutoresetMode, VectorEnv
    from gymnasium.vector.utils import batch_space
except ImportError as exc:  # pragma: no cover - exercised by a subprocess test
    raise ImportError(
        "quadlit.gym needs Gymnasium >= 1.0, which is not installed: pip install 'quadlit[gym]'"
    ) from exc

from quadlit.envs.base import EnvSpec, StepResult, VecTask
from quadlit.envs.pool import ShardPool
from quadlit.tasks import TASK_NAMES, make_task, task_params_from_dict, task_spec

__all__ = ["QuadlitEnv", "QuadlitVectorEnv", "env_id", "observation_bounds", "register_envs"]


def env_id(task: str) -> str:
    """The Gymnasium id of a task: ``"reach"`` -> ``"quadlit/Reach-v0"``."""
    return f"quadlit/{task.capitalize()}-v0"


def observation_bounds(spec: EnvSpec) -> tuple[np.ndarray, np.ndarray]:
    """Per-slot observation bounds of a task. Shape: low, high each (O,), float32.

    Taken from the spec's ``obs_low``/``obs_high`` (-inf/inf where a task's values are unbounded).
    """
    low, high = spec.obs_low, spec.obs_high
    shape = (spec.obs_dim,)
    return (np.broadcast_to(np.asarray(low, np.float32), shape).copy(),
            np.broadcast_to(np.asarray(high, np.float32), shape).copy())


def _warn_once_if_nonfinite(env: Any, actions: np.ndarray) -> None:
    """The task steps NaN or infinite action entries as zero: say so, the first time, per environment."""
    if getattr(env, "_warned_nonfinite_actions", False) or np.isfinite(actions).all():
        return
    env._warned_nonfinite_actions = True
    warnings.warn(f"{type(env).__name__}: actions with NaN or infinite entries are stepped as zero "
                  f"(this warning is shown once)", RuntimeWarning, stacklevel=3)


def _resolve_params(task: str, params: Any) -> Any:
    """The task's parameter record from None (defaults), a plain dict, or a record."""
    if task not in TASK_NAMES:
        raise ValueError(f"task must be one of {', '.join(TASK_NAMES)}, got {task!r}")
    if params is None:
        return task_params_from_dict(task, {})
    if isinstance(params, Mapping):
        return task_params_from_dict(task, dict(params))
    return params


def _spaces(spec: EnvSpec) -> tuple[spaces.Box, spaces.Box]:
    low, high = observation_bounds(spec)
    observation_space = spaces.Box(low, high, shape=(spec.obs_dim,), dtype=np.float32)
    action_space = spaces.Box(-1.0, 1.0, shape=(spec.action_dim,), dtype=np.float32)
    return observation_space, action_space


def _step_info(spec: EnvSpec, result: StepResult, i: int) -> dict[str, Any]:
    """The single-environment info of row ``i`` of a step."""
    info: dict[str, Any] = {
        "reward_terms": {name: float(result.reward_terms[i, k]) for k, name in enumerate(spec.reward_terms)}
    }
    if result.done[i]:
        info["episode_metrics"] = {name: float(result.episode[name][i]) for name in spec.episode_metrics}
    return info


class QuadlitEnv(gymnasium.Env):
    """One environment of a quadlit task as a ``gymnasium.Env`` (a 1-env batch underneath).

    Observation: Box float32 of shape (O,) (bounds from ``observation_bounds``). Action: Box
    float32 of shape (A,) in [-1, 1]. ``step`` returns the task's own ``terminated`` (failure)
    and ``truncated`` (time-out). Its info holds ``reward_terms`` (name -> this step's scaled
    term) and, at the end of an episode, ``episode_metrics`` (name -> value of the episode).
    After an episode ends call ``reset``, as with any Gymnasium environment.

    Seeding: ``reset(seed=s)`` reseeds the task's random stream from ``s``; the first
    ``reset()`` without a seed draws one from ``np_random``; later ones continue the stream.
    The task starts the next episode inside the step that ends one, so a ``reset()`` right
    after that step hands out that episode: with the same seed and actions, this environment
    lives the same episodes as environment 0 of a ``QuadlitVectorEnv``.

    Rendering: ``render_mode="rgb_array"`` draws the environment off screen with the raylib
    renderer (``quadlit.render``) into (height, width, 3) uint8 images; it needs an X display
    (Xvfb works) and raylib allows one open renderer per process. After the step that ends an
    episode the state drawn is already the next episode's.

    Args:
        task: task name (``quadlit.tasks.TASK_NAMES``).
        params: the task's parameters: None (defaults), a dict of fields, or the record.
        render_mode: None or "rgb_array".
        render_width, render_height: image size in pixels.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(self, task: str, params: Any = None, render_mode: str | None = None,
                 render_width: int = 640, render_height: int = 480) -> None:
        self.task_name = task
        self.params = _resolve_params(task, params)
        self._pool = ShardPool(1)
        self._task: VecTask = make_task(task, 1, self.params, seed=0, pool=self._pool)
        self.task_spec: EnvSpec = self._task.spec
        self.observation_space, self.action_space = _spaces(self.task_spec)

        from quadlit.render import frame_function
        from quadlit.render.display import display_available

        self._frame_fn = frame_function(self._task)
        # "rgb_array" only where it can work here (an X display for raylib): Gymnasium's env checker
        # and wrappers read this instance's render_modes to decide what to try
        can_render, why_not = display_available() if self._frame_fn is not None else (False, "the task draws nothing")
        # "rgb_array" of a task that draws is also accepted without a display (Stable-Baselines3's
        # make_vec_env asks every environment for it): render() then says why it cannot draw
        drawable = ["rgb_array"] if self._frame_fn is not None else []
        if render_mode is not None and render_mode not in drawable:
            self._task.close()
            self._pool.close()
            live = f" (for a live window: quadlit play --task {task})" if render_mode == "human" else ""
            raise ValueError(f"render_mode must be None or one of {drawable}, got {render_mode!r}{live}")
        self._cannot_render = None if can_render else why_not
        render_modes = ["rgb_array"] if can_render or render_mode == "rgb_array" else []
        self.metadata = {"render_modes": render_modes, "render_fps": round(1.0 / self.task_spec.control_dt, 6)}
        self.render_mode = render_mode
        self._render_size = (int(render_width), int(render_height))
        self._renderer: Any = None
        self._seeded = False
        self._next_episode_obs: np.ndarray | None = None  # the task's auto-reset, not yet handed out
        self._steps = 0
        self._return = 0.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is not None:
            task_seed: int | None = int(seed)
        elif not self._seeded:
            task_seed = int(self.np_random.integers(2**32))
        else:
            task_seed = None  # continue the streams
        self._seeded = True
        if task_seed is None and self._next_episode_obs is not None:
            obs = self._next_episode_obs  # the task already started it inside the last step
        else:
            obs = self._task.reset(task_seed)[0].copy()
        self._next_episode_obs = None
        self._steps, self._return = 0, 0.0
        if self._renderer is not None:
            self._renderer.clear_trail()
        return obs, {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        action = np.asarray(action, dtype=np.float32)
        dim = self.task_spec.action_dim
        if action.shape not in ((dim,), (1, dim)):  # (2, 6) would reshape silently into one action
            raise ValueError(f"action must have shape ({dim},), got {action.shape}")
        action = action.reshape(1, dim)
        _warn_once_if_nonfinite(self, action)
        result = self._task.step(action)
        done = bool(result.done[0])
        obs = (result.final_obs[0] if done else result.obs[0]).copy()
        self._next_episode_obs = result.obs[0].copy() if done else None
        reward = float(result.reward[0])
        self._steps += 1
        self._return += reward
        return obs, reward, bool(result.terminated[0]), bool(result.truncated[0]), _step_info(self.task_spec, result, 0)

    def render(self) -> np.ndarray | None:
        """The current state as an RGB image (H, W, 3) uint8 in "rgb_array" mode, else None."""
        if self.render_mode != "rgb_array":
            return None
        if self._cannot_render is not None:
            raise RuntimeError(f"render_mode 'rgb_array' cannot draw here: {self._cannot_render}")
        if self._renderer is None:
            from quadlit.render import Renderer

            self._renderer = Renderer(*self._render_size, offscreen=True, title=env_id(self.task_name))
        return self._renderer.render(self._frame_fn(self._task, 0), {"step": self._steps, "return": self._return})

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        if self._task is not None:
            self._task.close()
            self._pool.close()
            self._task = None  # type: ignore[assignment]


class QuadlitVectorEnv(VectorEnv):
    """``num_envs`` environments of a quadlit task as a ``gymnasium.vector.VectorEnv``.

    One fused kernel call per shard steps the whole batch (no subprocesses, no per-env Python).

    Autoreset is ``AutoresetMode.SAME_STEP``: an environment whose episode ends at a step
    returns that step's reward, ``terminated`` (failure) or ``truncated`` (time-out), and
    already the first observation of its next episode in ``obs[i]``. That step's infos carry

    * ``final_obs``: object array (N,), the final observation (O,) of each finished episode,
      None elsewhere; ``_final_obs``: bool (N,), which environments finished.
    * ``final_info``: the finished step's info, batched: ``reward_terms`` and
      ``episode_metrics`` (dicts of name -> (N,) arrays with ``_<name>`` masks, zero where
      the mask is False); ``_final_info``: bool (N,), the same mask as ``_final_obs``.

    The infos of environments that go on carry ``reward_terms`` (name -> (N,) float32, the
    scaled terms of the returned ``rewards``; ``_reward_terms`` masks them); a finished
    environment's are in ``final_info``, as Gymnasium's own ``SyncVectorEnv`` in SAME_STEP mode
    lays them out (the reset that follows adds no info).

    Shapes: observations (N, O) float32; actions (N, A) in [-1, 1] (clipped); rewards,
    terminations, truncations (N,). Returned arrays are copies.

    Seeding: ``reset(seed=s)`` reseeds every environment's stream from ``s`` (environment i
    gets stream i of ``s``); ``reset()`` with no seed uses the constructor's ``seed`` the first
    time and continues the streams after that. Partial resets are not supported.

    For trainers beyond Gymnasium's contract: ``privileged()`` gives what only the simulator
    knows (an asymmetric critic's extra input) and ``set_progress(env_steps)`` tells a task whose
    parameters follow a schedule over training how far the run is.

    Args:
        task: task name (``quadlit.tasks.TASK_NAMES``).
        num_envs: environments in the batch (>= 1).
        params: the task's parameters: None (defaults), a dict of fields, or the record.
        seed: the seed of the first ``reset()`` without one.
        physics_threads: threads stepping physics; None: one per available core.
        render_mode: only None (vector rendering is not provided).
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, task: str, num_envs: int, params: Any = None, seed: int = 0,
                 physics_threads: int | None = None, render_mode: str | None = None) -> None:
        if render_mode is not None:
            raise ValueError(f"QuadlitVectorEnv does not render; render_mode must be None, got {render_mode!r}")
        self.task_name = task
        self.params = _resolve_params(task, params)
        self.task_spec: EnvSpec = task_spec(task, self.params)
        self._pool = ShardPool(physics_threads)
        try:
            self._task: VecTask = make_task(task, num_envs, self.params, seed=seed, pool=self._pool)
        except BaseException:
            self._pool.close()
            raise
        self.num_envs = self._task.num_envs
        self.render_mode = None
        self.metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": [],
                         "render_fps": round(1.0 / self.task_spec.control_dt, 6)}
        self.single_observation_space, self.single_action_space = _spaces(self.task_spec)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._seed = int(seed)
        self._seeded = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an int or None (one seed for the whole batch), got {seed!r}")
        if options and "reset_mask" in options:
            raise ValueError("QuadlitVectorEnv does not support partial resets (options['reset_mask'])")
        super().reset(seed=seed)
        if seed is not None:
            task_seed: int | None = int(seed)
        elif not self._seeded:
            task_seed = self._seed
        else:
            task_seed = None
        self._seeded = True
        return self._task.reset(task_seed).copy(), {}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        actions = np.asarray(actions, dtype=np.float32)
        expected = (self.num_envs, self.task_spec.action_dim)
        if actions.shape != expected:
            raise ValueError(f"actions must have shape {expected}, got {actions.shape}")
        _warn_once_if_nonfinite(self, actions)
        result = self._task.step(actions)
        done = result.done.copy()
        terms = result.reward_terms.T  # (K, N)
        infos: dict[str, Any] = {}
        if not done.all():  # the info of environments that go on (a finished one's is in final_info)
            infos["reward_terms"] = self._named(self.task_spec.reward_terms, terms, ~done)
            infos["_reward_terms"] = ~done
        if done.any():
            final_obs = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(done):
                final_obs[i] = result.final_obs[i].copy()
            episode = [result.episode[name] for name in self.task_spec.episode_metrics]
            infos["final_obs"] = final_obs
            infos["_final_obs"] = done
            infos["final_info"] = {
                "reward_terms": self._named(self.task_spec.reward_terms, terms, done),
                "_reward_terms": done.copy(),
                "episode_metrics": self._named(self.task_spec.episode_metrics, episode, done),
                "_episode_metrics": done.copy(),
            }
            infos["_final_info"] = done.copy()
        return (result.obs.copy(), result.reward.astype(np.float64), result.terminated.copy(),
                result.truncated.copy(), infos)

    def privileged(self) -> np.ndarray | None:
        """The privileged observation after the last ``reset`` or ``step``: what only the simulator
        knows (the balance task's push, randomised physics and trunk height; layout
        ``task_spec.privileged_segments``), for an asymmetric critic, never for the policy. Like the
        observation, an environment whose episode ended in the last step already shows its next
        episode's. Shape (N, P), float32, a copy; None when the task has none
        (``task_spec.privileged_dim == 0``)."""
        privileged = self._task.privileged()
        return None if privileged is None else privileged.copy()

    def set_progress(self, env_steps: int) -> None:
        """Tell the task the training run's env-steps so far (all environments together), before
        the steps they govern. A task whose parameters follow a schedule over training sets them
        from it (the balance task's ``recovery_step_ramp``); a task never told runs at the end of
        its schedule, as an evaluation does."""
        self._task.set_progress(int(env_steps))

    @staticmethod
    def _named(names: tuple[str, ...], columns: Any, mask: np.ndarray) -> dict[str, np.ndarray]:
        """{name: (N,) column, zero outside ``mask``; "_name": mask}: Gymnasium's batched info layout."""
        out: dict[str, np.ndarray] = {}
        for name, column in zip(names, columns):
            column = np.asarray(column)
            out[name] = np.where(mask, column, 0).astype(column.dtype)
            out[f"_{name}"] = mask.copy()
        return out

    def close_extras(self, **kwargs: Any) -> None:
        self._task.close()
        self._pool.close()


def _single_entry_point(task: str = "reach", render_mode: str | None = None, **kwargs: Any) -> gymnasium.Env:
    """What ``gymnasium.make`` calls: a function rather than the class, so that Gymnasium does not
    turn ``render_mode="human"`` into its pygame ``HumanRendering`` wrapper (which then asks for
    pygame) but passes it on, and ``QuadlitEnv`` says what it draws. ``rgb_array_list`` is
    ``rgb_array`` frames collected, as Gymnasium would make it."""
    if render_mode == "rgb_array_list":
        from gymnasium.wrappers import RenderCollection

        return RenderCollection(QuadlitEnv(task, render_mode="rgb_array", **kwargs))
    return QuadlitEnv(task, render_mode=render_mode, **kwargs)


def _vector_entry_point(num_envs: int = 1, task: str = "reach", **kwargs: Any) -> QuadlitVectorEnv:
    """What ``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")`` calls."""
    return QuadlitVectorEnv(task, num_envs, **kwargs)


def register_envs() -> list[str]:
    """Register ``quadlit/<Task>-v0`` for every task in the registry that is not registered yet.

    Called on import. Returns: the ids now registered for quadlit tasks.
    """
    ids = []
    for name in TASK_NAMES:
        gym_id = env_id(name)
        if gym_id not in gymnasium.registry:
            gymnasium.register(
                id=gym_id,
                entry_point=_single_entry_point,
                vector_entry_point=_vector_entry_point,
                max_episode_steps=None,  # the task truncates its own episodes
                kwargs={"task": name},
            )
        ids.append(gym_id)
    return ids


register_envs()
