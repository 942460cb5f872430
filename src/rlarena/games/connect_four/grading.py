"""Grading a Connect Four policy move by move against the exact solver's scores.

    sets = load_positions()                      # {"end": [...], "middle": [...], "opening": [...]}
    grade(policy, sets["middle"])                # {"outcome_kept": 0.97, "optimal_move": 0.71, "n": 300}

A test position is a game prefix in Pons' notation ("4453": columns 1-7, first player first) and the
exact score of every column for the side to move (None for a full column), as `solver.analyse` gives
them. The policy sees the position as an env observation batch {"observation": int8 [B, 6, 7, 2],
"action_mask": int8 [B, 7]} (plane 0 the mover's stones, row 0 at the top) and plays greedily
(explore=False). Two rates (the issue's metrics):
- outcome kept: the chosen column's score has the sign of the best score (a win stays a win, a draw a
  draw; in a lost position every legal move keeps the outcome);
- optimal move: the chosen column has the best score (the fastest win, the slowest loss).
An illegal column counts as neither.

The stored sets (data/connect_four_positions.json.gz) are made by
scripts/make_connect_four_positions.py from games between the project's own players; see data/README.md.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from rlarena.checkpoint.io import write_file_atomic
from rlarena.errors import ConfigError
from rlarena.games.connect_four.rules import COLS, ROWS
from rlarena.games.connect_four.solver import from_moves, legal_mask, to_planes
from rlarena.policies.policy import Policy, policy_actions

STAGES = ("end", "middle", "opening")  # <= 14 empty cells, 15-28, > 28 (see positions.STAGE_EMPTY)
DATA_FILE = Path(__file__).parent / "data" / "connect_four_positions.json.gz"


@dataclass(frozen=True)
class Position:
    """A test position: the game so far (Pons' notation) and each column's exact score."""

    moves: str
    scores: tuple[int | None, ...]  # [7] the side to move's exact score per column, None when full

    @property
    def best(self) -> int:
        return max(s for s in self.scores if s is not None)

    @property
    def empty(self) -> int:
        return ROWS * COLS - len(self.moves)

    def observation(self) -> dict[str, np.ndarray]:
        """The side to move's observation, as the env gives it (no batch axis)."""
        cur, opp = from_moves(self.moves)
        return {"observation": to_planes(cur, opp), "action_mask": legal_mask(cur, opp)}


def grade(policy: Policy, positions: list[Position]) -> dict[str, float | int]:
    """{"outcome_kept", "optimal_move": rates over the positions, "n": their number} of the policy's
    greedy choices."""
    if not positions:
        raise ValueError("grade() needs at least one position; load them with load_positions().")
    observations = [p.observation() for p in positions]
    batch = {key: np.stack([o[key] for o in observations]) for key in ("observation", "action_mask")}
    actions = policy_actions(policy, batch, explore=False, batch_size=len(positions))
    kept = optimal = 0
    for position, action in zip(positions, actions.tolist()):
        score = position.scores[int(action)] if 0 <= int(action) < COLS else None
        if score is None:
            continue
        best = position.best
        kept += int(np.sign(score) == np.sign(best))
        optimal += int(score == best)
    n = len(positions)
    return {"outcome_kept": kept / n, "optimal_move": optimal / n, "n": n}


def load_positions(path: str | Path = DATA_FILE) -> dict[str, list[Position]]:
    """The stored test sets by stage ("end", "middle", "opening")."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        data = json.load(f)
    return {
        stage: [Position(row["moves"], tuple(row["scores"])) for row in data["stages"][stage]]
        for stage in data["stages"]
    }


def save_positions(path: str | Path, stages: dict[str, list[Position]], meta: dict[str, Any]) -> None:
    """Writes the sets (and `meta`: how they were made) as gzipped JSON, one position per line, under a
    temporary name renamed into place (a `path` that is a symbolic link is refused)."""
    lines = ["{", f'"meta": {json.dumps(meta, sort_keys=True)},', '"stages": {']
    for i, (stage, positions) in enumerate(stages.items()):
        rows = ",\n".join(json.dumps({"moves": p.moves, "scores": list(p.scores)}) for p in positions)
        lines.append(f'"{stage}": [\n{rows}\n]' + ("," if i < len(stages) - 1 else ""))
    lines.append("}}")

    def write(raw: IO[bytes]) -> None:
        # no name and mtime 0 in the gzip header: the same sets give the same bytes wherever written
        with gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as f:
            f.write("\n".join(lines).encode("utf-8"))

    write_file_atomic(path, write, "the test positions", error=ConfigError)
