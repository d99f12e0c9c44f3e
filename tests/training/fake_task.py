"""A tiny pure-Python VecTask whose every number is predictable, for testing the trainer."""

import numpy as np
import torch

from quadlit.envs.base import EnvSpec, StepResult, VecTask


class CountingTask(VecTask):
    """obs = [env_id, step_in_episode, 1]; reward = step_in_episode after the step; env i's
    episodes last 3 + i steps; even envs end by failure (terminated), odd ones by time-out."""

    def __init__(self, num_envs: int):
        self.num_envs = num_envs
        self.spec = EnvSpec("counting", obs_dim=3, action_dim=2, reward_terms=("count",),
                            episode_metrics=("return", "length"), max_episode_steps=3 + num_envs)
        self.steps = np.zeros(num_envs, dtype=np.int64)
        self.returns = np.zeros(num_envs)
        self.length = 3 + np.arange(num_envs)
        self.actions_seen = []

    def _obs(self):
        return np.stack([np.arange(self.num_envs), self.steps, np.ones(self.num_envs)], 1).astype(np.float32)

    def reset(self, seed=None):
        self.steps[:] = 0
        self.returns[:] = 0
        return self._obs()

    def step(self, actions):
        self.actions_seen.append(actions.copy())
        self.steps += 1
        reward = self.steps.astype(np.float32)
        self.returns += reward
        done = self.steps >= self.length
        terminated = done & (np.arange(self.num_envs) % 2 == 0)
        truncated = done & ~terminated
        final_obs = self._obs()
        episode = {"return": self.returns.astype(np.float32).copy(), "length": self.steps.astype(np.float32)}
        self.steps[done] = 0
        self.returns[done] = 0
        return StepResult(obs=self._obs(), reward=reward, terminated=terminated, truncated=truncated,
                          final_obs=final_obs, reward_terms=reward[:, None].copy(), episode=episode)

    def state_dict(self):
        return {"steps": self.steps.copy(), "returns": self.returns.copy()}

    def load_state_dict(self, state):
        self.steps[:] = state["steps"]
        self.returns[:] = state["returns"]


class CountingPolicy(torch.nn.Module):
    """State (B, 2): h[:, 0] counts steps since the last episode start, h[:, 1] holds the last
    obs step. value = h[:, 0] after the update; actions are zero."""

    def initial_state(self, batch, device=None):
        z = torch.zeros(batch, 2, device=device)
        return (z, z.clone())

    def act(self, obs, state, episode_start, deterministic=False, generator=None):
        h, c = state
        keep = (1.0 - episode_start)[:, None]
        h = h * keep
        h = torch.stack([h[:, 0] + 1.0, obs[:, 1]], 1)
        action = torch.zeros(obs.shape[0], 2)
        return action, action.clone(), torch.zeros(obs.shape[0]), h[:, 0].clone(), (h, c * keep)
