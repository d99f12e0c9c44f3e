"""The ``quadlit`` command: LightningCLI for fit/validate/test plus tool subcommands.

    quadlit fit --config configs/reach.yaml
    quadlit validate --config configs/reach.yaml --ckpt_path lightning_logs/version_0/checkpoints/last.ckpt
    quadlit bench reach|physics|train|soak|render
    quadlit export-mjcf --out a1.xml
    quadlit sim2sim --ckpt_path PATH
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import logging
import os
import re
import shutil
import signal
import sys
import threading
import warnings
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import NoReturn

import torch
import yaml
from jsonargparse import ActionYesNo, ArgumentError
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, Timer
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO

from quadlit.errors import ConfigError, RunInterrupted, TrainingDiverged
from quadlit.outputs import check_output_folder
from quadlit.tasks import TASK_NAMES, require_guard, require_mirror, restore_task_extras, task_params_from_dict, task_spec
from quadlit.training.checkpoint import (AtomicCheckpointIO, RunCheckpoint, find_last_checkpoint,
                                         newest_last_checkpoint, read_checkpoint)
from quadlit.training.data import RolloutDataModule
from quadlit.training.run_lock import RunDirectoryLock
from quadlit.training.module import QuadlitModule
from quadlit.training.video import EvalVideo

OVERVIEW = """usage: quadlit COMMAND [options]     (quadlit COMMAND --help for a command's options)

Train a simulated quadruped to keep its balance: recurrent PPO + world model on fused Numba physics.

training (LightningCLI: every config field is an option, e.g. --data.num_envs 512):
  fit          train:            quadlit fit --config configs/balance.yaml
  validate     evaluate a run:   quadlit validate --config configs/balance.yaml --ckpt_path PATH
  test         same episodes as validate, logged under test/

tools:
  play         live window:      quadlit play --ckpt_path PATH   (or --task balance --policy zero)
  record       episode to GIF:   quadlit record --ckpt_path PATH --out episode.gif
  export       ONNX policy:      quadlit export --ckpt_path PATH --format onnx
  export-mjcf  robot as MJCF:    quadlit export-mjcf --out a1.xml
  sim2sim      policy in MuJoCo: quadlit sim2sim --ckpt_path PATH   (pip install 'quadlit[mujoco]')
  bench        benchmarks:       quadlit bench physics|reach|train|versus|versus-sb3|soak|render|fingerprint|compile|falls|early|...
  tune         hyperparameters:  quadlit tune --config configs/balance.yaml --trials 20   (Optuna)

Bad input exits with status 2 and one line naming the problem (QUADLIT_DEBUG=1 for a traceback).
"""

#: The LightningCLI subcommands quadlit runs.
RUN_COMMANDS = ("fit", "validate", "test")

TOOL_COMMANDS = {
    "bench": "quadlit.bench:main",
    "export-mjcf": "quadlit.physics.mjcf:main",
    "export": "quadlit.export:main",
    "play": "quadlit.play:main",
    "record": "quadlit.record:main",
    "sim2sim": "quadlit.sim2sim:main",
    "tune": "quadlit.tune:main",
}


#: Model fields linked from the data module (never given by the user).
LINKED_MODEL_SIZES = ("obs_dim", "action_dim", "privileged_dim")

#: Model fields that a run continued from a checkpoint may change: they are read at every update
#: (the learning rates are set on the restored optimizers). The others shape the networks or
#: seed their random streams, which the checkpoint fixes.
RESUMABLE_MODEL_FIELDS = frozenset({
    "lr", "wm_lr", "critic_lr", "gamma", "gae_lambda", "clip_ratio", "value_clip", "entropy_coef", "value_coef",
    "max_grad_norm", "ppo_epochs", "num_minibatches", "wm_updates", "wm_every", "wm_batch_size", "desired_kl",
    "final_desired_kl", "kl_decay_steps", "max_nonfinite_iterations", "quiet_envs", "quiet_std_scale", "guard_every",
})


#: Trainer flags Lightning accepts unchecked and then fails on (a division by zero mid-run) or
#: ignores: what each must be.
TRAINER_FLAG_RULES = {
    "check_val_every_n_epoch": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1 (or null)"),
    "val_check_interval": (lambda v: not isinstance(v, (int, float)) or v > 0, "> 0 (or null)"),
    "log_every_n_steps": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1 (or null)"),
    "min_epochs": (lambda v: isinstance(v, int) and v >= 0, "an integer >= 0 (or null)"),
    "min_steps": (lambda v: isinstance(v, int) and v >= 0, "an integer >= 0 (or null)"),
    "num_sanity_val_steps": (lambda v: isinstance(v, int) and v >= -1, "an integer >= 0, or -1 for all (or null)"),
    # the rollouts give the networks float32 observations: only float32 weights, or autocast, take them
    "precision": (lambda v: str(v) not in ("64", "64-true", "16-true", "bf16-true"),
                  "32-true, 16-mixed or bf16-mixed (64-true, 16-true and bf16-true are not supported)"),
    # ddp_spawn pickles the trainer, with the environments' thread pools, into new processes: it cannot
    "strategy": (lambda v: not (isinstance(v, str) and v.startswith("ddp_spawn")),
                 "a strategy that does not spawn, such as ddp or ddp_fork (ddp_spawn is not supported)"),
}


#: The largest ``seed_everything`` (NumPy's seeds are 32-bit).
MAX_SEED = 2**32 - 1


def _model_flags(args) -> set[str]:
    """The model fields given on the command line as ``--model.NAME VALUE`` or ``--model.NAME=VALUE``."""
    flags = set()
    for arg in args if isinstance(args, (list, tuple)) else ():
        if isinstance(arg, str) and arg.startswith("--model."):
            flags.add(arg[len("--model."):].split("=", 1)[0].split(".", 1)[0])
    return flags


def _config_text(path: str) -> str:
    """The text of config file ``path``, which must be UTF-8 (jsonargparse's reading error is a
    traceback)."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            found = "UTF-16 text"
        elif b"\0" in data:
            found = "binary data, not text"
        else:
            found = f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}; Latin-1?)"
        raise ConfigError(f"--config {path}: the file is {found}; save it as UTF-8 YAML") from None


def _duplicate_keys(node: yaml.Node, prefix: str = "") -> tuple[str, int, int] | None:
    """The first key that a YAML mapping in ``node`` (a composed document) gives twice, as
    (dotted key, first line, second line); None when there is none. YAML loaders keep the last
    silently."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else None
            if key is not None:
                line = key_node.start_mark.line + 1
                if key in seen:
                    return prefix + key, seen[key], line
                seen[key] = line
            found = _duplicate_keys(value_node, f"{prefix}{key}." if key is not None else prefix)
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found = _duplicate_keys(item, prefix)
            if found:
                return found
    return None


def _option_at(args: list, i: int) -> tuple[str, str | None] | None:
    """The option at ``args[i]`` as (dotted key, value as given), for ``--KEY VALUE`` and
    ``--KEY=VALUE`` (value None for a flag followed by another option); None for anything else."""
    arg = args[i]
    if not isinstance(arg, str) or not arg.startswith("--") or len(arg) == 2:
        return None
    key, eq, value = arg[2:].partition("=")
    if not eq:
        following = args[i + 1] if i + 1 < len(args) else None
        value = following if isinstance(following, str) and not following.startswith("--") else None
    return key, value


_UNSET = object()


def _set_in(config, key: str):
    """The value the parsed config mapping sets at dotted ``key``, or ``_UNSET``."""
    for part in key.split("."):
        if not isinstance(config, dict) or part not in config:
            return _UNSET
        config = config[part]
    return config


def _note_options_a_later_config_overrode(given: dict, path: str, content) -> None:
    """Options are applied in order, so a ``--config`` after ``--KEY VALUE`` replaces that value
    when the file sets KEY: say so in one line, naming each such option (then forgotten)."""
    lost = []
    for key, value in list(given.items()):
        in_config = _set_in(content, key)
        if in_config is _UNSET:
            continue
        del given[key]
        try:
            same = value is not None and yaml.safe_load(value) == in_config
        except yaml.YAMLError:
            same = False
        if not same:
            lost.append(f"--{key} {value} (the file has {in_config!r})")
    if lost:
        _note(f"warning: --config {path}, given after them, overrides {', '.join(lost)}; options apply in "
              f"order: give them after --config")


def _check_config_files(args) -> None:
    """A ``--config`` file must be UTF-8 text holding a YAML mapping (jsonargparse says only
    "Unexpected config:" of an empty one) with no key given twice; options that it overrides
    because they came before it are named."""
    args = list(args) if isinstance(args, (list, tuple)) else []
    given: dict[str, str | None] = {}  # options before the --config being read
    for i, arg in enumerate(args):
        if arg in ("-c", "--config") and i + 1 < len(args):
            path = args[i + 1]
        elif isinstance(arg, str) and arg.startswith("--config="):
            path = arg.split("=", 1)[1]
        else:
            option = _option_at(args, i)
            if option and option[0] != "config":
                given[option[0]] = option[1]
            continue
        if not isinstance(path, str) or not Path(path).is_file():
            continue  # a YAML string in place of a file, or a missing file: jsonargparse reports it
        text = _config_text(path)
        try:
            content = yaml.safe_load(text)
            duplicate = _duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader))
        except yaml.YAMLError:
            continue  # reported by jsonargparse with the position of the error
        if duplicate:
            key, first, second = duplicate
            raise ConfigError(f"--config {path}: {key} is given twice (lines {first} and {second}); YAML would keep "
                              f"only the second, so merge them into one")
        if content is None:
            raise ConfigError(f"--config {path}: the file is empty; it needs a YAML mapping with trainer:, data: "
                              f"and/or model: sections (see configs/*.yaml)")
        if not isinstance(content, dict):
            raise ConfigError(f"--config {path}: expected a YAML mapping with trainer:, data: and/or model: "
                              f"sections, got a {type(content).__name__}")
        for section in ("trainer", "data", "model"):
            value = content.get(section)
            if value is not None and not isinstance(value, dict):
                raise ConfigError(f"--config {path}: {section}: must be a mapping of {section} options "
                                  f"(see configs/*.yaml), got {value!r}")
        data = content.get("data")
        for task in TASK_NAMES if isinstance(data, dict) else ():
            value = data.get(task)
            if value is not None and not isinstance(value, dict):
                raise ConfigError(f"--config {path}: data.{task}: must be a mapping of the {task} task's "
                                  f"parameters, got {value!r}")
        _note_options_a_later_config_overrode(given, path, content)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (oneDNN's check: AVX-512 BF16 or AMX on x86)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _note(message: str) -> None:
    """A one-line message on stderr, from the first process only (DDP starts one per rank)."""
    if rank_zero_only.rank == 0:
        print(f"quadlit: {message}", file=sys.stderr)


class QuadlitCLI(LightningCLI):
    """LightningCLI with the data module's sizes linked into the model, and the checks that make
    bad input one line with nothing written: output directory, Trainer flags, checkpoint (task,
    sizes, digest, environment count) and ``--model.*`` options given with ``--ckpt_path``, all
    before anything is built; a run directory Lightning opened before failing is removed."""

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """fit, validate and test (Lightning's ``predict`` needs a ``forward`` that maps a batch to
        outputs, which a policy trained on rollouts has no use for: it acts in play, record, export
        and sim2sim)."""
        return {k: v for k, v in LightningCLI.subcommands().items() if k in RUN_COMMANDS}

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--untrained", action=ActionYesNo, default=False,
                            help="validate/test without --ckpt_path: evaluate untrained (newly initialised) weights "
                                 "on purpose (without it they refuse)")
        parser.link_arguments("data.obs_dim", "model.obs_dim", apply_on="instantiate")
        parser.link_arguments("data.action_dim", "model.action_dim", apply_on="instantiate")
        parser.link_arguments("data.privileged_dim", "model.privileged_dim", apply_on="instantiate")

    def _subcommand_config(self):
        """The subcommand ("fit", ...) and its part of the parsed config (empty without one)."""
        sub = self.config.get("subcommand")
        return sub, (self.config.get(sub, {}) if sub else {})

    def _check_ckpt_path(self) -> None:
        """A checkpoint given by path must be a readable quadlit checkpoint of the configured
        task with the configured sizes; checked before anything is built or written."""
        sub, cfg = self._subcommand_config()
        ckpt = cfg.get("ckpt_path")
        if not ckpt or ckpt in ("last", "best", "hpc", "registry"):
            return
        contents = read_checkpoint(ckpt)
        self._ckpt_hparams = {k: v for k, v in contents.get("hyper_parameters", {}).items() if not k.startswith("_")}
        if sub == "fit":
            self._check_time_left(ckpt, contents, cfg.get("trainer", {}).get("max_time"))
        dm_state = contents.get("RolloutDataModule") or {}
        task = cfg.get("data", {}).get("task")
        saved_task = dm_state.get("task_name")
        if saved_task and task and saved_task != task:
            raise ConfigError(f"--ckpt_path: {ckpt} was trained on task {saved_task!r}, but data.task is {task!r}")
        num_envs, saved_envs = cfg.get("data", {}).get("num_envs"), dm_state.get("num_envs")
        if sub == "fit" and isinstance(num_envs, int) and saved_envs is not None and num_envs != saved_envs:
            # refused here, before Lightning rewrites the run's config.yaml and opens an events file
            raise ConfigError(f"--ckpt_path: {ckpt} holds {saved_envs} environments, but data.num_envs is "
                              f"{num_envs}; set data.num_envs={saved_envs} (or 'auto') to resume")
        # the network sizes come from the checkpoint (Lightning applies its hyperparameters);
        # the observation and action sizes come from the task and must agree with them
        hp = contents.get("hyper_parameters", {})
        data_cfg = cfg.get("data", {})
        if task in TASK_NAMES:
            params = data_cfg.get(task)
            params = params.as_dict() if hasattr(params, "as_dict") else dict(params or {})
            try:
                spec = task_spec(task, task_params_from_dict(task, params))
            except (TypeError, ValueError):
                return  # invalid task parameters are reported when the data module is built

            for key, size in (("obs_dim", spec.obs_dim), ("action_dim", spec.action_dim)):
                if key in hp and hp[key] != size:
                    raise ConfigError(f"--ckpt_path: {ckpt} has {key}={hp[key]}, but task {task!r} has {key}={size}")
            # what the task needs besides its parameters (an imported robot) comes from the checkpoint:
            # the run continues on the robot it was trained on even when its file has moved
            try:
                restore_task_extras(task, task_params_from_dict(task, params), dm_state.get("task_extras"))
            except ConfigError as exc:
                raise ConfigError(f"--ckpt_path: {exc}") from None

    @staticmethod
    def _check_time_left(ckpt, contents: dict, max_time) -> None:
        """``trainer.max_time`` counts the training time of the run before the checkpoint too: a
        continued run with none of it left would stop at once ("Time limit reached") and leave a
        run without a checkpoint, so it is refused; otherwise how much is left is said."""
        if max_time is None:
            return
        try:
            timer = Timer(duration=max_time, verbose=False)
        except MisconfigurationException:
            return  # a malformed duration: the Trainer reports it
        saved = next((v for k, v in (contents.get("callbacks") or {}).items() if str(k).startswith("Timer")), None)
        if saved:
            timer.load_state_dict(saved)
        spent, left = timer.time_elapsed(), timer.time_remaining()
        if not spent:
            return
        spent_text, limit_text = timedelta(seconds=round(spent)), timedelta(seconds=round(spent + left))
        extend = f"give a longer --trainer.max_time (DD:HH:MM:SS, counting the {spent_text} spent) or null"
        if left <= 0:
            raise ConfigError(f"--ckpt_path: {ckpt} has trained {spent_text}, all of trainer.max_time {limit_text}, "
                              f"so nothing would be trained; to continue, {extend}")
        _note(f"trainer.max_time {limit_text} counts the {spent_text} trained before {ckpt}: "
              f"{timedelta(seconds=round(left))} left (for more, {extend})")

    def _resolve_last(self) -> None:
        """``--ckpt_path last`` means the newest ``last*.ckpt`` of the newest run under the default root
        directory (Lightning alone would look only in the new run's own, empty, directory and
        silently start from scratch). A resumed fit keeps logging into that run's directory. With
        ``trainer.logger false`` a run's checkpoints lie in ``ROOT/checkpoints``: looked for there."""
        self._resume_version = None
        sub, cfg = self._subcommand_config()
        if not cfg or cfg.get("ckpt_path") != "last":
            return
        root = Path(cfg.get("trainer", {}).get("default_root_dir") or os.getcwd())
        if cfg.get("trainer", {}).get("logger") is False:
            where = root / "checkpoints"
            path = newest_last_checkpoint(where) if where.is_dir() else None
            found = None if path is None else (path, None)
        else:
            where = root / "lightning_logs"
            found = find_last_checkpoint(root)
        if found is None:
            if sub != "fit":
                raise ConfigError(f"--ckpt_path last: no run under {where} has saved last.ckpt")
            _note(f"no last.ckpt under {where}; starting a new run")
            cfg["ckpt_path"] = None
            return
        path, version = found
        _note(f"{'resuming from' if sub == 'fit' else 'evaluating'} {path}")
        cfg["ckpt_path"] = str(path)
        if sub == "fit" and version is not None:
            self._resume_version = (root, version)

    def _check_output_dir(self) -> None:
        """The run directory must be creatable: checked before anything is built or written, so a
        default_root_dir that is a file, or lies in a read-only place, is one line, not a traceback
        after a half-made run."""
        sub, cfg = self._subcommand_config()
        if not sub:
            return
        root_setting = str(cfg.get("trainer", {}).get("default_root_dir") or os.getcwd())
        if "://" in root_setting:  # a remote file system (fsspec): Lightning checks it itself
            return
        check_output_folder(root_setting, "trainer.default_root_dir")

    def _check_evaluated_weights(self) -> None:
        """validate/test score the weights of a checkpoint; without one they would score a newly
        initialised policy and exit 0, which is what nobody wants unless they say so."""
        sub, cfg = self._subcommand_config()
        if not sub:
            return
        if sub == "fit" and cfg.get("untrained"):
            raise ConfigError("--untrained is for validate and test (fit always starts from untrained weights "
                              "or --ckpt_path)")
        if sub in ("validate", "test") and not cfg.get("ckpt_path") and not cfg.get("untrained"):
            raise ConfigError(f"{sub} needs --ckpt_path PATH (or last) to evaluate trained weights; "
                              f"give --untrained to evaluate newly initialised ones")
        if sub in ("validate", "test") and cfg.get("ckpt_path") and cfg.get("untrained"):
            raise ConfigError(f"{sub}: --untrained evaluates newly initialised weights and --ckpt_path a checkpoint's; "
                              f"give one of them")

    def _check_guard(self) -> None:
        """Options that need something of the task: a deployment guard its guard episodes
        (``TaskDef.guard``), a mirror loss its mirror (``TaskDef.mirror``): refused before the run
        starts, not at the end of its first epoch or update."""
        _, cfg = self._subcommand_config()
        if not cfg:
            return
        model, task = cfg.get("model", {}), cfg.get("data", {}).get("task")
        if task not in TASK_NAMES:
            return
        needs = ((model.get("guard_tolerance") is not None, require_guard),
                 (bool(model.get("mirror_coef")), require_mirror))
        for used, require in needs:
            try:
                if used:
                    require(task)
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc

    def _unused_task_params(self) -> str | None:
        """A line naming the parameters of a task the run does not train (``data.balance.*``
        under ``task: reach``), which would otherwise be dropped silently; None when there are none."""
        _, cfg = self._subcommand_config()
        data = cfg.get("data", {}) if cfg else {}
        for other in TASK_NAMES:
            given = data.get(other)
            if other == data.get("task") or given is None:
                continue
            given = given.as_dict() if hasattr(given, "as_dict") else dict(given)
            default = dataclasses.asdict(task_params_from_dict(other, {}))
            unused = sorted(k for k, v in given.items() if k in default and v != default[k])
            if unused:
                names = ", ".join(f"data.{other}.{k}" for k in unused)
                return f"warning: data.task is {data.get('task')!r}, so {names} {'is' if len(unused) == 1 else 'are'} not used"
        return None

    def _too_many_physics_threads(self) -> str | None:
        """A line when ``data.physics_threads`` is more than this machine's CPUs (1000 threads on 2
        cores ran a tiny run at half its speed without a word); None otherwise."""
        _, cfg = self._subcommand_config()
        threads = (cfg.get("data") or {}).get("physics_threads") if cfg else None
        cpus = os.cpu_count() or 1
        if isinstance(threads, int) and threads > cpus:
            return (f"warning: data.physics_threads is {threads}, more than this machine's {cpus} CPUs: the extra "
                    f"threads only slow the run (give at most {cpus}, or null for one per core)")
        return None

    def _check_trainer_flags(self) -> None:
        _, cfg = self._subcommand_config()
        trainer = cfg.get("trainer", {}) if cfg else {}
        for name, (ok, allowed) in TRAINER_FLAG_RULES.items():
            value = trainer.get(name)
            if value is not None and not ok(value):
                raise ConfigError(f"trainer.{name} must be {allowed}, got {value!r}")
        seed = cfg.get("seed_everything") if cfg else None
        if isinstance(seed, int) and not isinstance(seed, bool) and not 0 <= seed <= MAX_SEED:
            # Lightning seeds NumPy with it, which takes only these
            raise ConfigError(f"seed_everything must be true, false or an integer from 0 to {MAX_SEED}, got {seed}")

    def _set_seed(self) -> None:
        """``seed_everything: true`` asks for a random seed (the option's help says so), but
        Lightning's ``seed_everything()`` without a seed takes 0: choose one here, say it, and let
        Lightning record it in ``config.yaml`` (DDP's other processes take rank 0's from
        ``PL_GLOBAL_SEED``)."""
        if self._get(self.config, "seed_everything") is True and "PL_GLOBAL_SEED" not in os.environ:
            import secrets

            seed = secrets.randbelow(MAX_SEED + 1)
            if self.subcommand:
                self.config[self.subcommand]["seed_everything"] = seed
            else:
                self.config["seed_everything"] = seed
            _note(f"seed_everything true: seed {seed} chosen at random (recorded in config.yaml)")
        super()._set_seed()

    def parse_arguments(self, parser, args) -> None:
        _check_config_files(sys.argv[1:] if args is None else args)
        super().parse_arguments(parser, args)
        self._check_trainer_flags()
        self._check_evaluated_weights()
        self._check_guard()
        self._unused_note = self._unused_task_params()  # said when the run starts: bad input stays one line
        self._threads_note = self._too_many_physics_threads()
        # what --model.* options asked for: LightningCLI then replaces the whole model section
        # with the checkpoint's hyperparameters (before_instantiate_classes puts them back or refuses)
        _, cfg = self._subcommand_config()
        model_cfg = cfg.get("model") if cfg else None
        self._model_asked: dict = {}
        self._model_from_config: dict = {}
        if model_cfg is not None:
            given = _model_flags(sys.argv[1:] if args is None else args)
            self._model_asked = {k: v for k, v in model_cfg.as_dict().items() if k in given}
            self._model_from_config = {k: v for k, v in model_cfg.as_dict().items() if k not in LINKED_MODEL_SIZES}
        self._ckpt_hparams = {}
        # LightningCLI reads the checkpoint's hyperparameters right after parsing (in its private
        # _parse_ckpt_path): resolve "last" and check the file first, so a bad one gets one clear
        # line (tests/test_cli.py and tests/training/test_resume.py pin this order)
        self._check_output_dir()
        self._resolve_last()
        self._check_ckpt_path()

    def _apply_model_overrides(self) -> None:
        """A run continued from a checkpoint takes the checkpoint's model hyperparameters; a
        ``--model.*`` option that differs is applied when it can change mid-run (and so recorded in
        config.yaml and in later checkpoints), or refused in one line when it cannot."""
        saved = self._ckpt_hparams
        _, cfg = self._subcommand_config()
        if not saved or not cfg:
            return
        changed = {k: v for k, v in self._model_asked.items() if k in saved and saved[k] != v}
        fixed = sorted(k for k in changed if k not in RESUMABLE_MODEL_FIELDS)
        if fixed:
            was = ", ".join(f"{k}={saved[k]!r}" for k in fixed)
            raise ConfigError(f"--ckpt_path: {', '.join('--model.' + k for k in fixed)} cannot change in a run continued "
                              f"from a checkpoint (it has {was}); drop the option or start a new run")
        for key, value in changed.items():
            cfg["model"][key] = value
        if changed:
            _note("applying " + ", ".join(f"--model.{k} {v} (the checkpoint had {saved[k]})" for k, v in changed.items()))
        ignored = sorted(k for k, v in self._model_from_config.items()
                         if k in saved and saved[k] != v and k not in self._model_asked)
        if ignored:
            _note(f"model.{', model.'.join(ignored)}: the checkpoint's values are kept (the config's differ; "
                  f"give --model.KEY VALUE to change one)")

    def _fit_precision_to_cpu(self) -> None:
        """bf16-mixed on a CPU that has no native bf16 arithmetic is emulated, several times
        slower than float32: such a run uses 32-true instead, with a note."""
        _, cfg = self._subcommand_config()
        trainer = cfg.get("trainer") if cfg else None
        if not trainer or str(trainer.get("precision")) not in ("bf16-mixed", "bf16"):
            return
        accelerator = str(trainer.get("accelerator") or "auto")
        if accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available()):
            if not cpu_has_native_bf16():
                trainer["precision"] = "32-true"
                _note("this CPU has no native bf16 arithmetic: training in 32-true instead of bf16-mixed")

    def before_instantiate_classes(self) -> None:
        self._apply_model_overrides()
        self._fit_precision_to_cpu()
        _, cfg = self._subcommand_config()
        if cfg and cfg.get("trainer", {}).get("enable_checkpointing") is False:
            # the user turned checkpoints off: drop the default checkpoint callbacks (Lightning
            # refuses a ModelCheckpoint together with enable_checkpointing=False)
            callbacks = self.trainer_defaults.get("callbacks", [])
            self.trainer_defaults["callbacks"] = [c for c in callbacks if not isinstance(c, ModelCheckpoint)]

    def instantiate_classes(self) -> None:
        # constructors validate their arguments; what they reject is the user's input
        try:
            super().instantiate_classes()
        except (ValueError, TypeError) as exc:
            raise ConfigError(str(exc)) from exc
        except MisconfigurationException as exc:  # the Trainer's flags (accelerator, max_epochs, ...)
            raise ConfigError(f"trainer: {exc}") from exc
        except ImportError as exc:  # a flag that needs a package this machine lacks (accelerator tpu: torch_xla)
            raise ConfigError(f"a package is missing for this configuration: {exc}") from exc
        if type(self.trainer.strategy.checkpoint_io) is TorchCheckpointIO:  # not a user's own plugin
            self.trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        resume = getattr(self, "_resume_version", None)
        logger = self.trainer.logger
        _, cfg = self._subcommand_config()
        default_logger = cfg.get("trainer", {}).get("logger") in (None, True)  # no logger of the user's own
        if resume is not None and default_logger and isinstance(logger, TensorBoardLogger) \
                and Path(logger.root_dir) == resume[0] / "lightning_logs":
            # the default logger: continue the resumed run's directory instead of opening a new one
            self.trainer.logger = TensorBoardLogger(save_dir=resume[0], name="lightning_logs", version=resume[1])

    # LightningCLI runs a subcommand through the method of that name when the CLI has one
    def fit(self, model, **kwargs) -> None:
        self._run_trainer(self.trainer.fit, model, **kwargs)

    def validate(self, model, **kwargs) -> None:
        self._run_trainer(self.trainer.validate, model, **kwargs)

    def test(self, model, **kwargs) -> None:
        self._run_trainer(self.trainer.test, model, **kwargs)

    def _run_trainer(self, fn, model, **kwargs) -> None:
        """Run a Trainer entry point, holding the run directory's lock (a second process that
        would write the same directory is refused); when it fails on the user's input (memory, an
        output path, a configuration Lightning rejects) before its first checkpoint, remove the
        run directory it created, so bad input leaves nothing behind."""
        logger = self.trainer.logger
        created: list[Path] = []  # the run directory and those of its parents that this run would create
        if isinstance(logger, TensorBoardLogger) and rank_zero_only.rank == 0:
            log_dir = Path(logger.log_dir).absolute()
            created = [d for d in (log_dir, log_dir.parent, log_dir.parent.parent) if not d.exists()]
        run_dir = self.trainer.log_dir if rank_zero_only.rank == 0 else None
        lock = RunDirectoryLock(run_dir) if run_dir and "://" not in str(run_dir) else contextlib.nullcontext()
        interrupt = _InterruptAtBatchEnd()
        self.trainer.callbacks.append(interrupt)
        if getattr(self, "_unused_note", None):
            _note(self._unused_note)
        if getattr(self, "_threads_note", None):
            _note(self._threads_note)
        with lock:
            try:
                with interrupt.watching():
                    fn(model, **kwargs)
            except (ConfigError, MisconfigurationException, MemoryError, OSError) as exc:
                saved = any(c.last_model_path or c.best_model_path for c in self.trainer.checkpoint_callbacks)
                if created and not saved:
                    shutil.rmtree(created[0], ignore_errors=True)
                    for parent in created[1:]:
                        if parent.is_dir() and not any(parent.iterdir()):
                            parent.rmdir()
                if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                    raise ConfigError(self._disk_full(exc, run_dir)) from exc
                raise
            except SystemExit:
                # Lightning turns Ctrl-C into a graceful shutdown followed by sys.exit(1)
                if not self.trainer.interrupted:
                    raise
                signal.signal(signal.SIGINT, signal.default_int_handler)  # Lightning left Ctrl-C ignored
                raise RunInterrupted(self._continue_from()) from None

    def _disk_full(self, exc: OSError, run_dir) -> str:
        """One line for a disk that filled up during a run: where, and what is left to continue
        from (checkpoints are written to a temporary file renamed over the target, so the one a
        failed write was to replace is intact)."""
        where = exc.filename or run_dir or "the run directory"
        line = f"no space left on device while writing {where}"
        if self.subcommand != "fit":
            return line
        last = next((c.last_model_path for c in self.trainer.checkpoint_callbacks
                     if c.last_model_path and Path(c.last_model_path).is_file()), None)
        if last is None:
            return line + "; no checkpoint of this run was saved"
        try:
            step = f" (step {torch.load(last, map_location='cpu', weights_only=True, mmap=True)['global_step']})"
        except Exception:  # noqa: BLE001 (the step is a detail of the message)
            step = ""
        return line + f"; the previous checkpoint {last}{step} is intact: free some space and continue with --ckpt_path {last}"

    def _continue_from(self) -> str:
        """What an interrupted run can continue from, in one line."""
        callbacks = self.trainer.checkpoint_callbacks
        last = next((c.last_model_path for c in callbacks if c.last_model_path), "")
        last = last or next((c.best_model_path for c in callbacks if c.best_model_path), "")
        step = self.trainer.global_step
        if self.subcommand != "fit":
            return f"interrupted during {self.subcommand}"
        if not callbacks:
            return f"interrupted at step {step}; checkpointing is off, so the run cannot be continued"
        if not last:
            return f"interrupted at step {step}, before the first checkpoint: nothing to continue from"
        return f"interrupted at step {step}; continue with --ckpt_path {last}"


class _InterruptAtBatchEnd(Callback):
    """Ctrl-C that cannot be lost. Python raises KeyboardInterrupt wherever the main thread is
    when the signal is handled; if that is a finalizer or a callback whose exceptions Python
    ignores ("Exception ignored in ..."), the interrupt is gone and training goes on. While a
    Trainer entry point runs, the SIGINT handler also records the request, and this callback
    raises KeyboardInterrupt again at the next batch end (Lightning then shuts down gracefully
    and quadlit names the checkpoint to continue from)."""

    def __init__(self) -> None:
        self.requested = False

    @contextmanager
    def watching(self):
        if threading.current_thread() is not threading.main_thread() \
                or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            yield  # someone else handles Ctrl-C here (a test harness, an embedding application)
            return

        def handler(signum, frame):
            self.requested = True
            signal.default_int_handler(signum, frame)

        signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            if signal.getsignal(signal.SIGINT) is handler:
                signal.signal(signal.SIGINT, signal.default_int_handler)

    def _check(self, trainer) -> None:
        if self.requested and not trainer.interrupted:
            raise KeyboardInterrupt

    def on_train_batch_end(self, trainer, *args, **kwargs) -> None:
        self._check(trainer)

    def on_validation_batch_end(self, trainer, *args, **kwargs) -> None:
        self._check(trainer)


def default_callbacks() -> list:
    """Checkpoints (the last iteration, and the best by evaluation return) and evaluation videos."""
    return [
        # latest-*.ckpt and last.ckpt after every epoch, whether or not an evaluation ran: nothing
        # is lost on a crash (Lightning writes last.ckpt only when a regular checkpoint was saved)
        RunCheckpoint(save_last=True, save_top_k=1, every_n_epochs=1, save_on_train_epoch_end=True,
                      filename="latest-{step}", auto_insert_metric_name=False),
        RunCheckpoint(monitor="eval/return", mode="max", save_top_k=1, filename="best-{step}",
                      auto_insert_metric_name=False),
        EvalVideo(),
    ]


def run_cli(args: list[str] | None = None, extra_callbacks: list | None = None) -> QuadlitCLI:
    """Parse ``args`` and run the subcommand; ``extra_callbacks`` join the default callbacks
    (benchmarks use this to time a run)."""
    return QuadlitCLI(
        QuadlitModule,
        RolloutDataModule,
        seed_everything_default=0,
        trainer_defaults={
            "max_epochs": 20,
            "log_every_n_steps": 1,
            "num_sanity_val_steps": 0,
            "check_val_every_n_epoch": 5,
            "callbacks": default_callbacks() + list(extra_callbacks or []),
            "accelerator": "auto",
            "devices": 1,
            # rollouts are generated, not read from a dataset: each rank collects its own
            "use_distributed_sampler": False,
        },
        parser_kwargs={"exit_on_error": False},
        save_config_kwargs={"overwrite": True},
        args=args,
    )


def _argparse_error_as_one_line(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    raise ConfigError(f"{parser.prog}: {message}")


def _run_tool(name: str, argv: list[str]) -> int:
    module_name, func = TOOL_COMMANDS[name].split(":")
    import importlib

    # the tools parse with argparse, whose errors print the usage and exit: while a tool runs, its
    # parsing errors are reported like every other bad input (jsonargparse's parsers, used by tools
    # that run a fit, have their own error method and are not affected)
    default_error = argparse.ArgumentParser.error
    argparse.ArgumentParser.error = _argparse_error_as_one_line
    try:
        return int(importlib.import_module(module_name).__getattribute__(func)(argv) or 0)
    finally:
        argparse.ArgumentParser.error = default_error


def _one_line(exc: BaseException) -> str:
    msg = str(exc).strip() or type(exc).__name__
    lines = [ln.strip() for ln in msg.splitlines() if ln.strip()]
    if lines[0].startswith("Problems parsing config"):
        detail = " ".join(lines).split(":", 1)[1].replace('in "<unicode string>", ', "")
        return f"config is not valid YAML:{detail}"
    if "Does not validate against any of the Union subtypes" in msg:
        return _union_error(lines)
    # jsonargparse nests the real cause at the end ("Parser key ...: Expected ...")
    if len(lines) > 1:
        key = next((ln for ln in lines if ln.startswith(("Parser key", "Key", "Problem with given class_path"))), None)
        detail = next((ln for ln in reversed(lines) if not ln.startswith(("Given value", "-", "tip:", "usage:"))),
                      lines[-1])
        expected = re.fullmatch(r"Expected a (.+)\. Got value: (.*)", detail)
        if expected:  # "Expected a <class 'float'>. Got value: inf"
            given = expected.group(2)
            detail = f"must be {_type_name(expected.group(1), given)}, got {given!r}"
        return f"{key} {detail}" if key and key != detail else detail
    return lines[0]


def _not_lightning_interrupt_note(record: logging.LogRecord) -> bool:
    return "Detected KeyboardInterrupt" not in str(record.msg)


#: Spellings of NaN and infinity that a float field is refused (YAML reads them as strings).
NON_FINITE = frozenset({"nan", ".nan", "inf", "+inf", "-inf", ".inf", "+.inf", "-.inf", "infinity", "-infinity"})


def _type_name(text: str, given: str | None = None) -> str:
    """jsonargparse's spelling of a type, as a config would write it: <class 'int'> -> int,
    typing.Literal['auto'] -> 'auto', NoneType -> null; float, for a ``given`` NaN or infinity,
    -> a finite number (the value was refused for not being finite, not for not being a number)."""
    text = text.strip()
    if text.startswith("<class '") and text.endswith("'>"):
        text = text[len("<class '"):-2]
    if text.startswith("typing.Literal[") and text.endswith("]"):
        text = text[len("typing.Literal["):-1]
    if text == "float" and given is not None and given.strip().lower() in NON_FINITE:
        return "a finite number"
    return "null" if text == "NoneType" else text


def _union_error(lines: list[str]) -> str:
    """One line for a value that fits none of a union's types (jsonargparse lists each type's
    reason on its own line under "Errors:" and the value under "Given value:")."""
    key = lines[0].rstrip(":")
    given = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Given value:")), None)
    reasons = []
    for line in lines:
        if line.startswith("- "):
            reason = line[2:].strip()
            reasons.append(_type_name(reason[len("Expected a "):], given) if reason.startswith("Expected a ") else reason)
    allowed = " or ".join(reasons) if reasons else "one of its types"
    return f"{key}: must be {allowed}" + (f", got {given!r}" if given is not None else "")


def quiet_known_warnings() -> None:
    """Silence warnings that say nothing actionable to a quadlit user."""
    os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")
    logging.getLogger("lightning.fabric.utilities.seed").setLevel(logging.WARNING)
    # quadlit says in one line what was interrupted and where to continue from
    interrupt_log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if _not_lightning_interrupt_note not in interrupt_log.filters:
        interrupt_log.addFilter(_not_lightning_interrupt_note)
    for pattern in (
        r".*does not have many workers.*",  # rollouts are collected in-process on purpose
        r".*isinstance\(treespec, LeafSpec\).*",
        r".*LightningCLI's args parameter is intended.*",
        r".*The number of training batches .* is smaller than the logging interval.*",
    ):
        warnings.filterwarnings("ignore", message=pattern)


def main(argv: list[str] | None = None) -> int:
    """Console entry point. Bad input exits with status 2 and one line on stderr.

    Set ``QUADLIT_DEBUG=1`` to get the full traceback instead.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("QUADLIT_DEBUG") == "1"
    quiet_known_warnings()
    if not argv or argv[0] in ("-h", "--help"):
        print(OVERVIEW, end="")
        return 0 if argv else 2
    try:
        if argv and argv[0] in TOOL_COMMANDS:
            return _run_tool(argv[0], argv[1:])
        if not argv[0].startswith("-") and argv[0] not in RUN_COMMANDS:
            known = ", ".join([*RUN_COMMANDS, *TOOL_COMMANDS])
            hint = "; a policy acts in play, record, export and sim2sim" if argv[0] == "predict" else ""
            raise ConfigError(f"invalid choice: {argv[0]!r} (choose from {known}{hint}; quadlit --help says what "
                              f"each does)")
        run_cli(argv)
        return 0
    except TrainingDiverged as exc:
        if debug:
            raise
        print(f"quadlit: error: {exc}", file=sys.stderr)
        return 3
    except RunInterrupted as exc:
        _note(str(exc))
        return 130
    except KeyboardInterrupt:
        print("quadlit: interrupted", file=sys.stderr)
        return 130
    except (ConfigError, ArgumentError, yaml.YAMLError, MisconfigurationException) as exc:
        if debug:
            raise
        print(f"quadlit: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except MemoryError as exc:  # an allocation sized by the input (data.num_envs, network sizes...)
        if debug:
            raise
        print(f"quadlit: error: out of memory: {_one_line(exc)} (lower data.num_envs or the network sizes)",
              file=sys.stderr)
        return 2
    except OSError as exc:  # an output path that cannot be written, an input file that cannot be read
        if debug:
            raise
        detail = f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else _one_line(exc)
        print(f"quadlit: error: {detail}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
