"""The multi-agent env API: RLlib's MultiAgentEnv convention, dicts keyed by agent id.

Built-in games subclass MultiAgentEnv; PettingZoo envs are adapted to it by
rlarena.envs.pettingzoo_adapters. Like the rest of the env layer this module never imports torch.
"""

from __future__ import annotations

import sys
from typing import Any, ClassVar

import gymnasium
from gymnasium import spaces

from rlarena.errors import EnvError, closest

ALL = "__all__"  # the key in terminateds/truncateds that ends the episode for every agent

AgentID = str
MultiAgentDict = dict[AgentID, Any]


class MultiAgentEnv(gymnasium.Env):
    """An environment with several agents; every value is a dict keyed by agent id.

    Like RLlib's, it subclasses gymnasium.Env (for np_random seeding, metadata, render_mode, spec,
    unwrapped), but its step returns dicts: code that accepts a gymnasium.Env must test
    is_multi_agent first and never treat a MultiAgentEnv as single-agent.

    A subclass sets, in its __init__:
      possible_agents     every agent id that may ever appear. An env that creates agents on the fly
                          lists those it knows in advance and makes get_observation_space /
                          get_action_space answer for the others.
      agents              the agents alive now (joined and not yet done); kept current by reset/step.
      observation_spaces  {agent: Space} and action_spaces {agent: Space}; get_observation_space(a)
                          and get_action_space(a) are the authority (they may answer for agents
                          missing from the dicts).

    reset(*, seed=None, options=None) -> (obs, infos)
        starts an episode; call super().reset(seed=seed) first so that self.np_random is seeded.
    step(action_dict) -> (obs, rewards, terminateds, truncateds, infos)
        applies one action per acting agent.

    The contract the env runner relies on:
      1. obs holds exactly the agents that must act next, plus (rule 3) final observations of agents
         that are done in this step. A turn-based env returns only the mover; a simultaneous-move
         env returns every live agent. The next action_dict holds an action for each agent in obs
         that is not done, and for no other agent. reset's obs is never empty.
      2. rewards may name agents that do not act next (the waiting player of a turn-based game gets
         its reward when the game ends, on the opponent's move). The runner adds each reward to that
         agent's most recent transition; a reward for an agent that has not acted yet belongs to no
         transition of its own (it still counts in the agent's episode return). An agent missing
         from rewards got 0.
      3. When an agent is done (terminateds[a] or truncateds[a] is True) its final observation is
         in obs of that same step if it has one, and the env never asks it to act again (it is not
         in obs of any later step of the episode). terminated means the agent's game really ended
         (no bootstrapping); truncated means it was cut short (bootstrap from the final
         observation). At most one of the two is True for an agent.
      4. terminateds and truncateds always carry the key "__all__". "__all__" True in either ends
         the episode for everyone: agents not flagged individually are then treated as truncated
         (terminated, if terminateds["__all__"] is the one set). When the episode ends, exactly one
         of terminateds["__all__"] / truncateds["__all__"] is True. The next call is reset().
      5. Agents may join mid-episode: an agent appears in obs for the first time; its spaces come
         from get_observation_space / get_action_space.
      infos has an entry (possibly {}) for agents in obs; other keys are allowed.

    Action masks follow PettingZoo: an observation {"observation": ..., "action_mask": ...} in a
    Dict space, action_mask[i] == 1 when action i is legal. Final observations may carry an
    all-zero mask (no legal move once the game is over): never sample from them.

    A subclass written for RLlib 1.x's API (one shared observation_space/action_space, no agent list,
    reset() returning only obs, step() returning a `dones` dict) trains too: rlarena.envs.legacy
    adapts it, with a notice, wherever rlarena creates envs.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}
    possible_agents: list[AgentID]
    agents: list[AgentID]
    observation_spaces: dict[AgentID, spaces.Space]
    action_spaces: dict[AgentID, spaces.Space]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[MultiAgentDict, MultiAgentDict]:
        """Subclasses override reset, call super().reset(seed=seed) first (it seeds self.np_random,
        as gymnasium.Env.reset does) and return (obs, infos)."""
        super().reset(seed=seed, options=options)
        return {}, {}

    # gymnasium.Env.step is typed for one agent; a type checker sees every dict-returning step as an
    # incompatible override (RLlib's MultiAgentEnv has the same mismatch): hence the ignores.
    def step(
        self, action_dict: MultiAgentDict
    ) -> tuple[  # type: ignore[override]
        MultiAgentDict, MultiAgentDict, MultiAgentDict, MultiAgentDict, MultiAgentDict
    ]:
        raise NotImplementedError(f"{type(self).__name__} must implement step(action_dict).")

    def get_observation_space(self, agent: AgentID) -> spaces.Space:
        """The observation space of `agent`; the same object on every call."""
        return _lookup(self, "observation_spaces", agent)

    def get_action_space(self, agent: AgentID) -> spaces.Space:
        """The action space of `agent`; the same object on every call."""
        return _lookup(self, "action_spaces", agent)

    @property
    def num_agents(self) -> int:
        return len(self.agents)

    @property
    def max_num_agents(self) -> int:
        return len(self.possible_agents)

    def render(self) -> Any:
        """A frame in self.render_mode ("ansi": a string); None when there is nothing to draw."""
        return None

    def close(self) -> None:
        """Release windows, processes or files the env holds."""


def _lookup(env: MultiAgentEnv, attr: str, agent: AgentID) -> spaces.Space:
    table = getattr(env, attr, None)
    if not isinstance(table, dict):
        raise EnvError(
            f"{type(env).__name__}.{attr} is {'missing' if table is None else type(table).__name__}, "
            f"expected a dict {{agent_id: gymnasium.spaces.Space}}; set self.{attr} in __init__."
        )
    if agent not in table:
        raise EnvError(
            f"{type(env).__name__} has no {attr[:-1].replace('_', ' ')} for agent {agent!r}; it "
            f"knows {sorted(map(str, table))}. Add the agent to self.{attr}, or override "
            f"get_{attr[:-1]} to answer for agents created on the fly."
        )
    return table[agent]


def episode_done(terminateds: MultiAgentDict, truncateds: MultiAgentDict) -> bool:
    """True when the step ended the episode for everyone ("__all__" set in either dict)."""
    return bool(terminateds.get(ALL, False) or truncateds.get(ALL, False))


def is_multi_agent(env: Any) -> bool:
    """True for an rlarena MultiAgentEnv instance or subclass. PettingZoo envs are multi-agent too
    but need wrapping first: pettingzoo_kind(env) recognises them, wrap_multi_agent wraps both kinds.
    """
    return issubclass(env, MultiAgentEnv) if isinstance(env, type) else isinstance(env, MultiAgentEnv)


def pettingzoo_kind(env: Any) -> str | None:
    """ "aec" or "parallel" for a PettingZoo env instance (wrappers included), else None. Never imports
    pettingzoo: a PettingZoo env can only exist once pettingzoo has been imported."""
    pz = sys.modules.get("pettingzoo.utils.env")
    if pz is None:
        return None
    if isinstance(env, pz.AECEnv):
        return "aec"
    if isinstance(env, pz.ParallelEnv):
        return "parallel"
    return None


class SingleAgentAsMultiAgent(MultiAgentEnv):
    """A Gymnasium env seen as a MultiAgentEnv with one agent, AGENT_ID (RLlib's "default_agent").

    Used when callbacks need per-episode hooks on a single-agent env: the multi-agent runner calls
    them, the numpy-vectorized single-agent runner does not (it never looks at one episode alone).
    """

    AGENT_ID = "default_agent"

    def __init__(self, env: gymnasium.Env) -> None:
        self.env = env
        self.possible_agents = [self.AGENT_ID]
        self.agents: list[AgentID] = []
        self.observation_spaces = {self.AGENT_ID: env.observation_space}
        self.action_spaces = {self.AGENT_ID: env.action_space}
        self.render_mode = getattr(env, "render_mode", None)

    def reset(self, *, seed: int | None = None, options: dict | None = None):  # type: ignore[override]
        obs, info = self.env.reset(seed=seed, options=options)
        self.agents = [self.AGENT_ID]
        return {self.AGENT_ID: obs}, {self.AGENT_ID: info}

    def step(self, action_dict: MultiAgentDict):  # type: ignore[override]
        a = self.AGENT_ID
        obs, reward, terminated, truncated, info = self.env.step(action_dict[a])
        return ({a: obs}, {a: reward}, {a: terminated, ALL: terminated}, {a: truncated, ALL: truncated}, {a: info})

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()


def env_config(who: str, config: dict[str, Any] | None, defaults: dict[str, Any]) -> dict[str, Any]:
    """`defaults` updated with `config`; an unknown key is an EnvError naming the closest valid one."""
    config = dict(config or {})
    unknown = [key for key in config if key not in defaults]
    if unknown:
        raise EnvError(
            f"{who} got unknown config key {unknown[0]!r}; valid keys are "
            f"{sorted(defaults)}.{closest(unknown[0], defaults)}"
        )
    return {**defaults, **config}
