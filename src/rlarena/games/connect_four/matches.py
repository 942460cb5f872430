"""Connect Four matches: the generic harness (rlarena.multiagent.matches) bound to BatchedConnectFour,
with Connect Four's openings and the evaluation opponents.

    table = evaluation_table(agent, {"negamax_3": evaluation_opponent("negamax_3", seed=0)}, 49)
    print(format_table(table))

Every match starts from the 49 two-ply openings (TWO_PLY) by default, or from `random_openings`;
EMPTY is the old evaluation, every game from the empty board.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from rlarena.errors import ConfigError
from rlarena.games.connect_four.opponents import OPPONENTS, NegamaxPolicy
from rlarena.games.connect_four.rules import COL_BITS, COLS, ROWS, BatchedConnectFour, has_four, observation_space
from rlarena.multiagent import matches as harness
from rlarena.multiagent.matches import Z95, MatchGames, Opening, format_table, summarize, wilson
from rlarena.policies.policy import Policy

__all__ = [
    "EMPTY",
    "TWO_PLY",
    "Z95",
    "MatchGames",
    "Opening",
    "evaluation_opponent",
    "evaluation_table",
    "format_table",
    "play_games",
    "play_matches",
    "random_openings",
    "summarize",
    "wilson",
]

EMPTY: list[Opening] = [()]  # the old evaluation: every game from the empty board
TWO_PLY: list[Opening] = list(itertools.product(range(COLS), repeat=2))  # all 49 two-ply openings


def random_openings(count: int, min_plies: int, max_plies: int, seed: int | None = 0) -> list[Opening]:
    """`count` distinct balanced openings of min_plies..max_plies random moves (plies uniform in the
    range, then uniformly random legal columns). Balanced here means: the opening does not end the
    game and neither side can win with its next move from the position it leaves (so the side to move
    neither wins at once nor must block an immediate threat). Distinct means distinct positions
    (different move orders reaching the same board count once)."""
    if count < 1 or not 0 <= min_plies <= max_plies <= 20:
        raise ConfigError(
            f"Random openings need count >= 1 and 0 <= min_plies <= max_plies <= 20, got {count} "
            f"openings of {min_plies}-{max_plies} plies."
        )
    rng = np.random.default_rng(seed)
    seen: set[tuple[int, int]] = set()
    out: list[Opening] = []
    for _ in range(1000 * count):
        moves, bits, heights = [], [0, 0], [0] * COLS
        for ply in range(int(rng.integers(min_plies, max_plies + 1))):
            col = int(rng.choice([c for c in range(COLS) if heights[c] < ROWS]))
            bits[ply % 2] |= 1 << (col * COL_BITS + heights[col])
            heights[col] += 1
            moves.append(col)
        if (
            tuple(bits) not in seen
            and not has_four(bits[0])
            and not has_four(bits[1])
            and not _can_win_next(bits, heights)
        ):
            seen.add(tuple(bits))
            out.append(tuple(moves))
            if len(out) == count:
                return out
    raise ConfigError(
        f"Found only {len(out)} distinct balanced openings of {min_plies}-{max_plies} plies "
        f"in {1000 * count} tries, {count} asked for; ask for fewer or longer openings."
    )


def _can_win_next(bits: list[int], heights: list[int]) -> bool:
    """Either side has a column that would give it four in a row now."""
    for col in range(COLS):
        if heights[col] < ROWS:
            bit = 1 << (col * COL_BITS + heights[col])
            if has_four(bits[0] | bit) or has_four(bits[1] | bit):
                return True
    return False


def evaluation_opponent(name: str, seed: int | None = 0) -> Policy:
    """A fresh opponent of the ladder for an evaluation: its own seeded generator for tie-breaks
    (reproducible, not shared with training) and, for negamax, no cache (every move searched afresh)."""
    cls = OPPONENTS[name]
    spaces = (observation_space(), gym.spaces.Discrete(COLS))
    if issubclass(cls, NegamaxPolicy):
        return cls(*spaces, seed=seed, cache=False)
    return cls(*spaces, seed=seed)  # type: ignore[call-arg]  # every ladder class takes seed=


def play_games(
    agent: Policy,
    opponent: Policy,
    games_per_seat: int,
    explore: bool = False,
    openings: Sequence[Sequence[int]] = TWO_PLY,
) -> MatchGames:
    """`agent` against `opponent` in BatchedConnectFour, games_per_seat games as player_0 and as
    player_1, from the openings (rlarena.multiagent.matches.play_games)."""
    return harness.play_games(
        agent, opponent, games_per_seat, openings=openings, make_games=BatchedConnectFour, explore=explore
    )


def play_matches(
    agent: Policy,
    opponent: Policy,
    games_per_seat: int,
    explore: bool = False,
    openings: Sequence[Sequence[int]] = TWO_PLY,
) -> dict[str, Any]:
    """The summary (`summarize`) of `play_games`: games, distinct games, win/draw/loss, score, 95 % CI."""
    return summarize(play_games(agent, opponent, games_per_seat, explore, openings))


def evaluation_table(
    agent: Policy, opponents: dict[str, Policy], games_per_seat: int, openings: Sequence[Sequence[int]] = TWO_PLY
) -> dict[str, dict[str, Any]]:
    """play_matches against each opponent: {name: row}. Opponents built with `evaluation_opponent`
    break ties with their own seeded generator and search every move afresh."""
    return harness.evaluation_table(agent, opponents, games_per_seat, openings=openings, make_games=BatchedConnectFour)
