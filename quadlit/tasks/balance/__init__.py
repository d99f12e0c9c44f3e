"""The balance task: a 12-joint quadruped stands upright and recovers from pushes."""

from quadlit.tasks.balance.evaluation import PUSH_CURVE, balance_evaluations, balance_guard
from quadlit.tasks.balance.kernels import OBS_SLICES
from quadlit.tasks.balance.mirror import balance_mirror
from quadlit.tasks.balance.params import BalanceParams
from quadlit.tasks.balance.robots import checkpoint_extras, restore_checkpoint_extras
from quadlit.tasks.balance.task import BalanceTask, balance_spec
from quadlit.tasks.registry import TaskDef

TASK = TaskDef(name="balance", params_type=BalanceParams, spec=balance_spec, task_class=BalanceTask,
               evaluations=balance_evaluations, guard=balance_guard, mirror=balance_mirror(),
               extras=checkpoint_extras, restore_extras=restore_checkpoint_extras)

__all__ = ["BalanceParams", "BalanceTask", "OBS_SLICES", "PUSH_CURVE", "TASK", "balance_spec"]
