"""A recurrent policy's fragment as sequences for a loss (RLlib's max_seq_len chunks).

The fragment [T, N] is unrolled once from its first stored state (the old log-probs and values,
exactly what sampling computed), the targets (GAE, V-trace) run over it, then it is cut into
sequences of L = max_seq_len steps: K = ceil(T / L) chunks per env column, the last padded with
invalid steps. Each sequence starts from the state the runner stored before its first step (the
sampling weights' state, as RLlib and sb3-contrib's RecurrentPPO do); an episode starting inside a
sequence zeroes the state there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from rlarena.algorithms.on_policy import explained_variance
from rlarena.nn.distributions import masked
from rlarena.rollout.gae import compute_gae
from rlarena.rollout.storage import Rollout


@dataclass
class SequenceBatch:
    obs: torch.Tensor  # [L, M, D]
    actions: torch.Tensor  # [L, M, ...]
    valid: torch.Tensor  # [L, M] bool: steps the loss counts
    starts: torch.Tensor  # [L, M] bool: an episode starts at this step (the state is zeroed before it)
    state0: torch.Tensor  # [M, S] the state before each sequence's first step
    mask: torch.Tensor | None  # [L, M, n] legal actions
    explained_variance: float
    columns: dict[str, torch.Tensor] = field(default_factory=dict)  # per-step targets [L, M]: the loss's names

    def __getattr__(self, name: str) -> torch.Tensor:
        columns = self.__dict__.get("columns", {})
        if name in columns:
            return columns[name]
        raise AttributeError(name)

    @property
    def extra(self) -> torch.Tensor | None:
        """[L, M, E] the previous action and reward per step, for a model that reads them."""
        return self.columns.get("extra")

    @property
    def num_sequences(self) -> int:
        return int(self.state0.shape[0])

    def select(self, idx: torch.Tensor) -> SequenceBatch:
        """The sequences `idx` (a minibatch)."""
        return SequenceBatch(
            self.obs[:, idx],
            self.actions[:, idx],
            self.valid[:, idx],
            self.starts[:, idx],
            self.state0[idx],
            None if self.mask is None else self.mask[:, idx],
            self.explained_variance,
            {k: v[:, idx] for k, v in self.columns.items()},
        )


class Precomputed:
    """A model stand-in for a loss written as `model(obs)`: returns outputs computed already (a recurrent
    model's unroll, its valid steps), and the real model's other attributes (log_std)."""

    def __init__(self, model, dist_inputs: torch.Tensor, values: torch.Tensor):
        self.model, self.outputs = model, (dist_inputs, values)

    def __call__(self, obs) -> tuple[torch.Tensor, torch.Tensor]:
        return self.outputs

    def __getattr__(self, name: str):
        return getattr(self.model, name)


def episode_starts(batch: Rollout) -> np.ndarray:
    """[T+1, N] bool: observation t + 1 starts an episode when step t only reset the env."""
    T, N = batch.rewards.shape
    starts = np.zeros((T + 1, N), bool)
    starts[1:] = ~batch.valid
    return starts


def extra_inputs(model, state_in: np.ndarray) -> torch.Tensor | None:
    """The previous action and reward the model read at each step ([.., E], the stored states' last E
    columns), or None for a model that reads none."""
    extra = getattr(model, "extra_dim", 0)
    return torch.from_numpy(state_in[..., state_in.shape[-1] - extra :]) if extra else None


def unroll_fragment(model, batch: Rollout) -> tuple[torch.Tensor, torch.Tensor]:
    """(distribution inputs [T+1, N, I], values [T+1, N]) of the whole fragment, without gradients."""
    assert batch.state_in is not None, "a recurrent policy's runner stores its state (Rollout.state_in)"
    with torch.no_grad():
        dist_inputs, values, _ = model.unroll(
            torch.from_numpy(batch.obs),
            torch.from_numpy(batch.state_in[0]),
            torch.from_numpy(episode_starts(batch)),
            extra_inputs(model, batch.state_in),
        )
    return dist_inputs, values


def log_probs(dist, dist_inputs: torch.Tensor, batch: Rollout) -> torch.Tensor:
    """[T, N] log-probs of the fragment's actions under `dist_inputs` [T(+1), N, I], masked."""
    T, N = batch.rewards.shape
    actions = torch.from_numpy(batch.actions)
    mask = None if batch.action_mask is None else torch.from_numpy(batch.action_mask[:T].reshape(T * N, -1))
    with torch.no_grad():
        logp, _ = dist.log_prob_entropy(
            masked(dist_inputs[:T].reshape(T * N, -1), mask), actions.reshape(T * N, *actions.shape[2:]), False
        )
    return logp.reshape(T, N)


def cut(batch: Rollout, max_seq_len: int, columns: Mapping[str, Any], ev: float, model: Any = None) -> SequenceBatch:
    """The fragment and its per-step `columns` ([T, N]) as sequences of max_seq_len steps."""
    T, N = batch.rewards.shape
    L = max(1, min(max_seq_len, T))
    K = math.ceil(T / L)

    def seq(a: torch.Tensor | np.ndarray, fill: float | bool = 0) -> torch.Tensor:
        """[T, N, ...] -> [L, K * N, ...]: chunk k of column n is sequence k * N + n."""
        t = torch.as_tensor(a)
        if K * L > T:
            t = torch.cat([t, torch.full((K * L - T, *t.shape[1:]), fill, dtype=t.dtype)])
        t = t.reshape(K, L, *t.shape[1:]).transpose(0, 1)
        return t.reshape(L, K * N, *t.shape[3:])

    starts = seq(episode_starts(batch)[:T], False)
    starts[0] = False  # the stored state already holds the reset
    assert batch.state_in is not None
    extra = extra_inputs(model, batch.state_in[:T])
    if extra is not None:  # the previous action and reward, per step: what unroll reads beside the obs
        columns = {**columns, "extra": extra}
    out = SequenceBatch(
        obs=seq(torch.from_numpy(batch.obs[:T])),
        actions=seq(torch.from_numpy(batch.actions)),
        valid=seq(batch.valid, False),
        starts=starts,
        state0=torch.from_numpy(batch.state_in[0:T:L]).reshape(K * N, -1),
        mask=None if batch.action_mask is None else seq(torch.from_numpy(batch.action_mask[:T]), True),
        explained_variance=ev,
        columns={k: seq(torch.as_tensor(v)) for k, v in columns.items()},
    )
    keep = out.valid.any(0)  # sequences with no valid step (all padding) are dropped
    return out.select(torch.from_numpy(np.flatnonzero(keep.numpy())))


def prepare_sequences(model, dist, batch: Rollout, gamma: float, lam: float, max_seq_len: int) -> SequenceBatch:
    """Sequences with PPO's and A2C's columns: logp_old, advantages (raw GAE), returns, values_old."""
    dist_inputs, values = unroll_fragment(model, batch)
    logp_old = (
        torch.from_numpy(batch.behaviour_logp)
        if batch.behaviour_logp is not None
        else log_probs(dist, dist_inputs, batch)
    )
    values_np = values.numpy()
    adv, returns = compute_gae(
        batch.rewards, values_np[:-1], batch.terminated, batch.truncated, values_np[1:], gamma, lam
    )
    ev = explained_variance(returns[batch.valid], values_np[:-1][batch.valid])
    columns = {"logp_old": logp_old, "advantages": adv, "returns": returns, "values_old": values[:-1]}
    return cut(batch, max_seq_len, columns, ev, model)
