"""An exact Connect Four solver in plain Python: the judge that grades policies move by move.

    cur, opp = from_moves("4453")          # columns 1-based, as Pascal Pons' test sets write games
    solve(cur, opp)                        # -> exact score for the side to move
    analyse(cur, opp)                      # -> [score or None] per column 0..6

Scores follow Pons (https://blog.gamesolver.org/solving-connect-four/02-test-protocol/): positive when
the side to move wins, `(42 + 1 - n) // 2` where n is the number of stones on the board before the
winning stone (so 22 minus the winner's stone count at the win); 0 a draw; negative when it loses,
by the same count for the opponent. A win sooner scores higher.

The method is Pons' (the blog's "Solving Connect Four" tutorial), written anew for Python ints:
- bitboards in the layout of `rlarena.games.connect_four.rules` (bit `col * 7 + row_from_bottom`, a sentinel
  bit on top of every column); the transposition-table key is `cur + mask` (unique per position);
- negamax with alpha-beta on the score, clamped by the bounds a position can still reach;
- only "non-losing" moves are searched: a single opponent threat must be blocked, two lose at once,
  and a move under an opponent's winning cell is never played ("anticipate losing moves");
- move ordering: by the number of winning cells the move leaves its player, centre first on ties
  ("move exploration order", "better move ordering");
- a transposition table of upper and lower bounds ("lower bound transposition table"), kept across searches;
- the root score by null-window searches that bisect [min, max] ("iterative deepening").
No opening book: openings are solved from scratch, which is slow in Python. About 5 us per node;
measured with a fresh table per position (benchmarks/connect_four_solver.py, 50 positions per stage,
2-core dev machine): end games (<= 14 empty) ~0.1 ms; middle games (15-28 empty) solve in 13 ms
median, 0.35 s at the 90th percentile, 3.7 s at worst (48 of 50 under 1 s); openings (29-34 empty)
0.34 s median, 14 of 50 over 1M nodes (5-10 s). Pons' C++ is about 100x faster per node.
"""

from __future__ import annotations

import operator

import numpy as np

from rlarena.games.connect_four.opponents import CENTRE_FIRST, winning_cells
from rlarena.games.connect_four.rules import (
    BOARD_MASK,
    BOTTOM,
    COL_BITS,
    COLS,
    COLUMN_MASKS,
    ROWS,
    has_four,
    planes_to_bitboards,
)

SIZE = ROWS * COLS  # 42 cells
MIN_SCORE = -(SIZE // 2) + 3  # -18: the fastest possible loss (the opponent's 4th stone)
MAX_SCORE = (SIZE + 1) // 2 - 3  # 18: the fastest possible win (one's own 4th stone)
_LOWER = 100  # a table entry >= _LOWER stores the lower bound entry - _LOWER; below it, an upper bound


def win_score(moves: int) -> int:
    """The score of the side to move when it wins with the next stone, `moves` stones being on the board."""
    return (SIZE + 1 - moves) // 2


class SearchBudgetExceeded(RuntimeError):
    """Raised when a Solver has searched `node_limit` positions (the table stays valid)."""


class Solver:
    """Holds the transposition table, so that successive solves (the columns of `analyse`, the
    positions of a test set) reuse each other's work. `table_size` caps the entries (the table is
    emptied when full: ~100 bytes an entry in a Python dict); `nodes` counts searched positions, and
    reaching `node_limit` raises SearchBudgetExceeded (to skip positions too slow to label)."""

    def __init__(self, table_size: int = 4_000_000, node_limit: int = 1 << 62):
        self.table: dict[int, int] = {}
        self.table_size = table_size
        self.nodes = 0
        self.node_limit = node_limit

    def solve(self, cur: int, opp: int) -> int:
        """The exact score of the position for the side to move (cur: its stones; opp: the other's)."""
        moves = _check(cur, opp)
        mask = cur | opp
        if moves == SIZE:
            return 0
        if winning_cells(cur, mask) & (mask + BOTTOM) & BOARD_MASK:
            return win_score(moves)
        lo, hi = -((SIZE - moves) // 2), (SIZE + 1 - moves) // 2
        while lo < hi:  # Pons: null-window probes, tried near 0 first (most positions are close)
            med = lo + (hi - lo) // 2
            if med <= 0 and _half(lo) < med:
                med = _half(lo)
            elif med >= 0 and hi // 2 > med:
                med = hi // 2
            r = self._negamax(cur, mask, moves, med, med + 1)
            if r <= med:
                hi = r
            else:
                lo = r
        return lo

    def analyse(self, cur: int, opp: int) -> list[int | None]:
        """The exact score of each column 0..6 for the side to move (None for a full column)."""
        moves = _check(cur, opp)
        mask = cur | opp
        possible = (mask + BOTTOM) & BOARD_MASK
        wins = winning_cells(cur, mask)
        out: list[int | None] = []
        for col in range(COLS):
            move = possible & COLUMN_MASKS[col]
            if not move:
                out.append(None)
            elif wins & move:
                out.append(win_score(moves))
            else:
                out.append(-self.solve(opp, cur | move))
        return out

    def _negamax(self, cur: int, mask: int, moves: int, alpha: int, beta: int) -> int:
        """Fail-soft alpha-beta on the exact score; the side to move (cur) cannot win at once.

        Returns v with: v <= alpha => score <= v; v >= beta => score >= v; else v = score."""
        self.nodes += 1
        if self.nodes >= self.node_limit:
            raise SearchBudgetExceeded(f"searched {self.nodes} positions")
        possible = (mask + BOTTOM) & BOARD_MASK
        p = cur ^ mask  # the opponent's winning cells: `winning_cells` inlined (the hottest line)
        opp_win = (p << 1) & (p << 2) & (p << 3)
        for d in _DIRECTIONS:
            t = (p << d) & (p << 2 * d)
            opp_win |= (t & (p << 3 * d)) | (t & (p >> d))
            t = (p >> d) & (p >> 2 * d)
            opp_win |= (t & (p << d)) | (t & (p >> 3 * d))
        opp_win &= BOARD_MASK ^ mask
        forced = possible & opp_win
        if forced:
            if forced & (forced - 1):  # two immediate threats: the opponent wins with its next stone
                return -((SIZE - moves) // 2)
            possible = forced
        possible &= ~(opp_win >> 1)  # never play under the opponent's winning cell
        if not possible:
            return -((SIZE - moves) // 2)
        if moves >= SIZE - 2:  # the side to move and the opponent place the last two stones: no four
            return 0
        lo = -((SIZE - 2 - moves) // 2)  # we survive the opponent's next stone, so lose later than that
        if alpha < lo:
            alpha = lo
            if alpha >= beta:
                return alpha
        hi = (SIZE - 1 - moves) // 2  # we cannot win with our next stone
        key = cur + mask
        table = self.table
        entry = table.get(key)
        if entry is not None:
            if entry >= _LOWER:
                lo = entry - _LOWER
                if alpha < lo:
                    alpha = lo
                    if alpha >= beta:
                        return alpha
            elif entry < hi:
                hi = entry
        if beta > hi:
            beta = hi
            if alpha >= beta:
                return beta
        # move ordering: most own winning cells after the move first, centre first among equals
        if possible & (possible - 1):
            ordered = []
            for col_mask in _CENTRE_FIRST_MASKS:
                move = possible & col_mask
                if move:
                    ordered.append((winning_cells(cur | move, mask).bit_count(), move))
            ordered.sort(key=_FIRST, reverse=True)  # stable: ties keep centre-first order
        else:
            ordered = [(0, possible)]
        nxt = moves + 1
        for _, move in ordered:
            new_mask = mask | move
            score = -self._negamax(cur ^ mask, new_mask, nxt, -beta, -alpha)
            if score >= beta:
                if len(table) >= self.table_size:
                    table.clear()
                table[key] = score + _LOWER
                return score
            alpha = max(alpha, score)
        if len(table) >= self.table_size:
            table.clear()
        table[key] = alpha
        return alpha


_CENTRE_FIRST_MASKS = tuple(COLUMN_MASKS[c] for c in CENTRE_FIRST)


_FIRST = operator.itemgetter(0)
_DIRECTIONS = (ROWS + 1, ROWS, ROWS + 2)  # horizontal and the diagonals (vertical is done apart)


def _half(x: int) -> int:
    """x / 2 rounded toward zero, as C++ divides (Pons' `min / 2`)."""
    return -((-x) // 2) if x < 0 else x // 2


def _check(cur: int, opp: int) -> int:
    """The number of stones, after checking the pair is a position reachable in play."""
    mask = cur | opp
    if cur & opp or mask & ~BOARD_MASK:
        raise ValueError(
            "cur and opp must be disjoint bitboards of board cells (bit col * 7 + row from "
            f"the bottom, rows 0-5), got cur={cur:#x} opp={opp:#x}."
        )
    for col in range(COLS):
        column = (mask >> (col * COL_BITS)) & ((1 << ROWS) - 1)
        if column & (column + 1):  # a hole under a stone
            raise ValueError(f"Stones must stack from the bottom of each column, got mask {mask:#x}.")
    n_cur, n_opp = cur.bit_count(), opp.bit_count()
    if n_opp not in (n_cur, n_cur + 1):
        raise ValueError(
            f"The side to move (cur) has {n_cur} stones and the other {n_opp}: in play the "
            "other has as many stones or one more. Pass the side to move first."
        )
    if has_four(cur) or has_four(opp):
        raise ValueError("The game is over: a four is already on the board.")
    return n_cur + n_opp


# -- converting positions ------------------------------------------------------------------------------
def from_moves(seq: str) -> tuple[int, int]:
    """A game as Pons' test sets write it ("4453": columns 1-7, first player first) -> (cur, opp),
    the bitboards of the side to move and of the other. Raises on a full column or a finished game."""
    cur, opp = 0, 0
    for i, ch in enumerate(seq):
        if ch not in "1234567":
            raise ValueError(f"Move {i} of {seq!r} is {ch!r}: moves are columns '1'..'7'.")
        col = int(ch) - 1
        mask = cur | opp
        move = (mask + BOTTOM) & COLUMN_MASKS[col]
        if not move:
            raise ValueError(f"Move {i} of {seq!r} plays column {ch}, which is full.")
        if has_four(opp):
            raise ValueError(f"{seq!r} goes on after the game was won (at move {i}).")
        cur, opp = opp, cur | move
    if has_four(opp):
        raise ValueError(f"{seq!r} ends with a won game: there is nothing left to solve.")
    return cur, opp


def from_planes(observation: np.ndarray) -> tuple[int, int]:
    """One observation (int8 [6, 7, 2], the mover's stones in plane 0, row 0 at the top) -> (cur, opp)."""
    mine, theirs = planes_to_bitboards(np.asarray(observation)[None])
    return int(mine[0]), int(theirs[0])


def to_planes(cur: int, opp: int) -> np.ndarray:
    """(cur, opp) -> int8 [6, 7, 2], the side to move's observation (row 0 at the top)."""
    planes = np.zeros((ROWS, COLS, 2), np.int8)
    for col in range(COLS):
        for row in range(ROWS):
            bit = 1 << (col * COL_BITS + row)
            planes[ROWS - 1 - row, col, 0] = 1 if cur & bit else 0
            planes[ROWS - 1 - row, col, 1] = 1 if opp & bit else 0
    return planes


def legal_mask(cur: int, opp: int) -> np.ndarray:
    """int8 [7]: 1 for each column that is not full."""
    top = 1 << (ROWS - 1)
    return np.array([0 if (cur | opp) & (top << (c * COL_BITS)) else 1 for c in range(COLS)], np.int8)


_DEFAULT = Solver()


def solve(cur: int, opp: int) -> int:
    """The exact score for the side to move, with a shared module-level Solver (see `Solver`)."""
    return _DEFAULT.solve(cur, opp)


def analyse(cur: int, opp: int) -> list[int | None]:
    """Each column's exact score for the side to move (None if full), with the shared Solver."""
    return _DEFAULT.analyse(cur, opp)
