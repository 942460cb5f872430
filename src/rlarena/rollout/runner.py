"""The env runner: steps a vector env with a policy and fills preallocated storage.

Hot-path rules: one policy call and one env.step per vector step, numpy row writes,
infos never parsed, episode statistics kept in two arrays.
"""

from __future__ import annotations

import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

from rlarena.errors import EnvError
from rlarena.policies.policy import Policy, Recurrent, sampling_state, set_sampling_state
from rlarena.rollout.frames import frame_stack
from rlarena.rollout.storage import Rollout, concat_rollouts

if TYPE_CHECKING:  # the trainable policies import torch
    from rlarena.policies.torch_policy import TrainablePolicy


@dataclass
class Sample:
    """What every env runner's sample() returns: the runner contract that the local runner, the
    multi-agent runner and the remote (Ray) runner groups share. Episode statistics merge: the runner
    hands over the episodes it finished and the algorithm's EpisodeStats counts them, however many
    runners there are."""

    batches: dict[str, Rollout]  # policy id -> its fragment, for the policies in training that got data
    steps: int  # env steps taken
    # finished in this fragment, in what the algorithm's stats merge(): (return, length) pairs from
    # single-agent runners, rlarena.rollout.multi_agent_episode.Episode objects from multi-agent ones
    episodes: list = field(default_factory=list)


@runtime_checkable
class Runner(Protocol):
    """What every env runner is, wherever it runs (this process, a forked sampling process, a Ray
    actor) and however many agents its env has: EnvRunner, rlarena.rollout.multi_agent_runner.MultiAgentEnvRunner,
    and rlarena.rollout.groups.OfflineRunner (which refuses to sample). Runner groups
    (rlarena.rollout.groups) are built over it."""

    @property
    def policies(self) -> dict[str, Any]:
        """{policy id: policy} it acts with (in this process, the algorithm's own policy objects)."""
        ...

    def sample(self) -> Sample:
        """One fragment: the batches per policy in training, the env steps, the finished episodes."""
        ...

    def get_state(self) -> dict[str, dict[str, np.ndarray]]:
        """{policy id: weights, filter state and exploration}: what a copy elsewhere samples with."""
        ...

    def set_state(self, state: dict[str, dict[str, np.ndarray]]) -> None:
        """Take get_state() of another runner (this process's, when this one runs elsewhere)."""
        ...

    def reset(self, seed: int | None) -> None:
        """Start fresh episodes (after a restore: env state cannot be saved), envs seeded from `seed`."""
        ...

    def close(self) -> None:
        """Close its envs."""
        ...


def merge_samples(samples: list[Sample]) -> Sample:
    """Several runners' samples as one, in the order given: each policy's fragments side by side
    (rlarena.rollout.storage.concat_rollouts), the steps summed, the episodes one after another."""
    batches: dict[str, list[Rollout]] = {}
    for sample in samples:
        for pid, batch in sample.batches.items():
            batches.setdefault(pid, []).append(batch)
    return Sample(
        {pid: concat_rollouts(parts) for pid, parts in batches.items()},
        sum(sample.steps for sample in samples),
        [e for sample in samples for e in sample.episodes],
    )


@dataclass
class EpisodeStats:
    """Completed episodes: a smoothing window (RLlib/SB3: the last 100) and this iteration's count."""

    window: deque = field(default_factory=lambda: deque(maxlen=100))  # (return, length) pairs
    this_iter: int = 0
    lifetime: int = 0
    iter_episodes: list = field(default_factory=list)  # this iteration's (return, length) pairs, for hist_stats

    def add(self, returns: np.ndarray, lengths: np.ndarray) -> None:
        self._count(list(zip(returns.tolist(), lengths.tolist())))

    def merge(self, pairs: list[tuple[float, int]]) -> None:
        """Count finished episodes, (return, length) pairs (Sample.episodes of a single-agent runner)."""
        self._count(pairs)

    def _count(self, pairs: list[tuple[float, int]]) -> None:
        self.window.extend(pairs)
        self.iter_episodes.extend(pairs)
        self.this_iter += len(pairs)
        self.lifetime += len(pairs)

    @staticmethod
    def recent(this_iter: list, window: deque) -> list:
        """hist_stats' episodes: this iteration's, or the window's latest when it holds more."""
        return this_iter if len(this_iter) >= len(window) else list(window)

    def hist_stats(self) -> dict[str, list[float]]:
        """RLlib's result["hist_stats"]: per-episode returns and lengths of this iteration's episodes,
        topped up with the latest earlier ones to the smoothing window (100), as RLlib's
        summarize_episodes does (so an iteration that ended no episode still has a history). Read it
        before metrics(), which starts the next iteration."""
        episodes = self.recent(self.iter_episodes, self.window)
        returns = [float(r) for r, _ in episodes]
        return {
            "episode_reward": returns,
            "episode_lengths": [int(n) for _, n in episodes],
            "policy_default_policy_reward": list(returns),
        }

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {"episodes_this_iter": self.this_iter, "num_episodes_lifetime": self.lifetime}
        if self.window:
            rets = np.array([r for r, _ in self.window])
            out.update(
                episode_return_mean=float(rets.mean()),
                episode_return_min=float(rets.min()),
                episode_return_max=float(rets.max()),
                episode_len_mean=float(np.mean([n for _, n in self.window])),
            )
        else:
            out.update(
                episode_return_mean=float("nan"),
                episode_return_min=float("nan"),
                episode_return_max=float("nan"),
                episode_len_mean=float("nan"),
            )
        self.this_iter = 0
        self.iter_episodes = []
        return out


def env_failed(name: str, call: str, exc: Exception) -> EnvError:
    return EnvError(f"Env {name!r} raised in {call}: {type(exc).__name__}: {exc}")


def non_finite(name: str, what: str, value: float, call: str, where: str) -> EnvError:
    """The error for a NaN/inf the env returned (`what`: 'observation' or 'reward')."""
    return EnvError(
        f"Env {name!r} returned a non-finite {what} ({float(value)}) from {call} {where}: check the "
        f"env's {call}; rlarena cannot learn from NaN/inf."
    )


def may_be_non_finite(space: gym.Space) -> bool:
    """Whether observations of `space` can hold NaN/inf: not when every part is an integer (Discrete,
    MultiDiscrete, MultiBinary, integer Boxes), so those skip the check."""
    if isinstance(space, gym.spaces.Dict | gym.spaces.Tuple):
        parts = space.spaces.values() if isinstance(space, gym.spaces.Dict) else space.spaces
        return any(may_be_non_finite(part) for part in parts)
    if isinstance(space, gym.spaces.Discrete | gym.spaces.MultiDiscrete | gym.spaces.MultiBinary):
        return False
    dtype = getattr(space, "dtype", None)
    return dtype is None or not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.bool_))


def shape_mismatch(space: gym.Space, obs: Any, where: str = "") -> tuple[str, tuple, tuple] | None:
    """(where, the shape `obs` has, the shape `space` declares) for the first part of `obs` whose shape
    is not its space's (`where`: '' or e.g. "['observation']"); None when the shapes agree."""
    if isinstance(space, gym.spaces.Dict) and isinstance(obs, dict):
        parts = [(f"{where}[{k!r}]", sub, obs[k]) for k, sub in space.spaces.items() if k in obs]
    elif isinstance(space, gym.spaces.Tuple) and isinstance(obs, tuple | list):
        parts = [(f"{where}[{k}]", sub, o) for k, (sub, o) in enumerate(zip(space.spaces, obs))]
    else:
        try:
            shape = np.shape(obs)
        except ValueError:  # ragged nested lists
            return where, ("ragged",), tuple(space.shape or ())
        return None if space.shape is None or shape == tuple(space.shape) else (where, shape, tuple(space.shape))
    return next((m for w, sub, o in parts if (m := shape_mismatch(sub, o, w)) is not None), None)


def wrong_shape(env: gym.vector.VectorEnv, name: str, call: str, exc: Exception) -> EnvError | None:
    """When `exc` is a vector env failing to batch its envs' observations (Gymnasium's concatenate:
    "Output array is the wrong shape"), the env copy whose observation does not have the space's
    shape; else None. Gymnasium's SyncVectorEnv keeps each copy's last observation (and whether it
    was just reset); only the error path looks."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not any("concatenate" in f.name and "gymnasium" in f.filename for f in frames):
        return None  # the env itself raised
    sync = env.unwrapped if isinstance(env.unwrapped, gym.vector.SyncVectorEnv) else None
    per_copy, resets = getattr(sync, "_env_obs", None), getattr(sync, "_autoreset_envs", None)
    if per_copy is None:
        return None
    space = env.single_observation_space
    for i, obs in enumerate(per_copy):
        found = None if obs is None else shape_mismatch(space, obs)
        if found is not None:
            where, got, want = found
            from_call = "reset()" if call == "reset()" or (resets is not None and resets[i]) else call
            return EnvError(
                f"Env {name!r} returned an observation{where} of shape {got} from {from_call} in env "
                f"copy {i}; its observation_space{where} has shape {want}."
            )
    return None


class EnvRunner:
    """Collects fixed-length fragments from `num_envs` copies of an env (next-step autoreset) with
    one policy, `policy_id` in the Sample's batches."""

    def __init__(
        self,
        env: gym.vector.VectorEnv,
        policy: TrainablePolicy,
        fragment_length: int,
        seed: int | None,
        env_name: str,
        policy_id: str = "default_policy",
    ):
        self.env, self.policy, self.env_name, self.policy_id = env, policy, env_name, policy_id
        self.num_envs = env.num_envs
        self.storage = Rollout.allocate(
            fragment_length,
            self.num_envs,
            policy.obs_dim,
            policy.action_shape,
            policy.action_dtype,
            keep_raw_obs=policy.obs_filter is not None,
            num_actions=policy.mask_size,
            obs_dtype=policy.obs_dtype,
            state_size=policy.state_size if isinstance(policy, Recurrent) else 0,
            frames=frame_stack(policy),
        )
        self._finished: list[tuple[float, int]] = []  # this fragment's episodes, for its Sample
        self._ep_return = np.zeros(self.num_envs, np.float64)
        self._ep_len = np.zeros(self.num_envs, np.int64)
        self._check_obs = may_be_non_finite(policy.observation_space)
        self.reset(seed)

    def reset(self, seed: int | None) -> None:
        try:
            obs, _ = self.env.reset(seed=seed)
        except Exception as exc:  # surfaced with the env's name (it re-raises)
            raise (
                wrong_shape(self.env, self.env_name, "reset()", exc) or env_failed(self.env_name, "reset()", exc)
            ) from exc
        self._obs = self.policy.flatten(obs)  # raw (unfiltered) flat observations
        if self._check_obs and not np.isfinite(self._obs).all():
            i = int(np.flatnonzero(~np.isfinite(self._obs).all(1))[0])
            raise non_finite(
                self.env_name, "observation", self._obs[i][~np.isfinite(self._obs[i])][0], "reset()", f"in env copy {i}"
            )
        self._mask = self.policy.action_mask(obs)
        self._pending_reset = np.zeros(self.num_envs, bool)
        # a recurrent policy's state per env, zero at each episode's start (Recurrent capability)
        self._state = self.policy.initial_state(self.num_envs) if isinstance(self.policy, Recurrent) else None
        self._ep_return[:] = 0
        self._ep_len[:] = 0

    @property
    def policies(self) -> dict[str, Any]:
        """{policy id: policy} it samples with (the Runner protocol's)."""
        return {self.policy_id: self.policy}

    def get_state(self) -> dict[str, dict[str, np.ndarray]]:
        """{policy id: weights, filter state and exploration}, what set_state() of a copy takes."""
        return {self.policy_id: sampling_state(self.policy)}

    def set_state(self, state: dict[str, dict[str, np.ndarray]]) -> None:
        set_sampling_state(self.policy, state[self.policy_id])

    def close(self) -> None:
        self.env.close()

    def sample(self) -> Sample:
        """Fill the storage with one fragment; its Rollout is reused: consume it before the next call."""
        buf, policy, env = self.storage, self.policy, self.env
        flatten, normalize, sample, to_env = policy.flatten, policy.normalize, policy.sample, policy.to_env_actions
        obs, mask, pending = self._obs, self._mask, self._pending_reset
        action_mask = policy.action_mask
        state = self._state  # a recurrent policy's state per env (None otherwise)
        recurrent = policy if isinstance(policy, Recurrent) else None
        reward_slot = getattr(recurrent, "reward_slot", None)
        for t in range(len(buf.rewards)):
            x = normalize(obs)
            buf.obs[t] = x
            if buf.raw_obs is not None:
                buf.raw_obs[t] = obs
            if buf.action_mask is not None:  # allocated for masked policies, whose mask is never None
                buf.action_mask[t] = mask
            if state is None or recurrent is None:
                actions = sample(x, True, mask)
            else:
                assert buf.state_in is not None
                buf.state_in[t] = state
                actions, state = recurrent.sample_recurrent(x, state, True, mask)
            buf.actions[t] = actions
            buf.valid[t] = ~pending
            try:
                next_obs, rewards, terminated, truncated, _ = env.step(to_env(actions))
            except Exception as exc:  # the env's own error, with its name (it re-raises)
                # a NaN the env returned earlier (and the policy acted on) is the likelier culprit
                raise (
                    self._non_finite(buf, t)
                    or wrong_shape(env, self.env_name, "step()", exc)
                    or env_failed(self.env_name, "step()", exc)
                ) from exc
            obs, mask = flatten(next_obs), action_mask(next_obs)
            if state is not None:
                if reward_slot is not None:  # the memory reads the previous reward (lstm_use_prev_reward)
                    state[:, reward_slot] = rewards
                if pending.any():  # this step only reset those envs: their next observation starts an episode
                    state[pending] = 0
            buf.rewards[t] = rewards
            buf.terminated[t] = terminated
            buf.truncated[t] = truncated
            pending = terminated | truncated
        buf.obs[-1] = normalize(obs)
        if state is not None:
            assert buf.state_in is not None
            buf.state_in[-1] = state
            self._state = state
        if buf.raw_obs is not None:
            buf.raw_obs[-1] = obs
        if buf.action_mask is not None:
            buf.action_mask[-1] = mask
        error = self._non_finite(buf, len(buf.rewards))  # before the filter learns from the observations
        if error is not None:
            raise error
        if buf.raw_obs is not None and policy.obs_filter is not None:  # raw observations are kept for the filter
            policy.obs_filter.update(buf.raw_obs[:-1][buf.valid])
        self._obs, self._mask, self._pending_reset = obs, mask, pending
        self._record_episodes(buf)
        finished, self._finished = self._finished, []
        return Sample({self.policy_id: buf}, buf.num_steps, finished)

    def _non_finite(self, buf: Rollout, steps: int) -> EnvError | None:
        """The first NaN/inf the env returned in the fragment's first `steps` steps, as an error naming
        the env copy and the step of its episode; None when all is finite. One vectorized test per
        fragment, not a check per step. Observation t + 1 and reward t came from step t; observation 0
        was checked already (by the previous fragment, or by reset())."""
        rewards = buf.rewards[:steps]
        obs = (buf.raw_obs if buf.raw_obs is not None else buf.obs)[1 : steps + 1] if self._check_obs else None
        obs_ok = obs is None or np.isfinite(obs).all()
        if obs_ok and np.isfinite(rewards).all():
            return None
        bad_obs = np.zeros(rewards.shape, bool) if obs is None or obs_ok else ~np.isfinite(obs).all(-1)  # [steps, N]
        t, i = np.argwhere(bad_obs | ~np.isfinite(rewards))[0]  # the earliest (time-major)
        if bad_obs[t, i]:
            assert obs is not None
            what, value = "observation", obs[t, i][~np.isfinite(obs[t, i])][0]
        else:
            what, value = "reward", rewards[t, i]
        if not buf.valid[t, i]:  # next-step autoreset: this step() call reset the copy
            return non_finite(self.env_name, what, value, "reset()", f"in env copy {i}")
        ends = np.flatnonzero(buf.terminated[:t, i] | buf.truncated[:t, i])
        # the episode's valid steps up to t: since its start in this fragment, or since before it
        before = 0 if len(ends) else int(self._ep_len[i])
        step = before + int(buf.valid[(ends[-1] + 1 if len(ends) else 0) : t + 1, i].sum())
        return non_finite(self.env_name, what, value, "step()", f"in env copy {i} at step {step} of its episode")

    def _record_episodes(self, buf: Rollout) -> None:
        """Episode returns and lengths from the whole fragment at once (not per step: with 64 envs
        some episode ends on almost every step). Each episode's return is a difference of running
        sums, plus what the episode had gathered before this fragment."""
        done = buf.terminated | buf.truncated  # [T, N]
        ret_sum = np.cumsum(buf.rewards, 0, dtype=np.float64)
        len_sum = np.cumsum(buf.valid, 0)
        t_end, env_idx = np.nonzero(done)  # sorted by time, then env
        if len(t_end):
            # the previous episode end in the same env, per env in time order
            order = np.lexsort((t_end, env_idx))
            t_sorted, e_sorted = t_end[order], env_idx[order]
            first = np.ones(len(order), bool)
            first[1:] = e_sorted[1:] != e_sorted[:-1]
            prev_t = np.where(first, -1, np.roll(t_sorted, 1))
            prev_ret = np.where(first, -self._ep_return[e_sorted], ret_sum[np.maximum(prev_t, 0), e_sorted])
            prev_len = np.where(first, -self._ep_len[e_sorted], len_sum[np.maximum(prev_t, 0), e_sorted])
            returns = np.empty(len(order))
            lengths = np.empty(len(order), np.int64)
            returns[order] = ret_sum[t_sorted, e_sorted] - prev_ret
            lengths[order] = len_sum[t_sorted, e_sorted] - prev_len
            self._finished.extend(zip(returns.tolist(), lengths.tolist()))
        # what the still-running episodes have gathered since their last end (or the fragment start)
        last_end = np.where(done.any(0), len(done) - 1 - np.argmax(done[::-1], 0), -1)
        tail_ret = ret_sum[-1] - np.where(last_end >= 0, ret_sum[np.maximum(last_end, 0), np.arange(self.num_envs)], 0)
        tail_len = len_sum[-1] - np.where(last_end >= 0, len_sum[np.maximum(last_end, 0), np.arange(self.num_envs)], 0)
        self._ep_return = np.where(last_end >= 0, tail_ret, self._ep_return + tail_ret)
        self._ep_len = np.where(last_end >= 0, tail_len, self._ep_len + tail_len)


def evaluate_episodes(
    env: gym.vector.VectorEnv, policy: Policy, num_episodes: int, explore: bool, seed: int | None, env_name: str
) -> dict[str, float]:
    """Run exactly `num_episodes` episodes, split evenly over the envs (as SB3's evaluate_policy does,
    so short episodes are not over-counted), and return their statistics."""
    return episode_summary(*play_episodes(env, policy, num_episodes, explore, seed, env_name))


def episode_summary(returns: np.ndarray, lengths: np.ndarray) -> dict[str, float]:
    """An evaluation's statistics of its episodes' returns and lengths."""
    return {
        "episode_return_mean": float(returns.mean()),
        "episode_return_std": float(returns.std()),
        "episode_return_min": float(returns.min()),
        "episode_return_max": float(returns.max()),
        "episode_len_mean": float(np.mean(lengths)),
        "episodes": len(returns),
    }


def play_episodes(
    env: gym.vector.VectorEnv, policy: Policy, num_episodes: int, explore: bool, seed: int | None, env_name: str
) -> tuple[np.ndarray, np.ndarray]:
    """(returns, lengths) of exactly `num_episodes` episodes, split evenly over the envs."""
    n = env.num_envs
    quota = np.array([(num_episodes + i) // n for i in range(n)])
    counts = np.zeros(n, np.int64)
    ep_ret, ep_len = np.zeros(n), np.zeros(n, np.int64)
    returns: list[float] = []
    lengths: list[int] = []
    try:
        obs, _ = env.reset(seed=seed)
        pending = np.zeros(n, bool)
        recurrent = policy if isinstance(policy, Recurrent) else None
        state = recurrent.initial_state(n) if recurrent is not None else None
        while (counts < quota).any():
            if state is None or recurrent is None:
                actions = policy.compute_actions(obs, explore=explore)
            else:
                actions, state = recurrent.compute_actions_with_state(obs, state, explore)
            obs, rewards, terminated, truncated, _ = env.step(actions)
            if state is not None:
                slot = getattr(recurrent, "reward_slot", None)
                if slot is not None:  # the memory reads the previous reward
                    state[:, slot] = rewards
                state[pending] = 0  # their next observation starts an episode (next-step autoreset)
            ep_ret += rewards
            ep_len += ~pending
            pending = terminated | truncated
            for i in np.flatnonzero(pending):
                if counts[i] < quota[i]:
                    returns.append(float(ep_ret[i]))
                    lengths.append(int(ep_len[i]))
                    counts[i] += 1
                ep_ret[i], ep_len[i] = 0.0, 0
    except Exception as exc:  # the env's own error, with its name (it re-raises)
        raise wrong_shape(env, env_name, "step()", exc) or env_failed(env_name, "evaluation", exc) from exc
    return np.array(returns, np.float64), np.array(lengths, np.int64)
