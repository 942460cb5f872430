"""Makes the graded Connect Four test sets: positions from games between the project's own players
(rlarena.games.connect_four.positions), labelled with the exact score of every column by rlarena's
solver. No outside data; the same seed gives the same file.

    python scripts/make_connect_four_positions.py    # -> src/rlarena/games/connect_four/data/

Positions are deduplicated (a position reached by another move order counts once) and kept only when
the choice matters: two or more legal columns that do not all have the same score. An opening
position whose analysis needs more than --node-budget solver nodes is skipped and counted in the
file's meta, so the opening set leans toward positions that are quicker to solve.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from rlarena.games.connect_four.grading import DATA_FILE, STAGES, Position, save_positions
from rlarena.games.connect_four.positions import (
    EPSILONS,
    PLAYERS,
    STAGE_EMPTY,
    make_players,
    random_game,
    sample_prefixes,
)
from rlarena.games.connect_four.solver import SearchBudgetExceeded, Solver, from_moves, legal_mask


def label(prefix: str, solver: Solver, budget: int | None, seen: set[int], skipped: dict[str, int]) -> Position | None:
    """The position with every column's exact score, or None (counted in `skipped`) when it is a
    duplicate, the choice does not matter, or it needs more than `budget` nodes."""
    cur, opp = from_moves(prefix)
    key = cur + (cur | opp)
    if key in seen:
        skipped["duplicate"] += 1
        return None
    seen.add(key)
    if legal_mask(cur, opp).sum() < 2:
        skipped["no_choice"] += 1
        return None
    solver.node_limit = solver.nodes + budget if budget is not None else 1 << 62
    try:
        scores = solver.analyse(cur, opp)
    except SearchBudgetExceeded:
        skipped["too_slow"] += 1
        return None
    if len({s for s in scores if s is not None}) < 2:
        skipped["no_choice"] += 1
        return None
    return Position(prefix, tuple(scores))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--end", type=int, default=300, help="positions wanted in the end stage")
    parser.add_argument("--middle", type=int, default=300)
    parser.add_argument("--opening", type=int, default=60)
    parser.add_argument("--node-budget", type=int, default=400_000, help="solver nodes per opening position")
    parser.add_argument("--out", type=Path, default=DATA_FILE)
    args = parser.parse_args(argv)
    wanted = {"end": args.end, "middle": args.middle, "opening": args.opening}
    rng = np.random.default_rng(args.seed)
    players = make_players(rng)
    solver = Solver(table_size=2_000_000)
    sets: dict[str, list[Position]] = {stage: [] for stage in STAGES}
    seen: set[int] = set()
    skipped = {"too_slow": 0, "duplicate": 0, "no_choice": 0}
    games, start = 0, time.perf_counter()
    while any(len(sets[s]) < wanted[s] for s in STAGES):
        games += 1
        for stage, prefix in sample_prefixes(random_game(players, rng), rng).items():
            if len(sets[stage]) < wanted[stage]:
                position = label(prefix, solver, args.node_budget if stage == "opening" else None, seen, skipped)
                if position is not None:
                    sets[stage].append(position)
        if games % 100 == 0:
            print(f"{games} games, {time.perf_counter() - start:.0f} s:", {s: len(sets[s]) for s in STAGES}, skipped,
                  flush=True)
    meta = {"generator": "python scripts/make_connect_four_positions.py " + " ".join(argv or []),
            "seed": args.seed, "games": games, "players": list(PLAYERS), "epsilons": list(EPSILONS),
            "stage_empty": STAGE_EMPTY, "node_budget": args.node_budget, "skipped": skipped}
    save_positions(args.out, sets, meta)
    print(f"wrote {args.out}:", {s: len(sets[s]) for s in STAGES}, f"from {games} games in "
          f"{time.perf_counter() - start:.0f} s; skipped {skipped}")


if __name__ == "__main__":
    main()
