"""Where a Connect Four AlphaZero network stands against its own training targets (issue 14, part 2):

    python benchmarks/connect_four_alphazero_targets.py CHECKPOINT search 0 16 64 200
    python benchmarks/connect_four_alphazero_targets.py CHECKPOINT trunks [--steps 6000]
    python benchmarks/connect_four_alphazero_targets.py CHECKPOINT speed 64 128 200

`search N...`: the solver's grades (outcome kept / optimal move per stage, held-out positions) of the
checkpoint's network alone (N = 0) and of MCTS over it with N simulations per move (torch evaluator,
no root noise, one leaf per network call): how good the targets self-play learns from can be.

`trunks`: fresh networks of several trunks trained on the checkpoint's replay window alone (the same
data for each; `--steps` minibatches of 256, lr 1e-3 then 2e-4 for the last quarter), then graded:
whether a bigger trunk would learn more from the data the run had. A checkpoint saved with its
training state is needed (the window is in it).

`speed N...`: self-play moves per second in this process (the recipe's 128 games searched together,
root noise, the solver) with N simulations per move: what more simulations cost.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rlarena import Algorithm, AlphaZeroConfig
from rlarena.cli.arena import solver_grades

FEATURES = {"board_features": "connect_four", "fcnet_activation": "relu", "vf_share_layers": True}
TRUNKS = {  # name -> (model, exponent applied to the visit targets)
    "[512, 512]": ({**FEATURES, "fcnet_hiddens": [512, 512]}, 1.0),
    "[1024, 1024]": ({**FEATURES, "fcnet_hiddens": [1024, 1024]}, 1.0),
    "[512, 512, 512]": ({**FEATURES, "fcnet_hiddens": [512, 512, 512]}, 1.0),
    "conv + [512, 512]": ({**FEATURES, "board_features": "conv", "fcnet_hiddens": [512, 512]}, 1.0),
    "[512, 512], targets cubed": ({**FEATURES, "fcnet_hiddens": [512, 512]}, 3.0),
}


def grades_line(agent) -> str:
    rows = solver_grades(agent, required=True)
    return "  ".join(f"{stage} {r['outcome_kept']:.3f} / {r['optimal_move']:.3f}" for stage, r in rows.items())


def search(algo, simulations: list[int]) -> None:
    print("outcome kept / optimal move per stage")
    for n in simulations:
        start = time.perf_counter()
        agent = algo.get_policy("default_policy") if n == 0 else algo.search_policy(n, seed=0)
        label = "network alone" if n == 0 else f"search, {n} simulations"
        print(f"{label:26s} {grades_line(agent)}   ({time.perf_counter() - start:.0f} s)", flush=True)


def trunks(algo, steps: int) -> None:
    window = algo.replay
    if window.size == 0:
        raise SystemExit("This checkpoint holds no replay window (saved without its training state).")
    print(f"fresh networks on the window of {window.size} positions, {steps} steps of 256")
    for name, (model, exponent) in TRUNKS.items():
        fresh = (AlphaZeroConfig().environment("connect_four")
                 .training(model=model, lr=1e-3, l2_coeff=1e-4, minibatch_size=256).debugging(seed=0).build())
        fresh.replay.load(window.arrays())
        if exponent != 1.0:
            pi = fresh.replay.pi[:fresh.replay.size] ** exponent
            fresh.replay.pi[:fresh.replay.size] = pi / pi.sum(axis=1, keepdims=True)
        learner = fresh.learners["default_policy"]
        start = time.perf_counter()
        for quarter in range(4):  # the learner sets each step's lr from this (the weight decay follows it)
            learner.base_lrs["main"] = 1e-3 if quarter < 3 else 2e-4
            fresh._learn(steps // 4)
        size = sum(int(np.prod(p.shape)) for p in fresh.policy.model.parameters())
        print(f"{name:28s} {size:9d} parameters  {grades_line(fresh.get_policy('default_policy'))}"
              f"   ({time.perf_counter() - start:.0f} s)", flush=True)
        fresh.stop()


def speed(algo, simulations: list[int], moves: int = 2048) -> None:
    for n in simulations:
        algo.config.mcts_config = {**algo.config.mcts_config, "num_simulations": n}
        algo._self_play(moves // 4)  # the trees grow to their usual size first
        start = time.perf_counter()
        algo._self_play(moves)
        print(f"{n:4d} simulations per move: {moves / (time.perf_counter() - start):6.0f} self-play moves/s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("what", choices=("search", "trunks", "speed"))
    parser.add_argument("simulations", nargs="*", type=int, default=[0, 16, 64, 200])
    parser.add_argument("--steps", type=int, default=6000)
    args = parser.parse_args()
    algo = Algorithm.from_checkpoint(args.checkpoint, config_overrides={"num_self_play_workers": 0})
    if args.what == "search":
        search(algo, args.simulations)
    elif args.what == "speed":
        speed(algo, args.simulations)
    else:
        trunks(algo, args.steps)


if __name__ == "__main__":
    main()
