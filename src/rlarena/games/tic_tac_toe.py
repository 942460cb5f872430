"""Tic-tac-toe as a TwoPlayerGame: small enough that perfect play is known exactly (`solve`), so the
tests can check that a search agent never loses from any reachable position.

A position is (mover's cells, opponent's cells, result): 9-bit masks (bit r * 3 + c) and the result
for the mover once the game is over (None before). The encoding is [3, 3, 2] planes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from rlarena.games.base import TwoPlayerGame

LINES = tuple(
    sum(1 << c for c in cells)
    for cells in ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6))
)
FULL = (1 << 9) - 1
CELL_BITS = np.array([1 << i for i in range(9)], np.int64)


def _wins(cells: int) -> bool:
    return any(cells & line == line for line in LINES)


def _square_symmetries() -> list[np.ndarray]:
    """The 7 non-identity symmetries of the 3x3 square as cell permutations (new cell -> old cell)."""
    grid = np.arange(9).reshape(3, 3)
    out = []
    for k in range(4):
        for flip in (False, True):
            g = np.rot90(grid, k)
            g = np.fliplr(g) if flip else g
            if k or flip:
                out.append(g.reshape(-1).copy())
    return out


class TicTacToe(TwoPlayerGame):
    name = "tic_tac_toe"
    num_actions = 9
    observation_shape = (3, 3, 2)
    default_model: ClassVar[dict[str, Any]] = {
        "fcnet_hiddens": [64, 64],
        "fcnet_activation": "relu",
        "vf_share_layers": True,
    }

    def initial_state(self) -> tuple[int, int, float | None]:
        return (0, 0, None)

    def legal_moves(self, state: tuple) -> np.ndarray:
        cur, opp, result = state
        if result is not None:
            return np.zeros(9, bool)
        return ((cur | opp) & CELL_BITS) == 0

    def step(self, state: tuple, action: int) -> tuple[int, int, float | None]:
        cur, opp, result = state
        bit = 1 << action
        if result is not None or (cur | opp) & bit:
            raise ValueError(f"Illegal tic-tac-toe move {action} in {self.render(state)!r}")
        cur |= bit
        result = -1.0 if _wins(cur) else 0.0 if (cur | opp) == FULL else None
        return (opp, cur, result)  # the opponent moves next

    def terminal_value(self, state: tuple) -> float | None:
        return state[2]

    def to_play(self, state: tuple) -> int:
        return (state[0] | state[1]).bit_count() % 2

    def encode(self, states: Sequence[tuple]) -> np.ndarray:
        bits = np.array([[s[0], s[1]] for s in states], np.int64).reshape(len(states), 1, 2)
        return ((bits & CELL_BITS[:, None]) != 0).astype(np.float32).reshape(len(states), 3, 3, 2)

    def from_observation(self, observation: np.ndarray) -> tuple[int, int, float | None]:
        planes = np.asarray(observation).reshape(9, 2)
        cur = int((planes[:, 0] > 0) @ CELL_BITS)
        opp = int((planes[:, 1] > 0) @ CELL_BITS)
        result = -1.0 if _wins(opp) else 0.0 if (cur | opp) == FULL else None
        return (cur, opp, result)

    def symmetries(self) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for perm in _square_symmetries():
            obs_perm = (perm[:, None] * 2 + np.arange(2)).reshape(-1)  # each cell's two planes
            # a move on old cell perm[i] becomes new cell i: p_new[i] = p_old[perm[i]]
            out.append((obs_perm, perm))
        return out

    def render(self, state: tuple) -> str:
        cur, opp, _ = state
        me, them = ("X", "O") if self.to_play(state) == 0 else ("O", "X")
        cells = [me if cur >> i & 1 else them if opp >> i & 1 else "." for i in range(9)]
        return "\n".join("".join(cells[r * 3 : r * 3 + 3]) for r in range(3))


@functools.cache
def solve(cur: int, opp: int) -> int:
    """The exact value (+1 win, 0 draw, -1 loss) for the player to move with `cur` against `opp`,
    the game not yet over."""
    free = FULL & ~(cur | opp)
    if not free:
        return 0
    best = -1
    for i in range(9):
        bit = 1 << i
        if free & bit:
            mine = cur | bit
            value = 1 if _wins(mine) else (0 if (mine | opp) == FULL else -solve(opp, mine))
            if value > best:
                best = value
                if best == 1:
                    break
    return best


def move_values(state: tuple) -> np.ndarray:
    """float [9]: the exact value of each move for the player to move (nan for illegal moves)."""
    cur, opp, _ = state
    out = np.full(9, np.nan)
    for i in range(9):
        bit = 1 << i
        if not (cur | opp) & bit:
            mine = cur | bit
            out[i] = 1 if _wins(mine) else (0 if (mine | opp) == FULL else -solve(opp, mine))
    return out
