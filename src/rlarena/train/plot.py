"""Learning-curve PNGs from progress.csv. matplotlib is imported here, only when a plot is drawn,
through its object API (Figure + Agg), so a user's pyplot backend and state are left alone.

A run directory may come from elsewhere: progress.csv is read only from inside it (no link out, no FIFO
or device, at most rlarena.limits.MAX_LOG_BYTES), a trial directory that is a link is refused, and a
PNG is written under a temporary name and renamed into place (a link planted at learning_curve.png is
replaced, never written through)."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

from rlarena.checkpoint.io import atomic_write
from rlarena.errors import CheckpointError, ConfigError, closest
from rlarena.train.loggers import PROGRESS_FILE, read_log

CURVE_FILE = "learning_curve.png"
COMPARE_FILE = "learning_curves.png"
X_KEY = "num_env_steps_sampled_lifetime"
Y_KEY = "episode_return_mean"
EVAL_KEY = "evaluation/episode_return_mean"


def _columns(progress: Path) -> dict[str, list[float]]:
    """progress.csv's columns as numbers (NaN where a cell is empty or not a number), read row by row."""
    out: dict[str, list[float]] = {}
    with open(read_log(progress, "Trial progress"), newline="", encoding="utf-8", errors="replace") as f:
        try:
            for row in csv.DictReader(f):
                for key, text in row.items():
                    if key is None:
                        continue
                    try:
                        value = float(text) if text not in ("", None) else math.nan
                    except (TypeError, ValueError):
                        value = math.nan
                    out.setdefault(key, []).append(value)
        except csv.Error as exc:  # e.g. a cell longer than the csv module reads
            raise ConfigError(f"{str(progress)!r} is not a table rlarena wrote ({exc}).") from None
    return out


def _series(cols: dict[str, list[float]], x_key: str, y_key: str) -> tuple[list[float], list[float]]:
    xs, ys = cols.get(x_key, []), cols.get(y_key, [])
    pairs = [(x, y) for x, y in zip(xs, ys) if math.isfinite(x) and math.isfinite(y)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _figure():
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError(
            "Plotting needs matplotlib: pip install matplotlib (or the logging extra: pip install 'rlarena[logging]')."
        ) from None
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    return fig, fig.subplots()


def _save(fig: Any, path: Path, replace_link: bool) -> Path:
    """The figure as a PNG at `path`, renamed into place; `replace_link`: a name rlarena picks in a run
    directory (a link there is replaced), else a path the caller named (a link is refused)."""
    with atomic_write(path, "the plot", replace_link=replace_link, error=ConfigError) as out:
        fig.savefig(out.file, format="png", dpi=100)
    return path


def plot_trial(
    trial_dir: str | Path, y_keys: list[str] | None = None, x_key: str = X_KEY, output: str | Path | None = None
) -> Path:
    """learning_curve.png in the trial directory (or `output`): return mean (min-max band) and greedy
    evaluation."""
    trial_dir = Path(trial_dir)
    progress = trial_dir / PROGRESS_FILE
    if not progress.exists():
        raise ConfigError(f"No {PROGRESS_FILE} in {str(trial_dir)!r}: is it a trial directory of rlarena.run?")
    cols = _columns(progress)
    if x_key not in cols:
        raise ConfigError(f"{PROGRESS_FILE} in {str(trial_dir)!r} has no column {x_key!r}.")
    y_keys = y_keys or [k for k in (Y_KEY, EVAL_KEY) if k in cols]
    for key in y_keys:
        if key not in cols:
            raise ConfigError(f"{PROGRESS_FILE} has no column {key!r}.{closest(key, cols)}")
    fig, ax = _figure()
    for key in y_keys:
        xs, ys = _series(cols, x_key, key)
        style = {"marker": "o", "markersize": 3} if key.startswith("evaluation/") else {}
        ax.plot(xs, ys, label=key, **style)
        if key == Y_KEY and "episode_return_min" in cols:
            _, lo = _series(cols, x_key, "episode_return_min")
            _, hi = _series(cols, x_key, "episode_return_max")
            if len(lo) == len(xs) == len(hi):
                ax.fill_between(xs, lo, hi, alpha=0.15, label="episode return min-max")
    ax.set_xlabel("env steps" if x_key == X_KEY else x_key)
    ax.set_ylabel("return" if set(y_keys) <= {Y_KEY, EVAL_KEY} else ", ".join(y_keys))
    ax.set_title(trial_dir.name, fontsize=10)
    ax.grid(alpha=0.3)
    if y_keys:
        ax.legend(fontsize=8)
    if output:
        return _save(fig, Path(output), replace_link=False)
    return _save(fig, trial_dir / CURVE_FILE, replace_link=True)


def plot_comparison(
    trial_dirs: list[Path], output: Path, y_key: str = Y_KEY, x_key: str = X_KEY, *, replace_link: bool = False
) -> Path:
    """One curve per trial (a sweep), in one PNG at `output` (a link there is refused, or replaced with
    `replace_link`)."""
    fig, ax = _figure()
    for trial_dir in trial_dirs:
        cols = _columns(trial_dir / PROGRESS_FILE)
        xs, ys = _series(cols, x_key, y_key)
        ax.plot(xs, ys, label=trial_dir.name)
    ax.set_xlabel("env steps" if x_key == X_KEY else x_key)
    ax.set_ylabel(y_key)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, Path(output), replace_link)


def find_trial_dirs(run_dir: str | Path) -> list[Path]:
    """The trial directories at or under `run_dir` (a trial directory, or an experiment of several).
    A trial directory that is a symbolic link is refused: plotting reads and writes only inside `run_dir`."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise ConfigError(f"No such directory: {str(run_dir)!r}.")
    if os.path.lexists(run_dir / PROGRESS_FILE):
        return [run_dir]
    found = sorted(p.parent for p in run_dir.glob(f"*/{PROGRESS_FILE}"))
    for trial in found:
        if trial.is_symlink():
            raise CheckpointError(
                f"Cannot plot {str(run_dir)!r}: {str(trial)!r} is a symbolic link (to "
                f"{os.readlink(trial)!r}), and rlarena reads and writes only inside the run "
                f"directory. Replace the link with what it points to, or plot that directory."
            )
    return found


def plot_run(run_dir: str | Path, y_keys: list[str] | None = None, x_key: str = X_KEY) -> list[Path]:
    """Plot every trial under `run_dir`; a sweep also gets learning_curves.png comparing its trials."""
    trials = find_trial_dirs(run_dir)
    if not trials:
        raise ConfigError(
            f"No {PROGRESS_FILE} under {str(run_dir)!r}: pass a run directory written by "
            f"`rlarena train` / rlarena.run (e.g. runs/<name>)."
        )
    paths = [plot_trial(t, y_keys, x_key) for t in trials]
    if len(trials) > 1:
        paths.append(
            plot_comparison(trials, Path(run_dir) / COMPARE_FILE, (y_keys or [Y_KEY])[0], x_key, replace_link=True)
        )
    return paths
