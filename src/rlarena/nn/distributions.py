"""Action distributions as plain functions of the network's outputs (no torch.distributions objects:
they cost several microseconds each to build and validate, and we build one per minibatch)."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import gymnasium as gym
import torch
import torch.nn.functional as F

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
    return logits if mask is None else logits.masked_fill(~mask, MASKED_LOGIT)


def make_distribution(action_space: gym.Space, log_std: torch.Tensor | None) -> Distribution:
    if isinstance(action_space, gym.spaces.Discrete):
        return Categorical()
    assert log_std is not None
    return DiagGaussian(log_std)
