"""Envs written for older APIs, adapted to the current contracts in one place: adapt_old_api(env).

Two kinds of env arrive from older tutorials and code bases:

- single-agent envs of the old Gym API (gym < 0.26): `reset()` without `seed=` returning only the
  observation, `step()` returning `(obs, reward, done, info)`; also any env object that is not a
  gymnasium.Env but has reset/step. LegacyGymEnv makes them a proper gymnasium.Env (so they
  vectorize): done becomes terminated, or truncated where info["TimeLimit.truncated"] says so
  (gym's TimeLimit wrapper set it).
- multi-agent envs of RLlib 1.x's MultiAgentEnv API: one `observation_space`/`action_space` shared
  by every agent, no agent list, `reset()` returning only the observation dict, `step()` returning
  `(obs, rewards, dones, infos)` with "__all__" in dones. LegacyMultiAgentEnv turns them into
  rlarena's MultiAgentEnv contract (see rlarena.envs.multi_agent.MultiAgentEnv): agents are inferred
  from the first reset (and extended when new ones appear), dones become terminateds (RLlib 1.x
  treated done as terminal too), truncateds are all False.

Old envs are recognised by their signatures and attributes when created (a reset without `seed=`, a
reset with gym 0.2x's `return_info=`, no agent list, no per-agent spaces, no gymnasium.Env base);
whether a reset or step result is in the old form is then decided per call by its shape, so an env
that is old in one respect only still works. Each adapted env class is reported once, as an
RLArenaNotice. Like the rest of the env layer this module never imports torch.
"""

from __future__ import annotations

import inspect
from typing import Any

import gymnasium
from gymnasium import spaces

from rlarena.envs.multi_agent import ALL, AgentID, MultiAgentDict, MultiAgentEnv, is_multi_agent, pettingzoo_kind
from rlarena.errors import EnvError, notice

NO_SEED = "reset() without seed="
_NOTICED: set[type] = set()  # env classes whose adaptation has been reported
# RLlib 2.x's flags for a Dict space keyed by agent id (one sub-space per agent)
_PREFERRED_FORMAT = {"observation": "_obs_space_in_preferred_format", "action": "_action_space_in_preferred_format"}


def adapt_old_api(env: Any, *, report: bool = True) -> Any:
    """`env` in the current API: an old-API env wrapped in LegacyGymEnv / LegacyMultiAgentEnv,
    anything else (current envs, PettingZoo envs, adapters already) as it is.

    report: issue the adapter's notice, once per env class (check_env reports it itself)."""
    adapted: LegacyGymEnv | LegacyMultiAgentEnv
    if is_multi_agent(env) and not isinstance(env, type):
        if isinstance(env, LegacyMultiAgentEnv) or not _old_multi_agent_traits(env):
            return env
        adapted = LegacyMultiAgentEnv(env)
    elif _old_single_agent(env):
        adapted = LegacyGymEnv(env)
    else:
        return env
    if report and type(env) not in _NOTICED:
        _NOTICED.add(type(env))
        notice(adapted.description)
    return adapted


def adapt_for_check(env: Any, warn: bool) -> Any:
    """`env` as the env checkers check it: as rlarena trains it, adapted, with an "old API, adapted"
    notice (warn) each time.

    An env whose one old trait is a reset without seed= that returns the current (obs, info) is checked
    as it is, so that the report says how to add seed= (training adapts it all the same)."""
    new = adapt_old_api(env, report=False)
    if new is env or (old_api_traits(env) == [NO_SEED] and _returns_info(env)):
        return env
    if warn:
        notice(f"old API, adapted: {new.description}")
    return new


def _returns_info(env: Any) -> bool:
    try:
        result = env.reset()
    except Exception:  # noqa: BLE001 - the checker's probe calls reset again and reports the crash
        return True
    return isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)


def _old_single_agent(env: Any) -> bool:
    """An env object with reset/step that is no gymnasium.Env, or one whose reset is of the old API
    (not a class, a PettingZoo env, a vector env or an adapter)."""
    if (
        isinstance(env, type | LegacyGymEnv | gymnasium.vector.VectorEnv)
        or pettingzoo_kind(env) is not None
        or not (callable(getattr(env, "reset", None)) and callable(getattr(env, "step", None)))
    ):
        return False
    return not isinstance(env, gymnasium.Env) or bool(_old_reset_traits(env))


def is_old_api_class(cls: type) -> bool:
    """Whether instances of `cls` would be adapted (judged from the class alone: its reset's
    signature, and for single-agent classes whether it is a gymnasium.Env)."""
    reset = getattr(cls, "reset", None)
    if reset is None or not callable(getattr(cls, "step", None)):
        return False
    if not _reset_params(reset).takes_seed:
        return True
    return not issubclass(cls, gymnasium.Env)


# --- reading signatures -----------------------------------------------------------------------


class _ResetParams:
    """What an env's reset accepts: `seed=`, `options=` (or **kwargs), and gym 0.2x's return_info."""

    def __init__(self, params: dict[str, inspect.Parameter] | None) -> None:
        if params is None:  # no signature to read (a builtin): assume the current API
            self.takes_seed = self.takes_options = True
            self.return_info = False
            return
        anything = any(p.kind is p.VAR_KEYWORD for p in params.values())
        self.takes_seed = anything or "seed" in params
        self.takes_options = anything or "options" in params
        self.return_info = "return_info" in params


def _reset_params(reset: Any) -> _ResetParams:
    try:
        return _ResetParams(dict(inspect.signature(reset).parameters))
    except (TypeError, ValueError):
        return _ResetParams(None)


def _old_reset_traits(env: Any) -> list[str]:
    params = _reset_params(env.reset)
    found = []
    if not params.takes_seed:
        found.append(NO_SEED)
    if params.return_info:
        found.append("reset(return_info=) of gym 0.2x")
    return found


def _has_space_method(env: Any, kind: str) -> bool:
    """Whether the env's class answers get_<kind>_space itself (agents created on the fly)."""
    method = getattr(type(env), f"get_{kind}_space", None)
    return method is not None and method is not getattr(MultiAgentEnv, f"get_{kind}_space")


def _old_multi_agent_traits(env: Any) -> list[str]:
    found = _old_reset_traits(env)
    if not isinstance(getattr(env, "possible_agents", None), list):
        found.append("no possible_agents list")
    for kind in ("observation", "action"):  # without a shared space either, MultiAgentEnv's own error says more
        if (
            not isinstance(getattr(env, f"{kind}_spaces", None), dict)
            and not _has_space_method(env, kind)
            and getattr(env, f"{kind}_space", None) is not None
        ):
            found.append(f"no {kind}_spaces dict")
    return found


def old_api_traits(env: Any) -> list[str]:
    """Why adapt_old_api adapts `env` (e.g. [NO_SEED, "no possible_agents list"]); [] when it does not."""
    if is_multi_agent(env) and not isinstance(env, type | LegacyMultiAgentEnv):
        return _old_multi_agent_traits(env)
    if _old_single_agent(env):
        return _old_reset_traits(env) or ["not a gymnasium.Env"]
    return []


def _seeder(env: Any, params: _ResetParams) -> str:
    """How a seed reaches the env: "reset" (reset(seed=)), "seed" (gym < 0.22's env.seed(seed)) or
    "" (it cannot: seeds are not passed on)."""
    if params.takes_seed:
        return "reset"
    return "seed" if callable(getattr(env, "seed", None)) else ""


def _reset(env: Any, params: _ResetParams, seeder: str, seed: int | None, options: dict[str, Any] | None) -> Any:
    """env.reset() with what it accepts of seed= and options= (a seed goes to env.seed() for gym < 0.22)."""
    kwargs: dict[str, Any] = {}
    if seeder == "reset":
        kwargs["seed"] = seed
    elif seeder == "seed" and seed is not None:
        env.seed(seed)
    if params.takes_options and options is not None:
        kwargs["options"] = options
    return env.reset(**kwargs)


# the notices' last sentence, by how a seed reaches the env (see _seeder)
_SEEDING = {
    "reset": "",
    "seed": " Seeds go to its seed() method.",
    "": " Its reset() takes no seed, so seeds are not passed on: its episodes are not reproducible.",
}


def _name(env: Any) -> str:
    return type(env).__name__


def _check_space(env: Any, attr: str, space: Any) -> spaces.Space:
    if not isinstance(space, spaces.Space):
        module = type(space).__module__.split(".")[0]
        hint = (
            f" (a {module}.spaces class: import the spaces from gymnasium instead, "
            f"`from gymnasium.spaces import {type(space).__name__}`)"
            if module == "gym"
            else ""
        )
        raise EnvError(
            f"Env {_name(env)}.{attr} is {type(space).__name__}{hint}, expected a gymnasium.spaces.Space; "
            f"set self.{attr} in __init__."
        )
    return space


# --- single-agent -----------------------------------------------------------------------------


class _Wraps:
    """render/close/str of an adapter: the wrapped env's own."""

    env: Any

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        close = getattr(self.env, "close", None)
        if callable(close):
            close()

    def __str__(self) -> str:
        return f"{type(self).__name__}<{_name(self.env)}>"


class LegacyGymEnv(_Wraps, gymnasium.Env):
    """An old-API single-agent env (or any env object with reset/step) as a gymnasium.Env.

    reset(seed=, options=) passes on what the env's reset accepts; a seed reaches an env whose reset
    takes none through its seed() method if it has one (gym < 0.22), otherwise not at all. reset may
    return obs or (obs, info); step may return (obs, reward, done, info) or the current 5-tuple.
    """

    def __init__(self, env: Any) -> None:
        self.env = env
        for attr in ("observation_space", "action_space"):
            space = getattr(env, attr, None)
            if space is None:
                example = "Box(-1, 1, (4,))" if attr == "observation_space" else "Discrete(2)"
                raise EnvError(
                    f"Env {_name(env)} has no {attr}; set self.{attr} = gymnasium.spaces.{example} in its __init__."
                )
            setattr(self, attr, _check_space(env, attr, space))
        self.metadata = dict(getattr(env, "metadata", None) or {"render_modes": []})
        self.render_mode = getattr(env, "render_mode", None)
        self._params = _reset_params(env.reset)
        self._seeder = _seeder(env, self._params)
        self.takes_seed = bool(self._seeder)  # checkers skip the determinism check when False
        traits = _old_reset_traits(env) or [f"not a gymnasium.Env ({type(env).__module__}.{_name(env)})"]
        self.description = (
            f"Env {_name(env)} uses the old Gym API ({', '.join(traits)}); rlarena adapts it: reset() "
            f"may return only obs, a 4-tuple step's done becomes terminated (truncated where "
            f"info['TimeLimit.truncated'] says so).{_SEEDING[self._seeder]}"
        )

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        result = _reset(self.env, self._params, self._seeder, seed, options)
        if (
            isinstance(result, tuple)
            and len(result) == 2
            and isinstance(result[1], dict)
            and not (isinstance(self.observation_space, spaces.Tuple) and self.observation_space.contains(result))
        ):
            return result[0], result[1]
        return result, {}

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict]:
        result = self.env.step(action)
        if not isinstance(result, tuple) or len(result) not in (4, 5):
            raise EnvError(
                f"Env {_name(self.env)}.step() returned {_describe(result)}, expected (obs, reward, "
                f"terminated, truncated, info) or the old API's (obs, reward, done, info)."
            )
        if len(result) == 5:
            return result
        obs, reward, done, info = result
        truncated = bool(done) and isinstance(info, dict) and bool(info.get("TimeLimit.truncated", False))
        return obs, reward, bool(done) and not truncated, truncated, info


# --- multi-agent ------------------------------------------------------------------------------


class LegacyMultiAgentEnv(_Wraps, MultiAgentEnv):
    """An RLlib 1.x-style MultiAgentEnv in rlarena's MultiAgentEnv contract.

    - agents: the env's possible_agents (or RLlib 2.x's _agent_ids) if it has them, else those of the
      first reset (one extra reset, done when possible_agents is first read), extended whenever an
      agent appears for the first time.
    - spaces: the env's observation_spaces/action_spaces dicts or get_*_space methods; else its one
      observation_space/action_space, shared by every agent (or read per agent where it is a Dict
      keyed by agent id, RLlib 2.x's "preferred format").
    - reset returns (obs, infos) whatever the env returns; a seed is passed on only if its reset takes
      one. step returns the 5-tuple: an old (obs, rewards, dones, infos) becomes terminateds = dones
      ("__all__" computed from the agents' flags if missing) and truncateds all False; infos gets
      an entry per agent in obs.
    """

    def __init__(self, env: Any) -> None:
        self.env = env
        self.metadata = dict(getattr(env, "metadata", None) or {"render_modes": []})
        self.render_mode = getattr(env, "render_mode", None)
        self._params = _reset_params(env.reset)
        self._seeder = _seeder(env, self._params)
        self.takes_seed = bool(self._seeder)  # checkers skip the determinism check when False
        agents = getattr(env, "possible_agents", None)
        if not isinstance(agents, list | tuple) or not agents:
            agents = getattr(env, "_agent_ids", None)  # RLlib 2.x's set of agent ids
        self._possible: list[AgentID] | None = list(agents) if agents else None
        self._known: set[AgentID] = set(self._possible or ())
        self.agents: list[AgentID] = []
        self._spaces = {kind: self._space_source(kind) for kind in ("observation", "action")}
        traits = [t for t in _old_multi_agent_traits(env) if not t.endswith("_spaces dict")]
        shared = [kind for kind, (how, _) in self._spaces.items() if how == "shared"]
        if shared:
            traits.append(f"one {'/'.join(shared)} space for all agents")
        what = [f"the shared {'/'.join(shared)} space used for every agent"] if shared else []
        if self._possible is None:
            what.append("agents taken from the first reset()")
        if _old_reset_traits(env):  # an old reset comes with an old step: converted when it is one
            what.append(
                "obs-only resets and (obs, rewards, dones, infos) steps converted (dones become "
                "terminateds, truncateds stay False)"
            )
        what = what or ["spaces read per agent"]
        self.description = (
            f"Env {_name(env)} uses RLlib's old MultiAgentEnv API ({', '.join(traits)}); rlarena "
            f"adapts it: {', '.join(what)}.{_SEEDING[self._seeder]}"
        )

    # -- agents and spaces ----------------------------------------------------------------------
    def _space_source(self, kind: str) -> tuple[str, Any]:
        """("table", {agent: Space}), ("method", bound get_<kind>_space) or ("shared", Space)."""
        env = self.env
        table = getattr(env, f"{kind}_spaces", None)
        if isinstance(table, dict):
            return "table", {a: _check_space(env, f"{kind}_spaces[{a!r}]", s) for a, s in table.items()}
        if _has_space_method(env, kind):
            return "method", getattr(env, f"get_{kind}_space")
        space = getattr(env, f"{kind}_space", None)
        if space is None:
            raise EnvError(
                f"Env {_name(env)} has no {kind} space: set self.{kind}_space = <one gymnasium Space for "
                f"every agent> or self.{kind}_spaces = {{agent_id: Space}} in its __init__."
            )
        _check_space(env, f"{kind}_space", space)
        preferred = getattr(env, _PREFERRED_FORMAT[kind], False)
        keyed = isinstance(space, spaces.Dict) and (
            preferred or (self._possible is not None and set(self._possible) <= set(space.spaces))
        )
        return ("table", dict(space.spaces)) if keyed else ("shared", space)

    def _space(self, kind: str, agent: AgentID) -> spaces.Space:
        how, source = self._spaces[kind]
        if how == "shared":
            return source
        if how == "method":
            return source(agent)
        if agent not in source:
            raise EnvError(
                f"Env {_name(self.env)} has no {kind} space for agent {agent!r}; it knows "
                f"{sorted(map(str, source))}. Add the agent to its {kind} spaces, or set one shared "
                f"self.{kind}_space."
            )
        return source[agent]

    def get_observation_space(self, agent: AgentID) -> spaces.Space:
        return self._space("observation", agent)

    def get_action_space(self, agent: AgentID) -> spaces.Space:
        return self._space("action", agent)

    @property
    def possible_agents(self) -> list[AgentID]:  # type: ignore[override]
        if self._possible is None:  # no agent list: one reset tells (the runner resets again)
            self._possible = []
            self._note_agents(self._reset_obs(None, None)[0], "reset()")
        return self._possible

    @property
    def observation_spaces(self) -> dict[AgentID, spaces.Space]:  # type: ignore[override]
        return {agent: self.get_observation_space(agent) for agent in self.possible_agents}

    @property
    def action_spaces(self) -> dict[AgentID, spaces.Space]:  # type: ignore[override]
        return {agent: self.get_action_space(agent) for agent in self.possible_agents}

    def _note_agents(self, obs: MultiAgentDict, call: str) -> None:
        """Adds agents seen for the first time to possible_agents; each must have spaces."""
        if self._possible is None:
            self._possible = []
        for agent in obs:
            if agent not in self._known:
                if agent == ALL:
                    raise EnvError(
                        f"Env {_name(self.env)}.{call} returned an observation for '__all__'; "
                        "'__all__' belongs only in dones (terminateds/truncateds), obs is keyed by agent id."
                    )
                self.get_observation_space(agent)  # an agent without a space is an error now, not later
                self.get_action_space(agent)
                self._known.add(agent)
                self._possible.append(agent)

    # -- reset and step -------------------------------------------------------------------------
    def _reset_obs(self, seed: int | None, options: dict[str, Any] | None) -> tuple[MultiAgentDict, MultiAgentDict]:
        result = _reset(self.env, self._params, self._seeder, seed, options)
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], dict):
            obs, infos = result
        else:
            obs, infos = result, {}
        if not isinstance(obs, dict) or not obs:
            got = "no observations" if isinstance(obs, dict) else _describe(obs)
            raise EnvError(
                f"Env {_name(self.env)}.reset() returned {got}; expected a dict {{agent_id: observation}} "
                f"with the agents that act first (at least one), or (obs, infos)."
            )
        return obs, dict(infos) if isinstance(infos, dict) else {}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[MultiAgentDict, MultiAgentDict]:
        obs, infos = self._reset_obs(seed, options)
        self._note_agents(obs, "reset()")
        self.agents = list(obs)
        for agent in obs:
            infos.setdefault(agent, {})
        return obs, infos

    def step(
        self, action_dict: MultiAgentDict
    ) -> tuple[  # type: ignore[override]  # see MultiAgentEnv.step
        MultiAgentDict, MultiAgentDict, MultiAgentDict, MultiAgentDict, MultiAgentDict
    ]:
        result = self.env.step(action_dict)
        if not (isinstance(result, tuple) and len(result) in (4, 5) and all(isinstance(x, dict) for x in result)):
            raise EnvError(
                f"Env {_name(self.env)}.step() returned {_describe(result)}, expected dicts keyed by agent "
                f"id: (obs, rewards, terminateds, truncateds, infos) or the old API's (obs, rewards, "
                f"dones, infos)."
            )
        if len(result) == 5:
            obs, rewards, terminateds, truncateds, infos = result
        else:
            obs, rewards, dones, infos = result
            terminateds = {agent: bool(done) for agent, done in dones.items()}
            if ALL not in terminateds:  # RLlib 1.x required it; without it, the episode ends with its agents
                terminateds[ALL] = all(terminateds.get(agent, False) for agent in self.agents)
            truncateds = {agent: False for agent in terminateds}
        self._note_agents(obs, "step()")
        infos = {**{agent: {} for agent in obs}, **infos}
        if terminateds.get(ALL) or truncateds.get(ALL):
            self.agents = []
        else:
            self.agents = [a for a in obs if not (terminateds.get(a) or truncateds.get(a))]
        return obs, rewards, terminateds, truncateds, infos


def _describe(x: Any) -> str:
    if isinstance(x, tuple):
        return f"a tuple of {len(x)} values ({', '.join(type(v).__name__ for v in x)})"
    return f"{type(x).__name__} {repr(x)[:40]}"
