"""Algorithms: one file each (its config, its loss, its update) over the shared Algorithm base."""

from rlarena.algorithms.a2c import A2C, A2CConfig
from rlarena.algorithms.algorithm import Algorithm
from rlarena.algorithms.alphazero import AlphaZero, AlphaZeroConfig
from rlarena.algorithms.appo import APPO, APPOConfig
from rlarena.algorithms.bandits import LinTS, LinTSConfig, LinUCB, LinUCBConfig
from rlarena.algorithms.config import AlgorithmConfig
from rlarena.algorithms.cql import CQL, CQLConfig
from rlarena.algorithms.dqn import DQN, DQNConfig
from rlarena.algorithms.es import ARS, ES, ARSConfig, ESConfig
from rlarena.algorithms.impala import IMPALA, IMPALAConfig
from rlarena.algorithms.marwil import BC, MARWIL, BCConfig, MARWILConfig
from rlarena.algorithms.ppo import PPO, PPOConfig, PPOTrainer
from rlarena.algorithms.sac import SAC, SACConfig
from rlarena.algorithms.td3 import DDPG, TD3, DDPGConfig, TD3Config
from rlarena.errors import ConfigError, closest

# The one table where algorithm names become classes (checkpoints and the CLI use it).
ALGORITHMS: dict[str, type[Algorithm]] = {"PPO": PPO, "A2C": A2C, "DQN": DQN, "SAC": SAC, "TD3": TD3, "DDPG": DDPG,
                                          "AlphaZero": AlphaZero, "LinUCB": LinUCB, "LinTS": LinTS, "ES": ES, "ARS": ARS,
                                          "BC": BC, "MARWIL": MARWIL, "CQL": CQL, "IMPALA": IMPALA, "APPO": APPO}


# RLlib's algorithms (`run:` in its tuned-example files, `--run` on its command line) that rlarena lacks
RLLIB_ONLY = ("A3C", "APEX", "APEX_DDPG", "CRR", "DDPPO", "Dreamer", "DreamerV3", "DT", "MADDPG", "MAML", "MBMPO", "PG", "QMIX", "R2D2", "Rainbow",
              "SimpleQ", "SlateQ")


# RLlib's registry names for algorithms rlarena has under another name (`run: BanditLinUCB` in its files)
RLLIB_NAMES = {"BanditLinUCB": "LinUCB", "BanditLinTS": "LinTS"}


def get_algorithm_class(name: str) -> type[Algorithm]:
    if not isinstance(name, str):  # e.g. read from a damaged checkpoint
        raise ConfigError(f"An algorithm is named by a string such as 'PPO', got {name!r}. "
                          f"Available: {', '.join(ALGORITHMS)}.")
    try:
        return ALGORITHMS[RLLIB_NAMES.get(name, name)]
    except KeyError:
        if name.lower() in {n.lower() for n in RLLIB_ONLY}:
            raise ConfigError(f"{name} is one of RLlib's algorithms that rlarena does not have yet. "
                              f"Available: {', '.join(ALGORITHMS)}.") from None
        raise ConfigError(f"Unknown algorithm {name!r}.{closest(name, ALGORITHMS)} "
                          f"Available: {', '.join(ALGORITHMS)}.") from None


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
    "SAC",
    "TD3",
    "A2CConfig",
    "APPOConfig",
    "ARSConfig",
    "Algorithm",
    "AlgorithmConfig",
    "AlphaZero",
    "AlphaZeroConfig",
    "BCConfig",
    "CQLConfig",
    "DDPGConfig",
    "DQNConfig",
    "ESConfig",
    "IMPALAConfig",
    "LinTS",
    "LinTSConfig",
    "LinUCB",
    "LinUCBConfig",
    "MARWILConfig",
    "PPOConfig",
    "PPOTrainer",
    "SACConfig",
    "TD3Config",
    "get_algorithm_class",
]
