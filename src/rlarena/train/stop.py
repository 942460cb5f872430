"""Stop criteria: a dict {result key: threshold} (any one met stops), or a callable
(iteration, result) -> bool. Tune's `stop=` semantics: a criterion is met when
result[key] >= threshold.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

from rlarena.errors import ConfigError, closest

StopSpec = Mapping[str, float] | Callable[[int, dict[str, Any]], bool] | None

# Keys that only appear once evaluation has run (every evaluation_interval iterations).
EVAL_PREFIX = "evaluation/"
# RLlib nests episode metrics under these groups (its tuned-example files stop on
# sampler_results/episode_reward_mean or env_runners/episode_return_mean); rlarena's results keep them
# flat, and carry RLlib's older names (episode_reward_mean, timesteps_total) beside the new ones.
FLAT_GROUPS = ("sampler_results/", "env_runners/")


def result_key(key: str) -> str:
    """The results' name for a stop key written RLlib's way ('env_runners/episode_return_mean')."""
    for prefix in FLAT_GROUPS:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def missing_key_error(what: str, key: str, result: dict[str, Any], eval_interval: int | None) -> ConfigError:
    """A clear error for a key that results do not carry, naming the closest keys."""
    if key.startswith(EVAL_PREFIX) and not eval_interval:
        return eval_key_error(what, key)
    hint = closest(key, result)
    numeric = sorted(k for k, v in result.items() if isinstance(v, numbers.Real))
    return ConfigError(f"{what} {key!r} is not a key of the training results.{hint} Result keys: {', '.join(numeric)}.")


def eval_key_error(what: str, key: str) -> ConfigError:
    return ConfigError(
        f"{what} {key!r} needs evaluation, which this config does not run: set "
        f"evaluation_interval (config.evaluation(evaluation_interval=N), or in the command "
        f"line's --config '{{\"evaluation_interval\": N}}')."
    )


def key_due(key: str, iteration: int, eval_interval: int | None) -> bool:
    """Whether `key` must be in a result by `iteration` (evaluation keys: at the first evaluation)."""
    if key.startswith(EVAL_PREFIX) and eval_interval:
        return iteration >= eval_interval
    return iteration >= 1


class Stopper:
    """Decides after each iteration whether a trial is done, and how close it is."""

    def __init__(self, stop: StopSpec):
        self.fn: Callable[[int, dict[str, Any]], bool] | None = None
        self.criteria: dict[str, float] = {}
        self._baseline: dict[str, float] = {}  # first value seen (where a bar toward a threshold <= 0 starts)
        self._latest: dict[str, float] = {}
        if stop is None:
            return
        if callable(stop):
            self.fn = stop
            return
        if not isinstance(stop, Mapping):
            raise ConfigError(
                f"stop must be a dict {{result key: threshold}} or a function "
                f"(iteration, result) -> bool, got {type(stop).__name__}."
            )
        for key, threshold in stop.items():
            if not isinstance(threshold, numbers.Real) or isinstance(threshold, bool):
                raise ConfigError(
                    f"stop[{key!r}]={threshold!r}: a threshold must be a number "
                    f"(stop when result[{key!r}] >= threshold)."
                )
            self.criteria[result_key(str(key))] = float(threshold)

    def __call__(self, result: dict[str, Any]) -> bool:
        if self.fn is not None:
            return bool(self.fn(int(result.get("training_iteration", 0)), result))
        return any(_at_least(result.get(k), t) for k, t in self.criteria.items())

    def met(self, result: dict[str, Any]) -> list[str]:
        """'key >= threshold' for each criterion this result meets (for the final message)."""
        if self.fn is not None:
            return ["stop function returned True"] if self(result) else []
        return [f"{k} {result[k]:.4g} >= {t:g}" for k, t in self.criteria.items() if _at_least(result.get(k), t)]

    def progress(self, result: dict[str, Any]) -> tuple[str, float, float, float] | None:
        """(key, value, threshold, fraction done) for the criterion nearest to being met, or None.

        A key's latest value is remembered, so evaluation keys (every N iterations) keep their bar.
        A positive threshold counts from 0 (a return of -150 toward 200 shows 0%); a threshold <= 0
        counts from the first value seen (Pendulum's return from -1400 toward -200).
        """
        best = None
        for key, threshold in self.criteria.items():
            value = result.get(key)
            if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
                self._latest[key] = float(value)
                self._baseline.setdefault(key, float(value))
            if key not in self._latest:
                continue
            value = self._latest[key]
            base = 0.0 if threshold > 0 else min(self._baseline[key], threshold)
            frac = 1.0 if threshold == base else min(1.0, max(0.0, (value - base) / (threshold - base)))
            if best is None or frac > best[3]:
                best = (key, value, threshold, frac)
        return best


def _at_least(value: Any, threshold: float) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value) >= threshold
