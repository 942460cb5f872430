"""Search spaces for sweeps: grid_search, choice, uniform, loguniform (Ray Tune's names).

A param_space maps config option names (flat, any builder group, as `config.update_from_dict`) to
fixed values or to these domains. Nested dicts (e.g. `model`) may hold domains too. Light module:
stdlib only, so `rlarena.grid_search` costs nothing to import.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from typing import Any

from rlarena.errors import ConfigError


@dataclass(frozen=True)
class GridSearch:
    """Every value, crossed with the other grids (Tune: `tune.grid_search`)."""

    values: tuple

    def __repr__(self) -> str:
        return f"grid_search({list(self.values)!r})"


@dataclass(frozen=True)
class Choice:
    """One value drawn uniformly per trial."""

    values: tuple

    def sample(self, rng: random.Random) -> Any:
        return rng.choice(self.values)

    def __repr__(self) -> str:
        return f"choice({list(self.values)!r})"


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)

    def __repr__(self) -> str:
        return f"uniform({self.low!r}, {self.high!r})"


@dataclass(frozen=True)
class LogUniform:
    """exp(uniform(log low, log high)): for learning rates and other scales."""

    low: float
    high: float

    def sample(self, rng: random.Random) -> float:
        return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))

    def __repr__(self) -> str:
        return f"loguniform({self.low!r}, {self.high!r})"


Domain = GridSearch | Choice | Uniform | LogUniform


def grid_search(values: list) -> GridSearch:
    if not isinstance(values, list | tuple) or not values:
        raise ConfigError(f"grid_search() takes a non-empty list of values, got {values!r}.")
    return GridSearch(tuple(values))


def choice(values: list) -> Choice:
    if not isinstance(values, list | tuple) or not values:
        raise ConfigError(f"choice() takes a non-empty list of values, got {values!r}.")
    return Choice(tuple(values))


def uniform(low: float, high: float) -> Uniform:
    if not low < high:
        raise ConfigError(f"uniform({low!r}, {high!r}): low must be < high.")
    return Uniform(float(low), float(high))


def loguniform(low: float, high: float) -> LogUniform:
    if not 0 < low < high:
        raise ConfigError(f"loguniform({low!r}, {high!r}): needs 0 < low < high.")
    return LogUniform(float(low), float(high))


# The YAML / JSON spelling of a domain: {"grid_search": [...]}, {"uniform": [lo, hi]}, ...
_FROM_JSON = {
    "grid_search": grid_search,
    "choice": choice,
    "uniform": lambda a: uniform(*a),
    "loguniform": lambda a: loguniform(*a),
}


def domains_from_json(value: Any) -> Any:
    """Turn {"grid_search": [...]}-style one-key dicts (YAML, --config) into domains, recursively."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key in _FROM_JSON:
                if key in ("uniform", "loguniform") and not (isinstance(arg, list | tuple) and len(arg) == 2):
                    raise ConfigError(f"{{{key!r}: ...}} needs a [low, high] pair, got {arg!r}.")
                return _FROM_JSON[key](arg)
        return {k: domains_from_json(v) for k, v in value.items()}
    return value


def has_domains(value: Any) -> bool:
    if isinstance(value, Domain):
        return True
    if isinstance(value, dict):
        return any(has_domains(v) for v in value.values())
    return False


def _paths(space: Any, prefix: tuple = ()) -> list[tuple[tuple, Domain]]:
    """(path, domain) for every domain in a nested dict, in insertion order."""
    if isinstance(space, Domain):
        return [(prefix, space)]
    if isinstance(space, dict):
        return [p for k, v in space.items() for p in _paths(v, (*prefix, k))]
    return []


def _replace(space: Any, values: dict[tuple, Any], prefix: tuple = ()) -> Any:
    if prefix in values:
        return values[prefix]
    if isinstance(space, dict):
        return {k: _replace(v, values, (*prefix, k)) for k, v in space.items()}
    return space


def generate_variants(
    param_space: dict[str, Any] | None, num_samples: int = 1, seed: int | None = None
) -> list[dict[str, Any]]:
    """Resolved param dicts, one per trial: the grid's cross product, repeated `num_samples` times,
    random domains drawn anew for every trial (Tune's semantics)."""
    if num_samples < 1:
        raise ConfigError(f"num_samples={num_samples} must be >= 1.")
    space = param_space or {}
    paths = _paths(space)
    grids = [(p, d) for p, d in paths if isinstance(d, GridSearch)]
    randoms = [(p, d) for p, d in paths if not isinstance(d, GridSearch)]
    rng = random.Random(seed)
    variants = []
    for _ in range(num_samples):
        for combo in itertools.product(*(d.values for _, d in grids)):
            values = {p: v for (p, _), v in zip(grids, combo)}
            values.update({p: d.sample(rng) for p, d in randoms})
            variants.append(_replace(space, values))
    return variants


def variant_tag(space: dict[str, Any] | None, params: dict[str, Any]) -> str:
    """A short 'lr=0.001,num_epochs=4' naming only the options the sweep varies."""
    parts = []
    for path, _ in _paths(space or {}):
        value: Any = params
        for key in path:
            value = value[key]
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        parts.append(f"{path[-1]}={text}")
    return ",".join(parts)
