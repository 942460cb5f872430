"""The env runner: steps a vector env with a policy and fills preallocated storage.

Hot-path rules (DESIGN.md): one policy call and one env.step per vector step, numpy row writes,
infos never parsed, episode statistics kept in two arrays.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from rlarena.errors import EnvError
from rlarena.rollout.storage import Rollout


@dataclass
class EpisodeStats:
    """Completed episodes: a smoothing window (RLlib/SB3: the last 100) and this iteration's count."""

    window: deque = field(default_factory=lambda: deque(maxlen=100))  # (return, length) pairs
    this_iter: int = 0
    lifetime: int = 0

    def add(self, returns: np.ndarray, lengths: np.ndarray) -> None:
        self.window.extend(zip(returns.tolist(), lengths.tolist()))
        self.this_iter += len(returns)
        self.lifetime += len(returns)

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {"episodes_this_iter": self.this_iter, "num_episodes_lifetime": self.lifetime}
        if self.window:
            rets = np.array([r for r, _ in self.window])
            out.update(episode_return_mean=float(rets.mean()), episode_return_min=float(rets.min()),
                       episode_return_max=float(rets.max()),
                       episode_len_mean=float(np.mean([n for _, n in self.window])))
        else:
            out.update(episode_return_mean=float("nan"), episode_return_min=float("nan"),
                       episode_return_max=float("nan"), episode_len_mean=float("nan"))
        self.this_iter = 0
        return out


def env_failed(name: str, call: str, exc: Exception) -> EnvError:
    return EnvError(f"Env {name!r} raised in {call}: {type(exc).__name__}: {exc}")


class EnvRunner:
    """Collects fixed-length fragments from `num_envs` copies of an env (next-step autoreset)."""

    def __init__(self, env: gym.vector.VectorEnv, policy, fragment_length: int, seed: int | None,
                 env_name: str):
        self.env, self.policy, self.env_name = env, policy, env_name
        self.num_envs = env.num_envs
        self.storage = Rollout.allocate(fragment_length, self.num_envs, policy.obs_dim, policy.action_shape,
                                        policy.action_dtype, keep_raw_obs=policy.obs_filter is not None,
                                        num_actions=int(policy.action_space.n) if policy.masked else None)
        self.stats = EpisodeStats()
        self._ep_return = np.zeros(self.num_envs, np.float64)
        self._ep_len = np.zeros(self.num_envs, np.int64)
        self.reset(seed)

    def reset(self, seed: int | None) -> None:
        try:
            obs, _ = self.env.reset(seed=seed)
        except Exception as exc:  # noqa: BLE001 - surfaced with the env's name
            raise env_failed(self.env_name, "reset()", exc) from exc
        self._obs = self.policy.flatten(obs)  # raw (unfiltered) flat observations
        self._mask = self.policy.action_mask(obs)
        self._pending_reset = np.zeros(self.num_envs, bool)
        self._ep_return[:] = 0
        self._ep_len[:] = 0

    def sample(self) -> Rollout:
        """Fill the storage with one fragment. The storage is reused: consume it before the next call."""
        buf, policy, env = self.storage, self.policy, self.env
        flatten, normalize, sample, to_env = policy.flatten, policy.normalize, policy.sample, policy.to_env_actions
        obs, mask, pending = self._obs, self._mask, self._pending_reset
        action_mask = policy.action_mask
        for t in range(len(buf.rewards)):
            x = normalize(obs)
            buf.obs[t] = x
            if buf.raw_obs is not None:
                buf.raw_obs[t] = obs
            if mask is not None:
                buf.action_mask[t] = mask
            actions = sample(x, True, mask)
            buf.actions[t] = actions
            buf.valid[t] = ~pending
            try:
                next_obs, rewards, terminated, truncated, _ = env.step(to_env(actions))
            except Exception as exc:  # noqa: BLE001 - the env's own error, with its name
                raise env_failed(self.env_name, "step()", exc) from exc
            obs, mask = flatten(next_obs), action_mask(next_obs)
            buf.rewards[t] = rewards
            buf.terminated[t] = terminated
            buf.truncated[t] = truncated
            pending = terminated | truncated
        buf.obs[-1] = normalize(obs)
        if buf.raw_obs is not None:
            buf.raw_obs[-1] = obs
            policy.obs_filter.update(buf.raw_obs[:-1][buf.valid])
        self._obs, self._mask, self._pending_reset = obs, mask, pending
        self._record_episodes(buf)
        return buf

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
            self.stats.add(returns, lengths)
        # what the still-running episodes have gathered since their last end (or the fragment start)
        last_end = np.where(done.any(0), len(done) - 1 - np.argmax(done[::-1], 0), -1)
        tail_ret = ret_sum[-1] - np.where(last_end >= 0, ret_sum[np.maximum(last_end, 0), np.arange(self.num_envs)], 0)
        tail_len = len_sum[-1] - np.where(last_end >= 0, len_sum[np.maximum(last_end, 0), np.arange(self.num_envs)], 0)
        self._ep_return = np.where(last_end >= 0, tail_ret, self._ep_return + tail_ret)
        self._ep_len = np.where(last_end >= 0, tail_len, self._ep_len + tail_len)


def evaluate_episodes(env: gym.vector.VectorEnv, policy, num_episodes: int, explore: bool, seed: int | None,
                      env_name: str) -> dict[str, float]:
    """Run exactly `num_episodes` episodes, split evenly over the envs (as SB3's evaluate_policy does,
    so short episodes are not over-counted), and return their statistics."""
    n = env.num_envs
    quota = np.array([(num_episodes + i) // n for i in range(n)])
    counts = np.zeros(n, np.int64)
    ep_ret, ep_len = np.zeros(n), np.zeros(n, np.int64)
    returns: list[float] = []
    lengths: list[int] = []
    try:
        obs, _ = env.reset(seed=seed)
        pending = np.zeros(n, bool)
        while (counts < quota).any():
            actions = policy.compute_actions(obs, explore=explore)
            obs, rewards, terminated, truncated, _ = env.step(actions)
            ep_ret += rewards
            ep_len += ~pending
            pending = terminated | truncated
            for i in np.flatnonzero(pending):
                if counts[i] < quota[i]:
                    returns.append(float(ep_ret[i]))
                    lengths.append(int(ep_len[i]))
                    counts[i] += 1
                ep_ret[i], ep_len[i] = 0.0, 0
    except Exception as exc:  # noqa: BLE001 - the env's own error, with its name
        raise env_failed(env_name, "evaluation", exc) from exc
    r = np.array(returns)
    return {"episode_return_mean": float(r.mean()), "episode_return_std": float(r.std()),
            "episode_return_min": float(r.min()), "episode_return_max": float(r.max()),
            "episode_len_mean": float(np.mean(lengths)), "episodes": len(returns)}
