"""Which checkpoints a trial keeps: checkpoints/checkpoint_000010/ ... written with algo.save().

num_to_keep keeps the best N by `score_attribute` (or the N most recent when there is none); the
latest checkpoint is always kept as well, so a run can resume where it stopped (Ray Tune does the
same). The best checkpoint is ranked by the score attribute, or by episode_return_mean.

A trial directory may come from elsewhere: only real directories inside it are its checkpoints (a
link, to one checkpoint or as checkpoints/ itself, is never loaded, pruned or written through).
"""

from __future__ import annotations

import math
import numbers
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlarena.checkpoint.io import METADATA_FILE, make_dir
from rlarena.errors import ConfigError

DEFAULT_SCORE_ATTRIBUTE = "episode_return_mean"
_NAME = re.compile(r"^checkpoint_(\d+)$")


@dataclass
class CheckpointRecord:
    iteration: int
    path: str
    score: float | None  # the ranking attribute's value when saved; None if absent or NaN


def score_of(result: dict[str, Any] | None, attribute: str) -> float | None:
    value = (result or {}).get(attribute)
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


class CheckpointManager:
    def __init__(
        self,
        directory: Path,
        num_to_keep: int | None = None,
        score_attribute: str | None = None,
        score_order: str = "max",
    ):
        if score_order not in ("max", "min"):
            raise ConfigError(f"checkpoint_score_order={score_order!r}: use 'max' or 'min'.")
        if num_to_keep is not None and num_to_keep < 1:
            raise ConfigError(f"num_to_keep={num_to_keep}: keep at least 1 checkpoint, or None for all.")
        self.directory = directory
        self.num_to_keep = num_to_keep
        self.score_attribute = score_attribute
        self.rank_attribute = score_attribute or DEFAULT_SCORE_ATTRIBUTE
        self.sign = 1.0 if score_order == "max" else -1.0
        self.records: list[CheckpointRecord] = []  # by iteration
        self.ignored: list[Path] = []  # symbolic links scan() found where checkpoints would be

    # -- saving -------------------------------------------------------------------------------
    def save(self, algo: Any, result: dict[str, Any]) -> CheckpointRecord:
        make_dir(self.directory, "a checkpoint")  # a link as checkpoints/ is refused, not written through
        path = algo.save(self.directory / f"checkpoint_{algo.iteration:06d}")
        record = CheckpointRecord(algo.iteration, path, score_of(result, self.rank_attribute))
        self.records = [r for r in self.records if r.iteration != record.iteration] + [record]
        self.records.sort(key=lambda r: r.iteration)
        self._prune()
        return record

    def _rank_key(self, record: CheckpointRecord) -> tuple[bool, float, int]:
        """Larger is better: a score beats no score; ties go to the later checkpoint."""
        return (record.score is not None, self.sign * (record.score or 0.0), record.iteration)

    def _prune(self) -> None:
        if self.num_to_keep is None or len(self.records) <= self.num_to_keep:
            return
        latest = self.records[-1]
        if self.score_attribute is None:
            keep = self.records[-self.num_to_keep :]
        else:
            keep = sorted(self.records, key=self._rank_key, reverse=True)[: self.num_to_keep]
        keep_ids = {r.iteration for r in keep} | {latest.iteration}
        for record in self.records:
            if record.iteration not in keep_ids:
                shutil.rmtree(record.path, ignore_errors=True)
        self.records = [r for r in self.records if r.iteration in keep_ids]

    # -- queries ------------------------------------------------------------------------------
    @property
    def latest(self) -> CheckpointRecord | None:
        return self.records[-1] if self.records else None

    @property
    def best(self) -> CheckpointRecord | None:
        return max(self.records, key=self._rank_key) if self.records else None

    # -- from disk (resume, finished trials) --------------------------------------------------
    def scan(self, results_by_iteration: dict[int, dict[str, Any]], clean: bool = False) -> None:
        """Rebuild the records from the checkpoint directories on disk; `clean` removes the
        temporary directories of writes that a crash cut short. A symbolic link is never a checkpoint
        of this trial (save() makes none), nor is anything under a checkpoints/ that is a link: it is
        neither recorded (loading it would read outside the trial, pruning would delete its target) nor
        removed; `ignored` lists such links for the caller to report."""
        self.records, self.ignored = [], []
        if self.directory.is_symlink():
            self.ignored.append(self.directory)
            return
        if not self.directory.is_dir():
            return
        for child in sorted(self.directory.iterdir()):
            if child.is_symlink():
                self.ignored.append(child)
                continue
            if child.name.startswith("."):  # a write killed midway (tmp/old)
                if clean and child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                continue
            match = _NAME.match(child.name)
            if match and (child / METADATA_FILE).exists():
                iteration = int(match.group(1))
                score = score_of(results_by_iteration.get(iteration), self.rank_attribute)
                self.records.append(CheckpointRecord(iteration, str(child.resolve()), score))
        self.records.sort(key=lambda r: r.iteration)

    def set_aside(self, record: CheckpointRecord) -> str:
        """Rename a checkpoint that cannot be loaded to *.corrupted (kept for inspection, never used)."""
        target, n = f"{record.path}.corrupted", 1
        while Path(target).exists():
            target, n = f"{record.path}.corrupted{n}", n + 1
        Path(record.path).rename(target)
        self.records = [r for r in self.records if r.iteration != record.iteration]
        return target
