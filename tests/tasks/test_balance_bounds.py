"""The balance task's physical parameters have documented upper bounds, checked at the edge."""

import dataclasses

import pytest

from quadlit.tasks.balance import BalanceParams
from quadlit.tasks.balance.params import PHYSICAL_UPPER_BOUNDS


def _with(name: str, value: float) -> BalanceParams:
    return dataclasses.replace(BalanceParams(), **{name: value})


@pytest.mark.parametrize("name", sorted(PHYSICAL_UPPER_BOUNDS))
def test_each_bound_admits_its_limit_and_refuses_beyond_it(name):
    limit, why = PHYSICAL_UPPER_BOUNDS[name]
    _with(name, limit)  # the limit itself is allowed
    with pytest.raises(ValueError, match=f"balance.{name} must be <= {limit}") as info:
        _with(name, limit * 1.01)
    assert why in str(info.value)


def test_an_absurd_push_is_refused_naming_the_limit():
    with pytest.raises(ValueError, match=r"balance.push_magnitude must be <= 10.0 \(m/s"):
        BalanceParams(push_magnitude=1e9)


def test_reset_tilt_stays_below_the_failure_tilt():
    with pytest.raises(ValueError, match="balance.reset_tilt must be < max_tilt"):
        BalanceParams(reset_tilt=0.8, max_tilt=0.8)
    BalanceParams(reset_tilt=0.3, max_tilt=0.8)


@pytest.mark.parametrize("changes,needle", [
    ({"substeps": 100000}, "control period"),
    ({"physics_dt": 1e-300}, "physics_dt must be >= 1e-5"),
    ({"physics_dt": 0.0005, "substeps": 2}, "control period"),
])
def test_the_control_period_is_bounded(changes, needle):
    """Issue 32, item 20: 100000 substeps or a 1e-300 s step were accepted without a word."""
    with pytest.raises(ValueError, match=needle):
        BalanceParams(**changes)
    BalanceParams(physics_dt=0.002, substeps=10)  # 50 Hz with 2 ms steps stays fine
