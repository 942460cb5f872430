"""Gymnasium spaces to and from JSON, for checkpoints (never pickle).

space_from_json reads spaces from files a stranger may have written (a checkpoint, a Hub package,
an ONNX model's metadata), so it checks every entry and raises a ValueError that names the bad one;
the loaders turn it into a CheckpointError.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

# A model is built with a first (and last) layer as wide as the space's flat size (flat_obs_dim: n for
# Discrete, sum(nvec) for MultiDiscrete, the element count of a Box), so a crafted Discrete(10**12)
# would ask for terabytes. 2**20 elements (a 1024x1024 frame, a 3x512x512 image, a million actions)
# is far beyond any space rlarena trains on, and keeps a 256-unit layer on it near 1 GiB.
MAX_FLAT_SIZE = 2**20
MAX_DEPTH = 8  # Dict spaces nested in Dict spaces (masked observations use one level)
MAX_START = 2**62  # Discrete start: any int64 that n can be added to
# Box dtypes by name: np.dtype() of an arbitrary string also makes object, string and sub-array dtypes
# ("(1000000000,)f8" is one element of 8 GB)
BOX_DTYPES = (
    "bool",
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
)


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


def space_from_json(data: Any) -> gym.Space:
    """The space `data` (space_to_json's output) describes; a ValueError naming the entry that is
    malformed, or when the space is larger than MAX_FLAT_SIZE elements."""
    space = _from_json(data, "", 0)
    size = gym.spaces.flatdim(space)
    if size > MAX_FLAT_SIZE:
        raise ValueError(
            f"unreadable space: {size} elements in all, more than the {MAX_FLAT_SIZE} rlarena builds models for."
        )
    return space


def _from_json(data: Any, where: str, depth: int) -> gym.Space:
    def bad(problem: str) -> ValueError:
        return ValueError(f"unreadable space{f' at {where}' if where else ''}: {problem}")

    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise bad(f"expected an object with a 'type' (Box, Discrete, MultiDiscrete or Dict), got {_short(data)}.")
    kind = data["type"]
    missing = [k for k in _KEYS.get(kind, ()) if k not in data]
    if missing:
        raise bad(f"{kind} lacks {', '.join(repr(k) for k in missing)}.")
    if kind == "Discrete":
        n, start = data["n"], data.get("start", 0)
        if not _is_int(n) or not 1 <= n <= MAX_FLAT_SIZE:
            raise bad(f"Discrete 'n' is {_short(n)}; expected a whole number from 1 to {MAX_FLAT_SIZE}.")
        if not _is_int(start) or abs(start) > MAX_START:
            raise bad(f"Discrete 'start' is {_short(start)}; expected a whole number.")
        return gym.spaces.Discrete(n, start=start)
    if kind == "MultiDiscrete":
        nvec = _array(data["nvec"], np.int64, bad, "MultiDiscrete 'nvec'")
        if nvec.ndim == 0 or nvec.size == 0 or (nvec < 1).any() or nvec.sum() > MAX_FLAT_SIZE:
            raise bad(
                f"MultiDiscrete 'nvec' must be a non-empty list of whole numbers >= 1 adding up to at most "
                f"{MAX_FLAT_SIZE}, got {_short(data['nvec'])}."
            )
        return gym.spaces.MultiDiscrete(nvec)
    if kind == "Box":
        if data["dtype"] not in BOX_DTYPES:
            raise bad(f"Box 'dtype' is {_short(data['dtype'])}; expected one of {', '.join(BOX_DTYPES)}.")
        dtype = np.dtype(data["dtype"])
        low = _array(data["low"], dtype, bad, "Box 'low'")
        high = _array(data["high"], dtype, bad, "Box 'high'")
        if low.shape != high.shape:
            raise bad(f"Box 'low' has shape {list(low.shape)} but 'high' has shape {list(high.shape)}.")
        if low.size > MAX_FLAT_SIZE:
            raise bad(f"Box of {low.size} elements, more than the {MAX_FLAT_SIZE} rlarena builds models for.")
        try:
            return gym.spaces.Box(low, high, dtype=dtype)
        except (ValueError, TypeError, OverflowError) as exc:  # low > high
            raise bad(str(exc)) from None
    if kind == "Dict":
        spaces = data["spaces"]
        if not isinstance(spaces, dict):
            raise bad(f"Dict 'spaces' must be an object of name: space, got {_short(spaces)}.")
        if depth >= MAX_DEPTH:
            raise bad(f"Dict spaces nested more than {MAX_DEPTH} deep.")
        return gym.spaces.Dict({k: _from_json(v, f"{where}.{k}" if where else k, depth + 1) for k, v in spaces.items()})
    raise bad(f"unknown space type {_short(kind)}; expected Box, Discrete, MultiDiscrete or Dict.")


_KEYS = {"Discrete": ("n",), "MultiDiscrete": ("nvec",), "Box": ("low", "high", "dtype"), "Dict": ("spaces",)}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _array(value: Any, dtype: np.dtype | type, bad: Any, what: str) -> np.ndarray:
    """`value` (a number or nested lists of numbers) as an array of `dtype`, or bad(...)."""
    if not isinstance(value, int | float | list):
        raise bad(f"{what} must be a number or nested lists of numbers, got {_short(value)}.")
    try:
        with np.errstate(all="ignore"):
            array = np.array(value, dtype=dtype)
    except (ValueError, TypeError, OverflowError) as exc:  # ragged lists, strings, None, out of range
        raise bad(f"{what} is not a {np.dtype(dtype)} array ({exc}).") from None
    if array.dtype.kind == "f" and np.isnan(array).any():  # JSON NaN, or null read as NaN
        raise bad(f"{what} holds NaN; bounds are numbers (or Infinity for an unbounded side).")
    return array


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."
