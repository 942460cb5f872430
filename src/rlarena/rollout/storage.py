"""Preallocated rollout storage: numpy arrays of shape [T, N, ...], reused every iteration.

Numpy, not torch, during collection: writing one row of a numpy array costs ~1 µs, a torch
index_put several. The algorithm takes zero-copy torch views with `torch.from_numpy`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Rollout:
    """One fragment of T steps from N envs, in the vector env's next-step autoreset layout.

    obs[t+1] is what the env returned for the action at t, so obs[T] closes the fragment and, at a
    truncation, obs[t+1] is the episode's final observation (to bootstrap from). The step after an
    episode end only resets that env (the action is ignored); `valid` marks it False.
    """

    obs: np.ndarray  # [T+1, N, D] float32, preprocessed (flattened, one-hot, filtered) observations
    actions: np.ndarray  # [T, N] int64 (Discrete) or [T, N, A] float32 (Box, before clipping)
    rewards: np.ndarray  # [T, N] float32
    terminated: np.ndarray  # [T, N] bool
    truncated: np.ndarray  # [T, N] bool
    valid: np.ndarray  # [T, N] bool: False where the env only reset
    raw_obs: np.ndarray | None  # [T+1, N, D] float32 before the observation filter, when one is on
    # [T+1, N, n] bool legal actions of each observation, for masked policies (row T: of obs[T], which
    # off-policy targets maximize over)
    action_mask: np.ndarray | None = None
    # Multi-agent fragments (one column per agent segment) say whose steps they hold, for recording
    # (rlarena.offline): the agent, its episode, the episode's step count at each observation, and
    # whether the segment ends its episode for the agent (False: cut by the fragment's end).
    agent_ids: list | None = None  # [N]
    eps_ids: np.ndarray | None = None  # [N] int64
    steps: np.ndarray | None = None  # [T, N] int64
    ends_episode: np.ndarray | None = None  # [N] bool

    @classmethod
    def allocate(cls, T: int, N: int, obs_dim: int, action_shape: tuple[int, ...], action_dtype: np.dtype,
                 keep_raw_obs: bool, num_actions: int | None = None) -> Rollout:
        """num_actions: allocate action masks for that many discrete actions."""
        return cls(
            obs=np.zeros((T + 1, N, obs_dim), np.float32),
            actions=np.zeros((T, N, *action_shape), action_dtype),
            rewards=np.zeros((T, N), np.float32),
            terminated=np.zeros((T, N), bool),
            truncated=np.zeros((T, N), bool),
            valid=np.zeros((T, N), bool),
            raw_obs=np.zeros((T + 1, N, obs_dim), np.float32) if keep_raw_obs else None,
            action_mask=np.ones((T + 1, N, num_actions), bool) if num_actions else None,
        )

    @property
    def num_steps(self) -> int:
        return self.rewards.size
