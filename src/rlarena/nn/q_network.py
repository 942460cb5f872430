"""The Q-network: an MLP from observations to one value per discrete action, optionally dueling.

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
    """obs [B, D] -> Q [B, n].

    dueling (Wang et al. 2016, eq. 9): one trunk, then a value head V(s) and an advantage head
    A(s, a), combined as Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a'). RLlib adds a hidden layer per
    stream ("hiddens": [256]); here both heads are linear on the trunk, so dueling costs n + 1 weights
    per trunk unit. Initialization is torch's default (as SB3's QNetwork).
    """

    def __init__(
        self,
        obs_dim: int,
        num_actions: int,
        hiddens: Sequence[int] = (64, 64),
        activation: str = "relu",
        dueling: bool = True,
        features: nn.Module | None = None,
    ):
        super().__init__()
        self.act, self.activation, self.dueling = ACTIVATIONS[activation], activation, dueling
        self.features = features  # an optional fixed input layer, as in ActorCritic
        dims = [features.out_dim if features is not None else obs_dim, *hiddens]
        count_parameters(layer_parameters(dims) + layer_parameters([dims[-1], num_actions + 1]), "Q-network", hiddens)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))
        self.q_head = nn.Linear(dims[-1], num_actions)  # the advantage head when dueling
        self.v_head = nn.Linear(dims[-1], 1) if dueling else None

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs if self.features is None else self.features(obs)
        for layer in self.layers:
            x = self.act(F.linear(x, layer.weight, layer.bias))
        q = F.linear(x, self.q_head.weight, self.q_head.bias)
        if self.v_head is None:
            return q
        return F.linear(x, self.v_head.weight, self.v_head.bias) + q - q.mean(-1, keepdim=True)

    def numpy_q(self) -> Callable[[np.ndarray], np.ndarray]:
        """`forward` as a numpy function over zero-copy views of the live weights (see ActorCritic.numpy_pi)."""
        act = NUMPY_ACTIVATIONS[self.activation]
        hidden = [(layer.weight.detach().numpy().T, layer.bias.detach().numpy()) for layer in self.layers]
        w_q, b_q = self.q_head.weight.detach().numpy().T, self.q_head.bias.detach().numpy()
        v = None if self.v_head is None else (self.v_head.weight.detach().numpy().T, self.v_head.bias.detach().numpy())
        features = None if self.features is None else self.features.numpy

        def q_values(x: np.ndarray) -> np.ndarray:
            if features is not None:
                x = features(x)
            for w, b in hidden:
                x = act(x @ w + b)
            q = x @ w_q + b_q
            if v is None:
                return q
            return x @ v[0] + v[1] + q - q.mean(-1, keepdims=True)

        return q_values
