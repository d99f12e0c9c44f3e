"""The ``quadlit`` console entry point: starts the physics compile helper before the heavy imports.

A cold ``quadlit fit`` spends its first seconds importing torch and Lightning and building the
run before it builds the task whose first step compiles the physics. When the run's task is the
quadruped (``balance``), the helper process of ``quadlit.physics.precompile`` is started here,
first thing, so that it compiles the physics stage kernels on the second core meanwhile. The
task is read from the command line as LightningCLI will see it (``--config`` files in order,
then ``--data.task``); where that cannot be told cheaply, nothing is started here and the task
starts the helper itself when it is built.
"""

from __future__ import annotations

import sys

_RUN_COMMANDS = ("fit", "validate", "test")


def task_of(argv: list[str]) -> str | None:
    """The ``data.task`` a LightningCLI run command line would use (``balance`` by default), or
    None when it is not a run command or cannot be told without parsing it fully. A
    ``bench train --single`` command line (one benchmark training run in this process, as
    ``bench train``, ``versus-sb3`` and ``tune`` start them) counts as a run command."""
    if argv[:2] == ["bench", "train"] and "--single" in argv:
        args = argv[2:]
    elif argv and argv[0] in _RUN_COMMANDS:
        args = argv[1:]
    else:
        return None
    task = "balance"  # RolloutDataModule's default
    k = 0
    while k < len(args):
        arg = args[k]
        name, eq, value = arg.partition("=")
        if name in ("--config", "--data.task", "--data"):
            if not eq:
                if k + 1 >= len(args):
                    return None
                value = args[k + 1]
                k += 1
            if name == "--config":
                task = _task_in_config(value, task)
            elif name == "--data.task":
                task = value
            else:  # --data as a file or a YAML mapping: let the CLI sort it out
                return None
            if task is None:
                return None
        k += 1
    return task


def _task_in_config(path: str, current: str) -> str | None:
    try:
        import yaml

        with open(path) as f:
            config = yaml.safe_load(f) or {}
    except Exception:  # a missing or broken file: the CLI reports it
        return None
    data = config.get("data") if isinstance(config, dict) else None
    if data is None:
        return current
    if not isinstance(data, dict):
        return None
    task = data.get("task", current)
    return task if isinstance(task, str) else None


def start_compile_helper_for(argv: list[str]) -> bool:
    """Start the physics compile helper when the command line ``argv`` runs the balance task
    (and the cache is cold); returns whether it was started."""
    if task_of(argv) != "balance":
        return False
    from quadlit.physics.precompile import start_background_compile
    from quadlit.tasks.balance.kernels import step_shard

    return start_background_compile(step_shard)


def main() -> int:
    from quadlit.environment import check_environment
    from quadlit.errors import ConfigError

    try:
        for warning in check_environment():  # before Numba is imported
            print(f"quadlit: warning: {warning}", file=sys.stderr)
    except ConfigError as exc:
        print(f"quadlit: error: {exc}", file=sys.stderr)
        return 2
    start_compile_helper_for(sys.argv[1:])
    from quadlit.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
