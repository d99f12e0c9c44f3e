"""Benchmarks (scripts, not tests): ``quadlit bench reach|physics|train|soak|render|all``."""

from __future__ import annotations

import argparse
import importlib

BENCHES = {
    "reach": "quadlit.bench.reach",
    "physics": "quadlit.bench.physics",
    "train": "quadlit.bench.train",
    "soak": "quadlit.bench.soak",
    "render": "quadlit.bench.render",
}


def main(argv: list[str] | None = None) -> int:
    if argv and argv[0] in BENCHES:  # its own options and --help
        return int(importlib.import_module(BENCHES[argv[0]]).main(argv[1:]) or 0)
    parser = argparse.ArgumentParser(prog="quadlit bench", description="Run a benchmark and print its table.")
    parser.add_argument("name", choices=[*BENCHES, "all"],
                        help="reach: task kernel + fit throughput; physics: quadruped physics vs MuJoCo; "
                             "train: time to balance with the default fit; soak: resident memory over a 10-minute fit; "
                             "render: cost of an evaluation video "
                             "(all = reach + physics)")
    args, rest = parser.parse_known_args(argv)
    names = ["reach", "physics"] if args.name == "all" else [args.name]
    for name in names:
        importlib.import_module(BENCHES[name]).main(rest)
    return 0
