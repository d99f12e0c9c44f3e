"""``quadlit bench versus-sb3``: ``quadlit bench versus --baseline sb3 --baseline-params default``,
the comparison with Stable-Baselines3 PPO as issue 11 set it up (SB3 on the balance task's default
parameters), kept under its name for the commands in docs/benchmarks.md. Later options override
(e.g. ``--sb3-params config``)."""

from __future__ import annotations

from quadlit.bench.versus import main as versus_main


def main(argv: list[str] | None = None) -> int:
    return versus_main(["--baseline", "sb3", "--baseline-params", "default", *(argv or [])],
                       prog="quadlit bench versus-sb3")
