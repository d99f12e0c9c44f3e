"""An rsl_rl ``VecEnv`` over quadlit's batched environments (rsl_rl 5.x, ``pip install rsl-rl-lib``).

    from rsl_rl.runners import OnPolicyRunner
    from quadlit.rsl_rl import QuadlitRslRlVecEnv

    env = QuadlitRslRlVecEnv("balance", num_envs=256)
    OnPolicyRunner(env, train_cfg, log_dir=None).learn(100)

rsl_rl (the PPO of legged_gym, Isaac Lab and mjlab) takes its own ``VecEnv`` contract, not
Gymnasium's: observations as a ``TensorDict`` of named groups, ``dones`` with time-outs told
apart in ``extras["time_outs"]`` (rsl_rl bootstraps them from the value of the step), episode
statistics in ``extras["log"]``. This adapter steps every environment with one fused kernel call
per shard through ``QuadlitVectorEnv`` and speaks that contract:

- ``policy``: the task's observation, shape (N, O);
- ``critic`` (tasks with a privileged observation, such as ``balance``): the observation followed
  by the privileged observation (``QuadlitVectorEnv.privileged``), shape (N, O + P), as Isaac
  Lab's asymmetric critics read it: ``obs_groups={"actor": ["policy"], "critic": ["critic"]}``
  (for a task without one, ``"critic": ["policy"]``).

The training progress a task's schedule follows (the balance task's ``recovery_step_ramp``) is
the adapter's own count of env-steps, ``env_steps``, told to the task before every step.
rsl_rl is an optional extra: ``pip install 'quadlit[rsl_rl]'``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

try:
    import torch
    from rsl_rl.env import VecEnv
    from tensordict import TensorDict

    from quadlit.gym import QuadlitVectorEnv
except ImportError as exc:  # pragma: no cover - exercised by a subprocess test
    raise ImportError(
        "quadlit.rsl_rl needs rsl_rl >= 5 (and Gymnasium), which is not installed: pip install 'quadlit[rsl_rl]'"
    ) from exc


def _check_version() -> None:
    """Releases before 5 speak another ``VecEnv`` contract (a source checkout has no version: trusted)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("rsl-rl-lib")
    except PackageNotFoundError:
        return
    if int(found.split(".")[0]) < 5:
        raise ImportError(f"quadlit.rsl_rl needs rsl_rl >= 5, found {found}: pip install 'quadlit[rsl_rl]'")


_check_version()
__all__ = ["QuadlitRslRlVecEnv"]


class QuadlitRslRlVecEnv(VecEnv):
    """``num_envs`` environments of quadlit task ``task`` as an rsl_rl ``VecEnv``.

    ``step(actions)`` returns ``(obs, rewards, dones, extras)``: ``obs`` the TensorDict of the
    module docstring, already the next episode's where an episode ended (quadlit resets inside
    the step); ``rewards`` (N,) float32; ``dones`` (N,) long, 1 where an episode ended by failure
    or time-out; ``extras["time_outs"]`` (N,) bool, the time-outs that are not also failures;
    ``extras["log"]`` the task's episode metrics (``"Episode/<name>"``: one value per episode
    that ended this step, only when one did).

    ``episode_length_buf`` counts each environment's steps into its episode; the task keeps its
    own episode clocks, so it cannot be set (``learn(init_at_random_ep_len=True)`` is refused).

    Args:
        task: task name ("balance", "reach").
        num_envs: environments in the batch.
        params: the task's parameters: None (defaults), a dict of fields, or the record.
        seed: seed of the environments' random streams.
        physics_threads: threads stepping physics; None: one per available core.
        device: where the returned tensors live (the physics runs on the CPU).
    """

    def __init__(self, task: str, num_envs: int, params: Any = None, seed: int = 0,
                 physics_threads: int | None = None, device: str | torch.device = "cpu") -> None:
        self.venv = QuadlitVectorEnv(task, num_envs, params=params, seed=seed, physics_threads=physics_threads)
        self.task_spec = self.venv.task_spec
        self.num_envs = self.venv.num_envs
        self.num_actions = self.task_spec.action_dim
        self.max_episode_length = self.task_spec.max_episode_steps
        self.device = torch.device(device)
        self.cfg = {"task": task, "num_envs": self.num_envs, "seed": int(seed),
                    "params": dataclasses.asdict(self.venv.params)}
        self.env_steps = 0  # the training progress told to the task
        self._episode_length = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        obs, _ = self.venv.reset()
        self._obs = self._observations(obs)

    @property
    def episode_length_buf(self) -> torch.Tensor:
        """Shape (N,), long: steps into each environment's current episode."""
        return self._episode_length

    @episode_length_buf.setter
    def episode_length_buf(self, value: torch.Tensor) -> None:
        raise ValueError("quadlit tasks keep their own episode clocks: episode lengths cannot be set "
                         "(call OnPolicyRunner.learn with init_at_random_ep_len=False)")

    def get_observations(self) -> TensorDict:
        return self._obs

    def step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict]:
        """Advance every environment by one control step. ``actions``: shape (N, A), clipped to [-1, 1]."""
        self.venv.set_progress(self.env_steps)
        obs, rewards, terminated, truncated, infos = self.venv.step(actions.detach().to("cpu", torch.float32).numpy())
        self.env_steps += self.num_envs
        done = terminated | truncated
        self._obs = self._observations(obs)
        done_t = torch.from_numpy(done).to(self.device)
        self._episode_length += 1
        self._episode_length[done_t] = 0
        extras: dict[str, Any] = {"time_outs": torch.from_numpy(truncated & ~terminated).to(self.device), "log": {}}
        if done.any():
            metrics = infos["final_info"]["episode_metrics"]
            extras["log"] = {f"Episode/{name}": torch.from_numpy(metrics[name][done]).to(self.device)
                             for name in self.task_spec.episode_metrics}
        return (self._obs, torch.from_numpy(rewards.astype(np.float32)).to(self.device), done_t.long(), extras)

    def close(self) -> None:
        self.venv.close()

    def _observations(self, obs: np.ndarray) -> TensorDict:
        groups = {"policy": torch.from_numpy(obs)}
        privileged = self.venv.privileged()
        if privileged is not None:
            groups["critic"] = torch.from_numpy(np.concatenate([obs, privileged], axis=1))
        return TensorDict(groups, batch_size=[self.num_envs], device=self.device)
