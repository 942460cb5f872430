"""Recording what an algorithm samples (`.offline_data(output=DIR)`): each fragment's steps become
Parquet rows (rlarena.offline.io), one row per (agent) step, with RLlib's columns.

Observations are the policy's flat observations before any filter (for a Box space: the observation
itself, flattened). Actions are the env's (clipped or scaled as the env got them); action_logp is their
log-prob under the policy that sampled them, when it has one (not for DQN's epsilon-greedy policy).
A multi-agent run records the policies in training (the agents that the runner collects steps for),
one directory per policy when there are several: a link planted as one of those is refused, and each
file is renamed into place (OfflineWriter), so nothing is written through a link.
"""

from __future__ import annotations

import itertools
import secrets
from pathlib import Path
from typing import Any

import numpy as np

from rlarena.checkpoint.io import make_dir
from rlarena.errors import ConfigError, OfflineDataError
from rlarena.rollout.storage import Rollout


class Recorder:
    """One writer per recorded policy; episode ids and step counters per env copy (single-agent
    fragments carry none: episodes are tracked across fragments here)."""

    def __init__(self, directory: str | Path, policies: dict[str, Any], max_file_size: int, multi_agent: bool):
        self.directory, self.policies, self.max_file_size = Path(directory), policies, max_file_size
        self.multi_agent = multi_agent
        self.writers: dict[str, Any] = {}
        self._logp: dict[str, bool] = {}  # policy id -> whether it has log-probs
        self._ids = itertools.count((secrets.randbits(31) << 32) + 1)  # distinct across runs writing one directory
        self._eps: np.ndarray | None = None  # single-agent: each env copy's episode id and step
        self._t: np.ndarray | None = None

    def _writer(self, pid: str) -> Any:
        if pid not in self.writers:
            from rlarena.offline.io import OfflineWriter

            policy = self.policies[pid]
            root = self.directory
            if len(self.policies) > 1 and self.multi_agent:  # a directory rlarena names: never a link
                root = make_dir(self.directory / pid, f"policy {pid!r}'s recorded data", error=OfflineDataError)
            self.writers[pid] = OfflineWriter(root, policy.observation_space, policy.action_space, self.max_file_size)
        return self.writers[pid]

    def record(self, batches: dict[str, Rollout]) -> None:
        for pid, buf in batches.items():
            rows = self._ma_rows(buf) if buf.agent_ids is not None else self._single_agent_rows(buf)
            if not len(rows["rewards"]):  # a fragment of autoreset steps only (one env, one step)
                continue
            if buf.state_in is not None:  # a recurrent policy's log-probs need the whole fragment (its state)
                rows["_logp"] = _recurrent_logp(self.policies[pid], buf)[buf.valid]
            rows["actions"] = self.policies[pid].to_env_actions(rows["actions"])
            self.write(pid, rows)

    def new_episode_id(self) -> int:
        return next(self._ids)

    def write(self, pid: str, rows: dict[str, Any]) -> None:
        """Rows of policy `pid` (env actions, and "_x"/"_mask": the policy's inputs, for action_logp)."""
        self._add_logp(pid, rows)
        self._writer(pid).add(rows)

    def _single_agent_rows(self, buf: Rollout) -> dict[str, Any]:
        T, N = buf.rewards.shape
        if self._eps is None:
            self._eps = np.array([self.new_episode_id() for _ in range(N)], np.int64)
            self._t = np.zeros(N, np.int64)
        eps, t = np.zeros((T, N), np.int64), np.zeros((T, N), np.int64)
        done = buf.terminated | buf.truncated
        for step in range(T):  # T small vector ops: episode ids and counters move on at each end
            eps[step], t[step] = self._eps, self._t
            self._t += buf.valid[step]
            for i in np.flatnonzero(done[step]):
                self._eps[i], self._t[i] = self.new_episode_id(), 0
        valid = buf.valid
        obs = buf.raw_obs if buf.raw_obs is not None else buf.obs
        return {
            "eps_id": eps[valid],
            "obs": obs[:-1][valid],
            "new_obs": obs[1:][valid],
            "actions": buf.actions[valid],
            "rewards": buf.rewards[valid],
            "terminateds": buf.terminated[valid],
            "truncateds": buf.truncated[valid],
            "t": t[valid],
            "_x": buf.obs[:-1][valid],
            "_mask": _masks(buf),
            # a recurrent policy's log-probs need the whole fragment (its state): computed here, per step
        }

    def _ma_rows(self, buf: Rollout) -> dict[str, Any]:
        valid = buf.valid
        T, S = valid.shape
        last = np.zeros((T, S), bool)  # each segment's last step: its flags say how it ended
        last[valid.sum(0) - 1, np.arange(S)] = True
        ends = last & buf.ends_episode[None, :]
        obs = buf.raw_obs if buf.raw_obs is not None else buf.obs
        agents = np.empty(S, object)
        agents[:] = [str(a) for a in buf.agent_ids]
        return {
            "eps_id": np.broadcast_to(buf.eps_ids, (T, S))[valid],
            "agent_id": np.broadcast_to(agents, (T, S))[valid],
            "obs": obs[:-1][valid],
            "new_obs": obs[1:][valid],
            "actions": buf.actions[valid],
            "rewards": buf.rewards[valid],
            "terminateds": (buf.terminated & ends)[valid],
            "truncateds": (buf.truncated & ends)[valid],
            "t": buf.steps[valid],
            "_x": buf.obs[:-1][valid],
            "_mask": _masks(buf),
            # a recurrent policy's log-probs need the whole fragment (its state): computed here, per step
        }

    def _add_logp(self, pid: str, rows: dict[str, Any]) -> None:
        """action_logp of the (env) actions under the policy that chose them (before any update)."""
        x, mask, logp = rows.pop("_x"), rows.pop("_mask"), rows.pop("_logp", None)
        if logp is not None:
            rows["action_logp"] = logp.astype(np.float32)
            return
        if self._logp.get(pid) is False:
            return
        from rlarena.offline.estimators import action_logp

        try:
            rows["action_logp"] = action_logp(self.policies[pid], x, rows["actions"], mask)
            self._logp[pid] = True
        except ConfigError:  # no log-probs (DQN's epsilon-greedy policy): the column is left out
            self._logp[pid] = False

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


def _recurrent_logp(policy: Any, buf: Rollout) -> np.ndarray:
    from rlarena.rollout.async_sampling import fragment_logp

    return fragment_logp(policy, buf)


def _masks(buf: Rollout) -> np.ndarray | None:
    return None if buf.action_mask is None else buf.action_mask[:-1][buf.valid]


class EpisodeRecorder:
    """Records played episodes step by step (`rlarena rollout CKPT --output DIR`): each agent's row is
    completed when it next observes (its new_obs) or when its episode ends for it."""

    def __init__(self, directory: str | Path, policies: dict[str, Any], max_file_size: int = 64 * 2**20):
        self.recorder = Recorder(directory, policies, max_file_size, multi_agent=True)
        self._pending: dict[Any, dict[str, Any]] = {}  # agent -> its open row
        self._rows: dict[str, list[dict[str, Any]]] = {}  # policy id -> finished rows of this episode
        self._eps = 0

    def start_episode(self) -> None:
        self._eps = self.recorder.new_episode_id()
        self._pending.clear()

    def act(self, agent: Any, policy_id: str, obs: Any, action: Any, t: int) -> None:
        """`agent` (None: single-agent) chose `action` seeing `obs` at the episode's step t."""
        from rlarena.rollout.multi_agent_runner import stack_obs

        policy = self.recorder.policies[policy_id]
        flat = policy.flatten(stack_obs([obs]))[0]
        if agent in self._pending:
            self._finish(agent, flat, False, False)
        mask = policy.action_mask(stack_obs([obs]))
        self._pending[agent] = {
            "policy_id": policy_id,
            "obs": flat,
            "actions": np.asarray(action),
            "rewards": 0.0,
            "t": t,
            "mask": None if mask is None else mask[0],
        }

    @property
    def open_agents(self) -> list[Any]:
        return list(self._pending)

    def reward(self, agent: Any, reward: float) -> None:
        if agent in self._pending:
            self._pending[agent]["rewards"] += float(reward)

    def end(self, agent: Any, final_obs: Any, terminated: bool, truncated: bool) -> None:
        """The episode ended for `agent` (final_obs None: the env gave none)."""
        row = self._pending.get(agent)
        if row is None:
            return
        from rlarena.rollout.multi_agent_runner import stack_obs

        policy = self.recorder.policies[row["policy_id"]]
        flat = np.zeros_like(row["obs"]) if final_obs is None else policy.flatten(stack_obs([final_obs]))[0]
        self._finish(agent, flat, terminated, truncated)

    def end_episode(self) -> None:
        """Hand the episode's rows to the writers (an agent still open is closed as truncated)."""
        for agent in list(self._pending):  # agents the env gave no final observation
            self.end(agent, None, False, True)
        for pid, rows in self._rows.items():
            policy = self.recorder.policies[pid]
            x = np.stack([r["obs"] for r in rows])
            batch = {
                "eps_id": np.full(len(rows), self._eps, np.int64),
                "obs": x,
                "new_obs": np.stack([r["new_obs"] for r in rows]),
                "actions": np.stack([r["actions"] for r in rows]).astype(policy.action_dtype),
                "rewards": np.array([r["rewards"] for r in rows], np.float32),
                "terminateds": np.array([r["terminateds"] for r in rows]),
                "truncateds": np.array([r["truncateds"] for r in rows]),
                "t": np.array([r["t"] for r in rows], np.int64),
            }
            if rows[0]["agent"] is not None:
                agents = np.empty(len(rows), object)
                agents[:] = [str(r["agent"]) for r in rows]
                batch["agent_id"] = agents
            batch["_x"] = policy.normalize(x)
            batch["_mask"] = None if rows[0]["mask"] is None else np.stack([r["mask"] for r in rows])
            self.recorder.write(pid, batch)
        self._rows = {}

    def _finish(self, agent: Any, new_obs: np.ndarray, terminated: bool, truncated: bool) -> None:
        row = self._pending.pop(agent)
        row.update(new_obs=new_obs, terminateds=terminated, truncateds=truncated, agent=agent)
        self._rows.setdefault(row["policy_id"], []).append(row)

    def close(self) -> None:
        self.recorder.close()

    @property
    def files(self) -> list[Path]:
        return [f for w in self.recorder.writers.values() for f in w.files]
