"""WorldModel: a small latent model of the environment, trained on the PPO rollouts.

    obs --encoder--> z --dynamics(z, action)--> z' (residual: z' = z + f(z, a))
    z  --decoder--> obs          (reconstruction)
    z' --decoder--> next obs     (dynamics, judged in observation space)
    (z', a) --reward head--> reward,  --done head--> termination logit

The dynamics term compares ``decode(z')`` with the real next observation rather than ``z'``
with ``encode(next_obs)``: a latent target can shrink towards a constant to make the loss
small, an observation target cannot, and the error is in the observation's own units, which
is what the trainer logs.

Shapes: B = batch of transitions, O = obs_dim, A = action_dim, L = latent_dim.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_dim, hidden), nn.ELU(), nn.Linear(hidden, hidden), nn.ELU(), nn.Linear(hidden, out_dim)
    )


def _wide(x: torch.Tensor) -> torch.Tensor:
    """Upcast a half-precision (autocast) tensor to float32 for the losses."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class WorldModel(nn.Module):
    """Encoder, residual latent dynamics, reward and done heads, and decoder.

    Args:
        obs_dim: length of one observation vector.
        action_dim: length of one action vector.
        latent_dim: size of the latent state z.
        hidden: width of the hidden layers of every MLP.
    """

    LOSS_TERMS = ("reconstruction", "dynamics", "reward", "done")

    def __init__(self, obs_dim: int, action_dim: int, latent_dim: int = 128, hidden: int = 128) -> None:
        super().__init__()
        sizes = {"obs_dim": obs_dim, "action_dim": action_dim, "latent_dim": latent_dim, "hidden": hidden}
        for name, value in sizes.items():
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.obs_dim = obs_dim
        self.action_dim = action_dim
        self.latent_dim = latent_dim
        self.encoder = _mlp(obs_dim, hidden, latent_dim)
        self.dynamics = _mlp(latent_dim + action_dim, hidden, latent_dim)
        self.reward_head = _mlp(latent_dim + action_dim, hidden, 1)
        self.done_head = _mlp(latent_dim + action_dim, hidden, 1)
        self.decoder = _mlp(latent_dim, hidden, obs_dim)
        # The residual starts near the identity: the first prediction is "nothing changes".
        nn.init.zeros_(self.dynamics[-1].weight)
        nn.init.zeros_(self.dynamics[-1].bias)

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """Shape: obs (..., O) -> z (..., L)."""
        return self.encoder(obs)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Shape: z (..., L) -> obs (..., O)."""
        return self.decoder(latent)

    def step_latent(
        self, latent: torch.Tensor, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One imagined step.

        Args:
            latent: z, shape (..., L).
            action: shape (..., A).

        Returns:
            next_latent: z', shape (..., L).
            reward: predicted reward, shape (...,).
            done_logit: logit of the termination probability (sigmoid gives it), shape (...,).
        """
        next_latent = latent + self.dynamics(torch.cat([latent, action], dim=-1))
        head_input = torch.cat([next_latent, action], dim=-1)
        return next_latent, self.reward_head(head_input).squeeze(-1), self.done_head(head_input).squeeze(-1)

    def predict(
        self, obs: torch.Tensor, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Predict a transition from an observation.

        Shapes: obs (..., O), action (..., A) -> next_obs (..., O), reward (...,), done_prob (...,).
        """
        next_latent, reward, done_logit = self.step_latent(self.encode(obs), action)
        return self.decode(next_latent), reward, torch.sigmoid(done_logit)

    def losses(
        self,
        obs: torch.Tensor,
        action: torch.Tensor,
        reward: torch.Tensor,
        next_obs: torch.Tensor,
        done: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """Named loss terms on a batch of transitions; each is also the logged prediction error.

        Args:
            obs: shape (B, O).
            action: the action taken (squashed, in (-1, 1)), shape (B, A).
            reward: shape (B,).
            next_obs: the observation the action led to, shape (B, O); for an episode that
                ended it must be the final observation, not the first one of the next episode.
            done: shape (B,), bool or float: 1 where the episode terminated (failure).

        Returns:
            scalar float32 tensors: "reconstruction" (MSE of decode(encode(obs)) vs obs),
            "dynamics" (MSE of decode(z') vs next_obs), "reward" (MSE), "done" (binary cross
            entropy with logits) and "total" (their sum).
        """
        batch = obs.shape[0]
        expected = {
            "obs": (obs, (batch, self.obs_dim)),
            "action": (action, (batch, self.action_dim)),
            "reward": (reward, (batch,)),
            "next_obs": (next_obs, (batch, self.obs_dim)),
            "done": (done, (batch,)),
        }
        for name, (tensor, shape) in expected.items():
            if tuple(tensor.shape) != shape:
                raise ValueError(f"{name}: expected shape {shape}, got {tuple(tensor.shape)}")

        latent = self.encode(obs)
        next_latent, reward_pred, done_logit = self.step_latent(latent, action)
        done_logit = _wide(done_logit)
        terms = {
            "reconstruction": F.mse_loss(_wide(self.decode(latent)), _wide(obs)),
            "dynamics": F.mse_loss(_wide(self.decode(next_latent)), _wide(next_obs)),
            "reward": F.mse_loss(_wide(reward_pred), _wide(reward)),
            "done": F.binary_cross_entropy_with_logits(done_logit, done.to(done_logit.dtype)),
        }
        terms["total"] = sum(terms.values())
        return terms
