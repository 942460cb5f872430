"""Matches between two policies of a two-player, turn-based game, made so that an evaluation cannot
repeat itself: every match starts from many distinct openings, played from both seats, and the table
counts the distinct games and gives a confidence interval for the score.

The game comes in as a factory of batched games (`BatchedGame`: N games stepped at once, e.g.
rlarena.games.connect_four.rules.BatchedConnectFour); the seats are the game's `agents`. A game's
own openings, opponents and bindings live with the game (rlarena.games.connect_four.matches):

    table = evaluation_table(agent, {"negamax_3": opponent}, 49, openings=TWO_PLY, make_games=BatchedConnectFour)
    print(format_table(table))

A greedy agent against a search opponent that rarely meets an exact tie plays the same game again
and again from the start position (measured: 3 distinct Connect Four games in 100 against negamax
depth 3), so a score from one start position measures one line the agent has learned, not its strength.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np

from rlarena.errors import ConfigError
from rlarena.policies.policy import Policy, policy_actions

Opening = tuple[int, ...]  # the actions played from the start position, the first seat first
Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile


class BatchedGame(Protocol):
    """N games of a two-player turn-based game stepped at once, each move by that game's mover, with
    autoreset (a finished game restarts in the same step). BatchedConnectFour is one."""

    agents: tuple[str, ...]  # the seats in move order; seat i of a game is agents[i]
    max_moves: int  # the most moves a game can last
    to_play: np.ndarray  # int [N]: the seat to move in each game
    moves: np.ndarray  # int [N]: the moves played so far in each game

    def reset_to(self, openings: Sequence[Sequence[int]]) -> dict[str, np.ndarray]:
        """Restart game i from openings[i]; the movers' observations (with "action_mask")."""
        ...

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """(obs, mover_reward, other_reward, done, info with "mover": the seat that just moved)."""
        ...


GameFactory = Callable[[int], BatchedGame]  # num_games -> a BatchedGame


def _spread(games_per_seat: int, num_openings: int) -> np.ndarray:
    """Opening index of each of a seat's games: every opening in turn, or evenly spaced when there
    are fewer games than openings."""
    if games_per_seat >= num_openings:
        return np.arange(games_per_seat) % num_openings
    return np.arange(games_per_seat) * num_openings // games_per_seat


class MatchGames(NamedTuple):
    """The games of a match, one row per game."""

    agent_seat: np.ndarray  # int [G]: the agent's seat (0 = the game's first agent, who moves first)
    moves: np.ndarray  # int8 [G, max_moves]: the actions played, opening included, then -1
    result: np.ndarray  # float [G]: the agent's reward, +1 win, 0 draw, -1 loss


def play_games(
    agent: Policy,
    opponent: Policy,
    games_per_seat: int,
    *,
    openings: Sequence[Sequence[int]],
    make_games: GameFactory,
    explore: bool = False,
) -> MatchGames:
    """`agent` against `opponent`, games_per_seat games in each seat, from the openings.

    Game 2i (the agent in seat 0) and game 2i + 1 (in seat 1) start from openings[i mod K] (evenly
    spaced ones when games_per_seat < K), so both seats play the same openings; the policies move
    from there, all games in lockstep in one `make_games(2 * games_per_seat)`. Both see the mover's
    observation with the action mask.
    """
    if games_per_seat < 1 or not len(openings):
        raise ConfigError(
            f"A match needs games_per_seat >= 1 and at least one opening, got "
            f"{games_per_seat} and {len(openings)} openings."
        )
    n = 2 * games_per_seat
    starts = [tuple(openings[k]) for k in _spread(games_per_seat, len(openings)) for _ in range(2)]
    games = make_games(n)
    if len(games.agents) != 2:
        raise ConfigError(
            f"A match is between two seats; {type(games).__name__} has {len(games.agents)} "
            f"({', '.join(map(str, games.agents))})."
        )
    obs = games.reset_to(starts)
    agent_seat = np.arange(n) % 2
    record = np.full((n, games.max_moves), -1, np.int8)
    for i, start in enumerate(starts):
        record[i, : len(start)] = start
    result = np.full(n, np.nan)  # the agent's reward in each slot's first game
    while np.isnan(result).any():
        playing = np.isnan(result)
        # finished slots (restarted by autoreset) are not asked: they play their first legal action
        actions = obs["action_mask"].argmax(1).astype(np.int64)
        agent_turn = games.to_play == agent_seat
        for policy, rows in (
            (agent, np.flatnonzero(playing & agent_turn)),
            (opponent, np.flatnonzero(playing & ~agent_turn)),
        ):
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
    return {
        "games": n,
        "distinct": distinct,
        "win": wins / n,
        "draw": draws / n,
        "loss": losses / n,
        "score": score,
        "ci": list(wilson(score, n)),
    }


def play_matches(
    agent: Policy,
    opponent: Policy,
    games_per_seat: int,
    *,
    openings: Sequence[Sequence[int]],
    make_games: GameFactory,
    explore: bool = False,
) -> dict[str, Any]:
    """The summary (`summarize`) of `play_games`: games, distinct games, win/draw/loss, score, 95 % CI."""
    return summarize(
        play_games(agent, opponent, games_per_seat, openings=openings, make_games=make_games, explore=explore)
    )


def wilson(score: float, games: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval (Wilson 1927) for a mean score in [0, 1] over `games` games:
    (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n). With draws (half points) the per-game
    variance is at most p(1-p), the Bernoulli case, so the interval is conservative; unlike the normal
    interval it does not shrink to a point at a score of 0 or 1."""
    n, p = games, score
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, round(centre - half, 12)), min(1.0, round(centre + half, 12))  # 1 - 1e-16 prints as 1


def evaluation_table(
    agent: Policy,
    opponents: dict[str, Policy],
    games_per_seat: int,
    *,
    openings: Sequence[Sequence[int]],
    make_games: GameFactory,
) -> dict[str, dict[str, Any]]:
    """play_matches (greedy) against each opponent: {name: row}."""
    return {
        name: play_matches(agent, opponent, games_per_seat, openings=openings, make_games=make_games)
        for name, opponent in opponents.items()
    }


def format_table(table: dict[str, dict[str, Any]], targets: dict[str, float] | None = None) -> str:
    lines = [
        f"{'opponent':12s} {'games':>5s} {'distinct':>8s} {'win':>6s} {'draw':>6s} {'loss':>6s} {'score':>6s}"
        + ("  95% CI       target" if targets else "  95% CI")
    ]
    for name, row in table.items():
        lo, hi = row["ci"]
        line = (
            f"{name:12s} {row['games']:5d} {row['distinct']:8d} {row['win']:6.3f} {row['draw']:6.3f} "
            f"{row['loss']:6.3f} {row['score']:6.3f}  {lo:.3f}-{hi:.3f}"
        )
        if targets and name in targets:
            line += f"  >= {targets[name]:.2f} {'met' if row['score'] >= targets[name] else 'MISSED'}"
        lines.append(line)
    return "\n".join(lines)
