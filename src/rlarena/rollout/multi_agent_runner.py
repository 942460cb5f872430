"""The multi-agent env runner: steps N copies of a MultiAgentEnv, maps agents to policies, batches
each policy's acting agents into one compute_actions call, and packs each trainable policy's agent
trajectories into a Rollout ([T+1, N] layout, one column per agent-episode segment).

Transitions: an agent's transition runs from an observation it acts on to the next observation it
receives; rewards that arrive in between (in a turn-based game, while the other player moves) are
added to it. A fragment emits only complete transitions: a waiting agent's last transition (its next
observation not known yet) is carried into the next fragment. A segment that the fragment cuts off
is marked truncated, so GAE bootstraps from its closing observation.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlarena.callbacks import call_hook
from rlarena.errors import ConfigError, EnvError, closest
from rlarena.policies.policy import Policy, policy_actions, row, sampling_state, set_sampling_state, stack_obs
from rlarena.policies.torch_policy import TrainablePolicy
from rlarena.rollout.multi_agent_episode import Episode
from rlarena.rollout.runner import EpisodeStats, Sample, env_failed, may_be_non_finite, non_finite, shape_mismatch
from rlarena.rollout.storage import Rollout


@dataclass
class _Lane:
    """One agent's transitions in the current episode, not yet emitted."""

    policy_id: str
    obs: list[np.ndarray] = field(default_factory=list)  # flat, before the observation filter
    masks: list[np.ndarray | None] = field(default_factory=list)  # legal actions (None: an unmasked policy)
    actions: list[Any] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)  # the episode's step count when each obs arrived
    env_index: int = 0  # where the lane's data came from, for error messages
    agent: Any = None
    episode_id: int = 0


@dataclass
class _Segment:
    lane: _Lane
    terminated: bool  # else truncated (a time limit, or the fragment's end)
    closing_obs: np.ndarray | None  # the observation after the last transition (to bootstrap from)
    closing_step: int = 0  # the episode's step count when closing_obs arrived
    closing_mask: np.ndarray | None = None  # closing_obs's legal actions, for masked policies
    ends_episode: bool = True  # False: cut by the fragment's end (the episode goes on)


@dataclass
class MultiAgentEpisodeStats(EpisodeStats):
    """Adds per-policy and per-agent returns (RLlib's policy_reward_mean) to the episode stats."""

    policy_window: dict[str, deque] = field(default_factory=lambda: defaultdict(lambda: deque(maxlen=100)))
    agent_window: dict[Any, deque] = field(default_factory=lambda: defaultdict(lambda: deque(maxlen=100)))
    # per episode: ((policy id, agent return), ...), the latest 100 and this iteration's (for hist_stats)
    policy_returns: deque = field(default_factory=lambda: deque(maxlen=100))
    iter_policy_returns: list = field(default_factory=list)

    def add_episode(self, episode: Episode) -> None:
        self.add(np.array([episode.total_reward]), np.array([episode.length]))
        by_policy = []
        for agent, ret in episode.agent_rewards.items():
            self.agent_window[agent].append(ret)
            pid = episode.policy_for_agent.get(agent)
            if pid is not None:
                self.policy_window[pid].append(ret)
                by_policy.append((pid, float(ret)))
        self.policy_returns.append((episode.total_reward, episode.length, tuple(by_policy)))
        self.iter_policy_returns.append(self.policy_returns[-1])

    def merge(self, episodes: list[Episode]) -> None:  # type: ignore[override]
        """Count finished episodes (Sample.episodes of a multi-agent runner)."""
        for episode in episodes:
            self.add_episode(episode)

    def hist_stats(self) -> dict[str, list[float]]:
        """RLlib's hist_stats: "episode_reward" and "episode_lengths" per episode, and
        "policy_<id>_reward" with one entry per agent mapped to <id> in those episodes, in episode
        order (this iteration's episodes, topped up to the latest 100 as RLlib does)."""
        episodes = self.recent(self.iter_policy_returns, self.policy_returns)
        out: dict[str, list[float]] = {
            "episode_reward": [float(r) for r, _, _ in episodes],
            "episode_lengths": [int(n) for _, n, _ in episodes],
        }
        for _, _, by_policy in episodes:
            for pid, ret in by_policy:
                out.setdefault(f"policy_{pid}_reward", []).append(ret)
        return out

    def metrics(self) -> dict[str, float]:
        out = super().metrics()
        self.iter_policy_returns = []
        out.update({f"policy_reward_mean/{pid}": float(np.mean(w)) for pid, w in self.policy_window.items() if w})
        out.update({f"agent_return_mean/{a}": float(np.mean(w)) for a, w in self.agent_window.items() if w})
        return out


def episodes_stats(episodes: list[Episode]) -> MultiAgentEpisodeStats:
    """The statistics of an evaluation's episodes, every one of them in the window."""
    stats = MultiAgentEpisodeStats()
    stats.window = deque()
    stats.merge(episodes)
    return stats


def episodes_summary(episodes: list[Episode]) -> dict[str, float]:
    """An evaluation's statistics of its episodes (the multi-agent rlarena.rollout.runner.episode_summary):
    the episodes' total returns and lengths, and the mean return per policy and per agent."""
    stats = episodes_stats(episodes)
    returns = np.array([r for r, _ in stats.window])
    out = {
        "episode_return_mean": float(returns.mean()),
        "episode_return_std": float(returns.std()),
        "episode_return_min": float(returns.min()),
        "episode_return_max": float(returns.max()),
        "episode_len_mean": float(np.mean([n for _, n in stats.window])),
        "episodes": len(returns),
    }
    out.update({k: v for k, v in stats.metrics().items() if "/" in k})
    return out


class MultiAgentEnvRunner:
    def __init__(
        self,
        envs: list,
        policies: dict[str, Policy],
        mapping_fn: Callable[..., str],
        policies_to_train: set[str],
        fragment_length: int,
        seed: int | None,
        env_name: str,
        callbacks: Any = None,
        algorithm: Any = None,
        episode_ids: Iterator[int] | None = None,
    ):
        """episode_ids: where this runner's episode ids come from (a remote runner's own range, so ids
        stay unique across runners); None: the process-wide counter."""
        self.envs, self.num_envs, self.env_name = envs, len(envs), env_name
        self._episode_ids = episode_ids
        self.policies, self.mapping_fn, self.policies_to_train = policies, mapping_fn, policies_to_train
        self.fragment_length = fragment_length
        self.callbacks, self.algorithm = callbacks, algorithm
        self._finished: list[Episode] = []  # this fragment's episodes, for its Sample
        self.reset(seed)

    # -- episodes -----------------------------------------------------------------------------
    def reset(self, seed: int | None) -> None:
        self._obs: list[dict] = [{} for _ in self.envs]
        self._episodes: list[Episode] = [self._new_episode(i) for i in range(self.num_envs)]
        self._lanes: list[dict[Any, _Lane]] = [{} for _ in self.envs]
        for i in range(self.num_envs):
            self._start_episode(i, None if seed is None else seed + i)

    def _start_episode(self, i: int, seed: int | None = None) -> None:
        try:
            obs, _ = self.envs[i].reset(seed=seed)
        except EnvError:  # already says which env and what (e.g. the old-API adapter's messages)
            raise
        except Exception as exc:  # the env's own error, with its name (it re-raises)
            raise env_failed(self.env_name, "reset()", exc) from exc
        self._obs[i], self._lanes[i] = dict(obs), {}
        self._episodes[i] = self._new_episode(i)
        if self.callbacks is not None:
            self._call_episode_hook("on_episode_start", i)

    def _new_episode(self, i: int) -> Episode:
        if self._episode_ids is None:
            return Episode(env_index=i)
        return Episode(env_index=i, episode_id=next(self._episode_ids))

    def _call_episode_hook(self, hook: str, i: int) -> None:
        call_hook(
            self.callbacks,
            hook,
            episode=self._episodes[i],
            env_index=i,
            algorithm=self.algorithm,
            worker=self,
            env_runner=self,
            env=self.envs[i],
            base_env=self.envs[i],
            policies=self.policies,
        )

    def _policy_id(self, i: int, agent: Any) -> str:
        pid = self._episodes[i].policy_for(agent, self.mapping_fn, worker=self)
        if pid not in self.policies:
            raise ConfigError(
                f"policy_mapping_fn mapped agent {agent!r} to {pid!r}, which is not a policy."
                f"{closest(str(pid), self.policies)} Policies: {', '.join(self.policies)}."
            )
        return pid

    # -- stepping -----------------------------------------------------------------------------
    def _act(self, explore: bool, collect: bool) -> list[dict]:
        """One batched compute_actions per policy over every acting agent of every env."""
        groups: dict[str, list[tuple[int, Any]]] = defaultdict(list)
        for i, obs in enumerate(self._obs):
            for agent in obs:
                groups[self._policy_id(i, agent)].append((i, agent))
        actions: list[dict] = [{} for _ in self.envs]
        for pid, members in groups.items():
            policy = self.policies[pid]
            try:
                batch = stack_obs([self._obs[i][agent] for i, agent in members])
                if isinstance(policy, TrainablePolicy):
                    flat, mask = policy.flatten(batch), policy.action_mask(batch)
                    chosen = policy.sample(policy.normalize(flat), explore, mask)
                    env_actions = policy.to_env_actions(chosen)
                else:
                    env_actions = policy_actions(policy, batch, explore, len(members))
            except ConfigError:  # the policy's own mistake (policy_actions says which)
                raise
            except Exception as exc:  # an observation of the wrong shape is the likely cause (it re-raises)
                error = self._wrong_shape(policy, members)
                if error is None:
                    raise
                raise error from exc
            if collect and pid in self.policies_to_train and isinstance(policy, TrainablePolicy):
                for k, (i, agent) in enumerate(members):
                    lane = self._lanes[i].get(agent)
                    if lane is None:
                        lane = self._lanes[i][agent] = _Lane(
                            pid, env_index=i, agent=agent, episode_id=self._episodes[i].episode_id
                        )
                    lane.obs.append(flat[k])
                    lane.masks.append(mask[k] if mask is not None else None)
                    lane.actions.append(chosen[k])
                    lane.rewards.append(0.0)
                    lane.steps.append(self._episodes[i].length)
            for k, (i, agent) in enumerate(members):
                actions[i][agent] = row(env_actions, k)  # Tuple/Dict actions: a structure of batches
        return actions

    def _wrong_shape(self, policy: Policy, members: list[tuple[int, Any]]) -> EnvError | None:
        """The first acting agent whose observation does not have its policy's observation shape."""
        for i, agent in members:
            found = shape_mismatch(policy.observation_space, self._obs[i][agent])
            if found is not None:
                where, got, want = found
                call = "reset()" if self._episodes[i].length == 0 else "step()"
                return EnvError(
                    f"Env {self.env_name!r} returned an observation{where} of shape {got} for agent "
                    f"{agent!r} from {call} in env copy {i}; its observation space{where} has shape "
                    f"{want}."
                )
        return None

    def _step(self, segments: dict[str, list[_Segment]] | None, explore: bool, on_episode_end=None) -> None:
        actions = self._act(explore, collect=segments is not None)
        for i, env in enumerate(self.envs):
            try:
                obs, rewards, terminateds, truncateds, _ = env.step(actions[i])
            except EnvError:
                raise
            except Exception as exc:  # the env's own error, with its name (it re-raises)
                raise env_failed(self.env_name, "step()", exc) from exc
            episode, lanes = self._episodes[i], self._lanes[i]
            episode.length += 1
            for agent, r in rewards.items():
                episode.agent_rewards[agent] = episode.agent_rewards.get(agent, 0.0) + float(r)
                if agent in lanes:
                    lanes[agent].rewards[-1] += float(r)
            all_terminated, all_truncated = terminateds.get("__all__", False), truncateds.get("__all__", False)
            episode_over = all_terminated or all_truncated
            done_agents = {
                a for a in (*terminateds, *truncateds) if a != "__all__" and (terminateds.get(a) or truncateds.get(a))
            }
            for agent in list(lanes):
                if episode_over or agent in done_agents:
                    lane = lanes.pop(agent)
                    terminated = bool(terminateds.get(agent, False) or (all_terminated and not truncateds.get(agent)))
                    final = obs.get(agent)
                    closing = None if final is None else self._flat_one(lane.policy_id, final)
                    if segments is not None:
                        segments[lane.policy_id].append(
                            _Segment(lane, terminated, closing, episode.length, self._mask_one(lane.policy_id, final))
                        )
            if self.callbacks is not None and self.callbacks.wants_episode_step:
                self._call_episode_hook("on_episode_step", i)
            if episode_over:
                if segments is not None:  # sampling (evaluation counts its episodes itself)
                    self._finished.append(episode)
                if on_episode_end is not None:
                    on_episode_end(episode)
                if self.callbacks is not None:
                    self._call_episode_hook("on_episode_end", i)
                self._start_episode(i)
            else:
                self._obs[i] = {a: o for a, o in obs.items() if a not in done_agents}

    def _trainable(self, pid: str) -> TrainablePolicy:
        """The policy of a lane or segment: only trainable policies' agents collect (see _act)."""
        policy = self.policies[pid]
        assert isinstance(policy, TrainablePolicy), f"policy {pid!r} collects no transitions"
        return policy

    def _flat_one(self, pid: str, obs: Any) -> np.ndarray:
        return self._trainable(pid).flatten(stack_obs([obs]))[0]

    def _mask_one(self, pid: str, obs: Any) -> np.ndarray | None:
        policy = self.policies[pid]
        if obs is None or not isinstance(policy, TrainablePolicy) or not policy.masked:
            return None
        mask = policy.action_mask(stack_obs([obs]))
        return None if mask is None else mask[0]

    # -- fragments ----------------------------------------------------------------------------
    def get_state(self) -> dict[str, dict[str, np.ndarray]]:
        """{policy id: weights and filter state} of every trainable policy (frozen ones included)."""
        return {pid: sampling_state(p) for pid, p in self.policies.items() if isinstance(p, TrainablePolicy)}

    def set_state(self, state: dict[str, dict[str, np.ndarray]]) -> None:
        for pid, policy_state in state.items():
            set_sampling_state(self.policies[pid], policy_state)

    def sample(self) -> Sample:
        """A Rollout per trainable policy that got data, the env steps taken, the finished episodes."""
        segments: dict[str, list[_Segment]] = defaultdict(list)
        for _ in range(self.fragment_length):
            self._step(segments, explore=True)
        for i, lanes in enumerate(self._lanes):
            for agent, lane in list(lanes.items()):
                pending = self._obs[i].get(agent)
                if pending is not None:  # about to act: every transition is complete
                    segments[lane.policy_id].append(
                        _Segment(
                            lane,
                            False,
                            self._flat_one(lane.policy_id, pending),
                            self._episodes[i].length,
                            self._mask_one(lane.policy_id, pending),
                            False,
                        )
                    )
                    del lanes[agent]
                elif len(lane.obs) > 1:  # waiting for its turn: carry the open transition over
                    done = _Lane(
                        lane.policy_id,
                        lane.obs[:-1],
                        lane.masks[:-1],
                        lane.actions[:-1],
                        lane.rewards[:-1],
                        lane.steps[:-1],
                        i,
                        agent,
                        lane.episode_id,
                    )
                    segments[lane.policy_id].append(
                        _Segment(done, False, lane.obs[-1], lane.steps[-1], lane.masks[-1], False)
                    )
                    lanes[agent] = _Lane(
                        lane.policy_id,
                        lane.obs[-1:],
                        lane.masks[-1:],
                        lane.actions[-1:],
                        lane.rewards[-1:],
                        lane.steps[-1:],
                        i,
                        agent,
                        lane.episode_id,
                    )
        batches = {pid: self._pack(self._trainable(pid), segs) for pid, segs in segments.items() if segs}
        finished, self._finished = self._finished, []
        return Sample(batches, self.fragment_length * self.num_envs, finished)

    def _pack(self, policy: TrainablePolicy, segments: list[_Segment]) -> Rollout:
        T, S, D = max(len(s.lane.obs) for s in segments), len(segments), policy.obs_dim
        buf = Rollout.allocate(
            T,
            S,
            D,
            policy.action_shape,
            policy.action_dtype,
            keep_raw_obs=policy.obs_filter is not None,
            num_actions=policy.mask_size,
            obs_dtype=policy.obs_dtype,
        )
        raw = np.zeros((T + 1, S, D), policy.obs_dtype)
        buf.terminated[:] = True  # padding: cut the GAE chain there (padding is never valid)
        buf.agent_ids = [s.lane.agent for s in segments]
        buf.eps_ids = np.array([s.lane.episode_id for s in segments], np.int64)
        buf.ends_episode = np.array([s.ends_episode for s in segments], bool)
        buf.steps = np.zeros((T, S), np.int64)
        for s, seg in enumerate(segments):
            n, lane = len(seg.lane.obs), seg.lane
            raw[:n, s] = lane.obs
            if seg.closing_obs is not None:
                raw[n, s] = seg.closing_obs
            buf.actions[:n, s] = lane.actions
            buf.steps[:n, s] = lane.steps
            buf.rewards[:n, s] = lane.rewards
            buf.valid[:n, s] = True
            buf.terminated[:n, s] = False
            buf.terminated[n - 1, s] = seg.terminated
            buf.truncated[n - 1, s] = not seg.terminated
            if buf.action_mask is not None:
                buf.action_mask[:n, s] = lane.masks
                if seg.closing_mask is not None:
                    buf.action_mask[n, s] = seg.closing_mask
        error = self._non_finite(policy, segments, raw, buf.rewards)  # before the filter learns from raw
        if error is not None:
            raise error
        assert isinstance(buf.obs, np.ndarray)  # allocated without frames: packed whole, not row by row
        buf.obs[:] = policy.normalize(raw.reshape(-1, D)).reshape(T + 1, S, D)
        if buf.raw_obs is not None:  # kept for the filter
            buf.raw_obs[:] = raw
        if policy.obs_filter is not None:
            policy.obs_filter.update(raw[:-1][buf.valid])
        return buf

    def _non_finite(
        self, policy: TrainablePolicy, segments: list[_Segment], raw: np.ndarray, rewards: np.ndarray
    ) -> EnvError | None:
        """The first NaN/inf the env returned into one policy's fragment ([T+1, S] observations, [T, S]
        rewards; padding is zeros), naming the env copy, the agent and the step; one vectorized test."""
        check_obs = may_be_non_finite(policy.observation_space)
        if (not check_obs or np.isfinite(raw).all()) and np.isfinite(rewards).all():
            return None
        bad_obs = ~np.isfinite(raw).all(-1) if check_obs else np.zeros(raw.shape[:2], bool)  # [T+1, S]
        bad_obs[1:] |= ~np.isfinite(rewards)  # reward t is judged with observation t + 1 (same time order)
        t, s = np.argwhere(bad_obs)[0]
        seg = segments[s]
        lane, n = seg.lane, len(seg.lane.obs)
        where = f"for agent {lane.agent!r} in env copy {lane.env_index}"
        if check_obs and not np.isfinite(raw[t, s]).all():
            value = raw[t, s][~np.isfinite(raw[t, s])][0]
            step = lane.steps[t] if t < n else seg.closing_step
            if step == 0:
                return non_finite(self.env_name, "observation", value, "reset()", where)
            return non_finite(self.env_name, "observation", value, "step()", f"{where} at step {step} of its episode")
        return non_finite(
            self.env_name,
            "reward",
            rewards[t - 1, s],
            "step()",
            f"{where} in the transition from its action at step {lane.steps[t - 1] + 1} of its episode",
        )

    def play_episodes(self, num_episodes: int, explore: bool, seed: int | None) -> list[Episode]:
        """Play exactly `num_episodes` episodes (split evenly over the env copies), collecting nothing."""
        quota = [(num_episodes + i) // self.num_envs for i in range(self.num_envs)]
        done = [0] * self.num_envs
        kept: list[Episode] = []

        def count(episode: Episode) -> None:
            if done[episode.env_index] < quota[episode.env_index]:
                done[episode.env_index] += 1
                kept.append(episode)

        self.reset(seed)
        while any(d < q for d, q in zip(done, quota)):
            self._step(None, explore, on_episode_end=count)
        return kept

    def forget_policy(self, policy_id: str) -> None:
        """After remove_policy: agents mapped to it are mapped again at their next step; its
        unfinished transitions are dropped."""
        for episode, lanes in zip(self._episodes, self._lanes):
            for agent in [a for a, pid in episode.policy_for_agent.items() if pid == policy_id]:
                del episode.policy_for_agent[agent]
                lanes.pop(agent, None)

    def close(self) -> None:
        for env in self.envs:
            env.close()
