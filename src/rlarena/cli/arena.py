"""`rlarena arena`: a Connect Four agent against each opponent, from many openings and both seats, as a
table with the number of distinct games and a 95 % confidence interval of the score."""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from rlarena.algorithms import Algorithm
from rlarena.errors import ConfigError, closest
from rlarena.games.connect_four.matches import (
    EMPTY,
    TWO_PLY,
    Opening,
    evaluation_opponent,
    evaluation_table,
    format_table,
    random_openings,
)
from rlarena.games.connect_four.opponents import OPPONENTS


def openings_from_spec(spec: str, games: int, seed: int) -> tuple[list[Opening], str]:
    """--openings' value -> (the openings, a few words for the header)."""
    if spec == "two_ply":
        return TWO_PLY, "the 49 two-ply openings"
    if spec == "empty":
        return EMPTY, "the empty board"
    found = re.fullmatch(r"random:(\d+)(?:-(\d+))?", spec)
    if found:
        low = int(found[1])
        high = int(found[2]) if found[2] else low
        plies = f"{low}-{high}" if high != low else f"{low}"
        return random_openings(games, low, high, seed), f"{games} random balanced openings of {plies} plies"
    raise ConfigError(f"--openings {spec!r} is not one of 'two_ply', 'random:A-B' (e.g. random:2-6) or 'empty'.")


def arena(args: argparse.Namespace) -> int:
    names = args.opponents
    for name in names:
        if name not in OPPONENTS:
            raise ConfigError(f"Unknown opponent {name!r}.{closest(name, OPPONENTS)} Opponents: {', '.join(OPPONENTS)}.")
    if args.games < 1:
        raise ConfigError(f"--games is the number of games per seat against each opponent: at least 1, got {args.games}.")
    openings, described = openings_from_spec(args.openings, args.games, args.seed)
    path = args.checkpoint
    algo = Algorithm.from_checkpoint(path, config_overrides={"num_envs_per_env_runner": 1},
                                     trusted_modules=args.trusted_modules)
    # --grade's default (None): graded in the text output; the JSON keeps its one-table shape unless asked
    grading = args.grade if args.grade is not None else not args.json
    try:
        agent = algo.get_policy(args.policy_id)
        # each opponent fresh, seeded: its tie-breaks are reproducible and owe nothing to earlier games
        opponents = {name: evaluation_opponent(name, seed=args.seed) for name in names}
        table: dict[str, Any] = evaluation_table(agent, opponents, args.games, openings=openings)
        grades = solver_grades(agent, required=bool(args.grade)) if grading else None
    finally:
        algo.stop()
    if args.json:
        print(json.dumps({"matches": table, "grades": grades} if args.grade else table))
        return 0
    print(f"{args.policy_id} from {path} (greedy): {args.games} games per seat against each opponent, "
          f"from {described}; opponents seeded with {args.seed}")
    print(format_table(table))
    print("distinct: different games (seat and moves); 95% CI: Wilson interval of the score = (wins + draws/2) "
          "/ games")
    if grades is not None:
        print("\nsolver grades: the greedy move on positions labelled by rlarena's exact solver "
              "(rlarena.games.connect_four.grading)")
        print(format_grades(grades))
    return 0


def solver_grades(agent: Any, required: bool) -> dict[str, dict[str, float | int]] | None:
    """grade() per stage on the stored test sets; None (with a one-line note) when they are missing and
    grading was not asked for by name."""
    try:
        from rlarena.games.connect_four.grading import STAGES, grade, load_positions
        sets = load_positions()
    except (ImportError, OSError) as exc:
        message = f"The solver's graded test sets are not available ({type(exc).__name__}: {exc})."
        if required:
            raise ConfigError(message + " Run without --grade.") from exc
        print(message + " Solver grades skipped.", file=sys.stderr)
        return None
    return {stage: grade(agent, sets[stage]) for stage in STAGES if sets.get(stage)}


def format_grades(grades: dict[str, dict[str, float | int]]) -> str:
    lines = [f"{'stage':8s} {'positions':>9s} {'outcome kept':>13s} {'optimal move':>13s}"]
    lines += [f"{stage:8s} {row['n']:9d} {row['outcome_kept']:13.3f} {row['optimal_move']:13.3f}"
              for stage, row in grades.items()]
    return "\n".join(lines)
