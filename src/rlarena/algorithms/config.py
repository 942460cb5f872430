"""AlgorithmConfig: a typed dataclass behind RLlib's fluent builder.

Every option is one dataclass field tagged with the builder method that sets it
(`.environment`, `.env_runners`, `.training`, `.evaluation`, `.debugging`, `.resources`). An unknown
key, or a value out of range, fails with a message naming the key and the closest valid one.
Algorithm configs (PPOConfig, ...) subclass it, add their `training` fields and `validate()` rules,
and state their own defaults: a subclass redeclares a field to change its default (PPOConfig's lr,
AlphaZeroConfig's train_batch_size, ...) and sets `model_defaults`. The defaults here are neutral
(RLlib's AlgorithmConfig and MODEL_DEFAULTS); each algorithm's file says which library its own match.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import numbers
import types
import typing
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal

from rlarena import limits
from rlarena.algorithms.legacy import LEGACY_NAMES, RENAMED, translate
from rlarena.envs.registry import EnvSpec, env_from_json, env_to_json
from rlarena.errors import ConfigError, closest, notice
from rlarena.refs import Trust, ref_to_json, trust_built

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11 on

# RLlib's MODEL_DEFAULTS; an algorithm's config puts its own over them (AlgorithmConfig.model_defaults)
MODEL_DEFAULTS: dict[str, Any] = {
    "fcnet_hiddens": [256, 256],
    "fcnet_activation": "tanh",
    "vf_share_layers": False,
    "log_std_init": 0.0,
    "post_fcnet_hiddens": [],  # fully connected layers after fcnet_hiddens (after the CNN for an image alone)
    "conv_filters": None,  # [[out_channels, kernel, stride], ...]; None: by image size (rlarena.nn.catalog)
    "conv_activation": "relu",
    # memory (rlarena.nn.memory): an LSTM or GRU cell after fcnet_hiddens; sequences of max_seq_len steps in the loss
    "use_lstm": False,
    "use_gru": False,
    "lstm_cell_size": 256,
    "max_seq_len": 20,
    "lstm_use_prev_action": False,
    "lstm_use_prev_reward": False,
    # attention over the last attention_memory_inference steps (GTrXL-style, rlarena.nn.memory.AttentionCell)
    "use_attention": False,
    "attention_dim": 64,
    "attention_num_transformer_units": 1,
    "attention_num_heads": 1,
    "attention_head_dim": 32,
    "attention_position_wise_mlp_dim": 32,
    "attention_memory_inference": 50,
    # your own network (rlarena.nn.custom): a class, or a name registered with ModelCatalog.register_custom_model
    "custom_model": None,
    "custom_model_config": {},
    "board_features": None,  # an input layer a game registers (rlarena.policies.policy.register_feature_layer): Connect Four's "connect_four", "conv"
}
MAX_TORCH_THREADS = 1024
MAX_ATTENTION_MEMORY = 4096  # steps an attention memory keeps (each env's state row holds them all)
# The type of each model option, written as an annotation; validate() checks `model` against it.
MODEL_TYPES: dict[str, Any] = {
    "fcnet_hiddens": list[int],  # and each size >= 1
    "fcnet_activation": str,
    "vf_share_layers": bool,
    "log_std_init": float,
    "board_features": str | None,
    "post_fcnet_hiddens": list[int],
    "conv_filters": list | None,
    "conv_activation": str,
    "use_lstm": bool,
    "use_gru": bool,
    "lstm_cell_size": int,
    "max_seq_len": int,
    "lstm_use_prev_action": bool,
    "lstm_use_prev_reward": bool,
    "use_attention": bool,
    "attention_dim": int,
    "attention_num_transformer_units": int,
    "attention_num_heads": int,
    "attention_head_dim": int,
    "attention_position_wise_mlp_dim": int,
    "attention_memory_inference": int,
    "custom_model": Any,  # a class or a registered name (checked when the policy is built)
    "custom_model_config": dict,
}


# What an option decides, for a config read from a file someone else may have written (a checkpoint,
# a Hub package, an experiment file, a trial's saved parameters). "computes": how the agent computes
# and learns, which a file sets. "where": where anything is read or written, or which machine or
# cluster is contacted; "how many": how many processes or threads run (and how they are restarted).
# A file never chooses those two: its values are reported and replaced by the defaults, and the caller
# passes them (config_overrides, --config). "how big": a size or count, bounded (rlarena.limits) before
# anything is allocated, unless the caller passes it.
ROLES = ("computes", "where", "how many", "how big")


def option(default: Any, group: str, *, role: str = "computes", bound: str | None = None, **kw: Any) -> Any:
    """A config field set by the builder method `group`. `role`: what it decides (ROLES); `bound`: the
    name of the rlarena.limits bound a file's value must stay under (its role is then "how big").
    A subclass that redeclares a field to change its default keeps the role and bound it had."""
    metadata = {"group": group, "role": "how big" if bound is not None else role, "bound": bound}
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=metadata, **kw)
    return field(default=default, metadata=metadata, **kw)


class NotProvidedType(enum.Enum):
    """The type of NotProvided (RLlib's name), the default of every builder method's options: an option
    left at it keeps its current value, so None stays a value an option can be set to (grad_clip=None: no
    clipping). A one-member enum, so a type checker knows the default is exactly this value."""

    NotProvided = "NotProvided"

    def __repr__(self) -> str:  # as the default reads in help() and inspect.signature
        return "NotProvided"


NotProvided: Final = NotProvidedType.NotProvided

# what a builder method's locals() holds besides its options: `self`, the **kwargs dict (merged in by
# `provided`), and the __class__ cell that a method calling super() carries
_NOT_OPTIONS = frozenset({"self", "kwargs", "__class__"})


def provided(params: dict[str, Any]) -> dict[str, Any]:
    """The options a builder method was given, from its `locals()`: its named options not left
    NotProvided, then what its **kwargs took (RLlib's older names for _set to translate; in a base
    class's method, the options of the subclass method that forwarded them).

    A builder method calls `provided(locals())` as its first statement, when its locals are exactly its
    parameters: so each option is written once, in the signature with its type, and not again in a
    dict of what to set (nor passed on by name to the base class's method, SB3's kwargs written three
    times). The other locals are named in _NOT_OPTIONS."""
    options = {k: v for k, v in params.items() if k not in _NOT_OPTIONS and v is not NotProvided}
    return {**options, **params.get("kwargs", {})}


@dataclass
class AlgorithmConfig:
    algo_class: ClassVar[type | None] = None
    model_defaults: ClassVar[dict[str, Any]] = {}  # the algorithm's model options over MODEL_DEFAULTS

    # .environment()
    env: EnvSpec | None = option(None, "environment")  # Gymnasium id, registered name, Env class or fn(env_config)
    env_config: dict = option({}, "environment")  # kwargs for the env creator / gymnasium.make
    # .env_runners()
    num_env_runners: int = option(
        0, "env_runners", role="how many"
    )  # 0: sample in this process; N: N Ray actors (rlarena.rollout.ray_runners)
    num_cpus_per_env_runner: float = option(
        1.0, "env_runners", role="how many"
    )  # Ray's CPU request per remote env runner (RLlib's)
    num_envs_per_env_runner: int = option(
        8, "env_runners", bound="MAX_ENVS"
    )  # SB3 defaults to 1; vectorizing is the point here
    rollout_fragment_length: Literal["auto"] | int = option(
        "auto", "env_runners", bound="MAX_BATCH"
    )  # "auto": per family (fragment_length)
    vectorization_mode: str = option(
        "auto", "env_runners", role="how many"
    )  # auto | sync | subproc | async | vector_entry_point | envpool
    num_env_workers: int = option(2, "env_runners", role="how many")  # processes for vectorization_mode="subproc"
    observation_filter: str = option("NoFilter", "env_runners")  # or "MeanStdFilter"
    sample_timeout_s: float | None = option(
        60.0, "env_runners", role="how many"
    )  # a remote runner's fragment later than this: failed
    # sample while the learner updates (rlarena.rollout.async_sampling): in num_sampling_processes local
    # worker processes, or on the num_env_runners Ray actors when > 0; IMPALA and APPO default to True
    sample_async: bool = option(False, "env_runners")
    num_sampling_processes: int = option(1, "env_runners", role="how many")  # local worker processes with sample_async
    max_requests_in_flight_per_env_runner: int = option(
        1, "env_runners", role="how many"
    )  # fragments a runner samples ahead (RLlib's)
    # .training() (shared by all algorithms; RLlib's AlgorithmConfig defaults, algorithms redeclare theirs)
    lr: float = option(1e-3, "training")
    lr_schedule: list | None = option(None, "training")  # [[env_step, lr], ...], linearly interpolated
    gamma: float = option(0.99, "training")
    train_batch_size: int = option(32, "training", bound="MAX_BATCH")
    grad_clip: float | None = option(None, "training")  # max global grad norm; None: no clipping
    model: dict = option({}, "training")  # overrides of the model defaults (model_config)
    # .evaluation()
    evaluation_interval: int | None = option(None, "evaluation")  # evaluate every N train() calls
    evaluation_duration: int = option(10, "evaluation", bound="MAX_EPISODES")  # episodes per evaluation
    evaluation_num_envs: int = option(0, "evaluation", bound="MAX_ENVS")  # 0: min(duration, 10)
    evaluation_explore: bool = option(False, "evaluation")  # greedy actions unless True
    evaluation_num_env_runners: int = option(
        0, "evaluation", role="how many"
    )  # 0: evaluate in this process; M: M Ray actors
    evaluation_parallel_to_training: bool = option(
        False, "evaluation", role="how many"
    )  # evaluate while the training step runs
    # .multi_agent()
    policies: dict | None = option(None, "multi_agent")  # policy id -> PolicySpec; None: one shared policy
    policy_mapping_fn: Any = option(None, "multi_agent")  # fn(agent_id, episode, **kw) -> policy id
    policies_to_train: list | None = option(None, "multi_agent")  # None: every trainable policy
    off_policy_estimation_methods: dict = option(
        {}, "evaluation"
    )  # RLlib's: {"is": {"type": "ImportanceSampling"}, ...}
    # .offline_data() (RLlib's names)
    input_: str | list[str] | None = option(
        None, "offline_data", role="where"
    )  # logged episodes (dir, file, glob or list) to train on
    output: str | None = option(
        None, "offline_data", role="where"
    )  # a directory: every sampled step is written there as Parquet
    output_max_file_size: int = option(
        64 * 2**20, "offline_data", role="where"
    )  # bytes per file (whole episodes: may exceed it by one)
    # .fault_tolerance() (RLlib's names) for remote env runners; RLlib restarts by default, rlarena stops
    # with the runner's error unless asked (an env that raises on every episode would restart forever)
    restart_failed_env_runners: bool = option(False, "fault_tolerance", role="how many")  # a failed runner is replaced
    ignore_env_runner_failures: bool = option(False, "fault_tolerance", role="how many")  # a failed runner is dropped
    max_num_env_runner_restarts: int = option(
        1000, "fault_tolerance", role="how many"
    )  # restarts over the run, all runners
    delay_between_env_runner_restarts_s: float = option(60.0, "fault_tolerance", role="how many")  # after the failure
    # .callbacks()
    callbacks_class: type | None = option(None, "callbacks")  # a rlarena.Callbacks subclass
    # .debugging()
    seed: int | None = option(None, "debugging")
    # .resources()
    # "auto": 1 for small networks, 2 where one gradient step's matrices are large (rlarena.algorithms.threads)
    num_torch_threads: int | Literal["auto"] = option("auto", "resources", role="how many")
    ray_address: str | None = option(
        None, "resources", role="where"
    )  # a Ray cluster to join; None: RAY_ADDRESS, else a private local Ray

    # -- the fluent builder (RLlib's names) ---------------------------------------------------
    # Each method names its options with their types, so an IDE, mypy and a reader follow an option from
    # the call to its field; an option left NotProvided keeps its value. **kwargs takes RLlib's older
    # names (num_sgd_iter, lambda, num_workers, ...: translated or refused by _set through the tables of
    # algorithms/legacy.py) and, here, the options an algorithm's own training() forwards; an unknown name
    # fails in _set with ConfigError naming the closest option. An algorithm's config overrides a method
    # where it adds options, names the ones its class declares (new, and redeclared with its defaults),
    # and passes the rest on with `super().training(**provided(locals()))` (provided: why locals()). A
    # class that only changes defaults (DDPGConfig, BCConfig) does not override: its base's method names
    # them, typed, and an override would hide the base's other typed options from a type checker.
    def environment(
        self,
        env: EnvSpec | None | NotProvidedType = NotProvided,
        *,
        env_config: dict | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """env: a Gymnasium id, a name from register_env, an Env class or a creator fn(env_config);
        env_config: kwargs for the env creator (or gymnasium.make)."""
        return self._set("environment", provided(locals()))

    def env_runners(
        self,
        *,
        num_env_runners: int | NotProvidedType = NotProvided,
        num_cpus_per_env_runner: float | NotProvidedType = NotProvided,
        num_envs_per_env_runner: int | NotProvidedType = NotProvided,
        rollout_fragment_length: Literal["auto"] | int | NotProvidedType = NotProvided,
        vectorization_mode: str | NotProvidedType = NotProvided,
        num_env_workers: int | NotProvidedType = NotProvided,
        observation_filter: str | NotProvidedType = NotProvided,
        sample_timeout_s: float | None | NotProvidedType = NotProvided,
        sample_async: bool | NotProvidedType = NotProvided,
        num_sampling_processes: int | NotProvidedType = NotProvided,
        max_requests_in_flight_per_env_runner: int | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """How and where env steps are sampled (each option's field says what it means)."""
        return self._set("env_runners", provided(locals()))

    def training(
        self,
        *,
        lr: float | NotProvidedType = NotProvided,
        lr_schedule: list | None | NotProvidedType = NotProvided,
        gamma: float | NotProvidedType = NotProvided,
        train_batch_size: int | NotProvidedType = NotProvided,
        grad_clip: float | None | NotProvidedType = NotProvided,
        model: dict | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """The options every algorithm trains with; an algorithm's config adds its own."""
        return self._set("training", provided(locals()))

    def evaluation(
        self,
        *,
        evaluation_interval: int | None | NotProvidedType = NotProvided,
        evaluation_duration: int | NotProvidedType = NotProvided,
        evaluation_num_envs: int | NotProvidedType = NotProvided,
        evaluation_explore: bool | NotProvidedType = NotProvided,
        evaluation_num_env_runners: int | NotProvidedType = NotProvided,
        evaluation_parallel_to_training: bool | NotProvidedType = NotProvided,
        off_policy_estimation_methods: dict | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        return self._set("evaluation", provided(locals()))

    def offline_data(
        self,
        *,
        input_: str | list[str] | None | NotProvidedType = NotProvided,
        output: str | None | NotProvidedType = NotProvided,
        output_max_file_size: int | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """input_ (logged episodes to learn from instead of an env), output (record sampled steps),
        output_max_file_size. RLlib's `input` is read as input_ ("sampler": from the env)."""
        return self._set("offline_data", provided(locals()))

    def fault_tolerance(
        self,
        *,
        restart_failed_env_runners: bool | NotProvidedType = NotProvided,
        ignore_env_runner_failures: bool | NotProvidedType = NotProvided,
        max_num_env_runner_restarts: int | NotProvidedType = NotProvided,
        delay_between_env_runner_restarts_s: float | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """What a failed remote env runner costs: restart_failed_env_runners (replace it, with the same
        worker index and the latest weights), ignore_env_runner_failures (go on without it),
        max_num_env_runner_restarts, delay_between_env_runner_restarts_s. Neither set: training stops
        with the runner's error."""
        return self._set("fault_tolerance", provided(locals()))

    def multi_agent(
        self,
        *,
        policies: dict | Collection[str] | None | NotProvidedType = NotProvided,
        policy_mapping_fn: Callable[..., Any] | None | NotProvidedType = NotProvided,
        policies_to_train: list | None | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """policies={id: PolicySpec(...)} (or a list of ids; None: one shared policy), policy_mapping_fn,
        policies_to_train."""
        options = provided(locals())
        if options.get("policies") is not None:
            options["policies"] = normalize_policies(options["policies"])
        return self._set("multi_agent", options)

    def callbacks(self, callbacks_class: type | None | NotProvidedType = NotProvided, **kwargs: Any) -> Self:
        """callbacks_class: a subclass of rlarena.Callbacks (None: no callbacks)."""
        options = provided(locals())
        from rlarena.callbacks import Callbacks

        if options.get("callbacks_class") is not None and not (
            isinstance(callbacks_class, type) and issubclass(callbacks_class, Callbacks)
        ):
            raise ConfigError(f"callbacks() takes a subclass of rlarena.Callbacks, got {callbacks_class!r}.")
        return self._set("callbacks", options)

    def debugging(self, *, seed: int | None | NotProvidedType = NotProvided, **kwargs: Any) -> Self:
        """seed; RLlib's log_level is accepted and ignored (a notice says so)."""
        return self._set("debugging", provided(locals()))

    def resources(
        self,
        *,
        num_torch_threads: int | Literal["auto"] | NotProvidedType = NotProvided,
        ray_address: str | None | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """num_torch_threads, ray_address; RLlib's num_gpus=0 is accepted (more: a notice, training stays on the CPU)."""
        return self._set("resources", provided(locals()))

    # -- RLlib's older builder methods: their options go through the legacy tables (algorithms/legacy.py)
    # RLlib 2.x's name of env_runners(): the same options, and its older names (num_rollout_workers,
    # num_envs_per_worker, ...) are mapped
    rollouts = env_runners

    def framework(self, framework: str = "torch", **options: Any) -> Self:
        """Accepted for RLlib code: rlarena runs PyTorch. Another framework, or a framework option
        (eager_tracing, torch_compile_learner, ...), leaves a one-line notice."""
        translate({"framework": framework}, (), self._current, type(self).__name__)
        for key, value in options.items():
            if value not in (None, False):
                notice(f"framework option {key}={value!r} is ignored: rlarena runs PyTorch eagerly.")
        return self

    def _set(self, group: str, kwargs: dict[str, Any]) -> Self:
        """Set the options of the builder method `group`; RLlib's older names are translated."""
        names = self._fields(group)
        for key in kwargs:
            if key not in names and key not in LEGACY_NAMES:
                home = self._group_of(key)
                hint = f" It is an option of {home}(): .{home}({key}=...)." if home else closest(key, self._fields())
                raise ConfigError(
                    f"{type(self).__name__}.{group}() has no option {key!r}.{hint} Valid {group}() options: "
                    f"{', '.join(sorted(names))}."
                )
        for key, value in self._translate(kwargs, names).items():
            self._assign(key, value)
        return self

    def _assign(self, key: str, value: Any) -> None:
        """Set one option; `model` is merged into the model options set so far, as RLlib's
        `.training(model=...)` does (so passing only a class again keeps a checkpoint's other options)."""
        if key == "model" and isinstance(value, dict) and isinstance(self.model, dict):
            value = {**self.model, **value}
        setattr(self, key, value)

    def _translate(self, options: dict[str, Any], valid: Any) -> dict[str, Any]:
        """`options` with RLlib's older names as ours; an option rlarena refuses raises ConfigError."""
        fields = self._fields()
        out = translate(options, valid, self._current, type(self).__name__)
        unknown = [k for k in out if k not in fields]
        if unknown:
            raise ConfigError(f"{type(self).__name__} has no option {unknown[0]!r}.{closest(str(unknown[0]), fields)}")
        return out

    def _current(self, name: str) -> Any:
        return getattr(self, name)

    @classmethod
    def _fields(cls, group: str | None = None) -> dict[str, dataclasses.Field]:
        return {f.name: f for f in dataclasses.fields(cls) if group is None or f.metadata.get("group") == group}

    @classmethod
    def _group_of(cls, key: str) -> str | None:
        """The builder method that sets option `key` (None: no option of that name)."""
        field = cls._fields().get(key)
        return None if field is None else field.metadata.get("group")

    # -- what a file may set (ROLES) ----------------------------------------------------------
    @classmethod
    def option_roles(cls) -> dict[str, tuple[str, str | None]]:
        """option -> (role, the rlarena.limits bound of a "how big" option or None), for every option."""
        return dict(_option_roles(cls))

    def sizes(self) -> list[tuple[str, Any, str]]:
        """(option, value, bound name) of every size or count this config asks for, checked against
        rlarena.limits when the config was read from a file: the "how big" options, and subclasses add
        sizes inside options (a replay capacity, search simulations). Network sizes are counted where
        the networks are built (rlarena.limits.count_parameters)."""
        sizes = [
            (name, getattr(self, name), bound)
            for name, (_, bound) in _option_roles(type(self)).items()
            if bound is not None
        ]
        # a Gymnasium id's time limit (gymnasium.make's keyword): an episode that never ends would stall evaluation
        if isinstance(self.env_config, dict) and "max_episode_steps" in self.env_config:
            sizes.append(("env_config.max_episode_steps", self.env_config["max_episode_steps"], "MAX_EPISODE_STEPS"))
        return sizes

    def confine(self, source: str, caller: Iterable[str] = (), how: str = "") -> dict[str, Any]:
        """Make this config, read from `source` (a file someone else may have written), choose nothing
        outside it: each "where" or "how many" option (ROLES) that the caller did not pass (`caller`:
        option names) goes back to its default, and one notice names what the file had set and how to
        pass it deliberately (`how`: the way this caller passes options; config_overrides and --config by
        default). Returns {option: the file's value} of what was reset. Policies' own overrides
        (PolicySpec config) lose those options too."""
        passed = set(caller)
        roles, fields = _option_roles(type(self)), self._fields()
        outside = {name for name, (role, _) in roles.items() if role in ("where", "how many")}
        dropped: dict[str, Any] = {}
        for name in sorted(outside - passed):
            default = _default(fields[name])
            if getattr(self, name) != default:
                dropped[name] = getattr(self, name)
                setattr(self, name, default)
        if "input_" in dropped and self.off_policy_estimation_methods:  # they read the logged data
            dropped["off_policy_estimation_methods"] = self.off_policy_estimation_methods
            self.off_policy_estimation_methods = {}
        if isinstance(self.policies, dict) and "policies" not in passed:
            for pid, spec in self.policies.items():
                overrides = getattr(spec, "config", None)
                if isinstance(overrides, dict):
                    for key in [k for k in overrides if RENAMED.get(k, k) in outside]:
                        dropped[f"policies[{pid!r}].config.{key}"] = overrides.pop(key)
        if dropped:
            notice(outside_notice(source, dropped, how))
        return dropped

    def check_sizes(self, source: str, caller: Iterable[str] = ()) -> None:
        """Refuse (ConfigError, one line) a size or count of sizes() above its rlarena.limits bound, for a
        config read from `source`; the options in `caller` were passed by the caller and are not bounded."""
        limits.check_all(source, self.sizes(), caller)

    # -- derived values -----------------------------------------------------------------------
    @property
    def model_config(self) -> dict[str, Any]:
        """MODEL_DEFAULTS, then the algorithm's model_defaults, then the user's `model`."""
        return {**MODEL_DEFAULTS, **self.model_defaults, **self.model}

    @property
    def fragment_length(self) -> int:
        """Steps per env in one runner's fragment: rollout_fragment_length, or its family's rule when it
        is "auto". The one place that says what "auto" means (each family's config implements its row):

        - on-policy (PPO, A2C, IMPALA, APPO; OnPolicyConfig): ceil(train_batch_size /
          (num_envs_per_env_runner * num_samplers)): one fragment from every runner (this process's, the
          sampling processes' or the Ray actors') fills one train batch, whichever runner group samples.
        - off-policy (DQN, SAC, TD3/DDPG; OffPolicyConfig): SB3's train_freq, else 1: each env steps once
          between updates. On Ray actors (num_env_runners > 0), times remote_fragment_scale (about 32 steps
          per env per call, followed by that many times the updates: the same updates per env step, in
          bursts): the one place where the runner group changes an algorithm's rhythm.
        - the others (bandits, ES/ARS, AlphaZero, BC/MARWIL): 1 (this rule); they sample their own way or
          not at all (as CQL, off-policy but learning from logged data).
        """
        return 1 if self.rollout_fragment_length == "auto" else int(self.rollout_fragment_length)

    @property
    def num_eval_envs(self) -> int:
        return self.evaluation_num_envs or min(self.evaluation_duration, 10)

    # -- validation ---------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ConfigError naming the bad key(s). Subclasses extend it.

        Every path to an algorithm comes through here (build(), rlarena.run, YAML and --config,
        from_checkpoint, per-policy PolicySpec(config=...) overrides), so the types are checked first,
        in one place: the rules below may then compare and compute with the values."""
        if self.policies is not None:  # a list of ids becomes {id: PolicySpec()} before its type is checked
            self.policies = normalize_policies(self.policies)
        if self.input_ == "sampler":  # RLlib's default: sample the env
            self.input_ = None
        if self.input_ == "dataset":  # RLlib's: the files are in its input_config
            raise ConfigError(
                "input='dataset' reads RLlib's input_config; rlarena takes the files themselves: "
                "input_='DIR' (a directory, file, glob or list of Parquet files)."
            )
        self._check_types()
        if self.env is None and self.input_ is None:
            raise ConfigError(
                "No environment set: call .environment('CartPole-v1') (a Gymnasium id, a name "
                "from register_env, an Env class or a creator fn(env_config)), or "
                ".offline_data(input_=DIR) to learn from logged episodes."
            )
        self._check("output_max_file_size", self.output_max_file_size >= 1024, "must be >= 1024 bytes")
        if self.input_ is not None and self.output is not None:
            raise ConfigError(
                "offline_data(input_=..., output=...): an offline run samples no env steps to record; set one of them."
            )
        self._check(
            "off_policy_estimation_methods",
            self.input_ is not None or not self.off_policy_estimation_methods,
            "estimates a policy's value from logged data: set .offline_data(input_=DIR) too",
        )
        self._check("lr", self.lr > 0, "must be > 0")
        self._check("gamma", 0 < self.gamma <= 1, "must be in (0, 1]")
        self._check("train_batch_size", self.train_batch_size >= 1, "must be >= 1")
        self._check("num_envs_per_env_runner", self.num_envs_per_env_runner >= 1, "must be >= 1")
        self._check("num_env_runners", self.num_env_runners >= 0, "must be >= 0 (0: sample in this process)")
        self._check("num_cpus_per_env_runner", self.num_cpus_per_env_runner >= 0, "must be >= 0")
        if self.num_env_runners > 0:
            self._check_remote_sampling()
        if self.sample_async:
            self._check_async_sampling()
        self._check("num_sampling_processes", self.num_sampling_processes >= 1, "must be >= 1")
        self._check(
            "max_requests_in_flight_per_env_runner", self.max_requests_in_flight_per_env_runner >= 1, "must be >= 1"
        )
        self._check(
            "sample_timeout_s",
            self.sample_timeout_s is None or self.sample_timeout_s > 0,
            "must be > 0 seconds, or None (wait forever)",
        )
        self._check("max_num_env_runner_restarts", self.max_num_env_runner_restarts >= 0, "must be >= 0")
        self._check(
            "delay_between_env_runner_restarts_s", self.delay_between_env_runner_restarts_s >= 0, "must be >= 0 seconds"
        )
        self._check(
            "evaluation_num_env_runners",
            self.evaluation_num_env_runners >= 0,
            "must be >= 0 (0: evaluate in this process)",
        )
        self._check(
            "evaluation_parallel_to_training",
            not self.evaluation_parallel_to_training or self.evaluation_num_env_runners > 0,
            "evaluates on remote runners while the training step runs: set evaluation_num_env_runners "
            "> 0 (and evaluation_interval) too",
        )
        self._check("grad_clip", self.grad_clip is None or self.grad_clip > 0, "must be > 0 or None")
        self._check("evaluation_duration", self.evaluation_duration >= 1, "must be >= 1")
        self._check(
            "evaluation_interval",
            self.evaluation_interval is None or self.evaluation_interval >= 1,
            "must be >= 1 or None",
        )
        # torch's thread pool allocates per thread up front: a billion threads aborts the process (libgomp)
        threads = self.num_torch_threads
        self._check(
            "num_torch_threads",
            threads == "auto"
            or (isinstance(threads, int) and not isinstance(threads, bool) and 1 <= threads <= MAX_TORCH_THREADS),
            f'must be "auto" or from 1 to {MAX_TORCH_THREADS}',
        )
        self._check("num_env_workers", self.num_env_workers >= 1, "must be >= 1")
        self._choice(
            "vectorization_mode",
            self.vectorization_mode,
            ("auto", "sync", "subproc", "async", "vector_entry_point", "envpool"),
        )
        self._choice("observation_filter", self.observation_filter, ("NoFilter", "MeanStdFilter"))
        self._check(
            "evaluation_num_envs", self.evaluation_num_envs >= 0, "must be >= 0 (0: min(evaluation_duration, 10))"
        )
        self._check("seed", self.seed is None or self.seed >= 0, "must be >= 0 or None")  # numpy's SeedSequence
        from rlarena.nn.models import ACTIVATIONS

        self._choice("model.fcnet_activation", self.model_config["fcnet_activation"], tuple(ACTIVATIONS))
        self._choice("model.conv_activation", self.model_config["conv_activation"], tuple(ACTIVATIONS))
        for key, top in (
            ("lstm_cell_size", limits.MAX_LAYER_UNITS),
            ("max_seq_len", limits.MAX_EPISODE_STEPS),
            ("attention_dim", limits.MAX_LAYER_UNITS),
            ("attention_num_transformer_units", 64),
            ("attention_num_heads", 64),
            ("attention_head_dim", limits.MAX_LAYER_UNITS),
            ("attention_position_wise_mlp_dim", limits.MAX_LAYER_UNITS),
            ("attention_memory_inference", MAX_ATTENTION_MEMORY),
        ):
            if not 1 <= self.model_config[key] <= top:
                raise ConfigError(f"Invalid model.{key}={self.model_config[key]!r}: must be from 1 to {top}.")
        if self.rollout_fragment_length != "auto":
            self._check("rollout_fragment_length", self.rollout_fragment_length >= 1, "must be >= 1 or 'auto'")
        if self.policies is not None:
            for pid in self.policies_to_train or []:
                if pid not in self.policies:
                    raise ConfigError(
                        f"policies_to_train names {pid!r}, which is not in policies."
                        f"{closest(str(pid), self.policies)} Policies: {', '.join(self.policies)}."
                    )
        if self.policy_mapping_fn is not None and not callable(self.policy_mapping_fn):
            raise ConfigError(
                "policy_mapping_fn must be a function fn(agent_id, episode, **kwargs) -> policy id. "
                "If it was a lambda saved in a checkpoint, pass it again with "
                "from_checkpoint(path, config_overrides={'policy_mapping_fn': fn})."
            )
        from rlarena.callbacks import Callbacks

        if self.callbacks_class is not None and not (
            isinstance(self.callbacks_class, type) and issubclass(self.callbacks_class, Callbacks)
        ):
            raise ConfigError(
                f"callbacks_class must be a subclass of rlarena.Callbacks, got {self.callbacks_class!r}. "
                f"If it was defined in a script or function, pass it again with "
                f"from_checkpoint(path, config_overrides={{'callbacks_class': MyCallbacks}})."
            )
        if self.lr_schedule is not None:
            ok = all(
                isinstance(p, list | tuple) and len(p) == 2 and all(_conform(x, float)[0] for x in p) and p[1] >= 0
                for p in self.lr_schedule
            )
            self._check(
                "lr_schedule",
                ok and len(self.lr_schedule) >= 1,
                "must be a list of [env_step, lr] pairs, e.g. [[0, 3e-4], [1_000_000, 0.0]]",
            )

    def _check_remote_sampling(self) -> None:
        """What remote (Ray) env runners do not do yet: refused by name."""
        name = getattr(self.algo_class, "__name__", type(self).__name__)
        if not getattr(self.algo_class, "samples_on_ray", False):
            raise ConfigError(
                f"Invalid num_env_runners={self.num_env_runners}: {name} samples in this process "
                f"only for now (remote Ray env runners sample for PPO, A2C, IMPALA, APPO, DQN, SAC, TD3, DDPG, TQC and CrossQ). "
                f"Set num_env_runners=0 and num_envs_per_env_runner for more envs."
            )
        if self.output is not None:
            raise ConfigError(
                f"offline_data(output=...) with num_env_runners={self.num_env_runners}: recording "
                f"from remote env runners is not available yet. Record with num_env_runners=0."
            )

    def _check_async_sampling(self) -> None:
        name = getattr(self.algo_class, "__name__", type(self).__name__)
        if not getattr(self.algo_class, "samples_async", False):
            raise ConfigError(
                f"Invalid sample_async=True: {name} samples and learns in turn (sampling while the "
                f"learner updates is for IMPALA, APPO, PPO and A2C). Set sample_async=False."
            )
        if self.output is not None:
            raise ConfigError(
                "offline_data(output=...) with sample_async=True: recording from sampling processes "
                "is not available yet. Record with sample_async=False."
            )

    @property
    def samples_elsewhere(self) -> bool:
        """Whether runners in other processes sample (Ray actors, or sampling processes): this
        process's runner then only holds the policies."""
        return self.num_env_runners > 0 or self.sample_async

    @property
    def num_samplers(self) -> int:
        """How many runners fill one train batch: the Ray env runners, else the sampling processes
        (sample_async), else this process's runner."""
        if self.num_env_runners > 0:
            return self.num_env_runners
        return self.num_sampling_processes if self.sample_async else 1

    def _check_types(self) -> None:
        """Each option against its declared annotation and each model option against MODEL_TYPES;
        one line per bad value. A value of the right kind in another form (2.0 for an int, a numpy
        scalar) is stored in its plain Python form, so the attribute keeps one type."""
        problems = []
        for name, annotation in _field_types(type(self)).items():
            value = getattr(self, name)
            ok, plain = _conform(value, annotation)
            if not ok:
                problems.append(_invalid(name, value, _describe(annotation)))
            elif plain is not value:
                setattr(self, name, plain)
        if isinstance(self.model, dict):
            model = dict(self.model)  # the caller's dict is not changed
            for key, value in self.model.items():
                if key not in MODEL_TYPES:
                    problems.append(
                        f"Unknown model option {key!r}.{closest(str(key), MODEL_TYPES)} "
                        f"Valid model options: {', '.join(MODEL_TYPES)}."
                    )
                    continue
                ok, model[key] = _conform(value, MODEL_TYPES[key])
                expected = _describe(MODEL_TYPES[key])
                if key in ("fcnet_hiddens", "post_fcnet_hiddens"):
                    ok = ok and all(size >= 1 for size in model[key])
                    expected = "a list of positive integers (layer sizes, e.g. [64, 64])"
                if not ok:
                    problems.append(_invalid(f"model.{key}", value, expected))
            if not problems and any(model[k] is not v for k, v in self.model.items()):
                self.model = model
        if problems:
            raise ConfigError("\n".join(problems))

    def _check(self, key: str, ok: bool, rule: str) -> None:
        if not ok:
            raise ConfigError(f"Invalid {key}={getattr(self, key, None)!r}: {rule}.")

    def _choice(self, key: str, value: Any, valid: tuple) -> None:
        if value not in valid:
            raise ConfigError(
                f"Invalid {key}={value!r}.{closest(str(value), valid)} Valid values: {', '.join(map(str, valid))}."
            )

    # -- build and (de)serialize --------------------------------------------------------------
    def build(self, env: EnvSpec | None = None) -> Any:
        """Validate and build the algorithm (RLlib: `config.build_algo()`; `build()` is kept too).

        The classes and functions of a config built here are the user's own: a checkpoint loaded
        later in this process may name them without further trust (rlarena.refs)."""
        if env is not None:
            self.env = env
        assert self.algo_class is not None, f"{type(self).__name__} has no algo_class"
        checked = self.checked()
        try:
            return self.algo_class(checked)
        except MemoryError as exc:  # numpy refuses an impossible array before touching memory
            raise ConfigError(
                f"Building {self.algo_class.__name__} needs more memory than this machine has ({exc}): "
                f"lower the sizes in the config (num_envs_per_env_runner={self.num_envs_per_env_runner}, "
                f"train_batch_size={self.train_batch_size}, replay_buffer_config, model)."
            ) from None

    def checked(self) -> Self:
        """A validated copy, the one an algorithm holds; the classes and functions it names are the
        user's own (trusted for checkpoints loaded later in this process)."""
        self.validate()
        trust_built(self.named_objects())
        return self.copy()

    build_algo = build

    def copy(self) -> Self:
        return dataclasses.replace(
            self,
            env_config=dict(self.env_config),
            model=dict(self.model),
            policies=None if self.policies is None else dict(self.policies),
            policies_to_train=None if self.policies_to_train is None else list(self.policies_to_train),
        )

    def to_dict(self) -> dict[str, Any]:
        out = {f: getattr(self, f) for f in self._fields()}
        out["env"] = env_to_json(self.env)
        if self.policies is not None:  # spaces are re-read from the env (checkpoints store them apart)
            out["policies"] = {
                pid: {"policy_class": ref_to_json(spec.policy_class), "config": spec.config}
                for pid, spec in normalize_policies(self.policies).items()
            }
        out["policy_mapping_fn"] = ref_to_json(self.policy_mapping_fn)
        out["callbacks_class"] = ref_to_json(self.callbacks_class)
        if self.model.get("custom_model") is not None:  # a class by its name; a registered name as it is
            out["model"] = {**self.model, "custom_model": ref_to_json(self.model["custom_model"])}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], trust: Trust | None = None) -> Self:
        """The config `to_dict` wrote. Saved classes and functions resolve only as `trust` allows
        (rlarena.refs): by default rlarena's built-ins and objects registered in this process."""
        trust = trust or Trust()
        fields = cls._fields()
        values = cls()._translate(data, fields)  # RLlib's older names, before any reference resolves
        if "env" in values:
            values["env"] = env_from_json(values["env"], trust)
        if values.get("policies") is not None:
            from rlarena.multiagent.policy_spec import PolicySpec

            if not isinstance(values["policies"], dict):
                raise ConfigError(f"policies must be a mapping of policy id to spec, got {values['policies']!r}.")
            values["policies"] = {
                pid: PolicySpec(
                    policy_class=trust.resolve(spec.get("policy_class"), f"policies[{pid!r}].policy_class"),
                    config=dict(spec.get("config") or {}),
                )
                for pid, spec in values["policies"].items()
            }
        for key in ("policy_mapping_fn", "callbacks_class"):
            if key in values:
                values[key] = trust.resolve(values[key], key)
        model = values.get("model")
        if isinstance(model, dict) and isinstance(model.get("custom_model"), dict):  # a saved class: trusted only
            values["model"] = {**model, "custom_model": trust.resolve(model["custom_model"], "model.custom_model")}
        return cls(**values)

    def named_objects(self) -> list[Any]:
        """The classes and functions this config holds (env, callbacks, mapping fn, policy classes):
        what a load may resolve a saved reference to when this config is passed again (resume)."""
        policies = normalize_policies(self.policies).values() if self.policies is not None else ()
        custom = self.model.get("custom_model") if isinstance(self.model, dict) else None
        return [
            self.env,
            self.callbacks_class,
            self.policy_mapping_fn,
            *(spec.policy_class for spec in policies),
            custom,
        ]

    def update_from_dict(self, data: dict[str, Any]) -> Self:
        """Set options by name regardless of builder group (for CLI --config, YAML files and sweeps).
        RLlib's older names (num_sgd_iter, lambda, {"multiagent": {...}}, ...) are translated."""
        for key, value in self._translate(data, self._fields()).items():
            self._assign(key, value)
        return self


def outside_notice(source: str, dropped: dict[str, Any], how: str = "") -> str:
    """The notice that `source` set the "where" and "how many" options `dropped`, which were not used."""
    shown = ", ".join(f"{k}={_short(v)}" for k, v in dropped.items())
    example = _short({k: v for k, v in dropped.items() if k.isidentifier()}, 200)
    one = len(dropped) == 1
    how = how or f"config_overrides={example} (rlarena train: --config)"
    return (
        f"{source} sets {shown}: a file does not choose where anything is read or written, which machine or "
        f"cluster is contacted, or how many processes or threads run, so {'it keeps its default' if one else 'they keep their defaults'}. "
        f"To use {'it' if one else 'them'}, pass {'it' if one else 'them'} yourself: {how}."
    )


def normalize_policies(policies: Any) -> dict:
    """{id: PolicySpec} from a dict of specs (or RLlib's (cls, obs_space, act_space, config) tuples,
    or None for a default spec) or from a list/set of ids."""
    from rlarena.multiagent.policy_spec import PolicySpec

    if isinstance(policies, list | set | tuple):
        return {pid: PolicySpec() for pid in policies}
    if not isinstance(policies, dict):
        raise ConfigError(f"policies must be a dict {{policy_id: PolicySpec(...)}} or a list of ids, got {policies!r}.")
    out = {}
    for pid, spec in policies.items():
        if spec is None:
            spec = PolicySpec()
        elif isinstance(spec, tuple):  # RLlib's (policy_class, observation_space, action_space, config)
            head = dict(zip(("policy_class", "observation_space", "action_space"), spec))
            spec = PolicySpec(**head, config=dict(spec[3] or {}) if len(spec) > 3 else {})
        elif not isinstance(spec, PolicySpec):
            raise ConfigError(f"policies[{pid!r}] must be a PolicySpec, got {type(spec).__name__}.")
        out[str(pid)] = spec
    return out


# -- roles ------------------------------------------------------------------------------------------
_T = typing.TypeVar("_T")


def _per_class(fn: Callable[[type], _T]) -> Callable[[type], _T]:
    """functools.cache for a function of a config class, keeping its signature: functools.cache's own
    type takes Hashable arguments, and mypy does not count a class object as one (python/mypy#11470)."""
    return functools.cache(fn)


@_per_class
def _option_roles(cls: type) -> dict[str, tuple[str, str | None]]:
    """option -> (role, bound) of the config class `cls`. A field a subclass redeclares (to change its
    default) keeps the role and bound a base class gave it: the first class in the MRO that declares
    the field with a role other than "computes" decides."""
    out = {}
    for f in dataclasses.fields(cls):
        role, bound = "computes", None
        for klass in cls.__mro__:
            declared = getattr(klass, "__dataclass_fields__", {}).get(f.name)
            if declared is not None and declared.metadata.get("role", "computes") != "computes":
                role, bound = declared.metadata["role"], declared.metadata.get("bound")
                break
        out[f.name] = (role, bound)
    return out


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def _short(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else f"{text[: width - 3]}..."


# -- the type check behind validate() ---------------------------------------------------------------
@_per_class
def _field_types(cls: type) -> dict[str, Any]:
    """Each dataclass field's annotation, resolved (this module uses `from __future__ import annotations`)."""
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError):  # a subclass annotating with a name its module cannot resolve
        hints = {}
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}


def _conform(value: Any, annotation: Any) -> tuple[bool, Any]:
    """(whether `value` has the type `annotation` declares, the value in its plain Python form).

    Only plain data is checked here: Any, a class (`type`), a callable or an EnvSpec accepts anything,
    and those options keep their own checks in validate(). A bool is never taken for a number.
    """
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        for member in args:
            ok, plain = _conform(value, member)
            if ok:
                return True, plain
        return False, value
    if origin is Literal:
        return any(type(value) is type(a) and value == a for a in args), value
    if annotation is type(None):
        return value is None, value
    if annotation is bool:
        return isinstance(value, bool), value
    if annotation is int:
        if isinstance(value, bool):
            return False, value
        # numpy integers too; 2.0 (and 1e4 from JSON) is accepted and stored as the int it equals, 2.5 is
        # refused; and a count or size fits int64, as every array index does (1e300 would reach numpy)
        if isinstance(value, numbers.Integral) or (isinstance(value, float) and value.is_integer()):
            plain = int(value)  # exact: the value is a whole number
            return (True, plain) if -(2**63) <= plain < 2**63 else (False, value)
        return False, value
    if annotation is float:  # finite: an option that means "no limit" takes None (JSON's Infinity is refused)
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            return False, value
        return True, value if type(value) in (int, float) else float(value)
    if annotation is str:
        return isinstance(value, str), value
    if (origin or annotation) is list:
        if not isinstance(value, list | tuple):
            return False, value
        if not args:
            return True, value
        items = [_conform(v, args[0]) for v in value]
        if not all(ok for ok, _ in items):
            return False, value
        plain = [p for _, p in items]
        return True, value if isinstance(value, list) and all(p is v for p, v in zip(plain, value)) else plain
    if (origin or annotation) is dict:
        return isinstance(value, dict), value
    return True, value


_TYPE_NAMES = {
    bool: "true or false (bool)",
    int: "an integer (int)",
    float: "a number (float)",
    str: "a string (str)",
    dict: "a dict",
    list: "a list",
    type(None): "None",
}
_PLURALS = {bool: "bools", int: "integers", float: "numbers", str: "strings"}


def _describe(annotation: Any) -> str:
    """'a number (float) or None' for `float | None`: the expected type, for an error message."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return " or ".join(_describe(member) for member in args)
    if origin is Literal:
        return " or ".join(repr(a) for a in args)
    if origin is list and args:
        return f"a list of {_PLURALS.get(args[0], _describe(args[0]))}"
    return _TYPE_NAMES.get(origin or annotation, getattr(annotation, "__name__", str(annotation)))


def _invalid(name: str, value: Any, expected: str) -> str:
    text = repr(value)
    text = text if len(text) <= 60 else f"{text[:57]}..."
    hint = " (finite: not NaN or infinity)" if isinstance(value, float) and not math.isfinite(value) else ""
    if (
        "integer" in expected
        and isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and float(value).is_integer()
    ):
        hint = " (below 2**63)"
    if isinstance(value, str) and ("number" in expected or "integer" in expected):
        try:
            float(value)
        except ValueError:
            pass
        else:  # a quoted number, e.g. JSON's "3e-4"
            hint = ", not a string: write it unquoted"
    return f"Invalid {name}={text}: expected {expected}{hint}."
