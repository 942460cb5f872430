"""The game protocol (tic-tac-toe, Connect Four) and MCTS invariants (rlarena.games)."""

from __future__ import annotations

import numpy as np
import pytest

from rlarena.errors import ConfigError
from rlarena.games.base import make_game
from rlarena.games.connect_four.game import ConnectFourGame, from_moves
from rlarena.games.connect_four.rules import Game as RulesGame
from rlarena.games.mcts import MCTS, SearchPolicy, check_mcts_config, visit_policy
from rlarena.games.tic_tac_toe import TicTacToe, move_values, solve


def uniform(obs, legal):
    return legal / legal.sum(-1, keepdims=True), np.zeros(len(obs))


def test_tic_tac_toe_rules_and_perfect_play():
    g = TicTacToe()
    assert solve(0, 0) == 0  # perfect play draws
    s = g.initial_state()
    for a in (0, 3, 1, 4):  # X: 0, 1; O: 3, 4
        s = g.step(s, a)
    assert g.terminal_value(s) is None and g.to_play(s) == 0
    assert move_values(s)[2] == 1  # X completes the top row
    won = g.step(s, 2)
    assert g.terminal_value(won) == -1.0  # the player to move (O) has lost
    assert not g.legal_moves(won).any()
    with pytest.raises(ValueError, match="Illegal"):
        g.step(s, 0)


@pytest.mark.parametrize("game", [TicTacToe(), ConnectFourGame()])
def test_symmetries_map_positions_to_positions(game):
    rng = np.random.default_rng(0)
    for _ in range(20):
        s = game.initial_state()
        moves = []
        for _ in range(int(rng.integers(1, 5))):
            a = int(rng.choice(np.flatnonzero(game.legal_moves(s))))
            moves.append(a)
            s = game.step(s, a)
        x = game.encode([s]).reshape(-1)
        for obs_perm, act_perm in game.symmetries():
            t = game.initial_state()
            for a in moves:  # the same game played on the transformed board
                t = game.step(t, int(np.flatnonzero(act_perm == a)[0]))
            assert (game.encode([t]).reshape(-1) == x[obs_perm]).all()
            assert (game.legal_moves(t) == game.legal_moves(s)[act_perm]).all()


def test_connect_four_game_matches_the_env_rules():
    game, rng = ConnectFourGame(), np.random.default_rng(1)
    for _ in range(30):
        s, board = game.initial_state(), RulesGame()
        while game.terminal_value(s) is None:
            seat = game.to_play(s)
            assert (game.encode([s])[0] == board.planes(seat)).all()
            assert (game.legal_moves(s) == board.legal_mask().astype(bool)).all()
            assert game.from_observation(board.planes(seat)) == s
            col = int(rng.choice(np.flatnonzero(game.legal_moves(s))))
            won = board.play(col, seat)
            s = game.step(s, col)
            assert (game.terminal_value(s) == -1.0) == won
        assert won or board.full()
    assert from_moves("4453")[:2] == game.from_observation(game.encode([from_moves("4453")])[0])[:2]
    assert len(game.held_out_keys()) == 660  # the graded test sets: 300 end, 300 middle, 60 opening


def test_make_game_names_the_choices():
    assert isinstance(make_game("tic_tac_toe"), TicTacToe)
    with pytest.raises(ConfigError, match="tic_tac_toe.*Did you mean 'connect_four'"):
        make_game("connect_fuor")


def test_visit_counts_sum_to_the_simulations_and_illegal_moves_are_never_visited():
    game = ConnectFourGame()
    s = from_moves("111111")  # column 1 (index 0) is full

    def fond_of_column_0(obs, legal):  # a network that wants the full column
        p = np.full(legal.shape, 0.01)
        p[:, 0] = 10.0
        return p, np.zeros(len(obs))

    mcts = MCTS(game, fond_of_column_0, solver=False)
    root = mcts.new_root(s)
    mcts.search([root], 50)
    assert root.visits.sum() == 50
    assert root.visits[0] == 0 and not root.legal[0]
    assert visit_policy(root, 1.0)[0] == 0 and visit_policy(root, None)[0] == 0
    mcts.search([root], 25)  # a reused root keeps its statistics
    assert root.visits.sum() == 75
    policy = SearchPolicy(game, fond_of_column_0, 20, seed=0)
    obs = {"observation": game.encode([s] * 8), "action_mask": np.tile(game.legal_moves(s), (8, 1))}
    assert (policy.compute_actions(obs, explore=True) != 0).all()


def test_values_are_backed_up_from_the_movers_side():
    game = TicTacToe()
    s = game.initial_state()
    for a in (0, 3, 1, 4):  # X to move wins at 2; O threatens 5
        s = game.step(s, a)
    mcts = MCTS(game, uniform, solver=False)
    root = mcts.new_root(s)
    mcts.search([root], 200)
    assert int(np.argmax(root.visits)) == 2
    assert root.q_values()[2] == pytest.approx(1.0)
    s_block = game.step(game.step(game.step(game.initial_state(), 0), 4), 1)  # O to move must block at 2
    root = mcts.new_root(s_block)
    mcts.search([root], 400)
    assert int(np.argmax(root.visits)) == 2


def test_solver_proves_wins_and_losses():
    game = TicTacToe()
    s = game.initial_state()
    for a in (0, 3, 1, 4):
        s = game.step(s, a)
    mcts = MCTS(game, uniform, solver=True)
    root = mcts.new_root(s)
    mcts.search([root], 10)
    assert root.proven == 1.0 and visit_policy(root, 1.0)[2] == 1.0
    # X holds the centre and a corner against O's edge: O, to move, loses whatever it plays
    lost = game.step(game.step(game.step(game.initial_state(), 4), 1), 0)
    assert np.nanmax(move_values(lost)) == -1
    root = mcts.new_root(lost)
    mcts.search([root], 2000)
    assert root.proven == -1.0


def test_mcts_config_is_checked():
    assert check_mcts_config({})["num_simulations"] >= 1
    with pytest.raises(ConfigError, match="Unknown mcts_config key.*num_sims"):
        check_mcts_config({"num_sims": 10})
    with pytest.raises(ConfigError, match="num_simulations=0"):
        check_mcts_config({"num_simulations": 0})
    with pytest.raises(ConfigError, match="mcts_solver"):
        check_mcts_config({"mcts_solver": "yes"})


def test_several_leaves_per_call_take_their_virtual_losses_back():
    """leaves_per_call=8 (virtual loss): the statistics left are real visits and real values only."""
    game = ConnectFourGame()
    calls = []

    def counting(obs, legal):
        calls.append(len(obs))
        return uniform(obs, legal)

    mcts = MCTS(game, counting, solver=False)
    root = mcts.new_root(game.initial_state())
    mcts.search([root], 64, leaves_per_call=8)
    assert root.visits.sum() == sum(calls[1:]) <= 64  # every evaluated leaf is one visit of the root
    assert max(calls[1:]) > 1 and len(calls) <= 1 + 64 // 8 + 1
    nodes = [root]
    while nodes:
        node = nodes.pop()
        if node.expanded:
            assert (np.abs(node.value_sum) <= node.visits + 1e-9).all() and (node.visits >= 0).all()
            nodes.extend(node.children.values())
    s = game.initial_state()
    for col in (0, 6, 0, 6, 0, 6):  # column 1 (index 0) wins at once
        s = game.step(s, col)
    policy = SearchPolicy(game, uniform, 200, seed=0, solver=False, leaves_per_call=8)
    obs = {"observation": game.encode([s]), "action_mask": game.legal_moves(s)[None]}
    assert policy.compute_actions(obs, explore=False)[0] == 0
