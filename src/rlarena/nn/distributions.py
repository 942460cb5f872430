"""Action distributions as plain functions of the network's outputs (no torch.distributions objects:
they cost several microseconds each to build and validate, and we build one per minibatch)."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from rlarena.envs.action_layout import ActionLayout
from rlarena.policies.policy import MASKED_LOGIT


class Distribution(ABC):
    """log_prob, entropy and the greedy action for a batch of distribution inputs."""

    @abstractmethod
    def log_prob_entropy(
        self, inputs: torch.Tensor, actions: torch.Tensor, with_entropy: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(log_prob [B], entropy [B] or None), sharing the work between the two."""

    @abstractmethod
    def greedy(self, inputs: torch.Tensor) -> torch.Tensor:
        """The most likely action for each input."""


class Categorical(Distribution):
    """inputs: logits [B, n]; actions: int64 [B]."""

    def log_prob_entropy(self, inputs, actions, with_entropy):
        if not with_entropy:  # one fused op (log_softmax + gather) instead of four
            return -F.cross_entropy(inputs, actions, reduction="none"), None
        logp_all = torch.log_softmax(inputs, -1)
        logp = logp_all.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        return logp, (-(logp_all.exp() * logp_all).sum(-1) if with_entropy else None)

    def greedy(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs.argmax(-1)


class DiagGaussian(Distribution):
    """inputs: the mean [B, d]; log_std [d] is a state-independent parameter of the model (SB3 and
    CleanRL default)."""

    def __init__(self, log_std: torch.Tensor):
        self.log_std = log_std

    def log_prob_entropy(self, inputs, actions, with_entropy):
        z = (actions - inputs) * torch.exp(-self.log_std)
        logp = (-0.5 * z.pow(2) - self.log_std).sum(-1) - 0.5 * math.log(2 * math.pi) * inputs.shape[-1]
        if not with_entropy:
            return logp, None
        return logp, (0.5 + 0.5 * math.log(2 * math.pi) + self.log_std).sum().expand(inputs.shape[0])

    def greedy(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs


def masked(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Illegal actions get a logit of MASKED_LOGIT (-1e9): probability 0, never sampled, never greedy."""
    if mask is None:
        return logits
    if mask.shape[-1] < logits.shape[-1]:  # a mask of the categorical logits, which come first (ActionLayout)
        return torch.cat(
            [logits[..., : mask.shape[-1]].masked_fill(~mask, MASKED_LOGIT), logits[..., mask.shape[-1] :]], -1
        )
    return logits.masked_fill(~mask, MASKED_LOGIT)


__all__ = ["ActionLayout", "Categorical", "DiagGaussian", "Distribution", "Product", "make_distribution", "masked"]


def make_distribution(action_space: gym.Space, log_std: torch.Tensor | None) -> Distribution:
    if isinstance(action_space, gym.spaces.Discrete):
        return Categorical()
    assert log_std is not None
    return DiagGaussian(log_std)


class Product(Distribution):
    """Independent parts, one per component of an ActionLayout: categoricals, Bernoullis, a diagonal
    Gaussian (log_std a state-independent parameter). log-probs and entropies are sums over parts."""

    def __init__(self, layout: ActionLayout, log_std: torch.Tensor | None):
        self.layout, self.log_std = layout, log_std
        # (kind, first input column, its width, first action column, its width)
        self.slices: list[tuple[str, int, int, int, int]] = []
        logit, binary, box, col = 0, layout.logits, layout.logits + layout.binary, 0
        for kind, _, sizes, _ in layout.parts:
            if kind == "cat":
                for n in sizes:
                    self.slices.append(("cat", logit, n, col, 1))
                    logit, col = logit + n, col + 1
            elif kind == "binary":
                n = int(np.prod(sizes))
                self.slices.append(("binary", binary, n, col, n))
                binary, col = binary + n, col + n
            else:
                n = int(np.prod(sizes))
                self.slices.append(("box", box, n, col, n))
                box, col = box + n, col + n

    def log_prob_entropy(self, inputs, actions, with_entropy):
        logp = torch.zeros(inputs.shape[:-1])
        entropy = torch.zeros(inputs.shape[:-1]) if with_entropy else None
        for kind, i, n, j, m in self.slices:
            x = inputs[..., i : i + n]
            a = actions[..., j : j + m]
            if kind == "cat":
                logp_all = torch.log_softmax(x, -1)
                logp = logp + logp_all.gather(-1, a.long()).squeeze(-1)
                if entropy is not None:
                    entropy = entropy - (logp_all.exp() * logp_all).sum(-1)
            elif kind == "binary":
                logp = logp - F.binary_cross_entropy_with_logits(x, a.float(), reduction="none").sum(-1)
                if entropy is not None:
                    p = torch.sigmoid(x)
                    entropy = entropy + F.binary_cross_entropy_with_logits(x, p, reduction="none").sum(-1)
            else:
                assert self.log_std is not None
                log_std = self.log_std[i - self.layout.logits - self.layout.binary :][:n]
                z = (a.float() - x) * torch.exp(-log_std)
                logp = logp + (-0.5 * z.pow(2) - log_std).sum(-1) - 0.5 * math.log(2 * math.pi) * n
                if entropy is not None:
                    entropy = entropy + (0.5 + 0.5 * math.log(2 * math.pi) + log_std).sum()
        return logp, entropy

    def greedy(self, inputs: torch.Tensor) -> torch.Tensor:
        return self._actions(inputs, None)

    def sample(self, inputs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """One action per row, drawn with `generator`."""
        return self._actions(inputs, generator if generator is not None else torch.default_generator)

    def _actions(self, inputs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        cols = []
        for kind, i, n, _, _ in self.slices:
            x = inputs[..., i : i + n]
            if kind == "cat":
                if generator is not None:  # Gumbel-max: argmax(logits - log E), E ~ Exp(1)
                    x = x - torch.empty_like(x).exponential_(generator=generator).log()
                cols.append(x.argmax(-1, keepdim=True).to(inputs.dtype))
            elif kind == "binary":
                if generator is None:
                    cols.append((x > 0).to(inputs.dtype))
                else:
                    cols.append(torch.bernoulli(torch.sigmoid(x), generator=generator))
            else:
                if generator is not None:
                    assert self.log_std is not None
                    log_std = self.log_std[i - self.layout.logits - self.layout.binary :][:n]
                    x = x + torch.exp(log_std) * torch.randn(x.shape, generator=generator)
                cols.append(x)
        out = torch.cat(cols, -1)
        return out if self.layout.box else out.long()
