"""What the single- and multi-agent env checkers share: the numbered report, values described for a
message, the space advice, and the probe that calls reset/step and collects problems.

rlarena.envs.checker (check_env) and rlarena.envs.multi_agent_checker (check_multi_agent_env) both
build on this module; neither imports the other's internals, and check_env hands multi-agent envs on
to check_multi_agent_env. Never imports torch.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces

from rlarena.errors import EnvError

SEED_STEPS = 5  # steps compared by the determinism check
SEED = 123
MASK_KEYS = {"observation", "action_mask"}  # rlarena's action-masking observation convention


def report(name: str, problems: list[str]) -> str:
    lines = [f"  {i}. {problem}" for i, problem in enumerate(problems, 1)]
    return f"check_env found {len(problems)} problem(s) in env {name}:\n" + "\n".join(lines)


def describe(x: Any) -> str:
    """`x` for a message: type and (short) value, or shape and dtype for an array."""
    if x is None or isinstance(x, np.ndarray):
        return "None" if x is None else f"an array of shape {x.shape} {x.dtype}"
    text = str(x) if isinstance(x, np.generic) else repr(x)
    return f"{type(x).__name__} {text[:40]}"


def space_warnings(obs_space: spaces.Space, act_space: spaces.Space) -> list[str]:
    """Legal but likely mistakes in one agent's spaces (issued as UserWarnings by the checkers)."""
    notes = []
    inner = obs_space
    if isinstance(obs_space, spaces.Dict) and set(obs_space.spaces) == MASK_KEYS:
        inner = obs_space["observation"]
    if not isinstance(inner, (spaces.Box, spaces.Discrete, spaces.MultiDiscrete)):
        notes.append(
            f"observation_space {inner} is not Box, Discrete or MultiDiscrete; rlarena's default models "
            "do not handle it yet: flatten it (gymnasium.wrappers.FlattenObservation)."
        )
    if not isinstance(act_space, (spaces.Discrete, spaces.Box)):
        notes.append(
            f"action_space {act_space} is not Discrete or Box; rlarena's default models "
            "do not handle it yet: bring your own model."
        )
    if isinstance(inner, spaces.Box) and inner.dtype == np.float64:
        notes.append(
            "observation_space is a float64 Box; float32 is faster and is what the "
            "networks use: declare dtype=np.float32 and return float32 observations."
        )
    # SB3's env_checker gives the same advice: a Gaussian policy starts near 0 with unit scale
    if isinstance(act_space, spaces.Box) and not ((act_space.low == -1).all() and (act_space.high == 1).all()):
        notes.append(
            f"action_space Box spans [{act_space.low.min()}, {act_space.high.max()}], "
            "not [-1, 1]; use a symmetric, normalized Box action space, e.g. wrap the "
            "env in gymnasium.wrappers.RescaleAction(env, -1.0, 1.0)."
        )
    return notes


def contains(space: spaces.Space, value: Any) -> bool:
    try:
        return bool(space.contains(value))
    except Exception:  # noqa: BLE001 - some spaces raise on a malformed value instead of answering False
        return False


def box_obs_problem(what: str, obs: Any, space: spaces.Box) -> str | None:
    """Why `obs` is not in the Box `space`, in concrete words; None when it is."""
    want = f"shape {space.shape} {space.dtype}"
    if not isinstance(obs, np.ndarray):
        return (
            f"{what} is {describe(obs)}, expected a numpy array of {want}; "
            f"return np.asarray(obs, dtype=np.{space.dtype})."
        )
    mismatch = f"{what} does not match observation_space: expected {want}, got shape {obs.shape} {obs.dtype}"
    if obs.shape != space.shape:
        return f"{mismatch}. Return shape {space.shape}, or declare the space as shape={obs.shape}."
    if not np.can_cast(obs.dtype, space.dtype):
        return (
            f"{mismatch}, which {space.dtype} cannot hold. Return "
            f"obs.astype(np.{space.dtype}), or declare the space as dtype=np.{obs.dtype}."
        )
    if np.issubdtype(obs.dtype, np.inexact) and not np.isfinite(obs).all():
        i = tuple(int(k) for k in np.argwhere(~np.isfinite(obs))[0])
        return (
            f"{what} contains NaN/inf (obs{list(i)} = {obs[i]}), expected finite values; find "
            "its source (division by zero, overflow): one NaN turns every network output NaN."
        )
    outside = (obs < space.low) | (obs > space.high)
    if outside.any():
        i = tuple(int(k) for k in np.argwhere(outside)[0])
        return (
            f"{what}{list(i)} = {obs[i]} is outside observation_space bounds "
            f"[{space.low[i]}, {space.high[i]}]; clip it, or widen the space's low/high."
        )
    return None


def sample_action(actions: spaces.Space, obs: Any) -> Any:
    """A random action; honours an action mask so a masked env is not fed illegal moves."""
    if isinstance(actions, spaces.Discrete) and isinstance(obs, dict) and "action_mask" in obs:
        mask = np.asarray(obs["action_mask"]).astype(np.int8)
        if mask.shape == (actions.n,) and mask.any():
            return actions.sample(mask=mask)
    return actions.sample()


def truthy(flag: Any) -> bool:
    """bool(flag); False for a flag that cannot say (a malformed terminated/truncated)."""
    try:
        return bool(flag)
    except (TypeError, ValueError):  # a malformed flag is reported already; keep stepping
        return False


def same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return np.array_equal(np.asarray(a), np.asarray(b))


def missing_reset_kwargs(env: Any) -> list[str]:
    """The keywords of `reset(*, seed=None, options=None)` that env.reset does not accept."""
    missing: list[str] = []
    for reset in (env.reset, env.unwrapped.reset):  # a wrapper forwards seed= to the inner env
        try:
            params = inspect.signature(reset).parameters
        except (TypeError, ValueError):  # no signature to read: the call itself will tell
            continue
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            missing += [k for k in ("seed", "options") if k not in params and k not in missing]
    return missing


class Probe(ABC):
    """Calls reset/step and collects problems; an exception raised by the env ends the probe.

    A checker's probe plays its episodes in `_rollout` (reporting through `_note`) and replays a
    seeded start in `_seeded_run`; this class runs both and compares the two seeded runs."""

    def __init__(self, env: Any, name: str) -> None:
        self.env, self.name = env, name
        self.problems: list[str] = []
        self.seen: set[str] = set()  # kinds of call already reported
        self.missing = missing_reset_kwargs(env)

    def run(self) -> list[str]:
        if self.missing:
            self.problems.append(
                f"reset does not accept {' and '.join(k + '=' for k in self.missing)}; expected "
                "`def reset(self, *, seed=None, options=None)`. Add the keywords and call "
                "`super().reset(seed=seed)` first so self.np_random is seeded."
            )
        self._rollout()
        # determinism means little until reset/step are well-formed, and cannot be asked of an old
        # env whose reset takes no seed (its adapter says so)
        if not self.problems and getattr(self.env, "takes_seed", True):
            self._check_determinism()
        return self.problems

    @abstractmethod
    def _rollout(self) -> None:
        """Step the env through an episode's worth of random actions, recording problems."""

    @abstractmethod
    def _seeded_run(self) -> list[Any]:
        """What a seeded reset and fixed actions produce: compared across two runs for determinism."""

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            crash = (
                f"{what} raised {type(exc).__name__}: {exc} — expected it to run without "
                "error. Fix the env; the original traceback is chained above this error."
            )
            raise EnvError(report(self.name, [*self.problems, crash])) from exc

    def _reset(self, seed: int | None) -> Any:
        kwargs = {k: v for k, v in {"seed": seed, "options": None}.items() if k not in self.missing}
        args = ", ".join(f"{k}={v}" for k, v in kwargs.items())
        return self._call(f"reset({args})", self.env.reset, **kwargs)

    def _note(self, kind: str, where: str, found: list[str]) -> None:
        # only the first bad reset and the first bad step are reported: later ones repeat them
        if found and kind not in self.seen:
            self.seen.add(kind)
            self.problems += [f"{where}: {problem}" for problem in found]

    def _check_determinism(self) -> None:
        first, second = self._seeded_run(), self._seeded_run()
        if len(first) != len(second) or not all(map(same, first, second)):
            self.problems.append(
                f"reset(seed={SEED}) does not make the env deterministic: two runs with the same "
                "seed and the same actions gave different observations. Call "
                "super().reset(seed=seed) and draw randomness from self.np_random (not np.random "
                "or random)."
            )
