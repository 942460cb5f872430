"""The builder methods name their options: every option of every algorithm's config is a typed keyword
parameter of the builder method of its group (on that class, or on the base-class method it forwards
to), so an IDE and mypy follow it; an option not passed keeps its value (NotProvided), None is a value;
RLlib's older names still pass through **kwargs and the legacy tables; an unknown name is a ConfigError
naming the closest option."""

from __future__ import annotations

import dataclasses
import inspect
import re
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

import pytest

from rlarena import ConfigError
from rlarena.algorithms import ALGORITHMS, APPOConfig, DQNConfig, ESConfig, PPOConfig, SACConfig
from rlarena.algorithms.config import AlgorithmConfig, NotProvided, NotProvidedType
from rlarena.algorithms.legacy import NESTED, RENAMED
from rlarena.callbacks import Callbacks

CONFIG_CLASSES = sorted({algo.config_class for algo in ALGORITHMS.values()}, key=lambda c: c.__name__)
# every config class an algorithm's config inherits from (the family bases: OnPolicyConfig, ...)
ALL_CONFIG_CLASSES = sorted(
    {k for c in CONFIG_CLASSES for k in c.__mro__ if issubclass(k, AlgorithmConfig) and k is not AlgorithmConfig},
    key=lambda c: c.__name__,
)
GROUPS = sorted({f.metadata["group"] for c in CONFIG_CLASSES for f in dataclasses.fields(c)})
NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def named_options(cls: type, group: str) -> dict[str, tuple[type, inspect.Parameter]]:
    """option -> (the class whose `group` method names it, the parameter): the method on `cls`, then
    the base-class methods it forwards to (a method with **kwargs passes what it does not name to
    super(); one without ends the chain)."""
    out: dict[str, tuple[type, inspect.Parameter]] = {}
    for klass in cls.__mro__:
        method = klass.__dict__.get(group)
        if method is None:
            continue
        params = list(inspect.signature(method).parameters.values())[1:]  # without self
        for p in params:
            if p.kind in NAMED:
                out.setdefault(p.name, (klass, p))
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            break
    return out


def union_members(annotation: Any) -> set[Any]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return set().union(*(union_members(a) for a in typing.get_args(annotation)))
    return {annotation}


def resolved(klass: type, group: str, name: str) -> Any:
    """The parameter's annotation, evaluated in its module (annotations are strings there)."""
    hints = typing.get_type_hints(klass.__dict__[group], localns={"Self": klass})
    return hints[name]


def declared(cls: type, group: str) -> list[str]:
    """The options of `group` that the body of `cls` declares (new ones and redeclared defaults)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    return [n for n in inspect.get_annotations(cls) if n in fields and fields[n].metadata["group"] == group]


# -- every option is a named, typed parameter of its builder method ---------------------------------------------
@pytest.mark.parametrize("cls", CONFIG_CLASSES, ids=lambda c: c.__name__)
def test_every_option_is_a_typed_keyword_of_its_builder_method(cls):
    field_types = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        group = f.metadata["group"]
        options = named_options(cls, group)
        assert f.name in options, f"{cls.__name__}.{group}() does not name the option {f.name!r}"
        klass, param = options[f.name]
        assert param.annotation is not inspect.Parameter.empty, f"{klass.__name__}.{group}({f.name}) has no type"
        assert param.default is NotProvided, f"{klass.__name__}.{group}({f.name}) defaults to {param.default!r}"
        builder = union_members(resolved(klass, group, f.name))
        assert NotProvidedType in builder
        if field_types[f.name] is not Any:  # Any (target_entropy, policy_mapping_fn): the builder says more
            assert union_members(field_types[f.name]) <= builder, (
                f"{klass.__name__}.{group}({f.name}: {param.annotation}) does not take the option's type "
                f"{field_types[f.name]}"
            )


@pytest.mark.parametrize("cls", CONFIG_CLASSES, ids=lambda c: c.__name__)
def test_a_value_given_to_the_builder_reaches_its_option(cls):
    """Each option through the builder of its group, on this class: the chain of super() calls
    forwards it to _set (a marker object: _set checks names, validate() checks values)."""

    class MyCallbacks(Callbacks):
        pass

    marker = object()
    special = {
        "policies": (["p"], lambda v: list(v) == ["p"]),
        "callbacks_class": (MyCallbacks, lambda v: v is MyCallbacks),
    }
    for f in dataclasses.fields(cls):
        config = cls()
        value, check = special.get(f.name, (marker, lambda v: v is marker))
        returned = getattr(config, f.metadata["group"])(**{f.name: value})
        assert returned is config
        assert check(getattr(config, f.name)), f"{cls.__name__}.{f.metadata['group']}({f.name}=...) did not set it"


@pytest.mark.parametrize("cls", [AlgorithmConfig, *ALL_CONFIG_CLASSES], ids=lambda c: c.__name__)
def test_a_config_class_builder_lists_the_options_it_declares(cls):
    """A class that adds an option overrides the builder method of its group, and an override names
    exactly the options its class body declares (its new options and the defaults it redeclares):
    the others it passes on through **kwargs, written once, in the base class that declares them."""
    inherited = {f.name for b in cls.__mro__[1:] if dataclasses.is_dataclass(b) for f in dataclasses.fields(b)}
    for group in GROUPS:
        own = cls.__dict__.get(group)
        names = declared(cls, group)
        if set(names) - inherited:
            assert own is not None, (
                f"{cls.__name__} adds {group} options {sorted(set(names) - inherited)}: override {group}() naming them"
            )
        if own is not None:
            params = list(inspect.signature(own).parameters.values())[1:]
            named = [p.name for p in params if p.kind in NAMED]
            assert set(named) == set(names), f"{cls.__name__}.{group}() names {named}; its class declares {names}"
            assert params[-1].kind is inspect.Parameter.VAR_KEYWORD  # forwards the rest to super()


@pytest.mark.parametrize("cls", [AlgorithmConfig, *ALL_CONFIG_CLASSES], ids=lambda c: c.__name__)
def test_the_named_parameters_are_options_and_the_older_names_are_neither(cls):
    """A builder names only options of its group; RLlib's older names (the legacy tables) stay in
    **kwargs, neither fields nor named parameters (another algorithm's option, which the tables refuse
    for this one, is a field of that algorithm: APPO's kl_coeff)."""
    renamed = {*RENAMED, *NESTED}
    assert not renamed & set(cls._fields())
    for group in GROUPS:
        assert set(named_options(cls, group)) <= set(cls._fields(group)), (cls, group)


# -- NotProvided and None ---------------------------------------------------------------------------------------
def test_an_option_not_provided_keeps_its_value():
    config = PPOConfig().training(lr=1e-3, grad_clip=None, minibatch_size=32).env_runners(num_envs_per_env_runner=3)
    config.training(gamma=0.9).training(lr=NotProvided).env_runners(rollout_fragment_length=16)
    assert (config.lr, config.grad_clip, config.minibatch_size, config.gamma) == (1e-3, None, 32, 0.9)
    assert (config.num_envs_per_env_runner, config.rollout_fragment_length) == (3, 16)


@pytest.mark.parametrize("cls", CONFIG_CLASSES, ids=lambda c: c.__name__)
def test_a_builder_method_called_without_options_changes_nothing(cls):
    config = cls()
    before = {name: getattr(config, name) for name in cls._fields()}
    for group in (*GROUPS, "rollouts"):
        if group != "callbacks":  # callbacks(callbacks_class) takes its one option
            getattr(config, group)()
    assert {name: getattr(config, name) for name in cls._fields()} == before


@pytest.mark.parametrize(
    ("config", "method", "option", "value"),
    [
        (PPOConfig(), "training", "grad_clip", 0.5),
        (APPOConfig(), "training", "minibatch_size", 64),
        (APPOConfig(), "training", "vtrace_clip_rho_threshold", 2.0),
        (SACConfig(), "training", "target_entropy", -1.0),
        (SACConfig(), "training", "alpha_lr", 1e-3),
        (DQNConfig(), "training", "training_intensity", 2.0),
        (PPOConfig(), "evaluation", "evaluation_interval", 2),
        (PPOConfig(), "debugging", "seed", 1),
        (PPOConfig(), "env_runners", "sample_timeout_s", 10.0),
        (PPOConfig(), "resources", "ray_address", "127.0.0.1:6379"),
        (PPOConfig(), "environment", "env", "CartPole-v1"),
    ],
)
def test_none_is_a_value(config, method, option, value):
    getattr(config, method)(**{option: value})
    assert getattr(config, option) == value
    getattr(config, method)(**{option: None})
    assert getattr(config, option) is None


def test_grad_clip_none_turns_clipping_off():
    config = PPOConfig().environment("CartPole-v1").training(grad_clip=0.5).training(grad_clip=None)
    assert config.grad_clip is None
    assert config.checked().grad_clip is None


def test_policies_none_is_one_shared_policy_again():
    config = PPOConfig().multi_agent(policies=["a", "b"])
    assert sorted(config.policies) == ["a", "b"]
    assert config.multi_agent(policies=None).policies is None


# -- older names and unknown names ------------------------------------------------------------------------------
def test_older_names_still_work_through_the_builder():
    config = (
        PPOConfig()
        .training(num_sgd_iter=7, sgd_minibatch_size=32, **{"lambda": 0.9})
        .rollouts(num_envs_per_worker=3, num_rollout_workers=0)
        .resources(num_gpus=0)
    )
    assert (config.num_epochs, config.minibatch_size, config.lambda_, config.num_envs_per_env_runner) == (7, 32, 0.9, 3)
    assert DQNConfig().training(learning_starts=50).num_steps_sampled_before_learning_starts == 50  # SB3's
    assert SACConfig().training(ent_coef="auto_0.5").initial_alpha == 0.5  # SB3's, through SACConfig's table
    assert AlgorithmConfig.rollouts is AlgorithmConfig.env_runners  # RLlib 2.x's name, the same typed options
    assert ESConfig().rollouts(num_es_workers=2).num_es_workers == 2
    with pytest.raises(
        ConfigError, match="'learning_starts' is an option of DQN, QRDQN, SAC, TD3, DDPG, TQC, CrossQ, DroQ and REDQ"
    ):
        PPOConfig().training(learning_starts=50)


@pytest.mark.parametrize(
    ("config", "method", "typo", "suggestion"),
    [
        (PPOConfig(), "training", "clip_parm", "clip_param"),
        (PPOConfig(), "training", "lrr", "lr"),
        (SACConfig(), "training", "alpha_lrr", "alpha_lr"),
        (ESConfig(), "env_runners", "num_es_worker", "num_es_workers"),
        (ESConfig(), "rollouts", "num_es_worker", "num_es_workers"),
        (PPOConfig(), "environment", "env_confg", "env_config"),
        (PPOConfig(), "multi_agent", "policy_mapping", "policy_mapping_fn"),
        (PPOConfig(), "fault_tolerance", "restart_failed_env_runner", "restart_failed_env_runners"),
        (PPOConfig(), "offline_data", "outputs", "output"),
        (PPOConfig(), "resources", "num_torch_thread", "num_torch_threads"),
        (PPOConfig(), "debugging", "seeds", "seed"),
    ],
)
def test_an_unknown_name_is_a_config_error_naming_the_closest(config, method, typo, suggestion):
    with pytest.raises(ConfigError) as info:  # not Python's TypeError
        getattr(config, method)(**{typo: 1})
    assert f"has no option {typo!r}. Did you mean {suggestion!r}?" in str(info.value)


# -- mypy follows an option from the call --------------------------------------------------------------------
SNIPPET = """
from rlarena.algorithms import AlgorithmConfig, DDPGConfig, ESConfig, PPOConfig, SACConfig

PPOConfig().training(lr="x")  # wrong
PPOConfig().environment("CartPole-v1").training(clip_param="0.2")  # wrong
PPOConfig().environment("CartPole-v1").env_runners(num_envs_per_env_runner="8")  # wrong
DDPGConfig().training(policy_delay=1.5)  # wrong
ESConfig().env_runners(num_es_workers="2")  # wrong
config: PPOConfig = PPOConfig().environment("CartPole-v1").env_runners(num_envs_per_env_runner=8).debugging(seed=0)
config = config.training(lr=3e-4, grad_clip=None, clip_param=0.3, num_sgd_iter=3).evaluation(evaluation_interval=None)
AlgorithmConfig().training(grad_clip=None, gamma=0.9, model={"fcnet_hiddens": [64]})
SACConfig().training(target_entropy="auto", tau=0.01).multi_agent(policies=["a", "b"])
"""


def test_mypy_flags_a_wrongly_typed_option(tmp_path: Path):
    """mypy reads the builder's types: the lines marked `# wrong` and only those are errors. (A run
    reuses the repository's .mypy_cache: about a second; about 20 s the first time.)"""
    pytest.importorskip("mypy")
    snippet = tmp_path / "snippet.py"
    snippet.write_text(SNIPPET)
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "--follow-imports=silent", str(snippet)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    errors = {int(m.group(1)) for m in re.finditer(r"snippet\.py:(\d+): error", run.stdout)}
    wrong = {i for i, line in enumerate(SNIPPET.splitlines(), 1) if line.endswith("# wrong")}
    assert errors == wrong, run.stdout + run.stderr
