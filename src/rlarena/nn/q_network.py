"""The Q-network: an MLP from observations to one value per discrete action, optionally dueling, or to
`quantiles` values per action (QR-DQN's return distribution).

Like ActorCritic, layers are applied functionally (F.linear) and `numpy_q` gives the env runner a
numpy twin over views of the live weights (the runner calls it once per vector step).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlarena.limits import count_parameters, layer_parameters
from rlarena.nn.models import ACTIVATIONS, NUMPY_ACTIVATIONS


class QNetwork(nn.Module):
    """obs [B, D] -> Q [B, n], or with `quantiles` M the quantiles of the return [B, n, M] (QR-DQN,
    Dabney et al. 2018: one linear head of n * M outputs, as sb3-contrib's QuantileNetwork); `mean_q`
    and the numpy twin give Q [B, n] either way, the mean of the quantiles.

    dueling (Wang et al. 2016, eq. 9): one trunk, then a value head V(s) and an advantage head
    A(s, a), combined as Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a'). RLlib adds a hidden layer per
    stream ("hiddens": [256]); here both heads are linear on the trunk, so dueling costs n + 1 weights
    per trunk unit (with quantiles, V(s) and A(s, a) have M each and the combination holds per quantile).
    Initialization is torch's default (as SB3's QNetwork).
    """

    def __init__(
        self,
        obs_dim: int,
        num_actions: int,
        hiddens: Sequence[int] = (64, 64),
        activation: str = "relu",
        dueling: bool = True,
        features: nn.Module | None = None,
        quantiles: int | None = None,
    ):
        super().__init__()
        self.act, self.activation, self.dueling = ACTIVATIONS[activation], activation, dueling
        self.features = features  # an optional fixed input layer, as in ActorCritic
        self.num_actions, self.quantiles = num_actions, quantiles
        m = quantiles or 1
        dims = [features.out_dim if features is not None else obs_dim, *hiddens]
        heads = layer_parameters([dims[-1], (num_actions + 1) * m])
        count_parameters(layer_parameters(dims) + heads, "Q-network", hiddens)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))
        self.q_head = nn.Linear(dims[-1], num_actions * m)  # the advantage head when dueling
        self.v_head = nn.Linear(dims[-1], m) if dueling else None

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs if self.features is None else self.features(obs)
        for layer in self.layers:
            x = self.act(F.linear(x, layer.weight, layer.bias))
        q = F.linear(x, self.q_head.weight, self.q_head.bias)
        if self.quantiles is not None:
            q = q.unflatten(-1, (self.num_actions, self.quantiles))  # [B, n, M], action-major
        if self.v_head is None:
            return q
        v = F.linear(x, self.v_head.weight, self.v_head.bias)
        if self.quantiles is None:
            return v + q - q.mean(-1, keepdim=True)
        return v.unsqueeze(-2) + q - q.mean(-2, keepdim=True)  # per quantile

    def mean_q(self, obs: torch.Tensor) -> torch.Tensor:
        """Q [B, n]: forward's, or the mean of its quantiles (QR-DQN's Q, Dabney et al. 2018, Algorithm 1)."""
        q = self(obs)
        return q if self.quantiles is None else q.mean(-1)

    def numpy_q(self) -> Callable[[np.ndarray], np.ndarray]:
        """`mean_q` as a numpy function over zero-copy views of the live weights (see ActorCritic.numpy_pi):
        Q [B, n], with quantiles their mean."""
        act = NUMPY_ACTIVATIONS[self.activation]
        hidden = [(layer.weight.detach().numpy().T, layer.bias.detach().numpy()) for layer in self.layers]
        w_q, b_q = self.q_head.weight.detach().numpy().T, self.q_head.bias.detach().numpy()
        v = None if self.v_head is None else (self.v_head.weight.detach().numpy().T, self.v_head.bias.detach().numpy())
        features = None if self.features is None else self.features.numpy
        n, m = self.num_actions, self.quantiles

        def q_values(x: np.ndarray) -> np.ndarray:
            if features is not None:
                x = features(x)
            for w, b in hidden:
                x = act(x @ w + b)
            q = x @ w_q + b_q
            if m is not None:
                # the mean of the quantiles; a dueling head's mean over them is V's mean + A's
                q = q.reshape(*q.shape[:-1], n, m).mean(-1)
                return q if v is None else (x @ v[0] + v[1]).mean(-1, keepdims=True) + q - q.mean(-1, keepdims=True)
            if v is None:
                return q
            return x @ v[0] + v[1] + q - q.mean(-1, keepdims=True)

        return q_values
