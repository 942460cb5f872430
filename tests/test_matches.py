"""The match harness cannot be memorized: games start from many openings in both seats, opponents
break ties with their own seeded generator, the table counts distinct games and gives a Wilson
interval; `rlarena arena` prints it, and the solver grades beside it."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rlarena
from rlarena import Algorithm
from rlarena.errors import EnvError
from rlarena.games.connect_four.matches import (
    EMPTY,
    evaluation_opponent,
    play_games,
    play_matches,
    random_openings,
    summarize,
    wilson,
)
from rlarena.games.connect_four.rules import BatchedConnectFour, Game

SHIPPED = Path(rlarena.__file__).parent / "games" / "connect_four" / "agent"  # `rlarena arena`'s default checkpoint


def replay(moves):
    """Plays recorded columns (then -1s) in a single Game: player_0's result (+1, 0, -1), or None
    when the moves do not end the game."""
    game = Game()
    for ply, col in enumerate(c for c in moves if c >= 0):
        assert game.legal(int(col))
        if game.play(int(col), ply % 2):
            return 1.0 if ply % 2 == 0 else -1.0
    return 0.0 if game.full() else None


def test_reset_to_equals_playing_the_opening_moves():
    openings = [(3, 3, 2), (), (0, 6, 0, 6)]
    games = BatchedConnectFour(3)
    obs = games.reset_to(openings)
    for i, opening in enumerate(openings):  # each opening stepped move by move in a game of its own
        single = BatchedConnectFour(1)
        expected = single.reset()
        for col in opening:
            expected, *_ = single.step(np.array([col]))
        for k in obs:
            np.testing.assert_array_equal(obs[k][i], expected[k][0])
        np.testing.assert_array_equal(games.board[i], single.board[0])
        np.testing.assert_array_equal(games.bits[i], single.bits[0])
    np.testing.assert_array_equal(games.to_play, [1, 0, 0])
    np.testing.assert_array_equal(games.moves, [3, 0, 4])
    assert games.board[0, 5, 3] == 1 and games.board[0, 4, 3] == 2 and games.board[0, 5, 2] == 1


def test_reset_to_refuses_bad_openings_in_one_line():
    with pytest.raises(EnvError, match="legal column") as bad:
        BatchedConnectFour(1).reset_to([(0,) * 7])
    assert "\n" not in str(bad.value)
    with pytest.raises(EnvError, match="ends the game"):
        BatchedConnectFour(1).reset_to([(0, 1, 0, 1, 0, 1, 0)])
    with pytest.raises(EnvError, match="one opening per game"):
        BatchedConnectFour(2).reset_to([()])


def test_every_two_ply_opening_is_played_from_both_seats_and_the_records_are_real_games():
    games = play_games(evaluation_opponent("linear"), evaluation_opponent("smart", seed=3), 49)
    starts = {(int(seat), int(a), int(b)) for seat, (a, b) in zip(games.agent_seat, games.moves[:, :2])}
    assert len(games.result) == 98 and starts == {(s, a, b) for s in (0, 1) for a in range(7) for b in range(7)}
    for seat, moves, result in zip(games.agent_seat, games.moves, games.result):
        first_seat_result = replay(moves)
        assert first_seat_result is not None and result == (first_seat_result if seat == 0 else -first_seat_result)


def test_fewer_games_than_openings_spread_over_them():
    games = play_games(evaluation_opponent("random"), evaluation_opponent("random"), 7)
    assert sorted(set(games.moves[:, 0].tolist())) == list(range(7))  # every first move, not just column 0


def test_a_deterministic_agent_repeats_itself_from_the_empty_board_but_not_from_the_openings():
    agent = evaluation_opponent("linear")  # deterministic: no random choice while its column is free
    old = summarize(play_games(agent, evaluation_opponent("negamax_3"), 49, openings=EMPTY))
    new = summarize(play_games(agent, evaluation_opponent("negamax_3"), 49))
    assert old["games"] == new["games"] == 98
    assert old["distinct"] <= 4 and new["distinct"] >= 49


def test_random_openings_are_distinct_balanced_and_seeded():
    openings = random_openings(60, 2, 6, seed=5)
    assert openings == random_openings(60, 2, 6, seed=5) != random_openings(60, 2, 6, seed=6)
    assert all(2 <= len(o) <= 6 for o in openings) and {len(o) for o in openings} == {2, 3, 4, 5, 6}
    boards = set()
    for opening in openings:
        game = Game()
        for ply, col in enumerate(opening):
            assert not game.play(col, ply % 2)
        boards.add(game.board.tobytes())
        for col in range(7):  # no immediate win for either side
            for seat in (0, 1):
                trial = Game()
                for ply, c in enumerate(opening):
                    trial.play(c, ply % 2)
                assert not trial.play(col, seat)
    assert len(boards) == 60
    summary = play_matches(evaluation_opponent("smart"), evaluation_opponent("random"), 60, openings=openings)
    assert summary["distinct"] == 120


def test_opponents_break_ties_with_their_own_seeded_generator_and_cache_nothing():
    def games(seed):
        return play_games(evaluation_opponent("linear"), evaluation_opponent("negamax_1", seed), 10, openings=EMPTY)

    first = games(0)
    np.testing.assert_array_equal(first.moves, games(0).moves)  # reproducible
    assert any((games(seed).moves != first.moves).any() for seed in (1, 2, 3))  # ties broken differently
    negamax = evaluation_opponent("negamax_3")
    play_games(evaluation_opponent("random"), negamax, 5)
    assert not negamax.cache and not negamax._cache


def test_wilson_interval_on_hand_computed_values():
    # 5 of 10: (0.5 + 1.96²/20 ± 1.96·sqrt(0.025 + 1.96²/400)) / (1 + 1.96²/10)
    assert wilson(0.5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson(1.0, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)  # a perfect score still has a lower bound
    assert wilson(0.0, 98) == pytest.approx((0.0, 0.0377), abs=1e-4)
    row = summarize(play_games(evaluation_opponent("smart"), evaluation_opponent("linear"), 10))
    assert row["ci"] == pytest.approx(list(wilson(row["score"], 20)))
    assert row["score"] == pytest.approx(row["win"] + row["draw"] / 2)


def test_arena_command_prints_distinct_games_and_the_interval(capsys):
    from rlarena.cli.main import main

    assert main(["arena", "--games", "7", "--opponents", "linear", "negamax_1"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[1].split()
    assert header[:8] == ["opponent", "games", "distinct", "win", "draw", "loss", "score", "95%"]
    assert "from the 49 two-ply openings" in out and out.splitlines()[2].split()[1:3] == ["14", "14"]
    assert main(["arena", "--games", "3", "--opponents", "linear", "--openings", "random:3-5", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["linear"]
    assert row["games"] == 6 and row["distinct"] == 6 and row["ci"][0] <= row["score"] <= row["ci"][1]
    assert main(["arena", "--openings", "random:2to6"]) == 2
    err = capsys.readouterr().err
    assert "--openings 'random:2to6' is not one of" in err and len(err.strip().splitlines()) == 1


def test_arena_command_grades_the_agent_with_the_solver_positions(capsys):
    from rlarena.cli.main import main
    from rlarena.games.connect_four.grading import grade, load_positions

    assert main(["arena", "--games", "1", "--opponents", "linear"]) == 0  # graded by default in the text output
    out = capsys.readouterr().out
    assert "solver grades" in out and out.splitlines()[-4].split() == [
        "stage",
        "positions",
        "outcome",
        "kept",
        "optimal",
        "move",
    ]
    assert main(["arena", "--games", "1", "--opponents", "linear", "--no-grade"]) == 0
    assert "solver grades" not in capsys.readouterr().out
    assert main(["arena", "--games", "1", "--opponents", "linear", "--grade", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"matches", "grades"} and set(report["grades"]) == {"end", "middle", "opening"}
    algo = Algorithm.from_checkpoint(SHIPPED, config_overrides={"num_envs_per_env_runner": 1})
    try:
        expected = grade(algo.get_policy("default_policy"), load_positions()["middle"])
    finally:
        algo.stop()
    assert report["grades"]["middle"] == expected and 0 < expected["optimal_move"] <= expected["outcome_kept"] < 1


def test_the_generic_harness_takes_the_game_and_knows_no_connect_four():
    """rlarena.multiagent.matches and .league are game-free: the batched game (and its seats) and the
    league's ladder are passed in; Connect Four's bindings give the same games."""
    from rlarena.games.connect_four.matches import TWO_PLY
    from rlarena.multiagent import matches as harness

    generic = harness.play_games(
        evaluation_opponent("random", seed=3),
        evaluation_opponent("negamax_1", seed=3),
        10,
        openings=TWO_PLY,
        make_games=BatchedConnectFour,
    )
    bound = play_games(evaluation_opponent("random", seed=3), evaluation_opponent("negamax_1", seed=3), 10)
    assert all(np.array_equal(x, y) for x, y in zip(generic, bound, strict=True))
    code = (
        "import sys, rlarena.multiagent.league, rlarena.multiagent.matches; "
        "print(sorted(m for m in sys.modules if 'connect_four' in m))"
    )
    assert subprocess.check_output([sys.executable, "-c", code], text=True).strip() == "[]"
