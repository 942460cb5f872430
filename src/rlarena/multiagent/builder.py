"""Building the multi-agent side of an algorithm: is the env multi-agent, which spaces does each
policy take, and the policies themselves."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import gymnasium as gym

from rlarena.envs.registry import env_name, make_env_creator
from rlarena.errors import ConfigError, EnvError
from rlarena.multiagent.policy_spec import PolicySpec
from rlarena.policies.policy import DEFAULT_POLICY_ID, Policy
from rlarena.policies.torch_policy import TrainablePolicy
from rlarena.rollout.multi_agent_episode import Episode


def default_mapping_fn(agent_id: Any, episode: Any, **kwargs: Any) -> str:
    """Without .multi_agent(): every agent shares one policy."""
    return DEFAULT_POLICY_ID


def make_multi_agent_env(env_spec: Any, env_config: dict, single_agent_too: bool = False) -> Any | None:
    """A MultiAgentEnv for `env_spec` if it is a multi-agent env (ours, or PettingZoo AEC/Parallel,
    which get wrapped), else None. Gymnasium ids are single-agent without building one.
    single_agent_too: wrap a single-agent env as a one-agent MultiAgentEnv instead of returning None."""
    if isinstance(env_spec, str) and env_spec in gym.registry and not single_agent_too:
        return None
    from rlarena.envs.multi_agent import is_multi_agent

    creator = make_env_creator(env_spec)
    try:
        env = creator(dict(env_config))
    except EnvError:  # rlarena's own message already names the env (e.g. an old-API env without spaces)
        raise
    except Exception as exc:  # the env's own error, surfaced with its name
        raise EnvError(f"Creating env {env_name(env_spec)!r} failed: {type(exc).__name__}: {exc}") from exc
    if isinstance(env, gym.Env) and not is_multi_agent(env) and not single_agent_too:
        env.close()
        return None
    return as_multi_agent(env)


def as_multi_agent(env: Any) -> Any:
    """A MultiAgentEnv as is (adapted first if it follows RLlib's older API); a PettingZoo AEC or
    Parallel env, or a Gymnasium env (as one agent), wrapped (EnvError for anything else)."""
    from rlarena.envs.legacy import adapt_old_api
    from rlarena.envs.multi_agent import SingleAgentAsMultiAgent, is_multi_agent

    env = adapt_old_api(env)
    if is_multi_agent(env):
        return env
    if isinstance(env, gym.Env):
        return SingleAgentAsMultiAgent(env)
    from rlarena.envs.pettingzoo_adapters import wrap_multi_agent

    return wrap_multi_agent(env)


def policy_spaces(pid: str, spec: PolicySpec, env: Any, mapping_fn: Callable[..., str]) -> tuple[gym.Space, gym.Space]:
    """The spec's spaces, else those of the env's agents that map to `pid` (all alike), else those
    shared by every agent."""
    if spec.observation_space is not None and spec.action_space is not None:
        return spec.observation_space, spec.action_space
    agents = list(env.possible_agents)
    probe = Episode(env_index=-1)
    mapped = [a for a in agents if probe.policy_for(a, mapping_fn) == pid] or agents
    obs = {str(env.get_observation_space(a)) for a in mapped}
    act = {str(env.get_action_space(a)) for a in mapped}
    if len(obs) > 1 or len(act) > 1:
        raise ConfigError(
            f"Cannot tell which spaces policy {pid!r} takes: the agents {mapped} differ. Give "
            f"PolicySpec(observation_space=..., action_space=...)."
        )
    return (
        spec.observation_space or env.get_observation_space(mapped[0]),
        spec.action_space or env.get_action_space(mapped[0]),
    )


def build_policy(
    spec: PolicySpec,
    observation_space: gym.Space,
    action_space: gym.Space,
    model_config: dict,
    observation_filter: str,
    seed: int | None,
    trainable: Callable[[gym.Space, gym.Space], TrainablePolicy],
) -> Policy:
    """The spec's policy: `trainable(obs_space, act_space)` (the algorithm's own kind) when the spec
    names no class; a TrainablePolicy class gets the model config; any other class is a heuristic."""
    if spec.policy_class is None:
        return trainable(observation_space, action_space)
    if isinstance(spec.policy_class, type) and issubclass(spec.policy_class, TrainablePolicy):
        return spec.policy_class(observation_space, action_space, model_config, observation_filter, seed)
    try:
        params = inspect.signature(spec.policy_class).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    if "config" in params:  # an RLlib policy class: Policy(observation_space, action_space, config)
        return spec.policy_class(observation_space, action_space, config=dict(spec.config))
    return spec.policy_class(observation_space, action_space)
