"""The balance robot's left-right mirror symmetry (reflection through the trunk's x-z plane,
y -> -y), as a ``Mirror`` of its observation and action.

The legs FL, FR, RL, RR swap as FL <-> FR and RL <-> RR. A polar vector (gravity, linear
velocity) keeps x and z and negates y; the angular velocity, an axial vector, keeps y and
negates x and z. Of each leg's joints the hip abduction (x axis) turns the other way, the hip
flexion and the knee (y axes) do not; the default pose (abduction 0) is its own mirror image, so
the joint offsets and the action (target = default + scale * a) mirror the same way. The robot
is its own mirror image up to the A1's trunk (a 2 mm sideways centre of mass and small products
of inertia), which is why a policy trained to be symmetric is a choice, not a law:
``tests/training/test_mirror.py`` checks the maps against the physics of an exactly symmetric copy.
"""

from __future__ import annotations

import numpy as np

from quadlit.tasks.balance.kernels import ACTION_DIM, OBS_DIM, OBS_SLICES
from quadlit.tasks.registry import Mirror

LEG_SWAP = (1, 0, 3, 2)  # FL FR RL RR -> the leg each one's mirror image is
JOINT_SIGN = (-1.0, 1.0, 1.0)  # hip abduction, hip flexion, knee


def _legs(per_leg: int, signs: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The signed permutation of a (4 * per_leg) block ordered leg by leg."""
    perm = np.array([per_leg * LEG_SWAP[leg] + k for leg in range(4) for k in range(per_leg)])
    return perm, np.tile(np.asarray(signs, dtype=np.float64), 4)


def balance_mirror() -> Mirror:
    """The mirror of the balance observation (37) and action (12)."""
    obs_perm = np.arange(OBS_DIM)
    obs_sign = np.ones(OBS_DIM)
    vector_signs = {"gravity_trunk": (1.0, -1.0, 1.0), "lin_vel_trunk": (1.0, -1.0, 1.0),
                    "ang_vel_trunk": (-1.0, 1.0, -1.0)}
    for name, (lo, hi) in OBS_SLICES.items():
        if name in vector_signs:
            obs_sign[lo:hi] = vector_signs[name]
        else:
            per_leg = (hi - lo) // 4
            perm, sign = _legs(per_leg, JOINT_SIGN if per_leg == 3 else (1.0,))
            obs_perm[lo:hi] = lo + perm
            obs_sign[lo:hi] = sign
    action_perm, action_sign = _legs(3, JOINT_SIGN)
    assert action_perm.shape == (ACTION_DIM,)
    return Mirror(obs_perm, obs_sign, action_perm, action_sign)
