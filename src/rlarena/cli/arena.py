"""`rlarena arena`: a Connect Four agent against each opponent, from many openings and both seats, as a
table with the number of distinct games and a 95 % confidence interval of the score, then its grades
on the solver-labelled positions. The agent is a checkpoint's network playing its greedy move, or with
--search N an AlphaZero checkpoint's search agent (MCTS, N simulations per move over the network);
the output says which, and how many seconds a move took it."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from typing import Any

import numpy as np

from rlarena.algorithms import Algorithm
from rlarena.checkpoint.io import INFERENCE_OVERRIDES
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
from rlarena.games.connect_four.rules import Game
from rlarena.policies.policy import Policy, SearchAgent, policy_actions

LATENCY_POSITIONS = 8  # positions searched one at a time for the "seconds per move" of a single game


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
            raise ConfigError(
                f"Unknown opponent {name!r}.{closest(name, OPPONENTS)} Opponents: {', '.join(OPPONENTS)}."
            )
    if args.games < 1:
        raise ConfigError(
            f"--games is the number of games per seat against each opponent: at least 1, got {args.games}."
        )
    openings, described = openings_from_spec(args.openings, args.games, args.seed)
    path = args.checkpoint
    if args.search is not None and args.search < 1:
        raise ConfigError(f"--search is the number of simulations per move: at least 1, got {args.search}.")
    algo = Algorithm.from_checkpoint(
        path, config_overrides=dict(INFERENCE_OVERRIDES), trusted_modules=args.trusted_modules
    )
    # --grade's default (None): graded in the text output; the JSON keeps its one-table shape unless asked
    grading = args.grade if args.grade is not None else not args.json
    try:
        agent, described_agent = choose_agent(algo, path, args.policy_id, args.search, args.seed)
        timed = TimedPolicy(agent)
        # each opponent fresh, seeded: its tie-breaks are reproducible and owe nothing to earlier games
        opponents = {name: evaluation_opponent(name, seed=args.seed) for name in names}
        table: dict[str, Any] = evaluation_table(timed, opponents, args.games, openings=openings)
        grades = solver_grades(timed, required=bool(args.grade)) if grading else None
        latency = None if args.json else move_latency(agent, args.seed)
    finally:
        algo.stop()
    if args.json:
        print(json.dumps({"matches": table, "grades": grades} if args.grade else table))
        return 0
    print(
        f"{described_agent} from {path}: {args.games} games per seat against each opponent, "
        f"from {described}; opponents seeded with {args.seed}"
    )
    print(format_table(table))
    print("distinct: different games (seat and moves); 95% CI: Wilson interval of the score = (wins + draws/2) / games")
    print(
        f"agent's time per move: {latency:.4f} s one position at a time (mean of {LATENCY_POSITIONS}); "
        f"{timed.seconds_per_move:.4f} s over its {timed.moves} moves above, positions batched as the "
        f"matches{' and grades' if grades is not None else ''} play them"
    )
    if grades is not None:
        print(
            "\nsolver grades: the agent's move on positions labelled by rlarena's exact solver "
            "(rlarena.games.connect_four.grading)"
        )
        print(format_grades(grades))
    return 0


def choose_agent(
    algo: Algorithm, path: str, policy_id: str | None, search: int | None, seed: int
) -> tuple[Policy, str]:
    """The policy that plays, and a few words naming it: the network's greedy move ("learned", or the
    checkpoint's only policy, unless `policy_id` names one), or with `search` an AlphaZero checkpoint's
    search agent (its network through MCTS)."""
    from rlarena.games.mcts import SERVE_LEAVES_PER_CALL

    if search is not None:
        if not isinstance(algo, SearchAgent):
            raise ConfigError(
                f"--search plays an AlphaZero checkpoint's search agent; {path} is a "
                f"{type(algo).__name__} checkpoint, which has none. Run without --search."
            )
        described = (
            f"search agent ({search} simulations per move, MCTS over the network, "
            f"{SERVE_LEAVES_PER_CALL} leaves per call)"
        )
        return algo.search_policy(search, seed=seed, leaves_per_call=SERVE_LEAVES_PER_CALL), described
    if policy_id is None:
        policy_id = trained_policy_id(algo)
    return algo.get_policy(policy_id), f"{policy_id} (network, greedy)"


def trained_policy_id(algo: Algorithm) -> str:
    """The policy a Connect Four checkpoint plays by default: "learned" (the PPO league's learner), or
    the checkpoint's only policy (AlphaZero's "default_policy")."""
    return "learned" if "learned" in algo.policies or len(algo.policies) != 1 else next(iter(algo.policies))


class TimedPolicy(Policy):
    """`policy`, with the wall time of its compute_actions calls and the moves they chose added up."""

    def __init__(self, policy: Policy):
        super().__init__(policy.observation_space, policy.action_space)
        self.policy, self.seconds, self.moves = policy, 0.0, 0

    def compute_actions(self, obs_batch: Any, explore: bool = True) -> np.ndarray:
        start = time.perf_counter()
        actions = policy_actions(self.policy, obs_batch, explore, len(obs_batch["observation"]))
        self.seconds += time.perf_counter() - start
        self.moves += len(actions)
        return actions

    @property
    def seconds_per_move(self) -> float:
        return self.seconds / max(self.moves, 1)


def move_latency(agent: Policy, seed: int, count: int = LATENCY_POSITIONS) -> float:
    """Mean seconds the agent takes for one move of one game (a batch of one), over `count` positions
    after random balanced openings: what a person playing it waits."""
    seconds = []
    for opening in random_openings(count, 2, 8, seed):
        game = Game()
        for ply, col in enumerate(opening):
            game.play(col, ply % 2)
        batch = {"observation": game.planes(len(opening) % 2)[None], "action_mask": game.legal_mask()[None]}
        start = time.perf_counter()
        policy_actions(agent, batch, False, 1)
        seconds.append(time.perf_counter() - start)
    return float(np.mean(seconds))


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
    lines += [
        f"{stage:8s} {row['n']:9d} {row['outcome_kept']:13.3f} {row['optimal_move']:13.3f}"
        for stage, row in grades.items()
    ]
    return "\n".join(lines)
