"""Pure PPO math: GAE, the loss terms and the environment-wise minibatch sampler."""

from quadlit.algo.gae import compute_gae
from quadlit.algo.losses import (
    clipped_policy_loss,
    clipped_value_loss,
    entropy_bonus,
    explained_variance,
    normalize_advantages,
)
from quadlit.algo.sampler import env_minibatches

__all__ = [
    "clipped_policy_loss",
    "clipped_value_loss",
    "compute_gae",
    "entropy_bonus",
    "env_minibatches",
    "explained_variance",
    "normalize_advantages",
]
