"""Self-play league for two-player games: the learner against a bounded league of opponents, a
ladder of fixed opponents (passed in by a subclass) and frozen snapshots of itself.

In the spirit of the seed tutorial and RLlib's self-play example: whenever the learner's score
against the current mix passes a threshold, the league grows: the next rung of the ladder joins
while the ladder lasts, alternating with a frozen copy of the learner; the oldest snapshots leave
once there are more than `max_snapshots`. Seats (the env's `possible_agents`) alternate from episode
to episode. A game's package subclasses SelfPlayLeague to set its ladder; this module names no game.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, ClassVar

from rlarena.callbacks import Callbacks
from rlarena.errors import ConfigError

LEARNED = "learned"


def league_mapping_fn(agent_id: Any, episode: Any, worker: Any = None, **kwargs: Any) -> str:
    """The learner takes seat episode_id % 2 of the env's possible_agents; the other seat goes to a
    league member, chosen from the episode id (so both seats of one episode agree without shared state)."""
    if worker is None:  # probing spaces: every seat looks alike
        return LEARNED
    seats = _seats(worker, episode)
    if seats.index(agent_id) == episode.episode_id % len(seats):
        return LEARNED
    members = sorted(p for p in worker.policies if p != LEARNED)
    return members[zlib.crc32(str(episode.episode_id).encode()) % len(members)] if members else LEARNED


def _seats(worker: Any, episode: Any) -> list[Any]:
    """The seats of the episode's env, in its order (player_0 first for Connect Four)."""
    envs = getattr(worker, "envs", None)
    seats = getattr(envs[episode.env_index], "possible_agents", None) if envs else None
    if not seats:
        raise ConfigError(
            f"league_mapping_fn reads the seats from the env runner's envs[{episode.env_index}]"
            f".possible_agents; {type(worker).__name__} has none. Use it as a multi-agent "
            f"policy_mapping_fn (the env runner passes itself as worker=)."
        )
    return list(seats)


class SelfPlayLeague(Callbacks):
    """Grows the league when the learner is good enough; logs league/* keys in every result.
    Subclass to set the ladder and change the other class attributes."""

    win_rate_threshold = 0.85  # score (wins + draws/2) against the current mix that grows the league
    max_snapshots = 4
    # rung name -> policy class, weakest first; empty: the league grows by snapshots only
    ladder: ClassVar[Mapping[str, type]] = {}

    def __init__(self) -> None:
        # opponent -> learner scores this iteration; everything else is read from the algorithm's
        # policies, so a league restored from a checkpoint carries on
        self.scores: dict[str, list[float]] = defaultdict(list)

    def on_episode_end(self, *, episode: Any, env_index: int, algorithm: Any) -> None:
        seats = episode.policy_for_agent
        learner = [a for a, p in seats.items() if p == LEARNED]
        others = [p for p in seats.values() if p != LEARNED]
        if len(learner) == 1 and others:  # a league game (not learner vs itself)
            reward = episode.agent_rewards.get(learner[0], 0.0)
            self.scores[others[0]].append(1.0 if reward > 0 else 0.5 if reward == 0 else 0.0)

    def on_train_result(self, *, algorithm: Any, result: dict[str, Any]) -> None:
        games = [s for scores in self.scores.values() for s in scores]
        score = sum(games) / len(games) if games else float("nan")
        for opponent, scores in self.scores.items():
            result[f"league/score_vs/{opponent}"] = sum(scores) / len(scores)
        self.scores.clear()
        if games and score >= self.win_rate_threshold:
            self._grow(algorithm)
        result["league/score"] = score
        result["league/size"] = len(algorithm.policies) - 1
        result["league/snapshots"] = len(self._snapshots(algorithm))

    @staticmethod
    def _snapshots(algorithm: Any) -> list[str]:
        return sorted((p for p in algorithm.policies if p.startswith("snapshot_")), key=lambda p: int(p[9:]))

    def _grow(self, algorithm: Any) -> None:
        """Alternate: the next rung of the ladder, then a snapshot of the learner, and so on."""
        ladder = list(self.ladder)
        rungs = [name for name in ladder if name in algorithm.policies]
        snapshots = self._snapshots(algorithm)
        if len(rungs) < len(ladder) and len(rungs) <= len(snapshots):
            name = ladder[len(rungs)]
            algorithm.add_policy(name, self.ladder[name], policies_to_train=[LEARNED])
            return
        algorithm.add_policy(
            f"snapshot_{algorithm.iteration}",
            policy_state=algorithm.get_policy(LEARNED).get_state(),
            policies_to_train=[LEARNED],
        )
        for old in self._snapshots(algorithm)[: -self.max_snapshots]:
            algorithm.remove_policy(old, policies_to_train=[LEARNED])
