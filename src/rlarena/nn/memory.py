"""Memory: the recurrent actor-critic (`model={"use_lstm": True}`, `{"use_gru": True}` or
`{"use_attention": True}`).

input layer (the catalog's encoder, or none) -> fcnet_hiddens (shared) -> an LSTM or GRU cell of
`lstm_cell_size` units, or attention over the last `attention_memory_inference` steps ->
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


class LSTMCell(nn.Module):
    """An LSTM cell over a flat state row [h, c]."""

    def __init__(self, in_dim: int, size: int):
        super().__init__()
        self.cell, self.size, self.state_size, self.out_dim = nn.LSTMCell(in_dim, size), size, 2 * size, size

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = self.cell(x, (state[:, : self.size], state[:, self.size :]))
        return h, torch.cat([h, c], -1)

    def sequence(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """L steps at once ([L, M, E] -> [L, M, H]), no episode starting inside: torch's fused LSTM over
        the cell's own weights (the same gates, the same numbers as L forward calls)."""
        cell = self.cell
        hx = (state[None, :, : self.size].contiguous(), state[None, :, self.size :].contiguous())
        params = [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh]
        out, h, c = torch.lstm(x, hx, params, True, 1, 0.0, self.training, False, False)
        return out, torch.cat([h[0], c[0]], -1)


class GRUCell(nn.Module):
    """A GRU cell; the state row is h."""

    def __init__(self, in_dim: int, size: int):
        super().__init__()
        self.cell, self.state_size, self.out_dim = nn.GRUCell(in_dim, size), size, size

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.cell(x, state)
        return h, h

    def sequence(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """L steps at once, no episode starting inside: torch's fused GRU over the cell's weights."""
        cell = self.cell
        params = [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh]
        out, h = torch.gru(x, state[None].contiguous(), params, True, 1, 0.0, self.training, False, False)
        return out, h[0]


class AttentionCell(nn.Module):
    """Attention over the last `memory` steps (GTrXL-style, Parisotto et al. 2020, one step at a time):
    the step's embedding attends to itself and the remembered embeddings (a learned embedding per age,
    multi-head, pre-LayerNorm), a GRU-type gate adds the result to the embedding, then a position-wise
    MLP, gated the same way, for each of `units` transformer units. The state row is the memory:
    `memory` slots of (the unit inputs of that step, a 1 where the slot holds a step of this episode),
    oldest first; zeros at an episode's start (no slot valid)."""

    def __init__(self, in_dim: int, dim: int, memory: int, heads: int, head_dim: int, mlp_dim: int, units: int):
        super().__init__()
        self.dim, self.memory, self.units, self.heads, self.head_dim = dim, memory, units, heads, head_dim
        self.embed = nn.Linear(in_dim, dim)
        self.age = nn.Parameter(torch.zeros(memory + 1, dim))  # slot 0 the oldest, slot `memory` this step
        self.norm1 = nn.ModuleList(nn.LayerNorm(dim) for _ in range(units))
        self.qkv = nn.ModuleList(nn.Linear(dim, 3 * heads * head_dim) for _ in range(units))
        self.proj = nn.ModuleList(nn.Linear(heads * head_dim, dim) for _ in range(units))
        self.gate1 = nn.ModuleList(nn.Linear(2 * dim, 2 * dim) for _ in range(units))
        self.norm2 = nn.ModuleList(nn.LayerNorm(dim) for _ in range(units))
        self.mlp = nn.ModuleList(
            nn.Sequential(nn.Linear(dim, mlp_dim), nn.ReLU(), nn.Linear(mlp_dim, dim)) for _ in range(units)
        )
        self.gate2 = nn.ModuleList(nn.Linear(2 * dim, 2 * dim) for _ in range(units))
        for gate in [*self.gate1, *self.gate2]:  # start near the identity (GTrXL's gate bias): mostly x
            nn.init.constant_(gate.bias[: self.dim], -2.0)
        self.state_size = memory * (units * dim + 1)
        self.out_dim = dim

    @staticmethod
    def _gate(gate: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x + z * (tanh(y') - x)-style gating: z from [x, y], candidate from y."""
        z, candidate = gate(torch.cat([x, y], -1)).chunk(2, -1)
        z = torch.sigmoid(z)
        return (1 - z) * x + z * torch.tanh(candidate + y)

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, K, U, D = x.shape[0], self.memory, self.units, self.dim
        mem = state.reshape(B, K, U * D + 1)
        valid = torch.cat([mem[:, :, -1] > 0.5, torch.ones(B, 1, dtype=torch.bool)], 1)  # [B, K+1]
        h = self.embed(x)
        inputs = []
        for u in range(U):
            inputs.append(h)
            seq = torch.cat([mem[:, :, u * D : (u + 1) * D], h[:, None]], 1) + self.age  # [B, K+1, D]
            q, k, v = self.qkv[u](self.norm1[u](seq)).chunk(3, -1)
            q = q[:, -1:].reshape(B, 1, self.heads, self.head_dim).transpose(1, 2)  # this step asks
            k = k.reshape(B, K + 1, self.heads, self.head_dim).transpose(1, 2)
            v = v.reshape(B, K + 1, self.heads, self.head_dim).transpose(1, 2)
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)  # [B, H, 1, K+1]
            scores = scores.masked_fill(~valid[:, None, None, :], -1e9)
            attended = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, -1)
            h = self._gate(self.gate1[u], h, torch.relu(self.proj[u](attended)))
            h = self._gate(self.gate2[u], h, torch.relu(self.mlp[u](self.norm2[u](h))))
        slot = torch.cat([*inputs, torch.ones(B, 1)], -1)  # this step's unit inputs, valid
        next_mem = torch.cat([mem[:, 1:], slot[:, None]], 1)
        return h, next_mem.reshape(B, -1)


def make_cell(cell: str, in_dim: int, size: int, attention: dict | None) -> LSTMCell | GRUCell | AttentionCell:
    """The memory cell `cell` names ("lstm", "gru", "attention") over inputs of in_dim."""
    if cell == "lstm":
        return LSTMCell(in_dim, size)
    if cell == "gru":
        return GRUCell(in_dim, size)
    return AttentionCell(in_dim, **(attention or {}))


def run_cell(
    cell: nn.Module, x: torch.Tensor, state: torch.Tensor, starts: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The cell over L steps of M sequences: x [L, M, E], state [M, S], starts [L, M] (the state zeroed
    before a step that starts an episode) -> (outputs [L * M, H], the state after the last step)."""
    keep = (~starts).unsqueeze(-1).to(x.dtype)
    outs = []
    if isinstance(cell, LSTMCell | GRUCell):  # fused over each stretch in which no episode starts
        cuts = [0, *(t for t in torch.nonzero(starts[1:].any(1)).flatten().add(1).tolist()), len(x)]
        for a, b in itertools.pairwise(cuts):
            out, state = cell.sequence(x[a:b], state * keep[a])
            outs.append(out)
        return torch.cat(outs).reshape(len(x) * x.shape[1], -1), state
    for t in range(len(x)):
        h, state = cell(x[t], state * keep[t])
        outs.append(h)
    return torch.stack(outs).reshape(len(x) * x.shape[1], -1), state


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
        attention: dict | None = None,
    ):
        super().__init__()
        self.act = ACTIVATIONS[activation]
        self.features = features
        in_dim = int(features.out_dim) if features is not None else obs_dim  # type: ignore[arg-type]
        dims: list[int] = [in_dim, *hiddens]
        gates = 4 if cell == "lstm" else 3
        if cell == "attention":
            a = attention or {}
            width, units = int(a.get("dim", 64)), int(a.get("units", 1))
            cell_params = units * (width * 3 * a.get("heads", 1) * a.get("head_dim", 32) * 2 + 9 * width * width)
            cell_size = width
        else:
            cell_params = gates * cell_size * (dims[-1] + extra_dim + cell_size + 2)
        count_parameters(
            layer_parameters(dims)
            + cell_params
            + layer_parameters([cell_size, *post_hiddens], 2)
            + layer_parameters([(post_hiddens or [cell_size])[-1], out_dim + 1]),
            "recurrent actor-critic network",
            [*hiddens, cell_size, *post_hiddens],
        )
        self.trunk = nn.ModuleList(_linear(a, b, math.sqrt(2)) for a, b in itertools.pairwise(dims))
        self.cell_type, self.extra_dim = cell, extra_dim
        attention = dict(attention or {})
        self.cell = make_cell(cell, dims[-1] + extra_dim, cell_size, attention)
        self.state_size = self.cell.state_size + extra_dim  # the cell's, then the previous action and reward
        self.cell_size = self.cell.out_dim
        post = [self.cell_size, *post_hiddens]
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
        return self.cell(x, state)

    def _heads(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p, v = h, h
        for layer in self.pi_post:
            p = self.act(layer(p))
        for layer in self.vf_post:
            v = self.act(layer(v))
        return F.linear(p, self.pi_head.weight, self.pi_head.bias), self.vf_head(v).squeeze(-1)

    def step(self, obs: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step of B envs: (distribution inputs [B, I], values [B], next state [B, S]). With
        extra_dim (the previous action and reward as inputs) the state row ends with them: this step
        reads them from `state`, and the next state's are zeros for the policy to fill (the action it
        picks; the runner, the reward it gets)."""
        x = self._embed(obs)
        if self.extra_dim:
            state, extra = state[:, : self.cell.state_size], state[:, self.cell.state_size :]
            x = torch.cat([x, extra], -1)
        h, state = self._cell(x, state)
        logits, values = self._heads(h)
        if self.extra_dim:
            state = torch.cat([state, torch.zeros(len(state), self.extra_dim)], -1)
        return logits, values, state

    def unroll(
        self, obs: torch.Tensor, state: torch.Tensor, starts: torch.Tensor, extra: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """L steps of M sequences: obs [L, M, D], state [M, S] (before step 0), starts [L, M] bool (an
        episode starts at that step: the state is zeroed before it), extra [L, M, E] (with extra_dim: the
        state's last E columns at each step, as stored) -> (distribution inputs [L, M, I], values
        [L, M], the cell's state after the last step)."""
        L, M = starts.shape
        x = self._embed(obs.reshape(L * M, -1)).reshape(L, M, -1)
        if self.extra_dim:
            assert extra is not None, "a model reading the previous action and reward needs them per step"
            x = torch.cat([x, extra.to(x.dtype)], -1)
            state = state[:, : self.cell.state_size]
        h, state = run_cell(self.cell, x, state, starts)
        logits, values = self._heads(h)
        return logits.reshape(L, M, -1), values.reshape(L, M), state


class RecurrentQNetwork(nn.Module):
    """The recurrent Q-network of DQN with memory (R2D2, Kapturowski et al. 2019): input layer ->
    fcnet_hiddens -> an LSTM, GRU or attention cell -> Q per action (dueling: V + A - mean A).
    `step` and `unroll` as RecurrentActorCritic's, with Q values [.., n] for outputs."""

    def __init__(
        self,
        obs_dim: int,
        num_actions: int,
        hiddens: Sequence[int],
        activation: str,
        cell: str = "lstm",
        cell_size: int = 256,
        dueling: bool = True,
        features: nn.Module | None = None,
        attention: dict | None = None,
    ):
        super().__init__()
        self.act = ACTIVATIONS[activation]
        self.features = features
        in_dim = int(features.out_dim) if features is not None else obs_dim  # type: ignore[arg-type]
        dims: list[int] = [in_dim, *hiddens]
        count_parameters(
            layer_parameters(dims) + 4 * cell_size * (dims[-1] + cell_size + 2) + (num_actions + 1) * (cell_size + 1),
            "recurrent Q-network",
            [*hiddens, cell_size],
        )
        self.trunk = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))
        self.cell = make_cell(cell, dims[-1], cell_size, attention)
        self.state_size = self.cell.state_size
        self.q_head = nn.Linear(self.cell.out_dim, num_actions)
        self.v_head = nn.Linear(self.cell.out_dim, 1) if dueling else None

    def _q(self, h: torch.Tensor) -> torch.Tensor:
        q = self.q_head(h)
        return q if self.v_head is None else self.v_head(h) + q - q.mean(-1, keepdim=True)

    def _embed(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs if self.features is None else self.features(obs)
        for layer in self.trunk:
            x = self.act(layer(x))
        return x

    def step(self, obs: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of B envs: (Q [B, n], next state [B, S])."""
        h, state = self.cell(self._embed(obs), state)
        return self._q(h), state

    def unroll(self, obs: torch.Tensor, state: torch.Tensor, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """obs [L, M, D], state [M, S], starts [L, M] -> (Q [L, M, n], the state after the last step)."""
        L, M = starts.shape
        x = self._embed(obs.reshape(L * M, -1)).reshape(L, M, -1)
        h, state = run_cell(self.cell, x, state, starts)
        return self._q(h).reshape(L, M, -1), state
