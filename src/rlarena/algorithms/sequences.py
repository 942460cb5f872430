"""A recurrent policy's fragment as sequences for a loss (RLlib's max_seq_len chunks).

The fragment [T, N] is unrolled once from its first stored state (the old log-probs and values,
exactly what sampling computed), GAE runs over it, then it is cut into sequences of L = max_seq_len
steps: K = ceil(T / L) chunks per env column, the last padded with invalid steps. Each sequence
starts from the state the runner stored before its first step (the sampling weights' state, as RLlib
and sb3-contrib's RecurrentPPO do); an episode starting inside a sequence zeroes the state there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
    logp_old: torch.Tensor  # [L, M]
    advantages: torch.Tensor  # [L, M] raw GAE
    returns: torch.Tensor  # [L, M]
    values_old: torch.Tensor  # [L, M]
    valid: torch.Tensor  # [L, M] bool: steps the loss counts
    starts: torch.Tensor  # [L, M] bool: an episode starts at this step (the state is zeroed before it)
    state0: torch.Tensor  # [M, S] the state before each sequence's first step
    mask: torch.Tensor | None  # [L, M, n] legal actions
    explained_variance: float

    @property
    def num_sequences(self) -> int:
        return int(self.state0.shape[0])

    def select(self, idx: torch.Tensor) -> SequenceBatch:
        """The sequences `idx` (a minibatch)."""
        return SequenceBatch(
            self.obs[:, idx],
            self.actions[:, idx],
            self.logp_old[:, idx],
            self.advantages[:, idx],
            self.returns[:, idx],
            self.values_old[:, idx],
            self.valid[:, idx],
            self.starts[:, idx],
            self.state0[idx],
            None if self.mask is None else self.mask[:, idx],
            self.explained_variance,
        )


def prepare_sequences(model, dist, batch: Rollout, gamma: float, lam: float, max_seq_len: int) -> SequenceBatch:
    assert batch.state_in is not None, "a recurrent policy's runner stores its state (Rollout.state_in)"
    T, N = batch.rewards.shape
    starts = np.zeros((T + 1, N), bool)
    starts[1:] = ~batch.valid  # step t only reset the env: observation t + 1 is an episode's first
    obs = torch.from_numpy(batch.obs)
    mask = None if batch.action_mask is None else torch.from_numpy(batch.action_mask[:T])
    actions = torch.from_numpy(batch.actions)
    with torch.no_grad():
        dist_inputs, values, _ = model.unroll(obs, torch.from_numpy(batch.state_in[0]), torch.from_numpy(starts))
        if batch.behaviour_logp is not None:
            logp_old = torch.from_numpy(batch.behaviour_logp)
        else:
            flat_actions = actions.reshape(T * N, *actions.shape[2:])
            inputs = dist_inputs[:T].reshape(T * N, -1)
            flat_mask = None if mask is None else mask.reshape(T * N, -1)
            logp_old, _ = dist.log_prob_entropy(masked(inputs, flat_mask), flat_actions, False)
            logp_old = logp_old.reshape(T, N)
    values_np = values.numpy()
    adv, returns = compute_gae(
        batch.rewards, values_np[:-1], batch.terminated, batch.truncated, values_np[1:], gamma, lam
    )
    L = max(1, min(max_seq_len, T))
    K = math.ceil(T / L)

    def seq(a: torch.Tensor | np.ndarray, fill: float | bool = 0) -> torch.Tensor:
        """[T, N, ...] -> [L, K * N, ...]: chunk k of column n is sequence k * N + n."""
        t = torch.as_tensor(a)
        if K * L > T:
            t = torch.cat([t, torch.full((K * L - T, *t.shape[1:]), fill, dtype=t.dtype)])
        t = t.reshape(K, L, *t.shape[1:]).transpose(0, 1)
        return t.reshape(L, K * N, *t.shape[3:])

    seq_starts = seq(starts[:T], False)
    seq_starts[0] = False  # the stored state already holds the reset
    valid = seq(batch.valid, False)
    keep = valid.any(0)  # sequences with no valid step (all padding) are dropped
    state0 = torch.from_numpy(batch.state_in[0:T:L]).reshape(K * N, -1)
    out = SequenceBatch(
        obs=seq(obs[:T]),
        actions=seq(actions),
        logp_old=seq(logp_old),
        advantages=seq(adv),
        returns=seq(returns),
        values_old=seq(values[:T]),
        valid=valid,
        starts=seq_starts,
        state0=state0,
        mask=None if mask is None else seq(mask, True),
        explained_variance=explained_variance(returns[batch.valid], values_np[:-1][batch.valid]),
    )
    return out.select(torch.from_numpy(np.flatnonzero(keep.numpy())))
