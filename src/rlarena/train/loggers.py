"""What a trial directory holds: params.json, result.json (one JSON object per iteration),
progress.csv (the same rows as a table) and TensorBoard event files.

result.json is the record: on resume it is cut back to the checkpoint's iteration and progress.csv
is rewritten from it, so no iteration appears twice. TensorBoard (torch.utils.tensorboard, which needs
the `tensorboard` package) is imported only here, only when enabled.
"""

from __future__ import annotations

import csv
import json
import math
import numbers
import os
import sys
from pathlib import Path
from typing import Any, TextIO

RESULT_FILE = "result.json"
PROGRESS_FILE = "progress.csv"
PARAMS_FILE = "params.json"
EVENTS_GLOB = "events.out.tfevents.*"

# Keys not worth a TensorBoard curve: the old-name aliases (the same curves twice) and bookkeeping.
_NOT_SCALARS = {"episode_reward_mean", "episode_reward_min", "episode_reward_max", "timesteps_total",
                "episodes_total", "training_iteration", "timestamp", "trial_id", "iterations_since_restore"}


def json_default(obj: Any) -> Any:
    """numpy scalars/arrays and anything else a config or result may hold (named by its repr)."""
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return repr(obj)


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=json_default))
    os.replace(tmp, path)


def read_results(trial_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Every complete line of result.json (a line cut short by `kill -9` is skipped)."""
    path = Path(trial_dir) / RESULT_FILE
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "training_iteration" in row:
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
            path.unlink()

    def resume_at(self, iteration: int, env_steps: int) -> list[dict[str, Any]]:
        """Cut the logs back to `iteration` (the restored checkpoint's) and return the rows kept."""
        rows = [r for r in read_results(self.dir) if int(r["training_iteration"]) <= iteration]
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".{RESULT_FILE}.tmp"
        with open(tmp, "w") as f:
            f.writelines(json.dumps(row, default=json_default) + "\n" for row in rows)
        os.replace(tmp, self.dir / RESULT_FILE)
        self._rewrite_csv(rows)
        # TensorBoard drops events at steps >= purge_step from earlier files when it reads this one
        self._purge_step = env_steps + 1
        return rows

    def write_params(self, params: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.dir / PARAMS_FILE, params)

    def _open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._json = open(self.dir / RESULT_FILE, "a")
        progress = self.dir / PROGRESS_FILE
        if progress.exists() and progress.stat().st_size > 0:
            with open(progress, newline="") as f:
                self._columns = next(csv.reader(f), [])
        self._csv = open(progress, "a", newline="")
        if self.tensorboard:
            self._writer = self._make_writer()
        self._opened = True

    def _make_writer(self) -> Any:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            self.notice("TensorBoard logging skipped: the `tensorboard` package is not installed "
                        "(pip install tensorboard).")
            return None
        return SummaryWriter(log_dir=str(self.dir), purge_step=self._purge_step, flush_secs=10)

    # -- each iteration -----------------------------------------------------------------------
    def log(self, result: dict[str, Any]) -> None:
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
            self._csv = open(self.dir / PROGRESS_FILE, "a", newline="")
        else:
            self._write_row(result)
        if self._writer is not None:
            step = int(result.get("num_env_steps_sampled_lifetime", result.get("training_iteration", 0)))
            for key, value in result.items():
                if (key not in _NOT_SCALARS and isinstance(value, numbers.Real) and not isinstance(value, bool)
                        and math.isfinite(value)):
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
        tmp = self.dir / f".{PROGRESS_FILE}.tmp"
        with open(tmp, "w", newline="") as f:
            if self._columns:
                writer = csv.DictWriter(f, self._columns, restval="")
                writer.writeheader()
                for row in rows:
                    writer.writerow({k: _cell(v) for k, v in row.items()})
        os.replace(tmp, self.dir / PROGRESS_FILE)

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
