"""PettingZoo envs as MultiAgentEnvs, and a MultiAgentEnv as a PettingZoo ParallelEnv.

pettingzoo is optional: nothing here imports it at module level. A PettingZoo env can only exist once
pettingzoo is imported, so recognising one never needs the import (see multi_agent.pettingzoo_kind);
only to_pettingzoo_parallel imports it, to subclass its ParallelEnv.

Observations pass through unchanged, so PettingZoo's action-masking convention
{"observation": ..., "action_mask": ...} reaches the policy as is.
"""

from __future__ import annotations

import functools
import types
from typing import Any

import gymnasium
from gymnasium import spaces

from rlarena.envs.multi_agent import (
    ALL,
    AgentID,
    MultiAgentDict,
    MultiAgentEnv,
    pettingzoo_kind,
)
from rlarena.errors import EnvError

StepResult = tuple[MultiAgentDict, MultiAgentDict, MultiAgentDict, MultiAgentDict, MultiAgentDict]


class _PettingZooAdapter(MultiAgentEnv):
    """What both adapters share: the wrapped env, its metadata and per-agent spaces (asked of the
    env for agents it creates on the fly), render and close."""

    def __init__(self, env: Any, possible_agents: list[AgentID]) -> None:
        self.env = env
        self.metadata = dict(getattr(env, "metadata", None) or {})
        self.render_mode = getattr(env, "render_mode", None)
        self.possible_agents = possible_agents
        self.agents = []
        self.observation_spaces = {agent: env.observation_space(agent) for agent in self.possible_agents}
        self.action_spaces = {agent: env.action_space(agent) for agent in self.possible_agents}
        self._over = True

    def get_observation_space(self, agent: AgentID) -> spaces.Space:
        space = self.observation_spaces.get(agent)
        return space if space is not None else self.env.observation_space(agent)

    def get_action_space(self, agent: AgentID) -> spaces.Space:
        space = self.action_spaces.get(agent)
        return space if space is not None else self.env.action_space(agent)

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()

    def __str__(self) -> str:
        return f"{type(self).__name__}<{self.env}>"


class PettingZooAECAdapter(_PettingZooAdapter):
    """A turn-based PettingZoo AEC env as a MultiAgentEnv.

    - obs holds only the agent to move (env.agent_selection), plus the final observation of every
      agent that became done; step takes {mover: action}.
    - Rewards: after every call into the AEC env the adapter adds env.rewards (the rewards of that
      call, for every agent) to a per-agent pending sum. An agent receives its pending sum in the
      step where it is next asked to act, or in the step where it becomes done; rewards are thus
      keyed by agents that are in obs. The sums per agent equal what PettingZoo's own loop
      (`for agent in env.agent_iter(): env.last()...`) collects.
    - Done agents: PettingZoo keeps a terminated/truncated agent in env.agents until it is stepped
      with action None. The adapter does those dead steps itself, in the same call: an agent that
      becomes done appears in that step's obs (its final observation, observed when the env selects
      it, as env.last() would), rewards (its final pending sum) and terminateds/truncateds; it is
      never asked to act again. An agent flagged both terminated and truncated (PettingZoo's
      TerminateIllegalWrapper does this) is reported terminated only.
    - "__all__" is set when env.agents is empty: terminated if every agent that finished in this
      step terminated, truncated otherwise.
    - Illegal moves are the env's business: PettingZoo's classic games (TerminateIllegalWrapper)
      end the game, giving the mover illegal_reward (-1) and the others 0.
    """

    def __init__(self, env: Any) -> None:
        if pettingzoo_kind(env) != "aec":
            raise EnvError(
                f"PettingZooAECAdapter needs a PettingZoo AEC env (e.g. connect_four_v3.env()), "
                f"got {_describe(env)}.{_parallel_hint(env)}"
            )
        super().__init__(env, list(env.possible_agents))
        self._pending: dict[AgentID, float] = {}  # reward since the agent was last reported
        self._done: set[AgentID] = set()  # agents reported done this episode
        self._mover: AgentID | None = None  # the agent whose action the next step takes

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[MultiAgentDict, MultiAgentDict]:
        self.env.reset(seed=seed, options=options)
        self._pending, self._done, self._mover, self._over = {}, set(), None, False
        self._add_rewards()  # normally all 0; kept so that sums match PettingZoo's loop exactly
        obs, _, _, infos = self._collect()
        # an agent finishing before anyone moved cannot be reported here: reset returns no flags
        if self._mover is None:
            raise EnvError(
                f"PettingZoo env {self.env} has no agent to move after reset(): env.agents is "
                f"{list(self.env.agents)}. Expected agent_selection to name a live agent."
            )
        self._refresh_agents()
        return obs, infos

    def step(self, action_dict: MultiAgentDict) -> StepResult:  # type: ignore[override]  # see MultiAgentEnv.step
        if self._over or self._mover is None:
            raise EnvError(
                "step() called before reset() or after the episode ended ('__all__' was True); call reset() first."
            )
        mover = self._mover
        if set(action_dict) != {mover}:
            raise EnvError(
                f"{self.env} is turn-based: step() takes exactly one action, for {mover!r} (the only "
                f"agent in the last obs), got actions for {sorted(map(str, action_dict))}."
            )
        self._mover = None
        self.env.step(action_dict[mover])
        self._add_rewards()
        obs, terminateds, truncateds, infos = self._collect()
        rewards = {agent: self._pending.pop(agent, 0.0) for agent in obs}
        over = not self.env.agents
        if over:  # leftovers: agents removed without a dead step, or not yet seen
            rewards.update(self._pending)
            self._pending.clear()
        self._over = over
        terminateds[ALL] = over and all(terminateds.values())
        truncateds[ALL] = over and not terminateds[ALL]
        self._refresh_agents()
        return obs, rewards, terminateds, truncateds, infos

    def _add_rewards(self) -> None:
        for agent, reward in self.env.rewards.items():
            if reward:
                self._pending[agent] = self._pending.get(agent, 0.0) + float(reward)

    def _collect(self) -> tuple[MultiAgentDict, MultiAgentDict, MultiAgentDict, MultiAgentDict]:
        """Step done agents out (action None) until a live agent is selected or none is left."""
        env = self.env
        obs: MultiAgentDict = {}
        terminateds: MultiAgentDict = {}
        truncateds: MultiAgentDict = {}
        infos: MultiAgentDict = {}
        while env.agents:
            agent = env.agent_selection
            if agent in obs:
                raise EnvError(
                    f"PettingZoo env {env} selected {agent!r} again after stepping it with None; "
                    "a done agent must leave env.agents on its dead step (_was_dead_step)."
                )
            terminated = bool(env.terminations[agent])
            truncated = bool(env.truncations[agent]) and not terminated
            obs[agent], infos[agent] = env.observe(agent), env.infos[agent]
            terminateds[agent], truncateds[agent] = terminated, truncated
            if not (terminated or truncated):
                self._mover = agent
                break
            self._done.add(agent)
            env.step(None)
            self._add_rewards()
        return obs, terminateds, truncateds, infos

    def _refresh_agents(self) -> None:
        self.agents = [] if self._over else [a for a in self.env.agents if a not in self._done]


class PettingZooParallelAdapter(_PettingZooAdapter):
    """A simultaneous-move PettingZoo ParallelEnv as a MultiAgentEnv.

    PettingZoo's parallel API already has this shape: obs holds every live agent (and final
    observations of agents done in the step), step takes an action per live agent. The adapter
    passes everything through and adds "__all__" (set when env.agents is empty: terminated if every
    agent that finished in this step terminated, truncated otherwise); rewards become floats, and an
    agent flagged both terminated and truncated is reported terminated only.

    Agents the env creates on the fly get their spaces from env.observation_space(agent) /
    env.action_space(agent); an env without possible_agents starts with an empty list, and agents
    are appended to possible_agents as they first appear.
    """

    def __init__(self, env: Any) -> None:
        if pettingzoo_kind(env) != "parallel":
            raise EnvError(
                f"PettingZooParallelAdapter needs a PettingZoo ParallelEnv (e.g. "
                f"module.parallel_env()), got {_describe(env)}."
            )
        super().__init__(env, list(getattr(env, "possible_agents", None) or []))

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[MultiAgentDict, MultiAgentDict]:
        obs, infos = self.env.reset(seed=seed, options=options)
        self._over = False
        self._sync_agents(obs)
        return dict(obs), dict(infos)

    def step(self, action_dict: MultiAgentDict) -> StepResult:  # type: ignore[override]  # see MultiAgentEnv.step
        if self._over:
            raise EnvError(
                "step() called before reset() or after the episode ended ('__all__' was True); call reset() first."
            )
        obs, rewards, terminations, truncations, infos = self.env.step(action_dict)
        terminateds = {agent: bool(flag) for agent, flag in terminations.items()}
        truncateds = {agent: bool(flag) and not terminateds.get(agent, False) for agent, flag in truncations.items()}
        finished = [
            agent
            for agent in {**terminateds, **truncateds}
            if terminateds.get(agent, False) or truncateds.get(agent, False)
        ]
        over = not self.env.agents
        terminateds[ALL] = over and all(terminateds.get(agent, False) for agent in finished)
        truncateds[ALL] = over and not terminateds[ALL]
        self._over = over
        self._sync_agents(obs)
        return dict(obs), {a: float(r) for a, r in rewards.items()}, terminateds, truncateds, dict(infos)

    def _sync_agents(self, obs: MultiAgentDict) -> None:
        self.agents = [] if self._over else list(self.env.agents)
        known = set(self.possible_agents)
        self.possible_agents += [agent for agent in obs if agent not in known]


def wrap_multi_agent(env: Any) -> MultiAgentEnv:
    """`env` as a MultiAgentEnv: returned as is if it is one; PettingZoo AEC envs get
    PettingZooAECAdapter, PettingZoo ParallelEnvs PettingZooParallelAdapter."""
    if isinstance(env, MultiAgentEnv):
        return env
    kind = pettingzoo_kind(env)
    if kind == "aec":
        return PettingZooAECAdapter(env)
    if kind == "parallel":
        return PettingZooParallelAdapter(env)
    raise EnvError(
        f"Expected a multi-agent env (an rlarena MultiAgentEnv instance, or a PettingZoo AEC or "
        f"Parallel env instance), got {_describe(env)}.{_hint(env)}"
    )


def to_pettingzoo_parallel(env: MultiAgentEnv) -> Any:
    """A pettingzoo ParallelEnv view of a simultaneous-move MultiAgentEnv (every live agent acts each
    step), e.g. to run pettingzoo.test.parallel_api_test or PettingZoo tools on it. Needs pettingzoo.

    The view reports agents not flagged individually at an "__all__" end as truncated (terminated if
    terminateds["__all__"] was set), as the MultiAgentEnv contract treats them, and fills rewards (0)
    and infos ({}) for live agents the env left out. A live agent missing from obs means the env is
    turn-based: that is an EnvError (wrap turn-based envs the other way, as AEC envs).
    """
    if not isinstance(env, MultiAgentEnv):
        raise EnvError(
            f"to_pettingzoo_parallel needs an rlarena MultiAgentEnv, got {_describe(env)}. "
            "Wrap a PettingZoo env first: to_pettingzoo_parallel(wrap_multi_agent(env))."
        )
    return _parallel_view_class()(env)


@functools.cache
def _parallel_view_class() -> type:
    try:
        from pettingzoo.utils.env import ParallelEnv  # type: ignore[import-untyped]
    except ImportError as exc:
        raise EnvError("to_pettingzoo_parallel needs pettingzoo: pip install 'rlarena[pettingzoo]'.") from exc

    class MultiAgentParallelView(ParallelEnv):  # type: ignore[misc]  # pettingzoo is untyped
        """PettingZoo's parallel API over an rlarena MultiAgentEnv (see to_pettingzoo_parallel)."""

        def __init__(self, env: MultiAgentEnv) -> None:
            self.env = env
            self.metadata = dict(getattr(env, "metadata", None) or {})
            self.render_mode = getattr(env, "render_mode", None)
            self.possible_agents = list(env.possible_agents)
            self.agents: list[AgentID] = []
            self.observation_spaces = env.observation_spaces
            self.action_spaces = env.action_spaces

        def observation_space(self, agent: AgentID) -> spaces.Space:
            return self.env.get_observation_space(agent)

        def action_space(self, agent: AgentID) -> spaces.Space:
            return self.env.get_action_space(agent)

        def reset(
            self, seed: int | None = None, options: dict[str, Any] | None = None
        ) -> tuple[MultiAgentDict, MultiAgentDict]:
            obs, infos = self.env.reset(seed=seed, options=options)
            self.agents = list(obs)
            return obs, infos

        def step(self, actions: MultiAgentDict) -> StepResult:
            obs, rewards, terminateds, truncateds, infos = self.env.step(actions)
            end_terminated, end_truncated = terminateds.get(ALL, False), truncateds.get(ALL, False)
            terminateds = {a: bool(v) for a, v in terminateds.items() if a != ALL}
            truncateds = {a: bool(v) for a, v in truncateds.items() if a != ALL}
            joined = [agent for agent in obs if agent not in self.agents]
            live = []
            for agent in self.agents + joined:
                terminated, truncated = terminateds.get(agent, False), truncateds.get(agent, False)
                if (end_terminated or end_truncated) and not (terminated or truncated):
                    terminated, truncated = end_terminated, not end_terminated
                terminateds[agent], truncateds[agent] = terminated, truncated
                rewards.setdefault(agent, 0.0)
                infos.setdefault(agent, {})
                if not (terminated or truncated):
                    if agent not in obs:
                        raise EnvError(
                            f"to_pettingzoo_parallel needs a simultaneous-move env, but {self.env} "
                            f"gave no observation for live agent {agent!r} (a turn-based env?). "
                            "Expose turn-based games to PettingZoo as AEC envs instead."
                        )
                    live.append(agent)
            self.agents = live
            return obs, rewards, terminateds, truncateds, infos

        def render(self) -> Any:
            return self.env.render()

        def close(self) -> None:
            self.env.close()

    return MultiAgentParallelView


def _describe(env: Any) -> str:
    if isinstance(env, types.ModuleType):
        return f"the module {env.__name__}"
    if isinstance(env, type):
        return f"the class {env.__name__}"
    return f"{type(env).__name__} {str(env)[:60]!r}"


def _hint(env: Any) -> str:
    if isinstance(env, types.ModuleType) and hasattr(env, "env"):
        extra = f" or {env.__name__}.parallel_env()" if hasattr(env, "parallel_env") else ""
        return f" Pass an env instance: {env.__name__}.env(){extra}."
    if isinstance(env, type):
        return f" Pass an instance: {env.__name__}(...)."
    if isinstance(env, gymnasium.Env):
        return " This is a single-agent gymnasium.Env: use it directly, without the multi-agent config."
    return ""


def _parallel_hint(env: Any) -> str:
    return " For a PettingZoo ParallelEnv use PettingZooParallelAdapter." if pettingzoo_kind(env) == "parallel" else ""
