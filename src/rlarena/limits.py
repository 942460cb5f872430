"""How big a file from someone else may make anything: the bounds checked before any allocation.

A checkpoint, a Hub package, an experiment file, a trial's saved parameters or a recorded data set is
data about a trained agent. It may set how the agent computes, but every size or count it asks for
(network parameters, envs, batch and replay sizes, games, simulations, samples, rows of data) is
checked against the bound here before anything is built, and a value past it is refused with one
line naming the option, the bound and the two ways on:

- pass the value yourself (`config_overrides={...}` in Python, `--config '{...}'` on the command
  line): what the caller passes is the caller's choice and is not bounded here;
- or, for a file you trust, raise the bound for this process: `rlarena.limits.MAX_ENVS = 4096`.

The bounds are read when a file is loaded (not when rlarena is imported), so raising one takes effect
at once. They are generous for real use: each says what it leaves room for.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from rlarena.errors import ConfigError

# Parameters of every network a file builds, all its policies together (each tower, head, critic and
# target network counted). 100M float32 parameters are 400 MB (1.2 GB with Adam's two moments); the
# largest network rlarena's tuned examples build has 0.3M, an MLP on raw 210x160x3 Atari frames with
# one 256-unit layer 26M (its value tower as many again).
MAX_PARAMETERS = 100_000_000
# Units of one hidden layer. Orthogonal initialization costs about (units)^2 per parameter of a layer:
# a 4096-unit layer on a 24,000-dim input takes 35 s on one core, a 10,000-unit square one minutes.
MAX_LAYER_UNITS = 4096
# Envs built at once: num_envs_per_env_runner, evaluation_num_envs, AlphaZero's num_parallel_games.
MAX_ENVS = 1024
# Steps, transitions or games held at once: train_batch_size, minibatch_size, rollout fragments,
# replay capacity (a CartPole transition is ~50 bytes, an Atari frame 7 KB: 10M is the largest
# replay the literature uses).
MAX_BATCH = 10_000_000
MAX_REPLAY = 10_000_000
# Work per call that cannot run forever: evaluation episodes (and ES perturbations), passes or
# gradient steps per batch (num_epochs, gradient_steps, training_intensity: REDQ's 20 updates per step
# of a 256 batch is 5,120), search simulations per move, trials of a sweep.
MAX_EPISODES = 100_000
MAX_EPOCHS = 10_000
MAX_SIMULATIONS = 100_000
MAX_SAMPLES = 10_000
# Actions sampled per state in one update (CQL's num_actions; it uses 10).
MAX_ACTION_SAMPLES = 1_000
# Critics of an ensemble (TQC's n_critics: the paper's 5; REDQ's 10), and the quantiles all of them
# output together (TQC's n_critics * n_quantiles: the paper's 5 x 25; QR-DQN's 200). TQC's loss compares
# each quantile with each target atom: (N * M)^2 numbers per replayed row, 1.6 MB a row at the bound.
MAX_CRITICS = 100
MAX_QUANTILES = 640
# Entries of an evolution strategy's shared noise table (float32): RLlib's default, 250M, fits.
MAX_NOISE_TABLE = 2**28
# rlarena's own envs: cells of a MultiAgentArena grid (its observation is two one-hot cells, as large as
# a saved space may be: rlarena.envs.spaces.MAX_FLAT_SIZE) and steps of one of its episodes (also a
# file's env_config["max_episode_steps"], gymnasium.make's time limit).
MAX_GRID_CELLS = 2**19
MAX_EPISODE_STEPS = 10_000_000
# Rows and uncompressed bytes of one recorded data set (read from the Parquet footers first).
MAX_DATA_ROWS = 50_000_000
MAX_DATA_BYTES = 8 * 2**30
# Bytes of one trial's log read back (result.json, progress.csv): an iteration's row is a few KB, so
# 256 MiB holds some 50,000 iterations; a plot holds about 3x the CSV's size as numbers.
MAX_LOG_BYTES = 256 * 2**20


def limit(name: str) -> int:
    """The current value of bound `name` (e.g. "MAX_ENVS"), read at call time."""
    value = globals()[name]
    return int(value)


def refusal(source: str, option: str, value: Any, bound_name: str, what: str = "") -> ConfigError:
    """The one-line error for `option`=`value` read from `source` past the bound `bound_name`."""
    bound = limit(bound_name)
    text = repr(value) if not isinstance(value, int | float) or abs(value) < 1e6 else f"{value:.3g}"
    what = f" ({what})" if what else ""
    return ConfigError(
        f"{source}: {option}={text}{what} is more than the {bound:,} rlarena accepts from a file "
        f"(rlarena.limits.{bound_name}). If you want it, pass it yourself (config_overrides="
        f"{{{option.split('.')[0]!r}: ...}} in Python, --config on the command line) or raise "
        f"the bound: rlarena.limits.{bound_name} = ..."
    )


def too_large(source: str, what: str, value: int, bound_name: str, error: type[Exception] = ConfigError) -> Exception:
    """The one-line `error` for a file (a recorded data set, a log) whose `what` ("rows", "bytes") is
    `value`, past the bound `bound_name`: a size no option sets, so the way on is raising the bound."""
    bound = limit(bound_name)
    return error(
        f"{source}: {value:,} {what} is more than the {bound:,} rlarena reads "
        f"(rlarena.limits.{bound_name}); nothing was read. If you trust it, raise the bound: "
        f"rlarena.limits.{bound_name} = ..."
    )


def check(source: str, option: str, value: Any, bound_name: str, what: str = "") -> None:
    """Refuse `value` (a number, or None for no value) when it is above bound `bound_name`, or not finite."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return
    if not math.isfinite(value) or value > limit(bound_name):
        raise refusal(source, option, value, bound_name, what)


@dataclass
class _Loading:
    source: str  # the file, for messages ("checkpoint 'ckpt/'")
    parameters: int = 0  # counted so far


_LOADING: contextvars.ContextVar[_Loading | None] = contextvars.ContextVar("rlarena_loading", default=None)


_SOURCE: contextvars.ContextVar[str | None] = contextvars.ContextVar("rlarena_source", default=None)


@contextlib.contextmanager
def loading(source: str, bounded: bool = True) -> Iterator[None]:
    """Build an algorithm from `source` (a file) inside this block: every network it builds is counted
    against MAX_PARAMETERS before its weights are allocated (count_parameters). `bounded` False: the
    caller chose the network sizes (config_overrides={"model": ...}), nothing is counted."""
    token = _LOADING.set(_Loading(source) if bounded else None)
    source_token = _SOURCE.set(source)
    try:
        yield
    finally:
        _LOADING.reset(token)
        _SOURCE.reset(source_token)


def current_source() -> str | None:
    """The file an algorithm is being built from (inside loading()), else None."""
    return _SOURCE.get()


def layer_parameters(dims: Sequence[int], copies: int = 1) -> int:
    """Weights and biases of fully connected layers dims[0] -> dims[1] -> ... (`copies` of them)."""
    return copies * sum(a * b + b for a, b in itertools.pairwise(int(d) for d in dims))


def count_parameters(count: int, what: str, units: Iterable[int] = ()) -> None:
    """Called by a network's constructor before it allocates `count` parameters in hidden layers of
    `units`: while a file is being loaded (loading()), refuse it when a layer is wider than
    MAX_LAYER_UNITS or the file's networks together would pass MAX_PARAMETERS."""
    state = _LOADING.get()
    if state is None:
        return
    widest = max((int(u) for u in units), default=0)
    if widest > limit("MAX_LAYER_UNITS"):
        raise ConfigError(
            f"{state.source}: its {what} has a layer of {widest:,} units, more than the "
            f"{limit('MAX_LAYER_UNITS'):,} rlarena builds from a file (rlarena.limits.MAX_LAYER_UNITS). "
            f"If you want it, pass the model yourself (config_overrides={{'model': {{...}}}}) or raise "
            f"the bound: rlarena.limits.MAX_LAYER_UNITS = ..."
        )
    state.parameters += count
    bound = limit("MAX_PARAMETERS")
    if state.parameters > bound:
        part = f" (this {what}: {count:,})" if count != state.parameters else ""
        raise ConfigError(
            f"{state.source}: its networks would hold {state.parameters:,} parameters{part}, more than the {bound:,} rlarena builds from a file "
            f"(rlarena.limits.MAX_PARAMETERS). If you want them, pass the model yourself "
            f"(config_overrides={{'model': {{...}}}}) or raise the bound: "
            f"rlarena.limits.MAX_PARAMETERS = ..."
        )


def check_all(source: str, sizes: Iterable[tuple[str, Any, str]], caller: Iterable[str] = ()) -> None:
    """check() each (option, value, bound name) of `sizes`, except the options the caller passed."""
    passed = set(caller)
    for option, value, bound_name in sizes:
        if option.split(".")[0].split("[")[0] not in passed:
            check(source, option, value, bound_name)
