"""The rollout layer: env runners over vector envs (single- and multi-agent), runner groups (this
process, forked processes, Ray actors, an offline source), preallocated storage, GAE / n-step /
V-trace, replay, episodes, and connecting to Ray (ray_cluster).

Its public names load on first use: the multi-agent Episode and the Ray connection helpers import
neither torch nor ray, and importing them through this package keeps it that way.
"""

from typing import Any

_LAZY = {
    "EnvRunner": "rlarena.rollout.runner",
    "EpisodeStats": "rlarena.rollout.runner",
    "evaluate_episodes": "rlarena.rollout.runner",
    "Rollout": "rlarena.rollout.storage",
    "compute_gae": "rlarena.rollout.gae",
    "RunningMeanStd": "rlarena.nn.normalize",
}

__all__ = ["EnvRunner", "EpisodeStats", "Rollout", "RunningMeanStd", "compute_gae", "evaluate_episodes"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'rlarena.rollout' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)
