"""The catalog: what the model's input layer is, picked from the observation space.

An observation of any Gymnasium space travels as one packed row per step (`ObsLayout.pack`): each
leaf of a Dict or Tuple in turn, a Box as its values, a Discrete as its index, a MultiDiscrete as its
indices, a MultiBinary as its bits. The row is uint8 when every leaf fits in a byte (an Atari frame
stack, a MiniGrid grid), so rollouts and replay keep frames as bytes; otherwise float32. The model's
first layer (`ObsEncoder`) unpacks it: images through a CNN (scaled by 1/255 there when uint8),
indices one-hot, the rest as they are, all concatenated.

RLlib's option names choose the CNN: `conv_filters` ([[out_channels, kernel, stride], ...]; by default
the Nature-DQN network with its 512-unit layer for frames of 36x36 and more, two 3x3 layers for
smaller ones) and `conv_activation`. The CNN is shared by the policy and the value function (SB3's
CnnPolicy, RLlib's vision network); `vf_share_layers` governs the fully connected layers after it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlarena.errors import ConfigError
from rlarena.limits import count_parameters

# Mnih et al. 2015 (Nature): 32 8x8/4, 64 4x4/2, 64 3x3/1, then 512 units (SB3's NatureCNN)
NATURE_FILTERS = [[32, 8, 4], [64, 4, 2], [64, 3, 1]]
NATURE_UNITS = 512
SMALL_FILTERS = [[16, 3, 1], [32, 3, 1]]  # for frames under 36x36 (MinAtar's 10x10, MiniGrid's 7x7)
MIN_NATURE_SIZE = 36  # the Nature network's three layers need 36x36 (SB3's rule too)
MIN_IMAGE_SIZE = 5  # smaller "images" are read as vectors (two 3x3 layers need 5x5)
MAX_CONV_CHANNELS = 4096


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
    """A Box read as an image: uint8 of 3 dims (HWC or CHW) or 2 dims (one grey frame), each spatial
    side at least MIN_IMAGE_SIZE. A float Box of 3 dims stays a vector, as SB3 reads it (a board's
    planes, already scaled): cast frames to uint8 to have them convolved."""
    if not isinstance(space, gym.spaces.Box) or space.dtype != np.uint8 or len(space.shape) not in (2, 3):
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
            (leaf.kind == "image" and leaf.scale)
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
        if len(self.leaves) == 1 and self.leaves[0].kind != "discrete":  # one array: a reshape, a copy only to convert
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


def conv_stack(
    in_shape: tuple[int, int, int], filters: Sequence[Sequence[Any]], where: str
) -> tuple[nn.ModuleList, tuple[int, int, int]]:
    """Conv2d layers for `filters` ([out_channels, kernel, stride], kernel an int or [kh, kw];
    RLlib's conv_filters), no padding; (the layers, the output's CHW). A ConfigError when the
    filters do not fit the image."""
    layers = nn.ModuleList()
    c, h, w = in_shape
    for i, spec in enumerate(filters):
        if not (isinstance(spec, list | tuple) and len(spec) == 3):
            raise ConfigError(
                f"model.conv_filters[{i}]={spec!r}: each filter is [out_channels, kernel, stride], e.g. [32, 8, 4]."
            )
        out, kernel, stride = spec
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
        if not all(isinstance(v, int) and v >= 1 for v in (out, kh, kw, stride)) or out > MAX_CONV_CHANNELS:
            raise ConfigError(
                f"model.conv_filters[{i}]={spec!r}: channels (at most {MAX_CONV_CHANNELS}), kernel and "
                f"stride must be positive integers."
            )
        if kh > h or kw > w:
            raise ConfigError(
                f"model.conv_filters[{i}]={spec!r}: a {kh}x{kw} kernel does not fit the {h}x{w} output of the "
                f"layer before, for the image {where} of {in_shape[1]}x{in_shape[2]}x{in_shape[0]}; use smaller "
                f"kernels or strides (conv_filters)."
            )
        count_parameters(out * (c * kh * kw + 1), f"conv layer {i} of the image encoder")  # before allocating
        conv = nn.Conv2d(c, out, (kh, kw), stride)
        nn.init.orthogonal_(conv.weight, math.sqrt(2))
        nn.init.zeros_(conv.bias)  # type: ignore[arg-type]  # a Conv2d has a bias
        layers.append(conv)
        c, h, w = out, (h - kh) // stride + 1, (w - kw) // stride + 1
    return layers, (c, h, w)


class ImageEncoder(nn.Module):
    """[B, C*H*W] packed pixels -> [B, out_dim]: CHW view, scaled, convolutions, flattened (and the
    Nature network's 512-unit layer when it is the default one)."""

    def __init__(self, leaf: Leaf, filters: Sequence[Sequence[Any]] | None, activation: str):
        super().__init__()
        from rlarena.nn.models import ACTIVATIONS

        self.leaf, self.act = leaf, ACTIVATIONS[activation]
        c, h, w = leaf.chw
        nature = filters is None and min(h, w) >= MIN_NATURE_SIZE
        chosen = filters if filters is not None else (NATURE_FILTERS if nature else SMALL_FILTERS)
        self.convs, (oc, oh, ow) = conv_stack((c, h, w), chosen, leaf.name or "observation")
        flat = oc * oh * ow
        if nature:
            count_parameters((flat + 1) * NATURE_UNITS, "the image encoder's 512-unit layer")
        self.fc = nn.Linear(flat, NATURE_UNITS) if nature else None
        if self.fc is not None:
            nn.init.orthogonal_(self.fc.weight, math.sqrt(2))
            nn.init.zeros_(self.fc.bias)  # type: ignore[arg-type]  # a Linear has a bias
        self.out_dim = NATURE_UNITS if nature else flat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        leaf = self.leaf
        c, h, w = leaf.chw
        x = x.reshape(-1, c, h, w) if leaf.channels_first else x.reshape(-1, h, w, c).permute(0, 3, 1, 2)
        x = x.float()
        if leaf.scale:
            x = x * (1.0 / 255.0)
        for conv in self.convs:
            x = self.act(conv(x))
        x = x.flatten(1)
        return x if self.fc is None else torch.relu(self.fc(x))


class ObsEncoder(nn.Module):
    """The input layer for a packed observation: [B, dim] (any dtype) -> float32 [B, out_dim]; the
    `features` of rlarena.nn.models.ActorCritic and rlarena.nn.q_network.QNetwork."""

    def __init__(
        self, layout: ObsLayout, conv_filters: Sequence[Sequence[Any]] | None = None, conv_activation: str = "relu"
    ):
        super().__init__()
        self.layout = layout
        encoders = [ImageEncoder(leaf, conv_filters, conv_activation) for leaf in layout.images]
        self.images = nn.ModuleList(encoders)
        self._encoders = encoders  # the same modules, typed
        self.others = [leaf for leaf in layout.leaves if leaf.kind != "image"]
        self.out_dim = sum(e.out_dim for e in encoders) + sum(leaf.feature_size for leaf in self.others)
        # one-hot blocks: index + offset of its block, compared with arange (exports to ONNX as is)
        self._one_hot = any(leaf.kind == "discrete" for leaf in self.others)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [enc(x[:, enc.leaf.offset : enc.leaf.offset + enc.leaf.size]) for enc in self._encoders]
        for leaf in self.others:
            part = x[:, leaf.offset : leaf.offset + leaf.size]
            if leaf.kind == "discrete":
                parts.extend((part[:, i : i + 1].long() == torch.arange(n)).float() for i, n in enumerate(leaf.nvec))
            else:
                parts.append(part.float())
        return parts[0] if len(parts) == 1 else torch.cat(parts, -1)


def needs_encoder(space: gym.Space) -> bool:
    """Whether observations of `space` need the catalog's encoder (an image, a MultiBinary, a Dict or
    Tuple), rather than the flat vector path (Box vectors, Discrete, MultiDiscrete one-hot in numpy)."""
    return not isinstance(space, gym.spaces.Discrete | gym.spaces.MultiDiscrete) and not (
        isinstance(space, gym.spaces.Box) and not is_image(space)
    )
