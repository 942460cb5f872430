"""How long rlarena's exact Connect Four solver takes per position, by stage.

    python benchmarks/connect_four_solver.py [--per-stage 50] [--seed 2026] [--node-limit 1000000]
    python benchmarks/connect_four_solver.py --grades    # grade the ladder and the shipped agent

With --grades it prints instead the solver grades (outcome kept, optimal move) of random, negamax
depth 1/3/5 and the shipped agent (src/rlarena/games/connect_four/agent, policy "learned") on the stored
test sets, per stage.

Positions are drawn as the graded test sets draw theirs (rlarena.games.connect_four.positions: games
between the project's players, one position per stage per game) but with another seed, so none is
tuned for. Each position is solved with a fresh Solver (an empty transposition table: what labelling
one new position costs): `solve` (the position's score) and `analyse` (every column's score, what a
test-set label needs). A search that passes --node-limit nodes is stopped and counted as "over"
(its time is then a lower bound). Absolute times depend on the machine's load (see the header).
The issue's bar: middle-game positions (15-28 empty cells) "in well under a second".
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import header

from rlarena.games.connect_four.positions import make_players, random_game, sample_prefixes
from rlarena.games.connect_four.solver import SearchBudgetExceeded, Solver, from_moves


def timed(fn_name: str, moves: str, node_limit: int) -> tuple[float, int, bool]:
    solver = Solver(node_limit=node_limit)
    cur, opp = from_moves(moves)
    start = time.perf_counter()
    try:
        getattr(solver, fn_name)(cur, opp)
        over = False
    except SearchBudgetExceeded:
        over = True
    return time.perf_counter() - start, solver.nodes, over


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-stage", type=int, default=50)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--node-limit", type=int, default=1_000_000)
    parser.add_argument("--grades", action="store_true")
    args = parser.parse_args()
    if args.grades:
        grades(args.seed)
        return
    header("Connect Four exact solver: seconds per position, fresh table each")
    rng = np.random.default_rng(args.seed)
    players = make_players(rng)
    stages: dict[str, list[str]] = {"end": [], "middle": [], "opening": []}
    while any(len(v) < args.per_stage for v in stages.values()):
        for stage, prefix in sample_prefixes(random_game(players, rng), rng).items():
            if len(stages[stage]) < args.per_stage:
                stages[stage].append(prefix)
    print(f"{'stage':8s} {'fn':8s} {'n':>3s} {'empty':>7s} {'median s':>9s} {'p90 s':>8s} {'max s':>8s} "
          f"{'<1 s':>5s} {'over':>4s} {'max nodes':>10s}")
    for stage, prefixes in stages.items():
        empties = [42 - len(p) for p in prefixes]
        for fn_name in ("solve", "analyse"):
            runs = [timed(fn_name, p, args.node_limit) for p in prefixes]
            times = sorted(t for t, _, _ in runs)
            print(f"{stage:8s} {fn_name:8s} {len(runs):3d} {min(empties):3d}-{max(empties):<3d} "
                  f"{statistics.median(times):9.4f} {times[int(0.9 * (len(times) - 1))]:8.3f} {times[-1]:8.3f} "
                  f"{sum(t < 1 for t in times):5d} {sum(o for _, _, o in runs):4d} {max(n for _, n, _ in runs):10d}",
                  flush=True)


def grades(seed: int) -> None:
    from gymnasium import spaces

    from rlarena import Algorithm
    from rlarena.games.connect_four.grading import grade, load_positions
    from rlarena.games.connect_four.opponents import OPPONENTS
    from rlarena.games.connect_four.rules import COLS, observation_space

    header("Connect Four: solver grades on the stored test sets (greedy, explore=False)")
    sets = load_positions()
    obs_space, act_space = observation_space(), spaces.Discrete(COLS)
    policies = {name: OPPONENTS[name](obs_space, act_space, seed=seed)
                for name in ("random", "negamax_1", "negamax_3", "negamax_5")}
    algo = Algorithm.from_checkpoint(str(Path(__file__).resolve().parents[1] / "src/rlarena/games/connect_four/agent"),
                                     config_overrides={"num_envs_per_env_runner": 1})
    policies["shipped agent"] = algo.get_policy("learned")
    print(f"{'policy':14s} " + " ".join(f"{stage + ' (n=' + str(len(p)) + ')':>22s}" for stage, p in sets.items()))
    print(f"{'':14s} " + " ".join(f"{'kept':>10s} {'optimal':>11s}" for _ in sets))
    for name, policy in policies.items():
        row = [grade(policy, positions) for positions in sets.values()]
        print(f"{name:14s} " + " ".join(f"{g['outcome_kept']:10.3f} {g['optimal_move']:11.3f}" for g in row), flush=True)


if __name__ == "__main__":
    main()
