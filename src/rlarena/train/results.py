"""What rlarena.run returns: the trials, their checkpoints, and a pandas view (imported lazily).

results.dataframe is one row per iteration for a single trial, one row per trial (ranked by the
score attribute) for a sweep.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlarena.checkpoint.io import is_plain_name, read_json
from rlarena.errors import CheckpointError, ConfigError, notice
from rlarena.train.checkpoints import (
    DEFAULT_SCORE_ATTRIBUTE,
    CheckpointManager,
    CheckpointRecord,
    score_of,
)
from rlarena.train.loggers import PARAMS_FILE, read_results

STATE_FILE = "experiment_state.json"
TRIAL_STATUSES = ("PENDING", "RUNNING", "INTERRUPTED", "TERMINATED", "ERROR")
_TRIAL_KEYS = {"trial_id": str, "dirname": str, "params": dict, "status": str, "error": (str, type(None))}


def _pandas():
    try:
        import pandas
    except ImportError:
        raise ConfigError(
            "results.dataframe needs pandas: pip install pandas (or the logging extra: pip install 'rlarena[logging]')."
        ) from None
    return pandas


@dataclass
class TrialResult:
    trial_id: str
    path: str  # the trial directory
    params: dict[str, Any]  # the options this trial's sweep variant set (empty for a single run)
    status: str  # PENDING | RUNNING | INTERRUPTED | TERMINATED | ERROR
    error: str | None = None
    last_result: dict[str, Any] | None = None
    checkpoints: list[CheckpointRecord] = field(default_factory=list)
    best_checkpoint: str | None = None
    last_checkpoint: str | None = None

    @property
    def config(self) -> dict[str, Any]:
        """The trial's full config as written to params.json."""
        try:
            params = read_json(Path(self.path) / PARAMS_FILE, "Trial params")
        except FileNotFoundError:
            return {}
        return params if isinstance(params, dict) else {}

    @property
    def results(self) -> list[dict[str, Any]]:
        """Every iteration's result, read from result.json."""
        return read_results(self.path)

    @property
    def dataframe(self) -> Any:
        return _pandas().DataFrame(self.results)


class Results:
    """The trials of one rlarena.run call (or of an experiment directory: Results.from_path)."""

    def __init__(
        self,
        experiment_path: str,
        trials: list[TrialResult],
        score_attribute: str | None = None,
        score_order: str = "max",
        interrupted: bool = False,
    ):
        self.experiment_path = experiment_path
        self.trials = trials
        self.score_attribute = score_attribute or DEFAULT_SCORE_ATTRIBUTE
        self.score_order = score_order
        self.interrupted = interrupted

    def _key(self, trial: TrialResult) -> tuple[bool, float]:
        score = score_of(trial.last_result, self.score_attribute)
        sign = 1.0 if self.score_order == "max" else -1.0
        return (score is not None, sign * (score or 0.0))

    def ranked(self) -> list[TrialResult]:
        """Trials best first by the score attribute of their last result (Tune's scope='last')."""
        return sorted(self.trials, key=self._key, reverse=True)

    @property
    def best_trial(self) -> TrialResult | None:
        return self.ranked()[0] if self.trials else None

    @property
    def best_result(self) -> dict[str, Any] | None:
        trial = self.best_trial
        return trial.last_result if trial else None

    @property
    def best_checkpoint(self) -> str | None:
        """The best checkpoint of any trial, by the score attribute's value when it was saved."""
        sign = 1.0 if self.score_order == "max" else -1.0
        records = [r for t in self.trials for r in t.checkpoints]
        if not records:
            return None
        return max(records, key=lambda r: (r.score is not None, sign * (r.score or 0.0), r.iteration)).path

    @property
    def last_checkpoint(self) -> str | None:
        """The latest checkpoint of the best trial (of the only trial, for a single run)."""
        trial = self.best_trial
        return trial.last_checkpoint if trial else None

    @property
    def errors(self) -> dict[str, str]:
        return {t.trial_id: t.error for t in self.trials if t.error}

    @property
    def dataframe(self) -> Any:
        """One row per iteration (one trial), or one row per trial, best first (a sweep)."""
        pd = _pandas()
        if len(self.trials) == 1:
            return self.trials[0].dataframe
        rows = []
        for trial in self.ranked():
            row: dict[str, Any] = {"trial_id": trial.trial_id, "status": trial.status}
            row.update({f"config/{k}": v for k, v in trial.params.items()})
            row.update(trial.last_result or {})
            row.update(best_checkpoint=trial.best_checkpoint, path=trial.path, error=trial.error)
            rows.append(row)
        return pd.DataFrame(rows)

    @classmethod
    def from_path(cls, experiment_path: str | Path) -> Results:
        """Load the results of an experiment directory written by rlarena.run."""
        root = Path(experiment_path)
        state_path = root / STATE_FILE
        if not state_path.exists():
            raise ConfigError(f"{str(root)!r} is not an rlarena experiment directory (no {STATE_FILE}).")
        state = read_state(root)
        score_attribute = state.get("checkpoint_score_attribute")
        trials = [
            load_trial(root, t, score_attribute, state.get("checkpoint_score_order", "max")) for t in state["trials"]
        ]
        return cls(str(root.resolve()), trials, score_attribute, state.get("checkpoint_score_order", "max"))

    def __repr__(self) -> str:
        return f"Results({self.experiment_path!r}, trials={len(self.trials)}, best_checkpoint={self.best_checkpoint!r})"


def read_state(root: Path) -> dict[str, Any]:
    """The experiment_state.json of the experiment directory `root`, checked (it may come from anyone:
    a resumed run writes into and deletes under each trial's directory): a CheckpointError when it is
    not JSON rlarena wrote, or a trial's dirname is not a plain directory name (`../../x`)."""
    path = root / STATE_FILE
    state = read_json(path, "Experiment state")

    def corrupted(problem: str) -> CheckpointError:
        return CheckpointError(
            f"Experiment state {str(path)!r} is corrupted: {problem}. It was not written by "
            f"rlarena, or was edited; this run cannot be resumed or read."
        )

    if not isinstance(state, dict) or not isinstance(state.get("trials"), list):
        raise corrupted("expected an object with a list of trials")
    if not isinstance(state.get("checkpoint_score_attribute"), str | None):
        raise corrupted(f"checkpoint_score_attribute is {state['checkpoint_score_attribute']!r}, not a result key")
    if state.get("checkpoint_score_order", "max") not in ("max", "min"):
        raise corrupted(f"checkpoint_score_order is {state['checkpoint_score_order']!r}, not 'max' or 'min'")
    dirnames: set[str] = set()
    for i, trial in enumerate(state["trials"]):
        if not isinstance(trial, dict):
            raise corrupted(f"trial {i} is {type(trial).__name__}, not an object")
        unknown = [k for k in trial if k not in _TRIAL_KEYS]
        missing = [k for k in ("trial_id", "dirname", "params") if k not in trial]
        if unknown or missing:
            raise corrupted(f"trial {i} " + (f"has unknown keys {unknown}" if unknown else f"lacks {missing}"))
        wrong = [k for k, kind in _TRIAL_KEYS.items() if k in trial and not isinstance(trial[k], kind)]
        if wrong:
            raise corrupted(f"trial {i}'s {wrong[0]} is {trial[wrong[0]]!r}, of the wrong type")
        if trial.get("status", "PENDING") not in TRIAL_STATUSES:
            raise corrupted(f"trial {i}'s status is {trial['status']!r}, not one of {', '.join(TRIAL_STATUSES)}")
        check_dirname(trial["dirname"], path)
        if trial["dirname"] in dirnames:
            raise corrupted(f"two trials have the directory {trial['dirname']!r}")
        dirnames.add(trial["dirname"])
    return state


def check_dirname(dirname: Any, state_path: Path) -> None:
    """A trial's directory must be a plain name inside the experiment directory: `../../x`, `/etc` or
    `a/b` are refused before anything is read or written."""
    if not is_plain_name(dirname) or dirname.startswith("."):
        raise CheckpointError(
            f"Experiment state {str(state_path)!r} is refused: a trial's directory is "
            f"{str(dirname)[:200]!r}, which is not a plain directory name inside the experiment "
            f"(rlarena reads and writes nothing outside it). It was not written by rlarena, or "
            f"was edited."
        )


def load_trial(root: Path, entry: dict[str, Any], score_attribute: str | None, score_order: str) -> TrialResult:
    """A TrialResult from a trial directory on disk (an entry of experiment_state.json). Its files are
    read only inside the experiment: a trial directory that is a symbolic link is refused, and a
    checkpoint that is one is left out (with a notice)."""
    check_dirname(entry["dirname"], root / STATE_FILE)
    trial_dir = root / entry["dirname"]
    if trial_dir.is_symlink():
        raise CheckpointError(
            f"Cannot read {str(root)!r}: {str(trial_dir)!r}, trial {entry['trial_id']}'s directory, "
            f"is a symbolic link (to {os.readlink(trial_dir)!r}), and rlarena reads an experiment "
            f"only inside its directory. Replace the link with what it points to."
        )
    rows = read_results(trial_dir)
    manager = CheckpointManager(trial_dir / "checkpoints", None, score_attribute, score_order)
    manager.scan({int(r["training_iteration"]): r for r in rows})
    if manager.ignored:
        notice(
            f"Trial {entry['trial_id']}: {', '.join(str(p) for p in manager.ignored)} left out: a symbolic "
            f"link is never one of a trial's checkpoints (it could lead anywhere). Replace it with what it "
            f"points to if you trust it."
        )
    return TrialResult(
        entry["trial_id"],
        str(trial_dir.resolve()),
        entry.get("params", {}),
        entry.get("status", "PENDING"),
        entry.get("error"),
        rows[-1] if rows else None,
        list(manager.records),
        manager.best.path if manager.best else None,
        manager.latest.path if manager.latest else None,
    )
