"""The Connect Four agent shipped in the package (issue 14): an AlphaZero network, inference files
only, that loads with Algorithm.from_checkpoint and plays strong Connect Four from diverse openings,
alone (greedy) and as the search agent (MCTS over it, as the page serves it).

The bars sit below what benchmarks/connect_four_alphazero.py measured for the shipped file (figures in
benchmarks/README.md), with room for float differences across CPUs; the solver's positions were never
trained on (AlphaZero skips them)."""

from pathlib import Path

import numpy as np
import pytest

import rlarena
from rlarena import Algorithm
from rlarena.games.connect_four.game import ConnectFourGame
from rlarena.games.connect_four.grading import grade, load_positions
from rlarena.games.connect_four.matches import TWO_PLY, evaluation_opponent, play_matches
from rlarena.games.mcts import SearchPolicy, outputs_evaluator

SHIPPED = Path(rlarena.__file__).parent / "games" / "connect_four" / "agent"


@pytest.fixture(scope="module")
def shipped():
    algo = Algorithm.from_checkpoint(SHIPPED)
    yield algo
    algo.stop()


def test_only_inference_files_are_shipped(shipped):
    assert sorted(p.name for p in SHIPPED.iterdir()) == [
        "model.onnx",
        "policy.default_policy.safetensors",
        "rlarena_checkpoint.json",
        "rng.safetensors",
    ]
    assert type(shipped).__name__ == "AlphaZero" and list(shipped.policies) == ["default_policy"]
    assert shipped.time_total_s <= 2 * 3600  # trained within the budget (the figure is in the README)


def test_the_network_alone_from_the_two_ply_openings(shipped):
    network = shipped.get_policy("default_policy")
    # measured (benchmarks/README.md): random 1.000, linear 1.000, negamax_1 0.862, negamax_3 0.602
    bars = {"random": 0.97, "linear": 0.95, "negamax_1": 0.75, "negamax_3": 0.5}
    for name, bar in bars.items():
        match = play_matches(network, evaluation_opponent(name, seed=0), 49, openings=TWO_PLY)
        assert match["distinct"] == 98 and match["score"] >= bar, (name, match)


def test_the_network_alone_keeps_the_outcome(shipped):
    positions = load_positions()
    network = shipped.get_policy("default_policy")
    assert grade(network, positions["end"])["outcome_kept"] >= 0.92  # measured 0.950
    assert grade(network, positions["middle"])["outcome_kept"] >= 0.9  # measured 0.937


def test_the_served_search_agent_beats_negamax_and_keeps_the_outcome():
    """onnxruntime + numpy MCTS over model.onnx, as `rlarena play connect4` serves it (200 simulations
    here, to keep the test short; the shipped figures use more)."""
    from rlarena.export.onnx import OnnxPolicy

    onnx = OnnxPolicy(SHIPPED / "model.onnx")
    search = SearchPolicy(
        ConnectFourGame(),
        outputs_evaluator(onnx.compute_outputs),
        200,
        seed=0,
        observation_space=onnx.observation_space,
        action_space=onnx.action_space,
    )
    openings = TWO_PLY[::4]  # 13 of the 49 openings, both seats
    match = play_matches(search, evaluation_opponent("negamax_5", seed=0), len(openings), openings=openings)
    assert match["distinct"] == 2 * len(openings) and match["score"] >= 0.7, match  # measured 0.885
    middle = load_positions()["middle"][:100]
    assert grade(search, middle)["outcome_kept"] >= 0.94  # measured 0.97
    assert np.isfinite(
        onnx.compute_values(
            {"observation": np.zeros((1, 6, 7, 2), np.float32), "action_mask": np.ones((1, 7), np.float32)}
        )
    ).all()
