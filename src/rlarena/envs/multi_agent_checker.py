"""check_multi_agent_env: run a multi-agent env briefly and say in plain words what it does wrong.

The multi-agent counterpart of checker.check_env, with the same tone and report (both build on
rlarena.envs.check_common): problems that would break training are raised together as one numbered
EnvError, legal but likely mistakes are UserWarnings. It checks the MultiAgentEnv contract (see
rlarena.envs.multi_agent.MultiAgentEnv) that the env runner relies on; PettingZoo envs are checked
through their adapters. Never imports torch.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces

from rlarena.envs.check_common import (
    SEED,
    SEED_STEPS,
    Probe,
    describe,
    obs_problem,
    report,
    sample_action,
    space_warnings,
    truthy,
)
from rlarena.envs.legacy import LegacyMultiAgentEnv, adapt_for_check
from rlarena.envs.multi_agent import ALL, MultiAgentEnv
from rlarena.envs.pettingzoo_adapters import wrap_multi_agent
from rlarena.errors import EnvError

MAX_EPISODE_STEPS = 1000  # random steps allowed for the first episode to end
OLD_API = "this looks like RLlib's old API with one `dones` dict"


def check_multi_agent_env(env: Any, *, warn: bool = True) -> None:
    """Play one episode of random legal actions (action masks respected), reset, and replay a seeded
    start twice; raise EnvError listing every problem found.

    `env` is a MultiAgentEnv instance (reset and stepped, left open), a MultiAgentEnv subclass (built
    with no arguments, closed afterwards) or a PettingZoo AEC/Parallel env (checked through
    wrap_multi_agent). With warn=True, legal but likely mistakes (spaces rlarena's default models do
    not handle yet, an episode that does not end) are issued as UserWarnings.
    """
    built = _build(env, warn)
    named = built.env if isinstance(built, LegacyMultiAgentEnv) else built
    name = (getattr(named, "metadata", None) or {}).get("name") or type(named).__name__
    try:
        problems = _attribute_problems(built)
        if not problems:  # without the agents and their spaces nothing else can be checked
            if warn:
                for note in _space_notes(built):
                    warnings.warn(f"{name}: {note}", UserWarning, stacklevel=2)
            probe = _Probe(built, name)
            problems = probe.run()
            if warn and probe.unfinished:
                warnings.warn(
                    f"{name}: no episode ended within {MAX_EPISODE_STEPS} steps of random actions, so "
                    "the episode end and the reset after it were not checked. If episodes are meant to "
                    "be that long, fine; otherwise set '__all__' when the game is over.",
                    UserWarning,
                    stacklevel=2,
                )
        if problems:
            raise EnvError(report(name, problems))
    finally:
        if isinstance(env, type):
            built.close()


def _build(env: Any, warn: bool) -> MultiAgentEnv:
    if isinstance(env, type) and issubclass(env, MultiAgentEnv):
        try:
            env = env()
        except Exception as exc:
            raise EnvError(
                f"Could not build {env.__name__}() with no arguments: {type(exc).__name__}: {exc}. "
                f"Pass an instance instead: check_multi_agent_env({env.__name__}(...))."
            ) from exc
    return wrap_multi_agent(adapt_for_check(env, warn))  # an env of RLlib's old API is checked as it is trained


def _attribute_problems(env: MultiAgentEnv) -> list[str]:
    found = []
    for attr in ("possible_agents", "agents"):
        value = getattr(env, attr, None)
        if not isinstance(value, list):
            got = "is missing" if value is None else f"is {describe(value)}"
            example = '["agent1", "agent2"]' if attr == "possible_agents" else "[]"
            found.append(f"env.{attr} {got}, expected a list of agent ids; set self.{attr} = {example} in __init__.")
    if found:
        return found
    for agent in env.possible_agents:
        for kind, getter in (("observation", env.get_observation_space), ("action", env.get_action_space)):
            problem = _space_problem(f"get_{kind}_space({agent!r})", getter, agent)
            if problem:
                found.append(problem)
    return found


def _space_problem(call: str, getter: Callable[[Any], Any], agent: Any) -> str | None:
    try:
        space = getter(agent)
    except Exception as exc:  # noqa: BLE001 - the checker reports whatever a user's env raises
        return (
            f"{call} raised {type(exc).__name__}: {exc}; expected the agent's gymnasium Space. Fill "
            f"self.observation_spaces / self.action_spaces for every agent in possible_agents."
        )
    if not isinstance(space, spaces.Space):
        return f"{call} returned {describe(space)}, expected a gymnasium.spaces.Space."
    return None


def _space_notes(env: MultiAgentEnv) -> list[str]:
    """check_common.space_warnings per agent, each note once with the agents it concerns."""
    agents_by_note: dict[str, list[str]] = {}
    for agent in env.possible_agents:
        for note in space_warnings(env.get_observation_space(agent), env.get_action_space(agent)):
            agents_by_note.setdefault(note, []).append(str(agent))
    return [f"agent(s) {', '.join(agents)}: {note}" for note, agents in agents_by_note.items()]


def _reward_problem(what: str, reward: Any) -> str | None:
    real = isinstance(reward, (int, float, np.integer, np.floating)) and not isinstance(reward, (bool, np.bool_))
    if not real:
        return f"{what} is {describe(reward)}, expected a real number (int or float); return float(reward)."
    if not math.isfinite(reward):
        return f"{what} is {reward}, expected a finite number; find its source."
    return None


def _done(flags: dict, agent: Any) -> bool:
    return truthy(flags.get(agent, False))


class _Probe(Probe):
    """The shared probe's reset/step bookkeeping (run, _call, _reset, _note) over dict-keyed
    episodes: _rollout plays one episode of random legal actions."""

    def __init__(self, env: MultiAgentEnv, name: str) -> None:
        super().__init__(env, name)
        self.unfinished = False
        self.action_spaces: dict[Any, spaces.Space] = {}

    def _actions(self, obs: dict, done: set) -> dict:
        """A random legal action for each agent in obs that is not done."""
        actions = {}
        for agent, agent_obs in obs.items():
            if agent in done or agent == ALL:
                continue
            if agent not in self.action_spaces:  # a private, seeded copy: leave the env's spaces alone
                space = copy.deepcopy(self.env.get_action_space(agent))
                space.seed(SEED + len(self.action_spaces))
                self.action_spaces[agent] = space
            actions[agent] = sample_action(self.action_spaces[agent], agent_obs)
        return actions

    # --- one episode ------------------------------------------------------------------------------

    def _rollout(self) -> None:
        """Random legal actions until the episode ends, then one more reset."""
        self.action_spaces = {}
        obs = self._checked_reset(SEED, "first reset")
        if obs is None:
            return
        finished: set = set()  # agents done earlier in the episode
        for t in range(MAX_EPISODE_STEPS):
            actions = self._actions(obs, finished)
            result = self._call(f"step({str(actions)[:60]}) at step {t}", self.env.step, actions)
            found, ended = self._step_problems(result, finished)
            self._note("step", f"step {t}", found)
            if not (isinstance(result, tuple) and len(result) == 5 and all(isinstance(x, dict) for x in result)):
                return  # cannot tell who acts next or where the episode ends
            obs, _, terminateds, truncateds, _ = result
            finished |= {a for a in obs if a != ALL and (_done(terminateds, a) or _done(truncateds, a))}
            if ended:
                self._checked_reset(None, f"reset after the episode ended at step {t}")
                return
            if not any(a not in finished for a in obs):
                return  # reported by _step_problems: nobody to act
        self.unfinished = True

    def _checked_reset(self, seed: int | None, where: str) -> dict | None:
        result = self._reset(seed)
        found = self._reset_problems(result)
        self._note("reset", where, found)
        return None if found else result[0]

    def _reset_problems(self, result: Any) -> list[str]:
        if not (isinstance(result, tuple) and len(result) == 2):
            got = describe(result) if not isinstance(result, tuple) else f"a tuple of {len(result)} values"
            return [
                (
                    f"reset returned {got}, expected (obs, infos): two dicts keyed by agent id, e.g. "
                    "`return {agent: obs for agent in self.agents}, {agent: {} for agent in self.agents}`."
                )
            ]
        obs, infos = result
        if not isinstance(obs, dict):
            return [f"reset's obs is {describe(obs)}, expected a dict {{agent_id: observation}}."]
        found = []
        if not obs:
            found.append(
                "reset returned no observations; expected the agents that act first "
                "(at least one), e.g. every agent, or only the first mover of a turn-based game."
            )
        found += self._obs_problems("reset", obs)
        if not isinstance(infos, dict):
            found.append(f"reset's infos is {describe(infos)}, expected a dict; return {{}} per agent if empty.")
        return found

    def _obs_problems(self, call: str, obs: dict) -> list[str]:
        found = []
        for agent, agent_obs in obs.items():
            if agent == ALL:
                found.append(
                    f"{call}'s obs has the key '__all__'; '__all__' belongs only in terminateds and "
                    "truncateds. obs is keyed by agent id."
                )
                continue
            try:
                space = self.env.get_observation_space(agent)
            except Exception as exc:  # noqa: BLE001 - the checker reports whatever a user's env raises
                found.append(
                    f"{call}'s obs names agent {agent!r}, which has no observation space "
                    f"({type(exc).__name__}: {exc}); expected only agents from possible_agents or "
                    f"agents get_observation_space answers for."
                )
                continue
            problem = obs_problem(f"{call}'s obs[{agent!r}]", agent_obs, space)
            if problem:
                found.append(problem)
        return found

    def _step_problems(self, result: Any, finished: set) -> tuple[list[str], bool]:
        """Problems of one step's result, and whether it ended the episode."""
        if isinstance(result, tuple) and len(result) == 4:
            return [
                (
                    f"step returned 4 values (obs, rewards, dones, infos) — {OLD_API}. Expected (obs, rewards, "
                    "terminateds, truncateds, infos): terminateds[agent]=True when its game really ends, "
                    "truncateds[agent]=True when it is cut short (a time limit), each with '__all__'."
                )
            ], False
        if not (isinstance(result, tuple) and len(result) == 5):
            return [
                (
                    f"step returned {describe(result)}, expected a 5-tuple of dicts "
                    "(obs, rewards, terminateds, truncateds, infos)."
                )
            ], False
        names = ("obs", "rewards", "terminateds", "truncateds", "infos")
        found = [
            f"step's {n} is {describe(v)}, expected a dict keyed by agent id."
            for n, v in zip(names, result)
            if not isinstance(v, dict)
        ]
        if found:
            return found, False
        obs, rewards, terminateds, truncateds, infos = result
        found += self._obs_problems("step", obs)
        for agent, reward in rewards.items():
            if agent == ALL:
                found.append("step's rewards has the key '__all__'; rewards are keyed by agent id only.")
                continue
            problem = _reward_problem(f"step's rewards[{agent!r}]", reward)
            if problem:
                found.append(problem)
        for flags_name, flags in (("terminateds", terminateds), ("truncateds", truncateds)):
            if ALL not in flags:
                found.append(
                    f"step's {flags_name} has no '__all__' key; add {flags_name}['__all__'] = True "
                    "when the episode is over for everyone, else False."
                )
            for agent, flag in flags.items():
                if not isinstance(flag, (bool, np.bool_)):
                    found.append(f"step's {flags_name}[{agent!r}] is {describe(flag)}, expected a bool.")
        for agent in terminateds:
            if agent != ALL and _done(terminateds, agent) and _done(truncateds, agent):
                found.append(
                    f"step flags {agent!r} both terminated and truncated; set one: terminated when its "
                    "game really ended (no bootstrapping), truncated when it was cut short."
                )
        again = [agent for agent in obs if agent in finished]
        if again:
            found.append(
                f"step's obs names {again[0]!r}, which was done (terminated or truncated) earlier in "
                "the episode; a done agent must not be asked to act again."
            )
        if not isinstance(infos, dict):
            found.append(f"step's infos is {describe(infos)}, expected a dict.")
        ended = _done(terminateds, ALL) or _done(truncateds, ALL)
        done_now = {a for a in obs if _done(terminateds, a) or _done(truncateds, a)}
        if not ended and not any(a not in finished and a not in done_now for a in obs if a != ALL):
            found.append(
                "step's obs has no agent left to act, but neither terminateds['__all__'] nor "
                "truncateds['__all__'] is True; the episode could not go on. Set '__all__' when the "
                "game is over, or return the observations of the agents that act next."
            )
        return found, ended

    # --- determinism (Probe compares two seeded runs) ------------------------------------------

    def _seeded_run(self) -> list[Any]:
        self.action_spaces = {}
        obs, _ = self._reset(SEED)
        trajectory = [copy.deepcopy(obs)]  # copied: some envs return arrays mutated in place
        finished: set = set()
        for t in range(SEED_STEPS):
            obs, _, terminateds, truncateds, _ = self._call(
                f"step at step {t}", self.env.step, self._actions(obs, finished)
            )
            trajectory.append(copy.deepcopy(obs))
            if _done(terminateds, ALL) or _done(truncateds, ALL):
                break
            finished |= {a for a in obs if _done(terminateds, a) or _done(truncateds, a)}
        return trajectory
