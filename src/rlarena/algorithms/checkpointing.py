"""Checkpoints of an algorithm: what `save()` writes beside the arrays, and what `from_checkpoint()`
reads back before it builds anything.

Reading treats the checkpoint as a stranger's file (see docs/files-from-others.md): the classes and
functions its config names resolve only as trusted (rlarena.refs), its "where" and "how many" options
take their defaults unless the caller passes them (AlgorithmConfig.confine), its sizes are bounded
before anything is allocated (AlgorithmConfig.check_sizes; networks are counted as they are built, in
the `limits.loading` block the caller opens with `Loaded.source`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rlarena._version import __version__
from rlarena.algorithms.config import AlgorithmConfig
from rlarena.algorithms.registry import get_algorithm_class
from rlarena.checkpoint import read_checkpoint
from rlarena.envs.registry import EnvSpec, ref_to_json
from rlarena.envs.spaces import space_from_json, space_to_json
from rlarena.errors import CheckpointError, ConfigError
from rlarena.multiagent.policy_spec import PolicySpec
from rlarena.policies.torch_policy import TrainablePolicy
from rlarena.refs import Trust
from rlarena.rollout.factory import seed_for

if TYPE_CHECKING:
    from rlarena.algorithms.algorithm import Algorithm


def _objects_in(value: Any) -> list[Any]:
    """The classes and functions in what a caller passes to from_checkpoint (env, config_overrides
    values, PolicySpecs and RLlib's (cls, obs_space, act_space, config) tuples among them)."""
    if isinstance(value, PolicySpec):
        return [value.policy_class]
    if isinstance(value, dict):
        return [obj for v in value.values() for obj in _objects_in(v)]
    if isinstance(value, list | tuple):
        return [obj for v in value for obj in _objects_in(v)]
    return [value]


def saved_config(
    config_class: type[AlgorithmConfig], meta: dict[str, Any], trust: Trust, replaced: set[str]
) -> AlgorithmConfig:
    """The config a checkpoint or Hub package saved: meta["config"] read with `trust`, each policy
    given the spaces it was built with (meta["policies"]; added policies too). The options in
    `replaced` are left out: the caller sets them, so they are neither read nor resolved."""
    data = {k: v for k, v in meta["config"].items() if k not in replaced or k == "model"}
    if "model" in replaced and isinstance(data.get("model"), dict):
        # the caller's model options go over the saved ones (merged, as RLlib's training(model=...)); a
        # custom_model the caller passes again is not resolved from the file
        data["model"] = {k: v for k, v in data["model"].items() if k != "custom_model"}
    config = config_class.from_dict(data, trust)
    saved_policies = meta.get("policies") or {}
    for pid, spec in (config.policies or {}).items():
        saved = saved_policies.get(pid)
        if saved:
            spec.observation_space = space_from_json(saved["observation_space"])
            spec.action_space = space_from_json(saved["action_space"])
    return config


def metadata(algo: Algorithm, state: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint holds beside its arrays: the algorithm's name, the config, the counters, the
    episode window, the RNG states and every policy's class and spaces (from algo.get_state())."""
    return {
        "algorithm": type(algo).__name__,
        "rlarena_version": __version__,
        "config": algo.config.to_dict(),
        **{k: state[k] for k in ("counters", "episode_window", "rng")},
        "policies": {
            pid: {
                "policy_class": None if spec["policy_class"] is None else ref_to_json(spec["policy_class"]),
                "observation_space": space_to_json(spec["observation_space"]),
                "action_space": space_to_json(spec["action_space"]),
            }
            for pid, spec in state["policies"].items()
        },
    }


@dataclass
class Loaded:
    """A checkpoint read and checked, ready to build: build `algo_class(config)` inside
    `limits.loading(source, bounded=bounded)`, then restore it from `meta` and `arrays`."""

    algo_class: Any  # the saved algorithm's class (a subclass of rlarena.algorithms.Algorithm)
    config: AlgorithmConfig  # validated: trusted names only, no path/cluster/process count of the file's
    meta: dict[str, Any]
    arrays: dict[str, dict[str, np.ndarray]]
    source: str  # "Checkpoint '...'", for messages
    bounded: bool  # whether the networks it builds are bounded (the caller did not pass `model`)


def load(
    path: str | Path,
    env: EnvSpec | None = None,
    config_overrides: dict[str, Any] | None = None,
    trusted_modules: Iterable[str] | str | None = None,
    trust: Trust | None = None,
) -> Loaded:
    """Read the checkpoint at `path` and its config (see Algorithm.from_checkpoint for the arguments)."""
    overrides = dict(config_overrides or {})
    base = trust or Trust()
    modules = [trusted_modules] if isinstance(trusted_modules, str) else list(trusted_modules or ())
    trust = Trust.create(
        [*base.modules, *modules],
        [*base.objects.values(), *_objects_in([env, overrides])],
        source=f"checkpoint {str(path)!r}",
    )
    meta, arrays = read_checkpoint(path)
    missing = [k for k in ("algorithm", "config", "counters", "episode_window", "rng") if k not in meta]
    if missing or not isinstance(meta["config"], dict):
        raise CheckpointError(
            f"Checkpoint {str(path)!r} is corrupted: its metadata lacks {', '.join(missing) or 'a valid config'}."
        )
    try:
        algo_cls = get_algorithm_class(meta["algorithm"])
    except ConfigError as exc:
        raise CheckpointError(f"Checkpoint {str(path)!r}: {exc}") from None
    caller = set(overrides) | ({"env"} if env is not None else set())
    source = f"Checkpoint {str(path)!r}"
    try:
        config = saved_config(algo_cls.config_class, meta, trust, caller)
    except (ConfigError, TypeError, KeyError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"Checkpoint {str(path)!r} has a config this rlarena cannot read: {exc}") from None
    config.confine(source, caller)  # no path, cluster or process count from the file
    if env is not None:
        config.env = env
    config.update_from_dict(overrides)
    if config.env is None and config.input_ is None and algo_cls.data_mode == "offline":
        raise CheckpointError(
            f"Checkpoint {str(path)!r} holds a {algo_cls.__name__} agent trained on logged data "
            f"without an env, and a checkpoint does not choose what is read: pass the data "
            f"(config_overrides={{'input_': DIR}}) to continue training, or an env to play it "
            f"in (env=...)."
        )
    try:
        config.validate()
    except ConfigError as exc:  # a value edited into the file (or a bad override): say where it came from
        raise CheckpointError(f"Checkpoint {str(path)!r}: {exc}") from None
    config.check_sizes(source, caller)  # before anything is allocated; networks are counted as built
    return Loaded(algo_cls, config, meta, arrays, source, bounded="model" not in caller)


def read_own(algo: Algorithm, path: str | Path) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    """(meta, arrays) of a checkpoint of `algo`'s own algorithm and policies (Algorithm.restore)."""
    meta, arrays = read_checkpoint(path)
    where, name = f"Checkpoint {str(path)!r}", type(algo).__name__
    if meta.get("algorithm") != name:
        raise CheckpointError(
            f"{where} holds a {meta.get('algorithm')} checkpoint; this is a {name}. "
            f"Load it with Algorithm.from_checkpoint()."
        )
    policies = meta.get("policies")
    saved: dict[str, Any] = policies if isinstance(policies, dict) else {}
    if set(saved) != set(algo.policies):
        raise CheckpointError(
            f"{where} holds policies {sorted(saved)}; this algorithm has {sorted(algo.policies)}. "
            f"Load it with Algorithm.from_checkpoint()."
        )
    return meta, arrays


def restore_counters(algo: Algorithm, meta: dict[str, Any]) -> None:
    """The counters, episode window and RNG states a checkpoint (or get_state()) saved, onto `algo`."""
    try:
        counters = meta["counters"]
        algo.iteration = int(counters["iteration"])
        algo.num_env_steps_sampled_lifetime = int(counters["num_env_steps_sampled_lifetime"])
        algo.time_total_s = float(counters["time_total_s"])
        algo.num_evaluations = int(counters["num_evaluations"])
        algo.episode_stats.lifetime = int(counters["num_episodes_lifetime"])
        algo.episode_stats.window.clear()  # restore() and set_state() replace a live window
        algo.episode_stats.window.extend(tuple(p) for p in meta["episode_window"])
        for pid, state in meta["rng"]["policies"].items():
            policy = algo.policies[pid]
            if not isinstance(policy, TrainablePolicy):
                raise TypeError(f"policy {pid!r} is a {type(policy).__name__}, which has no random stream")
            policy.rng.bit_generator.state = state
        algo.rng.bit_generator.state = meta["rng"]["algorithm"]
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise CheckpointError(f"Checkpoint metadata is corrupted ({type(exc).__name__}: {exc}).") from exc


def state_arrays(algo: Algorithm) -> dict[str, dict[str, np.ndarray]]:
    """Every array a restored algorithm needs: torch's RNG state, each policy's weights (and filter
    state), each learner's registered state (Learner.get_state)."""
    arrays = {"rng": {"torch": torch.get_rng_state().numpy()}}
    for pid, policy in algo.policies.items():
        state = policy.get_state()
        if state:
            arrays[f"policy.{pid}"] = state
    for learner in algo.learners.values():
        arrays.update(learner.get_state())
    for group, (get, _) in algo._states.items():
        arrays[group] = get()
    return arrays


def get_state(algo: Algorithm) -> dict[str, Any]:
    """Algorithm.get_state(): counters, the episode window, the policies (class, spaces), the policies
    in training, the RNG states, and the arrays (Algorithm._state_arrays)."""
    return {
        "counters": {
            "iteration": algo.iteration,
            "num_env_steps_sampled_lifetime": algo.num_env_steps_sampled_lifetime,
            "time_total_s": algo.time_total_s,
            "num_evaluations": algo.num_evaluations,
            "num_episodes_lifetime": algo.episode_stats.lifetime,
        },
        "episode_window": list(algo.episode_stats.window),
        "policies": {
            pid: {
                "policy_class": None if isinstance(p, algo.policy_class) else type(p),
                "observation_space": p.observation_space,
                "action_space": p.action_space,
            }
            for pid, p in algo.policies.items()
        },
        "policies_to_train": list(algo.policies_to_train),
        "rng": {
            "algorithm": algo.rng.bit_generator.state,
            "policies": {
                pid: p.rng.bit_generator.state for pid, p in algo.policies.items() if isinstance(p, TrainablePolicy)
            },
        },
        "arrays": algo._state_arrays(),
    }


def set_state(algo: Algorithm, state: dict[str, Any]) -> None:
    """Algorithm.set_state(): the league put back as it was (policies added since removed, removed ones
    built again), then Algorithm._restore."""
    if not isinstance(state, dict) or not {"counters", "policies", "arrays", "rng"} <= set(state):
        raise ConfigError(
            f"set_state() takes what {type(algo).__name__}.get_state() returned (a dict with "
            f"counters, policies, arrays and rng), got {type(state).__name__}."
        )
    policies = state["policies"]
    if algo.is_multi_agent:
        for pid in [p for p in algo.policies if p not in policies]:
            algo.remove_policy(pid)
        for pid, spec in policies.items():
            if pid not in algo.policies:
                algo.add_policy(
                    pid,
                    spec["policy_class"],
                    observation_space=spec["observation_space"],
                    action_space=spec["action_space"],
                )
        if "policies_to_train" in state:
            algo.set_policies_to_train(state["policies_to_train"], remember=algo.config.policies_to_train is not None)
    algo._restore(state, state["arrays"])


def restore(algo: Algorithm, meta: dict[str, Any], arrays: dict[str, dict[str, np.ndarray]]) -> None:
    """Weights, each learner's state, torch's RNG, then the counters and RNGs of `meta`; episodes under
    way start afresh (env state cannot be saved in general), reproducibly for this iteration."""
    try:
        for pid, policy in algo.policies.items():
            if f"policy.{pid}" in arrays or isinstance(policy, TrainablePolicy):
                policy.set_state(arrays[f"policy.{pid}"])
        algo._restore_learners(arrays, algo.restore_missing_ok)
        for group, (_, set_) in algo._states.items():
            set_(arrays[group])
        torch.set_rng_state(torch.from_numpy(arrays["rng"]["torch"].copy()))
    except (KeyError, RuntimeError, ValueError, TypeError, IndexError) as exc:
        detail = " ".join(str(exc).split())  # torch's state_dict errors span lines: keep the error one line
        raise CheckpointError(
            f"Checkpoint does not match this {type(algo).__name__} ({type(exc).__name__}: "
            f"{detail}). Was it saved with a different model or algorithm?"
        ) from exc
    restore_counters(algo, meta)
    # this process's runner from seed_for(seed, 2, iteration), runner i elsewhere from (..., i)
    algo.env_runner_group.reset(lambda i: seed_for(algo.config.seed, 2, algo.iteration, *((i,) if i else ())))
