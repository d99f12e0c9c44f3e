"""The environment contract, the shard thread pool and per-environment random streams."""

from quadlit.envs.base import EnvSpec, StepResult, VecTask
from quadlit.envs.pool import ShardPool, default_physics_threads

__all__ = ["EnvSpec", "StepResult", "VecTask", "ShardPool", "default_physics_threads"]
