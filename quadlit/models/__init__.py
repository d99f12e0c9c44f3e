"""Networks: the recurrent actor-critic (EntityBelief), the world model, the squashed Gaussian."""

from quadlit.models.distributions import gaussian_entropy, sample_squashed, squashed_log_prob
from quadlit.models.entity_belief import EntityBelief, GraphAttention
from quadlit.models.world_model import WorldModel

__all__ = [
    "EntityBelief",
    "GraphAttention",
    "WorldModel",
    "gaussian_entropy",
    "sample_squashed",
    "squashed_log_prob",
]
