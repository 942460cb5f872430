"""An exported policy's first output -> the env's actions, in numpy (no torch): what
rlarena.nn.distributions' ActionLayout and Product do for a trained policy, for OnnxPolicy.

The first output is the categorical logits of every Discrete and MultiDiscrete part first, then the
MultiBinary logits, then the Box means, each group in the action space's order (a Dict's keys, a
Tuple's entries, nested). Greedy: the argmax of each categorical, the bits whose logit is positive,
the means; sampled: a Gumbel-max draw per categorical, a Bernoulli per bit, the mean plus Gaussian
noise of the stored log-std. Box actions are clipped to their bounds, as the torch policy's are.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from rlarena.envs.action_layout import ActionLayout, nest
from rlarena.errors import ConfigError


class OutputActions:
    """The parts of an action space as the model's output holds them; `actions(out, explore, rng)`.

    A plain Discrete action is the argmax as it is (the torch policy adds no Discrete `start` either);
    a Discrete or MultiDiscrete part of a compound space gets its `start` (ActionLayout.to_env).
    Unsupported spaces (a MultiDiscrete of several dimensions, an integer Box) raise a ValueError."""

    def __init__(self, space: gym.Space, log_std: np.ndarray | None = None):
        self.space = space
        self.plain = isinstance(space, gym.spaces.Discrete | gym.spaces.Box)
        try:
            layout = ActionLayout(space)
        except ConfigError as exc:  # OnnxPolicy reports a file's unplayable space in one line
            raise ValueError(str(exc)) from None
        self.parts = layout.parts  # (kind, key path, sizes, space), as the trained policy's
        self.logits = sum(sum(sizes) for kind, _, sizes, _ in self.parts if kind == "cat")
        self.binary = sum(math.prod(sizes) for kind, _, sizes, _ in self.parts if kind == "binary")
        self.box = sum(math.prod(sizes) for kind, _, sizes, _ in self.parts if kind == "box")
        self.input_dim = self.logits + self.binary + self.box
        if log_std is not None and log_std.shape != (self.box,):
            raise ValueError(f"{self.box} log-stds expected (one per Box value), got {log_std.shape[0]}")
        self.std = np.exp(log_std).astype(np.float32) if log_std is not None else None

    def actions(self, out: np.ndarray, explore: bool, rng: np.random.Generator) -> Any:
        """The model's first output [B, input_dim] -> the env's batched actions."""
        batch = len(out)
        logit, binary, box = 0, self.logits, self.logits + self.binary
        values: dict[tuple, Any] = {}
        for kind, path, sizes, space in self.parts:
            if kind == "cat":
                picks = []
                for n in sizes:
                    x = out[:, logit : logit + n]
                    if explore:  # Gumbel-max: argmax(logits - log E), E ~ Exp(1), a draw from softmax(logits)
                        x = x - np.log(rng.standard_exponential(x.shape))
                    picks.append(x.argmax(-1).astype(np.int64))
                    logit += n
                if self.plain:
                    value: Any = picks[0]
                elif isinstance(space, gym.spaces.Discrete):
                    value = picks[0] + int(space.start)
                else:
                    value = np.stack(picks, 1) + np.asarray(getattr(space, "start", 0), np.int64)
            elif kind == "binary":
                n = math.prod(sizes)
                x = out[:, binary : binary + n]
                binary += n
                if explore:  # u < sigmoid(x) <=> logit(u) < x, with no overflow for large |x|
                    u = rng.random(x.shape)
                    bits = np.log(u) - np.log1p(-u) < x
                else:
                    bits = x > 0
                value = bits.astype(space.dtype).reshape(batch, *sizes)
            else:
                assert isinstance(space, gym.spaces.Box)
                n = math.prod(sizes)
                x = out[:, box : box + n]
                if explore and self.std is not None:
                    start = box - self.logits - self.binary
                    x = x + self.std[start : start + n] * rng.standard_normal(x.shape).astype(np.float32)
                box += n
                value = np.clip(x.reshape(batch, *sizes), space.low, space.high).astype(space.dtype)
            values[path] = value
        return nest(self.space, values)
