"""The episode object handed to policy_mapping_fn and to callbacks."""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

_ids = itertools.count()


@lru_cache(maxsize=256)  # self-play callbacks make a new mapping closure per league change
def _mapping_call(mapping_fn: Callable[..., str]) -> tuple[bool, bool]:
    """(pass the episode, pass worker=): RLlib calls mapping_fn(agent_id, episode, worker=worker);
    RLlib 1.x's one-argument mapping_fn(agent_id) (the MultiAgentArena tutorial's) still works."""
    try:
        params = list(inspect.signature(mapping_fn).parameters.values())
    except (TypeError, ValueError):  # a builtin or C callable: RLlib's full call
        return True, True
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return True, True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    takes_episode = len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params)
    takes_worker = any(p.name == "worker" and p.kind is not p.POSITIONAL_ONLY for p in params)
    return takes_episode, takes_worker


def call_mapping_fn(mapping_fn: Callable[..., str], agent_id: Any, episode: Any, worker: Any) -> str:
    """mapping_fn(agent_id, episode, worker=worker), leaving out what its signature does not take."""
    try:
        takes_episode, takes_worker = _mapping_call(mapping_fn)
    except TypeError:  # an unhashable callable object: inspect it each time
        takes_episode, takes_worker = _mapping_call.__wrapped__(mapping_fn)
    args = (agent_id, episode) if takes_episode else (agent_id,)
    return mapping_fn(*args, worker=worker) if takes_worker else mapping_fn(*args)


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
        `.policies`), or None when spaces are being probed (see call_mapping_fn)."""
        pid = self.policy_for_agent.get(agent_id)
        if pid is None:
            pid = self.policy_for_agent[agent_id] = call_mapping_fn(mapping_fn, agent_id, self, worker)
        return pid

    @property
    def total_reward(self) -> float:
        return float(sum(self.agent_rewards.values()))
