"""The experiment runner: rlarena.run with stop criteria, checkpoint policy, logs, sweeps, resume."""

from rlarena.train.search import choice, grid_search, loguniform, uniform

__all__ = ["Results", "TrialResult", "choice", "grid_search", "loguniform", "run", "uniform"]

# the runner and results load on first use: they import the algorithms (torch), which the search
# spaces (read by the torch-free CLI commands' experiment-file parsing) do not need
_LAZY = {"run": "rlarena.train.experiment", "Results": "rlarena.train.results", "TrialResult": "rlarena.train.results"}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'rlarena.train' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)
