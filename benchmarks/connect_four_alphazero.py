"""The Connect Four AlphaZero agent measured as issue 14 asks (parts 2 and 3), in one run.

    python benchmarks/connect_four_alphazero.py [CHECKPOINT] [--search 1600] [--network-only]

1. The network alone (greedy, no search) from the 49 two-ply openings, both seats, against the
   heuristics and negamax depths 1, 3 and 5 (fresh random tie-breaks), and graded by the exact solver
   on the stored end / middle / opening positions (never trained on: AlphaZero skips them).
2. The search agent as the page serves it: onnxruntime + numpy MCTS with --search simulations per
   move over the checkpoint's model.onnx (exported on the fly when the checkpoint has none). Seconds
   per move one position at a time (mean and max over 20 positions of 2-20 plies), the solver grades,
   and matches against negamax depths 5 and 7 from the 49 two-ply openings (98 games each).
Nothing here was tuned on these figures; the simulation count is chosen by the time per move alone.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from rlarena import Algorithm
from rlarena.cli.arena import format_grades, solver_grades
from rlarena.export.onnx import OnnxPolicy
from rlarena.games.connect_four.game import ConnectFourGame
from rlarena.games.connect_four.matches import evaluation_opponent, evaluation_table, format_table, random_openings
from rlarena.games.mcts import SearchPolicy, outputs_evaluator
from rlarena.policies.policy import policy_actions

SHIPPED = Path(__file__).resolve().parent.parent / "src" / "rlarena" / "games" / "connect_four" / "agent"
NETWORK_OPPONENTS = ("random", "always_same", "linear", "beat_last", "smart", "negamax_1", "negamax_3", "negamax_5")
SEARCH_OPPONENTS = ("negamax_5", "negamax_7")


def latency(agent, count: int = 20, seed: int = 1) -> tuple[float, float]:
    """(mean, max) seconds for one move of one game, over positions after 2-20 random balanced plies."""
    game, seconds = ConnectFourGame(), []
    for opening in random_openings(count, 2, 20, seed):
        state = game.initial_state()
        for col in opening:
            state = game.step(state, col)
        batch = {"observation": game.encode([state]).astype(np.int8), "action_mask": game.legal_moves(state)[None]}
        start = time.perf_counter()
        policy_actions(agent, batch, False, 1)
        seconds.append(time.perf_counter() - start)
    return float(np.mean(seconds)), float(np.max(seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", nargs="?", default=str(SHIPPED))
    parser.add_argument("--search", type=int, default=8000, help="simulations per move of the search agent")
    parser.add_argument("--leaves-per-call", type=int, default=8,
                        help="leaves of one tree per network call (virtual loss); 1: one leaf per call")
    parser.add_argument("--network-only", action="store_true", help="measure the network alone (part 2) only")
    parser.add_argument("--seed", type=int, default=0, help="the opponents' tie-breaks")
    args = parser.parse_args()
    algo = Algorithm.from_checkpoint(args.checkpoint)
    print(f"{args.checkpoint}: {type(algo).__name__}, {algo.time_total_s / 60:.1f} min of training, "
          f"{algo.num_env_steps_sampled_lifetime} self-play moves, {algo.num_episodes_lifetime} games")
    network = algo.get_policy("default_policy")
    start = time.perf_counter()
    table = evaluation_table(network, {n: evaluation_opponent(n, seed=args.seed) for n in NETWORK_OPPONENTS}, 49)
    print(f"\n1. the network alone (greedy), 49 two-ply openings x 2 seats ({time.perf_counter() - start:.0f} s)")
    print(format_table(table))
    print(format_grades(solver_grades(network, required=True)))
    if args.network_only:
        return
    model = Path(args.checkpoint) / "model.onnx"
    if not model.is_file():
        model = algo.export_onnx(Path(tempfile.mkdtemp()) / "model.onnx")
    onnx = OnnxPolicy(model)
    search = SearchPolicy(ConnectFourGame(), outputs_evaluator(onnx.compute_outputs), args.search, seed=args.seed,
                          observation_space=onnx.observation_space, action_space=onnx.action_space,
                          leaves_per_call=args.leaves_per_call)
    mean, worst = latency(search)
    print(f"\n2. the search agent: {args.search} simulations per move ({args.leaves_per_call} leaves per network "
          f"call), onnxruntime + numpy MCTS")
    print(f"seconds per move, one position at a time: mean {mean:.3f}, max {worst:.3f} (20 positions of 2-20 plies)")
    start = time.perf_counter()
    print(format_grades(solver_grades(search, required=True)) + f"   ({time.perf_counter() - start:.0f} s)")
    start = time.perf_counter()
    table = evaluation_table(search, {n: evaluation_opponent(n, seed=args.seed) for n in SEARCH_OPPONENTS}, 49)
    print(format_table(table) + f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
