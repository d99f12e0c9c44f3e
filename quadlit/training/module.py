"""QuadlitModule: recurrent PPO plus a world model, one training iteration per training_step."""

from __future__ import annotations

import copy
import math
import random
import time
from contextlib import nullcontext
from typing import Any, Literal, NamedTuple

import lightning as L
from lightning.pytorch.utilities import rank_zero_warn
import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from quadlit.algo.gae import compute_gae
from quadlit.algo.losses import (
    clipped_policy_loss,
    clipped_value_loss,
    entropy_bonus,
    explained_variance,
    mirror_loss,
    normalize_advantages,
)
from quadlit.algo.sampler import env_minibatches
from quadlit.errors import TrainingDiverged
from quadlit.models.entity_belief import EntityBelief
from quadlit.models.policy import MlpPolicy
from quadlit.models.world_model import WorldModel, sample_sequences
from quadlit.training import distributed
from quadlit.training.critic import SeparateCritic
from quadlit.training.normalizer import RunningNorm
from quadlit.training.resources import check_networks_fit_in_memory, mlp_parameters
from quadlit.training.rollout import Rollout, rows_to_state


def _as_tuples(x: Any) -> Any:
    """``random.getstate()`` comes back from a checkpoint with lists where it had tuples."""
    return tuple(_as_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


def _check_range(name: str, value: float, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> None:
    ok_lo = value > lo if lo_open else value >= lo
    ok_hi = value < hi if hi_open else value <= hi
    if not (ok_lo and ok_hi and math.isfinite(value)):
        interval = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
        raise ValueError(f"model.{name} must be in {interval}, got {value}")


def _parameter_counts(hp) -> dict[str, int]:
    """The parameter count of each network the hyperparameters ``hp`` build, keyed by the options
    that size it (their dominant terms: enough to catch a size typed a thousand times too large
    before it is allocated)."""
    obs, act = hp.obs_dim, hp.action_dim
    if hp.policy == "mlp":
        counts = {"model.mlp_hidden": mlp_parameters([obs, *hp.mlp_hidden, act + 1])}
    else:
        graph = hp.gat_heads * hp.gat_head_dim
        counts = {"model.encoder_dim/gat_heads/gat_head_dim/lstm_hidden":
                  mlp_parameters([obs, hp.encoder_dim, hp.encoder_dim, graph]) + 4 * hp.lstm_hidden * (graph + hp.lstm_hidden)
                  + mlp_parameters([hp.lstm_hidden, act + 1])}
    if hp.critic != "shared":
        extra = (hp.privileged_dim if hp.critic == "privileged" else 0) + (obs if hp.critic_surprise else 0)
        counts["model.critic_hidden"] = mlp_parameters([obs + extra, *hp.critic_hidden, 1])
    latent, hidden = hp.wm_latent_dim, 128  # WorldModel's default hidden width
    wm_in = hp.wm_history * obs + (hp.wm_history - 1) * act
    counts["model.wm_latent_dim/wm_history"] = (mlp_parameters([wm_in, hidden, hidden, latent])  # encoder
                                                 + mlp_parameters([latent + act, hidden, hidden, latent])  # dynamics
                                                 + 2 * mlp_parameters([latent + act, hidden, hidden, 1])  # reward, done
                                                 + mlp_parameters([latent, hidden, hidden, obs]))  # decoder
    return counts


def _full_noise_kl(new_log_prob: torch.Tensor, old_log_prob: torch.Tensor, offset: torch.Tensor,
                   overall: torch.Tensor) -> torch.Tensor:
    """The approximate KL of the samples drawn with the policy's own noise (offset 0), the
    step-size signal when some environments act quieter (a quieter sample's log-ratio grows as
    its std shrinks, and would shrink the step for all); ``overall`` where every one is quieter."""
    loud = offset == 0
    if not bool(loud.any()):
        return overall
    with torch.no_grad():
        log_ratio = (new_log_prob - old_log_prob)[:, loud]
        return (log_ratio.exp() - 1.0 - log_ratio).mean()


class RolloutPolicy(NamedTuple):
    """What the data module needs to collect a rollout (``QuadlitModule.rollout_policy``)."""

    policy: torch.nn.Module  # acts: EntityBelief or MlpPolicy
    obs_norm: RunningNorm  # normalises the policy's observations
    critic: SeparateCritic | None  # estimates values (None: the policy's value head does)
    device: torch.device
    generator: torch.Generator  # samples the actions
    world_model: torch.nn.Module | None = None  # its surprise is a critic input (model.critic_surprise)
    quiet_envs: float = 0.0  # share of environments acting with quieter noise (model.quiet_envs)
    quiet_std_scale: float = 1.0  # their std as a multiple of the policy's
    noise_correlation: float = 0.0  # the exploration noise's step-to-step correlation (model.noise_correlation)
    env_steps: int = 0  # the run's env-steps so far, every rank's together (the task's schedules follow it)


class QuadlitModule(L.LightningModule):
    """Recurrent PPO with an EntityBelief policy and a WorldModel trained on the same rollouts.

    It meets the data module through two hooks: ``rollout_policy()`` (asked by the data module to
    collect) and the data module's ``evaluation_batches()`` (asked by validate/test).

    Args:
        obs_dim: observation length (linked from the data module).
        action_dim: action length (linked from the data module).
        encoder_dim: width of the policy's observation encoder.
        gat_heads: graph-attention heads.
        gat_head_dim: width of each attention head.
        lstm_hidden: LSTM hidden size.
        policy: "entity_belief" (encoder -> graph attention -> LSTM, the default) or "mlp" (a
            feed-forward policy without memory, for comparison).
        mlp_hidden: hidden widths of the "mlp" policy.
        critic: "shared" (a value head on the policy's LSTM), "separate" (its own MLP on the
            observation) or "privileged" (its own MLP on the observation and what only the
            simulator knows: the asymmetric actor-critic; needs a task with a privileged observation).
        critic_hidden: hidden widths of a separate critic.
        critic_lr: Adam learning rate of a separate critic (the KL schedule adapts only the policy's).
        privileged_dim: length of the task's privileged observation (linked from the data module).
        init_log_std: initial log standard deviation of the pre-tanh action distribution.
        final_log_std: null: the log std is learned (by PPO, from init_log_std). A number: the
            log std is not learned but scheduled, linearly from init_log_std to final_log_std over
            the first log_std_decay_steps env-steps, then held (a policy trained under large noise
            leans on it: its deterministic mean is then a policy that was never trained).
        log_std_decay_steps: env-steps over which a scheduled log std reaches final_log_std.
        quiet_envs: share of each rank's environments (the first ones) that act with quieter
            noise, ``quiet_std_scale`` times the policy's std, in every rollout (0: none). The
            policy is judged by its noise-free mean; these environments make the mean itself do
            what the noise may otherwise do for it. Their samples enter the PPO loss with their
            own std; the KL of the adaptive learning rate is read from the other environments.
        quiet_std_scale: the quiet environments' std as a multiple of the policy's, in (0, 1).
        noise_correlation: c in [0, 1): the exploration noise of each environment is temporally
            correlated, ``eps_t = c eps_(t-1) + sqrt(1 - c^2) xi_t`` (restarted at each episode),
            so every step's noise keeps the policy's std but persists for about ``1 / (1 - c)``
            control steps and jitters less from step to step; the PPO ratio uses the per-step
            Gaussian. 0: white noise (a fresh draw every step).
        noise_correlation_from: env-steps of white noise before ``noise_correlation`` applies (to
            the rollouts collected from then on; 0: from the start).
        mirror_coef: weight of a mirror-symmetry loss in the PPO update (0: none): on the first
            PPO epoch's minibatches (``mirror_envs`` environments of each), the policy's action
            mean for the mirrored observations is pulled towards the mirror image of its mean for
            the observations (``quadlit.algo.losses.mirror_loss``; the task's ``Mirror``: for
            balance, left-right). A recovery learnt for a push from one side then serves the
            mirrored push as well. Needs a task with a mirror (balance).
        mirror_envs: environments of each minibatch the mirror loss is computed on (its cost:
            two more passes of the policy over their sequences).
        policy_average: null: the trained policy is the one evaluated and deployed. A decay d in
            [0, 1): an exponential moving average of the policy's weights (after every update
            ``avg = d * avg + (1 - d) * policy``) is the deployed policy: evaluations, checkpoints'
            users (export, play, record, sim2sim, benchmarks) act with it; the trained policy
            still collects the rollouts. It smooths the swings of a policy between updates. The
            decay warms up over the first updates (see ``_update_policy_average``).
        guard_tolerance: null: no guard, the deployed policy is always the latest (average). A
            number t in [0, 1): a deployment guard. At the end of every ``guard_every``-th epoch
            the latest policy is run on the task's guard episodes (``TaskDef.guard``: for balance,
            ``data.guard_episodes`` short episodes at each push of 1.0-3.0 m/s, seeded
            ``data.guard_seed``, not the evaluations' episodes) and becomes the deployed policy
            (with the observation statistics it acts with) only if no value is more than t below
            the best the deployed policies have reached; otherwise the last deployed one stays.
            Training is unchanged (the guard only reads the policy), and its time counts as
            training time.
        guard_every: epochs between guard checks.
        policy_average_warmup: k of the policy average's warm-up ``(1 + n) / (k + n)`` after the
            n-th update (k > 1): the smaller, the sooner the average reaches ``policy_average``.
        wm_latent_dim: world-model latent size.
        lr: Adam learning rate of the policy/value network.
        wm_lr: Adam learning rate of the world model.
        gamma: discount factor, in (0, 1].
        gae_lambda: GAE lambda, in [0, 1].
        clip_ratio: PPO policy clipping range.
        value_clip: PPO value clipping range (0 disables value clipping).
        entropy_coef: weight of the entropy bonus.
        value_coef: weight of the value loss.
        max_grad_norm: gradient-norm clipping threshold.
        ppo_epochs: passes over each rollout.
        num_minibatches: minibatches per pass, split by environment (sequences stay whole).
        wm_updates: world-model gradient steps per rollout (0 disables the world model).
        wm_every: train the world model on every wm_every-th rollout only (1: every rollout);
            unless critic_surprise reads it, nothing in training uses the model, so a larger value
            is the cheaper setting.
        wm_batch_size: predicted transitions per world-model step (wm_batch_size // wm_horizon
            stretches of wm_horizon steps).
        wm_horizon: steps the world model is unrolled open loop in training (1: the one-step
            objective; H: every prediction of an H-step unroll along the actions taken is judged,
            see ``WorldModel.sequence_losses``).
        wm_history: observations the world model's encoder sees (1: the current one; h: the last
            h and the actions between them, its memory of what one observation hides).
        critic_surprise: give the separate critic the world model's surprise as an input: the
            error of its one-step prediction of the observation just reached (one value per
            observation slot, normalised units; see ``RolloutCollector.collect``). Needs a separate
            critic, a world model (wm_updates > 0) and wm_history 1.
        normalize_obs: keep running observation statistics and normalise the policy's input.
        desired_kl: adapt the policy learning rate after every minibatch to keep the approximate KL
            near this value (x1.5 when below half, /1.5 when above double; null keeps lr fixed).
        final_desired_kl: null: the KL target stays desired_kl. A number: the target falls
            linearly from desired_kl to final_desired_kl over the first kl_decay_steps env-steps,
            then is held (smaller policy changes late in a run: a steadier final policy).
        kl_decay_steps: env-steps over which a scheduled KL target reaches final_desired_kl.
        max_nonfinite_iterations: stop the run after this many iterations in a row with a
            non-finite loss (each such update is skipped and counted).
        seed: seed of the action-sampling generator and minibatch order.
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        encoder_dim: int = 64,
        gat_heads: int = 4,
        gat_head_dim: int = 32,
        lstm_hidden: int = 128,
        policy: Literal["entity_belief", "mlp"] = "entity_belief",
        mlp_hidden: list[int] = [256, 128],  # noqa: B006  (jsonargparse wants a list; never mutated)
        critic: Literal["shared", "separate", "privileged"] = "shared",
        critic_hidden: list[int] = [256, 128],  # noqa: B006
        critic_lr: float = 1e-3,
        privileged_dim: int = 0,
        init_log_std: float = -0.5,
        final_log_std: float | None = None,
        log_std_decay_steps: int = 1_000_000,
        quiet_envs: float = 0.0,
        quiet_std_scale: float = 0.25,
        noise_correlation: float = 0.0,
        noise_correlation_from: int = 0,
        mirror_coef: float = 0.0,
        mirror_envs: int = 32,
        policy_average: float | None = None,
        policy_average_warmup: float = 10.0,
        guard_tolerance: float | None = None,
        guard_every: int = 1,
        wm_latent_dim: int = 128,
        lr: float = 3e-4,
        wm_lr: float = 1e-3,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        clip_ratio: float = 0.2,
        value_clip: float = 0.2,
        entropy_coef: float = 0.01,
        value_coef: float = 0.5,
        max_grad_norm: float = 1.0,
        ppo_epochs: int = 4,
        num_minibatches: int = 4,
        wm_updates: int = 1,
        wm_every: int = 1,
        wm_batch_size: int = 4096,
        wm_horizon: int = 8,
        wm_history: int = 1,
        critic_surprise: bool = False,
        normalize_obs: bool = True,
        desired_kl: float | None = 0.01,
        final_desired_kl: float | None = None,
        kl_decay_steps: int = 3_000_000,
        max_nonfinite_iterations: int = 5,
        seed: int = 0,
    ) -> None:
        super().__init__()
        for name, v in (("obs_dim", obs_dim), ("action_dim", action_dim), ("encoder_dim", encoder_dim),
                        ("gat_heads", gat_heads), ("gat_head_dim", gat_head_dim), ("lstm_hidden", lstm_hidden),
                        ("wm_latent_dim", wm_latent_dim), ("ppo_epochs", ppo_epochs),
                        ("num_minibatches", num_minibatches), ("wm_batch_size", wm_batch_size), ("wm_every", wm_every),
                        ("wm_horizon", wm_horizon), ("wm_history", wm_history)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"model.{name} must be a positive integer, got {v!r}")
        if not isinstance(max_nonfinite_iterations, int) or max_nonfinite_iterations < 1:
            raise ValueError(f"model.max_nonfinite_iterations must be an integer >= 1, got {max_nonfinite_iterations!r}")
        if not isinstance(wm_updates, int) or wm_updates < 0:
            raise ValueError(f"model.wm_updates must be an integer >= 0, got {wm_updates!r}")
        _check_range("lr", lr, 0.0, 1.0, lo_open=True)
        _check_range("wm_lr", wm_lr, 0.0, 1.0, lo_open=True)
        _check_range("gamma", gamma, 0.0, 1.0, lo_open=True)
        _check_range("gae_lambda", gae_lambda, 0.0, 1.0)
        _check_range("clip_ratio", clip_ratio, 0.0, 1.0, lo_open=True)
        _check_range("value_clip", value_clip, 0.0, math.inf, hi_open=True)
        _check_range("entropy_coef", entropy_coef, 0.0, math.inf, hi_open=True)
        _check_range("value_coef", value_coef, 0.0, math.inf, hi_open=True)
        _check_range("max_grad_norm", max_grad_norm, 0.0, math.inf, lo_open=True, hi_open=True)
        _check_range("init_log_std", init_log_std, -10.0, 2.0)
        if final_log_std is not None:
            _check_range("final_log_std", final_log_std, -10.0, 2.0)
        if not isinstance(log_std_decay_steps, int) or log_std_decay_steps < 1:
            raise ValueError(f"model.log_std_decay_steps must be an integer >= 1, got {log_std_decay_steps!r}")
        if desired_kl is not None:
            _check_range("desired_kl", desired_kl, 0.0, 1.0, lo_open=True)
        if final_desired_kl is not None:
            if desired_kl is None:
                raise ValueError("model.final_desired_kl schedules the KL target: it needs model.desired_kl")
            _check_range("final_desired_kl", final_desired_kl, 0.0, 1.0, lo_open=True)
        if not isinstance(kl_decay_steps, int) or kl_decay_steps < 1:
            raise ValueError(f"model.kl_decay_steps must be an integer >= 1, got {kl_decay_steps!r}")
        _check_range("critic_lr", critic_lr, 0.0, 1.0, lo_open=True)
        if critic_surprise and (critic == "shared" or wm_updates == 0 or wm_history != 1):
            raise ValueError("model.critic_surprise gives a separate critic the world model's one-step error: it "
                             "needs model.critic separate or privileged, model.wm_updates > 0 and model.wm_history 1 "
                             f"(got critic {critic}, wm_updates {wm_updates}, wm_history {wm_history})")
        _check_range("quiet_envs", quiet_envs, 0.0, 1.0, hi_open=True)
        _check_range("quiet_std_scale", quiet_std_scale, 0.0, 1.0, lo_open=True, hi_open=True)
        _check_range("noise_correlation", noise_correlation, 0.0, 1.0, hi_open=True)
        _check_range("mirror_coef", mirror_coef, 0.0, math.inf, hi_open=True)
        if not isinstance(mirror_envs, int) or mirror_envs < 1:
            raise ValueError(f"model.mirror_envs must be a positive integer, got {mirror_envs!r}")
        if not isinstance(noise_correlation_from, int) or noise_correlation_from < 0:
            raise ValueError(f"model.noise_correlation_from must be an integer >= 0, got {noise_correlation_from!r}")
        if policy_average is not None:
            _check_range("policy_average", policy_average, 0.0, 1.0, hi_open=True)
        if guard_tolerance is not None:
            _check_range("guard_tolerance", guard_tolerance, 0.0, 1.0, hi_open=True)
        if not isinstance(guard_every, int) or guard_every < 1:
            raise ValueError(f"model.guard_every must be a positive integer, got {guard_every!r}")
        if not isinstance(policy_average_warmup, (int, float)) or not policy_average_warmup > 1.0:
            raise ValueError(f"model.policy_average_warmup must be a number > 1, got {policy_average_warmup!r}")
        if policy not in ("entity_belief", "mlp"):
            raise ValueError(f"model.policy must be 'entity_belief' or 'mlp', got {policy!r}")
        if critic not in ("shared", "separate", "privileged"):
            raise ValueError(f"model.critic must be 'shared', 'separate' or 'privileged', got {critic!r}")
        if critic == "privileged" and privileged_dim < 1:
            raise ValueError("model.critic 'privileged' needs a task with a privileged observation "
                             "(this task has none): use 'separate' or 'shared'")
        for name, widths in (("mlp_hidden", mlp_hidden), ("critic_hidden", critic_hidden)):
            if not widths or any(not isinstance(w, int) or w < 1 for w in widths):
                raise ValueError(f"model.{name} must be a non-empty list of positive integers, got {widths!r}")
        self.save_hyperparameters()
        self.automatic_optimization = False

        shared = critic == "shared"
        critic_extra = (privileged_dim if critic == "privileged" else 0) + (obs_dim if critic_surprise else 0)
        check_networks_fit_in_memory(_parameter_counts(self.hparams))
        if policy == "mlp":
            self.policy = MlpPolicy(obs_dim, action_dim, hidden=mlp_hidden, init_log_std=init_log_std,
                                    value_head=shared)
        else:
            self.policy = EntityBelief(obs_dim, action_dim, encoder_dim=encoder_dim, gat_heads=gat_heads,
                                       gat_head_dim=gat_head_dim, lstm_hidden=lstm_hidden, init_log_std=init_log_std,
                                       value_head=shared)
        self.critic = None if shared else SeparateCritic(obs_dim, critic_extra, critic_hidden, normalize=normalize_obs)
        if final_log_std is not None:  # scheduled, not learned
            self.policy.log_std.requires_grad_(False)
        self.policy_avg = None
        if policy_average is not None:
            self.policy_avg = copy.deepcopy(self.policy).requires_grad_(False)
        self.world_model = WorldModel(obs_dim, action_dim, latent_dim=wm_latent_dim, history=wm_history)
        self.obs_norm = RunningNorm(obs_dim, enabled=normalize_obs)
        # the deployment guard's choice: a policy and the observation statistics it acts with
        self.guarded_policy = self.guarded_norm = None
        self.guard_best: list[float] | None = None  # per guard value, the best a deployed policy reached
        if guard_tolerance is not None:
            self.guarded_policy = copy.deepcopy(self.latest_policy).requires_grad_(False)
            self.guarded_norm = copy.deepcopy(self.obs_norm)
        self.action_generator = torch.Generator()
        self.action_generator.manual_seed(seed)
        self.minibatch_generator = torch.Generator()
        self.minibatch_generator.manual_seed(seed + 1)
        self.wm_generator = torch.Generator()  # the world model's batches: its schedule never moves PPO's
        self.wm_generator.manual_seed(seed + 2)
        self.register_buffer("env_steps", torch.tensor(0, dtype=torch.int64))
        self._saved_action_state: torch.Tensor | None = None
        self._checkpoint_step: int | None = None  # the training step of the weights loaded from a checkpoint
        self._nonfinite_streak = 0
        self._warned_minibatches = False
        self._saved_hparams: dict[str, Any] = {}  # the hyperparameters of a checkpoint this run continues

    # ----------------------------------------------------------------------------- optimizers
    def configure_optimizers(self):
        # group 0: the policy (its lr follows the KL schedule); group 1: a separate critic
        groups = [{"params": list(self.policy.parameters())}]
        if self.critic is not None:
            groups.append({"params": list(self.critic.parameters()), "lr": self.hparams.critic_lr})
        ppo = torch.optim.Adam(groups, lr=self.hparams.lr, eps=1e-5)
        wm = torch.optim.Adam(self.world_model.parameters(), lr=self.hparams.wm_lr)
        return [ppo, wm]

    def scheduled_log_std(self, env_steps: int) -> float | None:
        """The log std the schedule gives after ``env_steps`` (None when the log std is learned)."""
        hp = self.hparams
        if hp.final_log_std is None:
            return None
        frac = min(1.0, env_steps / hp.log_std_decay_steps)
        return hp.init_log_std + (hp.final_log_std - hp.init_log_std) * frac

    def scheduled_noise_correlation(self, env_steps: int) -> float:
        """The exploration noise's step-to-step correlation for a rollout collected after ``env_steps``."""
        hp = self.hparams
        return hp.noise_correlation if env_steps >= hp.noise_correlation_from else 0.0

    def scheduled_desired_kl(self, env_steps: int) -> float | None:
        """The KL target after ``env_steps`` (None when the learning rate is fixed)."""
        hp = self.hparams
        if hp.desired_kl is None or hp.final_desired_kl is None:
            return hp.desired_kl
        frac = min(1.0, env_steps / hp.kl_decay_steps)
        return hp.desired_kl + (hp.final_desired_kl - hp.desired_kl) * frac

    def _apply_log_std_schedule(self) -> None:
        value = self.scheduled_log_std(int(self.env_steps))
        if value is not None:
            with torch.no_grad():
                self.policy.log_std.fill_(value)

    def on_fit_start(self) -> None:
        # denormal floats make CPU math many times slower (seen as a 9x slower LSTM update late
        # in training); RL gains nothing from them
        torch.set_flush_denormal(True)
        self._apply_log_std_schedule()
        # each rank samples its own actions; a resumed run continues the saved stream
        gen = torch.Generator(device=self.device)
        saved = self._saved_action_state
        if isinstance(saved, list):  # one state per rank of the run that saved it
            saved = saved[self.global_rank] if len(saved) == self.trainer.world_size else None
        if saved is not None:
            gen.set_state(saved)
        else:
            gen.manual_seed(self.hparams.seed + 7919 * self.global_rank)
        self.action_generator = gen

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # every random stream a resumed run draws from (the environments' own streams are in the
        # data module's state); NumPy's state is stored as tensors so checkpoints load weights-only
        np_state = np.random.get_state()
        action_states = distributed.gather(self.action_generator.get_state().cpu())
        checkpoint["quadlit_generators"] = {
            "action": action_states[0] if len(action_states) == 1 else action_states,
            "minibatch": self.minibatch_generator.get_state(),
            "world_model": self.wm_generator.get_state(),
            "torch": torch.get_rng_state(),
            "python": random.getstate(),
            "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                      "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        }
        checkpoint["quadlit_nonfinite_streak"] = self._nonfinite_streak
        if self.guard_best is not None:
            checkpoint["quadlit_guard_best"] = list(self.guard_best)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        gens = checkpoint.get("quadlit_generators")
        if gens is not None:  # the action generator lives on the training device: set in on_fit_start
            self._saved_action_state = gens["action"]
            self.minibatch_generator.set_state(gens["minibatch"])
            if "world_model" in gens:  # older checkpoints drew the world model's batches from "minibatch"
                self.wm_generator.set_state(gens["world_model"])
            if "torch" in gens:
                torch.set_rng_state(gens["torch"])
                random.setstate(_as_tuples(gens["python"]))
                np_gen = gens["numpy"]
                np.random.set_state(("MT19937", np_gen["keys"].numpy().astype(np.uint32), np_gen["pos"],
                                     np_gen["has_gauss"], np_gen["cached_gaussian"]))
        self._nonfinite_streak = int(checkpoint.get("quadlit_nonfinite_streak", 0))
        self._checkpoint_step = int(checkpoint.get("global_step", 0))
        best = checkpoint.get("quadlit_guard_best")
        self.guard_best = None if best is None else [float(v) for v in best]
        self._saved_hparams = dict(checkpoint.get("hyper_parameters", {}))

    def on_train_start(self) -> None:
        # the optimizers were restored with the checkpoint's learning rates (the policy's as adapted
        # by the KL schedule); a learning rate given anew for the continued run replaces them
        saved = self._saved_hparams
        if not saved:
            return
        ppo, wm = self.optimizers()
        groups = {"lr": ppo.param_groups[0], "wm_lr": wm.param_groups[0]}
        if self.critic is not None:
            groups["critic_lr"] = ppo.param_groups[1]
        for name, group in groups.items():
            if name in saved and saved[name] != self.hparams[name]:
                group["lr"] = self.hparams[name]

    @property
    def deployed_policy(self) -> torch.nn.Module:
        """The policy that is evaluated and used: the guard's choice when ``guard_tolerance`` is
        set, else the weight average when ``policy_average`` is set, else the trained policy
        itself. It acts on observations normalised by ``deployed_norm``."""
        if self.guarded_policy is not None:
            return self.guarded_policy
        return self.latest_policy

    @property
    def latest_policy(self) -> torch.nn.Module:
        """The newest policy to deploy: the weight average, else the trained policy."""
        return self.policy if self.policy_avg is None else self.policy_avg

    @property
    def deployed_norm(self) -> RunningNorm:
        """The observation statistics ``deployed_policy`` acts with (the guard keeps those of the
        policy it chose; otherwise the run's current ones)."""
        return self.obs_norm if self.guarded_norm is None else self.guarded_norm

    @torch.no_grad()
    def _update_policy_average(self, updates: int) -> None:
        """Fold the policy into the average after its ``updates``-th update (counted from 1). The
        decay warms up as ``(1 + updates) / (k + updates)`` (k: ``policy_average_warmup``) until it
        reaches ``policy_average``, so the average does not lag far behind the fast early learning."""
        k = self.hparams.policy_average_warmup
        decay = min(self.hparams.policy_average, (1.0 + updates) / (k + updates))
        for avg, new in zip(self.policy_avg.parameters(), self.policy.parameters()):
            avg.lerp_(new, 1.0 - decay)

    def rollout_policy(self) -> RolloutPolicy:
        """Hook for the data module: the current networks that collect the next rollout."""
        return RolloutPolicy(self.policy, self.obs_norm, self.critic, self.device, self.action_generator,
                             self.world_model if self.hparams.critic_surprise else None,
                             self.hparams.quiet_envs, self.hparams.quiet_std_scale,
                             self.scheduled_noise_correlation(int(self.env_steps)), int(self.env_steps))

    # ----------------------------------------------------------------------------- training
    def training_step(self, rollout: Rollout, batch_idx: int) -> None:
        update_start = time.perf_counter()
        iteration = self.current_epoch * self.trainer.num_training_batches + batch_idx  # from 0
        advantages, returns = self._advantages(rollout)
        wrapper = self.trainer.strategy.model
        # one training_step takes many optimizer steps on different parameter subsets, which DDP's
        # reducer cannot follow: it is switched off and distributed.average_gradients syncs instead
        no_reducer = wrapper.no_sync() if isinstance(wrapper, DistributedDataParallel) else nullcontext()
        with no_reducer:
            wm_metrics = self._update_world_model(rollout) if iteration % self.hparams.wm_every == 0 else {}
            ppo_metrics = self._update_policy(rollout, advantages, returns)
        # after the update: PPO re-evaluates what the policy saw; under DDP over every rank's data
        self.obs_norm.update(rollout.obs, across_ranks=True)
        if self.critic is not None:
            self.critic.norm.update(rollout.critic_raw, across_ranks=True)
        update_seconds = time.perf_counter() - update_start
        self.env_steps += rollout.num_steps * self.trainer.world_size
        self._apply_log_std_schedule()  # for the next rollout
        if self.policy_avg is not None:
            self._update_policy_average(iteration + 1)
        if (self.guarded_policy is not None and batch_idx + 1 == self.trainer.num_training_batches
                and (self.current_epoch + 1) % self.hparams.guard_every == 0):
            self._guard_check()
        self._log_iteration(rollout, ppo_metrics, wm_metrics, returns, update_seconds)
        self._guard_nonfinite(ppo_metrics["skipped_nonfinite"] + wm_metrics.get("skipped_nonfinite", 0.0) > 0)

    def _guard_check(self) -> None:
        """Run the latest policy on the task's guard episodes (float32, as it is deployed) and
        let ``guard_decide`` say whether it replaces the deployed one."""
        from quadlit.training.evaluation import run_evaluation

        dm = self.trainer.datamodule
        evaluation, task = dm.guard_batch()
        with torch.autocast(self.device.type, enabled=False):
            values = run_evaluation(evaluation, task, self.latest_policy, self.obs_norm, dm.guard_seed, self.device)
        keys = sorted(values)
        scores = distributed.mean_over_ranks(torch.tensor([values[k] for k in keys], dtype=torch.float64)).tolist()
        self.guard_decide(scores)
        self.log_dict({f"guard/{k}": v for k, v in zip(keys, scores)}, on_step=True, on_epoch=False, batch_size=1)

    @torch.no_grad()
    def guard_decide(self, scores: list[float]) -> bool:
        """Deploy the latest policy (a copy, with a copy of the observation statistics) if no
        score is more than ``guard_tolerance`` below the best score the deployed policies have
        reached (the first is always deployed); the best scores then take the new ones where
        higher. Returns whether it was deployed (logged as ``guard/deployed``)."""
        best = self.guard_best
        deploy = best is None or all(s >= b - self.hparams.guard_tolerance for s, b in zip(scores, best))
        if deploy:
            self.guarded_policy.load_state_dict(self.latest_policy.state_dict())
            self.guarded_norm.load_state_dict(self.obs_norm.state_dict())
            self.guard_best = list(scores) if best is None else [max(s, b) for s, b in zip(scores, best)]
        if self._trainer is not None:
            self.log("guard/deployed", float(deploy), on_step=True, on_epoch=False, batch_size=1)
        return deploy

    def _guard_nonfinite(self, bad: bool) -> None:
        """Count iterations in a row whose loss was non-finite (those updates were skipped);
        stop with the last good checkpoint named once there are too many."""
        self._nonfinite_streak = self._nonfinite_streak + 1 if bad else 0
        if self._nonfinite_streak < self.hparams.max_nonfinite_iterations:
            return
        paths = [c.last_model_path or c.best_model_path for c in self.trainer.checkpoint_callbacks]
        path = next((p for p in paths if p), "")
        raise TrainingDiverged(
            f"training stopped: the loss was non-finite in {self._nonfinite_streak} iterations in a row "
            f"(step {self.global_step}); last good checkpoint: {path or 'none saved yet'}")

    def _advantages(self, r: Rollout) -> tuple[torch.Tensor, torch.Tensor]:
        return compute_gae(r.reward, r.value, r.terminated, r.truncated, r.truncation_value, r.last_value,
                           gamma=self.hparams.gamma, lam=self.hparams.gae_lambda)

    def _update_world_model(self, r: Rollout) -> dict[str, float]:
        hp = self.hparams
        if hp.wm_updates == 0:
            return {}
        _, wm_opt = self.optimizers()
        obs, next_obs = self.obs_norm(r.obs), self.obs_norm(r.next_obs)
        ended = torch.clamp(r.terminated + r.truncated, max=1.0)
        count = max(1, min(hp.wm_batch_size, r.reward.numel()) // hp.wm_horizon)
        sums: dict[str, float] = {}
        for _ in range(hp.wm_updates):
            batch = sample_sequences(obs, next_obs, r.action, r.reward, r.terminated, ended, r.episode_start,
                                     horizon=hp.wm_horizon, history=hp.wm_history, count=count,
                                     generator=self.wm_generator)
            losses = self.world_model.sequence_losses(batch)
            if distributed.any_rank(not torch.isfinite(losses["total"])):
                sums["skipped_nonfinite"] = sums.get("skipped_nonfinite", 0.0) + 1.0
                continue
            wm_opt.zero_grad(set_to_none=True)
            self.manual_backward(losses["total"])
            distributed.average_gradients(self.world_model.parameters())
            torch.nn.utils.clip_grad_norm_(self.world_model.parameters(), hp.max_grad_norm)
            wm_opt.step()
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
        return {k: v / hp.wm_updates for k, v in sums.items()}

    def _update_policy(self, r: Rollout, advantages: torch.Tensor, returns: torch.Tensor) -> dict[str, float]:
        hp = self.hparams
        ppo_opt, _ = self.optimizers()
        obs = r.policy_obs
        num_envs = obs.shape[1]
        num_mb = min(hp.num_minibatches, num_envs)
        if num_mb < hp.num_minibatches and not self._warned_minibatches:
            self._warned_minibatches = True
            rank_zero_warn(f"model.num_minibatches={hp.num_minibatches} is more than the {num_envs} environments "
                           f"(minibatches are split by environment): using {num_mb} minibatches")
        like = self.policy.initial_state(1, self.device)
        stats = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "approx_kl": 0.0, "clip_fraction": 0.0,
                 "grad_norm": 0.0}
        updates = 0
        skipped = 0
        mirror = self._task_mirror() if hp.mirror_coef > 0 else None
        mirror_losses: list[float] = []
        for epoch in range(hp.ppo_epochs):
            for env_idx in env_minibatches(num_envs, num_mb, self.minibatch_generator):
                env_idx = env_idx.to(self.device)
                state = rows_to_state((r.h0[env_idx], r.c0[env_idx]), like)
                offset = None if r.log_std_offset is None else r.log_std_offset[env_idx]
                log_prob, entropy, value = self.policy.evaluate(
                    obs[:, env_idx], r.raw_action[:, env_idx], state, r.episode_start[:, env_idx], offset)
                if self.critic is not None:
                    value = self.critic(r.critic_obs[:, env_idx])
                adv = normalize_advantages(advantages[:, env_idx])
                pi_loss, pi_stats = clipped_policy_loss(log_prob, r.log_prob[:, env_idx], adv, hp.clip_ratio)
                if hp.value_clip > 0:
                    v_loss = clipped_value_loss(value, r.value[:, env_idx], returns[:, env_idx], hp.value_clip)
                else:
                    v_loss = 0.5 * (value.float() - returns[:, env_idx]).square().mean()
                ent = entropy_bonus(entropy)
                loss = pi_loss + hp.value_coef * v_loss - hp.entropy_coef * ent
                if mirror is not None and epoch == 0:
                    some = env_idx[:hp.mirror_envs]
                    raw = r.obs[:, some]
                    m_loss = mirror_loss(self.policy, self.obs_norm(raw), self.obs_norm(mirror.obs(raw)),
                                         r.episode_start[:, some], mirror.action)
                    loss = loss + hp.mirror_coef * m_loss
                    mirror_losses.append(float(m_loss.detach()))
                if distributed.any_rank(not torch.isfinite(loss)):
                    skipped += 1  # on every rank, so parameters stay identical
                    continue
                ppo_opt.zero_grad(set_to_none=True)
                self.manual_backward(loss)
                distributed.average_gradients(self._ppo_parameters())
                grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), hp.max_grad_norm)
                if self.critic is not None:  # its own clip: the value error must not shrink the policy's step
                    torch.nn.utils.clip_grad_norm_(self.critic.parameters(), hp.max_grad_norm)
                ppo_opt.step()
                if hp.desired_kl is not None:  # the ranks' mean KL: every rank takes the same step size
                    kl = pi_stats["approx_kl"] if offset is None else _full_noise_kl(
                        log_prob, r.log_prob[:, env_idx], offset, pi_stats["approx_kl"])
                    self._adapt_lr(ppo_opt, distributed.mean_scalar(float(kl)))
                updates += 1
                stats["policy_loss"] += float(pi_loss.detach())
                stats["value_loss"] += float(v_loss.detach())
                stats["entropy"] += float(ent.detach())
                stats["approx_kl"] += float(pi_stats["approx_kl"])
                stats["clip_fraction"] += float(pi_stats["clip_fraction"])
                stats["grad_norm"] += float(grad_norm)
        out = {k: v / max(updates, 1) for k, v in stats.items()}
        out["skipped_nonfinite"] = float(skipped)
        if mirror is not None:
            out["mirror_loss"] = sum(mirror_losses) / max(len(mirror_losses), 1)
        out["learning_rate"] = float(ppo_opt.param_groups[0]["lr"])
        if hp.final_desired_kl is not None:  # logged when scheduled
            out["desired_kl"] = float(self.scheduled_desired_kl(int(self.env_steps)))
        out["action_std"] = float(self.policy.log_std.detach().exp().mean())
        return out

    def _task_mirror(self):
        """The data module's task's ``Mirror`` (``model.mirror_coef``); a one-line error where it has none."""
        from quadlit.tasks import require_mirror

        return require_mirror(self.trainer.datamodule.task_name)

    def _ppo_parameters(self) -> list[torch.nn.Parameter]:
        """What the PPO optimizer trains: the policy and a separate critic."""
        params = list(self.policy.parameters())
        return params + list(self.critic.parameters()) if self.critic is not None else params

    def _adapt_lr(self, optimizer, approx_kl: float) -> None:
        """KL-adaptive step size: shrink the policy's learning rate when an update moved the
        policy too far, grow it when it barely moved (bounded to [1e-5, 1e-2]). A separate
        critic keeps its own rate."""
        lr = optimizer.param_groups[0]["lr"]
        target = self.scheduled_desired_kl(int(self.env_steps))
        if approx_kl > 2.0 * target:
            lr = max(1e-5, lr / 1.5)
        elif approx_kl < 0.5 * target:
            lr = min(1e-2, lr * 1.5)
        optimizer.param_groups[0]["lr"] = lr

    def _log_iteration(self, r: Rollout, ppo: dict[str, float], wm: dict[str, float], returns: torch.Tensor,
                       update_seconds: float) -> None:
        steps = r.num_steps * self.trainer.world_size
        metrics: dict[str, float] = {f"train/{k}": v for k, v in ppo.items()}
        metrics.update({f"world_model/{k}": v for k, v in wm.items()})
        metrics.update({f"reward/{k}": v for k, v in r.reward_terms.items()})
        metrics["train/explained_variance"] = float(explained_variance(r.value, returns))
        metrics["train/reward_per_step"] = float(r.reward.mean())
        metrics["perf/collect_steps_per_s"] = steps / max(r.collect_seconds, 1e-9)
        metrics["perf/steps_per_s"] = steps / max(r.collect_seconds + update_seconds, 1e-9)
        metrics["perf/collect_seconds"] = r.collect_seconds
        metrics["perf/update_seconds"] = update_seconds
        metrics["perf/num_envs"] = float(r.reward.shape[1] * self.trainer.world_size)
        if distributed.active():  # one all-reduce for all of them: every rank logs the same values
            keys = sorted(metrics)
            means = distributed.mean_over_ranks(torch.tensor([metrics[k] for k in keys], dtype=torch.float64))
            metrics = dict(zip(keys, means.tolist()))
        # episodes that ended on any rank: summed over ranks, then averaged
        ep_keys = sorted(r.episodes)
        ep_count = len(r.episodes[ep_keys[0]]) if ep_keys else 0
        totals = distributed.sum_over_ranks(torch.tensor(
            [float(np.sum(r.episodes[k], dtype=np.float64)) for k in ep_keys]
            + [float(ep_count), float(r.num_nonfinite), float(r.num_nonfinite_actions)],
            dtype=torch.float64)).tolist()
        metrics["env/nonfinite_resets"] = totals[-2]
        if totals[-1] > 0:  # logged when it happens (a metric that is always 0 would change every fingerprint)
            metrics["env/nonfinite_actions"] = totals[-1]
        if totals[-3] > 0:
            for k, total in zip(ep_keys, totals):
                metrics[f"episode/{k}"] = total / totals[-3]
            metrics["episode/count"] = totals[-3]
        self.log_dict(metrics, on_step=True, on_epoch=False, batch_size=1)
        self.log("env_steps", self.env_steps.float(), on_step=True, prog_bar=True, batch_size=1)
        if "episode/return" in metrics:
            self.log("ep_return", metrics["episode/return"], on_step=True, prog_bar=True, batch_size=1)

    # ----------------------------------------------------------------------------- evaluation
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate("eval")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate("test")

    def _evaluate(self, prefix: str) -> dict[str, float]:
        """Deterministic episodes at fixed seeds for every evaluation of the task (for the balance
        task also the push-robustness curve), logged as ``{prefix}/<metric>`` and
        ``{prefix}_<evaluation>/<value>``. They run in float32 whatever ``trainer.precision``:
        the deployed policy as it is exported and run, not as the bf16 update computes it."""
        from quadlit.training.evaluation import run_evaluation

        dm = self.trainer.datamodule
        metrics: dict[str, float] = {}
        for evaluation, task in dm.evaluation_batches():
            # in float32 whatever the training precision: the policy as exported and run
            with torch.autocast(self.device.type, enabled=False):
                values = run_evaluation(evaluation, task, self.deployed_policy, self.deployed_norm, dm.eval_seed,
                                        self.device)
            group = prefix if not evaluation.name else f"{prefix}_{evaluation.name}"
            metrics.update({f"{group}/{k}": v for k, v in values.items()})
            if evaluation.table is not None and self.trainer.is_global_zero and not self.trainer.sanity_checking:
                self._report_table(f"{prefix}/{evaluation.name}", evaluation.title or evaluation.name,
                                   *evaluation.table(values))
        if self.hparams.wm_updates > 0:
            metrics.update(self._evaluate_world_model(prefix))
        self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=False, sync_dist=self.trainer.world_size > 1,
                      batch_size=1)
        return metrics

    @property
    def evaluated_step(self) -> int:
        """The training step of the weights being evaluated, for tables and figures: the
        trainer's while fitting; in validate and test the checkpoint's (Lightning restores no step
        there, so its own count is 0)."""
        fitting = self._trainer is not None and self.trainer.state.fn == "fit"
        return self.global_step if fitting or self._checkpoint_step is None else self._checkpoint_step

    def _report_table(self, tag: str, title: str, x_label: str, rows: list[tuple[float, float]]) -> None:
        """Print an evaluation's table (e.g. survival against push magnitude) and log it as a plot."""
        xs = "  ".join(f"{x:>4.1f}" for x, _ in rows)
        vals = "  ".join(f"{100 * v:>3.0f}%" for _, v in rows)
        print(f"\n{title} ({tag.split('/')[0]}, step {self.evaluated_step}):\n  {x_label}  {xs}\n  survival {vals}")
        from quadlit.training.plots import robustness_figure

        curve = ([x for x, _ in rows], [v for _, v in rows])
        self._add_figure(f"{tag.split('/')[0]}/{title.replace('-', '_').replace(' ', '_')}",
                         lambda: robustness_figure({"policy": curve}))

    def _add_figure(self, tag: str, make_figure) -> None:
        """Log the figure ``make_figure()`` draws, when the logger takes figures (TensorBoard)."""
        experiment = getattr(self.logger, "experiment", None)
        if experiment is not None and hasattr(experiment, "add_figure"):
            experiment.add_figure(tag, make_figure(), global_step=self.evaluated_step)

    def _evaluate_world_model(self, prefix: str) -> dict[str, float]:
        """The world model's open-loop prediction error against horizon, beside copy-last and a
        fitted linear model (``quadlit.training.world_model_eval``), on control steps the data
        module records with the current policy (its own environments and random streams: the
        training streams are not touched). Values as ``{prefix}_world_model/...``."""
        from quadlit.training.plots import horizon_error_figure
        from quadlit.training.world_model_eval import flat_metrics, format_table, open_loop_errors

        dm = self.trainer.datamodule
        steps = dm.world_model_steps(self.policy, self.obs_norm, self.device)
        if steps is None:
            return {}
        report = open_loop_errors(self.world_model, self.obs_norm(steps.obs), steps.action, steps.done,
                                  steps.pushed, groups=dm.spec.obs_segments)
        if self.trainer.is_global_zero and not self.trainer.sanity_checking:
            print(f"\nworld-model open-loop error ({prefix}, step {self.evaluated_step}; RMS over windows and slots of "
                  f"error / the slot's std, {report.judged_envs} judged environments):\n{format_table(report)}")
            with_push = None if report.with_push is None else report.with_push.curves()
            self._add_figure(f"{prefix}/world_model_error", lambda: horizon_error_figure(
                report.without_push.horizons, report.without_push.curves(), with_push))
        return {f"{prefix}_{k}": v for k, v in flat_metrics(report).items()}
