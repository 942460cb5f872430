"""The experiment runner: rlarena.run with stop criteria, checkpoint policy, logs, sweeps, resume."""

from rlarena.train.results import Results, TrialResult
from rlarena.train.runner import run
from rlarena.train.search import choice, grid_search, loguniform, uniform

__all__ = ["Results", "TrialResult", "choice", "grid_search", "loguniform", "run", "uniform"]
