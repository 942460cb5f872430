"""The episode object handed to policy_mapping_fn and to callbacks."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_ids = itertools.count()


@dataclass
class Episode:
    """One episode of one env copy. `user_data` is free for callbacks (RLlib's habit)."""

    env_index: int
    episode_id: int = field(default_factory=lambda: next(_ids))
    length: int = 0  # env steps so far
    agent_rewards: dict[Any, float] = field(default_factory=dict)  # agent id -> return so far
    policy_for_agent: dict[Any, str] = field(default_factory=dict)  # fixed for the episode
    user_data: dict[str, Any] = field(default_factory=dict)

    def policy_for(self, agent_id: Any, mapping_fn: Callable[..., str], worker: Any = None) -> str:
        """The agent's policy id; the mapping function is asked once per agent and episode, as
        mapping_fn(agent_id, episode, worker=...) where worker is the env runner (it holds
        `.policies`), or None when spaces are being probed."""
        pid = self.policy_for_agent.get(agent_id)
        if pid is None:
            pid = self.policy_for_agent[agent_id] = mapping_fn(agent_id, self, worker=worker)
        return pid

    @property
    def total_reward(self) -> float:
        return float(sum(self.agent_rewards.values()))
