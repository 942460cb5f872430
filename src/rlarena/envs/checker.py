"""check_env: run a single-agent Gymnasium env briefly and say in plain words what it does wrong.

Problems that would break training are collected and raised together as one numbered EnvError;
things that are legal but likely mistakes are UserWarnings. The checks follow Stable-Baselines3's
env_checker and Gymnasium's passive checker, with messages that say what to fix. Like the rest of
the env layer, this module never imports torch.
"""

from __future__ import annotations

import copy
import inspect
import math
import warnings
from collections.abc import Callable
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from rlarena.envs.legacy import LegacyGymEnv, adapt_for_check, is_old_api_class
from rlarena.errors import EnvError, closest

ROLLOUT_STEPS = 200  # long enough to cross an episode end on small envs, cheap on big ones
SEED_STEPS = 5  # steps compared by the determinism check
SEED = 123
OLD_API = "this looks like the old gym<0.26 API"
MASK_KEYS = {"observation", "action_mask"}  # rlarena's action-masking observation convention


def check_env(env: gymnasium.Env | type[gymnasium.Env] | str, *, warn: bool = True) -> None:
    """Reset and step `env` for a few random episodes; raise EnvError listing every problem found.

    `env` is an instance (reset and stepped, left open), a gymnasium.Env subclass (built with no
    arguments) or a registered Gymnasium id (built with gymnasium.make); envs built here are closed.
    With warn=True, legal but likely mistakes (a float64 observation Box, an action Box other than
    [-1, 1], spaces rlarena's default models do not handle yet) are issued as UserWarnings.
    Multi-agent envs (rlarena.MultiAgentEnv, PettingZoo AEC/Parallel) go to check_multi_agent_env.
    An env of the old Gym API (reset() without seed=, a 4-tuple step) is checked as rlarena trains
    it, adapted (rlarena.envs.legacy), with an "old API, adapted" notice.
    """
    from rlarena.envs.multi_agent import is_multi_agent, pettingzoo_kind
    if not isinstance(env, str | type) and (is_multi_agent(env) or pettingzoo_kind(env)):
        from rlarena.envs.multi_agent_checker import check_multi_agent_env
        return check_multi_agent_env(env, warn=warn)
    if isinstance(env, type) and issubclass(env, gymnasium.Env) and is_multi_agent_class(env):
        from rlarena.envs.multi_agent_checker import check_multi_agent_env
        return check_multi_agent_env(env, warn=warn)
    built = _build(env, warn)
    inner = built.env if isinstance(built, LegacyGymEnv) else built.unwrapped
    name = built.spec.id if built.spec is not None else type(inner).__name__
    try:
        problems = _space_problems(built)
        if not problems:  # without both spaces nothing else can be checked
            if warn:
                for note in _space_warnings(built.observation_space, built.action_space):
                    warnings.warn(f"{name}: {note}", UserWarning, stacklevel=2)
            problems = _Probe(built, name).run()
        if problems:
            raise EnvError(_report(name, problems))
    finally:
        if built is not env:
            built.close()


def is_multi_agent_class(cls: type) -> bool:
    from rlarena.envs.multi_agent import MultiAgentEnv
    return issubclass(cls, MultiAgentEnv)


def _build(env: Any, warn: bool) -> gymnasium.Env:
    if isinstance(env, str):
        try:  # check_env replaces Gymnasium's passive checker; running both would warn twice
            return gymnasium.make(env, disable_env_checker=True)
        except Exception as exc:
            hint = "" if env in gymnasium.registry else closest(env, gymnasium.registry)
            cause = f"{type(exc).__name__}: {str(exc).rstrip('.')}"
            raise EnvError(f"Could not make env {env!r}: {cause}. Expected a registered "
                           f"Gymnasium id such as 'CartPole-v1'.{hint}") from exc
    if isinstance(env, type) and (issubclass(env, gymnasium.Env) or is_old_api_class(env)):
        try:
            env = env()
        except Exception as exc:
            raise EnvError(f"Could not build {env.__name__}() with no arguments: "
                           f"{type(exc).__name__}: {exc}. Pass an instance instead: "
                           f"check_env({env.__name__}(...)).") from exc
    env = adapt_for_check(env, warn)
    if not isinstance(env, gymnasium.Env):  # a VectorEnv, a PettingZoo env...
        raise EnvError(f"Expected one gymnasium.Env (an instance, a subclass or a registered "
                       f"id), got {_describe(env)}. Pass a single gymnasium.Env.")
    return env


def _report(name: str, problems: list[str]) -> str:
    lines = [f"  {i}. {problem}" for i, problem in enumerate(problems, 1)]
    return f"check_env found {len(problems)} problem(s) in env {name}:\n" + "\n".join(lines)


def _describe(x: Any) -> str:
    """`x` for a message: type and (short) value, or shape and dtype for an array."""
    if x is None or isinstance(x, np.ndarray):
        return "None" if x is None else f"an array of shape {x.shape} {x.dtype}"
    text = str(x) if isinstance(x, np.generic) else repr(x)
    return f"{type(x).__name__} {text[:40]}"


def _space_problems(env: gymnasium.Env) -> list[str]:
    found = []
    examples = {"observation_space": "Box(-1, 1, (4,))", "action_space": "Discrete(2)"}
    for attr, example in examples.items():
        space = getattr(env, attr, None)
        if not isinstance(space, spaces.Space):
            got = "is missing" if space is None else f"is {_describe(space)}"
            found.append(f"env.{attr} {got}, expected a gymnasium.spaces.Space; "
                         f"set self.{attr} = gymnasium.spaces.{example} in __init__.")
    return found


def _space_warnings(obs_space: spaces.Space, act_space: spaces.Space) -> list[str]:
    notes = []
    masked = isinstance(obs_space, spaces.Dict) and set(obs_space.spaces) == MASK_KEYS
    inner = obs_space["observation"] if masked else obs_space
    if not isinstance(inner, (spaces.Box, spaces.Discrete, spaces.MultiDiscrete)):
        notes.append(f"observation_space {inner} is not Box, Discrete or MultiDiscrete; rlarena's default models "
                     "do not handle it yet: flatten it (gymnasium.wrappers.FlattenObservation).")
    if not isinstance(act_space, (spaces.Discrete, spaces.Box)):
        notes.append(f"action_space {act_space} is not Discrete or Box; rlarena's default models "
                     "do not handle it yet: bring your own model.")
    if isinstance(inner, spaces.Box) and inner.dtype == np.float64:
        notes.append("observation_space is a float64 Box; float32 is faster and is what the "
                     "networks use: declare dtype=np.float32 and return float32 observations.")
    # SB3's env_checker gives the same advice: a Gaussian policy starts near 0 with unit scale
    if isinstance(act_space, spaces.Box) and not ((act_space.low == -1).all()
                                                 and (act_space.high == 1).all()):
        notes.append(f"action_space Box spans [{act_space.low.min()}, {act_space.high.max()}], "
                     "not [-1, 1]; use a symmetric, normalized Box action space, e.g. wrap the "
                     "env in gymnasium.wrappers.RescaleAction(env, -1.0, 1.0).")
    return notes


def _contains(space: spaces.Space, value: Any) -> bool:
    try:
        return bool(space.contains(value))
    except Exception:  # noqa: BLE001 - some spaces raise on a malformed value instead of answering False
        return False


def _obs_problem(call: str, obs: Any, space: spaces.Space) -> str | None:
    """Why `obs` is not in `space`, in concrete words; None when it is."""
    if isinstance(space, spaces.Box):
        return _box_obs_problem(f"{call}'s obs", obs, space)
    if not _contains(space, obs):
        return (f"{call}'s obs is {_describe(obs)}, not in observation_space {space}; "
                "return a value inside the space, or fix the space.")
    return None


def _box_obs_problem(what: str, obs: Any, space: spaces.Box) -> str | None:
    want = f"shape {space.shape} {space.dtype}"
    if not isinstance(obs, np.ndarray):
        return (f"{what} is {_describe(obs)}, expected a numpy array of {want}; "
                f"return np.asarray(obs, dtype=np.{space.dtype}).")
    mismatch = (f"{what} does not match observation_space: expected {want}, "
                f"got shape {obs.shape} {obs.dtype}")
    if obs.shape != space.shape:
        return f"{mismatch}. Return shape {space.shape}, or declare the space as shape={obs.shape}."
    if not np.can_cast(obs.dtype, space.dtype):
        return (f"{mismatch}, which {space.dtype} cannot hold. Return "
                f"obs.astype(np.{space.dtype}), or declare the space as dtype=np.{obs.dtype}.")
    if np.issubdtype(obs.dtype, np.inexact) and not np.isfinite(obs).all():
        i = tuple(int(k) for k in np.argwhere(~np.isfinite(obs))[0])
        return (f"{what} contains NaN/inf (obs{list(i)} = {obs[i]}), expected finite values; find "
                "its source (division by zero, overflow): one NaN turns every network output NaN.")
    outside = (obs < space.low) | (obs > space.high)
    if outside.any():
        i = tuple(int(k) for k in np.argwhere(outside)[0])
        return (f"{what}{list(i)} = {obs[i]} is outside observation_space bounds "
                f"[{space.low[i]}, {space.high[i]}]; clip it, or widen the space's low/high.")
    return None


def _reset_problems(result: Any, space: spaces.Space) -> list[str]:
    if not isinstance(result, tuple):
        return [(f"reset must return (obs, info) — {OLD_API} (got {_describe(result)}). "
                 "Return `obs, info` with info a dict, e.g. `return obs, {}`.")]
    if len(result) != 2:
        return [f"reset returned a tuple of {len(result)} values, expected 2: (obs, info)."]
    obs, info = result
    found = [_obs_problem("reset", obs, space)]
    if not isinstance(info, dict):
        found.append(f"reset's info is {_describe(info)}, expected a dict; return {{}} if empty.")
    return [problem for problem in found if problem]


def _step_problems(result: Any, space: spaces.Space) -> list[str]:
    if isinstance(result, tuple) and len(result) == 4:
        return [(f"step returned 4 values (obs, reward, done, info) — {OLD_API}: split done into "
                 "terminated and truncated. Expected (obs, reward, terminated, truncated, info): "
                 "terminated=True when the episode really ends, truncated=True when it is cut short "
                 "(e.g. by a time limit).")]
    if not (isinstance(result, tuple) and len(result) == 5):
        return [(f"step returned {_describe(result)}, expected a 5-tuple "
                 "(obs, reward, terminated, truncated, info).")]
    obs, reward, terminated, truncated, info = result
    found = [_obs_problem("step", obs, space)]
    real = isinstance(reward, (int, float, np.integer, np.floating)) and not isinstance(reward, bool)
    if not real:
        found.append(f"step's reward is {_describe(reward)}, expected a real number (int or float);"
                     " return float(reward).")
    elif not math.isfinite(reward):
        found.append(f"step's reward is {reward}, expected a finite number; find its source.")
    for flag_name, flag in (("terminated", terminated), ("truncated", truncated)):
        if not isinstance(flag, (bool, np.bool_)):
            found.append(f"step's {flag_name} is {_describe(flag)}, expected a bool; "
                         f"return bool({flag_name}).")
    if not isinstance(info, dict):
        found.append(f"step's info is {_describe(info)}, expected a dict; return {{}} if empty.")
    return [problem for problem in found if problem]


def _missing_reset_kwargs(env: gymnasium.Env) -> list[str]:
    missing: list[str] = []
    for reset in (env.reset, env.unwrapped.reset):  # a wrapper forwards seed= to the inner env
        try:
            params = inspect.signature(reset).parameters
        except (TypeError, ValueError):  # no signature to read: the call itself will tell
            continue
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            missing += [k for k in ("seed", "options") if k not in params and k not in missing]
    return missing


def _sample(actions: spaces.Space, obs: Any) -> Any:
    """A random action; honours an action mask so a masked env is not fed illegal moves."""
    if isinstance(actions, spaces.Discrete) and isinstance(obs, dict) and "action_mask" in obs:
        mask = np.asarray(obs["action_mask"]).astype(np.int8)
        if mask.shape == (actions.n,) and mask.any():
            return actions.sample(mask=mask)
    return actions.sample()


def _ended(flag: Any) -> bool:
    try:
        return bool(flag)
    except (TypeError, ValueError):  # a malformed flag is reported already; keep stepping
        return False


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return np.array_equal(np.asarray(a), np.asarray(b))


class _Probe:
    """Calls reset/step and collects problems; an exception raised by the env ends the probe."""

    def __init__(self, env: gymnasium.Env, name: str) -> None:
        self.env, self.name = env, name
        self.problems: list[str] = []
        self.seen: set[str] = set()  # kinds of call already reported
        self.missing = _missing_reset_kwargs(env)

    def run(self) -> list[str]:
        if self.missing:
            self.problems.append(
                f"reset does not accept {' and '.join(k + '=' for k in self.missing)}; expected "
                "`def reset(self, *, seed=None, options=None)`. Add the keywords and call "
                "`super().reset(seed=seed)` first so self.np_random is seeded.")
        self._rollout()
        # determinism means little until reset/step are well-formed, and cannot be asked of an old
        # env whose reset takes no seed (its adapter says so)
        if not self.problems and getattr(self.env, "takes_seed", True):
            self._check_determinism()
        return self.problems

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            crash = (f"{what} raised {type(exc).__name__}: {exc} — expected it to run without "
                     "error. Fix the env; the original traceback is chained above this error.")
            raise EnvError(_report(self.name, [*self.problems, crash])) from exc

    def _reset(self, seed: int | None) -> Any:
        kwargs = {k: v for k, v in {"seed": seed, "options": None}.items() if k not in self.missing}
        args = ", ".join(f"{k}={v}" for k, v in kwargs.items())
        return self._call(f"reset({args})", self.env.reset, **kwargs)

    def _step(self, action: Any, t: int) -> Any:
        return self._call(f"step({str(action)[:40]}) at step {t}", self.env.step, action)

    def _rollout(self) -> None:
        """Random actions for ROLLOUT_STEPS steps, resetting after each episode end."""
        actions = copy.deepcopy(self.env.action_space)  # leave the user's space RNG alone
        actions.seed(SEED)
        obs = self._checked_reset(SEED, "first reset")
        for t in range(ROLLOUT_STEPS):
            result = self._step(_sample(actions, obs), t)
            self._note("step", f"step {t}", _step_problems(result, self.env.observation_space))
            if not (isinstance(result, tuple) and len(result) == 5):
                return  # cannot tell where episodes end
            obs = result[0]
            if _ended(result[2]) or _ended(result[3]):
                obs = self._checked_reset(None, f"reset after the episode ended at step {t}")

    def _checked_reset(self, seed: int | None, where: str) -> Any:
        result = self._reset(seed)
        self._note("reset", where, _reset_problems(result, self.env.observation_space))
        return result[0] if isinstance(result, tuple) and result else result

    def _note(self, kind: str, where: str, found: list[str]) -> None:
        # only the first bad reset and the first bad step are reported: later ones repeat them
        if found and kind not in self.seen:
            self.seen.add(kind)
            self.problems += [f"{where}: {problem}" for problem in found]

    def _check_determinism(self) -> None:
        first, second = self._seeded_run(), self._seeded_run()
        if len(first) != len(second) or not all(map(_same, first, second)):
            self.problems.append(
                f"reset(seed={SEED}) does not make the env deterministic: two runs with the same "
                "seed and the same actions gave different observations. Call "
                "super().reset(seed=seed) and draw randomness from self.np_random (not np.random "
                "or random).")

    def _seeded_run(self) -> list[Any]:
        actions = copy.deepcopy(self.env.action_space)
        actions.seed(SEED)
        obs, _ = self._reset(SEED)
        trajectory = [copy.deepcopy(obs)]  # copied: some envs return one array mutated in place
        for t in range(SEED_STEPS):
            obs, _, terminated, truncated, _ = self._step(_sample(actions, obs), t)
            trajectory.append(copy.deepcopy(obs))
            if terminated or truncated:
                break
        return trajectory
