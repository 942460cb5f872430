"""RLlib's older option names, in three tables: renamed (with our name), accepted but ignored (with
why), and refused (with the algorithm they belong to, or why there is no equivalent).

They come from RLlib 1.x dict configs (`PPOTrainer(config={...})`), RLlib 2.x builder arguments
(`.rollouts(num_rollout_workers=...)`) and RLlib's tuned-example YAML files. The builder methods,
`update_from_dict()` and `from_dict()` all read them through `translate()`, so each old name means
the same thing wherever it is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rlarena.errors import ConfigError, closest, notice

# old name -> our name (same meaning, same units)
RENAMED: dict[str, str] = {
    "num_envs_per_worker": "num_envs_per_env_runner",  # RLlib's default is 1, ours 8
    "num_sgd_iter": "num_epochs",
    "sgd_minibatch_size": "minibatch_size",
    "lambda": "lambda_",  # a Python keyword, hence RLlib 2.x's own `lambda_`
    "callbacks": "callbacks_class",  # RLlib 1.x: {"callbacks": MyCallbacks}
    "input": "input_",  # RLlib's dict/YAML key; the builder argument is input_ (a Python keyword)
    "num_cpus_per_worker": "num_cpus_per_env_runner",
    # fault tolerance, RLlib 2.x before the env-runner names
    "recreate_failed_workers": "restart_failed_env_runners",
    "recreate_failed_env_runners": "restart_failed_env_runners",
    "restart_failed_sub_environments": "restart_failed_env_runners",
    "ignore_worker_failures": "ignore_env_runner_failures",
    "max_num_worker_restarts": "max_num_env_runner_restarts",
    "delay_between_worker_restarts_s": "delay_between_env_runner_restarts_s",
}

# old name -> our name inside a nested dict option (top-level `vf_share_layers` moved into `model`)
NESTED: dict[str, tuple[str, str]] = {"vf_share_layers": ("model", "vf_share_layers")}


@dataclass(frozen=True)
class Ignored:
    """An option accepted without effect. `quiet(value)`: the value is what rlarena does anyway, so no
    notice is shown (framework='torch', num_gpus=0); otherwise one notice says `why`, or, where `why` is
    empty, the value is refused with the reason its table of refusals gives."""

    why: str
    quiet: Callable[[Any], bool] = lambda value: False
    choices: tuple[Any, ...] | None = None  # the values RLlib accepted; another is a mistake


# RLlib's configs and tuned examples set worker counts for its own speed; here the envs of one machine
# sample fastest in this process (benchmarks/README.md), so Ray is used only when asked by our names
_REMOTE = (
    "the same steps are sampled in this process, which is faster on one machine; to sample on Ray "
    "actors (pip install 'rlarena[ray]') set {new}={value}"
)
IGNORED: dict[str, Ignored] = {
    # the same number of steps per iteration (train_batch_size) is sampled, by envs in this process
    "num_workers": Ignored(_REMOTE.replace("{new}", "num_env_runners"), lambda v: v == 0),
    "num_rollout_workers": Ignored(_REMOTE.replace("{new}", "num_env_runners"), lambda v: v == 0),
    "evaluation_num_workers": Ignored(_REMOTE.replace("{new}", "evaluation_num_env_runners"), lambda v: v == 0),
    "framework": Ignored("rlarena runs PyTorch", lambda v: v == "torch", ("torch", "tf", "tf2", "tfe", "jax")),
    "eager_tracing": Ignored("a TensorFlow option; rlarena runs PyTorch", lambda v: not v),
    "eager_max_retraces": Ignored("a TensorFlow option; rlarena runs PyTorch"),
    "num_gpus": Ignored("rlarena trains on the CPU only", lambda v: v == 0),
    "num_gpus_per_worker": Ignored("rlarena trains on the CPU only", lambda v: v == 0),
    "num_cpus_for_driver": Ignored("the driver is this process; Ray schedules only the env runners"),
    "placement_strategy": Ignored("env runners are placed by Ray's default scheduling"),
    "enable_connectors": Ignored("connectors are RLlib internals; rlarena's sampling path is fixed"),
    "log_level": Ignored("rlarena's output is set by verbose= (rlarena.run) or --verbose", lambda v: v == "WARN"),
    "disable_env_checking": Ignored("rlarena checks what it needs of the env when it builds it", lambda v: not v),
    "create_env_on_driver": Ignored("rlarena creates its envs in this process anyway", lambda v: True),  # either way
    "simple_optimizer": Ignored("rlarena has one optimizer path"),
    "preprocessor_pref": Ignored("rlarena flattens observations itself"),
    "_disable_preprocessor_api": Ignored("rlarena flattens observations itself"),
    "enable_rl_module_and_learner": Ignored("an RLlib API-stack switch; rlarena has one stack"),
    "enable_env_runner_and_connector_v2": Ignored("an RLlib API-stack switch; rlarena has one stack"),
    "_enable_new_api_stack": Ignored("an RLlib API-stack switch; rlarena has one stack"),
    "_enable_learner_api": Ignored("an RLlib API-stack switch; rlarena has one stack"),
    "_enable_rl_module_api": Ignored("an RLlib API-stack switch; rlarena has one stack"),
    "evaluation_duration_unit": Ignored(
        "rlarena evaluates whole episodes: evaluation_duration counts episodes", lambda v: v == "episodes"
    ),
    "shuffle_sequences": Ignored("minibatches are always shuffled", bool),
    # accepted at the value rlarena has anyway; any other value is refused (NO_EQUIVALENT says why)
    "batch_mode": Ignored("", lambda v: v == "truncate_episodes"),
    "use_gae": Ignored("", bool),
    "use_critic": Ignored("", bool),
    "timesteps_per_iteration": Ignored("", lambda v: v == 0),
    "min_sample_timesteps_per_iteration": Ignored("", lambda v: v == 0),
    "no_done_at_end": Ignored("", lambda v: not v),
    "kl_coeff": Ignored("", lambda v: v == 0),
    "actions_in_input_normalized": Ignored(
        "rlarena records and reads env actions (CQL maps them onto its [-1, 1])", lambda v: not v
    ),
    "offline_sampling": Ignored("an algorithm with input_ reads its data; nothing else samples", lambda v: True),
    "input_config": Ignored("", lambda v: not v),
}

# Options of other algorithms (RLlib's; DQN's that rlarena's DQNConfig lacks, e.g. noisy nets or
# distributional Q): old name -> the algorithms that read it.
_OFF_POLICY = "DQN, QRDQN, SAC, TD3, DDPG, TQC, CrossQ, DroQ and REDQ (off-policy algorithms with a replay buffer)"
OTHER_ALGORITHMS: dict[str, str] = {
    **dict.fromkeys(
        (
            "learning_starts",
            "target_update_interval",  # SB3's name of target_network_update_freq
            "prioritized_replay",
            "prioritized_replay_alpha",
            "prioritized_replay_beta",
            "prioritized_replay_eps",
            "buffer_size",
            "replay_buffer_config",
            "n_step",
            "target_network_update_freq",
            "training_intensity",
            "num_steps_sampled_before_learning_starts",
            "store_buffer_in_checkpoints",
        ),
        _OFF_POLICY,
    ),
    **dict.fromkeys(("dueling", "double_q", "hiddens", "noisy", "num_atoms", "v_min", "v_max", "sigma0"), "DQN"),
    **dict.fromkeys(("optimization_config", "initial_alpha", "target_entropy", "alpha_lr", "ent_coef"), "SAC"),
    **dict.fromkeys(
        ("tau", "twin_q", "actor_lr", "critic_lr", "random_timesteps", "policy_delay"), "SAC, TD3 and DDPG"
    ),
    **dict.fromkeys(
        (
            "actor_hiddens",
            "critic_hiddens",
            "smooth_target_policy",
            "target_noise",
            "target_noise_clip",
            "target_policy_noise",
            "exploration_noise",
        ),
        "DDPG and TD3",
    ),
    **dict.fromkeys(
        (
            "vtrace",
            "vtrace_clip_rho_threshold",
            "vtrace_clip_pg_rho_threshold",
            "replay_proportion",
            "replay_buffer_num_slots",
            "learner_queue_size",
        ),
        "IMPALA and APPO",
    ),
    **dict.fromkeys(
        ("noise_stdev", "noise_size", "episodes_per_batch", "eval_prob", "stepsize", "report_length"), "ES and ARS"
    ),
}

# Options with no equivalent in rlarena, and what to do instead (refused when the value would matter).
_SAC_MODELS = (
    "rlarena's SAC builds both networks from model={'fcnet_hiddens': [...], 'fcnet_activation': ...} "
    "and takes actor_lr, critic_lr and alpha_lr"
)
NO_EQUIVALENT: dict[str, str] = {
    "input_config": "rlarena reads Parquet files named directly: input_='DIR' (a directory, file, glob or list); "
    "RLlib's JSON files are not read (record Parquet with .offline_data(output=DIR) or "
    "`rlarena rollout CKPT --output DIR`)",
    **dict.fromkeys(("Q_model", "policy_model", "q_model_config", "policy_model_config", "optimization"), _SAC_MODELS),
    "horizon": "episodes are cut by the env itself: wrap it in gymnasium.wrappers.TimeLimit, or for a "
    "Gymnasium id set env_config={'max_episode_steps': N}",
    "soft_horizon": "episodes are cut by the env itself (gymnasium.wrappers.TimeLimit); a time limit is a "
    "truncation, from which rlarena bootstraps",
    "no_done_at_end": "rlarena bootstraps from truncated episodes (time limits) and never from terminated ones",
    "kl_coeff": "rlarena's PPO has no KL penalty: it uses the clipped objective alone (as SB3); target_kl "
    "stops an update's epochs early",
    "kl_target": "rlarena's PPO has no KL penalty: target_kl stops an update's epochs early instead",
    "batch_mode": "rlarena samples fixed-length fragments (RLlib's truncate_episodes) and bootstraps at cuts",
    "use_gae": "rlarena's PPO always uses GAE: lambda_=1.0 gives Monte-Carlo returns",
    "use_critic": "rlarena's PPO always learns a value function",
    "timesteps_per_iteration": "PPO samples train_batch_size env steps per iteration: set train_batch_size",
    "min_sample_timesteps_per_iteration": "PPO samples train_batch_size env steps per iteration: set train_batch_size",
}

# RLlib 1.x's nested {"multiagent": {...}}: its keys are options of .multi_agent()
MULTIAGENT_KEYS = ("policies", "policy_mapping_fn", "policies_to_train")
MULTIAGENT_IGNORED: dict[str, Ignored] = {
    "policy_map_capacity": Ignored("rlarena keeps every policy in memory"),
    "policy_map_cache": Ignored("rlarena keeps every policy in memory", lambda v: v is None),
    "count_steps_by": Ignored("", lambda v: v == "env_steps"),  # agent_steps: refused below
    "observation_fn": Ignored("", lambda v: v is None),  # a function: refused below
    "replay_mode": Ignored("a replay-buffer option; PPO has no replay buffer"),
}
MULTIAGENT_NO_EQUIVALENT = {
    "count_steps_by": "rlarena counts env steps (train_batch_size is in env steps)",
    "observation_fn": "give each agent its observation from the env itself",
}

LEGACY_NAMES = frozenset({*RENAMED, *NESTED, *IGNORED, *OTHER_ALGORITHMS, *NO_EQUIVALENT, "multiagent"})


def translate(options: dict[str, Any], valid: Any, current: Callable[[str], Any], owner: str) -> dict[str, Any]:
    """`options` with RLlib's older names replaced by ours.

    valid: our option names (a name in it is never translated); current(name): the config's value of
    a dict option (to merge a nested rename into); owner: the config class name, for messages.
    Ignored options leave a notice (or nothing, when their value is what rlarena does anyway);
    options of other algorithms and options without an equivalent raise ConfigError.
    Unknown names pass through: the caller refuses them, naming the closest valid one.
    """
    out: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in options.items():
        if key in valid:
            out[key] = value
        elif key in RENAMED:
            out[RENAMED[key]] = value
        elif key in NESTED:
            parent, child = NESTED[key]
            nested.setdefault(parent, {})[child] = value
        elif key == "multiagent":
            out.update(_multiagent(value, owner))
        elif key in IGNORED:
            _ignore(key, value, IGNORED[key], NO_EQUIVALENT)
        elif key in OTHER_ALGORITHMS:
            algos = OTHER_ALGORITHMS[key]
            lacking = "" if algos.startswith(("DQN", "SAC", "DDPG", "IMPALA")) else ", which rlarena does not have yet"
            raise ConfigError(
                f"{key!r} is an option of {algos}{lacking}; {owner} cannot use it. Available "
                f"algorithms: see `rlarena list algos`."
            )
        elif key in NO_EQUIVALENT:
            raise ConfigError(f"{key}={value!r} is not available: {NO_EQUIVALENT[key]}.")
        else:
            out[key] = value
    for parent, children in nested.items():  # into the dict given beside it, else the config's own
        base = out[parent] if parent in out else current(parent)
        out[parent] = {**(base or {}), **children}
    if "model" in out:
        out["model"] = _model(out["model"])
    return out


def _ignore(key: str, value: Any, rule: Ignored, refusals: dict[str, str]) -> None:
    if rule.choices is not None and value not in rule.choices:
        raise ConfigError(
            f"Invalid {key}={value!r}: expected one of {', '.join(map(repr, rule.choices))} ({rule.why})."
        )
    if rule.quiet(value):
        return
    if not rule.why:
        raise ConfigError(f"{key}={value!r} is not available: {refusals[key]}.")
    notice(f"{key}={value!r} is ignored: {rule.why.replace('{value}', repr(value))}.")


def _multiagent(value: Any, owner: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(
            f"{owner}: 'multiagent' must be a dict with policies, policy_mapping_fn, policies_to_train; got {value!r}."
        )
    out = {}
    for key, item in value.items():
        if key in MULTIAGENT_KEYS:
            out[key] = item
        elif key in MULTIAGENT_IGNORED:
            _ignore(
                f"multiagent.{key}",
                item,
                MULTIAGENT_IGNORED[key],
                {f"multiagent.{k}": v for k, v in MULTIAGENT_NO_EQUIVALENT.items()},
            )
        else:
            raise ConfigError(
                f"Unknown option 'multiagent.{key}'.{closest(str(key), MULTIAGENT_KEYS)} "
                f"Valid: {', '.join(MULTIAGENT_KEYS)}."
            )
    return out


# RLlib's model options with no effect here at their usual value (a recurrent or custom model is refused)
MODEL_IGNORED: dict[str, Ignored] = {
    "_disable_preprocessor_api": Ignored("rlarena flattens observations itself"),
}
MODEL_NO_EQUIVALENT: dict[str, str] = {}


def _model(model: Any) -> Any:
    if not isinstance(model, dict) or not any(k in MODEL_IGNORED for k in model):
        return model
    for key in [k for k in model if k in MODEL_IGNORED]:
        _ignore(f"model.{key}", model[key], MODEL_IGNORED[key], MODEL_NO_EQUIVALENT)
    return {k: v for k, v in model.items() if k not in MODEL_IGNORED}
