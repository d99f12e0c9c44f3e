"""``quadlit bench world-model`` on a tiny run: every design is trained and judged on the same data."""

import json
import sys

import pytest

from quadlit.errors import ConfigError


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from quadlit.cli import run_cli
    from tests.tiny import REPO, TINY

    root = tmp_path_factory.mktemp("wm_bench")
    argv = sys.argv
    sys.argv = ["quadlit"]
    try:
        run_cli(["fit", "--config", str(REPO / "configs/reach.yaml"), *TINY, "--trainer.logger", "false",
                 "--data.wm_eval_envs", "0", "--trainer.default_root_dir", str(root)])
    finally:
        sys.argv = argv
    (last,) = root.rglob("last.ckpt")
    return last


def test_designs_are_judged_on_the_same_windows(tiny_run, tmp_path, capsys):
    from quadlit.bench.world_model import main

    out = tmp_path / "wm.json"
    assert main(["--ckpt_path", str(tiny_run), "--variants", "1x1", "3x2", "--steps", "4", "--batch", "64",
                 "--rollouts", "2", "--envs", "4", "--rollout-steps", "8", "--eval-envs", "4",
                 "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["variants"]) == {"run", "1x1", "3x2"}
    assert result["transitions"] == 2 * 4 * 8 and result["horizons"] == [1, 5, 10, 25]
    for name, row in result["variants"].items():
        assert len(row["error"]) == 4 and all(v == v and v >= 0 for v in row["error"]), name
    assert result["variants"]["3x2"]["seconds_per_step"] > 0
    # the baselines do not depend on the world model: copy-last's error is how far the state moves
    assert all(v > 0 for v in result["copy_last"])
    printed = capsys.readouterr().out
    assert "world model 3x2" in printed and "copy-last" in printed


def test_the_options_are_judged_and_a_classifier_twice(tiny_run, tmp_path, capsys):
    from quadlit.bench.world_model import main

    out = tmp_path / "wm.json"
    # reach has no contact flags: its one stamina slot stands in for the classified group
    assert main(["--ckpt_path", str(tiny_run), "--variants", "2x1", "2x1+c", "2x1+rc", "--steps", "4", "--batch",
                 "64", "--rollouts", "2", "--envs", "4", "--rollout-steps", "8", "--eval-envs", "4",
                 "--contact-group", "stamina", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["variants"]) == {"run", "2x1", "2x1+c", "2x1+c threshold", "2x1+rc", "2x1+rc threshold"}
    for name, row in result["variants"].items():
        assert set(row["groups"]) == {"goal_relative", "position", "stamina"}, name
        assert all(len(v) == 4 and v == v for v in row["groups"].values()), name
    # the same weights judged twice: only the classified slot can differ
    c, t = result["variants"]["2x1+c"]["groups"], result["variants"]["2x1+c threshold"]["groups"]
    assert c["position"] == t["position"] and c["goal_relative"] == t["goal_relative"]
    assert set(result["groups"]) == {"copy_last", "linear"} and len(result["groups"]["copy_last"]["stamina"]) == 4
    assert "2x1+rc threshold" in capsys.readouterr().out


def test_variants_parse_with_and_without_options():
    from quadlit.bench.world_model import Variant, _variant

    assert _variant("8x4") == Variant("8x4", 8, 4)
    assert _variant("8x1+c") == Variant("8x1+c", 8, 1, contacts=True)
    assert _variant("8x1+rc") == Variant("8x1+rc", 8, 1, contacts=True, residual=True)


@pytest.mark.parametrize("argv,needle", [
    (["--variants", "8"], "HORIZONxHISTORY"),
    (["--variants", "0x1"], "HORIZONxHISTORY"),
    (["--variants", "8x1+"], "HORIZONxHISTORY"),
    (["--variants", "8x1+x"], "HORIZONxHISTORY"),
    (["--variants", "8x1+cc"], "HORIZONxHISTORY"),
    (["--variants", "8x1+c"], "--contact-group 'foot_contact'"),
    (["--steps", "0"], "--steps"),
    (["--eval-envs", "1"], "--eval-envs"),
])
def test_bad_input_is_refused(tiny_run, argv, needle, capsys):
    from quadlit.bench.world_model import main

    with pytest.raises((SystemExit, ConfigError)) as info:
        main(["--ckpt_path", str(tiny_run), *argv])
    message = str(info.value) if isinstance(info.value, ConfigError) else capsys.readouterr().err
    assert needle in message
