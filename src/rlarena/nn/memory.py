"""Memory: the recurrent actor-critic (`model={"use_lstm": True}` or `"use_gru": True}`).

input layer (the catalog's encoder, or none) -> fcnet_hiddens (shared) -> an LSTM or GRU cell of
`lstm_cell_size` units (its input also the previous action and reward, when asked) ->
post_fcnet_hiddens -> policy and value heads. The state is one float32 row per env: [h, c] for an
LSTM, h for a GRU; zeros at an episode's start.

`step` is one step of N envs (the runner's); `unroll` is L steps of M sequences from their first
state, zeroing the state where an episode starts inside a sequence (the losses'). Both run the same
cell, so a loss recomputes exactly what sampling computed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from rlarena.limits import count_parameters, layer_parameters
from rlarena.nn.models import ACTIVATIONS


def _linear(a: int, b: int, gain: float) -> nn.Linear:
    layer = nn.Linear(a, b)
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class RecurrentActorCritic(nn.Module):
    def __init__(
        self,
        obs_dim: int,
        out_dim: int,
        hiddens: Sequence[int],
        post_hiddens: Sequence[int],
        activation: str,
        cell: str = "lstm",
        cell_size: int = 256,
        extra_dim: int = 0,
        log_std_dim: int = 0,
        log_std_init: float = 0.0,
        features: nn.Module | None = None,
    ):
        super().__init__()
        self.act = ACTIVATIONS[activation]
        self.features = features
        in_dim = int(features.out_dim) if features is not None else obs_dim  # type: ignore[arg-type]
        dims: list[int] = [in_dim, *hiddens]
        gates = 4 if cell == "lstm" else 3
        count_parameters(
            layer_parameters(dims)
            + gates * cell_size * (dims[-1] + extra_dim + cell_size + 2)
            + layer_parameters([cell_size, *post_hiddens], 2)
            + layer_parameters([(post_hiddens or [cell_size])[-1], out_dim + 1]),
            "recurrent actor-critic network",
            [*hiddens, cell_size, *post_hiddens],
        )
        self.trunk = nn.ModuleList(_linear(a, b, math.sqrt(2)) for a, b in itertools.pairwise(dims))
        self.cell_type, self.cell_size, self.extra_dim = cell, cell_size, extra_dim
        self.cell: nn.LSTMCell | nn.GRUCell = (nn.LSTMCell if cell == "lstm" else nn.GRUCell)(
            dims[-1] + extra_dim, cell_size
        )
        self.state_size = 2 * cell_size if cell == "lstm" else cell_size
        post = [cell_size, *post_hiddens]
        self.pi_post = nn.ModuleList(_linear(a, b, math.sqrt(2)) for a, b in itertools.pairwise(post))
        self.vf_post = nn.ModuleList(_linear(a, b, math.sqrt(2)) for a, b in itertools.pairwise(post))
        self.pi_head = _linear(post[-1], out_dim, 0.01)
        self.vf_head = _linear(post[-1], 1, 1.0)
        self.log_std = nn.Parameter(torch.full((log_std_dim,), log_std_init)) if log_std_dim else None

    def _embed(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs if self.features is None else self.features(obs)
        for layer in self.trunk:
            x = self.act(layer(x))
        return x

    def _cell(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(output [B, H], next state [B, S]) of one step."""
        if isinstance(self.cell, nn.LSTMCell):
            h, c = self.cell(x, (state[:, : self.cell_size], state[:, self.cell_size :]))
            return h, torch.cat([h, c], -1)
        h = self.cell(x, state)
        return h, h

    def _heads(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p, v = h, h
        for layer in self.pi_post:
            p = self.act(layer(p))
        for layer in self.vf_post:
            v = self.act(layer(v))
        return F.linear(p, self.pi_head.weight, self.pi_head.bias), self.vf_head(v).squeeze(-1)

    def step(
        self, obs: torch.Tensor, state: torch.Tensor, extra: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step of B envs: (distribution inputs [B, I], values [B], next state [B, S])."""
        x = self._embed(obs)
        if extra is not None:
            x = torch.cat([x, extra], -1)
        h, state = self._cell(x, state)
        logits, values = self._heads(h)
        return logits, values, state

    def unroll(
        self, obs: torch.Tensor, state: torch.Tensor, starts: torch.Tensor, extra: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """L steps of M sequences: obs [L, M, D], state [M, S] (before step 0), starts [L, M] bool (an
        episode starts at that step: the state is zeroed before it), extra [L, M, E] ->
        (distribution inputs [L, M, I], values [L, M], the state after the last step)."""
        L, M = starts.shape
        x = self._embed(obs.reshape(L * M, -1)).reshape(L, M, -1)
        if extra is not None:
            x = torch.cat([x, extra], -1)
        keep = (~starts).unsqueeze(-1).to(x.dtype)
        outs = []
        for t in range(L):
            h, state = self._cell(x[t], state * keep[t])
            outs.append(h)
        logits, values = self._heads(torch.stack(outs).reshape(L * M, -1))
        return logits.reshape(L, M, -1), values.reshape(L, M), state
