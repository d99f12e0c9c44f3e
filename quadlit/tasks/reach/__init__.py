"""The reach task: the seed's point-mass creature with stamina, chasing goals in a walled box."""

from quadlit.tasks.reach.params import ReachParams
from quadlit.tasks.reach.task import Creature, ReachTask, reach_spec
from quadlit.tasks.registry import TaskDef

TASK = TaskDef(name="reach", params_type=ReachParams, spec=reach_spec, task_class=ReachTask)

__all__ = ["Creature", "ReachParams", "ReachTask", "TASK", "reach_spec"]
