"""How an observation of any Gymnasium space travels: one packed row per step (numpy, no torch).

Each leaf of a Dict or Tuple in turn: a Box as its values, a Discrete as its index, a MultiDiscrete as
its indices, a MultiBinary as its bits. The row is uint8 when every leaf fits in a byte (an Atari
frame stack, a MiniGrid grid), so rollouts and replay keep frames as bytes; otherwise float32. The
model's first layer (rlarena.nn.catalog.ObsEncoder) unpacks it; an exported ONNX graph takes it as
its input, and rlarena.export.onnx.OnnxPolicy packs observations the same way without torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from rlarena.errors import ConfigError

MIN_IMAGE_SIZE = 5  # smaller "images" are read as vectors (two 3x3 layers need 5x5)


@dataclass(frozen=True)
class Leaf:
    """One part of an observation and where it sits in the packed row."""

    name: str  # its path in the space, e.g. "['image']" ("" for a plain space)
    kind: str  # "box", "image", "discrete", "binary"
    shape: tuple[int, ...]  # the env's shape of this part
    offset: int  # first column in the packed row
    size: int  # columns in the packed row
    nvec: tuple[int, ...] = ()  # "discrete": the number of values of each index
    start: tuple[int, ...] = ()  # "discrete": the first value of each (Discrete(n, start))
    channels_first: bool = False  # "image": CHW (else HWC; a 2-D image has one channel)
    scale: bool = False  # "image": uint8, scaled by 1/255 in the encoder

    @property
    def feature_size(self) -> int:
        """Its width once encoded without a CNN (one-hot for indices)."""
        return int(sum(self.nvec)) if self.kind == "discrete" else self.size

    @property
    def chw(self) -> tuple[int, int, int]:
        s = self.shape if len(self.shape) == 3 else (*self.shape, 1)
        return (s[0], s[1], s[2]) if self.channels_first else (s[2], s[0], s[1])


def is_image(space: gym.Space) -> bool:
    """A Box read as an image: uint8 or bool (MinAtar's planes) of 3 dims (HWC or CHW) or 2 dims (one
    grey frame), each spatial side at least MIN_IMAGE_SIZE. A float Box of 3 dims stays a vector, as SB3
    reads it (a board's planes, already scaled): cast frames to uint8 to have them convolved."""
    if (
        not isinstance(space, gym.spaces.Box)
        or space.dtype not in (np.uint8, np.bool_)
        or len(space.shape) not in (2, 3)
    ):
        return False
    shape = space.shape
    if len(shape) == 2:
        return min(shape) >= MIN_IMAGE_SIZE
    spatial = shape[1:] if _channels_first(shape) else shape[:2]
    return min(spatial) >= MIN_IMAGE_SIZE


def _channels_first(shape: tuple[int, ...]) -> bool:
    """CHW when the first axis is the smallest and smaller than the last (SB3's rule: (4, 84, 84) is a
    frame stack, (84, 84, 3) a colour frame, (7, 7, 3) a MiniGrid grid)."""
    return len(shape) == 3 and shape[0] < shape[-1] and shape[0] <= min(shape[1:])


class ObsLayout:
    """The leaves of an observation space and the packed row they travel in (numpy, no torch)."""

    def __init__(self, space: gym.Space):
        self.space = space
        self.leaves: list[Leaf] = []
        self._add(space, "")
        self.dim = sum(leaf.size for leaf in self.leaves)
        fits_byte = all(
            leaf.kind == "image"  # uint8 or bool
            or leaf.kind == "binary"
            or (leaf.kind == "box" and self._leaf_space(leaf).dtype == np.uint8)
            or (leaf.kind == "discrete" and max(leaf.nvec) <= 256)
            for leaf in self.leaves
        )
        self.dtype = np.dtype(np.uint8 if fits_byte else np.float32)
        self.images = [leaf for leaf in self.leaves if leaf.kind == "image"]

    def _leaf_space(self, leaf: Leaf) -> Any:
        space: Any = self.space
        for key in _path(leaf.name):
            space = space[key]
        return space

    def _add(self, space: gym.Space, name: str) -> None:
        offset = sum(leaf.size for leaf in self.leaves)
        if isinstance(space, gym.spaces.Dict):
            for key, sub in space.spaces.items():
                self._add(sub, f"{name}[{key!r}]")
        elif isinstance(space, gym.spaces.Tuple):
            for i, sub in enumerate(space.spaces):
                self._add(sub, f"{name}[{i}]")
        elif isinstance(space, gym.spaces.Discrete):
            self.leaves.append(Leaf(name, "discrete", (), offset, 1, (int(space.n),), (int(space.start),)))
        elif isinstance(space, gym.spaces.MultiDiscrete):
            nvec = space.nvec.reshape(-1)
            start = getattr(space, "start", np.zeros_like(nvec)).reshape(-1)
            self.leaves.append(
                Leaf(
                    name,
                    "discrete",
                    tuple(space.shape),
                    offset,
                    len(nvec),
                    tuple(map(int, nvec)),
                    tuple(map(int, start)),
                )
            )
        elif isinstance(space, gym.spaces.MultiBinary):
            self.leaves.append(Leaf(name, "binary", tuple(space.shape), offset, int(np.prod(space.shape))))
        elif isinstance(space, gym.spaces.Box):
            size = int(np.prod(space.shape))
            if is_image(space):
                scale = space.dtype == np.uint8
                self.leaves.append(
                    Leaf(
                        name,
                        "image",
                        tuple(space.shape),
                        offset,
                        size,
                        channels_first=_channels_first(space.shape),
                        scale=scale,
                    )
                )
            else:
                self.leaves.append(Leaf(name, "box", tuple(space.shape), offset, size))
        else:
            raise ConfigError(
                f"Observation space{' part ' + name if name else ''} {space} is not supported: rlarena's models "
                f"read Box (vectors and images), Discrete, MultiDiscrete, MultiBinary, and Dict or Tuple of these."
            )

    def pack(self, obs: Any) -> np.ndarray:
        """A batch of env observations [B, ...] (dicts or tuples of batches for Dict/Tuple spaces) ->
        packed rows [B, dim] of `dtype`."""
        if len(self.leaves) == 1 and self.leaves[0].name == "" and self.leaves[0].kind != "discrete":
            # a plain space (no Dict or Tuple around it): a reshape, a copy only to convert
            arr = np.asarray(obs)
            return arr.reshape(len(arr), -1).astype(self.dtype, copy=False)
        parts = []
        for leaf in self.leaves:
            part = obs
            for key in _path(leaf.name):
                part = part[key]
            arr = np.asarray(part)
            if leaf.kind == "discrete":
                arr = arr.reshape(len(arr), -1) - np.asarray(leaf.start, np.int64)
            parts.append(arr.reshape(len(arr), -1).astype(self.dtype, copy=False))
        return np.concatenate(parts, 1) if len(parts) > 1 else parts[0]

    @property
    def feature_dim(self) -> int:
        """Columns of numpy_features' rows."""
        return sum(leaf.feature_size for leaf in self.leaves)

    def numpy_features(self, packed: np.ndarray) -> np.ndarray:
        """Packed rows -> float32 features (indices one-hot, the rest as they are), for the models that
        take a flat vector (SAC's and TD3's actor and critics). Not for images."""
        parts = []
        for leaf in self.leaves:
            part = packed[:, leaf.offset : leaf.offset + leaf.size]
            if leaf.kind == "discrete":
                for i, n in enumerate(leaf.nvec):
                    parts.append(np.eye(n, dtype=np.float32)[part[:, i].astype(np.int64)])
            else:
                parts.append(part.astype(np.float32))
        return np.concatenate(parts, 1) if len(parts) > 1 else parts[0]


def _path(name: str) -> list[Any]:
    """The keys of a leaf's name: "['a'][0]" -> ["a", 0]."""
    keys: list[Any] = []
    for piece in name[1:-1].split("][") if name else []:
        keys.append(piece[1:-1] if piece.startswith("'") else int(piece))
    return keys


def needs_encoder(space: gym.Space) -> bool:
    """Whether observations of `space` need the catalog's encoder (an image, a MultiBinary, a Dict or
    Tuple), rather than the flat vector path (Box vectors, Discrete, MultiDiscrete one-hot in numpy)."""
    return not isinstance(space, gym.spaces.Discrete | gym.spaces.MultiDiscrete) and not (
        isinstance(space, gym.spaces.Box) and not is_image(space)
    )
