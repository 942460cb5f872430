"""Errors a user can act on. Each message says what was wrong, what was expected and what to do."""

from __future__ import annotations

import difflib
import sys
import warnings
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


class OfflineDataError(RLArenaError, ValueError):
    """Logged experience (rlarena.offline) cannot be read: a missing file or column, a wrong shape, NaN."""


class TrainingError(RLArenaError):
    """Training cannot continue safely (for example a NaN/inf loss)."""


class ClusterError(RLArenaError, ConnectionError):
    """The Ray cluster the user named (an address, RAY_ADDRESS) cannot be joined."""


# Similarity (difflib's ratio) a name needs to be suggested. Measured on real typos, which score 0.8 to
# 0.97 ('gama'/'gamma' 0.89, 'lrr'/'lr' 0.8, 'num_epoch'/'num_epochs' 0.95, 'trian_batch_size'/
# 'train_batch_size' 0.94), against poor pairs that score up to 0.67 ('framework'/'num_env_workers' 0.5,
# 'num_gpus'/'num_epochs' 0.67, 'kl_coeff'/'vf_loss_coeff' 0.67): no suggestion beats a poor one.
CLOSE_ENOUGH = 0.75


def closest(name: str, valid: Iterable[str]) -> str:
    """' Did you mean ...?' for the closest valid name, or '' when nothing is close.

    Case is ignored ('ppo' is close to 'PPO'); a name of 4+ characters that starts exactly one valid
    name ('entropy' of 'entropy_coeff') is close too."""
    folded = {str(v).lower(): str(v) for v in valid}
    key = str(name).lower()
    match = difflib.get_close_matches(key, list(folded), n=1, cutoff=CLOSE_ENOUGH)
    if not match and len(key) >= 4:
        match = [v for v in folded if v.startswith(key)]
    return f" Did you mean {folded[match[0]]!r}?" if len(match) == 1 else ""


def no_such_policy(policy_id: str, policies: Iterable[str]) -> ConfigError:
    """The error for a policy id that names none of `policies`."""
    names = list(policies)
    return ConfigError(f"No policy {policy_id!r}.{closest(policy_id, names)} Policies: {', '.join(names)}.")


class RLArenaNotice(UserWarning):
    """Something rlarena accepted but does differently or ignores (an RLlib option with no effect here,
    an old env API adapted). The CLI prints each as one line `notice: ...`; in Python it is a warning
    that `warnings.filterwarnings("ignore", category=RLArenaNotice)` silences."""


def notice(text: str) -> None:
    """Report `text` once per calling line, attributed to the first caller outside rlarena."""
    frame, level = sys._getframe(1), 2  # stacklevel 2: notice()'s caller
    while frame is not None and frame.f_globals.get("__name__", "").startswith("rlarena."):
        frame, level = frame.f_back, level + 1
    warnings.warn(text, RLArenaNotice, stacklevel=level)
