"""RolloutDataModule: owns the environments and turns them into a stream of rollouts."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import lightning as L
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from quadlit.envs.base import EnvSpec
from quadlit.envs.pool import ShardPool, default_physics_threads
from quadlit.errors import ConfigError
from quadlit.tasks import evaluations, guard_evaluation, make_evaluation_task, make_task, task_extras, task_spec
from quadlit.tasks.registry import Evaluation
from quadlit.tasks.balance.params import BalanceParams
from quadlit.tasks.reach.params import ReachParams
from quadlit.training import distributed
from quadlit.training.resources import auto_num_envs, check_fits_in_memory
from quadlit.training.rollout import RecordedSteps, Rollout, RolloutCollector, noise_offsets, record_steps
from quadlit.training.world_model_eval import HORIZONS


class _RolloutStream(Dataset):
    """A map-style dataset of ``length`` rollouts, each collected when it is asked for.

    Because it has a length, Lightning does not prefetch: rollout k is collected after
    update k-1, with the current policy.
    """

    def __init__(self, datamodule: "RolloutDataModule", length: int) -> None:
        self.dm = datamodule
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Rollout:
        return self.dm.collect()


class _EvalToken(Dataset):
    """One item: validation runs its episodes inside a single validation_step."""

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> int:
        return index


def _identity(batch: Any) -> Any:
    return batch


def _arrays_to_tensors(tree: Any) -> Any:
    """NumPy arrays -> tensors (recursively), so checkpoints load with ``weights_only=True``."""
    if isinstance(tree, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(tree).copy())
    if isinstance(tree, np.generic):
        return tree.item()
    if isinstance(tree, dict):
        return {k: _arrays_to_tensors(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_arrays_to_tensors(v) for v in tree)
    return tree


def _tensors_to_arrays(tree: Any) -> Any:
    """Inverse of ``_arrays_to_tensors`` for the environments' state (LSTM rows stay tensors)."""
    if isinstance(tree, torch.Tensor):
        return tree.numpy().copy()
    if isinstance(tree, dict):
        return {k: (v if k == "lstm_state" else _tensors_to_arrays(v)) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_tensors_to_arrays(v) for v in tree)
    return tree


class RolloutDataModule(L.LightningDataModule):
    """Environments, rollout collection and evaluation environments.

    How it meets the LightningModule (two documented hooks, nothing else): to collect a rollout it
    asks ``trainer.lightning_module.rollout_policy()`` for a ``RolloutPolicy`` (the networks that
    act and estimate values, the observation statistics, the device and the action generator);
    the module's evaluation asks this data module for ``evaluation_batches()``.

    Args:
        task: which task to train: "balance" (the quadruped) or "reach" (the point-mass smoke test).
        reach: parameters of the reach task (used when task is "reach").
        balance: parameters of the balance task (used when task is "balance").
        num_envs: environments per process, or "auto" to size from free memory.
        min_envs: lower bound for num_envs "auto".
        max_envs: upper bound for num_envs "auto".
        rollout_steps: control steps per environment in one rollout (T).
        iterations_per_epoch: rollouts (= training iterations) per Lightning epoch.
        physics_threads: threads stepping the environments (None: one per core).
        seed: master seed of the training environments (each rank adds its rank).
        eval_episodes: evaluation episodes run by validate (one per evaluation environment).
        eval_seed: seed of the evaluation episodes (fixed, so evaluations are comparable).
        eval_curve: also run the task's own evaluations (the balance task's push-robustness curve,
            ``eval_episodes`` per push magnitude).
        wm_eval_envs: environments whose steps judge the world model's open-loop predictions at
            validation (when the model has a world model; half fit the linear baseline, the other
            half are judged); 0: no world-model evaluation.
        wm_eval_steps: control steps recorded in each of them from a reset (at least the longest
            horizon, 25; the default 5 s holds a push or two where pushes come every 2-4 s).
        guard_episodes: episodes per push magnitude of the deployment guard's check (when the
            model has one, ``model.guard_tolerance``; the task's ``TaskDef.guard``).
        guard_seed: seed of the guard's episodes (fixed, and not the evaluations' seed: the
            policies a run deploys are chosen on other episodes than the ones they are judged on).
    """

    def __init__(
        self,
        task: Literal["reach", "balance"] = "balance",
        reach: ReachParams = ReachParams(),
        balance: BalanceParams = BalanceParams(),
        num_envs: int | Literal["auto"] = "auto",
        min_envs: int = 64,
        max_envs: int = 256,
        rollout_steps: int = 32,
        iterations_per_epoch: int = 10,
        physics_threads: int | None = None,
        seed: int = 0,
        eval_episodes: int = 32,
        eval_seed: int = 12345,
        eval_curve: bool = True,
        wm_eval_envs: int = 64,
        wm_eval_steps: int = 250,
        guard_episodes: int = 24,
        guard_seed: int = 777,
    ) -> None:
        super().__init__()
        if num_envs != "auto" and (not isinstance(num_envs, int) or num_envs < 1):
            raise ValueError(f"data.num_envs must be a positive integer or 'auto', got {num_envs!r}")
        if min_envs < 1 or max_envs < min_envs:
            raise ValueError(f"data.min_envs and data.max_envs must satisfy 1 <= min_envs <= max_envs, "
                             f"got {min_envs} and {max_envs}")
        if rollout_steps < 1:
            raise ValueError(f"data.rollout_steps must be >= 1, got {rollout_steps}")
        if iterations_per_epoch < 1:
            raise ValueError(f"data.iterations_per_epoch must be >= 1, got {iterations_per_epoch}")
        if physics_threads is not None and physics_threads < 1:
            raise ValueError(f"data.physics_threads must be >= 1 (or null for one per core), got {physics_threads}")
        if eval_episodes < 1:
            raise ValueError(f"data.eval_episodes must be >= 1, got {eval_episodes}")
        if wm_eval_envs != 0 and (not isinstance(wm_eval_envs, int) or wm_eval_envs < 2):
            raise ValueError(f"data.wm_eval_envs must be 0 (off) or an integer >= 2, got {wm_eval_envs!r}")
        if not isinstance(wm_eval_steps, int) or wm_eval_steps < max(HORIZONS):
            raise ValueError(f"data.wm_eval_steps must be an integer >= {max(HORIZONS)} (the longest horizon), "
                             f"got {wm_eval_steps!r}")
        self.task_name = task
        self.task_params = {"reach": reach, "balance": balance}[task]
        self.spec: EnvSpec = task_spec(task, self.task_params)
        # what the task needs besides its parameters (an imported robot: read and checked here,
        # before a run directory exists, so a bad robot file is one line and nothing written)
        task_extras(task, self.task_params)
        if num_envs != "auto":  # refused here, before a run directory exists, not by a failed allocation
            check_fits_in_memory(self.spec, rollout_steps, num_envs)
        self.num_envs_setting = num_envs
        self.min_envs, self.max_envs = min_envs, max_envs
        self.rollout_steps = rollout_steps
        self.iterations_per_epoch = iterations_per_epoch
        self.physics_threads = physics_threads
        self.seed = seed
        self.eval_episodes = eval_episodes
        self.eval_seed = eval_seed
        self.eval_curve = eval_curve
        self.wm_eval_envs = wm_eval_envs
        self.wm_eval_steps = wm_eval_steps
        self._wm_eval_task = None  # built on first use
        if not isinstance(guard_episodes, int) or guard_episodes < 1:
            raise ValueError(f"data.guard_episodes must be a positive integer, got {guard_episodes!r}")
        if guard_seed == eval_seed:
            raise ValueError(f"data.guard_seed must differ from data.eval_seed ({eval_seed}): the guard must not "
                             f"choose the deployed policy on the episodes it is judged on")
        self.guard_episodes = guard_episodes
        self.guard_seed = guard_seed
        self._guard: tuple[Evaluation, Any] | None = None  # built on first use
        self.num_envs: int | None = None
        self.collector: RolloutCollector | None = None
        self.evaluations: list[tuple[Evaluation, Any]] = []  # (evaluation, its environments)
        self._pool: ShardPool | None = None
        self._pending_state: dict[str, Any] | None = None

    # sizes carried to the model by LightningCLI.link_arguments
    @property
    def obs_dim(self) -> int:
        return self.spec.obs_dim

    @property
    def action_dim(self) -> int:
        return self.spec.action_dim

    @property
    def privileged_dim(self) -> int:
        return self.spec.privileged_dim

    def _device(self) -> torch.device:
        if self.trainer is not None:
            return self.trainer.strategy.root_device
        return torch.device("cpu")

    def _rank(self) -> int:
        return self.trainer.global_rank if self.trainer is not None else 0

    def _threads(self) -> int | None:
        """Physics threads of this process: as configured, or this process's share of the cores
        when several processes (DDP ranks) run on one machine."""
        if self.physics_threads is not None:
            return self.physics_threads
        local_processes = self.trainer.num_devices if self.trainer is not None and self.trainer.world_size > 1 else 1
        return max(1, default_physics_threads() // local_processes) if local_processes > 1 else None

    def setup(self, stage: str) -> None:
        if self._pool is None:
            self._pool = ShardPool(self._threads())
        if stage == "fit" and self.collector is None:
            if self.num_envs_setting == "auto":  # every rank takes the smallest rank's choice
                chosen, why = auto_num_envs(self.spec, self.rollout_steps, self.min_envs, self.max_envs, self._device(),
                                            min(self._pool.num_threads, default_physics_threads()))
                self.num_envs = distributed.min_over_ranks(chosen)
                rank_zero_info(f"data.num_envs auto: {self.num_envs} environments"
                               + (f" ({why})" if self.num_envs == chosen else " (the smallest rank's choice)"))
            else:
                self.num_envs = int(self.num_envs_setting)
            task = make_task(self.task_name, self.num_envs, self.task_params, self.seed + self._rank(), self._pool)
            self.collector = RolloutCollector(task, self.rollout_steps)
            self.collector.reset(self.seed + self._rank())
            if self._pending_state is not None:
                self._load_collector(self._pending_state)
        if not self.evaluations:
            self.evaluations = [
                (ev, make_evaluation_task(self.task_name, ev, self.eval_seed, self._pool))
                for ev in evaluations(self.task_name, self.task_params, self.eval_episodes)
                if ev.name == "" or self.eval_curve
            ]

    @property
    def eval_task(self):
        """The evaluation environments of the task as configured."""
        return next((task for ev, task in self.evaluations if ev.name == ""), None)

    def evaluation_batches(self) -> list[tuple[Evaluation, Any]]:
        """Hook for the LightningModule: each evaluation of the task with its environments."""
        return self.evaluations

    def guard_batch(self) -> tuple[Evaluation, Any]:
        """The deployment guard's evaluation with its environments (built on first use, seeded
        ``guard_seed``)."""
        if self._guard is None:
            evaluation = guard_evaluation(self.task_name, self.task_params, self.guard_episodes)
            self._guard = (evaluation, make_evaluation_task(self.task_name, evaluation, self.guard_seed, self._pool))
        return self._guard

    def world_model_steps(self, policy: torch.nn.Module, obs_norm: Any, device: torch.device) -> RecordedSteps | None:
        """Hook for the LightningModule: ``wm_eval_steps`` control steps of ``wm_eval_envs``
        environments with the parameters of the task's plain evaluation (as configured, made
        deterministic in what it randomises over time: for balance no curriculum, no push jitter),
        reset with ``eval_seed``, ``policy`` sampling its actions as in training but from its own
        generator (seeded ``eval_seed``); None when ``wm_eval_envs`` is 0."""
        if self.wm_eval_envs == 0:
            return None
        if self._wm_eval_task is None:
            params = next(ev.params for ev in evaluations(self.task_name, self.task_params, 1) if ev.name == "")
            self._wm_eval_task = make_task(self.task_name, self.wm_eval_envs, params, self.eval_seed, self._pool)
        return record_steps(policy, obs_norm, self._wm_eval_task, self.eval_seed, self.wm_eval_steps, device)

    def collect(self) -> Rollout:
        """One rollout with the LightningModule's current ``rollout_policy()``."""
        agent = self.trainer.lightning_module.rollout_policy()
        self.collector.task.set_progress(agent.env_steps)
        offsets = noise_offsets(self.collector.task.num_envs, agent.quiet_envs, agent.quiet_std_scale, agent.device)
        return self.collector.collect(agent.policy, agent.obs_norm, agent.device, agent.generator, critic=agent.critic,
                                      world_model=agent.world_model, log_std_offset=offsets,
                                      noise_correlation=agent.noise_correlation)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(_RolloutStream(self, self.iterations_per_epoch), batch_size=None,
                          shuffle=False, num_workers=0, collate_fn=_identity)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(_EvalToken(), batch_size=None, num_workers=0, collate_fn=_identity)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()

    def state_dict(self) -> dict[str, Any]:
        if self.collector is None:
            return {}
        collector = _arrays_to_tensors(self.collector.state_dict())
        state = {"num_envs": self.num_envs, "task_name": self.task_name,
                 "task_params": dataclasses.asdict(self.task_params), "collector": collector}
        extras = task_extras(self.task_name, self.task_params)
        if extras:
            state["task_extras"] = extras
        # under DDP every rank owns its own environments: rank zero writes them all
        ranks = distributed.gather(collector)
        if len(ranks) > 1:
            state["rank_collectors"] = ranks
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        if state.get("task_name") != self.task_name:
            raise ConfigError(f"checkpoint was trained on task {state.get('task_name')!r}, "
                             f"but data.task is {self.task_name!r}")
        saved, ours = state.get("task_extras") or {}, task_extras(self.task_name, self.task_params)
        if saved.get("digest") != ours.get("digest"):
            raise ConfigError(self._extras_mismatch(saved, ours))
        if self.collector is None:
            self._pending_state = state
        else:
            self._load_collector(state)

    @staticmethod
    def _extras_mismatch(saved: dict, ours: dict) -> str:
        """The one-line refusal of a checkpoint whose task extras (an imported robot) differ."""
        def name(extras: dict) -> str:
            robot = extras.get("robot")
            return "the built-in A1" if robot is None else f"robot {robot['name']!r} ({robot.get('source')})"

        return (f"the checkpoint was trained on {name(saved)}, but data.balance.robot gives {name(ours)}; "
                "resume with the robot it was trained on")

    def _load_collector(self, state: dict[str, Any]) -> None:
        if state["num_envs"] != self.num_envs and self.num_envs_setting == "auto":
            self.collector.task.close()
            self.num_envs = int(state["num_envs"])
            task = make_task(self.task_name, self.num_envs, self.task_params, self.seed + self._rank(), self._pool)
            self.collector = RolloutCollector(task, self.rollout_steps)
        if state["num_envs"] != self.num_envs:
            raise ConfigError(f"checkpoint holds {state['num_envs']} environments, but this run has "
                             f"data.num_envs={self.num_envs}; set data.num_envs={state['num_envs']} to resume")
        collector = state["collector"]
        ranks = state.get("rank_collectors")
        rank, world = self._rank(), self.trainer.world_size if self.trainer is not None else 1
        if ranks is not None and len(ranks) == world:
            collector = ranks[rank]
        elif world > 1 or ranks is not None:
            saved = len(ranks) if ranks is not None else 1
            rank_zero_warn(f"the checkpoint holds the environments of {saved} process(es), this run has {world}: "
                           f"rank 0 continues the saved rank-0 environments, the other ranks start new ones "
                           f"(seeded data.seed + rank)")
            if rank != 0:
                return
        self.collector.load_state_dict(_tensors_to_arrays(collector))

    def teardown(self, stage: str) -> None:
        pass

    def close(self) -> None:
        for task in (getattr(self.collector, "task", None), *(task for _, task in self.evaluations),
                     self._wm_eval_task, self._guard[1] if self._guard is not None else None):
            if task is not None:
                task.close()
        self._wm_eval_task = None  # built anew, on a new pool, if asked for again
        self._guard = None
        if self._pool is not None:
            self._pool.close()
            self._pool = None
