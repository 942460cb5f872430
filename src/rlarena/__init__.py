"""rlarena: fast, lean reinforcement learning with RLlib's API.

    from rlarena import PPOConfig
    algo = PPOConfig().environment("CartPole-v1").build()
    print(algo.train()["episode_return_mean"])
"""

from rlarena._version import __version__
from rlarena.algorithms import PPO, Algorithm, AlgorithmConfig, PPOConfig
from rlarena.envs import register_env
from rlarena.envs.checker import check_env
from rlarena.errors import CheckpointError, ConfigError, EnvError, RLArenaError, TrainingError
from rlarena.policy import Policy, TorchPolicy

__all__ = ["PPO", "Algorithm", "AlgorithmConfig", "CheckpointError", "ConfigError", "EnvError", "PPOConfig",
           "Policy", "RLArenaError", "TorchPolicy", "TrainingError", "__version__", "check_env", "register_env"]
