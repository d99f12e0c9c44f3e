"""Reading what a run saved: the task it trained on and its trained policy, from a checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from quadlit.errors import ConfigError
from quadlit.tasks import TASK_NAMES, task_params_from_dict


@dataclass
class LoadedRun:
    """A trained policy and the task it was trained on.

    Attributes:
        task_name: the task ("reach", ...).
        task_params: the task's parameter record, as trained.
        module: the QuadlitModule (policy, world model, observation normaliser), in eval mode.
        path: the checkpoint file.
    """

    task_name: str
    task_params: Any
    module: Any
    path: Path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint file's contents (CPU), with a one-line ConfigError for a missing,
    truncated or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--ckpt_path: no checkpoint file at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle of unknown classes, not a torch file...
        raise ConfigError(f"--ckpt_path: {path} is not a readable quadlit checkpoint "
                          f"({type(exc).__name__}: {(str(exc).strip().splitlines() or ['empty file'])[0][:120]})") from exc
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "RolloutDataModule" not in ckpt:
        raise ConfigError(f"--ckpt_path: {path} is not a quadlit training checkpoint")
    return ckpt


def load_run(path: str | Path, device: str | torch.device = "cpu") -> LoadedRun:
    """The policy and task saved in checkpoint ``path``."""
    from quadlit.training.module import QuadlitModule

    ckpt = read_checkpoint(path)
    dm_state = ckpt["RolloutDataModule"]
    name = dm_state.get("task_name")
    if name not in TASK_NAMES:
        raise ConfigError(f"--ckpt_path: {path} was trained on unknown task {name!r}")
    params = task_params_from_dict(name, dm_state.get("task_params", {}))
    hparams = {k: v for k, v in ckpt.get("hyper_parameters", {}).items() if not k.startswith("_")}
    module = QuadlitModule(**hparams)
    module.load_state_dict(ckpt["state_dict"])
    module.to(device).eval()
    return LoadedRun(task_name=name, task_params=params, module=module, path=Path(path))
