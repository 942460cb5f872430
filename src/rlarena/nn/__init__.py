"""Models and action distributions."""

from rlarena.nn.distributions import (
    Categorical,
    DiagGaussian,
    Distribution,
    make_distribution,
)
from rlarena.nn.models import ActorCritic
from rlarena.nn.q_network import QNetwork

__all__ = ["ActorCritic", "Categorical", "DiagGaussian", "Distribution", "QNetwork", "make_distribution"]
