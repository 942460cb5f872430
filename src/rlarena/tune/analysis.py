"""What rlarena.tune returns, read from rlarena.run's Results and the files each trial wrote:
ExperimentAnalysis (tune.run), ResultGrid and Result (Tuner.fit), Checkpoint.

Ray Tune's names and semantics: "best" compares a metric across trials with a `scope` ("last": the
last value each trial reported, "all": its best value ever, "avg" / "last-5-avg" / "last-10-avg");
a metric that no trial reports gives None and a notice naming the closest result keys, as Tune
logs a warning and returns None (ResultGrid.get_best_result raises instead, as Ray's does).
"""

from __future__ import annotations

import math
import numbers
import os
import time
from typing import Any

from rlarena.errors import ConfigError, closest, notice
from rlarena.train.results import Results, TrialResult, _pandas

SCOPES = ("last", "all", "avg", "last-5-avg", "last-10-avg")


class Checkpoint(str):
    """A checkpoint directory: the path itself (Ray Tune 1.x returned paths), with Ray 2.x's
    `.path` and `.to_directory()`, so `Algorithm.from_checkpoint(checkpoint)` and
    `Algorithm.from_checkpoint(checkpoint.path)` both work."""

    @property
    def path(self) -> str:
        return str(self)

    def to_directory(self, path: str | os.PathLike | None = None) -> str:
        """The checkpoint's directory; copied to `path` when one is given (Ray's semantics). The copy
        reads only files inside the checkpoint and writes each under a temporary name renamed into
        place, so a link in either directory is never followed (copy_dir)."""
        if path is None:
            return str(self)
        from rlarena.checkpoint.io import copy_dir

        copy_dir(self, path)
        return str(path)

    @classmethod
    def from_directory(cls, path: str | os.PathLike) -> Checkpoint:
        return cls(str(path))

    def __repr__(self) -> str:
        return f"Checkpoint(path={str(self)!r})"


def _checkpoint(path: str | None) -> Checkpoint | None:
    return None if path is None else Checkpoint(path)


def _number(value: Any) -> float | None:
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _check_mode(mode: str | None, what: str) -> str:
    if mode not in ("max", "min"):
        raise ConfigError(f"{what}: mode={mode!r}; use 'max' or 'min'.")
    return mode


def _scope_value(values: list[float], mode: str, scope: str) -> float:
    if scope == "last":
        return values[-1]
    if scope == "all":
        return max(values) if mode == "max" else min(values)
    window = values if scope == "avg" else values[-int(scope.split("-")[1]) :]
    return sum(window) / len(window)


def _flatten(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as "a/b" columns (Tune's flatten_dict)."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value
    return out


class ExperimentAnalysis:
    """The trials of a tune.run call, or of an experiment directory: ExperimentAnalysis(path).

    `default_metric` / `default_mode` are tune.run's metric= and mode=; the best_* properties need
    them, the get_best_* methods take them as arguments too.
    """

    def __init__(
        self,
        experiment: Results | str | os.PathLike,
        default_metric: str | None = None,
        default_mode: str | None = None,
        stats: dict[str, float] | None = None,
    ):
        self.results = experiment if isinstance(experiment, Results) else Results.from_path(experiment)
        if default_mode is not None:
            _check_mode(default_mode, "ExperimentAnalysis")
        self.default_metric = default_metric
        self.default_mode = default_mode
        self._stats = stats

    # -- trials -----------------------------------------------------------------------------
    @property
    def trials(self) -> list[TrialResult]:
        return self.results.trials

    @property
    def experiment_path(self) -> str:
        return self.results.experiment_path

    def _defaults(self, metric: str | None, mode: str | None, what: str) -> tuple[str, str]:
        metric, mode = metric or self.default_metric, mode or self.default_mode
        if metric is None or mode is None:
            raise ConfigError(
                f"{what} needs a metric and a mode: pass metric= and mode= to it, or to "
                f"tune.run(..., metric='episode_reward_mean', mode='max')."
            )
        return metric, _check_mode(mode, what)

    def _values(self, trial: TrialResult, metric: str) -> list[float]:
        """The finite values of `metric` in the trial's results, in iteration order."""
        rows = trial.results if trial.last_result is not None else []
        return [v for v in (_number(r.get(metric)) for r in rows) if v is not None]

    def _keys_hint(self, metric: str) -> str:
        """' Did you mean ...?' among every key any trial reported (evaluation keys come every N iterations)."""
        return closest(metric, {k for t in self.trials if t.last_result for r in t.results for k in r})

    def _best(self, metric: str | None, mode: str | None, scope: str, what: str) -> tuple[TrialResult | None, str]:
        """(the best trial or None when no trial reports the metric, the metric used)."""
        metric, mode = self._defaults(metric, mode, what)
        if scope not in SCOPES:
            raise ConfigError(f"{what}: scope={scope!r}; use one of {', '.join(SCOPES)}.")
        scored = [(t, _scope_value(v, mode, scope)) for t in self.trials if (v := self._values(t, metric))]
        sign = 1.0 if mode == "max" else -1.0
        return (max(scored, key=lambda s: sign * s[1])[0] if scored else None), metric

    def get_best_trial(
        self, metric: str | None = None, mode: str | None = None, scope: str = "last"
    ) -> TrialResult | None:
        best, metric = self._best(metric, mode, scope, "get_best_trial")
        if best is None:
            notice(
                f"No trial reports {metric!r}, so there is no best one (None).{self._keys_hint(metric)} "
                f"See a trial's result keys with list(analysis.trials[0].last_result)."
            )
        return best

    def get_best_config(
        self, metric: str | None = None, mode: str | None = None, scope: str = "last"
    ) -> dict[str, Any] | None:
        trial = self.get_best_trial(metric, mode, scope)
        return trial.config if trial else None

    def get_best_logdir(self, metric: str | None = None, mode: str | None = None, scope: str = "last") -> str | None:
        trial = self.get_best_trial(metric, mode, scope)
        return trial.path if trial else None

    def get_trial_checkpoints_paths(
        self, trial: TrialResult, metric: str = "training_iteration"
    ) -> list[tuple[str, float | None]]:
        """[(checkpoint path, the trial's `metric` at that checkpoint's iteration)], oldest first."""
        rows = {int(r["training_iteration"]): r for r in trial.results if "training_iteration" in r}
        return [(r.path, _number(rows.get(r.iteration, {}).get(metric))) for r in trial.checkpoints]

    def get_best_checkpoint(
        self, trial: TrialResult, metric: str | None = None, mode: str | None = None
    ) -> Checkpoint | None:
        """The trial's checkpoint whose iteration had the best `metric` (the latest on ties)."""
        metric, mode = self._defaults(metric, mode, "get_best_checkpoint")
        scored = [
            (value, i, path)
            for i, (path, value) in enumerate(self.get_trial_checkpoints_paths(trial, metric))
            if value is not None
        ]
        if not scored:
            if trial.checkpoints:
                notice(
                    f"No checkpoint of trial {trial.trial_id} has {metric!r} in its iteration's result, "
                    f"so there is no best one (None)."
                )
            return None
        sign = 1.0 if mode == "max" else -1.0
        return Checkpoint(max(scored, key=lambda s: (sign * s[0], s[1]))[2])

    def get_last_checkpoint(
        self, trial: TrialResult | None = None, metric: str = "training_iteration", mode: str = "max"
    ) -> Checkpoint | None:
        """The newest checkpoint of `trial`, or of the best trial by `metric` (default: the one that
        trained longest)."""
        if trial is None:
            trial = self.get_best_trial(metric, mode)
        return _checkpoint(trial.last_checkpoint) if trial else None

    def get_all_configs(self) -> dict[str, dict[str, Any]]:
        return {t.path: t.config for t in self.trials}

    # -- the best trial by tune.run's metric and mode -------------------------------------
    @property
    def best_trial(self) -> TrialResult | None:
        return self.get_best_trial(*self._defaults(None, None, "best_trial"))

    @property
    def best_config(self) -> dict[str, Any] | None:
        return self.get_best_config(*self._defaults(None, None, "best_config"))

    @property
    def best_logdir(self) -> str | None:
        return self.get_best_logdir(*self._defaults(None, None, "best_logdir"))

    @property
    def best_checkpoint(self) -> Checkpoint | None:
        metric, mode = self._defaults(None, None, "best_checkpoint")
        trial = self.get_best_trial(metric, mode)
        return self.get_best_checkpoint(trial, metric, mode) if trial else None

    @property
    def best_result(self) -> dict[str, Any] | None:
        trial = self.get_best_trial(*self._defaults(None, None, "best_result"))
        return trial.last_result if trial else None

    @property
    def best_dataframe(self) -> Any:
        trial = self.get_best_trial(*self._defaults(None, None, "best_dataframe"))
        return trial.dataframe if trial else None

    @property
    def best_result_df(self) -> Any:
        result = self.best_result
        return _pandas().DataFrame.from_records([_flatten(result)], index="trial_id") if result else None

    # -- tables -----------------------------------------------------------------------------
    def _row(self, trial: TrialResult, result: dict[str, Any] | None) -> dict[str, Any]:
        row = _flatten(dict(result or {"trial_id": trial.trial_id}))
        row.update(_flatten(trial.config, "config/"))
        row["logdir"] = trial.path
        return row

    @property
    def results_df(self) -> Any:
        """One row per trial: its last result, its config as config/... columns; indexed by trial_id."""
        return _pandas().DataFrame.from_records([self._row(t, t.last_result) for t in self.trials], index="trial_id")

    def dataframe(self, metric: str | None = None, mode: str | None = None) -> Any:
        """One row per trial: its last result, or with metric and mode the result where the metric
        was best (not necessarily the last)."""
        rows = []
        for trial in self.trials:
            result = trial.last_result
            if metric is not None and mode is not None:
                _check_mode(mode, "dataframe")
                scored = [r for r in trial.results if _number(r.get(metric)) is not None]
                if scored:
                    pick = max if mode == "max" else min
                    result = pick(scored, key=lambda r: _number(r.get(metric)))
            rows.append(self._row(trial, result))
        return _pandas().DataFrame(rows)

    @property
    def trial_dataframes(self) -> dict[str, Any]:
        """{trial directory: a dataframe of every iteration}."""
        return {t.path: t.dataframe for t in self.trials}

    def stats(self) -> dict[str, float]:
        """{"start_time", "timestamp"}: when the run started and ended (seconds since the epoch)."""
        if self._stats is not None:
            return dict(self._stats)
        rows = [r for t in self.trials for r in (t.results if t.last_result else [])]
        if not rows:
            return {"start_time": time.time(), "timestamp": time.time()}
        return {
            "start_time": min(float(r["timestamp"]) - float(r.get("time_since_restore", 0.0)) for r in rows),
            "timestamp": max(float(r["timestamp"]) for r in rows),
        }

    def __repr__(self) -> str:
        return f"ExperimentAnalysis({self.experiment_path!r}, trials={len(self.trials)})"


class Result:
    """One trial of Tuner.fit(): its last metrics, directory, latest checkpoint and config."""

    def __init__(self, trial: TrialResult):
        self._trial = trial

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self._trial.last_result or {})

    @property
    def path(self) -> str:
        return self._trial.path

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The trial's latest checkpoint (Ray's Result.checkpoint)."""
        return _checkpoint(self._trial.last_checkpoint)

    @property
    def best_checkpoints(self) -> list[tuple[Checkpoint, dict[str, Any]]]:
        """[(checkpoint, the result of its iteration)] for every checkpoint kept."""
        rows = {int(r["training_iteration"]): r for r in self._trial.results if "training_iteration" in r}
        return [(Checkpoint(r.path), rows.get(r.iteration, {})) for r in self._trial.checkpoints]

    @property
    def config(self) -> dict[str, Any]:
        return self._trial.config

    @property
    def error(self) -> str | None:
        return self._trial.error

    @property
    def metrics_dataframe(self) -> Any:
        return self._trial.dataframe

    def __repr__(self) -> str:
        shown = {k: self.metrics[k] for k in ("training_iteration", "episode_return_mean") if k in self.metrics}
        return f"Result(metrics={shown}, path={self.path!r}, checkpoint={self.checkpoint!r})"


class ResultGrid:
    """The trials of Tuner.fit(): indexable, iterable, with get_best_result and get_dataframe."""

    def __init__(self, analysis: ExperimentAnalysis):
        self._analysis = analysis

    @property
    def experiment_path(self) -> str:
        return self._analysis.experiment_path

    def __len__(self) -> int:
        return len(self._analysis.trials)

    def __getitem__(self, i: int) -> Result:
        return Result(self._analysis.trials[i])

    def __iter__(self):
        return (Result(t) for t in self._analysis.trials)

    def get_best_result(
        self, metric: str | None = None, mode: str | None = None, scope: str = "last", filter_nan_and_inf: bool = True
    ) -> Result:
        """The trial best by `metric` (NaN and inf values never count). Like Ray, an error when no
        trial reports the metric."""
        trial, metric = self._analysis._best(metric, mode, scope, "get_best_result")
        if trial is None:
            raise ConfigError(
                f"get_best_result: no trial reports {metric!r}.{self._analysis._keys_hint(metric)} "
                f"See a trial's result keys with list(results[0].metrics)."
            )
        return Result(trial)

    def get_dataframe(self, filter_metric: str | None = None, filter_mode: str | None = None) -> Any:
        return self._analysis.dataframe(filter_metric, filter_mode)

    @property
    def errors(self) -> list[str]:
        return [t.error for t in self._analysis.trials if t.error]

    @property
    def num_errors(self) -> int:
        return sum(t.status == "ERROR" for t in self._analysis.trials)

    @property
    def num_terminated(self) -> int:
        return sum(t.status == "TERMINATED" for t in self._analysis.trials)

    def __repr__(self) -> str:
        return f"ResultGrid({self.experiment_path!r}, trials={len(self)})"
