"""The default actor-critic MLP.

Layers are applied functionally (F.linear on each layer's parameters) rather than through
nn.Sequential: a module call costs ~6 µs of hooks on CPU, which is most of the time of a 64-wide
layer, and the env runner calls `pi` once per vector step.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlarena.limits import count_parameters, layer_parameters

# "linear": no activation (RLlib's name; its tuned cartpole-ppo.yaml uses it)
ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "elu": F.elu, "silu": F.silu, "linear": lambda x: x}
NUMPY_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0),
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
    "silu": lambda x: x / (1 + np.exp(-x)),
    "linear": lambda x: x,
}


def _orthogonal(layer: nn.Linear, gain: float) -> nn.Linear:
    # orthogonal init with sqrt(2) hidden gain, 0.01 policy head, 1.0 value head (SB3/CleanRL default)
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def _tower(in_dim: int, hiddens: Sequence[int]) -> nn.ModuleList:
    dims = [in_dim, *hiddens]
    return nn.ModuleList(_orthogonal(nn.Linear(a, b), math.sqrt(2)) for a, b in itertools.pairwise(dims))


class ActorCritic(nn.Module):
    """Separate policy and value MLPs (SB3's default for PPO), or one shared trunk (vf_share_layers).

    pi(obs) -> distribution inputs: logits [B, n] (Discrete) or the mean [B, d] (Box, with a
    state-independent log_std parameter). value(obs) -> [B].
    """

    def __init__(
        self,
        obs_dim: int,
        out_dim: int,
        hiddens: Sequence[int] = (64, 64),
        activation: str = "tanh",
        vf_share_layers: bool = False,
        continuous: bool = False,
        log_std_init: float = 0.0,
        features: nn.Module | None = None,
        log_std_dim: int | None = None,
    ):
        super().__init__()
        self.act, self.activation = ACTIVATIONS[activation], activation
        # an optional fixed input layer (e.g. rlarena.games.connect_four.features.ConnectFourFeatures): obs -> features,
        # shared by both towers; it has a `numpy` twin for the sampler and no trainable parameters
        self.features = features
        in_dim = features.out_dim if features is not None else obs_dim
        last = hiddens[-1] if hiddens else in_dim
        hiddens = tuple(hiddens)
        towers = 1 if vf_share_layers else 2
        count_parameters(
            layer_parameters([in_dim, *hiddens], towers) + layer_parameters([last, out_dim + 1]),
            "actor-critic network",
            hiddens,
        )
        self.pi_layers = _tower(in_dim, hiddens)
        self.vf_layers = None if vf_share_layers else _tower(in_dim, hiddens)
        self.pi_head = _orthogonal(nn.Linear(last, out_dim), 0.01)
        self.vf_head = _orthogonal(nn.Linear(last, 1), 1.0)
        # one per Box action dimension (out_dim of a Box; compound actions have logits beside their means)
        std_dim = out_dim if log_std_dim is None else log_std_dim
        self.log_std = nn.Parameter(torch.full((std_dim,), log_std_init)) if continuous else None

    def _trunk(self, layers: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
        for layer in layers:
            x = self.act(F.linear(x, layer.weight, layer.bias))
        return x

    def _inputs(self, obs: torch.Tensor) -> torch.Tensor:
        return obs if self.features is None else self.features(obs)

    def pi(self, obs: torch.Tensor) -> torch.Tensor:
        h = self._trunk(self.pi_layers, self._inputs(obs))
        return F.linear(h, self.pi_head.weight, self.pi_head.bias)

    def numpy_pi(self) -> Callable[[np.ndarray], np.ndarray]:
        """`pi` as a numpy function over zero-copy views of the live weights.

        The env runner calls the policy head once per vector step on a small batch; there numpy's
        per-call cost (~1-3 µs) beats torch's dispatch (~5 µs an op): 22 vs 40 µs for a 64x64 MLP
        (benchmarks/sampling_throughput.py). The views see every update made in place (the optimizer
        and load_state_dict both write in place); rebuild them if a parameter's storage is replaced.
        """
        act = NUMPY_ACTIVATIONS[self.activation]
        layers = [
            (layer.weight.detach().numpy().T, layer.bias.detach().numpy()) for layer in [*self.pi_layers, self.pi_head]
        ]
        *hidden, (w_out, b_out) = layers
        features = None if self.features is None else self.features.numpy

        def pi(x: np.ndarray) -> np.ndarray:
            if features is not None:
                x = features(x)
            for w, b in hidden:
                x = act(x @ w + b)
            return x @ w_out + b_out

        return pi

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        h = self._trunk(self.vf_layers if self.vf_layers is not None else self.pi_layers, self._inputs(obs))
        return F.linear(h, self.vf_head.weight, self.vf_head.bias).squeeze(-1)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self._inputs(obs)  # the input features once for both towers
        h_pi = self._trunk(self.pi_layers, x)
        h_vf = h_pi if self.vf_layers is None else self._trunk(self.vf_layers, x)  # a shared trunk: once
        return (
            F.linear(h_pi, self.pi_head.weight, self.pi_head.bias),
            F.linear(h_vf, self.vf_head.weight, self.vf_head.bias).squeeze(-1),
        )
