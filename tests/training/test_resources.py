"""``num_envs: auto``: the environment count is bounded by memory and by the time of an
iteration, and the bound that decided is named."""

from types import SimpleNamespace

from quadlit.tasks import task_spec
from quadlit.tasks.reach import ReachParams
from quadlit.training import resources
from quadlit.training.resources import auto_num_envs

SPEC = task_spec("reach", ReachParams())
GIB = 2**30


def test_an_enormous_max_envs_is_bounded_by_the_time_of_an_iteration(monkeypatch):
    monkeypatch.setattr(resources.psutil, "virtual_memory", lambda: SimpleNamespace(available=10_000 * GIB))
    chosen = auto_num_envs(SPEC, 32, 64, 1099511627776, threads=2)
    n, why = chosen if isinstance(chosen, tuple) else (chosen, "")
    assert n == 4096  # 2 threads, 65,536 env-steps each, 32 steps per rollout
    assert "env-steps per physics thread (2)" in why and str(n) not in why


def test_the_bound_that_decides_is_named(monkeypatch):
    monkeypatch.setattr(resources.psutil, "virtual_memory", lambda: SimpleNamespace(available=10_000 * GIB))
    assert auto_num_envs(SPEC, 32, 64, 256, threads=2) == (
        256, "the largest power of two from data.min_envs=64 within data.max_envs=256")
    per_env = resources.bytes_per_env(SPEC, 32)
    monkeypatch.setattr(resources.psutil, "virtual_memory", lambda: SimpleNamespace(available=4 * 100 * per_env))
    n, why = auto_num_envs(SPEC, 32, 64, 256, threads=2)
    assert n == 64 and "of free memory" in why  # 100 fit: the power of two below is 64
    n, why = auto_num_envs(SPEC, 32, 128, 256, threads=2)
    assert n == 128 and why.startswith("data.min_envs=128 (more than 25% of the")
