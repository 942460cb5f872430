"""Connect Four as a TwoPlayerGame (rlarena.games.base) for AlphaZero-style search.

A position is (cur, opp, result): the bitboards of the side to move and of the other (the layout of
rules.py and the solver: bit `col * 7 + row_from_bottom`) and the mover's result once the game is
over. `encode` gives exactly the env's observation planes ([6, 7, 2], row 0 at the top, the mover's
stones in plane 0), so a network trained here plays in the env and the env's network plays here.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from rlarena.games.base import TwoPlayerGame
from rlarena.games.connect_four.rules import (
    BOARD_MASK,
    BOTTOM,
    CELL_BITS,
    COL_BITS,
    COLS,
    COLUMN_MASKS,
    ROWS,
    has_four,
    planes_to_bitboards,
)

TOPS = tuple(1 << (c * COL_BITS + ROWS - 1) for c in range(COLS))  # the top cell of each column
_FLAT_BITS = CELL_BITS.reshape(-1)  # [42] uint64, row-major from the top row
_NO_MOVES = np.zeros(COLS, bool)


class ConnectFourGame(TwoPlayerGame):
    name = "connect_four"
    num_actions = COLS
    observation_shape = (ROWS, COLS, 2)
    # the board model: fixed tactical features (rlarena.games.connect_four.features), one ReLU trunk
    # shared by the policy and value heads (as AlphaZero's network)
    default_model: ClassVar[dict[str, Any]] = {
        "board_features": "connect_four",
        "fcnet_hiddens": [256, 256],
        "fcnet_activation": "relu",
        "vf_share_layers": True,
    }

    def initial_state(self) -> tuple[int, int, float | None]:
        return (0, 0, None)

    def legal_moves(self, state: tuple) -> np.ndarray:
        cur, opp, result = state
        if result is not None:
            return _NO_MOVES.copy()
        filled = cur | opp
        return np.array([not filled & top for top in TOPS])

    def step(self, state: tuple, action: int) -> tuple[int, int, float | None]:
        cur, opp, result = state
        filled = cur | opp
        move = (filled + BOTTOM) & COLUMN_MASKS[action]
        if result is not None or not move:
            raise ValueError(f"Illegal Connect Four move {action} (column full or game over).")
        cur |= move
        result = -1.0 if has_four(cur) else 0.0 if (filled | move) == BOARD_MASK else None
        return (opp, cur, result)

    def terminal_value(self, state: tuple) -> float | None:
        return state[2]

    def to_play(self, state: tuple) -> int:
        return (state[0] | state[1]).bit_count() % 2

    def encode(self, states: Sequence[tuple]) -> np.ndarray:
        bits = np.array([(s[0], s[1]) for s in states], np.uint64).reshape(len(states), 1, 2)
        planes = (bits & _FLAT_BITS[:, None]) != 0  # [B, 42, 2]
        return planes.astype(np.float32).reshape(len(states), ROWS, COLS, 2)

    def from_observation(self, observation: np.ndarray) -> tuple[int, int, float | None]:
        mine, theirs = planes_to_bitboards(np.asarray(observation).reshape(1, ROWS, COLS, 2))
        cur, opp = int(mine[0]), int(theirs[0])
        result = -1.0 if has_four(opp) else 0.0 if (cur | opp) == BOARD_MASK else None
        return (cur, opp, result)

    def symmetries(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The left-right mirror."""
        cols = np.arange(COLS)[::-1]
        obs_perm = ((np.arange(ROWS)[:, None, None] * COLS + cols[None, :, None]) * 2 + np.arange(2)).reshape(-1)
        return [(obs_perm, cols.copy())]

    def key(self, state: tuple) -> tuple[int, int]:
        return (state[0], state[1])

    def held_out_keys(self) -> frozenset:
        """The positions of the graded test sets (grading.DATA_FILE): never trained on."""
        return _test_set_keys()

    def render(self, state: tuple) -> str:
        cur, opp, _ = state
        me, them = ("X", "O") if self.to_play(state) == 0 else ("O", "X")
        rows = []
        for r in range(ROWS - 1, -1, -1):
            rows.append(
                "".join(
                    me if cur >> (c * COL_BITS + r) & 1 else them if opp >> (c * COL_BITS + r) & 1 else "."
                    for c in range(COLS)
                )
            )
        return "\n".join(rows)


def from_moves(moves: str) -> tuple[int, int, float | None]:
    """A position in play from a game in Pons' notation ("4453": columns 1-7)."""
    from rlarena.games.connect_four.solver import from_moves as bitboards

    cur, opp = bitboards(moves)
    return (cur, opp, 0.0 if (cur | opp) == BOARD_MASK else None)


@functools.cache
def _test_set_keys() -> frozenset:
    from rlarena.games.connect_four.grading import load_positions

    keys = set()
    for positions in load_positions().values():
        for p in positions:
            cur, opp, _ = from_moves(p.moves)
            keys.add((cur, opp))
    return frozenset(keys)
