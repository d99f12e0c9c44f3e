"""The reach task: the seed's point-mass creature with stamina, chasing goals in a walled box."""

from quadlit.tasks.reach.params import ReachParams
from quadlit.tasks.reach.task import Creature, ReachTask, reach_spec

__all__ = ["Creature", "ReachParams", "ReachTask", "reach_spec"]
