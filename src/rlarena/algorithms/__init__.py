"""Algorithms: one file each (its config, its loss, its update) over the shared Algorithm base."""

from rlarena.algorithms.a2c import A2C, A2CConfig
from rlarena.algorithms.algorithm import Algorithm
from rlarena.algorithms.alphazero import AlphaZero, AlphaZeroConfig
from rlarena.algorithms.appo import APPO, APPOConfig
from rlarena.algorithms.bandits import LinTS, LinTSConfig, LinUCB, LinUCBConfig
from rlarena.algorithms.config import AlgorithmConfig
from rlarena.algorithms.cql import CQL, CQLConfig
from rlarena.algorithms.crossq import CrossQ, CrossQConfig
from rlarena.algorithms.dqn import DQN, DQNConfig
from rlarena.algorithms.droq_redq import REDQ, DroQ, DroQConfig, REDQConfig
from rlarena.algorithms.es import ARS, ES, ARSConfig, ESConfig
from rlarena.algorithms.impala import IMPALA, IMPALAConfig
from rlarena.algorithms.marwil import BC, MARWIL, BCConfig, MARWILConfig
from rlarena.algorithms.ppo import PPO, PPOConfig, PPOTrainer
from rlarena.algorithms.qrdqn import QRDQN, QRDQNConfig
from rlarena.algorithms.registry import ALGORITHM_PATHS, get_algorithm_class
from rlarena.algorithms.sac import SAC, SACConfig
from rlarena.algorithms.td3 import DDPG, TD3, DDPGConfig, TD3Config
from rlarena.algorithms.tqc import TQC, TQCConfig

# name -> class, for every algorithm (rlarena.algorithms.registry holds the table)
ALGORITHMS: dict[str, type[Algorithm]] = {name: get_algorithm_class(name) for name in ALGORITHM_PATHS}


__all__ = [
    "A2C",
    "ALGORITHMS",
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
    "CrossQ",
    "CrossQConfig",
    "DDPGConfig",
    "DQNConfig",
    "DroQ",
    "DroQConfig",
    "ESConfig",
    "IMPALAConfig",
    "LinTS",
    "LinTSConfig",
    "LinUCB",
    "LinUCBConfig",
    "MARWILConfig",
    "PPOConfig",
    "PPOTrainer",
    "QRDQNConfig",
    "REDQConfig",
    "SACConfig",
    "TD3Config",
    "TQCConfig",
    "get_algorithm_class",
]
