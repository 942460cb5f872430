"""The Connect Four app's game logic without a browser: the agent answers with a legal move, illegal
moves are refused and leave the board alone, wins, losses and draws are detected, the agent can open,
sessions are independent; the difficulty levels (network, search at N simulations with onnxruntime and
numpy alone, negamax) and when search levels are offered; and the `rlarena play` command's errors for
people."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from rlarena.cli.main import main
from rlarena.errors import ConfigError
from rlarena.games.connect_four.app import (
    SEARCH_LEVELS,
    SHIPPED_ONNX,
    ConnectFourPlay,
    GameSession,
    board_html,
    checkpoint_algorithm,
    levels_markdown,
    load_onnx_agent,
    negamax_opponents,
    opponent_label,
    search_levels,
    winning_line,
)
from rlarena.games.connect_four.rules import ROWS, observation_space
from rlarena.policies.policy import Policy

# A full board without four in a row (rows top first; X = player_0, O = player_1), found by search
DRAWN = ["XXOOXXO", "XOOOXOX", "OXXOXXO", "OOOXOXX", "OXXOOXO", "XOXXXOO"]


@pytest.fixture(scope="module")
def play() -> ConnectFourPlay:
    return ConnectFourPlay(negamax_opponents(("negamax_1", "negamax_3")))


def place(session: GameSession, rows: list[str], skip: tuple[int, int] | None = None) -> None:
    """Put pieces on the board column by column, bottom up ('X' player_0, 'O' player_1, '.' none)."""
    for col in range(7):
        for row in range(ROWS - 1, -1, -1):
            piece = rows[row][col]
            if piece != "." and (row, col) != skip:
                assert not session.game.play(col, "XO".index(piece)), "the set-up position must not be won"


def pieces(session: GameSession) -> int:
    return int((session.game.board != 0).sum())


def test_agent_answers_each_move_with_a_legal_column(play):
    session = play.new_game("negamax_3", human_first=True)
    assert pieces(session) == 0 and session.human_seat == 0 and "move first" in session.message
    for move, column in enumerate((3, 3, 2), start=1):
        before = session.game.board.copy()
        play.play(session, column)
        changed = np.argwhere(session.game.board != before)
        assert len(changed) == 2 and pieces(session) == 2 * move, session.message
        assert {int(before[r, c]) for r, c in changed} == {0}  # only empty cells filled
        assert sorted(int(session.game.board[r, c]) for r, c in changed) == [1, 2]  # one red (human), one yellow
        assert session.last is not None and session.game.board[session.last] == 2  # the agent's piece is the last
        assert "answered column" in session.message and session.result is None


def test_agent_can_open(play):
    session = play.new_game("negamax_1", human_first=False)
    assert session.human_seat == 1 and pieces(session) == 1
    assert session.game.board[session.last] == 1  # the agent plays red, the first seat
    assert "opened in column" in session.message
    play.play(session, 0)
    assert pieces(session) == 3 and session.game.board[ROWS - 1, 0] in (2, 1)


def test_full_column_and_out_of_range_columns_are_refused(play):
    session = play.new_game("negamax_1")
    place(session, ["X......", "O......", "X......", "O......", "X......", "O......"])
    board = session.game.board.copy()
    play.play(session, 0)
    assert "Column 1 is full" in session.message
    play.play(session, 7)
    assert "no column 8" in session.message
    np.testing.assert_array_equal(session.game.board, board)
    assert session.result is None and session.legal_columns() == [1, 2, 3, 4, 5, 6]


def test_human_win_is_detected_and_ends_the_game(play):
    session = play.new_game("negamax_1")
    place(session, [".......", ".......", ".......", ".......", "OOO....", "XXX...."])
    play.play(session, 3)
    assert session.result == "win" and "You win!" in session.message
    assert session.line == [(5, 0), (5, 1), (5, 2), (5, 3)]
    assert pieces(session) == 7  # the agent does not answer a finished game
    play.play(session, 4)
    assert "game is over" in session.message and pieces(session) == 7 and session.legal_columns() == []


def test_agent_win_is_detected(play):
    session = play.new_game("negamax_1")
    place(session, [".......", ".......", ".......", ".......", "X.X....", "OOO.XX."])
    play.play(session, 6)  # not blocking column 4: negamax sees its own win one ply ahead
    assert session.result == "loss" and "You lose: negamax_1 wins." in session.message
    assert session.line == [(5, 0), (5, 1), (5, 2), (5, 3)]


def test_draw_is_detected():
    play = ConnectFourPlay(negamax_opponents(("negamax_1",)))
    session = play.new_game("negamax_1", human_first=False)
    session.game.reset()  # replace the agent's opening with the drawn position minus its last cell
    place(session, DRAWN, skip=(0, 2))
    play.play(session, 2)  # the human (player_1, 'O') fills the board
    assert session.result == "draw" and "Draw" in session.message and session.line == []


class FullColumnPlayer(Policy):
    """A broken agent: always column 1, full or not (a real model masks full columns)."""

    def compute_actions(self, obs_batch, explore=True):
        return np.zeros(len(obs_batch["observation"]), np.int64)


def test_an_agent_playing_a_full_column_forfeits():
    play = ConnectFourPlay({"broken": FullColumnPlayer(observation_space(), gym.spaces.Discrete(7))})
    session = play.new_game()
    place(session, [".......", "O......", "X......", "O......", "X......", "O......"])
    play.play(session, 0)  # fills column 1; the agent then plays it again
    assert session.result == "win" and "chose column 1, which cannot be played: it forfeits" in session.message
    assert pieces(session) == 6


def test_sessions_are_independent(play):
    first, second = play.new_game("negamax_3"), play.new_game("negamax_1", human_first=False)
    play.play(first, 3)
    assert pieces(first) == 2 and pieces(second) == 1
    # gr.State deep-copies its value per browser session: a copy must not share the board
    copied = copy.deepcopy(first)
    play.play(copied, 0)
    assert pieces(copied) == 4 and pieces(first) == 2
    play.play(second, 6)
    assert pieces(first) == 2 and pieces(second) == 3 and second.opponent == "negamax_1"


def test_unknown_opponent_is_named(play):
    with pytest.raises(ConfigError, match="Did you mean 'negamax_3'"):
        play.new_game("negamax_33")


def test_winning_line_finds_diagonals():
    board = np.zeros((6, 7), np.int8)
    for i in range(4):
        board[5 - i, 1 + i] = 2
    assert winning_line(board, 3, 3) == [(2, 4), (3, 3), (4, 2), (5, 1)]
    board[2, 4] = 1
    assert winning_line(board, 3, 3) == []


def test_board_html_shows_pieces_last_move_and_result(play):
    session = play.new_game("negamax_1")
    place(session, [".......", ".......", ".......", ".......", "OOO....", "XXX...."])
    play.play(session, 3)
    page = board_html(session)
    assert page.count("c4-red") == 4 and page.count("c4-yellow") == 3 and page.count("c4-empty") == 35
    assert page.count("c4-line") == 4 and page.count("c4-last") == 1
    assert 'data-result="win"' in page and 'data-moves="7"' in page
    assert board_html(None).count("c4-empty") == 42


def test_shipped_agent_answers_through_onnxruntime():
    pytest.importorskip("onnxruntime")
    if not SHIPPED_ONNX.is_file():
        pytest.skip(f"{SHIPPED_ONNX} is not exported yet")
    play = ConnectFourPlay({"shipped agent": load_onnx_agent(SHIPPED_ONNX)})
    session = play.new_game(human_first=False)
    assert pieces(session) == 1
    play.play(session, 0)
    assert pieces(session) == 3 and session.result is None


def test_checkpoint_is_exported_then_served_by_onnxruntime(tmp_path):
    pytest.importorskip("onnxruntime")
    from rlarena.cli.play import export_checkpoint

    path = export_checkpoint(str(SHIPPED_ONNX.parent), tmp_path)  # the shipped checkpoint, as --checkpoint does
    agent = load_onnx_agent(path)
    assert agent.policy_id == "default_policy" and agent.env_name == "connect_four"  # its only policy
    session = ConnectFourPlay({"agent": agent}).new_game(human_first=False)
    assert pieces(session) == 1


# -- the difficulty levels --------------------------------------------------------------------------------
def tiny_alphazero(directory: Path) -> Path:
    """An untrained AlphaZero Connect Four checkpoint in `directory`, its network exported beside it as
    model.onnx (the shipped agent's layout); returns the checkpoint directory."""
    from rlarena.algorithms.alphazero import AlphaZeroConfig

    algo = (
        AlphaZeroConfig()
        .environment("connect_four")
        .training(
            num_parallel_games=2,
            train_batch_size=8,
            minibatch_size=8,
            replay_buffer_config={"capacity": 64},
            mcts_config={"num_simulations": 8},
            num_steps_sampled_before_learning_starts=8,
        )
        .build()
    )
    try:
        path = Path(algo.save(directory))
        algo.export_onnx(path / "model.onnx", "default_policy")
    finally:
        algo.stop()
    return path


@pytest.fixture(scope="module")
def alphazero(tmp_path_factory) -> Path:
    pytest.importorskip("onnxruntime")
    return tiny_alphazero(tmp_path_factory.mktemp("alphazero") / "ckpt")


def test_search_levels_are_offered_for_an_alphazero_network_only(alphazero, tmp_path):
    assert checkpoint_algorithm(alphazero) == "AlphaZero"
    assert search_levels(checkpoint_algorithm(alphazero)) == SEARCH_LEVELS
    (tmp_path / "rlarena_checkpoint.json").write_text('{"algorithm": "PPO"}')
    assert checkpoint_algorithm(tmp_path) == "PPO" and search_levels("PPO") == ()
    assert checkpoint_algorithm(tmp_path / "nowhere") is None and search_levels(None) == ()  # a lone .onnx file
    assert search_levels("PPO", (20,)) == (20,) and search_levels("AlphaZero", ()) == ()  # --search decides
    assert max(SEARCH_LEVELS) <= 8000  # the shipped network: ~0.7 s per move on this machine, under a second


def test_levels_have_stable_keys_and_names_people_read():
    assert opponent_label("network") == "network alone (no search)"
    assert opponent_label("search_800") == "search, 800 simulations"
    assert opponent_label("negamax_3") == "negamax, depth 3"
    play = ConnectFourPlay(negamax_opponents(("negamax_1",)), labels={"negamax_1": opponent_label("negamax_1")})
    session = play.new_game("negamax_1", human_first=False)
    assert session.opponent == "negamax_1" and session.name == "negamax, depth 1"
    assert "negamax, depth 1 (red) opened in column" in session.message
    assert "negamax, depth 1: red" in board_html(session)
    assert "negamax, depth d" in levels_markdown(play) and "search" not in levels_markdown(play)


def test_the_search_levels_play_with_onnxruntime_and_numpy_alone(alphazero):
    # torch blocked in a fresh process: building the page's opponents and playing the search agent
    # must not need it (the shipped page serves with onnxruntime alone)
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from rlarena.games.connect_four.app import page_opponents, levels_markdown\n"
        f"play = page_opponents({str(alphazero / 'model.onnx')!r}, (8, 30))\n"
        "session = play.new_game('search_8', human_first=False)\n"
        "play.play(session, 0)\n"
        "print(play.opponents, play.default, play.label('search_30'), int((session.game.board != 0).sum()), "
        "session.result, 'torch' in sys.modules and sys.modules['torch'] is not None)"
    )
    out = subprocess.check_output([sys.executable, "-c", code], text=True).strip()
    assert out == (
        "['network', 'search_8', 'search_30', 'negamax_1', 'negamax_2', 'negamax_3', 'negamax_4', "
        "'negamax_5', 'negamax_6', 'negamax_7'] search_30 search, 30 simulations 3 None False"
    )


def test_the_search_agent_takes_a_win_its_untrained_network_does_not_see(alphazero):
    from rlarena.games.connect_four.app import page_opponents

    play = page_opponents(alphazero / "model.onnx", (50,))
    session = play.new_game("search_50")
    place(session, [".......", ".......", ".......", ".......", "X......", "OOO..XX"])
    play.play(session, 6)  # the human (red) leaves yellow's win in column 4 open; the search finds it
    assert session.result == "loss" and session.line == [(5, 0), (5, 1), (5, 2), (5, 3)]
    assert "You lose: search, 50 simulations wins." in session.message


def test_an_alphazero_checkpoint_is_exported_with_its_one_policy(alphazero, tmp_path):
    from rlarena.cli.play import export_checkpoint

    agent = load_onnx_agent(export_checkpoint(str(alphazero), tmp_path))
    assert agent.policy_id == "default_policy" and agent.env_name == "connect_four"


def test_play_search_levels_option(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["play", "connect4", "--search", "50,lots"])
    assert exc.value.code == 2 and "is not a list of simulation counts" in capsys.readouterr().err
    from rlarena.cli.main import build_parser

    assert build_parser()[0].parse_args(["play", "connect4", "--search", "800,50"]).search == (50, 800)
    assert build_parser()[0].parse_args(["play", "connect4", "--search", "none"]).search == ()


def test_an_onnx_model_for_another_game_is_refused(tmp_path):
    pytest.importorskip("onnxruntime")
    import rlarena

    algo = rlarena.PPOConfig().environment("CartPole-v1").training(train_batch_size=64, minibatch_size=64).build()
    try:
        path = algo.export_onnx(tmp_path / "cartpole.onnx", "default_policy")
    finally:
        algo.stop()
    with pytest.raises(ConfigError, match="is not a Connect Four policy.*CartPole"):
        load_onnx_agent(path)


def test_the_app_module_and_command_table_load_no_heavy_module():
    # gradio and onnxruntime load only when a page is served, torch only to export a --checkpoint
    code = (
        "import sys, rlarena.cli.main, rlarena.games.connect_four.app; "
        "print([m for m in ('gradio', 'onnxruntime', 'torch', 'selenium') if m in sys.modules])"
    )
    assert subprocess.check_output([sys.executable, "-c", code], text=True).strip() == "[]"


# -- the command's errors: one line, exit 2 ---------------------------------------------------------------
def test_play_missing_onnx_file(tmp_path, capsys):
    assert main(["play", "connect4", "--onnx", str(tmp_path / "nope.onnx")]) == 2
    assert "No such file or directory" in capsys.readouterr().err


def test_play_missing_checkpoint(tmp_path, capsys):
    assert main(["play", "connect4", "--checkpoint", str(tmp_path / "nope")]) == 2
    assert "checkpoint directory written by" in capsys.readouterr().err


def test_play_bad_port_and_both_agents(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["play", "connect4", "--port", "70000"])
    assert exc.value.code == 2 and "not a port number" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["play", "connect4", "--onnx", "a.onnx", "--checkpoint", "ckpt"])
    assert "not allowed with" in capsys.readouterr().err


def test_play_without_gradio_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # None in sys.modules makes `import gradio` fail
    assert main(["play", "connect4"]) == 2
    assert "pip install 'rlarena[app]'" in capsys.readouterr().err
