"""What a trial directory holds: params.json, result.json (one JSON object per iteration),
progress.csv (the same rows as a table) and TensorBoard event files.

result.json is the record: on resume it is cut back to the checkpoint's iteration and progress.csv
is rewritten from it, so no iteration appears twice. TensorBoard (torch.utils.tensorboard, which needs
the `tensorboard` package) is imported only here, only when enabled. A trial directory may come from
elsewhere: reads stay inside it and are bounded (per line, and MAX_LOG_BYTES per file), whole files
are written under a temporary name and renamed into place, and the logs appended to every iteration
are opened without following a link (O_NOFOLLOW) and only when they are regular files.
"""

from __future__ import annotations

import csv
import io
import json
import math
import numbers
import os
import stat
import sys
from pathlib import Path
from typing import Any, TextIO

from rlarena import limits
from rlarena.checkpoint.io import confined, write_file_atomic
from rlarena.errors import CheckpointError

RESULT_FILE = "result.json"
PROGRESS_FILE = "progress.csv"
PARAMS_FILE = "params.json"
EVENTS_GLOB = "events.out.tfevents.*"
# One iteration's result is a few KB (tens with many policies); a longer line is not one rlarena wrote.
MAX_RESULT_LINE = 2**20

# Keys not worth a TensorBoard curve: the old-name aliases (the same curves twice) and bookkeeping.
_NOT_LOGGED = {"config", "hist_stats"}
_NOT_SCALARS = {
    "episode_reward_mean",
    "episode_reward_min",
    "episode_reward_max",
    "timesteps_total",
    "episodes_total",
    "training_iteration",
    "timestamp",
    "trial_id",
    "iterations_since_restore",
}


def json_default(obj: Any) -> Any:
    """numpy scalars/arrays and anything else a config or result may hold (named by its repr)."""
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return repr(obj)


def _append(path: Path, newline: str | None = None) -> TextIO:
    """`path` opened for appending (a log written every iteration cannot be renamed into place each
    time): never through a symbolic link (O_NOFOLLOW), and only a regular file (O_NONBLOCK: a FIFO
    without a reader fails at once instead of blocking, and is then refused)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        if path.is_symlink():
            why = f"it is a symbolic link (to {os.readlink(path)!r}), and rlarena never writes through one"
        elif path.exists() and not path.is_file():
            why = "it is not a regular file (a FIFO or a device)"
        else:
            why = exc.strerror or str(exc)
        raise CheckpointError(
            f"Cannot append to {str(path)!r}: {why}. A trial's logs are regular files: remove "
            f"what is there, or choose another storage_path."
        ) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise CheckpointError(
            f"Cannot append to {str(path)!r}: it is not a regular file (a FIFO or a device). "
            f"A trial's logs are regular files: remove it, or choose another storage_path."
        )
    return open(fd, "a", newline=newline, encoding="utf-8")


def write_json_atomic(path: Path, data: Any) -> None:
    """`data` as JSON at `path` (a name rlarena gives in a run's directory), renamed into place."""
    write_file_atomic(path, json.dumps(data, indent=2, default=json_default), path.name, replace_link=True)


def read_log(path: Path, what: str) -> Path:
    """`path`, one of a trial's logs, checked before it is read: inside its directory, a regular file,
    at most MAX_LOG_BYTES (rlarena.limits, read at call time). FileNotFoundError when missing."""
    return confined(
        path, path.parent, what, max_bytes=limits.limit("MAX_LOG_BYTES"), bound="rlarena.limits.MAX_LOG_BYTES"
    )


def read_results(trial_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Every complete result line of result.json; a line cut short by `kill -9`, or one that is not a
    result rlarena wrote (not JSON, longer than MAX_RESULT_LINE, no whole training_iteration), is skipped."""
    try:
        path = read_log(Path(trial_dir) / RESULT_FILE, "Trial results")  # no link out, no FIFO, bounded
    except FileNotFoundError:
        return []
    rows = []
    with open(path, "rb") as f:
        while line := f.readline(MAX_RESULT_LINE + 1):
            if len(line) > MAX_RESULT_LINE:
                while line and not line.endswith(b"\n"):  # skip the rest of the overlong line
                    line = f.readline(MAX_RESULT_LINE)
                continue
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):  # malformed, not UTF-8, nested too deep, a huge number
                continue
            iteration = row.get("training_iteration") if isinstance(row, dict) else None
            if isinstance(iteration, int) and not isinstance(iteration, bool):
                rows.append(row)
    return rows


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | numbers.Real):
        return value
    return json.dumps(value, default=json_default)


class TrialLogger:
    """Writes one trial's files. Nothing is created on disk until the first result (or resume)."""

    def __init__(self, trial_dir: Path, tensorboard: bool = True, notice: Any = print):
        self.dir = trial_dir
        self.tensorboard = tensorboard
        self.notice = notice
        self._json: TextIO | None = None
        self._csv: TextIO | None = None
        self._columns: list[str] = []
        self._writer: Any = None
        self._purge_step: int | None = None
        self._opened = False

    # -- starting: fresh or resumed -----------------------------------------------------------
    def start_fresh(self) -> None:
        """Forget any files of an earlier attempt that left no checkpoint."""
        for name in (RESULT_FILE, PROGRESS_FILE, PARAMS_FILE):
            (self.dir / name).unlink(missing_ok=True)
        for path in self.dir.glob(EVENTS_GLOB) if self.dir.exists() else ():
            if not path.is_dir() or path.is_symlink():
                path.unlink(missing_ok=True)

    def resume_at(self, iteration: int, env_steps: int) -> list[dict[str, Any]]:
        """Cut the logs back to `iteration` (the restored checkpoint's) and return the rows kept."""
        rows = [r for r in read_results(self.dir) if int(r["training_iteration"]) <= iteration]
        self.dir.mkdir(parents=True, exist_ok=True)
        write_file_atomic(
            self.dir / RESULT_FILE,
            "".join(json.dumps(row, default=json_default) + "\n" for row in rows),
            RESULT_FILE,
            replace_link=True,
        )
        self._rewrite_csv(rows)
        # TensorBoard drops events at steps >= purge_step from earlier files when it reads this one
        self._purge_step = env_steps + 1
        return rows

    def write_params(self, params: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.dir / PARAMS_FILE, params)

    def _open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._json = _append(self.dir / RESULT_FILE)
        progress = self.dir / PROGRESS_FILE
        if progress.is_file() and not progress.is_symlink() and progress.stat().st_size > 0:
            with open(confined(progress, self.dir, "Trial progress"), newline="", errors="replace") as f:
                header = f.readline(MAX_RESULT_LINE)
            try:
                self._columns = next(csv.reader([header]), [])
            except csv.Error:  # not a table we wrote: rebuild it from the record
                self._rewrite_csv(read_results(self.dir))
        self._csv = _append(progress, newline="")
        if self.tensorboard:
            self._writer = self._make_writer()
        self._opened = True

    def _make_writer(self) -> Any:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            self.notice(
                "TensorBoard logging skipped: the `tensorboard` package is not installed (pip install tensorboard)."
            )
            return None
        # TensorBoard opens its event file by name: no link may wait under a name it could pick
        planted = [p for p in self.dir.glob(EVENTS_GLOB) if p.is_symlink()]
        if planted:
            raise CheckpointError(
                f"Cannot log to {str(self.dir)!r}: {str(planted[0])!r} is a symbolic link, and "
                f"rlarena never writes through one. Remove it."
            )
        return SummaryWriter(log_dir=str(self.dir), purge_step=self._purge_step, flush_secs=10)

    # -- each iteration -----------------------------------------------------------------------
    def log(self, result: dict[str, Any]) -> None:
        # the config is in params.json and hist_stats lists an iteration's episodes: per-row copies of
        # either would bloat every row (both stay in the result dict train() returns)
        result = {k: v for k, v in result.items() if k not in _NOT_LOGGED}
        if not self._opened:
            self._open()
        assert self._json is not None and self._csv is not None
        self._json.write(json.dumps(result, default=json_default) + "\n")
        self._json.flush()
        if not self._columns:
            self._columns = list(result)
            csv.writer(self._csv).writerow(self._columns)
            self._write_row(result)
        elif any(k not in self._columns for k in result):
            # a key appeared later (evaluation keys do): rewrite the table, this row included, from the record
            self._csv.close()
            self._rewrite_csv(read_results(self.dir))
            self._csv = _append(self.dir / PROGRESS_FILE, newline="")
        else:
            self._write_row(result)
        if self._writer is not None:
            step = int(result.get("num_env_steps_sampled_lifetime", result.get("training_iteration", 0)))
            for key, value in result.items():
                if (
                    key not in _NOT_SCALARS
                    and isinstance(value, numbers.Real)
                    and not isinstance(value, bool)
                    and math.isfinite(value)
                ):
                    self._writer.add_scalar(key, float(value), step)

    def _write_row(self, result: dict[str, Any]) -> None:
        assert self._csv is not None
        csv.DictWriter(self._csv, self._columns, restval="").writerow({k: _cell(v) for k, v in result.items()})
        self._csv.flush()

    def _rewrite_csv(self, rows: list[dict[str, Any]]) -> None:
        columns: dict[str, None] = {}
        for row in rows:
            columns.update(dict.fromkeys(row))
        self._columns = list(columns)
        text = io.StringIO(newline="")
        if self._columns:
            writer = csv.DictWriter(text, self._columns, restval="")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _cell(v) for k, v in row.items()})
        write_file_atomic(self.dir / PROGRESS_FILE, text.getvalue(), PROGRESS_FILE, replace_link=True)

    def close(self) -> None:
        for f in (self._json, self._csv):
            if f is not None:
                f.close()
        if self._writer is not None:
            self._writer.close()
        self._json = self._csv = self._writer = None
        self._opened = False


def stderr_notice(text: str) -> None:
    print(text, file=sys.stderr)
