"""Self-play league for two-player games (Connect Four): the learner against a bounded league of
heuristic opponents, a ladder of negamax depths and frozen snapshots of itself.

In the spirit of the seed tutorial and RLlib's self-play example: whenever the learner's score
against the current mix passes a threshold, the league grows: the next negamax depth joins while
the ladder lasts, alternating with a frozen copy of the learner; the oldest snapshots leave once
there are more than `max_snapshots`. Seats alternate from episode to episode.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from typing import Any

from rlarena.callbacks import Callbacks
from rlarena.multiagent.connect_four_opponents import OPPONENTS

LEARNED = "learned"
SEATS = ("player_0", "player_1")


def league_mapping_fn(agent_id: Any, episode: Any, worker: Any = None, **kwargs: Any) -> str:
    """The learner takes seat episode_id % 2; the other seat goes to a league member, chosen from
    the episode id (so both seats of one episode agree without shared state)."""
    if worker is None:  # probing spaces: every seat looks alike
        return LEARNED
    if SEATS.index(agent_id) == episode.episode_id % 2:
        return LEARNED
    members = sorted(p for p in worker.policies if p != LEARNED)
    return members[zlib.crc32(str(episode.episode_id).encode()) % len(members)] if members else LEARNED


class SelfPlayLeague(Callbacks):
    """Grows the league when the learner is good enough; logs league/* keys in every result.
    Subclass to change the class attributes."""

    win_rate_threshold = 0.85  # score (wins + draws/2) against the current mix that grows the league
    max_snapshots = 4
    ladder = ("negamax_1", "negamax_2", "negamax_3", "negamax_4", "negamax_5")

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
        rungs = [name for name in self.ladder if name in algorithm.policies]
        snapshots = self._snapshots(algorithm)
        if len(rungs) < len(self.ladder) and len(rungs) <= len(snapshots):
            name = self.ladder[len(rungs)]
            algorithm.add_policy(name, OPPONENTS[name], policies_to_train=[LEARNED])
            return
        algorithm.add_policy(f"snapshot_{algorithm.iteration}", policy_state=algorithm.get_policy(LEARNED).get_state(),
                             policies_to_train=[LEARNED])
        for old in self._snapshots(algorithm)[:-self.max_snapshots]:
            algorithm.remove_policy(old, policies_to_train=[LEARNED])


class ConnectFourLeague(SelfPlayLeague):
    """The shipped agent's league: negamax depths 1-5 join one by one, alternating with snapshots
    (depth 6+ is too slow to sample from while training on 2 cores)."""

    ladder = ("negamax_1", "negamax_2", "negamax_3", "negamax_4", "negamax_5")
