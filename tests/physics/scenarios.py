"""Shared physics test scenarios."""

import numpy as np

from quadlit.physics import MOTOR_PD, EnvParams, PhysicsState, SimParams, a1_model, step

MODEL = a1_model()


def kicked_trajectory(pool, method, steps=15, motor_mode=MOTOR_PD) -> PhysicsState:
    """37 envs (uneven shards, a full and a partial SIMD block) with random domain parameters
    and random actions, every third env kicked sideways (world x, y, N(0, 1) m/s) at steps 2, 7,
    12, ...; stepped with ``step(..., method=method)``. Returns the final state."""
    rng = np.random.default_rng(5)
    n = 37
    st = PhysicsState.allocate(n)
    st.set_standing(MODEL)
    envp = EnvParams.allocate(n)
    envp.friction[:] = rng.uniform(0.3, 1.2, n)
    envp.added_mass[:] = rng.uniform(-0.5, 2.0, n)
    envp.motor_strength[:] = rng.uniform(0.7, 1.2, n)
    envp.kp_scale[:] = rng.uniform(0.8, 1.2, n)
    envp.kd_scale[:] = rng.uniform(0.8, 1.2, n)
    sim = SimParams(motor_mode=motor_mode)
    kicked = np.arange(0, n, 3)
    for k in range(steps):
        if k % 5 == 2:
            st.base_lin_vel[kicked, :2] += rng.normal(size=(kicked.size, 2))
        step(MODEL, sim, envp, st, rng.uniform(-1, 1, (n, 12)), pool, method=method)
    return st
