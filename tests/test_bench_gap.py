"""``quadlit bench gap``: each change reaches the engine it names, every MuJoCo fall is put down
to one rule, quadlit's robot is restored after a contact change, and bad changes are one line."""

import collections

import numpy as np
import pytest

from quadlit.errors import ConfigError
from quadlit.tasks.balance.params import BalanceParams

mujoco = pytest.importorskip("mujoco")

from quadlit.bench import gap  # noqa: E402
from quadlit.models.baselines import ZeroPolicy  # noqa: E402
from quadlit.sim2sim import PolicySource, _identity, compare  # noqa: E402


def _zero_source() -> PolicySource:
    return PolicySource(ZeroPolicy(12), _identity, BalanceParams(), "zero")


@pytest.mark.parametrize("text, needle", [
    ("mj-warp", "unknown change 'mj-warp'"),
    ("mj-dt", "needs a value"),
    ("mj-pyramidal=2", "takes no value"),
    ("friction=-1", "must be positive"),
    ("none+ql-foot-spring=abc", "is not a number"),
])
def test_bad_changes_are_one_line(text, needle):
    with pytest.raises(ConfigError, match=needle) as err:
        gap.parse_change(text)
    assert "\n" not in str(err.value)


def test_mujoco_changes_reach_the_episode_models():
    seen = {}
    changes = dict(gap.parse_change("mj-dt=0.0005+mj-pyramidal+mj-friction=0.5+mj-rigid-foot+mj-impratio=3"))

    class Spy(gap.mujoco_engine(changes, collections.Counter())):
        def run(self, policy, obs_norm):
            seen.update(dt=self.dt, nstep=self.nstep, model=self.models[0], feet=[int(g) for g in self.layout.feet])
            return super().run(policy, obs_norm)

    compare(_zero_source(), 1, 0, 1, max_steps=3, engine=Spy)
    m = seen["model"]
    assert seen["dt"] == 0.0005 and seen["nstep"] == 40  # the control period (20 ms) kept
    assert m.opt.cone == mujoco.mjtCone.mjCONE_PYRAMIDAL and m.opt.impratio == 3.0
    feet = seen["feet"]  # the four foot spheres at the legs' ends, not the floor (geom 0)
    assert len(set(feet)) == 4 and min(feet) > 0
    assert all(m.geom_type[g] == mujoco.mjtGeom.mjGEOM_SPHERE and m.geom_bodyid[g] > 0 for g in feet)
    for g in feet:
        assert m.geom_solimp[g, 2] == 0.001 and m.geom_margin[g] == 0.0
    # the episode's drawn friction (within the task's range), halved
    f = m.geom_friction[feet, 0]
    assert np.all(f == f[0]) and 0.5 * 0.6 - 1e-12 <= f[0] <= 0.5 * 1.2 + 1e-12


def test_every_mujoco_fall_is_put_down_to_one_rule():
    """Zero actions for 5 s (a push of up to 3 m/s in most episodes): the falls counted by rule
    are MuJoCo's falls, one each."""
    episodes = 4
    row = gap.run_variant(_zero_source(), "none", episodes, 7, 2, max_steps=250)
    falls = round(sum(episodes * (1.0 - s) for s in row["mujoco"].values()))
    assert falls > 0, row
    assert sum(row["mujoco_falls"].values()) == falls, row
    assert set(row["mujoco_falls"]) <= {"tilt", "height", "body touch", "diverged"}


def test_a_quadlit_contact_change_holds_for_the_run_and_is_undone_afterwards(monkeypatch):
    import quadlit.sim2sim as sim2sim
    from quadlit.tasks.balance.robots import registered_robot, robot_for

    params = BalanceParams()
    before = robot_for(params)
    during = []
    original = sim2sim.compare

    def spy(source, *args, **kwargs):
        r = robot_for(source.params)
        during.append((r.contact_stiffness, r.contact_damping))
        return original(source, *args, **kwargs)

    monkeypatch.setattr(sim2sim, "compare", spy)
    stiff = gap.run_variant(_zero_source(), "ql-foot-spring=2000+ql-foot-damper=50", 1, 0, 1, max_steps=3)
    assert during == [(2000.0, 50.0)]
    assert robot_for(params).contact_stiffness == before.contact_stiffness
    assert registered_robot(params) in (None, before)
    assert set(stiff) == {"change", "quadlit", "mujoco", "mujoco_falls"}


def test_quadlit_step_change_keeps_the_control_period():
    with pytest.raises(ConfigError, match="does not divide"):
        gap.run_variant(_zero_source(), "ql-dt=0.003", 1, 0, 1, max_steps=3)
