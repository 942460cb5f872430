"""Positions for the graded test sets: sampled from games between the project's own players.

Each game pits two players drawn at random from PLAYERS (random, always_same, linear, beat_last,
smart and negamax at depths 1-5 with random tie-breaks), each making a uniformly random legal move
instead of its own with a probability drawn per game from EPSILONS, so the positions are varied.
`sample_prefixes` draws, from one game, one position per stage among those still in play.
No torch: the players are the numpy opponents of rlarena.games.connect_four.opponents.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from rlarena.games.connect_four.opponents import OPPONENTS
from rlarena.games.connect_four.rules import BOARD_MASK, BOTTOM, COLS, COLUMN_MASKS, ROWS, has_four, observation_space
from rlarena.games.connect_four.solver import legal_mask, to_planes
from rlarena.policies.policy import Policy, policy_actions

PLAYERS = ("random", "always_same", "linear", "beat_last", "smart", *(f"negamax_{d}" for d in range(1, 6)))
EPSILONS = (0.0, 0.1, 0.25)  # chance of a uniformly random move instead of the player's, per game
# empty cells left to play, per stage: the ranges, the opening cut at 34 (earlier positions
# take minutes to solve in Python without an opening book)
STAGE_EMPTY = {"end": (1, 14), "middle": (15, 28), "opening": (29, 34)}


def make_players(rng: np.random.Generator) -> dict[str, Policy]:
    obs_space, act_space = observation_space(), spaces.Discrete(COLS)
    return {name: OPPONENTS[name](obs_space, act_space, seed=int(rng.integers(2**31))) for name in PLAYERS}


def play_game(players: tuple[Policy, Policy], epsilon: float, rng: np.random.Generator) -> str:
    """One game to its end (a four or a full board); the moves in Pons' notation (columns 1-7)."""
    cur, opp, moves = 0, 0, ""
    while (cur | opp) != BOARD_MASK:
        mask = legal_mask(cur, opp)
        if rng.random() < epsilon:
            col = int(rng.choice(np.flatnonzero(mask)))
        else:
            batch = {"observation": to_planes(cur, opp)[None], "action_mask": mask[None]}
            col = int(policy_actions(players[len(moves) % 2], batch, explore=False, batch_size=1)[0])
        move = ((cur | opp) + BOTTOM) & COLUMN_MASKS[col]
        cur, opp, moves = opp, cur | move, moves + str(col + 1)
        if has_four(opp):
            break
    return moves


def random_game(players: dict[str, Policy], rng: np.random.Generator) -> str:
    """A game between two players drawn from `players`, with a random-move rate drawn from EPSILONS."""
    names = rng.choice(list(players), 2)
    return play_game((players[names[0]], players[names[1]]), float(rng.choice(EPSILONS)), rng)


def sample_prefixes(moves: str, rng: np.random.Generator) -> dict[str, str]:
    """One position per stage from a finished game (its prefixes still in play), stage -> prefix;
    a stage the game never reached in play is absent."""
    out = {}
    for stage, (lo, hi) in STAGE_EMPTY.items():
        plies = [n for n in range(len(moves)) if lo <= ROWS * COLS - n <= hi]  # moves[:n] is in play
        if plies:
            out[stage] = moves[: int(rng.choice(plies))]
    return out
