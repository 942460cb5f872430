"""The core: env runner over a vector env, preallocated storage, GAE, observation filters."""

from rlarena.nn.normalize import RunningMeanStd
from rlarena.rollout.gae import compute_gae
from rlarena.rollout.runner import EnvRunner, EpisodeStats, evaluate_episodes
from rlarena.rollout.storage import Rollout

__all__ = ["EnvRunner", "EpisodeStats", "Rollout", "RunningMeanStd", "compute_gae", "evaluate_episodes"]
