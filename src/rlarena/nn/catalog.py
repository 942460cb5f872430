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
from typing import Any

import torch
from torch import nn

from rlarena.envs.obs_layout import MIN_IMAGE_SIZE, Leaf, ObsLayout, _path, is_image, needs_encoder
from rlarena.errors import ConfigError
from rlarena.limits import count_parameters

# Mnih et al. 2015 (Nature): 32 8x8/4, 64 4x4/2, 64 3x3/1, then 512 units (SB3's NatureCNN)
NATURE_FILTERS = [[32, 8, 4], [64, 4, 2], [64, 3, 1]]
NATURE_UNITS = 512
SMALL_FILTERS = [[16, 3, 1], [32, 3, 1]]  # for frames under 36x36 (MinAtar's 10x10, MiniGrid's 7x7)
MIN_NATURE_SIZE = 36  # the Nature network's three layers need 36x36 (SB3's rule too)
MAX_CONV_CHANNELS = 4096


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


__all__ = ["MIN_IMAGE_SIZE", "Leaf", "ObsEncoder", "ObsLayout", "_path", "is_image", "needs_encoder"]
