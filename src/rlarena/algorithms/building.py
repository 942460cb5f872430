"""How an Algorithm is put together, and its policy set changed between iterations.

`setup_data(algo)` picks where its experience comes from: its env (one policy, or a multi-agent env's
policies and mapping), or logged data (offline algorithms: one policy, spaces from the env or the files).
`add_policy_object` builds one policy from its PolicySpec with the config overrides it names;
`add_policy`/`remove_policy`/`set_policies_to_train` are RLlib's league operations (Algorithm's
methods of those names call them): a policy in training has one Learner, which goes with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from rlarena import limits
from rlarena.callbacks import Callbacks
from rlarena.envs.registry import make_env_creator
from rlarena.errors import ConfigError
from rlarena.multiagent.builder import (
    DEFAULT_POLICY_ID,
    build_policy,
    default_mapping_fn,
    make_multi_agent_env,
    policy_spaces,
)
from rlarena.multiagent.policy_spec import PolicySpec
from rlarena.policies.policy import Policy
from rlarena.policies.torch_policy import TrainablePolicy
from rlarena.refs import trust_built
from rlarena.rollout.factory import make_env_runner, make_multi_agent_env_runner, seed_for
from rlarena.rollout.groups import OfflineRunner
from rlarena.rollout.multi_agent_runner import MultiAgentEnvRunner, MultiAgentEpisodeStats

if TYPE_CHECKING:
    from rlarena.algorithms.algorithm import Algorithm


def check_data_mode(algo: Algorithm) -> None:
    """Refuse logged data (input_) for an algorithm that samples, and recording (output) for one that
    does not, each with what to use instead."""
    name, cfg = type(algo).__name__, algo.config
    offline = "BC, MARWIL or CQL"
    if cfg.input_ is not None and algo.data_mode != "offline":
        raise ConfigError(
            f"{name} learns by sampling its env, not from logged data (input_): to learn from "
            f"logged episodes use {offline}."
        )
    if cfg.input_ is None and algo.data_mode == "offline" and (cfg.env is None or limits.current_source() is None):
        raise ConfigError(
            f"{name} learns from logged data: set .offline_data(input_=DIR) (a directory or files "
            f"of Parquet rows recorded with .offline_data(output=DIR) or `rlarena rollout CKPT "
            f"--output DIR`); an env, if given, is only for evaluation."
        )
    if cfg.output is not None and algo.data_mode != "sample":
        raise ConfigError(
            f"{name} does not record its experience (output): record with PPO, A2C, DQN, SAC, "
            f"TD3 or DDPG, or play a checkpoint with `rlarena rollout CKPT --output DIR`."
        )


def setup_data(algo: Algorithm) -> None:
    """The env (single- or multi-agent) or the logged data, the policies and this process's runner."""
    check_data_mode(algo)
    if algo.config.input_ is not None or algo.data_mode == "offline":  # loaded from a file without its data: env only
        setup_offline(algo)
    else:
        setup_env(algo)


def setup_env(algo: Algorithm) -> None:
    config = algo.config
    # per-episode callback hooks need the multi-agent runner (it steps episodes one by one); a
    # single-agent env then runs there as a one-agent env
    episode_hooks = algo.callbacks is not None and algo.callbacks.wants_episode_hooks
    probe = make_multi_agent_env(config.env, config.env_config, single_agent_too=episode_hooks)
    algo.is_multi_agent = probe is not None
    if (
        config.samples_elsewhere
        and algo.callbacks is not None
        and any(
            getattr(type(algo.callbacks), hook) is not getattr(Callbacks, hook)
            for hook in ("on_episode_start", "on_episode_step")
        )
    ):
        if probe is not None:
            probe.close()
        what = f"num_env_runners={config.num_env_runners}" if config.num_env_runners > 0 else "sample_async=True"
        raise ConfigError(
            f"{what}: {type(algo.callbacks).__name__} overrides on_episode_start or "
            f"on_episode_step, which run beside the env, in this process only. With runners "
            f"elsewhere, on_episode_end is called here with each finished episode; move the work "
            f"there, or set num_env_runners=0 and sample_async=False."
        )
    if probe is not None:
        setup_multi_agent(algo, probe)
        return
    if config.policies is not None:
        raise ConfigError(
            f".multi_agent(policies=...) needs a multi-agent env (a rlarena.MultiAgentEnv or a "
            f"PettingZoo env); {algo.env_name!r} is a single-agent Gymnasium env."
        )

    # this process is worker 0 (RLlib's local worker); runners elsewhere are 1..N. With runners
    # elsewhere, one in-process env gives the spaces and the local runner (which never samples)
    def add_policy(observation_space: Any, action_space: Any) -> Policy:
        return add_policy_object(
            algo, DEFAULT_POLICY_ID, PolicySpec(observation_space=observation_space, action_space=action_space)
        )

    algo.runner = make_env_runner(
        config, add_policy, seed_for(config.seed, 2), algo.env_name, num_envs=1 if config.samples_elsewhere else None
    )
    algo.env = algo.runner.env
    algo.policies_to_train = [DEFAULT_POLICY_ID]


def setup_offline(algo: Algorithm) -> None:
    """Learn from logged episodes: one policy, its spaces the env's when one is given (for
    evaluation), else the data's (the files' metadata)."""
    cfg = algo.config
    if cfg.policies is not None:
        raise ConfigError(
            "Offline training (.offline_data(input_=...)) trains one policy; leave .multi_agent() "
            "out (rows of several agents train that one policy)."
        )
    obs_space = act_space = None
    if cfg.env is not None:
        probe = make_multi_agent_env(cfg.env, cfg.env_config)
        if probe is not None:
            raise ConfigError(f"Offline training evaluates in single-agent envs; {algo.env_name!r} is multi-agent.")
        env = make_env_creator(cfg.env)(dict(cfg.env_config))
        obs_space, act_space = env.observation_space, env.action_space
        env.close()
    if cfg.input_ is not None:
        from rlarena.offline import OfflineData

        algo.offline_data = OfflineData(cfg.input_, obs_space, act_space)
        obs_space, act_space = algo.offline_data.observation_space, algo.offline_data.action_space
    algo.is_multi_agent = False
    add_policy_object(algo, DEFAULT_POLICY_ID, PolicySpec(observation_space=obs_space, action_space=act_space))
    algo.policies_to_train = [DEFAULT_POLICY_ID]
    algo.runner = OfflineRunner(algo.policies)


def setup_multi_agent(algo: Algorithm, probe: Any) -> None:
    cfg = algo.config
    algo.mapping_fn = cfg.policy_mapping_fn or default_mapping_fn
    algo._probe_env = probe
    algo.episode_stats = MultiAgentEpisodeStats()
    for pid, spec in (cfg.policies or {DEFAULT_POLICY_ID: PolicySpec()}).items():
        add_policy_object(algo, pid, spec)
    algo.policies_to_train = list(
        cfg.policies_to_train
        if cfg.policies_to_train is not None
        else [p for p, pol in algo.policies.items() if isinstance(pol, TrainablePolicy)]
    )
    # with runners elsewhere this process's runner never samples: the probe env is enough
    algo.runner = make_multi_agent_env_runner(
        cfg,
        algo.policies,
        algo.mapping_fn,
        algo.policies_to_train,
        seed_for(cfg.seed, 2),
        algo.env_name,
        first_env=probe,
        num_envs=1 if cfg.samples_elsewhere else None,
        callbacks=algo.callbacks,
        algorithm=algo,
    )


def add_policy_object(algo: Algorithm, pid: str, spec: PolicySpec) -> Policy:
    """Build policy `pid` from its spec (spaces from the env's agents mapped to it in a multi-agent
    env), its config the algorithm's with the spec's overrides, and add it."""
    if algo.is_multi_agent:
        obs_space, act_space = policy_spaces(pid, spec, algo._probe_env, algo.mapping_fn)
        spec = PolicySpec(spec.policy_class, obs_space, act_space, dict(spec.config))
    cfg = algo.config.copy().update_from_dict(spec.config) if spec.config else algo.config
    try:
        cfg.validate()
    except ConfigError as exc:
        if not spec.config:
            raise
        raise ConfigError(f"Policy {pid!r} (its PolicySpec config overrides): {exc}") from None
    seed = seed_for(algo.config.seed, 1, len(algo.policies))
    if spec.policy_class is None:  # the algorithm's own trainable policy: may it train what the model asks for?
        algo.model_policy_class(cfg)
    if spec.observation_space is None or spec.action_space is None:
        raise ConfigError(f"Policy {pid!r} has no observation or action space: give the PolicySpec both.")
    policy = build_policy(
        spec,
        spec.observation_space,
        spec.action_space,
        cfg.model_config,
        cfg.observation_filter,
        seed,
        lambda o, a: algo.make_policy(o, a, cfg, seed),
    )
    algo.policies[pid], algo.policy_configs[pid] = policy, cfg
    if algo.is_multi_agent:
        algo.config.policies = {**(algo.config.policies or {}), pid: spec}
    return policy


def multi_agent_runner(algo: Algorithm, what: str) -> MultiAgentEnvRunner:
    """This process's multi-agent runner; `what` (a method name) needs a multi-agent env."""
    if not algo.is_multi_agent or not isinstance(algo.runner, MultiAgentEnvRunner):
        raise ConfigError(f"{what}() needs a multi-agent env; {algo.env_name!r} is single-agent.")
    return algo.runner


def add_policy(
    algo: Algorithm,
    policy_id: str,
    policy_cls: type[Policy] | None,
    *,
    policy_state: dict[str, np.ndarray] | None,
    observation_space: Any,
    action_space: Any,
    config: dict[str, Any] | None,
    policy_mapping_fn: Any,
    policies_to_train: list[str] | None,
) -> Policy:
    multi_agent_runner(algo, "add_policy")
    if policy_id in algo.policies:
        raise ConfigError(f"A policy {policy_id!r} exists already; remove_policy() it first or pick another id.")
    if policy_mapping_fn is not None:
        set_policy_mapping_fn(algo, policy_mapping_fn)
    first = next(iter(algo.policies.values()))
    if observation_space is None or action_space is None:
        try:
            observation_space, action_space = policy_spaces(
                policy_id, PolicySpec(None, observation_space, action_space), algo._probe_env, algo.mapping_fn
            )
        except ConfigError:
            observation_space = observation_space or first.observation_space
            action_space = action_space or first.action_space
    trust_built([policy_cls])  # as a class a config built here holds (rlarena.refs)
    policy = add_policy_object(
        algo, policy_id, PolicySpec(policy_cls, observation_space, action_space, dict(config or {}))
    )
    if policy_state is not None:
        policy.set_state(policy_state)
    if policies_to_train is not None:
        set_policies_to_train(algo, policies_to_train)
    elif algo.config.policies_to_train is None and isinstance(policy, TrainablePolicy):
        set_policies_to_train(algo, [*algo.policies_to_train, policy_id], remember=False)
    return policy


def remove_policy(
    algo: Algorithm, policy_id: str, *, policy_mapping_fn: Any, policies_to_train: list[str] | None
) -> None:
    runner = multi_agent_runner(algo, "remove_policy")
    algo.get_policy(policy_id)
    if policy_mapping_fn is not None:
        set_policy_mapping_fn(algo, policy_mapping_fn)
    for store in (algo.policies, algo.policy_configs, algo.config.policies or {}):
        store.pop(policy_id, None)
    algo.learners.pop(policy_id, None)  # its optimizers, targets, replay buffer and counters
    set_policies_to_train(
        algo,
        policies_to_train if policies_to_train is not None else [p for p in algo.policies_to_train if p != policy_id],
        remember=policies_to_train is not None or algo.config.policies_to_train is not None,
    )
    runner.forget_policy(policy_id)  # runners elsewhere get the new policy set before their next fragment


def set_policy_mapping_fn(algo: Algorithm, policy_mapping_fn: Any) -> None:
    runner = multi_agent_runner(algo, "set_policy_mapping_fn")
    trust_built([policy_mapping_fn])  # this process's own object: a checkpoint saved later may name it
    algo.mapping_fn = algo.config.policy_mapping_fn = policy_mapping_fn
    runner.mapping_fn = policy_mapping_fn  # runners elsewhere and evaluation get it with the policies


def set_policies_to_train(algo: Algorithm, policies_to_train: list[str], remember: bool = True) -> None:
    runner = multi_agent_runner(algo, "set_policies_to_train")
    for pid in policies_to_train:
        if not isinstance(algo.get_policy(pid), TrainablePolicy):
            raise ConfigError(f"Policy {pid!r} is a {type(algo.policies[pid]).__name__}, which cannot be trained.")
        if pid not in algo.learners:
            algo.setup_policy(pid)
    algo.policies_to_train = list(policies_to_train)
    if remember:
        algo.config.policies_to_train = list(policies_to_train)
    runner.policies_to_train = set(policies_to_train)
