"""Gymnasium ids that optional packages register: which package registers which ids, imported only
when one of its ids is asked for (Gymnasium 1.x no longer imports such packages itself).

    "ALE/Breakout-v5"      ale-py    (pip install "rlarena[atari]")
    "MinAtar/Breakout-v1"  MinAtar   (pip install "rlarena[minatar]")
    "MiniGrid-Empty-5x5-v0", "BabyAI-GoToLocal-v0"  minigrid  (pip install "rlarena[minigrid]")
    "popgym-RepeatPreviousEasy-v0"  POPGym (pip install "rlarena[popgym]"): memory tasks
"""

from __future__ import annotations

import importlib

import gymnasium as gym

from rlarena.errors import EnvError

# id prefix -> (module to import, its function that registers the ids or "" when importing does, extra)
PACKAGES = {
    "ALE/": ("ale_py", "", "atari"),
    "MinAtar/": ("minatar.gym", "register_envs", "minatar"),
    "MiniGrid-": ("minigrid", "", "minigrid"),
    "BabyAI-": ("minigrid", "", "minigrid"),
    "popgym-": ("popgym", "", "popgym"),
}


def register_external(env_id: str) -> bool:
    """Import the package whose ids start like `env_id` so that they are registered; whether there is
    one. An EnvError, saying what to install, when that package is not installed."""
    for prefix, (module_name, register, extra) in PACKAGES.items():
        if env_id.startswith(prefix):
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                raise EnvError(
                    f"Env {env_id!r} needs the {module_name.split('.')[0]} package, which is not installed: "
                    f'pip install "rlarena[{extra}]".'
                ) from exc
            if register and not any(known.startswith(prefix) for known in gym.registry):  # once: again warns
                getattr(module, register)()
            return True
    return False


def is_ale_id(env_id: object) -> bool:
    """Whether `env_id` names an Atari game of ale-py's "ALE/" namespace (wrapped by rlarena.envs.atari)."""
    return isinstance(env_id, str) and env_id.startswith("ALE/")
