"""`quadlit bench falls`: the direction sectors by hand, and the fall records of the zero-action
policy, which falls after every push of 1.5 m/s or more (its curve is 100/8/0/0/0/0 at 64 episodes)."""

import numpy as np
import pytest

from quadlit.bench.falls import DIRECTIONS, LARGE_PUSH, push_direction, run_curve
from quadlit.errors import ConfigError


def test_push_directions_are_the_sectors_around_the_heading_axes():
    push = np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, 0.0], [0.0, -3.0], [1.0, 0.9], [1.0, 1.1], [-1.0, -0.01],
                     [0.2, -1.0]])
    names = [DIRECTIONS[k] for k in push_direction(push)]
    assert names == ["forward", "left", "back", "right", "forward", "left", "back", "right"]


def test_zero_action_falls_are_recorded_with_the_push_that_felled_them():
    from quadlit.models.baselines import ZeroPolicy
    from quadlit.tasks.balance.kernels import PRIVILEGED_SLICES as PS
    from quadlit.tasks.balance.params import BalanceParams
    from quadlit.training.normalizer import RunningNorm

    falls = run_curve(ZeroPolicy(12), RunningNorm(37, enabled=False), BalanceParams(), episodes=3, seed=7)
    assert falls.magnitude.shape == falls.fell.shape == (18,) and falls.last.shape == (18, 9)
    large = falls.magnitude >= LARGE_PUSH
    assert falls.fell[large].all()  # nothing holds a 1.5 m/s push without stepping
    # the last push, rotated into the heading frame, keeps its size: the curve's magnitude exactly
    push = falls.last[:, PS["push_vel_heading"][0]:PS["push_vel_heading"][1]]
    np.testing.assert_allclose(np.linalg.norm(push[large], axis=1), falls.magnitude[large], rtol=1e-5)
    since = falls.last[large, PS["time_since_push"][0]]
    assert np.all((since >= 0) & (since < 4.0))
    s = falls.summary()
    assert s["falls"] == int(large.sum()) == sum(s["direction"].values()) == sum(s["since_push"].values())
    assert s["survival"][2.0] == 0.0 and set(s["survival"]) == {0.5, 1.0, 1.5, 2.0, 2.5, 3.0}


def test_a_missing_checkpoint_or_no_episodes_is_refused(tmp_path):
    from quadlit.bench.falls import main

    with pytest.raises(ConfigError, match="no checkpoint file"):
        main(["--ckpt_path", str(tmp_path / "none.ckpt")])
    with pytest.raises(ConfigError, match="--episodes"):
        main(["--ckpt_path", str(tmp_path / "none.ckpt"), "--episodes", "0"])


def test_the_curve_at_chosen_pushes_is_the_in_run_curve_episode_for_episode():
    # run_curve builds its episodes with push_evaluation: at the curve's pushes they must be the
    # in-run evaluation's own
    from quadlit.models.baselines import ZeroPolicy
    from quadlit.tasks import evaluations
    from quadlit.tasks.balance.evaluation import PUSH_CURVE, push_evaluation
    from quadlit.tasks.balance.params import BalanceParams
    from quadlit.training.evaluation import push_curve
    from quadlit.training.normalizer import RunningNorm

    params = BalanceParams()
    curve = next(e for e in evaluations("balance", params, 8) if e.name == "curve")
    assert push_evaluation(params, PUSH_CURVE, 8).params == curve.params
    zero, norm = ZeroPolicy(12), RunningNorm(37, enabled=False)
    in_run = push_curve(zero, norm, "balance", params, 8, 7, "cpu")
    assert run_curve(zero, norm, params, 8, 7).survival() == pytest.approx(in_run)
    assert set(run_curve(zero, norm, params, 8, 7, magnitudes=(0.5, 2.0)).survival()) == {0.5, 2.0}
    # the zero action stands through 0.5 m/s and falls at 2.0 m/s (its curve: 100/8/0/0/0/0)
    assert run_curve(zero, norm, params, 8, 7, magnitudes=(0.5, 2.0)).survival() == {0.5: 1.0, 2.0: 0.0}
