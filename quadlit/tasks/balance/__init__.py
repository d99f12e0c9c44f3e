"""The balance task: a 12-joint quadruped stands upright and recovers from pushes."""

from quadlit.tasks.balance.kernels import OBS_SLICES
from quadlit.tasks.balance.params import BalanceParams
from quadlit.tasks.balance.task import BalanceTask, balance_spec

__all__ = ["BalanceParams", "BalanceTask", "OBS_SLICES", "balance_spec"]
