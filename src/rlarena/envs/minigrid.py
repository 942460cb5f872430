"""MiniGrid and BabyAI ids: their dict observations made readable by rlarena's models.

A MiniGrid observation is {"image": (7, 7, 3) uint8, "direction": Discrete(4), "mission": text}. The
models read the image (a small CNN) and the direction (one-hot); text they cannot read. So
`.environment("MiniGrid-DoorKey-5x5-v0")` builds the env with its mission handled by
env_config["minigrid_mission"]:

- "drop" (the default for "MiniGrid-" ids whose mission is one fixed sentence): the key is removed;
  the observation is {"image", "direction"};
- "words" (the default for "BabyAI-" ids and MiniGrid ids whose mission varies, e.g. Fetch): minigrid's
  DictObservationSpaceWrapper, the mission as up to 50 word indices (a MultiDiscrete, one-hot);
- "keep": the raw env (its text mission is refused by the default models; for your own model).

Env_config's other keys go to gymnasium.make. minigrid is imported only when such an id is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from rlarena.envs.external_ids import register_external
from rlarena.errors import ConfigError, EnvError, closest

MISSION_KEY = "minigrid_mission"  # the env_config key that says what becomes of the text mission
MISSION_MODES = ("drop", "words", "keep")


def is_minigrid_id(env_id: object) -> bool:
    """Whether `env_id` names a MiniGrid or BabyAI env (minigrid's gymnasium ids)."""
    return isinstance(env_id, str) and env_id.startswith(("MiniGrid-", "BabyAI-"))


class DropMission(gym.ObservationWrapper):
    """A MiniGrid env without the "mission" key of its dict observations (a fixed sentence)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.observation_space
        assert isinstance(space, gym.spaces.Dict)
        self.observation_space = gym.spaces.Dict({k: v for k, v in space.spaces.items() if k != "mission"})

    def observation(self, observation: dict) -> dict:
        return {k: v for k, v in observation.items() if k != "mission"}


class MissionWords(gym.ObservationWrapper):
    """minigrid's DictObservationSpaceWrapper, its word indices as an int64 array (it returns a list)."""

    def __init__(self, env: gym.Env):
        from minigrid.wrappers import DictObservationSpaceWrapper

        super().__init__(DictObservationSpaceWrapper(env))
        self.observation_space = self.env.observation_space

    def observation(self, observation: dict) -> dict:
        return {**observation, "mission": np.asarray(observation["mission"], np.int64)}


def _mission_varies(env: gym.Env) -> bool:
    """Whether the env's mission is drawn per episode (BabyAI, or a MissionSpace with placeholders)."""
    space = env.observation_space
    mission = space.spaces.get("mission") if isinstance(space, gym.spaces.Dict) else None
    return bool(env.spec is not None and env.spec.id.startswith("BabyAI-")) or bool(
        getattr(mission, "ordered_placeholders", None)
    )


def make_minigrid_env(env_id: str, env_config: Mapping[str, Any], render_mode: str | None = None) -> gym.Env:
    """What `.environment(env_id, env_config=...)` builds for a MiniGrid or BabyAI id (see the module)."""
    mode = env_config.get(MISSION_KEY)
    if mode is not None and mode not in MISSION_MODES:
        raise ConfigError(
            f"env_config[{MISSION_KEY!r}] is {mode!r}; expected one of {', '.join(map(repr, MISSION_MODES))} "
            "(drop the text mission, encode it as word indices, or keep the raw env)."
        )
    make_kwargs = {k: v for k, v in env_config.items() if k != MISSION_KEY}
    if env_id not in gym.registry:
        register_external(env_id)
    try:
        env = gym.make(env_id, render_mode=render_mode, **make_kwargs)
    except gym.error.Error as exc:
        raise EnvError(f"Could not make MiniGrid env {env_id!r}: {exc}.{closest(env_id, gym.registry)}") from exc
    space = env.observation_space
    if not isinstance(space, gym.spaces.Dict) or "mission" not in space.spaces:
        return env  # already wrapped by the id itself: nothing to do
    if mode is None:
        mode = "words" if _mission_varies(env) else "drop"
    if mode == "drop":
        return DropMission(env)
    if mode == "words":
        return MissionWords(env)
    return env
