"""Models and action distributions."""

from rlarena.nn.distributions import (
    Categorical,
    DiagGaussian,
    Distribution,
    make_distribution,
)
from rlarena.nn.models import ActorCritic

__all__ = ["ActorCritic", "Categorical", "DiagGaussian", "Distribution", "make_distribution"]
