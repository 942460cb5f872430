"""Names become objects here: experiment files (YAML) and command-line JSON to configs.

An experiment file (tuned_examples/ppo/cartpole.yaml):

    algo: PPO                     # a name from `rlarena list algos`
    env: CartPole-v1              # a Gymnasium id, a register_env name, or module:attribute
    config: {lr: 0.001, ...}      # option names of any builder group (config.update_from_dict)
    stop: {evaluation/episode_return_mean: 475, num_env_steps_sampled_lifetime: 100000}
    # optional: checkpoint_freq, checkpoint_at_end, num_to_keep, checkpoint_score_attribute,
    # checkpoint_score_order, num_samples, name, storage_path

A config value may be a search space: {grid_search: [...]}, {choice: [...]}, {uniform: [lo, hi]},
{loguniform: [lo, hi]}; such options form the sweep's param_space. RLlib's older layout (one
top-level experiment name holding `run:`, `env:`, `config:`, `stop:`) is read too.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym

from rlarena.envs.registry import EnvSpec, env_from_json, registered_envs
from rlarena.errors import ConfigError, EnvError, closest
from rlarena.train.search import domains_from_json, has_domains

if TYPE_CHECKING:  # the algorithms import torch: loaded where a config is built, so that
    from rlarena.algorithms import Algorithm, AlgorithmConfig  # resolve_env serves torch-free commands

RUN_KEYS = ("checkpoint_freq", "checkpoint_at_end", "num_to_keep", "checkpoint_score_attribute",
            "checkpoint_score_order", "num_samples", "name", "storage_path")
SPEC_KEYS = ("algo", "env", "config", "stop", *RUN_KEYS)


def algorithm_class(name: str) -> type[Algorithm]:
    """The algorithm named `name` (case-insensitive: 'ppo' is PPO)."""
    from rlarena.algorithms import ALGORITHMS, get_algorithm_class
    folded = {k.lower(): k for k in ALGORITHMS}
    return get_algorithm_class(folded.get(name.lower(), name))


def resolve_env(name: str) -> EnvSpec:
    """A Gymnasium id or register_env name stays a string (checkpoints store it); 'module:attr' is
    imported (an Env class or creator); 'module:EnvId' imports a module that registers EnvId."""
    if name in registered_envs():
        return name
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise EnvError(f"Env {name!r}: cannot import module {module!r} ({exc}).") from exc
        if attr in gym.registry:
            return attr
        env = env_from_json(name)
        assert env is not None
        return env
    raise EnvError(f"Unknown env {name!r}.{closest(name, registered_envs())} See `rlarena list envs`; "
                   f"an env of your own: module:ClassOrCreator.")


def parse_json(text: str, flag: str, example: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{flag} is not valid JSON ({exc.msg} at character {exc.pos}): {text!r}. "
                          f"Example: {flag} '{example}'") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{flag} must be a JSON object, got {text!r}. Example: {flag} '{example}'")
    return value


def load_spec(path: str | Path) -> dict[str, Any]:
    """Read and check an experiment file; returns a dict with the keys of SPEC_KEYS that it sets."""
    import yaml
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"No experiment file at {str(path)!r}.") from None
    except OSError as exc:
        raise ConfigError(f"Cannot read {str(path)!r}: {exc.strerror}.") from None
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path} is not valid YAML{at}: {problem}.") from None
    if not isinstance(spec, dict):
        raise ConfigError(f"{path} must be a YAML mapping with keys algo, env, config, stop; got "
                          f"{type(spec).__name__}.")
    if len(spec) == 1 and isinstance(next(iter(spec.values())), dict) and "run" in next(iter(spec.values())):
        (name, spec), = spec.items()  # RLlib's layout: {experiment name: {run: PPO, env: ..., ...}}
        spec = {"name": name, **spec}
    if "run" in spec and "algo" not in spec:
        spec["algo"] = spec.pop("run")
    for key in spec:
        if key not in SPEC_KEYS:
            raise ConfigError(f"{path}: unknown key {key!r}.{closest(str(key), SPEC_KEYS)} "
                              f"Valid keys: {', '.join(SPEC_KEYS)}.")
    for key in ("config", "stop"):
        if key in spec and not isinstance(spec[key] or {}, dict):
            raise ConfigError(f"{path}: {key!r} must be a mapping of option: value, got {spec[key]!r}.")
    return {k: v for k, v in spec.items() if v is not None}


def make_config(algo: str, env: str | None, options: dict[str, Any]) -> tuple[AlgorithmConfig, dict[str, Any]]:
    """(config with the fixed options set, param_space of the options given as search spaces)."""
    config = algorithm_class(algo).config_class()
    options = domains_from_json(dict(options))
    env = env or options.pop("env", None)  # RLlib's files put env inside config
    options.pop("env", None)
    if env is not None:
        config.environment(resolve_env(env) if isinstance(env, str) else env)
    param_space = {k: v for k, v in options.items() if has_domains(v)}
    config.update_from_dict({k: v for k, v in options.items() if k not in param_space})
    return config, param_space
