"""WorldModel: a small latent model of the environment, trained on the PPO rollouts.

    obs --encoder--> z --dynamics(z, action)--> z' (residual: z' = z + f(z, a))
    z  --decoder--> obs          (reconstruction)
    z' --decoder--> next obs     (dynamics, judged in observation space)
    (z', a) --reward head--> reward,  --done head--> termination logit

The dynamics term compares ``decode(z')`` with the real next observation rather than ``z'``
with ``encode(next_obs)``: a latent target can shrink towards a constant to make the loss
small, an observation target cannot, and the error is in the observation's own units, which
is what the trainer logs.

Memory: with ``history`` h > 1 the encoder sees the last h observations and the h - 1 actions
between them (``history_inputs``), so it can infer what one observation hides (the friction,
added mass and motor strength drawn per episode; accelerations).

Two options, both off by default (off, every prediction and loss is what it always was):

- ``contact_slots``: slots that are 0/1 flags (a foot's contact). The decoder's outputs there
  are logits, trained with binary cross-entropy; ``decode`` maps them onto the slot's two levels
  (``set_contact_levels``: the normalised values of 0 and 1), as the probability
  (``contact_output="probability"``) or as the nearer level (``"threshold"``).
- ``obs_residual``: the open-loop state is the observation beside the latent,
  s = [obs, z], and a step adds a decoded change to the observation: obs' = obs + decoder(z'),
  z' = z + f(z, a). The start is never squeezed through the latent; what does not change is
  copied exactly. Contact slots (with ``contact_slots``) are classified from z', not accumulated.

Training: ``losses`` is the one-step objective; ``sequence_losses`` unrolls the dynamics open loop
for H steps along the actions taken (``sample_sequences`` draws them from a rollout) and judges
every step's decoded prediction against the real observation, so the model is trained on its own
predictions as inputs, which is how it is used.

Shapes: B = batch of transitions, O = obs_dim, A = action_dim, L = latent_dim, H = horizon,
F = the encoder's input (O when history is 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

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
        history: observations the encoder sees (1: the current one only; h: the last h and the
            h - 1 actions between them, see ``history_inputs``).
        contact_slots: observation slots that are 0/1 flags, predicted by a classifier (empty:
            none; every slot is regressed).
        contact_output: how ``decode`` turns a contact logit into the slot's value:
            "probability" (low + p (high - low)) or "threshold" (the nearer level).
        obs_residual: carry the observation in the open-loop state and predict its change
            (obs' = obs + delta) instead of decoding it whole from the latent.
    """

    LOSS_TERMS = ("reconstruction", "dynamics", "reward", "done")
    CONTACT_OUTPUTS = ("probability", "threshold")

    def __init__(self, obs_dim: int, action_dim: int, latent_dim: int = 128, hidden: int = 128,
                 history: int = 1, *, contact_slots: Sequence[int] = (), contact_output: str = "probability",
                 obs_residual: bool = False) -> None:
        super().__init__()
        sizes = {"obs_dim": obs_dim, "action_dim": action_dim, "latent_dim": latent_dim, "hidden": hidden,
                 "history": history}
        for name, value in sizes.items():
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.obs_dim = obs_dim
        self.action_dim = action_dim
        self.latent_dim = latent_dim
        self.history = history
        self.input_dim = history * obs_dim + (history - 1) * action_dim
        self.encoder = _mlp(self.input_dim, hidden, latent_dim)
        self.dynamics = _mlp(latent_dim + action_dim, hidden, latent_dim)
        self.reward_head = _mlp(latent_dim + action_dim, hidden, 1)
        self.done_head = _mlp(latent_dim + action_dim, hidden, 1)
        self.decoder = _mlp(latent_dim, hidden, obs_dim)
        # The residual starts near the identity: the first prediction is "nothing changes".
        nn.init.zeros_(self.dynamics[-1].weight)
        nn.init.zeros_(self.dynamics[-1].bias)
        if not isinstance(obs_residual, bool):
            raise ValueError(f"obs_residual must be True or False, got {obs_residual!r}")
        self.obs_residual = obs_residual
        if obs_residual:  # the first change predicted is none: the first prediction is copy-last
            nn.init.zeros_(self.decoder[-1].weight)
            nn.init.zeros_(self.decoder[-1].bias)
        slots = list(contact_slots)
        if (any(not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < obs_dim for i in slots)
                or len(set(slots)) != len(slots)):
            raise ValueError(f"contact_slots must be distinct integers in 0..{obs_dim - 1}, got {tuple(contact_slots)!r}")
        self.contact_slots = tuple(slots)
        self.contact_output = contact_output  # checked by the property's setter
        if slots:
            mask = torch.zeros(obs_dim, dtype=torch.bool)
            mask[slots] = True
            self.register_buffer("contact_index", torch.tensor(slots), persistent=False)
            self.register_buffer("contact_mask", mask, persistent=False)
            self.register_buffer("contact_low", torch.zeros(len(slots)))
            self.register_buffer("contact_high", torch.ones(len(slots)))

    @property
    def contact_output(self) -> str:
        return self._contact_output

    @contact_output.setter
    def contact_output(self, value: str) -> None:
        if value not in self.CONTACT_OUTPUTS:
            raise ValueError(f"contact_output must be one of {self.CONTACT_OUTPUTS}, got {value!r}")
        self._contact_output = value

    @property
    def plain(self) -> bool:
        """Neither option is on: the model of every earlier measurement."""
        return not self.contact_slots and not self.obs_residual

    def set_contact_levels(self, low: torch.Tensor, high: torch.Tensor) -> None:
        """The values the contact slots take for "no contact" and "contact", in the units the model
        works in (normalised: the normaliser applied to 0 and to 1). Shapes: (C,), low < high."""
        if not self.contact_slots:
            raise ValueError("set_contact_levels: this world model has no contact_slots")
        low, high = torch.as_tensor(low, dtype=torch.float32), torch.as_tensor(high, dtype=torch.float32)
        count = len(self.contact_slots)
        if tuple(low.shape) != (count,) or tuple(high.shape) != (count,):
            raise ValueError(f"contact levels must have shape ({count},), got {tuple(low.shape)} and {tuple(high.shape)}")
        if not (torch.isfinite(low).all() and torch.isfinite(high).all() and (low < high).all()):
            raise ValueError(f"contact levels must be finite with low < high, got {low.tolist()} and {high.tolist()}")
        self.contact_low.copy_(low)
        self.contact_high.copy_(high)

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        """Shape: inputs (..., F) -> z (..., L); F = O (the observation) when history is 1, else
        what ``history_inputs`` gives. With ``obs_residual`` the state is [obs, z], (..., O + L),
        obs the latest observation of the inputs."""
        latent = self.encoder(inputs)
        if not self.obs_residual:
            return latent
        latest = inputs[..., (self.history - 1) * self.obs_dim: self.history * self.obs_dim]
        return torch.cat([latest, latent], dim=-1)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Shape: z (..., L) -> obs (..., O) (the state (..., O + L) with ``obs_residual``)."""
        raw = self.decode_raw(latent)
        return raw if not self.contact_slots else self._contact_values(raw)

    def decode_raw(self, latent: torch.Tensor) -> torch.Tensor:
        """What the losses judge: ``decode`` with the contact slots left as logits. Shape as ``decode``."""
        if not self.obs_residual:
            return self.decoder(latent)
        obs, z = latent[..., :self.obs_dim], latent[..., self.obs_dim:]
        if not self.contact_slots:
            return obs
        return torch.where(self.contact_mask, self.decoder(z), obs)

    def _contact_values(self, raw: torch.Tensor) -> torch.Tensor:
        """Contact logits (at ``contact_slots`` of raw (..., O)) -> the slots' levels."""
        logits = raw[..., self.contact_index]
        if self.contact_output == "probability":
            p = torch.sigmoid(logits)
        else:
            p = (logits > 0).to(logits.dtype)
        low, high = self.contact_low.to(raw.dtype), self.contact_high.to(raw.dtype)
        out = raw.clone()
        out[..., self.contact_index] = low + p * (high - low)
        return out

    def _slot_errors(self, raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of each prediction, a mean over its slots: squared error, binary
        cross-entropy at the contact slots (the target counts as contact above the midpoint of the
        two levels). Shapes: raw, target (..., O) -> (...,), float32."""
        raw, target = _wide(raw), _wide(target)
        errors = (raw - target).square()
        if self.contact_slots:
            touching = (target[..., self.contact_index] > (self.contact_low + self.contact_high) / 2).to(raw.dtype)
            bce = F.binary_cross_entropy_with_logits(raw[..., self.contact_index], touching, reduction="none")
            errors = errors.clone()
            errors[..., self.contact_index] = bce
        return errors.mean(-1)

    def step_latent(
        self, latent: torch.Tensor, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One imagined step.

        Args:
            latent: z, shape (..., L) (the state [obs, z], (..., O + L), with ``obs_residual``).
            action: shape (..., A).

        Returns:
            next_latent: z', shape (..., L) (the next state [obs', z'] with ``obs_residual``).
            reward: predicted reward, shape (...,).
            done_logit: logit of the termination probability (sigmoid gives it), shape (...,).
        """
        if self.obs_residual:
            obs, latent = latent[..., :self.obs_dim], latent[..., self.obs_dim:]
        next_latent = latent + self.dynamics(torch.cat([latent, action], dim=-1))
        head_input = torch.cat([next_latent, action], dim=-1)
        reward, done_logit = self.reward_head(head_input).squeeze(-1), self.done_head(head_input).squeeze(-1)
        if not self.obs_residual:
            return next_latent, reward, done_logit
        delta = self.decoder(next_latent)
        if self.contact_slots:  # classified from z' (decode_raw), never accumulated
            delta = delta.masked_fill(self.contact_mask, 0.0)
        return torch.cat([obs + delta, next_latent], dim=-1), reward, done_logit

    def predict(
        self, obs: torch.Tensor, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Predict a transition from the encoder's input (the observation when history is 1).

        Shapes: obs (..., F), action (..., A) -> next_obs (..., O), reward (...,), done_prob (...,).
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
            obs: shape (B, O) (a model with history 1 only).
            action: the action taken (squashed, in (-1, 1)), shape (B, A).
            reward: shape (B,).
            next_obs: the observation the action led to, shape (B, O); for an episode that
                ended it must be the final observation, not the first one of the next episode.
            done: shape (B,), bool or float: 1 where the episode terminated (failure).

        Returns:
            scalar float32 tensors: "reconstruction" (MSE of decode(encode(obs)) vs obs),
            "dynamics" (MSE of decode(z') vs next_obs; with ``contact_slots`` the contact slots'
            terms of both are binary cross-entropies, see ``_slot_errors``), "reward" (MSE), "done" (binary cross
            entropy with logits) and "total" (their sum).
        """
        if self.history != 1:
            raise ValueError(f"losses() is the one-step objective of a model with history 1 (this one has "
                             f"{self.history}); use sequence_losses()")
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
        if self.plain:
            reconstruction = F.mse_loss(_wide(self.decode(latent)), _wide(obs))
            dynamics = F.mse_loss(_wide(self.decode(next_latent)), _wide(next_obs))
        else:
            reconstruction = self._slot_errors(self.decode_raw(latent), obs).mean()
            dynamics = self._slot_errors(self.decode_raw(next_latent), next_obs).mean()
        terms = {
            "reconstruction": reconstruction,
            "dynamics": dynamics,
            "reward": F.mse_loss(_wide(reward_pred), _wide(reward)),
            "done": F.binary_cross_entropy_with_logits(done_logit, done.to(done_logit.dtype)),
        }
        terms["total"] = sum(terms.values())
        return terms

    def sequence_losses(self, batch: "Sequences") -> dict[str, torch.Tensor]:
        """Named loss terms of H-step open-loop unrolls (``sample_sequences``).

        From each start the latent is encoded once and stepped along the H actions taken; every
        valid step's decoded latent is compared with the real observation, its reward and done
        heads with the real ones. Each term is a mean over the valid (start, step) pairs, so the
        one-step objective is the special case H = 1.

        Returns:
            scalar float32 tensors: "reconstruction" (MSE of decode(encode(inputs)) vs the start's
            observation), "dynamics", "reward", "done" (as in ``losses``, over every valid step),
            "dynamics_h1" (the first step's dynamics error alone: comparable with the one-step
            loss; not part of the total) and "total".
        """
        batch.check(self.input_dim, self.obs_dim, self.action_dim)
        latent = self.encode(batch.inputs)
        if self.plain:
            reconstruction = F.mse_loss(_wide(self.decode(latent)), _wide(batch.obs))
        else:
            reconstruction = self._slot_errors(self.decode_raw(latent), batch.obs).mean()
        valid = batch.valid.float()
        squared, reward_sq, done_bce = [], [], []
        for k in range(batch.action.shape[1]):
            latent, reward_pred, done_logit = self.step_latent(latent, batch.action[:, k])
            if self.plain:
                squared.append((_wide(self.decode(latent)) - _wide(batch.target[:, k])).square().mean(-1))
            else:
                squared.append(self._slot_errors(self.decode_raw(latent), batch.target[:, k]))
            reward_sq.append((_wide(reward_pred) - _wide(batch.reward[:, k])).square())
            done_logit = _wide(done_logit)
            done_bce.append(F.binary_cross_entropy_with_logits(
                done_logit, batch.done[:, k].to(done_logit.dtype), reduction="none"))
        count = valid.sum().clamp_min(1.0)

        def mean(per_step: list[torch.Tensor]) -> torch.Tensor:
            return (torch.stack(per_step, dim=1) * valid).sum() / count

        terms = {"reconstruction": reconstruction, "dynamics": mean(squared), "reward": mean(reward_sq),
                 "done": mean(done_bce)}
        terms["total"] = sum(terms.values())
        terms["dynamics_h1"] = ((squared[0] * valid[:, 0]).sum() / valid[:, 0].sum().clamp_min(1.0)).detach()
        return terms


def history_inputs(obs: torch.Tensor, action: torch.Tensor, episode_start: torch.Tensor,
                   history: int) -> torch.Tensor:
    """The encoder's input at every step: the last ``history`` observations and the ``history - 1``
    actions between them, oldest first.

    Args:
        obs: (T, N, O): obs[t] is the observation before step t's action.
        action: (T, N, A): the action of step t.
        episode_start: (T, N), bool or 0/1: step t is the first of an episode (step 0 is always
            treated as one: nothing before it is known).
        history: h >= 1.

    Returns:
        (T, N, h*O + (h-1)*A): row t is [obs[t-h+1], ..., obs[t], action[t-h+1], ..., action[t-1]];
        a step before the episode's first is filled with that first observation and a zero action.
        With h = 1 it is ``obs`` itself.
    """
    if history < 1:
        raise ValueError(f"history must be >= 1, got {history}")
    if history == 1:
        return obs
    steps = obs.shape[0]
    if tuple(action.shape[:2]) != tuple(obs.shape[:2]) or tuple(episode_start.shape) != tuple(obs.shape[:2]):
        raise ValueError(f"obs (T, N, O), action (T, N, A) and episode_start (T, N) must agree on (T, N), got "
                         f"{tuple(obs.shape)}, {tuple(action.shape)}, {tuple(episode_start.shape)}")
    t = torch.arange(steps, device=obs.device).unsqueeze(1).expand(obs.shape[:2])
    start = episode_start.bool().clone()
    start[0] = True
    first = torch.cummax(torch.where(start, t, torch.zeros_like(t)), dim=0).values

    def lagged(x: torch.Tensor, lag: int, fill_first: bool) -> torch.Tensor:
        src = t - lag
        inside = src >= first
        rows = torch.where(inside, src, first if fill_first else src.clamp_min(0))
        picked = x.gather(0, rows.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        return picked if fill_first else picked * inside.unsqueeze(-1).to(picked.dtype)

    parts = [lagged(obs, lag, True) for lag in range(history - 1, -1, -1)]
    parts += [lagged(action, lag, False) for lag in range(history - 1, 0, -1)]
    return torch.cat(parts, dim=-1)


@dataclass
class Sequences:
    """A batch of H-step stretches of experience for ``WorldModel.sequence_losses``.

    Attributes:
        inputs: (B, F) the encoder's input at each start.
        obs: (B, O) the observation at each start.
        action: (B, H, A) the actions taken from the start on.
        reward: (B, H) the rewards they earned.
        target: (B, H, O) the observation after each of those steps (an episode's final one where
            it ended).
        done: (B, H) 1 where the episode terminated (failed) in that step.
        valid: (B, H) bool: the step is judged (it lies within the recorded steps, and no episode
            ended in an earlier step of the stretch).
    """

    inputs: torch.Tensor
    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    target: torch.Tensor
    done: torch.Tensor
    valid: torch.Tensor

    def check(self, input_dim: int, obs_dim: int, action_dim: int) -> None:
        batch, horizon = self.action.shape[:2]
        expected = {"inputs": (self.inputs, (batch, input_dim)), "obs": (self.obs, (batch, obs_dim)),
                    "action": (self.action, (batch, horizon, action_dim)), "reward": (self.reward, (batch, horizon)),
                    "target": (self.target, (batch, horizon, obs_dim)), "done": (self.done, (batch, horizon)),
                    "valid": (self.valid, (batch, horizon))}
        for name, (tensor, shape) in expected.items():
            if tuple(tensor.shape) != shape:
                raise ValueError(f"{name}: expected shape {shape}, got {tuple(tensor.shape)}")


def sample_sequences(obs: torch.Tensor, next_obs: torch.Tensor, action: torch.Tensor, reward: torch.Tensor,
                     terminated: torch.Tensor, ended: torch.Tensor, episode_start: torch.Tensor, *,
                     horizon: int, history: int, count: int, generator: torch.Generator) -> Sequences:
    """Draw ``count`` starts (step, environment) uniformly from a rollout and gather H steps from each.

    A start is drawn from the steps whose ``history`` is known (step >= history - 1: the steps
    before a rollout's first are not in it); the stretch's steps past the rollout's end, and
    those after an episode ended, are marked not valid.

    Args:
        obs, next_obs: (T, N, O): the observation before each step and after it (the episode's
            final one where it ended in that step).
        action: (T, N, A); reward, terminated: (T, N); ended: (T, N), 1 where an episode ended
            (terminated or truncated) in that step; episode_start: (T, N).
        horizon: H >= 1; history: the model's history; count: starts drawn (B);
        generator: the random stream of the draw (on the CPU).

    Returns:
        ``Sequences`` on the device of ``obs``.
    """
    steps, num_envs = obs.shape[:2]
    if horizon < 1 or count < 1:
        raise ValueError(f"horizon and count must be >= 1, got {horizon} and {count}")
    if steps < history:
        raise ValueError(f"a world model with history {history} needs rollouts of at least {history} steps, "
                         f"got {steps}")
    inputs = history_inputs(obs, action, episode_start, history)
    first = history - 1
    flat = torch.randint((steps - first) * num_envs, (count,), generator=generator).to(obs.device)
    t0, env = flat // num_envs + first, flat % num_envs
    k = torch.arange(horizon, device=obs.device)
    t = t0.unsqueeze(1) + k  # (B, H)
    inside = t < steps
    tc = t.clamp_max(steps - 1)
    ends_before = torch.cat([ended.new_zeros(1, num_envs), ended.float().cumsum(0)])  # ends in steps < t
    no_end = (ends_before[tc, env.unsqueeze(1)] - ends_before[t0, env].unsqueeze(1)) == 0
    return Sequences(inputs=inputs[t0, env], obs=obs[t0, env], action=action[tc, env.unsqueeze(1)],
                     reward=reward[tc, env.unsqueeze(1)], target=next_obs[tc, env.unsqueeze(1)],
                     done=terminated[tc, env.unsqueeze(1)].float(), valid=inside & no_end)
