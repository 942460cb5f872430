"""`rlarena arena --search N`: an AlphaZero checkpoint's search agent (MCTS over its network) plays the
matches and the solver grades in place of the network's greedy move; the header says which agent
played and the output gives its seconds per move; --search on another algorithm's checkpoint is a
one-line error. A tiny untrained checkpoint keeps it to seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlarena.cli.main import main


@pytest.fixture(scope="module")
def alphazero(tmp_path_factory) -> str:
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
        return str(algo.save(tmp_path_factory.mktemp("arena") / "ckpt"))
    finally:
        algo.stop()


def test_arena_plays_and_grades_the_search_agent(alphazero, capsys):
    assert main(["arena", alphazero, "--search", "8", "--games", "1", "--opponents", "random", "--grade"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith(
        f"search agent (8 simulations per move, MCTS over the network, 8 leaves per call) from {alphazero}:"
    )
    assert lines[2].split()[:3] == ["random", "2", "2"]
    timing = next(line for line in lines if line.startswith("agent's time per move:"))
    per_move = float(timing.split()[4])
    assert 0 < per_move < 1 and "one position at a time" in timing
    assert "solver grades: the agent's move" in out and lines[-4].split()[:2] == ["stage", "positions"]


def test_arena_without_search_plays_the_network_greedily(alphazero, capsys):
    assert main(["arena", alphazero, "--games", "1", "--opponents", "random", "--no-grade"]) == 0
    assert capsys.readouterr().out.startswith(f"default_policy (network, greedy) from {alphazero}:")
    assert (
        main(["arena", alphazero, "--search", "8", "--games", "1", "--opponents", "random", "--grade", "--json"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"matches", "grades"} and report["matches"]["random"]["games"] == 2


def test_search_needs_an_alphazero_checkpoint(tmp_path, capsys):
    import rlarena

    algo = rlarena.PPOConfig().environment("CartPole-v1").training(train_batch_size=64, minibatch_size=64).build()
    try:
        path = algo.save(tmp_path / "ppo")
    finally:
        algo.stop()
    assert main(["arena", str(path), "--search", "8", "--games", "1", "--opponents", "random"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: --search plays an AlphaZero checkpoint's search agent; {Path(path)} is a PPO "
        f"checkpoint, which has none. Run without --search."
    )


def test_search_counts_at_least_one_simulation(alphazero, capsys):
    assert main(["arena", alphazero, "--search", "0"]) == 2
    assert "--search is the number of simulations per move: at least 1, got 0." in capsys.readouterr().err
