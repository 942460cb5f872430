"""The exact Connect Four solver and the grading built on it: published scores (Pons' test sets),
hand-derived positions, agreement with a plain memoized minimax on small end games, self-consistency
(a position's score is the best child's negated score), conversions, grading by hand on a tiny set,
and the stored test sets."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from rlarena.games.connect_four import grading
from rlarena.games.connect_four.grading import Position, grade, load_positions
from rlarena.games.connect_four.rules import BOARD_MASK, BOTTOM, COLUMN_MASKS, Game, has_four
from rlarena.games.connect_four.solver import (
    SearchBudgetExceeded,
    Solver,
    analyse,
    from_moves,
    from_planes,
    legal_mask,
    solve,
    to_planes,
    win_score,
)
from rlarena.policies.policy import Policy

# Lines of Pascal Pons' solver test sets (blog.gamesolver.org, part 2 "test protocol"): Test_L3_R1
# (end game, the first three lines) and Test_L1_R1 (begin, easy), game and exact score.
PUBLISHED = {
    "2252576253462244111563365343671351441": -1,
    "7422341735647741166133573473242566": 1,
    "23163416124767223154467471272416755633": 0,
    "43745416472735": -13,
    "427631264721": 10,
    "6146": 18,
    "265756512": -12,
    "65444437612": 13,
    "51756773145177": -10,
    "33375546411": -12,
    "7675456251": 13,
}


@pytest.mark.parametrize("moves,score", PUBLISHED.items())
def test_published_scores(moves: str, score: int) -> None:
    assert Solver().solve(*from_moves(moves)) == score


def test_hand_derived_scores() -> None:
    # first player stacked three in column 1: it wins with its 4th stone, at once -> 22 - 4
    assert solve(*from_moves("121212")) == 18 == win_score(6)
    # "31415": the first player holds columns 3-5 of the bottom row, both ends open (the second
    # stacked column 1); the side to move (second) blocks one end, the first player wins at the
    # other with its 4th stone -> -(22 - 4)
    assert solve(*from_moves("31415")) == -18
    # a double threat next move: after "4455" the first player plays column 3 or 6, making three in
    # the bottom row with both ends open, and wins with its 4th stone
    assert solve(*from_moves("4455")) == 18
    assert solve(*from_moves("44553")) == solve(*from_moves("44556")) == -18


def test_bad_positions_are_refused() -> None:
    with pytest.raises(ValueError, match="full"):
        from_moves("1111111")
    with pytest.raises(ValueError, match="won"):
        from_moves("1212121")
    with pytest.raises(ValueError, match="stack"):
        solve(1 << 1, 0)  # a stone floating over an empty cell
    with pytest.raises(ValueError, match="side to move"):
        solve(0b11, 0)  # cur has two stones more than opp
    with pytest.raises(ValueError, match="columns"):
        from_moves("408")


def brute(cur: int, opp: int) -> int:
    """Plain minimax over the whole remaining game (memoized, no pruning, no move filtering)."""

    @functools.cache
    def value(cur: int, opp: int) -> int:
        mask = cur | opp
        moves = mask.bit_count()
        possible = (mask + BOTTOM) & BOARD_MASK
        if not possible:
            return 0
        best = None
        for col_mask in COLUMN_MASKS:
            move = possible & col_mask
            if move:
                v = win_score(moves) if has_four(cur | move) else -value(opp, cur | move)
                best = v if best is None else max(best, v)
        return best

    return value(cur, opp)


def random_position(rng: np.random.Generator, empty: int) -> tuple[int, int] | None:
    """A random game stopped with `empty` cells left, or None when it ended before."""
    moves = ""
    cur, opp = 0, 0
    while 42 - len(moves) > empty:
        cols = np.flatnonzero(legal_mask(cur, opp))
        col = int(rng.choice(cols))
        move = ((cur | opp) + BOTTOM) & COLUMN_MASKS[col]
        cur, opp, moves = opp, cur | move, moves + str(col + 1)
        if has_four(opp):
            return None
    return cur, opp


def positions(seed: int, n: int, empties: tuple[int, ...]) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    out: list[tuple[int, int]] = []
    while len(out) < n:
        p = random_position(rng, int(rng.choice(empties)))
        if p is not None:
            out.append(p)
    return out


def test_agrees_with_brute_force_on_small_end_games() -> None:
    wins = losses = draws = 0
    for cur, opp in positions(0, 40, (6, 8, 10)):
        exact = brute(cur, opp)
        assert Solver().solve(cur, opp) == exact
        scores = Solver().analyse(cur, opp)
        mask = cur | opp
        for col, col_mask in enumerate(COLUMN_MASKS):
            move = (mask + BOTTOM) & col_mask
            if not move:
                assert scores[col] is None
            elif has_four(cur | move):
                assert scores[col] == win_score(mask.bit_count())
            else:
                assert scores[col] == -brute(opp, cur | move)
        wins, losses, draws = wins + (exact > 0), losses + (exact < 0), draws + (exact == 0)
    assert wins and losses and draws  # the sample covers all three outcomes


def test_score_is_the_best_childs_negated_score() -> None:
    # random-play positions and played end games from the stored set (harder: the players are tactical)
    stored = [from_moves(p.moves) for p in load_positions()["end"][:40]]
    for cur, opp in positions(1, 30, (12, 14, 16, 18)) + stored:
        scores = Solver().analyse(cur, opp)
        assert Solver().solve(cur, opp) == max(s for s in scores if s is not None)


def test_node_budget() -> None:
    solver = Solver(node_limit=10)
    with pytest.raises(SearchBudgetExceeded):
        solver.solve(*from_moves("335662333565"))


def test_planes_round_trip_with_the_game() -> None:
    game = Game()
    moves = "4453621711"
    for i, ch in enumerate(moves):
        game.play(int(ch) - 1, i % 2)
    cur, opp = from_moves(moves)
    seat = len(moves) % 2  # the side to move
    np.testing.assert_array_equal(to_planes(cur, opp), game.planes(seat))
    assert from_planes(game.planes(seat)) == (cur, opp)
    np.testing.assert_array_equal(legal_mask(cur, opp), game.legal_mask())


class Fixed(Policy):
    """Always the given column (legal or not)."""

    def __init__(self, col: int):
        super().__init__(None, None)  # type: ignore[arg-type]
        self.col = col

    def compute_actions(self, obs_batch, explore=True):
        return np.full(len(obs_batch["observation"]), self.col)


class Oracle(Policy):
    """The first best column of each position, read from the scores (batch order = positions)."""

    def __init__(self, positions: list[Position]):
        super().__init__(None, None)  # type: ignore[arg-type]
        self.positions = positions

    def compute_actions(self, obs_batch, explore=True):
        for p, planes in zip(self.positions, obs_batch["observation"]):
            assert from_planes(planes) == from_moves(p.moves)  # the policy sees the position's planes
        return np.array([p.scores.index(p.best) for p in self.positions])


def test_grade_by_hand() -> None:
    # the three Test_L3_R1 lines above; their column scores (None: full), checked against the solver
    win = Position("7422341735647741166133573473242566", (-3, 1, None, None, -4, 1, None))
    loss = Position("2252576253462244111563365343671351441", (None, None, None, None, None, -1, -2))
    draw = Position("23163416124767223154467471272416755633", (None, None, 0, None, -2, None, None))
    tiny = [win, loss, draw]
    for p in tiny:
        assert tuple(analyse(*from_moves(p.moves))) == p.scores
    # column 1: optimal in `win`, illegal (neither) in the other two
    assert grade(Fixed(1), tiny) == {"outcome_kept": 1 / 3, "optimal_move": 1 / 3, "n": 3}
    # column 6: illegal in `win` and `draw`; in `loss` it keeps the (lost) outcome, not the slowest loss
    assert grade(Fixed(6), tiny) == {"outcome_kept": 1 / 3, "optimal_move": 0.0, "n": 3}
    # column 4: turns the win into a loss and the draw into a loss
    assert grade(Fixed(4), tiny) == {"outcome_kept": 0.0, "optimal_move": 0.0, "n": 3}
    # column 5: optimal in `win` and `loss`, illegal in `draw`
    assert grade(Fixed(5), tiny) == {"outcome_kept": 2 / 3, "optimal_move": 2 / 3, "n": 3}
    assert grade(Oracle(tiny), tiny) == {"outcome_kept": 1.0, "optimal_move": 1.0, "n": 3}
    with pytest.raises(ValueError, match="at least one"):
        grade(Fixed(0), [])


def test_stored_test_sets() -> None:
    sets = load_positions()
    assert set(sets) == set(grading.STAGES)
    ranges = {"end": (1, 14), "middle": (15, 28), "opening": (29, 41)}
    for stage, stage_positions in sets.items():
        assert len(stage_positions) >= 50, stage
        keys = set()
        for p in stage_positions:
            lo, hi = ranges[stage]
            assert lo <= p.empty <= hi, (stage, p.moves)
            cur, opp = from_moves(p.moves)
            keys.add(cur + (cur | opp))
            assert [s is not None for s in p.scores] == legal_mask(cur, opp).astype(bool).tolist()
            assert len({s for s in p.scores if s is not None}) >= 2  # the choice matters
        assert len(keys) == len(stage_positions)  # deduplicated
    # the stored labels are the solver's (a sample: end and middle positions solve fast)
    solver = Solver()
    for p in sets["end"][:20] + sets["middle"][:5]:
        assert tuple(solver.analyse(*from_moves(p.moves))) == p.scores
