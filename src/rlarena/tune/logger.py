"""pretty_print (ray.tune.logger's): a result dict, or any dict, as readable YAML."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def _plain(value: Any) -> Any:
    """YAML-safe: numpy values as numbers and lists, NaN/inf as null (as Ray's SafeFallbackEncoder),
    anything else that is not plain data as its str()."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def pretty_print(result: Mapping[str, Any], exclude: set[str] | None = None) -> str:
    """YAML of `result` without its None values, `config` and `hist_stats` (as Ray's pretty_print)."""
    import yaml

    shown = {
        k: v
        for k, v in result.items()
        if v is not None and k not in ("config", "hist_stats") and k not in (exclude or ())
    }
    return yaml.safe_dump(_plain(shown), default_flow_style=False)
