"""A Stable-Baselines3 ``VecEnv`` over quadlit's batched environments.

    from stable_baselines3 import PPO
    from quadlit.sb3 import QuadlitSB3VecEnv

    env = QuadlitSB3VecEnv("balance", num_envs=64)
    PPO("MlpPolicy", env).learn(100_000)

Stable-Baselines3 takes its own ``VecEnv`` type, not a Gymnasium ``VectorEnv``, so
``QuadlitVectorEnv`` cannot be handed to it directly, and wrapping single ``QuadlitEnv``s in a
``DummyVecEnv`` steps them one Python call each. This adapter steps all environments with one
fused kernel call, as ``QuadlitVectorEnv`` does, and speaks SB3's protocol: ``step_wait``
returns ``(obs, rewards, dones, infos)`` with ``dones = terminated | truncated``, and the info
of an environment whose episode just ended carries ``terminal_observation`` (its final
observation; ``obs[i]`` is already the first of the next episode) and ``TimeLimit.truncated``
(a time-out, not a failure: SB3 then bootstraps from the terminal observation) plus the
episode's metrics under ``episode_metrics`` and, as SB3's ``Monitor`` gives them, its return,
length and end time under ``episode`` (``r``, ``l``, ``t``: seconds since the adapter was made),
so SB3 logs ``rollout/ep_rew_mean`` and ``ep_len_mean`` without a ``VecMonitor`` (wrapping it in
one works as well).

Seeding: ``seed(s)`` (SB3's API) makes the next ``reset()`` reseed the batch from ``s``.
Rendering is not provided (``render_mode`` None). Stable-Baselines3 is an optional extra:
``pip install 'quadlit[bench]'``.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

try:
    from stable_baselines3.common.vec_env.base_vec_env import VecEnv
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("quadlit.sb3 needs Stable-Baselines3: pip install 'quadlit[bench]'") from exc

from quadlit.gym import QuadlitVectorEnv


class QuadlitSB3VecEnv(VecEnv):
    """``num_envs`` environments of quadlit task ``task`` as a Stable-Baselines3 ``VecEnv``.

    Args:
        task: task name ("balance", "reach").
        num_envs: environments in the batch.
        params: the task's parameters: None (defaults), a dict of fields, or the record.
        seed: seed of the first ``reset()`` (until ``seed()`` is called).
        physics_threads: threads stepping physics; None: one per available core.
    """

    def __init__(self, task: str, num_envs: int, params: Any = None, seed: int = 0,
                 physics_threads: int | None = None) -> None:
        self.venv = QuadlitVectorEnv(task, num_envs, params=params, seed=seed, physics_threads=physics_threads)
        self.render_mode = None
        super().__init__(self.venv.num_envs, self.venv.single_observation_space, self.venv.single_action_space)
        self._actions: np.ndarray | None = None
        self._next_seed: int | None = None
        self._t_start = time.time()  # SB3's Monitor times episodes from here

    # ------------------------------------------------------------------ SB3 protocol
    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        seeds = super().seed(seed)
        self._next_seed = int(seeds[0])  # one stream per environment is derived from it
        return seeds

    def reset(self) -> np.ndarray:
        obs, _ = self.venv.reset(seed=self._next_seed)
        self._next_seed = None
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.float32).reshape(self.num_envs, -1)

    def step_wait(self):
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async()")
        obs, rewards, terminated, truncated, info = self.venv.step(self._actions)
        self._actions = None
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            metrics = info["final_info"]["episode_metrics"]
            names = [k for k in metrics if not k.startswith("_")]
            for i in np.flatnonzero(dones):
                infos[i]["terminal_observation"] = info["final_obs"][i]
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
                infos[i]["episode_metrics"] = {k: float(metrics[k][i]) for k in names}
                infos[i]["episode"] = {"r": float(metrics["return"][i]), "l": int(metrics["length"][i]),
                                       "t": round(time.time() - self._t_start, 6)}
        return obs, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    # ------------------------------------------------------------------ attributes (one batch, one object)
    def _indices(self, indices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        value = getattr(self, attr_name) if attr_name == "render_mode" else getattr(self.venv, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        raise AttributeError(f"QuadlitSB3VecEnv: the environments share one batch; cannot set {attr_name!r} per environment")

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        raise AttributeError(f"QuadlitSB3VecEnv: no per-environment methods ({method_name!r}); use .venv")

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False for _ in self._indices(indices)]
