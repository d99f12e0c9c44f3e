"""What every quadlit policy shares: a tanh-squashed Gaussian over actions with a global,
state-independent log std, acting one step at a time and re-evaluating whole sequences.

A policy provides ``initial_state(B, device)``, ``forward(obs (T, B, O), state, episode_start
(T, B), need_state) -> (mean (T, B, A), value (T, B), new_state)`` and a ``log_std`` parameter
(A,); ``act`` and ``evaluate`` follow from them. ``EntityBelief`` (recurrent, the default) and
``MlpPolicy`` (feed-forward, for comparison) are the two.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from quadlit.models.distributions import gaussian_entropy, sample_squashed, squashed_log_prob

State = tuple[torch.Tensor, torch.Tensor]


def wide(x: torch.Tensor) -> torch.Tensor:
    """Upcast a half-precision (autocast) output to float32 for the losses."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class SquashedGaussianPolicy(nn.Module):
    """``act`` and ``evaluate`` of a policy whose ``forward`` gives the pre-tanh action mean."""

    log_std: nn.Parameter

    def act(
        self,
        obs: torch.Tensor,
        state: State,
        episode_start: torch.Tensor,
        deterministic: bool = False,
        generator: torch.Generator | None = None,
        log_std_offset: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, State]:
        """One control step for a batch of environments (call under ``torch.no_grad()`` when
        collecting).

        Args:
            obs: shape (B, O).
            state: recurrent state, each (B, H).
            episode_start: shape (B,); 1 where this step starts a new episode.
            deterministic: act with ``tanh(mean)`` instead of sampling.
            generator: optional random generator for the sample.
            log_std_offset: optional shape (B,): added to the log std of each environment's
                action distribution (its own noise level; see ``QuadlitModule``'s ``quiet_envs``).
            noise: optional shape (B, A): the standard-normal draw to scale by the std instead of
                a fresh one (temporally correlated noise; the log-probability is still the
                per-step Gaussian's).

        Returns:
            action: shape (B, A), in (-1, 1).
            raw_u: pre-squash action, shape (B, A) (store it for ``evaluate``).
            log_prob: shape (B,), float32 or wider.
            value: shape (B,) (zeros when the policy has no value head).
            new_state: each (B, H).
        """
        mean, value, new_state = self.forward(obs.unsqueeze(0), state, episode_start.unsqueeze(0))
        mean, value = mean.squeeze(0), value.squeeze(0)
        log_std = self._log_std(log_std_offset)
        if deterministic:
            raw_u = mean
            action = torch.tanh(raw_u)
        else:
            action, raw_u = sample_squashed(mean, log_std, generator, noise)
        log_prob = squashed_log_prob(raw_u, mean, log_std)
        return action, raw_u, log_prob, value, new_state

    def evaluate(
        self, obs: torch.Tensor, raw_u: torch.Tensor, state: State, episode_start: torch.Tensor,
        log_std_offset: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Re-evaluate stored actions on whole sequences (the PPO update).

        Args:
            obs: shape (T, B, O).
            raw_u: pre-squash actions from ``act``, shape (T, B, A).
            state: the state stored before step 0, each (B, H).
            episode_start: shape (T, B).
            log_std_offset: optional shape (B,), as given to ``act`` when the actions were drawn.

        Returns:
            log_prob: shape (T, B), float32 or wider.
            entropy: pre-squash Gaussian entropy of the policy's own log std (no offset), shape
                (T, B), float32 or wider.
            value: shape (T, B).
        """
        mean, value, _ = self.forward(obs, state, episode_start, need_state=False)
        log_prob = squashed_log_prob(raw_u, mean, self._log_std(log_std_offset))
        entropy = gaussian_entropy(self.log_std, log_prob.shape)
        return log_prob, entropy, value

    def _log_std(self, offset: torch.Tensor | None) -> torch.Tensor:
        """The log std, (A,); with a per-environment offset (B,), each row's own: (B, A)."""
        return self.log_std if offset is None else self.log_std + offset[:, None].to(self.log_std.dtype)


class MlpPolicy(SquashedGaussianPolicy):
    """Feed-forward policy (no memory), for comparison with EntityBelief: obs -> MLP (ELU) ->
    action mean, and a value head when the actor-critic shares the body.

    Its "state" is a dummy (B, 1) pair of zeros, so it fits the recurrent rollout machinery.

    Args:
        obs_dim: length of one observation vector.
        action_dim: length of one action vector.
        hidden: widths of the hidden layers.
        init_log_std: initial value of the global log std.
        value_head: give the body a value head (False with a separate critic: values are zeros).
    """

    lstm_hidden = 1

    def __init__(self, obs_dim: int, action_dim: int, hidden: Sequence[int] = (256, 128),
                 init_log_std: float = -0.5, value_head: bool = True) -> None:
        super().__init__()
        if obs_dim < 1 or action_dim < 1 or not hidden or min(hidden) < 1:
            raise ValueError(f"obs_dim, action_dim and every hidden width must be >= 1, got {obs_dim}, "
                             f"{action_dim}, {list(hidden)}")
        self.obs_dim, self.action_dim = obs_dim, action_dim
        layers: list[nn.Module] = []
        width = obs_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ELU()]
            width = h
        self.body = nn.Sequential(*layers)
        self.policy_head = nn.Linear(width, action_dim)
        self.value_head = nn.Linear(width, 1) if value_head else None
        self.log_std = nn.Parameter(torch.full((action_dim,), float(init_log_std)))
        nn.init.orthogonal_(self.policy_head.weight, gain=0.01)  # first actions near 0: the default pose
        nn.init.zeros_(self.policy_head.bias)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        device = self.log_std.device if device is None else device
        zeros = torch.zeros(batch_size, 1, device=device, dtype=self.log_std.dtype)
        return zeros, zeros.clone()

    def forward(self, obs: torch.Tensor, state: State, episode_start: torch.Tensor,
                need_state: bool = True) -> tuple[torch.Tensor, torch.Tensor, State | None]:
        """Shape: obs (T, B, O) -> mean (T, B, A), value (T, B), the (unchanged) state."""
        core = self.body(obs)
        mean = self.policy_head(core)
        value = self.value_head(core).squeeze(-1) if self.value_head is not None else core.new_zeros(core.shape[:-1])
        return wide(mean), wide(value), (state if need_state else None)
