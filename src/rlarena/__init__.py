"""rlarena: fast, lean reinforcement learning with RLlib's API.

    from rlarena import PPOConfig
    algo = PPOConfig().environment("CartPole-v1").build()
    print(algo.train()["episode_return_mean"])
"""

from rlarena._version import __version__
from rlarena.algorithms import PPO, Algorithm, AlgorithmConfig, PPOConfig
from rlarena.callbacks import Callbacks
from rlarena.envs import register_env
from rlarena.envs.checker import check_env
from rlarena.envs.multi_agent import MultiAgentEnv
from rlarena.errors import (
    CheckpointError,
    ConfigError,
    EnvError,
    RLArenaError,
    TrainingError,
)
from rlarena.multiagent import Episode, PolicySpec, RandomPolicy
from rlarena.policy import Policy, TorchPolicy

__all__ = ["PPO", "Algorithm", "AlgorithmConfig", "Callbacks", "CheckpointError", "ConfigError", "EnvError", "Episode",
           "MultiAgentEnv", "PPOConfig", "PolicySpec", "RandomPolicy",
           "Policy", "RLArenaError", "TorchPolicy", "TrainingError", "__version__", "check_env", "register_env",
           "Results", "choice", "grid_search", "loguniform", "run", "uniform"]

# The experiment runner (rlarena.run and its search spaces), loaded on first use: `import rlarena`
# stays free of pandas, matplotlib and tensorboard, which the runner imports only where it uses them.
_LAZY = {"run": "rlarena.train.runner", "Results": "rlarena.train.results", "grid_search": "rlarena.train.search",
         "choice": "rlarena.train.search", "uniform": "rlarena.train.search", "loguniform": "rlarena.train.search"}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'rlarena' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
