"""How the model's output and the storage hold an action of any Gymnasium space (numpy, no torch):
the parts of Discrete, MultiDiscrete, MultiBinary, Box, and Tuple or Dict of these (rlarena.nn.distributions'
Product samples them; rlarena.export serves them without torch)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from rlarena.errors import ConfigError


class ActionLayout:
    """The parts of an action space (Discrete, MultiDiscrete, MultiBinary, Box, and Tuple or Dict of
    these, nested) and how the model and the storage hold them.

    The model's output is the categorical logits of every Discrete and MultiDiscrete part first (so an
    action mask covers one prefix), then MultiBinary logits, then the Box means. A stored action is
    one row of `dim` numbers: an index per categorical component, the bits, the Box values, in the
    space's order; int64 when there is no Box part, else float32.
    """

    def __init__(self, space: gym.Space):
        self.space = space
        self.parts: list[tuple[str, Any, Any, gym.Space]] = []  # (kind, key path, sizes, space)
        self._add(space, ())
        self.dim = 0
        self.logits = self.binary = self.box = 0
        for kind, _, sizes, _ in self.parts:
            self.dim += len(sizes) if kind == "cat" else int(np.prod(sizes))
            if kind == "cat":
                self.logits += int(sum(sizes))
            elif kind == "binary":
                self.binary += int(np.prod(sizes))
            else:
                self.box += int(np.prod(sizes))
        self.input_dim = self.logits + self.binary + self.box
        self.dtype = np.dtype(np.float32 if self.box else np.int64)

    def _add(self, space: gym.Space, path: tuple) -> None:
        if isinstance(space, gym.spaces.Dict):
            for key, sub in space.spaces.items():
                self._add(sub, (*path, key))
        elif isinstance(space, gym.spaces.Tuple):
            for i, sub in enumerate(space.spaces):
                self._add(sub, (*path, i))
        elif isinstance(space, gym.spaces.Discrete):
            self.parts.append(("cat", path, (int(space.n),), space))
        elif isinstance(space, gym.spaces.MultiDiscrete):
            if space.nvec.ndim != 1:
                raise ConfigError(
                    f"MultiDiscrete actions of shape {space.nvec.shape} are not supported: use a 1-D nvec."
                )
            self.parts.append(("cat", path, tuple(int(n) for n in space.nvec), space))
        elif isinstance(space, gym.spaces.MultiBinary):
            self.parts.append(("binary", path, tuple(space.shape), space))
        elif isinstance(space, gym.spaces.Box):
            if not np.issubdtype(space.dtype, np.floating):
                raise ConfigError(
                    f"Box actions of dtype {space.dtype} are not supported: use a float Box or MultiDiscrete."
                )
            self.parts.append(("box", path, tuple(space.shape), space))
        else:
            raise ConfigError(
                f"Action space {space} is not supported: use Discrete, Box, MultiDiscrete, MultiBinary, or a "
                f"Tuple or Dict of these."
            )

    def to_env(self, actions: np.ndarray) -> Any:
        """Stored actions [B, dim] -> the env's batched actions (Box parts clipped to their bounds)."""
        out: list[tuple[tuple, Any]] = []
        col = 0
        for kind, path, sizes, space in self.parts:
            width = len(sizes) if kind == "cat" else int(np.prod(sizes))
            part = actions[:, col : col + width]
            col += width
            if kind == "cat":
                value = part.astype(np.int64)
                if isinstance(space, gym.spaces.Discrete):
                    value = value[:, 0] + int(space.start)
                else:
                    value = value + getattr(space, "start", 0)
            elif kind == "binary":
                value = part.astype(space.dtype).reshape(len(part), *sizes)
            else:
                assert isinstance(space, gym.spaces.Box)
                value = np.clip(part.reshape(len(part), *sizes), space.low, space.high).astype(space.dtype)
            out.append((path, value))
        return nest(self.space, dict(out), ())

    def from_env(self, env_actions: Any, batch: int) -> np.ndarray:
        """The env's batched actions -> stored rows [B, dim] (what recorded or given actions look like
        to the model)."""
        cols = []
        for kind, path, _, space in self.parts:
            part = env_actions
            for key in path:
                part = part[key]
            arr = np.asarray(part).reshape(batch, -1)
            if kind == "cat":
                arr = arr - (int(space.start) if isinstance(space, gym.spaces.Discrete) else getattr(space, "start", 0))
            cols.append(arr.astype(self.dtype))
        return np.concatenate(cols, 1)


def nest(space: gym.Space, leaves: dict, path: tuple = ()) -> Any:
    """Values keyed by their key path in `space` as the space's structure (Dict -> dict, Tuple -> tuple)."""
    if isinstance(space, gym.spaces.Dict):
        return {k: nest(sub, leaves, (*path, k)) for k, sub in space.spaces.items()}
    if isinstance(space, gym.spaces.Tuple):
        return tuple(nest(sub, leaves, (*path, i)) for i, sub in enumerate(space.spaces))
    return leaves[path]
