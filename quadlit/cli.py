"""The ``quadlit`` command: LightningCLI for fit/validate/test plus tool subcommands.

    quadlit fit --config configs/reach.yaml
    quadlit validate --config configs/reach.yaml --ckpt_path lightning_logs/version_0/checkpoints/last.ckpt
    quadlit bench reach|physics
    quadlit export-mjcf --out a1.xml
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

import torch
import yaml
from jsonargparse import ArgumentError
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI

from quadlit.errors import ConfigError
from quadlit.training.data import RolloutDataModule
from quadlit.training.module import QuadlitModule
from quadlit.training.video import EvalVideo

TOOL_COMMANDS = {
    "bench": "quadlit.bench:main",
    "export-mjcf": "quadlit.physics.mjcf:main",
    "export": "quadlit.export:main",
    "play": "quadlit.play:main",
}


class QuadlitCLI(LightningCLI):
    """LightningCLI with the data module's sizes linked into the model."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.obs_dim", "model.obs_dim", apply_on="instantiate")
        parser.link_arguments("data.action_dim", "model.action_dim", apply_on="instantiate")

    def _check_ckpt_path(self) -> None:
        sub = self.config.get("subcommand")
        ckpt = self.config.get(sub, {}).get("ckpt_path") if sub else None
        if ckpt and ckpt not in ("last", "best", "hpc", "registry") and not Path(ckpt).is_file():
            raise ConfigError(f"--ckpt_path: no checkpoint file at {ckpt}")

    def before_instantiate_classes(self) -> None:
        self._check_ckpt_path()

    def instantiate_classes(self) -> None:
        # constructors validate their arguments; what they reject is the user's input
        try:
            super().instantiate_classes()
        except (ValueError, TypeError) as exc:
            raise ConfigError(str(exc)) from exc


def default_callbacks() -> list:
    """Checkpoints (the last iteration, and the best by evaluation return) and evaluation videos."""
    return [
        ModelCheckpoint(monitor="eval/return", mode="max", save_last=True, save_top_k=1,
                        filename="best-{step}", auto_insert_metric_name=False),
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
        },
        parser_kwargs={"exit_on_error": False},
        save_config_kwargs={"overwrite": True},
        args=args,
    )


def _run_tool(name: str, argv: list[str]) -> int:
    module_name, func = TOOL_COMMANDS[name].split(":")
    import importlib

    return int(importlib.import_module(module_name).__getattribute__(func)(argv) or 0)


def _one_line(exc: BaseException) -> str:
    msg = str(exc).strip() or type(exc).__name__
    lines = [ln.strip() for ln in msg.splitlines() if ln.strip()]
    if lines[0].startswith("Problems parsing config"):
        detail = " ".join(lines).split(":", 1)[1].replace('in "<unicode string>", ', "")
        return f"config is not valid YAML:{detail}"
    # jsonargparse nests the real cause at the end ("Parser key ...: Expected ...")
    if len(lines) > 1:
        key = next((ln for ln in lines if ln.startswith(("Parser key", "Key", "Problem with given class_path"))), None)
        detail = next((ln for ln in reversed(lines) if not ln.startswith(("Given value", "-", "tip:", "usage:"))),
                      lines[-1])
        return f"{key} {detail}" if key and key != detail else detail
    return lines[0]


def quiet_known_warnings() -> None:
    """Silence warnings that say nothing actionable to a quadlit user."""
    os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")
    logging.getLogger("lightning.fabric.utilities.seed").setLevel(logging.WARNING)
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
    # denormal floats make CPU math many times slower (seen in LSTM backward passes late in
    # training); RL gains nothing from them
    torch.set_flush_denormal(True)
    try:
        if argv and argv[0] in TOOL_COMMANDS:
            return _run_tool(argv[0], argv[1:])
        run_cli(argv)
        return 0
    except KeyboardInterrupt:
        print("quadlit: interrupted", file=sys.stderr)
        return 130
    except (ConfigError, ArgumentError, yaml.YAMLError) as exc:
        if debug:
            raise
        print(f"quadlit: error: {_one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
