"""Rollout collection: T control steps of N environments with the current recurrent policy.

The collector owns what must persist between rollouts: the current observations, which
environments start a new episode on their next step, and every environment's LSTM state.
Everything it keeps is saved by ``state_dict`` so a resumed run continues exactly.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field, fields
from typing import Any, Callable

import numpy as np
import torch

from quadlit.envs.base import StepResult, VecTask
from quadlit.training.normalizer import RunningNorm

LSTMState = tuple[torch.Tensor, torch.Tensor]


def _batch_dim(state: LSTMState) -> int:
    """The batch axis of an LSTM state tensor: (B, H) -> 0, (layers, B, H) -> 1."""
    return state[0].dim() - 2


def select_state(state: LSTMState, index: torch.Tensor) -> LSTMState:
    """Rows ``index`` of an LSTM state (along its batch axis)."""
    d = _batch_dim(state)
    return tuple(s.index_select(d, index) for s in state)  # type: ignore[return-value]


def state_rows(state: LSTMState) -> LSTMState:
    """An LSTM state with the batch axis first: each (B, ...)."""
    d = _batch_dim(state)
    return tuple(s.movedim(d, 0).contiguous() for s in state)  # type: ignore[return-value]


def rows_to_state(rows: LSTMState, like: LSTMState) -> LSTMState:
    """Inverse of ``state_rows``: put the batch axis back where ``like`` has it."""
    d = _batch_dim(like)
    return tuple(r.movedim(0, d).contiguous() for r in rows)  # type: ignore[return-value]


@dataclass
class Rollout:
    """One batch of experience. T = rollout steps, N = environments.

    Attributes:
        obs: (T, N, O) raw observations (before normalisation).
        policy_obs: (T, N, O) the normalised observations the policy acted on (the PPO update
            re-evaluates exactly these, so the probability ratio starts at 1).
        next_obs: (T, N, O) raw observation after each step (the final one where an episode ended).
        action: (T, N, A) squashed actions sent to the environments.
        raw_action: (T, N, A) pre-tanh samples (what log-probabilities are computed from).
        log_prob: (T, N) log-probabilities at collection.
        value: (T, N) value estimates at collection.
        reward: (T, N) rewards.
        terminated: (T, N) float, 1 where the episode failed at this step.
        truncated: (T, N) float, 1 where the episode timed out at this step.
        episode_start: (T, N) float, 1 where this step is the first of an episode (LSTM reset).
        truncation_value: (T, N) value of the final observation where truncated, else 0.
        last_value: (N,) value of the observation after the last step.
        h0, c0: (N, H) each environment's LSTM state before the first step.
        log_std_offset: (N,) what each environment's actions added to the policy's log std when
            they were drawn (None: nothing, every environment sampled with the policy's own).
        critic_obs: (T, N, C) the normalised input of a separate critic at collection (None when
            the policy's own value head estimates values); the update re-evaluates these.
        critic_raw: (T, N, C) the same before normalisation (for the critic's statistics).
        reward_terms: mean of each named reward term over the rollout (for logging).
        episodes: metric name -> values of episodes that ended during the rollout.
        num_nonfinite: environments reset for a non-finite physics state.
        num_nonfinite_actions: environment-steps whose action had a NaN or infinite entry (the
            environments step those entries as zero).
        collect_seconds: wall-clock time of the collection.
    """

    obs: torch.Tensor
    policy_obs: torch.Tensor
    next_obs: torch.Tensor
    action: torch.Tensor
    raw_action: torch.Tensor
    log_prob: torch.Tensor
    value: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    episode_start: torch.Tensor
    truncation_value: torch.Tensor
    last_value: torch.Tensor
    h0: torch.Tensor
    c0: torch.Tensor
    log_std_offset: torch.Tensor | None = None
    critic_obs: torch.Tensor | None = None
    critic_raw: torch.Tensor | None = None
    reward_terms: dict[str, float] = field(default_factory=dict)
    episodes: dict[str, np.ndarray] = field(default_factory=dict)
    num_nonfinite: int = 0
    num_nonfinite_actions: int = 0
    collect_seconds: float = 0.0

    @property
    def num_steps(self) -> int:
        return int(self.reward.shape[0] * self.reward.shape[1])

    def to(self, device: torch.device) -> "Rollout":
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor):
                setattr(self, f.name, v.to(device))
        return self


def _tensor(array: np.ndarray | None, device: torch.device) -> torch.Tensor | None:
    return None if array is None else torch.from_numpy(np.ascontiguousarray(array)).to(device)


class RolloutCollector:
    """Steps a ``VecTask`` with a policy and records ``Rollout`` batches.

    Args:
        task: the batched environments.
        rollout_steps: control steps per rollout (T).
    """

    def __init__(self, task: VecTask, rollout_steps: int) -> None:
        if rollout_steps < 1:
            raise ValueError(f"data.rollout_steps must be >= 1, got {rollout_steps}")
        self.task = task
        self.rollout_steps = int(rollout_steps)
        self.obs: np.ndarray | None = None
        self.episode_start = np.ones(task.num_envs, dtype=bool)
        self.lstm_state: LSTMState | None = None  # rows-first (N, H) on CPU between rollouts
        self.surprise: np.ndarray | None = None  # (N, O) the world model's latest error, when collected with one
        self.noise: np.ndarray | None = None  # (N, A) the latest correlated exploration draw, when collected with one
        self._warned_nonfinite_actions = False

    def reset(self, seed: int) -> None:
        self.obs = self.task.reset(seed).copy()
        self.episode_start[:] = True
        self.lstm_state = None
        self.surprise = None
        self.noise = None

    @torch.no_grad()
    def collect(self, policy: torch.nn.Module, obs_norm: RunningNorm, device: torch.device,
                generator: torch.Generator | None = None, critic: torch.nn.Module | None = None,
                world_model: torch.nn.Module | None = None,
                log_std_offset: torch.Tensor | None = None, noise_correlation: float = 0.0) -> Rollout:
        """Run ``rollout_steps`` control steps with ``policy`` on ``device``.

        The policy must provide ``initial_state(B, device)`` and
        ``act(obs, state, episode_start, deterministic, generator) ->
        (action, raw_u, log_prob, value, new_state)``. With a ``critic`` (a
        ``quadlit.training.critic.SeparateCritic``) the values come from it, read from the
        observation and the task's privileged observation, instead of the policy's value head.
        With a ``world_model`` (``WorldModel`` with history 1) the critic also reads its
        *surprise*: the error of its one-step prediction of the observation just reached, in
        normalised units (O values, each slot's ``normalised observation - prediction``; 0 at an
        episode's first step), appended after the privileged observation. ``log_std_offset``
        (N,) is added to each environment's log std when its actions are drawn (see
        ``noise_offsets``) and is kept in the rollout for the update.

        ``noise_correlation`` c in [0, 1): the standard-normal draw each environment's action adds
        (times the std) follows ``eps_t = c eps_(t-1) + sqrt(1 - c^2) xi_t`` (``xi_t`` a fresh
        draw from ``generator``), restarted as ``eps = xi`` at an episode's first step (and in every
        environment at the first step of a collection that has no noise to carry) and carried
        across rollouts (and checkpoints): every step's noise is still N(0, 1), but it persists
        for about 1 / (1 - c) steps. The log-probabilities are the per-step Gaussian's. 0: white
        noise, a fresh draw every step (the policy draws it itself).
        """
        if not 0.0 <= noise_correlation < 1.0:
            raise ValueError(f"noise_correlation must be in [0, 1), got {noise_correlation}")
        if self.obs is None:
            raise RuntimeError("RolloutCollector.reset(seed) must be called before collect()")
        start = time.perf_counter()
        task, T, N = self.task, self.rollout_steps, self.task.num_envs
        spec = task.spec
        like = policy.initial_state(N, device)
        if self.lstm_state is None:
            state = like
        else:
            state = rows_to_state(tuple(s.to(device) for s in self.lstm_state), like)
        h0, c0 = (s.clone() for s in state_rows(state))

        f32 = dict(dtype=torch.float32, device=device)
        obs_buf = torch.empty((T, N, spec.obs_dim), **f32)
        policy_obs_buf = torch.empty((T, N, spec.obs_dim), **f32)
        next_obs_buf = torch.empty((T, N, spec.obs_dim), **f32)
        act_buf = torch.empty((T, N, spec.action_dim), **f32)
        raw_buf = torch.empty((T, N, spec.action_dim), **f32)
        logp_buf = torch.empty((T, N), **f32)
        value_buf = torch.empty((T, N), **f32)
        rew_buf = torch.empty((T, N), **f32)
        term_buf = torch.empty((T, N), **f32)
        trunc_buf = torch.empty((T, N), **f32)
        start_buf = torch.empty((T, N), **f32)
        trunc_value_buf = torch.zeros((T, N), **f32)
        critic_dim = critic.in_dim if critic is not None else 0
        critic_raw_buf = torch.empty((T, N, critic_dim), **f32) if critic is not None else None
        critic_buf = torch.empty((T, N, critic_dim), **f32) if critic is not None else None
        privileged = task.privileged()
        if world_model is not None:
            if critic is None:
                raise ValueError("the world model's surprise is an input of a separate critic: pass critic")
            if self.surprise is None or self.surprise.shape != (N, spec.obs_dim):
                self.surprise = np.zeros((N, spec.obs_dim), dtype=np.float32)
        surprise = None if world_model is None else torch.from_numpy(self.surprise).to(device)

        def critic_side(priv: np.ndarray | None, rows_surprise: torch.Tensor | None) -> torch.Tensor | None:
            """The critic's input beside the observation: privileged observation, then surprise."""
            priv_t = _tensor(priv, device)
            if rows_surprise is None:
                return priv_t
            return rows_surprise if priv_t is None else torch.cat([priv_t.float(), rows_surprise], dim=-1)

        term_sums = np.zeros(len(spec.reward_terms), dtype=np.float64)
        episodes: dict[str, list[np.ndarray]] = {k: [] for k in spec.episode_metrics}
        num_nonfinite = 0
        nonfinite_actions = torch.zeros((), dtype=torch.int64, device=device)  # read once, after the loop

        obs_t = torch.from_numpy(self.obs).to(device)
        noise = {} if log_std_offset is None else {"log_std_offset": log_std_offset}
        correlated = noise_correlation > 0.0
        if correlated:
            carried = self.noise is not None and self.noise.shape == (N, spec.action_dim)
            eps = (torch.from_numpy(self.noise).to(device) if carried
                   else torch.zeros((N, spec.action_dim), dtype=torch.float32, device=device))
            fresh_share = math.sqrt(1.0 - noise_correlation ** 2)
        for t in range(T):
            start_t = torch.from_numpy(self.episode_start).to(device=device, dtype=torch.float32)
            obs_buf[t] = obs_t
            start_buf[t] = start_t
            policy_obs_buf[t] = obs_norm(obs_t)
            if correlated:
                xi = torch.randn((N, spec.action_dim), generator=generator, device=device, dtype=torch.float32)
                restart = start_t[:, None] > 0 if carried or t > 0 else torch.ones_like(start_t[:, None], dtype=torch.bool)
                eps = torch.where(restart, xi, noise_correlation * eps + fresh_share * xi)
                noise["noise"] = eps
            action, raw, logp, value, state = policy.act(
                policy_obs_buf[t], state, start_t, deterministic=False, generator=generator, **noise)
            if critic is not None:
                critic_raw_buf[t] = critic.raw_inputs(obs_t, critic_side(privileged, surprise))
                critic_buf[t] = critic.norm(critic_raw_buf[t])
                value = critic(critic_buf[t])
            act_buf[t], raw_buf[t], logp_buf[t], value_buf[t] = action, raw, logp.float(), value.float()
            nonfinite_actions += (~torch.isfinite(action)).any(-1).sum()
            if world_model is not None:
                predicted = world_model.predict(policy_obs_buf[t], action.float())[0].float()

            result = task.step(action.float().cpu().numpy())
            done = result.done
            next_obs_np = np.where(done[:, None], result.final_obs, result.obs)
            next_obs_buf[t] = torch.from_numpy(next_obs_np).to(device)
            if world_model is not None:  # the error on the observation reached (the final one where it ended)
                error = obs_norm(next_obs_buf[t]) - predicted
            rew_buf[t] = torch.from_numpy(result.reward).to(device)
            term_buf[t] = torch.from_numpy(result.terminated).to(device=device, dtype=torch.float32)
            trunc_buf[t] = torch.from_numpy(result.truncated).to(device=device, dtype=torch.float32)
            term_sums += result.reward_terms.sum(0, dtype=np.float64)
            num_nonfinite += int(result.num_nonfinite)

            if result.truncated.any():
                idx = torch.from_numpy(np.flatnonzero(result.truncated)).to(device)
                final = torch.from_numpy(result.final_obs[result.truncated]).to(device)
                if critic is not None:
                    final_priv = None if result.final_privileged is None else result.final_privileged[result.truncated]
                    v_final = critic(critic.inputs(final, critic_side(
                        final_priv, None if world_model is None else error[idx])))
                else:
                    no_reset = torch.zeros(len(idx), **f32)
                    _, _, _, v_final, _ = policy.act(obs_norm(final), select_state(state, idx), no_reset,
                                                     deterministic=True)
                trunc_value_buf[t, idx] = v_final.float()
            if done.any():
                for k in spec.episode_metrics:
                    episodes[k].append(result.episode[k][done].copy())
            self.episode_start = done.copy()
            obs_t = torch.from_numpy(result.obs).to(device)
            privileged = result.privileged
            if world_model is not None:
                surprise = error.masked_fill(torch.from_numpy(done).to(device)[:, None], 0.0)

        start_t = torch.from_numpy(self.episode_start).to(device=device, dtype=torch.float32)
        if critic is not None:
            last_value = critic(critic.inputs(obs_t, critic_side(privileged, surprise)))
        else:
            _, _, _, last_value, _ = policy.act(obs_norm(obs_t), state, start_t, deterministic=True)
        self.obs = obs_t.cpu().numpy().copy()
        self.lstm_state = tuple(s.cpu() for s in state_rows(state))  # type: ignore[assignment]
        if surprise is not None:
            self.surprise = surprise.cpu().numpy().copy()
        if correlated:
            self.noise = eps.cpu().numpy().copy()
        num_nonfinite_actions = int(nonfinite_actions)
        if num_nonfinite_actions and not self._warned_nonfinite_actions:
            self._warned_nonfinite_actions = True
            warnings.warn(f"the policy produced non-finite actions in {num_nonfinite_actions} environment-steps; "
                          f"the environments step them as zero (counted in env/nonfinite_actions; this warning "
                          f"is shown once)", RuntimeWarning, stacklevel=2)

        return Rollout(
            obs=obs_buf, policy_obs=policy_obs_buf, next_obs=next_obs_buf, action=act_buf, raw_action=raw_buf,
            log_prob=logp_buf, value=value_buf, reward=rew_buf, terminated=term_buf,
            truncated=trunc_buf, episode_start=start_buf, truncation_value=trunc_value_buf,
            last_value=last_value.float(), h0=h0, c0=c0, log_std_offset=log_std_offset,
            critic_obs=critic_buf, critic_raw=critic_raw_buf,
            reward_terms={k: float(term_sums[j] / (T * N)) for j, k in enumerate(spec.reward_terms)},
            episodes={k: (np.concatenate(v) if v else np.zeros(0, np.float32)) for k, v in episodes.items()},
            num_nonfinite=num_nonfinite,
            num_nonfinite_actions=num_nonfinite_actions,
            collect_seconds=time.perf_counter() - start,
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "task": self.task.state_dict(),
            "obs": None if self.obs is None else self.obs.copy(),
            "episode_start": self.episode_start.copy(),
            "lstm_state": None if self.lstm_state is None else tuple(s.clone() for s in self.lstm_state),
            "surprise": None if self.surprise is None else self.surprise.copy(),
            "noise": None if self.noise is None else self.noise.copy(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.task.load_state_dict(state["task"])
        self.obs = None if state["obs"] is None else np.array(state["obs"], dtype=np.float32)
        self.episode_start = np.array(state["episode_start"], dtype=bool)
        ls = state["lstm_state"]
        self.lstm_state = None if ls is None else tuple(torch.as_tensor(s) for s in ls)  # type: ignore[assignment]
        surprise = state.get("surprise")  # absent in checkpoints of runs without it
        self.surprise = None if surprise is None else np.array(surprise, dtype=np.float32)
        noise = state.get("noise")  # absent in checkpoints of runs without correlated noise
        self.noise = None if noise is None else np.array(noise, dtype=np.float32)


def noise_offsets(num_envs: int, share: float, std_scale: float, device: torch.device) -> torch.Tensor | None:
    """Per-environment log-std offsets: the first ``round(share * num_envs)`` environments act
    with ``std_scale`` times the policy's noise (offset ``log(std_scale)``), the rest with the
    policy's own (offset 0). None where no environment is quieter (share 0 or scale 1)."""
    quiet = int(round(share * num_envs))
    if quiet == 0 or std_scale == 1.0:
        return None
    offsets = torch.zeros(num_envs, dtype=torch.float32, device=device)
    offsets[:quiet] = math.log(std_scale)
    return offsets


@torch.no_grad()
def evaluate_policy(policy: torch.nn.Module, obs_norm: RunningNorm, task: VecTask, seed: int,
                    device: torch.device, deterministic: bool = True,
                    generator: torch.Generator | None = None,
                    on_episode_end: Callable[[np.ndarray, StepResult], None] | None = None) -> dict[str, np.ndarray]:
    """Run one full episode in every environment of ``task`` (reset with ``seed``).

    Each environment's first episode is recorded; environments that finished early keep
    stepping (auto-reset) but are no longer counted. Returns metric name -> (num_envs,) values.
    ``generator``: the stream a sampling policy (``deterministic=False``) draws from.
    ``on_episode_end(newly, result)``: called after every step in which first episodes ended
    (``newly``: (num_envs,) bool), to read more of the step than the episode metrics.
    """
    N = task.num_envs
    obs = torch.from_numpy(task.reset(seed).copy()).to(device)
    state = policy.initial_state(N, device)
    start = torch.ones(N, dtype=torch.float32, device=device)
    finished = np.zeros(N, dtype=bool)
    out = {k: np.zeros(N, dtype=np.float32) for k in task.spec.episode_metrics}
    sampling = {} if generator is None else {"generator": generator}
    for _ in range(task.spec.max_episode_steps + 1):
        action, _, _, _, state = policy.act(obs_norm(obs), state, start, deterministic=deterministic, **sampling)
        result = task.step(action.float().cpu().numpy())
        newly = result.done & ~finished
        for k in out:
            out[k][newly] = result.episode[k][newly]
        if on_episode_end is not None and newly.any():
            on_episode_end(newly, result)
        finished |= result.done
        if finished.all():
            break
        start = torch.from_numpy(result.done).to(device=device, dtype=torch.float32)
        obs = torch.from_numpy(result.obs).to(device)
    return out


@dataclass
class RecordedSteps:
    """Consecutive control steps of every environment, as ``record_steps`` returns them.

    Attributes:
        obs: (T+1, N, O) raw observations: obs[t] before step t, obs[t+1] after it (the next
            episode's first where an episode ended in step t).
        action: (T, N, A) the squashed actions sent to the environments.
        done: (T, N) bool: an episode ended in step t (failure or time-out).
        pushed: (T, N) bool: a push landed in step t (``VecTask.pushed``); None when the task has
            no pushes.
    """

    obs: torch.Tensor
    action: torch.Tensor
    done: torch.Tensor
    pushed: torch.Tensor | None


@torch.no_grad()
def record_steps(policy: torch.nn.Module, obs_norm: RunningNorm, task: VecTask, seed: int, steps: int,
                 device: torch.device) -> RecordedSteps:
    """Reset ``task`` with ``seed`` and run ``steps`` control steps with ``policy`` sampling its
    actions as in training, from its own generator seeded with ``seed`` (nothing is drawn from
    the training streams, so the same policy and seed record the same steps)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    N = task.num_envs
    obs = torch.from_numpy(task.reset(seed).copy()).to(device)
    state = policy.initial_state(N, device)
    start = torch.ones(N, dtype=torch.float32, device=device)
    observations, actions, ends, pushes = [obs], [], [], []
    for _ in range(steps):
        action, _, _, _, state = policy.act(obs_norm(obs), state, start, deterministic=False, generator=generator)
        result = task.step(action.float().cpu().numpy())
        pushed = task.pushed()
        obs = torch.from_numpy(result.obs.copy()).to(device)
        start = torch.from_numpy(result.done).to(device=device, dtype=torch.float32)
        observations.append(obs)
        actions.append(action.float())
        ends.append(torch.from_numpy(result.done.copy()))
        pushes.append(None if pushed is None else torch.from_numpy(pushed.copy()))
    return RecordedSteps(obs=torch.stack(observations), action=torch.stack(actions),
                         done=torch.stack(ends).to(device),
                         pushed=None if pushes[0] is None else torch.stack(pushes).to(device))
