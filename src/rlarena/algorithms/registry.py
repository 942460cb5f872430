"""The one table where algorithm names become classes (checkpoints, the CLI, RLlib's names).

Names map to "module:Class" paths, imported on first use: the Algorithm base class resolves a
checkpoint's algorithm here without importing the algorithms package that imports it (no import
circle), and `import rlarena.algorithms.registry` loads no algorithm.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from rlarena.errors import ConfigError, closest

if TYPE_CHECKING:
    from rlarena.algorithms.algorithm import Algorithm

_A = "rlarena.algorithms"
ALGORITHM_PATHS: dict[str, str] = {
    "PPO": f"{_A}.ppo:PPO",
    "A2C": f"{_A}.a2c:A2C",
    "DQN": f"{_A}.dqn:DQN",
    "QRDQN": f"{_A}.qrdqn:QRDQN",
    "SAC": f"{_A}.sac:SAC",
    "TD3": f"{_A}.td3:TD3",
    "DDPG": f"{_A}.td3:DDPG",
    "TQC": f"{_A}.tqc:TQC",
    "CrossQ": f"{_A}.crossq:CrossQ",
    "DroQ": f"{_A}.droq_redq:DroQ",
    "REDQ": f"{_A}.droq_redq:REDQ",
    "AlphaZero": f"{_A}.alphazero:AlphaZero",
    "LinUCB": f"{_A}.bandits:LinUCB",
    "LinTS": f"{_A}.bandits:LinTS",
    "ES": f"{_A}.es:ES",
    "ARS": f"{_A}.es:ARS",
    "BC": f"{_A}.marwil:BC",
    "MARWIL": f"{_A}.marwil:MARWIL",
    "CQL": f"{_A}.cql:CQL",
    "IMPALA": f"{_A}.impala:IMPALA",
    "APPO": f"{_A}.appo:APPO",
}

# RLlib's algorithms (`run:` in its tuned-example files, `--run` on its command line) that rlarena lacks
RLLIB_ONLY = (
    "A3C",
    "APEX",
    "APEX_DDPG",
    "CRR",
    "DDPPO",
    "Dreamer",
    "DreamerV3",
    "DT",
    "MADDPG",
    "MAML",
    "MBMPO",
    "PG",
    "QMIX",
    "R2D2",
    "Rainbow",
    "SimpleQ",
    "SlateQ",
)

# RLlib's registry names for algorithms rlarena has under another name (`run: BanditLinUCB` in its files)
RLLIB_NAMES = {"BanditLinUCB": "LinUCB", "BanditLinTS": "LinTS"}


def get_algorithm_class(name: str) -> type[Algorithm]:
    if not isinstance(name, str):  # e.g. read from a damaged checkpoint
        raise ConfigError(
            f"An algorithm is named by a string such as 'PPO', got {name!r}. Available: {', '.join(ALGORITHM_PATHS)}."
        )
    path = ALGORITHM_PATHS.get(RLLIB_NAMES.get(name, name))
    if path is None:
        if name.lower() in {n.lower() for n in RLLIB_ONLY}:
            raise ConfigError(
                f"{name} is one of RLlib's algorithms that rlarena does not have yet. "
                f"Available: {', '.join(ALGORITHM_PATHS)}."
            )
        raise ConfigError(
            f"Unknown algorithm {name!r}.{closest(name, ALGORITHM_PATHS)} Available: {', '.join(ALGORITHM_PATHS)}."
        )
    module, _, qualname = path.partition(":")
    return getattr(importlib.import_module(module), qualname)  # type: ignore[no-any-return]
