"""Preallocated rollout storage: numpy arrays of shape [T, N, ...], reused every iteration.

Numpy, not torch, during collection: writing one row of a numpy array costs ~1 µs, a torch
index_put several. The algorithm takes zero-copy torch views with `torch.from_numpy`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlarena.rollout.frames import FrameStacks


@dataclass
class Rollout:
    """One fragment of T steps from N envs, in the vector env's next-step autoreset layout.

    obs[t+1] is what the env returned for the action at t, so obs[T] closes the fragment and, at a
    truncation, obs[t+1] is the episode's final observation (to bootstrap from). The step after an
    episode end only resets that env (the action is ignored); `valid` marks it False.
    """

    # [T+1, N, D] float32 (or uint8 packed frames), preprocessed (flattened, one-hot, filtered) observations;
    # a stack of frames (Atari's 4 x 84 x 84) is kept a frame per step: FrameStacks, read by rows
    # (obs[:T], np.asarray(obs)), written one row at a time in order
    obs: np.ndarray | FrameStacks
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
    # [T, N] float32 log-probs of the actions under the weights that sampled them, when the fragment
    # was sampled in another process while the learner moved on (rlarena.rollout.async_sampling)
    behaviour_logp: np.ndarray | None = None
    # [T+1, N, S] float32 a recurrent policy's state before each step (zero at an episode's start; row T:
    # before the step after the fragment, for the bootstrap value); what the losses unroll sequences from
    state_in: np.ndarray | None = None

    @classmethod
    def allocate(
        cls,
        T: int,
        N: int,
        obs_dim: int,
        action_shape: tuple[int, ...],
        action_dtype: np.dtype,
        keep_raw_obs: bool,
        num_actions: int | None = None,
        obs_dtype: np.dtype | type = np.float32,
        state_size: int = 0,
        frames: tuple[int, int] | None = None,
    ) -> Rollout:
        """num_actions: allocate action masks for that many discrete actions; obs_dtype: the policy's
        packed observations' (uint8 for frames: they stay bytes); frames=(k, F): each observation is a
        stack of k frames of F values (rlarena.rollout.frames.frame_stack), stored a frame per step."""
        stacked = frames is not None and frames[0] * frames[1] == obs_dim and not keep_raw_obs
        return cls(
            obs=FrameStacks(T, N, *frames, obs_dtype)
            if stacked and frames is not None
            else np.zeros((T + 1, N, obs_dim), obs_dtype),
            actions=np.zeros((T, N, *action_shape), action_dtype),
            rewards=np.zeros((T, N), np.float32),
            terminated=np.zeros((T, N), bool),
            truncated=np.zeros((T, N), bool),
            valid=np.zeros((T, N), bool),
            raw_obs=np.zeros((T + 1, N, obs_dim), np.float32) if keep_raw_obs else None,
            action_mask=np.ones((T + 1, N, num_actions), bool) if num_actions else None,
            state_in=np.zeros((T + 1, N, state_size), np.float32) if state_size else None,
        )

    @property
    def num_steps(self) -> int:
        return self.rewards.size


# what pads a shorter multi-agent fragment's rows: padding is never valid and cuts the GAE chain
_PAD = {"terminated": True, "action_mask": True}


def concat_rollouts(parts: list[Rollout]) -> Rollout:
    """Fragments side by side: [T1, N1] + [T2, N2] -> [max T, N1 + N2] (axis 1, the env or segment
    axis; raw_obs, action masks and the multi-agent columns too), the runners in worker-index order.
    Single-agent fragments all have the same T; a multi-agent one shorter than the longest is padded."""
    if len(parts) == 1:  # one runner (or one left): its fragment as it came
        return parts[0]
    T = max(len(p.rewards) for p in parts)

    def cat(name: str) -> np.ndarray:
        """The field `name` of every part side by side (a field each fragment has)."""
        arrays: list[np.ndarray] = [np.asarray(getattr(p, name)) for p in parts]
        rows = T + len(arrays[0]) - len(parts[0].rewards)  # T + 1 for the per-observation arrays
        padded = [
            a
            if len(a) == rows
            else np.concatenate([a, np.full((rows - len(a), *a.shape[1:]), _PAD.get(name, 0), a.dtype)])
            for a in arrays
        ]
        return np.concatenate(padded, axis=1)

    def cat_optional(name: str) -> np.ndarray | None:
        """cat(name) for a field the fragments have only sometimes (all of them or none)."""
        return None if getattr(parts[0], name) is None else cat(name)

    stacks = [p.obs for p in parts if isinstance(p.obs, FrameStacks)]
    same_length = all(len(p.rewards) == T for p in parts)
    out = Rollout(
        obs=FrameStacks.concat(stacks) if len(stacks) == len(parts) and same_length else cat("obs"),
        actions=cat("actions"),
        rewards=cat("rewards"),
        terminated=cat("terminated"),
        truncated=cat("truncated"),
        valid=cat("valid"),
        raw_obs=cat_optional("raw_obs"),
        action_mask=cat_optional("action_mask"),
        steps=cat_optional("steps"),
        behaviour_logp=cat_optional("behaviour_logp"),
        state_in=cat_optional("state_in"),
    )
    if parts[0].agent_ids is not None:  # multi-agent fragments: each says whose steps it holds
        agent_ids: list = []
        for p in parts:
            assert p.agent_ids is not None, "fragments of one group are all multi-agent or all single-agent"
            agent_ids.extend(p.agent_ids)
        out.agent_ids = agent_ids
        out.eps_ids = np.concatenate([p.eps_ids for p in parts])
        out.ends_episode = np.concatenate([p.ends_episode for p in parts])
    return out
