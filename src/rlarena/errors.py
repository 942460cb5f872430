"""Errors a user can act on. Each message says what was wrong, what was expected and what to do."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RLArenaError(Exception):
    """Base class of every error rlarena raises on purpose."""


class ConfigError(RLArenaError, ValueError):
    """A config key or value is wrong (unknown key, impossible combination, bad range)."""


class EnvError(RLArenaError):
    """An environment could not be created, is malformed, or raised while stepping."""


class CheckpointError(RLArenaError):
    """A checkpoint directory is missing, corrupted, truncated or not an rlarena checkpoint."""


class UntrustedCodeError(RLArenaError):
    """A file names code (a module to import, an object to call) that the user has not trusted."""


class TrainingError(RLArenaError):
    """Training cannot continue safely (for example a NaN/inf loss)."""


def closest(name: str, valid: Iterable[str]) -> str:
    """' Did you mean ...?' for the closest valid name, or '' when nothing is close."""
    match = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    return f" Did you mean {match[0]!r}?" if match else ""
