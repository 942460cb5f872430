"""Algorithms: one file each (its config, its loss, its update) over the shared Algorithm base."""

from rlarena.algorithms.algorithm import Algorithm
from rlarena.algorithms.config import AlgorithmConfig
from rlarena.algorithms.ppo import PPO, PPOConfig
from rlarena.errors import ConfigError, closest

# The one table where algorithm names become classes (checkpoints and the CLI use it).
ALGORITHMS: dict[str, type[Algorithm]] = {"PPO": PPO}


def get_algorithm_class(name: str) -> type[Algorithm]:
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise ConfigError(f"Unknown algorithm {name!r}.{closest(name, ALGORITHMS)} "
                          f"Available: {', '.join(ALGORITHMS)}.") from None


__all__ = ["ALGORITHMS", "PPO", "Algorithm", "AlgorithmConfig", "PPOConfig", "get_algorithm_class"]
