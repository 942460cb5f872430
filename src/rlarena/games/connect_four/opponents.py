"""Connect Four opponents as rlarena Policies, for `.multi_agent(policies=...)` and evaluation.

    .multi_agent(policies={"learned": PolicySpec(), "smart": PolicySpec(policy_class=SmartHeuristic),
                           "negamax_3": PolicySpec(policy_class=NegamaxDepth3)}, ...)

Every opponent is built as `Cls(observation_space, action_space)` (optionally `seed=`) and maps the
masked observation batch {"observation": int8 [B, 6, 7, 2], "action_mask": int8 [B, 7]} to int64
columns [B]. Observations are from the mover's view, as connect_four_v3 gives them: plane 0 holds
the mover's own pieces, plane 1 the opponent's, row 0 is the top row. Only legal columns are ever
played. `explore` is ignored: the heuristics play the same way in training and evaluation, and the
random choices (tie-breaks, fallbacks) come from the policy's own generator.

The ladder, weakest first: random (rlarena's RandomPolicy), the seed tutorial's always_same, linear
and beat_last heuristics, the greedy window scorer "smart", negamax at depth 1..7. The seed's
heuristics (an RLlib Connect Four self-play tutorial: AlwaysSameHeuristic, LinearHeuristic,
BeatLastHeuristic, SmartHeuristic) kept one cursor per policy object, shared by every game in a batch;
here each choice depends only on the observation (and, for beat_last, on boards the policy has seen),
so a batch may mix games in any order. Differences are noted per class.

Plain numpy and Python ints only (no torch: the app serves them without it).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from rlarena.games.connect_four.rules import (
    BOARD_MASK,
    BOTTOM,
    COLS,
    COLUMN_MASKS,
    LINES_OF_FOUR,
    ROWS,
    planes_to_bitboards,
)
from rlarena.policies.policy import Policy
from rlarena.policies.random_policy import RandomPolicy


class ConnectFourHeuristic(Policy):
    """Base of the opponents: unpacks and checks the masked batch, holds the random generator."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, seed: int | None = None):
        super().__init__(observation_space, action_space)
        self.rng = np.random.default_rng(seed)

    def compute_actions(self, obs_batch: Any, explore: bool = True) -> np.ndarray:
        planes, mask = _unpack(obs_batch, type(self).__name__)
        return self.choose(planes, mask).astype(np.int64, copy=False)

    @abstractmethod
    def choose(self, planes: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """planes int8 [B, 6, 7, 2], mask bool [B, 7] -> columns [B]."""

    def random_legal(self, mask: np.ndarray) -> np.ndarray:
        return np.where(mask, self.rng.random(mask.shape), -1.0).argmax(-1)


def _unpack(obs_batch: Any, who: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(obs_batch, dict) or not {"observation", "action_mask"} <= set(obs_batch):
        raise ValueError(
            f"{who} plays Connect Four from masked observation batches {{'observation': int8 "
            f"[B, 6, 7, 2], 'action_mask': int8 [B, 7]}} (connect_four_v3's format), got "
            f"{type(obs_batch).__name__}."
        )
    planes, mask = np.asarray(obs_batch["observation"]), np.asarray(obs_batch["action_mask"]).astype(bool)
    if planes.shape[1:] != (ROWS, COLS, 2) or mask.shape != (len(planes), COLS):
        raise ValueError(
            f"{who} needs a batch: observation [B, 6, 7, 2] and action_mask [B, 7], got "
            f"{planes.shape} and {mask.shape}. For one observation, add a batch axis (obs[None])."
        )
    return planes, mask


# -- the seed tutorial's heuristics --------------------------------------------------------------------
class AlwaysSameHeuristic(ConnectFourHeuristic):
    """Always the same column (drawn at random per policy object), a random legal column when that
    one is full. (The seed made the fallback its new fixed column; here the fixed column stays.)"""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, seed: int | None = None):
        super().__init__(observation_space, action_space, seed)
        self.column = int(self.rng.integers(COLS))

    def choose(self, planes: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.where(mask[:, self.column], self.column, self.random_legal(mask))


class LinearHeuristic(ConnectFourHeuristic):
    """Columns left to right, cycling: its k-th move of a game (k = its pieces on the board, from 0)
    goes into column k mod 7, or the next legal column to the right of it (wrapping). (The seed
    stepped one cursor per policy object, in a random direction, jumping to a random legal column
    when blocked.)"""

    def choose(self, planes: np.ndarray, mask: np.ndarray) -> np.ndarray:
        start = planes[..., 0].sum(axis=(1, 2), dtype=np.int64) % COLS
        order = (start[:, None] + np.arange(COLS)) % COLS  # [B, 7] columns in the order tried
        first = np.take_along_axis(mask, order, axis=1).argmax(axis=1)
        return np.where(mask.any(axis=1), order[np.arange(len(order)), first], 0)


class BeatLastHeuristic(ConnectFourHeuristic):
    """Plays the column the opponent just played, when it is legal; else a random legal column.

    The opponent's last move is found by difference: it is a column whose top piece is the
    opponent's, and taking that piece off must give the board this policy left after its own previous
    move. The policy remembers those boards (a set of bitboard pairs, cleared at MEMORY entries), so
    batches may mix games in any order. A board it never left (its first move as second player, a
    game joined midway) falls back to the columns topped by an opponent's piece, one at random.
    (The seed guessed from the single observation: a random column holding more opponent pieces
    than own pieces.)"""

    MEMORY = 100_000

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, seed: int | None = None):
        super().__init__(observation_space, action_space, seed)
        self.left: set[int] = set()  # key(mine, theirs) of boards right after this policy's moves

    def choose(self, planes: np.ndarray, mask: np.ndarray) -> np.ndarray:
        mine_batch, theirs_batch = planes_to_bitboards(planes)
        out = self.random_legal(mask)
        for i, (mine, theirs) in enumerate(zip(mine_batch.tolist(), theirs_batch.tolist())):
            last = self._last_move(mine, theirs)
            if last is not None and mask[i, last]:
                out[i] = last
            col = int(out[i])
            both = mine | theirs
            if len(self.left) >= self.MEMORY:
                self.left.clear()
            self.left.add(_key(mine | ((both + (1 << (col * (ROWS + 1)))) & COLUMN_MASKS[col]), theirs))
        return out

    def _last_move(self, mine: int, theirs: int) -> int | None:
        topped = []  # columns whose top piece is the opponent's
        for col in range(COLS):
            column = (mine | theirs) & COLUMN_MASKS[col]
            if column:
                top = 1 << (column.bit_length() - 1)
                if theirs & top:
                    topped.append(col)
                    if _key(mine, theirs ^ top) in self.left:
                        return col
        return int(self.rng.choice(topped)) if topped else None


def _key(mine: int, theirs: int) -> int:
    return (theirs << 64) | mine


# -- greedy window scorer -----------------------------------------------------------------------------
WINDOWS = LINES_OF_FOUR  # [69, 4] flat cells of every line of four


class SmartHeuristic(ConnectFourHeuristic):
    """Greedy one-ply scorer, the seed's "smart" heuristic made explicit about tactics.

    For each legal column it scores the board after its move: over every line of four, +OWN[k] for a
    line holding k of its pieces and no opponent piece, -OPP[k] for a line holding k opponent pieces
    and none of its own. A four of its own (an immediate win) outweighs everything; a column where
    the opponent would make four next move (a needed block) outweighs everything else. Equal scores
    are broken at random. (The seed scored own threes, opponent threes and fours only, and had an
    off-by-two in its horizontal windows.)"""

    OWN: ClassVar[dict[int, int]] = {2: 1, 3: 10, 4: 1_000_000}  # weight of a line with k own pieces
    OPP: ClassVar[dict[int, int]] = {2: 1, 3: 100}  # weight of a line with k opponent pieces
    BLOCK = 10_000

    def choose(self, planes: np.ndarray, mask: np.ndarray) -> np.ndarray:
        b = len(planes)
        mine = planes[..., 0].reshape(b, ROWS * COLS).astype(bool)
        theirs = planes[..., 1].reshape(b, ROWS * COLS).astype(bool)
        heights = (mine | theirs).reshape(b, ROWS, COLS).sum(axis=1)  # [B, 7]
        landing = (ROWS - 1 - np.minimum(heights, ROWS - 1)) * COLS + np.arange(COLS)  # the cell each move fills
        drop = np.zeros((b, COLS, ROWS * COLS), bool)  # [B, move, cell]
        np.put_along_axis(drop, landing[:, :, None], True, axis=2)
        my_count = (mine[:, None] | drop)[..., WINDOWS].sum(-1)  # [B, move, line]
        their_count = theirs[:, WINDOWS].sum(-1)[:, None]  # [B, 1, line]
        score = sum(w * ((my_count == k) & (their_count == 0)).sum(-1) for k, w in self.OWN.items())
        score = score - sum(w * ((their_count == k) & (my_count == 0)).sum(-1) for k, w in self.OPP.items())
        their_win = ((theirs[:, None] | drop)[..., WINDOWS].sum(-1) == 4).any(-1)  # the opponent's fours
        score = score + self.BLOCK * their_win
        noise = self.rng.random(score.shape) * 0.5  # scores are integers: this only breaks ties
        return np.where(mask, score + noise, -np.inf).argmax(-1)


# -- negamax with alpha-beta on bitboards -----------------------------------------------------------------
WIN = 1_000_000  # a win with the side to move's next move at ply p (moves from the root) scores WIN - p - 1
_INF = 10**9
CENTRE_FIRST = (3, 2, 4, 1, 5, 0, 6)
_ORDERED_COLUMNS = tuple(COLUMN_MASKS[c] for c in CENTRE_FIRST)


def _cell_weights() -> list[tuple[int, int]]:
    """(weight, bitmask): each cell weighs the number of lines of four through it (3 to 13)."""
    counts = np.bincount(WINDOWS.ravel(), minlength=ROWS * COLS).reshape(ROWS, COLS)
    groups: dict[int, int] = {}
    for r in range(ROWS):
        for c in range(COLS):
            groups[int(counts[r, c])] = groups.get(int(counts[r, c]), 0) | (1 << (c * (ROWS + 1) + ROWS - 1 - r))
    return sorted(groups.items())


_CELL_WEIGHTS = _cell_weights()
THREAT_WEIGHT = 8  # per empty cell that would complete a four


def winning_cells(p: int, mask: int) -> int:
    """Bitboard of the empty cells that would give bitboard p four in a row (reachable now or later).
    Pascal Pons' compute_winning_position: for each direction, three of p's pieces around a gap."""
    r = (p << 1) & (p << 2) & (p << 3)  # vertical: three below
    for d in (ROWS + 1, ROWS, ROWS + 2):  # horizontal and the two diagonals
        t = (p << d) & (p << 2 * d)
        r |= t & (p << 3 * d)
        r |= t & (p >> d)
        t = (p >> d) & (p >> 2 * d)
        r |= t & (p << d)
        r |= t & (p >> 3 * d)
    return r & (BOARD_MASK ^ mask)


def evaluate(cur: int, opp: int, cur_threats: int, opp_threats: int) -> int:
    """Heuristic value of a quiet position for the side to move (cur): cell weights of its pieces
    minus the opponent's, plus THREAT_WEIGHT per own winning cell minus the opponent's."""
    score = 0
    for weight, cells in _CELL_WEIGHTS:
        score += weight * ((cur & cells).bit_count() - (opp & cells).bit_count())
    return score + THREAT_WEIGHT * (cur_threats.bit_count() - opp_threats.bit_count())


def negamax(cur: int, opp: int, depth: int, alpha: int, beta: int, ply: int) -> int:
    """Fail-soft alpha-beta negamax; cur and opp are the bitboards of the side to move and the other.

    A side that can win with its next move scores WIN - ply - 1 at once; facing two immediate wins of
    the opponent it scores -(WIN - ply - 2); facing one it must block (the only move searched). So a
    depth-0 leaf still sees the immediate tactics. A full board is a draw (0)."""
    mask = cur | opp
    playable = (mask + BOTTOM) & BOARD_MASK  # the lowest empty cell of every non-full column
    if not playable:
        return 0
    cur_threats = winning_cells(cur, mask)
    if cur_threats & playable:
        return WIN - ply - 1
    opp_threats = winning_cells(opp, mask)
    forced = opp_threats & playable
    if forced:
        if forced & (forced - 1):
            return -(WIN - ply - 2)
        playable = forced
    if depth == 0:
        return evaluate(cur, opp, cur_threats, opp_threats)
    best = -_INF
    for column in _ORDERED_COLUMNS:
        move = playable & column
        if move:
            value = -negamax(opp, cur | move, depth - 1, -beta, -alpha, ply + 1)
            if value > best:
                best = value
                if value > alpha:
                    alpha = value
                    if alpha >= beta:
                        break
    return best


def best_columns(cur: int, opp: int, depth: int) -> tuple[list[int], int | None]:
    """The columns of equal best value for the side to move, searching `depth` plies (its move
    included), and that value (None when the choice is forced by immediate tactics: a win, or the
    only block). Every root move is searched with the window (best - 1, +inf), so ties are exact."""
    mask = cur | opp
    playable = (mask + BOTTOM) & BOARD_MASK
    wins = winning_cells(cur, mask) & playable
    if wins:
        return [c for c in range(COLS) if wins & COLUMN_MASKS[c]], None
    forced = winning_cells(opp, mask) & playable
    candidates = [c for c in CENTRE_FIRST if (forced or playable) & COLUMN_MASKS[c]]
    if len(candidates) == 1 and forced:
        return candidates, None
    best, chosen = -_INF, []
    for col in candidates:
        move = playable & COLUMN_MASKS[col]
        value = -negamax(opp, cur | move, depth - 1, -_INF, -(best - 1), 1)
        if value > best:
            best, chosen = value, [col]
        elif value == best:
            chosen.append(col)
    return chosen, best


class NegamaxPolicy(ConnectFourHeuristic):
    """Negamax with alpha-beta to `depth` plies (1-7), on bitboards, centre-first move ordering;
    a random column among the equally valued best ones. It never misses an immediate win and always
    blocks a single immediate threat (both are decided before the search). The leaf value is
    `evaluate`: cell weights plus open winning cells. Measured per move in plain Python: depth 5 ~3 ms
    on average (at most ~11 ms), depth 7 ~20 ms (at most ~80 ms) (benchmarks/connect_four_speed.py
    --negamax)."""

    depth = 3

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        depth: int | None = None,
        seed: int | None = None,
        cache: bool = True,
    ):
        super().__init__(observation_space, action_space, seed)
        if depth is not None:
            self.depth = int(depth)
        if not 1 <= self.depth <= 7:
            raise ValueError(f"Negamax depth must be 1..7 plies, got {self.depth}.")
        # cache=False for evaluation (rlarena.games.connect_four.matches): every move is searched afresh. The
        # cache holds the tied best columns, not a chosen one, so the tie-break is random either way.
        self.cache = bool(cache)
        self._cache: dict[int, list[int]] = {}

    CACHE = 200_000  # positions whose best columns are remembered (cleared when full)

    def choose(self, planes: np.ndarray, mask: np.ndarray) -> np.ndarray:
        mine, theirs = planes_to_bitboards(planes)
        out = self.random_legal(mask)
        for i, (cur, opp) in enumerate(zip(mine.tolist(), theirs.tolist())):
            # the search is deterministic, only the tie-break is random: in self-play training the
            # same positions (openings above all) come back thousands of times, so remember them
            key = _key(cur, opp)
            best = self._cache.get(key)
            if best is None:
                best = best_columns(cur, opp, self.depth)[0]
                if self.cache:
                    if len(self._cache) >= self.CACHE:
                        self._cache.clear()
                    self._cache[key] = best
            columns = [c for c in best if mask[i, c]]
            if columns:
                out[i] = columns[0] if len(columns) == 1 else self.rng.choice(columns)
        return out


class NegamaxDepth1(NegamaxPolicy):
    depth = 1


class NegamaxDepth2(NegamaxPolicy):
    depth = 2


class NegamaxDepth3(NegamaxPolicy):
    depth = 3


class NegamaxDepth4(NegamaxPolicy):
    depth = 4


class NegamaxDepth5(NegamaxPolicy):
    depth = 5


class NegamaxDepth6(NegamaxPolicy):
    depth = 6


class NegamaxDepth7(NegamaxPolicy):
    depth = 7


_NEGAMAX = {
    cls.depth: cls
    for cls in (NegamaxDepth1, NegamaxDepth2, NegamaxDepth3, NegamaxDepth4, NegamaxDepth5, NegamaxDepth6, NegamaxDepth7)
}


def negamax_policy(depth: int) -> type[NegamaxPolicy]:
    """The policy class searching `depth` plies, for PolicySpec(policy_class=negamax_policy(5)).
    A named module-level class, so checkpoints can store it."""
    if depth not in _NEGAMAX:
        raise ValueError(f"Negamax depth must be 1..7 plies, got {depth!r}.")
    return _NEGAMAX[depth]


# the opponent ladder by name, weakest first (for evaluation tables and the command line)
OPPONENTS: dict[str, type[Policy]] = {
    "random": RandomPolicy,
    "always_same": AlwaysSameHeuristic,
    "linear": LinearHeuristic,
    "beat_last": BeatLastHeuristic,
    "smart": SmartHeuristic,
    **{f"negamax_{depth}": cls for depth, cls in _NEGAMAX.items()},
}
