"""rlarena: fast, lean reinforcement learning with RLlib's API.

from rlarena import PPOConfig
algo = PPOConfig().environment("CartPole-v1").build()
print(algo.train()["episode_return_mean"])
"""

from rlarena._version import __version__

__all__ = [
    "A2C",
    "APPO",
    "ARS",
    "BC",
    "CQL",
    "DDPG",
    "DQN",
    "ES",
    "IMPALA",
    "MARWIL",
    "PPO",
    "QRDQN",
    "REDQ",
    "SAC",
    "TD3",
    "TQC",
    "A2CConfig",
    "APPOConfig",
    "ARSConfig",
    "Algorithm",
    "AlgorithmConfig",
    "AlphaZero",
    "AlphaZeroConfig",
    "BCConfig",
    "CQLConfig",
    "Callbacks",
    "CheckpointError",
    "ConfigError",
    "CrossQ",
    "CrossQConfig",
    "DDPGConfig",
    "DQNConfig",
    "DroQ",
    "DroQConfig",
    "ESConfig",
    "EnvError",
    "Episode",
    "IMPALAConfig",
    "LinTS",
    "LinTSConfig",
    "LinUCB",
    "LinUCBConfig",
    "MARWILConfig",
    "MultiAgentEnv",
    "OfflineDataError",
    "PPOConfig",
    "PPOTrainer",
    "Policy",
    "PolicySpec",
    "QRDQNConfig",
    "REDQConfig",
    "RLArenaError",
    "RandomPolicy",
    "Results",
    "SACConfig",
    "TD3Config",
    "TQCConfig",
    "TorchPolicy",
    "TrainingError",
    "UntrustedCodeError",
    "__version__",
    "air",
    "check_env",
    "choice",
    "grid_search",
    "load_from_hub",
    "loguniform",
    "package_to_hub",
    "register_env",
    "register_trusted",
    "run",
    "tune",
    "uniform",
]

# Every public name is loaded on first use. `import rlarena` alone imports neither torch nor the
# experiment runner's pandas, matplotlib and tensorboard: the ONNX-served Connect Four app and the
# heuristics run without torch, and a user's first `rlarena.PPOConfig` pulls in only what training needs.
_ALGORITHM_NAMES = (
    "Algorithm",
    "AlgorithmConfig",
    "PPO",
    "PPOConfig",
    "PPOTrainer",
    "A2C",
    "A2CConfig",
    "DQN",
    "DQNConfig",
    "QRDQN",
    "QRDQNConfig",
    "SAC",
    "SACConfig",
    "TD3",
    "TD3Config",
    "DDPG",
    "DDPGConfig",
    "TQC",
    "TQCConfig",
    "CrossQ",
    "CrossQConfig",
    "DroQ",
    "DroQConfig",
    "REDQ",
    "REDQConfig",
    "AlphaZero",
    "AlphaZeroConfig",
    "LinUCB",
    "LinUCBConfig",
    "LinTS",
    "LinTSConfig",
    "ES",
    "ESConfig",
    "ARS",
    "ARSConfig",
    "BC",
    "BCConfig",
    "MARWIL",
    "MARWILConfig",
    "CQL",
    "CQLConfig",
    "IMPALA",
    "IMPALAConfig",
    "APPO",
    "APPOConfig",
)
_LAZY = {
    **dict.fromkeys(_ALGORITHM_NAMES, "rlarena.algorithms"),
    "Callbacks": "rlarena.callbacks",
    "register_env": "rlarena.envs",
    "check_env": "rlarena.envs.checker",
    "MultiAgentEnv": "rlarena.envs.multi_agent",
    "CheckpointError": "rlarena.errors",
    "ConfigError": "rlarena.errors",
    "EnvError": "rlarena.errors",
    "RLArenaError": "rlarena.errors",
    "TrainingError": "rlarena.errors",
    "OfflineDataError": "rlarena.errors",
    "UntrustedCodeError": "rlarena.errors",
    "register_trusted": "rlarena.refs",
    "Episode": "rlarena.rollout.multi_agent_episode",
    "PolicySpec": "rlarena.multiagent.policy_spec",
    "RandomPolicy": "rlarena.policies.random_policy",
    "Policy": "rlarena.policies.policy",
    "TorchPolicy": "rlarena.policies.torch_policy",
    "run": "rlarena.train.experiment",
    "Results": "rlarena.train.results",
    "grid_search": "rlarena.train.search",
    "choice": "rlarena.train.search",
    "uniform": "rlarena.train.search",
    "loguniform": "rlarena.train.search",
    "package_to_hub": "rlarena.hub",
    "load_from_hub": "rlarena.hub",
}


# Submodules loaded on first use as `rlarena.tune` (Ray Tune's local subset) and `rlarena.air`.
_LAZY_MODULES = ("air", "tune")


def __getattr__(name: str):
    import importlib

    if name in _LAZY_MODULES:
        return importlib.import_module(f"rlarena.{name}")
    if name not in _LAZY:
        raise AttributeError(f"module 'rlarena' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
