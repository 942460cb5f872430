"""Gymnasium spaces to and from JSON, for checkpoints (never pickle)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


def space_to_json(space: gym.Space) -> dict[str, Any]:
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec.tolist()}
    if isinstance(space, gym.spaces.Box):
        return {"type": "Box", "low": space.low.tolist(), "high": space.high.tolist(), "dtype": str(space.dtype)}
    if isinstance(space, gym.spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_json(v) for k, v in space.spaces.items()}}
    raise TypeError(f"cannot store {space} in a checkpoint: Box, Discrete, MultiDiscrete and Dict are supported")


def space_from_json(data: dict[str, Any]) -> gym.Space:
    kind = data["type"]
    if kind == "Discrete":
        return gym.spaces.Discrete(data["n"], start=data.get("start", 0))
    if kind == "MultiDiscrete":
        return gym.spaces.MultiDiscrete(data["nvec"])
    if kind == "Box":
        dtype = np.dtype(data["dtype"])
        return gym.spaces.Box(np.array(data["low"], dtype), np.array(data["high"], dtype), dtype=dtype)
    if kind == "Dict":
        return gym.spaces.Dict({k: space_from_json(v) for k, v in data["spaces"].items()})
    raise ValueError(f"unknown space type {kind!r}")
