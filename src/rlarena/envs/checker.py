"""check_env: run a single-agent Gymnasium env briefly and say in plain words what it does wrong.

Problems that would break training are collected and raised together as one numbered EnvError;
things that are legal but likely mistakes are UserWarnings. The checks follow Stable-Baselines3's
env_checker and Gymnasium's passive checker, with messages that say what to fix. Like the rest of
the env layer, this module never imports torch.
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from rlarena.envs.check_common import (
    SEED,
    SEED_STEPS,
    Probe,
    describe,
    key_order_problem,
    key_orders,
    obs_problem,
    report,
    sample_action,
    space_warnings,
    truthy,
)
from rlarena.envs.external_ids import register_external
from rlarena.envs.legacy import LegacyGymEnv, adapt_for_check, is_old_api_class
from rlarena.errors import EnvError, closest

ROLLOUT_STEPS = 200  # long enough to cross an episode end on small envs, cheap on big ones
OLD_API = "this looks like the old gym<0.26 API"


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
                for note in space_warnings(built.observation_space, built.action_space):
                    warnings.warn(f"{name}: {note}", UserWarning, stacklevel=2)
            problems = _Probe(built, name).run()
        if problems:
            raise EnvError(report(name, problems))
    finally:
        if built is not env:
            built.close()


def is_multi_agent_class(cls: type) -> bool:
    from rlarena.envs.multi_agent import MultiAgentEnv

    return issubclass(cls, MultiAgentEnv)


def _build(env: Any, warn: bool) -> gymnasium.Env:
    if isinstance(env, str):
        if env not in gymnasium.registry:
            register_external(env)  # an id of ale-py, MinAtar, minigrid: their package registers it
        try:  # check_env replaces Gymnasium's passive checker; running both would warn twice
            return gymnasium.make(env, disable_env_checker=True)
        except Exception as exc:
            hint = "" if env in gymnasium.registry else closest(env, gymnasium.registry)
            cause = f"{type(exc).__name__}: {str(exc).rstrip('.')}"
            raise EnvError(
                f"Could not make env {env!r}: {cause}. Expected a registered Gymnasium id such as 'CartPole-v1'.{hint}"
            ) from exc
    if isinstance(env, type) and (issubclass(env, gymnasium.Env) or is_old_api_class(env)):
        try:
            env = env()
        except Exception as exc:
            raise EnvError(
                f"Could not build {env.__name__}() with no arguments: "
                f"{type(exc).__name__}: {exc}. Pass an instance instead: "
                f"check_env({env.__name__}(...))."
            ) from exc
    env = adapt_for_check(env, warn)
    if not isinstance(env, gymnasium.Env):  # a VectorEnv, a PettingZoo env...
        raise EnvError(
            f"Expected one gymnasium.Env (an instance, a subclass or a registered "
            f"id), got {describe(env)}. Pass a single gymnasium.Env."
        )
    return env


def _space_problems(env: gymnasium.Env) -> list[str]:
    found = []
    examples = {"observation_space": "Box(-1, 1, (4,))", "action_space": "Discrete(2)"}
    for attr, example in examples.items():
        space = getattr(env, attr, None)
        if not isinstance(space, spaces.Space):
            got = "is missing" if space is None else f"is {describe(space)}"
            found.append(
                f"env.{attr} {got}, expected a gymnasium.spaces.Space; "
                f"set self.{attr} = gymnasium.spaces.{example} in __init__."
            )
    return found


def _reset_problems(result: Any, space: spaces.Space) -> list[str]:
    if not isinstance(result, tuple):
        return [
            (
                f"reset must return (obs, info) — {OLD_API} (got {describe(result)}). "
                "Return `obs, info` with info a dict, e.g. `return obs, {}`."
            )
        ]
    if len(result) != 2:
        return [f"reset returned a tuple of {len(result)} values, expected 2: (obs, info)."]
    obs, info = result
    found = [obs_problem("reset's obs", obs, space)]
    if not isinstance(info, dict):
        found.append(f"reset's info is {describe(info)}, expected a dict; return {{}} if empty.")
    return [problem for problem in found if problem]


def _step_problems(result: Any, space: spaces.Space) -> list[str]:
    if isinstance(result, tuple) and len(result) == 4:
        return [
            (
                f"step returned 4 values (obs, reward, done, info) — {OLD_API}: split done into "
                "terminated and truncated. Expected (obs, reward, terminated, truncated, info): "
                "terminated=True when the episode really ends, truncated=True when it is cut short "
                "(e.g. by a time limit)."
            )
        ]
    if not (isinstance(result, tuple) and len(result) == 5):
        return [(f"step returned {describe(result)}, expected a 5-tuple (obs, reward, terminated, truncated, info).")]
    obs, reward, terminated, truncated, info = result
    found = [obs_problem("step's obs", obs, space)]
    real = isinstance(reward, (int, float, np.integer, np.floating)) and not isinstance(reward, bool)
    if not real:
        found.append(
            f"step's reward is {describe(reward)}, expected a real number (int or float); return float(reward)."
        )
    elif not math.isfinite(reward):
        found.append(f"step's reward is {reward}, expected a finite number; find its source.")
    for flag_name, flag in (("terminated", terminated), ("truncated", truncated)):
        if not isinstance(flag, (bool, np.bool_)):
            found.append(f"step's {flag_name} is {describe(flag)}, expected a bool; return bool({flag_name}).")
    if not isinstance(info, dict):
        found.append(f"step's info is {describe(info)}, expected a dict; return {{}} if empty.")
    return [problem for problem in found if problem]


class _Probe(Probe):
    """Random actions for ROLLOUT_STEPS steps of a gymnasium.Env (reset after each episode end),
    then the same seeded start twice."""

    def __init__(self, env: Any, name: str) -> None:
        super().__init__(env, name)
        self.first_orders: dict[str, list[Any]] | None = None  # the first reset's dict key orders, by path

    def _step(self, action: Any, t: int) -> Any:
        return self._call(f"step({str(action)[:40]}) at step {t}", self.env.step, action)

    def _rollout(self) -> None:
        """Random actions for ROLLOUT_STEPS steps, resetting after each episode end."""
        actions = copy.deepcopy(self.env.action_space)  # leave the user's space RNG alone
        actions.seed(SEED)
        obs = self._checked_reset(SEED, "first reset")
        for t in range(ROLLOUT_STEPS):
            result = self._step(sample_action(actions, obs), t)
            self._note("step", f"step {t}", _step_problems(result, self.env.observation_space))
            if not (isinstance(result, tuple) and len(result) == 5):
                return  # cannot tell where episodes end
            obs = result[0]
            self._check_key_order("step", obs, f"step {t}")
            if truthy(result[2]) or truthy(result[3]):
                obs = self._checked_reset(None, f"reset after the episode ended at step {t}")

    def _checked_reset(self, seed: int | None, where: str) -> Any:
        result = self._reset(seed)
        self._note("reset", where, _reset_problems(result, self.env.observation_space))
        obs = result[0] if isinstance(result, tuple) and result else result
        self._check_key_order("reset", obs, where)
        return obs

    def _check_key_order(self, call: str, obs: Any, where: str) -> None:
        """A dict observation keeps the key order of the first reset's."""
        orders = key_orders(obs)
        if self.first_orders is None:
            self.first_orders = orders
            return
        problem = key_order_problem(call, self.first_orders, orders, "the first reset's")
        self._note("key order", where, [problem] if problem else [])

    def _seeded_run(self) -> list[Any]:
        actions = copy.deepcopy(self.env.action_space)
        actions.seed(SEED)
        obs, _ = self._reset(SEED)
        trajectory = [copy.deepcopy(obs)]  # copied: some envs return one array mutated in place
        for t in range(SEED_STEPS):
            obs, _, terminated, truncated, _ = self._step(sample_action(actions, obs), t)
            trajectory.append(copy.deepcopy(obs))
            if terminated or truncated:
                break
        return trajectory
