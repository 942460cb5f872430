"""Gymnasium spaces to and from JSON, for checkpoints (never pickle).

space_from_json reads spaces from files a stranger may have written (a checkpoint, a Hub package,
an ONNX model's metadata), so it checks every entry and raises a ValueError that names the bad one
(`at image`, `at sensors.lidar`, `at pair[1]`); the loaders turn it into a CheckpointError. What it
builds is bounded before anything is built: MAX_FLAT_SIZE elements in all, MAX_SUBSPACES spaces,
Dict and Tuple nested at most MAX_DEPTH deep.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

# A model is built with a first (and last) layer as wide as the space's flat size (flat_obs_dim: n for
# Discrete, sum(nvec) for MultiDiscrete, the element count of a Box or MultiBinary, summed over a Dict
# or Tuple), so a crafted Discrete(10**12) would ask for terabytes. 2**20 elements (a 1024x1024 frame, a
# 3x512x512 image, a million actions) is far beyond any space rlarena trains on, and keeps a 256-unit
# layer on it near 1 GiB.
MAX_FLAT_SIZE = 2**20
MAX_DEPTH = 8  # Dict and Tuple spaces nested in each other (masked observations use one level)
# Spaces in one description, containers included: each is a Python object (and often a network input
# of its own); a Dict of 10**6 Discrete(1) keys would pass the flat-size bound at a cost of gigabytes.
MAX_SUBSPACES = 4096
MAX_NDIM = 32  # axes of a MultiBinary shape (numpy's own limit before 2.0)
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
KINDS = "Box, Discrete, MultiDiscrete, MultiBinary, Dict or Tuple"


def space_to_json(space: gym.Space) -> dict[str, Any]:
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.MultiDiscrete):
        data: dict[str, Any] = {"type": "MultiDiscrete", "nvec": space.nvec.tolist()}
        if space.start.any():  # written only when set, so files of spaces without one stay as they were
            data["start"] = space.start.tolist()
        return data
    if isinstance(space, gym.spaces.MultiBinary):
        return {"type": "MultiBinary", "n": int(space.n) if isinstance(space.n, int) else [int(k) for k in space.n]}
    if isinstance(space, gym.spaces.Box):
        return {"type": "Box", "low": space.low.tolist(), "high": space.high.tolist(), "dtype": str(space.dtype)}
    if isinstance(space, gym.spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_json(v) for k, v in space.spaces.items()}}
    if isinstance(space, gym.spaces.Tuple):
        return {"type": "Tuple", "spaces": [space_to_json(v) for v in space.spaces]}
    raise TypeError(f"cannot store {space} in a checkpoint: {KINDS} (nested) are supported")


def space_from_json(data: Any) -> gym.Space:
    """The space `data` (space_to_json's output) describes; a ValueError naming the entry that is
    malformed, or when the space is larger than MAX_FLAT_SIZE elements."""
    return _Reader().read(data, "", 0)


_KEYS = {
    "Discrete": ("n",),
    "MultiDiscrete": ("nvec",),
    "MultiBinary": ("n",),
    "Box": ("low", "high", "dtype"),
    "Dict": ("spaces",),
    "Tuple": ("spaces",),
}


class _Reader:
    """One description's reading: the running count of spaces and of elements (gymnasium's flatdim,
    summed as the entries are read), refused as soon as either passes its bound."""

    def __init__(self) -> None:
        self.spaces = 0
        self.elements = 0

    def read(self, data: Any, where: str, depth: int) -> gym.Space:
        def bad(problem: str) -> ValueError:
            return ValueError(f"unreadable space{f' at {where}' if where else ''}: {problem}")

        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            raise bad(f"expected an object with a 'type' ({KINDS}), got {_short(data)}.")
        kind = data["type"]
        missing = [k for k in _KEYS.get(kind, ()) if k not in data]
        if missing:
            raise bad(f"{kind} lacks {', '.join(repr(k) for k in missing)}.")
        self.spaces += 1
        if self.spaces > MAX_SUBSPACES:
            raise bad(f"more than {MAX_SUBSPACES} spaces in one description.")
        if kind in ("Dict", "Tuple"):
            if depth >= MAX_DEPTH:
                raise bad(f"{kind} spaces nested more than {MAX_DEPTH} deep.")
            return self._container(kind, data["spaces"], where, depth, bad)
        space, size = _leaf(kind, data, bad)
        self.elements += size
        if self.elements > MAX_FLAT_SIZE:
            raise bad(
                f"{self.elements} elements in all up to here, more than the {MAX_FLAT_SIZE} rlarena builds models for."
            )
        return space

    def _container(self, kind: str, entries: Any, where: str, depth: int, bad: Any) -> gym.Space:
        if kind == "Dict":
            if not isinstance(entries, dict):
                raise bad(f"Dict 'spaces' must be an object of name: space, got {_short(entries)}.")
            spaces = {}
            for key, value in entries.items():
                if not isinstance(key, str):
                    raise bad(f"Dict key {_short(key)} is not a string.")
                name = key if len(key) <= 40 else f"{key[:37]}..."  # the path stays one readable line
                spaces[key] = self.read(value, f"{where}.{name}" if where else name, depth + 1)
            return gym.spaces.Dict(spaces)
        if not isinstance(entries, list):
            raise bad(f"Tuple 'spaces' must be a list of spaces, got {_short(entries)}.")
        return gym.spaces.Tuple([self.read(value, f"{where}[{i}]", depth + 1) for i, value in enumerate(entries)])


def _leaf(kind: str, data: dict, bad: Any) -> tuple[gym.Space, int]:
    """The space of one non-container entry and its flat size (what a model's layer on it is wide)."""
    if kind == "Discrete":
        n, start = data["n"], data.get("start", 0)
        if not _is_int(n) or not 1 <= n <= MAX_FLAT_SIZE:
            raise bad(f"Discrete 'n' is {_short(n)}; expected a whole number from 1 to {MAX_FLAT_SIZE}.")
        if not _is_int(start) or abs(start) > MAX_START:
            raise bad(f"Discrete 'start' is {_short(start)}; expected a whole number.")
        return gym.spaces.Discrete(n, start=start), n
    if kind == "MultiDiscrete":
        nvec = _array(data["nvec"], np.int64, bad, "MultiDiscrete 'nvec'")
        # each entry bounded first, so the sum cannot overflow int64
        if (
            nvec.ndim == 0
            or nvec.size == 0
            or not (1 <= nvec).all()
            or not (nvec <= MAX_FLAT_SIZE).all()
            or (nvec.sum() > MAX_FLAT_SIZE)
        ):
            raise bad(
                f"MultiDiscrete 'nvec' must be a non-empty list of whole numbers >= 1 adding up to at most "
                f"{MAX_FLAT_SIZE}, got {_short(data['nvec'])}."
            )
        start = _array(data.get("start", 0), np.int64, bad, "MultiDiscrete 'start'")
        if start.shape not in ((), nvec.shape) or not (np.abs(start) <= MAX_START).all():
            raise bad(
                f"MultiDiscrete 'start' must be whole numbers shaped like 'nvec' {list(nvec.shape)}, "
                f"got {_short(data.get('start'))}."
            )
        return gym.spaces.MultiDiscrete(nvec, start=np.broadcast_to(start, nvec.shape).copy()), int(nvec.sum())
    if kind == "MultiBinary":
        n = data["n"]
        shape = [n] if _is_int(n) else n
        # the product in Python ints: a crafted [10**9, 10**9] neither overflows nor allocates
        if (
            not isinstance(shape, list)
            or not 1 <= len(shape) <= MAX_NDIM
            or not all(_is_int(k) and k >= 1 for k in shape)
            or math.prod(shape) > MAX_FLAT_SIZE
        ):
            raise bad(
                f"MultiBinary 'n' is {_short(n)}; expected a whole number >= 1, or a list of at most {MAX_NDIM} "
                f"of them (a shape), of at most {MAX_FLAT_SIZE} elements in all."
            )
        return gym.spaces.MultiBinary(n if _is_int(n) else shape), math.prod(shape)
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
            return gym.spaces.Box(low, high, dtype=dtype), int(low.size)
        except (ValueError, TypeError, OverflowError) as exc:  # low > high
            raise bad(str(exc)) from None
    raise bad(f"unknown space type {_short(kind)}; expected {KINDS}.")


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
