"""What a person sees while training: one compact row per iteration and a bar toward the stop
criterion nearest to being met.

verbose 0: nothing but errors; 1: a row per iteration, trial and run summaries; 2: also the
learner statistics under each row and every checkpoint written.
"""

from __future__ import annotations

import math
import numbers
import sys
from typing import Any, TextIO

from rlarena.train.stop import Stopper

BAR_WIDTH = 20
# Shown in the row itself, or bookkeeping: left out of the verbose=2 detail line.
_IN_ROW = {
    "training_iteration",
    "num_env_steps_sampled_lifetime",
    "episode_return_mean",
    "env_steps_per_sec",
    "time_since_restore",
    "evaluation/episode_return_mean",
    "episode_reward_mean",
    "episode_reward_min",
    "episode_reward_max",
    "timesteps_total",
    "episodes_total",
    "timestamp",
    "trial_id",
    "iterations_since_restore",
    "time_this_iter_s",
    "time_total_s",
    "num_env_steps_sampled_this_iter",
    "num_episodes_lifetime",
}


def _num(value: Any, spec: str) -> str:
    if not isinstance(value, numbers.Real) or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def _short(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e12 else f"{x:.4g}"


def progress_bar(frac: float, width: int = BAR_WIDTH) -> str:
    filled = int(frac * width)  # floors: 100% only when the criterion is met
    return "[" + "#" * filled + "-" * (width - filled) + f"] {int(frac * 100):3d}%"


class Reporter:
    def __init__(self, verbose: int = 1, out: TextIO | None = None):
        self.verbose = verbose
        self.out = out
        self._with_eval = False

    def _print(self, text: str) -> None:
        print(text, file=self.out or sys.stdout, flush=True)

    def message(self, text: str, level: int = 1) -> None:
        if self.verbose >= level:
            self._print(text)

    def header(self, with_eval: bool) -> None:
        self._with_eval = with_eval
        if self.verbose < 1:
            return
        cols = f"{'iter':>6}  {'env steps':>10}  {'return mean':>11}"
        if with_eval:
            cols += f"  {'eval mean':>9}"
        cols += f"  {'steps/s':>8}  {'elapsed':>8}"
        self._print(cols)

    def row(self, result: dict[str, Any], stopper: Stopper) -> None:
        if self.verbose < 1:
            return
        line = (
            f"{result.get('training_iteration', 0):>6}  {_num(result.get('num_env_steps_sampled_lifetime'), 'd'):>10}"
            f"  {_num(result.get('episode_return_mean'), '.1f'):>11}"
        )
        if self._with_eval:
            line += f"  {_num(result.get('evaluation/episode_return_mean'), '.1f'):>9}"
        elapsed = result.get("time_since_restore", math.nan)
        line += f"  {_num(result.get('env_steps_per_sec'), '.0f'):>8}  {_num(elapsed, '.1f'):>7}s"
        near = stopper.progress(result)
        if near is not None:
            key, value, threshold, frac = near
            line += f"  {progress_bar(frac)} {key} {_short(value)}/{_short(threshold)}"
        self._print(line)
        if self.verbose >= 2:
            detail = [
                f"{k} {_num(v, '.4g')}"
                for k, v in result.items()
                if k not in _IN_ROW and isinstance(v, numbers.Real) and not isinstance(v, bool)
            ]
            if detail:
                self._print("        " + "  ".join(detail))
