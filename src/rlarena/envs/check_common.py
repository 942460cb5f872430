"""What the single- and multi-agent env checkers share: the numbered report, values described for a
message, the space advice, and the probe that calls reset/step and collects problems.

rlarena.envs.checker (check_env) and rlarena.envs.multi_agent_checker (check_multi_agent_env) both
build on this module; neither imports the other's internals, and check_env hands multi-agent envs on
to check_multi_agent_env. Never imports torch.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from gymnasium import spaces

from rlarena.envs.action_layout import ActionLayout
from rlarena.errors import ConfigError, EnvError

SEED_STEPS = 5  # steps compared by the determinism check
SEED = 123


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
    for name, leaf in space_leaves(obs_space, "observation_space"):
        if not isinstance(leaf, OBS_LEAVES):
            notes.append(
                f"{name} is {str(leaf)[:60]}, which rlarena's default models cannot read (they read Box, "
                "Discrete, MultiDiscrete and MultiBinary, in Dict and Tuple spaces): drop that part or "
                "encode it as one of these (for MiniGrid's text mission, minigrid.wrappers.ImgObsWrapper)."
            )
        elif isinstance(leaf, spaces.Box):
            notes += _box_notes(name, leaf)
    try:
        ActionLayout(act_space)
    except ConfigError as exc:  # what the default models' distributions cannot take
        notes.append(f"{exc} rlarena's default models cannot act in it: change the space or bring your own model.")
    # SB3's env_checker gives the same advice: a Gaussian policy starts near 0 with unit scale
    if isinstance(act_space, spaces.Box) and not ((act_space.low == -1).all() and (act_space.high == 1).all()):
        notes.append(
            f"action_space Box spans [{act_space.low.min()}, {act_space.high.max()}], "
            "not [-1, 1]; use a symmetric, normalized Box action space, e.g. wrap the "
            "env in gymnasium.wrappers.RescaleAction(env, -1.0, 1.0)."
        )
    return notes


OBS_LEAVES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


def space_leaves(space: spaces.Space, name: str) -> list[tuple[str, spaces.Space]]:
    """The spaces inside Dict and Tuple spaces, each with its path (`observation_space['image'][0]`)."""
    if isinstance(space, spaces.Dict):
        return [leaf for key, sub in space.spaces.items() for leaf in space_leaves(sub, f"{name}[{key!r}]")]
    if isinstance(space, spaces.Tuple):
        return [leaf for i, sub in enumerate(space.spaces) for leaf in space_leaves(sub, f"{name}[{i}]")]
    return [(name, space)]


def _box_notes(name: str, box: spaces.Box) -> list[str]:
    notes = []
    if box.dtype == np.float64:
        notes.append(
            f"{name} is a float64 Box; float32 is faster and is what the "
            "networks use: declare dtype=np.float32 and return float32 observations."
        )
    # uint8 frames are pixels to image models, scaled by 1/255 (SB3's CNN policies and rlarena's alike)
    pixels = (box.low == 0).all() and (box.high == 255).all()
    if box.dtype == np.uint8 and len(box.shape) in (2, 3) and not pixels:
        notes.append(
            f"{name} is a uint8 Box of shape {box.shape} with bounds [{box.low.min()}, {box.high.max()}], "
            "not [0, 255]: uint8 frames are read as images of pixels in [0, 255] (scaled by 1/255). "
            "Declare low=0, high=255 if they are pixels, or another dtype (float32, int64) if not."
        )
    if len(box.shape) == 3 and box.shape[1] < min(box.shape[0], box.shape[2]):
        notes.append(
            f"{name} has shape {box.shape}: its smallest axis, likely the channels, is the middle one; "
            "image models expect channels first (C, H, W) or last (H, W, C): transpose the observation "
            "and its space, e.g. np.moveaxis(obs, 1, 0)."
        )
    return notes


def contains(space: spaces.Space, value: Any) -> bool:
    try:
        return bool(space.contains(value))
    except Exception:  # noqa: BLE001 - some spaces raise on a malformed value instead of answering False
        return False


def box_obs_problem(what: str, obs: Any, space: spaces.Box, space_name: str = "observation_space") -> str | None:
    """Why `obs` is not in the Box `space` (named `space_name` in the message), in concrete words;
    None when it is."""
    want = f"shape {space.shape} {space.dtype}"
    if not isinstance(obs, np.ndarray):
        return (
            f"{what} is {describe(obs)}, expected a numpy array of {want}; "
            f"return np.asarray(obs, dtype=np.{space.dtype})."
        )
    mismatch = f"{what} does not match {space_name}: expected {want}, got shape {obs.shape} {obs.dtype}"
    if obs.shape != space.shape:
        return f"{mismatch}. Return shape {space.shape}, or declare the space as shape={obs.shape}."
    if not np.can_cast(obs.dtype, space.dtype):
        # numpy's default: np.array of Python floats, or arithmetic with a float64 array, is float64
        why = " (numpy computes in float64 unless told otherwise)" if obs.dtype == np.float64 else ""
        return (
            f"{mismatch}, which {space.dtype} cannot hold{why}. Return "
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
            f"{what}{list(i)} = {obs[i]} is outside {space_name} bounds "
            f"[{space.low[i]}, {space.high[i]}]; clip it, or widen the space's low/high."
        )
    return None


def obs_problem(what: str, obs: Any, space: spaces.Space, space_name: str = "observation_space") -> str | None:
    """Why `obs` is not in `space`, naming the offending part of a Dict or Tuple observation
    (`step's obs['sensors'][1]`); None when it is."""
    if isinstance(space, spaces.Box):
        return box_obs_problem(what, obs, space, space_name)
    if isinstance(space, spaces.Dict):
        if not isinstance(obs, Mapping):
            return f"{what} is {describe(obs)}, expected a dict with the keys of {space_name}: {list(space.spaces)}."
        missing = [k for k in space.spaces if k not in obs]
        extra = [k for k in obs if k not in space.spaces]
        if missing or extra:
            found = ", ".join(
                text
                for text in (missing and f"lacks {missing}", extra and f"has keys {extra} it does not name")
                if text
            )
            return f"{what} {found}; expected exactly the keys of {space_name}: {list(space.spaces)}."
        for key, sub in space.spaces.items():
            problem = obs_problem(f"{what}[{key!r}]", obs[key], sub, f"{space_name}[{key!r}]")
            if problem:
                return problem
        return None
    if isinstance(space, spaces.Tuple):
        if not isinstance(obs, tuple | list) or len(obs) != len(space.spaces):
            got = f"a {type(obs).__name__} of {len(obs)}" if isinstance(obs, tuple | list) else describe(obs)
            return f"{what} is {got}, expected a tuple of {len(space.spaces)} parts ({space_name} is {space})."
        for i, sub in enumerate(space.spaces):
            problem = obs_problem(f"{what}[{i}]", obs[i], sub, f"{space_name}[{i}]")
            if problem:
                return problem
        return None
    if not contains(space, obs):
        return f"{what} is {describe(obs)}, not in {space_name} {space}; return a value inside the space, or fix the space."
    return None


def key_orders(obs: Any, path: str = "obs") -> dict[str, list[Any]]:
    """The key order of every dict in an observation, by its path: `{"obs": ["b", "a"], ...}`."""
    orders: dict[str, list[Any]] = {}
    if isinstance(obs, Mapping):
        orders[path] = list(obs)
        for key, value in obs.items():
            orders.update(key_orders(value, f"{path}[{key!r}]"))
    elif isinstance(obs, tuple):
        for i, value in enumerate(obs):
            orders.update(key_orders(value, f"{path}[{i}]"))
    return orders


def key_order_problem(what: str, first: dict[str, list[Any]], now: dict[str, list[Any]], first_what: str) -> str | None:
    """Where a dict observation lists its keys in another order than the first one did; None if nowhere."""
    for path, keys in now.items():
        before = first.get(path)
        if before is not None and set(before) == set(keys) and before != keys:
            where = path.replace("obs", f"{what}'s obs", 1)
            return (
                f"{where} lists its keys in the order {keys}, {first_what} in the order {before}; return them "
                "in one fixed order (the space's): code that flattens a dict in its own order mixes up the parts."
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
