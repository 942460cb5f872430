"""Matches between two-player Connect Four policies, made so that an evaluation cannot repeat itself:
every match starts from many distinct openings, played from both seats, and the table counts the
distinct games and gives a confidence interval for the score.

    table = evaluation_table(agent, {"negamax_3": evaluation_opponent("negamax_3", seed=0)}, 49)
    print(format_table(table))

A greedy agent against a search opponent that rarely meets an exact tie plays the same game again
and again from the empty board (issue 14: 3 distinct games in 100 against negamax depth 3), so a
score from the empty board measures one line the agent has learned, not its strength.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

from rlarena.envs.connect_four import COL_BITS, COLS, ROWS, BatchedConnectFour, has_four, observation_space
from rlarena.errors import ConfigError
from rlarena.multiagent.connect_four_opponents import OPPONENTS, NegamaxPolicy
from rlarena.policy import Policy, policy_actions

Opening = tuple[int, ...]  # the columns played from the empty board, player_0 first

EMPTY: list[Opening] = [()]  # the old evaluation: every game from the empty board
TWO_PLY: list[Opening] = list(itertools.product(range(COLS), repeat=2))  # all 49 two-ply openings
Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile


def random_openings(count: int, min_plies: int, max_plies: int, seed: int | None = 0) -> list[Opening]:
    """`count` distinct balanced openings of min_plies..max_plies random moves (plies uniform in the
    range, then uniformly random legal columns). Balanced here means: the opening does not end the
    game and neither side can win with its next move from the position it leaves (so the side to move
    neither wins at once nor must block an immediate threat). Distinct means distinct positions
    (different move orders reaching the same board count once)."""
    if count < 1 or not 0 <= min_plies <= max_plies <= 20:
        raise ConfigError(f"Random openings need count >= 1 and 0 <= min_plies <= max_plies <= 20, got {count} "
                          f"openings of {min_plies}-{max_plies} plies.")
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
        if (tuple(bits) not in seen and not has_four(bits[0]) and not has_four(bits[1])
                and not _can_win_next(bits, heights)):
            seen.add(tuple(bits))
            out.append(tuple(moves))
            if len(out) == count:
                return out
    raise ConfigError(f"Found only {len(out)} distinct balanced openings of {min_plies}-{max_plies} plies "
                      f"in {1000 * count} tries, {count} asked for; ask for fewer or longer openings.")


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


def _spread(games_per_seat: int, num_openings: int) -> np.ndarray:
    """Opening index of each of a seat's games: every opening in turn, or evenly spaced when there
    are fewer games than openings."""
    if games_per_seat >= num_openings:
        return np.arange(games_per_seat) % num_openings
    return np.arange(games_per_seat) * num_openings // games_per_seat


class MatchGames(NamedTuple):
    """The games of a match, one row per game."""

    agent_seat: np.ndarray  # int [G]: the agent's seat (0 = player_0, who moves first)
    moves: np.ndarray  # int8 [G, 42]: the columns played, opening included, then -1
    result: np.ndarray  # float [G]: the agent's reward, +1 win, 0 draw, -1 loss


def play_games(agent: Policy, opponent: Policy, games_per_seat: int, explore: bool = False,
               openings: Sequence[Sequence[int]] = TWO_PLY) -> MatchGames:
    """`agent` against `opponent`, games_per_seat games in each seat, from the openings.

    Game 2i (the agent as player_0) and game 2i + 1 (as player_1) start from openings[i mod K]
    (evenly spaced ones when games_per_seat < K), so both seats play the same openings; the policies
    move from there, all games in lockstep in one BatchedConnectFour. Both see the mover's view with
    the action mask.
    """
    if games_per_seat < 1 or not len(openings):
        raise ConfigError(f"A match needs games_per_seat >= 1 and at least one opening, got "
                          f"{games_per_seat} and {len(openings)} openings.")
    n = 2 * games_per_seat
    starts = [tuple(openings[k]) for k in _spread(games_per_seat, len(openings)) for _ in range(2)]
    games = BatchedConnectFour(n)
    obs = games.reset_to(starts)
    agent_seat = np.arange(n) % 2
    record = np.full((n, ROWS * COLS), -1, np.int8)
    for i, start in enumerate(starts):
        record[i, :len(start)] = start
    result = np.full(n, np.nan)  # the agent's reward in each slot's first game
    while np.isnan(result).any():
        playing = np.isnan(result)
        # finished slots (restarted on the empty board) are not asked: they play their first legal column
        actions = obs["action_mask"].argmax(1).astype(np.int64)
        agent_turn = games.to_play == agent_seat
        for policy, rows in ((agent, np.flatnonzero(playing & agent_turn)),
                             (opponent, np.flatnonzero(playing & ~agent_turn))):
            if len(rows):
                batch = {k: v[rows] for k, v in obs.items()}
                actions[rows] = policy_actions(policy, batch, explore, len(rows))
        rows = np.flatnonzero(playing)
        record[rows, games.moves[rows]] = actions[rows]
        obs, mover_reward, other_reward, done, info = games.step(actions)
        finished = done & playing
        agent_moved = info["mover"] == agent_seat
        result[finished] = np.where(agent_moved, mover_reward, other_reward)[finished]
    return MatchGames(agent_seat, record, result)


def summarize(games: MatchGames) -> dict[str, Any]:
    """{"games", "distinct", "win", "draw", "loss", "score", "ci"} of a match: distinct counts
    different games (the agent's seat and every move, opening included); score = (wins + draws / 2)
    / games; ci is the 95 % Wilson interval of the score (`wilson`)."""
    result, n = games.result, len(games.result)
    wins, draws, losses = int((result > 0).sum()), int((result == 0).sum()), int((result < 0).sum())
    score = (wins + draws / 2) / n
    distinct = len(np.unique(np.column_stack((games.agent_seat, games.moves)), axis=0))
    return {"games": n, "distinct": distinct, "win": wins / n, "draw": draws / n, "loss": losses / n,
            "score": score, "ci": list(wilson(score, n))}


def play_matches(agent: Policy, opponent: Policy, games_per_seat: int, explore: bool = False,
                 openings: Sequence[Sequence[int]] = TWO_PLY) -> dict[str, Any]:
    """The summary (`summarize`) of `play_games`: games, distinct games, win/draw/loss, score, 95 % CI."""
    return summarize(play_games(agent, opponent, games_per_seat, explore, openings))


def wilson(score: float, games: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval (Wilson 1927) for a mean score in [0, 1] over `games` games:
    (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n). With draws (half points) the per-game
    variance is at most p(1-p), the Bernoulli case, so the interval is conservative; unlike the normal
    interval it does not shrink to a point at a score of 0 or 1."""
    n, p = games, score
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, round(centre - half, 12)), min(1.0, round(centre + half, 12))  # 1 - 1e-16 prints as 1


def evaluation_table(agent: Policy, opponents: dict[str, Policy], games_per_seat: int,
                     openings: Sequence[Sequence[int]] = TWO_PLY) -> dict[str, dict[str, Any]]:
    """play_matches against each opponent: {name: row}. Opponents built with `evaluation_opponent`
    break ties with their own seeded generator and search every move afresh."""
    return {name: play_matches(agent, opponent, games_per_seat, openings=openings)
            for name, opponent in opponents.items()}


def format_table(table: dict[str, dict[str, Any]], targets: dict[str, float] | None = None) -> str:
    lines = [f"{'opponent':12s} {'games':>5s} {'distinct':>8s} {'win':>6s} {'draw':>6s} {'loss':>6s} {'score':>6s}"
             + ("  95% CI       target" if targets else "  95% CI")]
    for name, row in table.items():
        lo, hi = row["ci"]
        line = (f"{name:12s} {row['games']:5d} {row['distinct']:8d} {row['win']:6.3f} {row['draw']:6.3f} "
                f"{row['loss']:6.3f} {row['score']:6.3f}  {lo:.3f}-{hi:.3f}")
        if targets and name in targets:
            line += f"  >= {targets[name]:.2f} {'met' if row['score'] >= targets[name] else 'MISSED'}"
        lines.append(line)
    return "\n".join(lines)
