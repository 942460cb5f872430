"""Which board model for Connect Four: the same self-play recipe and the same training time for each
model, then greedy games against the opponent ladder (issue: "small CNN or MLP: choose by measurement").

Models (the `board_features` model option; every one feeds a masked [256, 256] MLP actor-critic):
- none:          the raw 6x7x2 planes (84 inputs);
- connect_four:  the planes plus fixed tactical features: the empty cells that complete a line of four
                 for either side, the playable cells, and per column win-now / must-block / unsafe
                 (rlarena/games/connect_four/features.py, 231 inputs);
- conv:          two learned 3x3 convolutions (32 channels) over the planes.

Each model trains for --minutes with tuned_examples/ppo/connect_four_selfplay.py's config (league of
heuristics, negamax ladder and snapshots), one after another in this process, then plays
--games-per-seat games per seat against each opponent. Prints env steps, steps/s and the table.

    python benchmarks/connect_four_models.py                          # 6 minutes per model, ~22 min
    python benchmarks/connect_four_models.py --minutes 1 --games-per-seat 10   # quick check
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import gymnasium as gym

from rlarena.games.connect_four.matches import evaluation_table
from rlarena.games.connect_four.opponents import OPPONENTS
from rlarena.games.connect_four.rules import observation_space

RECIPE = Path(__file__).resolve().parent.parent / "tuned_examples" / "ppo" / "connect_four_selfplay.py"
LADDER = ("random", "beat_last", "smart", "negamax_1", "negamax_3", "negamax_5")


def recipe():
    spec = importlib.util.spec_from_file_location("connect_four_selfplay", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=6.0, help="training time per model")
    parser.add_argument("--games-per-seat", type=int, default=50)
    parser.add_argument("--models", nargs="+", default=["none", "connect_four", "conv"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = recipe().config
    spaces = (observation_space(), gym.spaces.Discrete(7))
    rows = []
    for model in args.models:
        algo = config(args.seed, features=None if model == "none" else model).build()
        while algo.time_total_s < args.minutes * 60:
            algo.train()
        steps = algo.num_env_steps_sampled_lifetime
        table = evaluation_table(algo.get_policy("learned"), {n: OPPONENTS[n](*spaces) for n in LADDER},
                                 args.games_per_seat)
        rows.append((model, steps, steps / algo.time_total_s, len(algo.policies) - 1, table))
        print(f"{model}: {steps} env steps in {algo.time_total_s / 60:.1f} min, " + "  ".join(
            f"{name} {row['score']:.2f}" for name, row in table.items()), flush=True)
        algo.stop()
    print(f"\n{args.minutes:g} min of training per model, {args.games_per_seat} greedy games per seat; "
          "score = wins + draws/2")
    print(f"{'model':14s} {'env steps':>10s} {'steps/s':>8s} {'league':>6s} " + " ".join(f"{n:>10s}" for n in LADDER))
    for model, steps, rate, league, table in rows:
        print(f"{model:14s} {steps:10d} {rate:8.0f} {league:6d} "
              + " ".join(f"{table[n]['score']:10.2f}" for n in LADDER))


if __name__ == "__main__":
    main()
