"""Names become objects here: experiment files (YAML) and command-line JSON to configs.

An experiment file (tuned_examples/ppo/cartpole.yaml):

    algo: PPO                     # a name from `rlarena list algos`
    env: CartPole-v1              # a Gymnasium id, a register_env name, or module:attribute (--trust-module)
    config: {lr: 0.001, ...}      # option names of any builder group (config.update_from_dict)
    stop: {evaluation/episode_return_mean: 475, num_env_steps_sampled_lifetime: 100000}
    # optional: checkpoint_freq, checkpoint_at_end, num_to_keep, checkpoint_score_attribute,
    # checkpoint_score_order, num_samples, name, storage_path

A config value may be a search space: {grid_search: [...]}, {choice: [...]}, {uniform: [lo, hi]},
{loguniform: [lo, hi]}; such options form the sweep's param_space. RLlib's older layout (one
top-level experiment name holding `run:`, `env:`, `config:`, `stop:`) is read too, with RLlib's older
option names (`num_sgd_iter`, `lambda`, `framework`, ...; algorithms/legacy.py) and stop keys
(`episode_reward_mean`, `sampler_results/...`; train/stop.py): its tuned-example files run unchanged
(tuned_examples/rllib/).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym

from rlarena.envs.registry import EnvSpec, registered_envs
from rlarena.errors import ConfigError, EnvError, UntrustedCodeError, closest
from rlarena.games.base import GAMES
from rlarena.refs import Trust
from rlarena.train.search import domains_from_json, has_domains

if TYPE_CHECKING:  # the algorithms import torch: loaded where a config is built, so that
    from rlarena.algorithms import Algorithm, AlgorithmConfig  # resolve_env serves torch-free commands

RUN_KEYS = (
    "checkpoint_freq",
    "checkpoint_at_end",
    "num_to_keep",
    "checkpoint_score_attribute",
    "checkpoint_score_order",
    "num_samples",
    "name",
    "storage_path",
)
SPEC_KEYS = ("algo", "env", "config", "stop", *RUN_KEYS)
MAX_SPEC_BYTES = 2**20  # experiment files are a few hundred bytes


def algorithm_class(name: str) -> type[Algorithm]:
    """The algorithm named `name` (case-insensitive: 'ppo' is PPO)."""
    from rlarena.algorithms import ALGORITHMS, get_algorithm_class

    folded = {k.lower(): k for k in ALGORITHMS}
    return get_algorithm_class(folded.get(name.lower(), name))


def resolve_env(name: str, trust: Trust | None = None) -> EnvSpec:
    """A Gymnasium id or register_env name stays a string (checkpoints store it); 'module:attr' is
    imported (an Env class or creator); 'module:EnvId' imports a module that registers EnvId.

    `trust` None: the user typed the name (--env), which trusts its module. A name read from a file
    imports its module only when `trust` (--trust-module) trusts it: a file from a stranger runs no code.
    """
    if name in registered_envs() or name in GAMES:  # GAMES: the two-player games AlphaZero plays
        return name
    if ":" in name:
        module, _, attr = name.partition(":")
        if not module or not all(part.isidentifier() for part in module.split(".")):
            raise EnvError(
                f"Env {name!r}: {module!r} is not a module name (expected module:EnvClass, e.g. "
                f"my_project.envs:GridEnv)."
            )
        if trust is not None and not trust.trusts_module(module):
            raise UntrustedCodeError(trust.refusal("env", name, module))
        try:
            obj: Any = importlib.import_module(module)
        except ImportError as exc:
            raise EnvError(f"Env {name!r}: cannot import module {module!r} ({exc}).") from exc
        if attr in gym.registry:
            return attr
        try:
            for part in attr.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            raise EnvError(
                f"Env {name!r}: module {module!r} has no {attr!r}, and {attr!r} is not a Gymnasium id it registered."
            ) from None
        return obj  # type: ignore[no-any-return]
    raise EnvError(
        f"Unknown env {name!r}.{closest(name, [*registered_envs(), *GAMES])} See `rlarena list envs`; "
        f"an env of your own: module:ClassOrCreator."
    )


def parse_json(text: str, flag: str, example: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{flag} is not valid JSON ({exc.msg} at character {exc.pos}): {text!r}. Example: {flag} '{example}'"
        ) from None
    if not isinstance(value, dict):
        raise ConfigError(f"{flag} must be a JSON object, got {text!r}. Example: {flag} '{example}'")
    return value


def _yaml_loader() -> Any:
    """PyYAML's SafeLoader, reading 3e-4 and 1e6 as floats (YAML 1.2 does; PyYAML's 1.1 rules read them as
    strings, and RLlib's files write `lr: 5e-5`). Tags stay the safe ones: no Python objects."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            # an alias repeats a node: nine nested ones make a 500-byte file a billion values once
            # written out (params.json, the checkpoint); experiment files have no need for them
            if self.check_event(yaml.AliasEvent):
                raise yaml.composer.ComposerError(
                    None, None, "aliases (*name) are not read in experiment files", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(
            r"""^(?:
        [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
            re.VERBOSE,
        ),
        list("-+0123456789."),
    )
    return Loader


def load_spec(path: str | Path) -> dict[str, Any]:
    """Read and check an experiment file; returns a dict with the keys of SPEC_KEYS that it sets."""
    import yaml

    path = Path(path)
    try:
        if path.stat().st_size > MAX_SPEC_BYTES:
            raise ConfigError(f"{path} is larger than {MAX_SPEC_BYTES // 2**20} MiB: not an experiment file.")
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"No experiment file at {str(path)!r}.") from None
    except OSError as exc:
        raise ConfigError(f"Cannot read {str(path)!r}: {exc.strerror}.") from None
    try:
        spec = yaml.load(text, Loader=_yaml_loader())  # a SafeLoader subclass: data only
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path} is not valid YAML{at}: {problem}.") from None
    if not isinstance(spec, dict):
        raise ConfigError(
            f"{path} must be a YAML mapping with keys algo, env, config, stop; got {type(spec).__name__}."
        )
    if len(spec) == 1 and isinstance(next(iter(spec.values())), dict) and "run" in next(iter(spec.values())):
        ((name, spec),) = spec.items()  # RLlib's layout: {experiment name: {run: PPO, env: ..., ...}}
        spec = {"name": name, **spec}
    if "run" in spec and "algo" not in spec:
        spec["algo"] = spec.pop("run")
    for key in spec:
        if key not in SPEC_KEYS:
            raise ConfigError(
                f"{path}: unknown key {key!r}.{closest(str(key), SPEC_KEYS)} Valid keys: {', '.join(SPEC_KEYS)}."
            )
    for key in ("config", "stop"):
        if key in spec and not isinstance(spec[key] or {}, dict):
            raise ConfigError(f"{path}: {key!r} must be a mapping of option: value, got {spec[key]!r}.")
    return {k: v for k, v in spec.items() if v is not None}


def confine_experiment(
    config: AlgorithmConfig, param_space: dict[str, Any], source: str, caller: set[str], num_samples: int, how: str = ""
) -> dict[str, Any]:
    """An experiment file's config and search space, made to choose nothing outside the file (as a
    checkpoint's, AlgorithmConfig.confine): its "where" and "how many" options go back to their
    defaults, with a notice, unless the caller passed them (`caller`: option names given on the command
    line); its sizes, every search value included, and its number of trials are bounded
    (rlarena.limits). Returns the search space without the options the file may not set."""
    from rlarena import limits
    from rlarena.errors import notice
    from rlarena.train.search import GridSearch, generate_variants

    roles = config.option_roles()
    outside = sorted(
        k for k in param_space if roles.get(k, ("computes",))[0] in ("where", "how many") and k not in caller
    )
    config.confine(source, caller, how)
    if outside:
        notice(
            f"{source} searches {', '.join(outside)}: a file does not choose where anything is read or written, "
            f"which machine or cluster is contacted, or how many processes or threads run, so the search leaves "
            f"{'it' if len(outside) == 1 else 'them'} out. Pass a value yourself with --config to set one."
        )
    space = {k: v for k, v in param_space.items() if k not in outside}
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 1:
        raise ConfigError(f"{source}: num_samples={num_samples!r} must be a whole number >= 1.")
    grid = 1
    for value in space.values():
        grid *= len(value.values) if isinstance(value, GridSearch) else 1
    limits.check(source, "num_samples", grid * num_samples, "MAX_SAMPLES")
    for params in generate_variants(space, num_samples, config.seed):
        config.copy().update_from_dict(params).check_sizes(source, caller)
    return space


def make_config(
    algo: str, env: str | None, options: dict[str, Any], env_trust: Trust | None = None
) -> tuple[AlgorithmConfig, dict[str, Any]]:
    """(config with the fixed options set, param_space of the options given as search spaces).
    env_trust: the env name was read from a file (see resolve_env)."""
    config = algorithm_class(algo).config_class()
    options = domains_from_json(dict(options))
    env = env or options.pop("env", None)  # RLlib's files put env inside config
    options.pop("env", None)
    if env is not None:
        config.environment(resolve_env(env, env_trust) if isinstance(env, str) else env)
    param_space = {k: v for k, v in options.items() if has_domains(v)}
    config.update_from_dict({k: v for k, v in options.items() if k not in param_space})
    return config, param_space
