"""Generalized advantage estimation (Schulman et al. 2016, "High-dimensional continuous control
using generalized advantage estimation", eq. 16), with terminated and truncated kept apart."""

from __future__ import annotations

import numpy as np


def compute_gae(
    rewards: np.ndarray,
    values: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    next_values: np.ndarray,
    gamma: float,
    lam: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Advantages and value targets for a [T, N] rollout.

    next_values[t] is V(s_{t+1}), the value of the observation the env returned at step t. At a
    truncation that is the episode's final observation, so a time limit bootstraps from it
    (Pardo et al. 2018, "Time limits in RL"); at a termination the future is zero.

        delta_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1}) - V(s_t)
        A_t     = delta_t + gamma * lam * (1 - done_t) * A_{t+1},   done = terminated | truncated
    """
    not_term = 1.0 - terminated.astype(np.float32)
    not_done = 1.0 - (terminated | truncated).astype(np.float32)
    deltas = rewards + gamma * not_term * next_values - values
    adv = np.zeros_like(values, dtype=np.float32)
    last = np.zeros(values.shape[1:], dtype=np.float32)
    for t in range(len(rewards) - 1, -1, -1):
        last = deltas[t] + gamma * lam * not_done[t] * last
        adv[t] = last
    return adv, adv + values
