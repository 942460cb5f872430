"""tune.run and tune.Tuner over rlarena.run: Ray Tune's calls, translated, and nothing else.

A trainable is an rlarena algorithm: its name ("PPO"), its class (PPO, or RLlib 1.x's PPOTrainer).
A config is an AlgorithmConfig or RLlib's dict form (`{"env": "CartPole-v1", "lr": ...}`, also
`config.to_dict()`); values that are search domains (tune.grid_search, ...), at the top level of a
dict or set through a builder, become rlarena.run's param_space. Trials run one after another in
this process. Arguments that would change what Ray Tune does (schedulers, search algorithms, Tune
callbacks, retries) are refused in one line; those about Ray's resources and console are accepted
with a notice, since they cannot change results here.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rlarena.errors import ConfigError, RLArenaError, TrainingError, notice
from rlarena.train.search import Choice, GridSearch, LogUniform, Uniform, has_domains
from rlarena.tune.analysis import ExperimentAnalysis, ResultGrid

ISSUE = "for Ray Tune itself: ray.tune.Tuner(rlarena.tune.trainable('PPO'), ...)"
# Tune arguments about Ray's resources, logging and console: accepted, with no effect here.
IGNORED = (
    "resources_per_trial",
    "max_concurrent_trials",
    "reuse_actors",
    "progress_reporter",
    "log_to_file",
    "sync_config",
)
VERBOSITY = {0: 0, 1: 1, 2: 1, 3: 2}  # Tune's 0-3 onto rlarena.run's 0 (silent), 1 (rows), 2 (+ learner stats)


def _refuse(call: str, names: list[str]) -> ConfigError:
    return ConfigError(
        f"{call}({names[0]}=...) is not available in rlarena.tune, Ray Tune's local subset "
        f"(trials run one after another in this process; {ISSUE}). Remove "
        f"{'it' if len(names) == 1 else ', '.join(names)}."
    )


def algorithm_class(trainable: Any) -> type:
    """The rlarena algorithm a trainable names: "PPO" (RLlib's names too), PPO, PPOTrainer."""
    from rlarena.algorithms import Algorithm, get_algorithm_class

    if isinstance(trainable, str):
        return get_algorithm_class(trainable)
    if isinstance(trainable, type) and issubclass(trainable, Algorithm):
        return trainable
    raise ConfigError(
        f"rlarena.tune runs rlarena algorithms: pass 'PPO', PPO or PPOTrainer, not {trainable!r} "
        f"(function and class trainables of your own need Ray Tune; {ISSUE})."
    )


# The options config.to_dict() writes in a saved form: classes and functions as {"callable": "module:name"}
# (or {"unnamed": name} for a lambda), policies as {id: {"policy_class": ..., "config": {...}}}.
_SAVED_FORM_KEYS = ("env", "callbacks_class", "policy_mapping_fn", "policies")


def _in_saved_form(key: str, value: Any) -> bool:
    if key == "policies":
        return isinstance(value, dict) and any(isinstance(s, dict) and "policy_class" in s for s in value.values())
    return isinstance(value, dict) and set(value) in ({"callable"}, {"unnamed"})


def _resolve_refs(config_cls: type, config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` with the options in config.to_dict()'s saved form read back, as from_dict reads a
    checkpoint: to rlarena's built-ins and objects registered in this process. Anything else (a
    lambda, a class of an untrusted module) is refused in one line."""
    from rlarena.refs import Unnamed

    out = dict(config)
    for key in _SAVED_FORM_KEYS:
        if not _in_saved_form(key, config.get(key)):
            continue
        try:
            value = getattr(config_cls.from_dict({key: config[key]}), key)
        except RLArenaError:
            value = None
        specs = value.values() if key == "policies" and value is not None else ()
        if value is None or isinstance(value, Unnamed) or any(isinstance(s.policy_class, Unnamed) for s in specs):
            raise ConfigError(
                f"config[{key!r}] is {config[key]!r}: config.to_dict() stores functions and classes "
                f"by name, and this one cannot be read back here. Pass the config object itself "
                f"(tune.run('PPO', config=config), tune.Tuner('PPO', param_space=config)), or "
                f"trust a module-level function or class with rlarena.register_trusted(obj)."
            )
        out[key] = value
    return out


def config_from_dict(algo_cls: type, options: Mapping[str, Any]) -> Any:
    """`algo_cls`'s config from its options by name: RLlib's dict form ({"env": ..., "lr": ...}, old
    names too) or config.to_dict()'s, whose saved functions and classes are read back as a checkpoint's
    are (built-ins and objects registered in this process only)."""
    config_cls = algo_cls.config_class
    return config_cls().update_from_dict(_resolve_refs(config_cls, options))


def _stand_in(domain: Any, default: Any) -> Any:
    """A value of `domain` for the base config, which is validated before the trials set their own."""
    if isinstance(domain, GridSearch | Choice):
        return domain.values[0]
    if isinstance(domain, Uniform | LogUniform):
        return domain.low
    return default  # a nested dict holding domains (e.g. model)


def _config_and_space(algo_cls: type, config: Any) -> tuple[Any, dict[str, Any]]:
    """(the base AlgorithmConfig, the param_space of its search domains)."""
    from rlarena.algorithms import AlgorithmConfig

    config_cls = algo_cls.config_class
    if config is None:
        return config_cls(), {}
    if isinstance(config, AlgorithmConfig):
        if not isinstance(config, config_cls):
            raise ConfigError(
                f"config is a {type(config).__name__}, but the trainable is {algo_cls.__name__}, "
                f"which takes a {config_cls.__name__}."
            )
        base, defaults = config.copy(), config_cls()
        space = {f.name: getattr(base, f.name) for f in dataclasses.fields(base) if has_domains(getattr(base, f.name))}
        for name, domain in space.items():
            setattr(base, name, _stand_in(domain, getattr(defaults, name)))
        return base, space
    if isinstance(config, Mapping):
        values = _resolve_refs(config_cls, config)
        space = {k: v for k, v in values.items() if has_domains(v)}
        base = config_cls().update_from_dict({k: v for k, v in values.items() if k not in space})
        stand_ins = {k: _stand_in(v, None) for k, v in space.items()}
        return base.update_from_dict({k: v for k, v in stand_ins.items() if v is not None}), space
    raise ConfigError(
        f"config must be an AlgorithmConfig such as PPOConfig() or a dict of options, got {type(config).__name__}."
    )


def _tune_stop(stop: Any) -> Any:
    """Tune calls a stop function, or a Stopper object, with (trial_id, result), and a Stopper's
    stop_all() ends every trial; rlarena.run calls fn(iteration, result)."""
    if stop is None or isinstance(stop, Mapping) or not callable(stop):
        return stop
    stop_all = getattr(stop, "stop_all", None)
    return lambda iteration, result: bool(stop(result["trial_id"], result) or (stop_all and stop_all()))


def _score_attr(attr: str | None) -> tuple[str | None, str]:
    """Tune's checkpoint_score_attr: "min-" in front means lower is better."""
    if attr is not None and attr.startswith("min-"):
        return attr[4:], "min"
    return attr, "max"


def _run(
    trainable: Any,
    config: Any,
    *,
    call: str,
    metric: str | None,
    mode: str | None,
    stop: Any,
    num_samples: int,
    storage_path: str | os.PathLike | None,
    name: str | None,
    checkpoint_freq: int,
    checkpoint_at_end: bool,
    num_to_keep: int | None,
    score_attribute: str | None,
    score_order: str,
    resume: Any,
    verbose: int,
) -> ExperimentAnalysis:
    from rlarena.train.experiment import run as run_experiment

    if mode is not None and mode not in ("max", "min"):
        raise ConfigError(f"{call}: mode={mode!r}; use 'max' or 'min'.")
    if verbose not in VERBOSITY:
        raise ConfigError(f"{call}: verbose={verbose!r}; use 0, 1, 2 or 3.")
    if resume not in (True, False, "AUTO", "LOCAL"):
        raise ConfigError(
            f"{call}: resume={resume!r}; use True (or 'AUTO') to continue the run named by name=, "
            f"False to start a new one."
        )
    algo_cls = algorithm_class(trainable)
    base, space = _config_and_space(algo_cls, config)
    start = time.time()
    results = run_experiment(
        base,
        stop=_tune_stop(stop),
        param_space=space or None,
        num_samples=num_samples,
        checkpoint_freq=checkpoint_freq,
        checkpoint_at_end=checkpoint_at_end,
        num_to_keep=num_to_keep,
        # metric= also ranks the kept checkpoints (Tune keeps the most recent unless checkpoint_score_attr
        # is given) and is checked to be in the results after the first iteration, as Tune checks it
        checkpoint_score_attribute=score_attribute or metric,
        checkpoint_score_order=score_order if score_attribute else (mode or "max"),
        storage_path="runs" if storage_path is None else storage_path,  # rlarena.run's default; Ray's: ~/ray_results
        name=name,
        resume=bool(resume),
        verbose=VERBOSITY[verbose],
    )
    return ExperimentAnalysis(results, metric, mode, {"start_time": start, "timestamp": time.time()})


def run(
    run_or_experiment: Any,
    *,
    config: Any = None,
    stop: Any = None,
    metric: str | None = None,
    mode: str | None = None,
    name: str | None = None,
    num_samples: int = 1,
    storage_path: str | None = None,
    local_dir: str | None = None,
    checkpoint_freq: int = 0,
    checkpoint_at_end: bool = False,
    keep_checkpoints_num: int | None = None,
    checkpoint_score_attr: str | None = None,
    resume: bool | str = False,
    verbose: int = 3,
    raise_on_failed_trial: bool = True,
    **other: Any,
) -> ExperimentAnalysis:
    """Ray Tune's tune.run: train `run_or_experiment` ("PPO", PPO, PPOTrainer) with `config` until
    `stop`, checkpointing every `checkpoint_freq` iterations and at the end; returns an
    ExperimentAnalysis. Defaults are Tune's (no checkpoint unless asked, verbose=3), except the
    directory: storage_path (or Tune's older local_dir) defaults to rlarena's "runs".
    """
    unsupported = [k for k in other if k not in IGNORED]
    if unsupported:
        raise _refuse("tune.run", unsupported)
    for key in other:
        notice(f"tune.run({key}=...) has no effect in rlarena.tune: trials run one after another in this process.")
    if local_dir is not None and storage_path is not None:
        raise ConfigError("tune.run: pass storage_path or local_dir (its older name), not both.")
    score_attribute, score_order = _score_attr(checkpoint_score_attr)
    analysis = _run(
        run_or_experiment,
        config,
        call="tune.run",
        metric=metric,
        mode=mode,
        stop=stop,
        num_samples=num_samples,
        storage_path=storage_path or local_dir,
        name=name,
        checkpoint_freq=checkpoint_freq,
        checkpoint_at_end=checkpoint_at_end,
        num_to_keep=keep_checkpoints_num,
        score_attribute=score_attribute,
        score_order=score_order,
        resume=resume,
        verbose=verbose,
    )
    failed = [t for t in analysis.trials if t.status == "ERROR"]
    if failed and raise_on_failed_trial:
        raise TrainingError(
            f"Trials did not complete: {', '.join(f'{t.trial_id} ({t.error})' for t in failed)}. "
            f"Their logs: {analysis.experiment_path}"
        )
    return analysis


@dataclass
class CheckpointConfig:
    """air.CheckpointConfig / tune.CheckpointConfig."""

    num_to_keep: int | None = None
    checkpoint_score_attribute: str | None = None
    checkpoint_score_order: str = "max"
    checkpoint_frequency: int = 0
    checkpoint_at_end: bool | None = None  # None: Ray's default, no checkpoint at the end


@dataclass
class RunConfig:
    """air.RunConfig / tune.RunConfig (local_dir is the older name of storage_path)."""

    name: str | None = None
    storage_path: str | None = None
    stop: Any = None
    checkpoint_config: CheckpointConfig | None = None
    verbose: int = 1
    local_dir: str | None = None
    callbacks: list | None = None
    failure_config: Any = None

    def __post_init__(self) -> None:
        for key in ("callbacks", "failure_config"):
            if getattr(self, key) is not None:
                raise _refuse("RunConfig", [key])
        if self.local_dir is not None:
            if self.storage_path is not None:
                raise ConfigError("RunConfig: pass storage_path or local_dir (its older name), not both.")
            self.storage_path, self.local_dir = self.local_dir, None


@dataclass
class TuneConfig:
    """tune.TuneConfig: the metric and mode that rank trials, and how many samples to draw."""

    metric: str | None = None
    mode: str | None = None
    num_samples: int = 1
    search_alg: Any = None
    scheduler: Any = None
    max_concurrent_trials: int | None = None

    def __post_init__(self) -> None:
        for key in ("search_alg", "scheduler"):
            if getattr(self, key) is not None:
                raise _refuse("TuneConfig", [key])


class Tuner:
    """Ray Tune's Tuner: Tuner("PPO", param_space=config, tune_config=..., run_config=...).fit().

    checkpoint_config= is also taken here directly, as the Connect Four blog passes it (Ray takes it
    inside run_config=RunConfig(checkpoint_config=...)).
    """

    def __init__(
        self,
        trainable: Any,
        *,
        param_space: Any = None,
        tune_config: TuneConfig | None = None,
        run_config: RunConfig | None = None,
        checkpoint_config: CheckpointConfig | None = None,
    ):
        self.trainable = trainable
        self.param_space = param_space
        self.tune_config = tune_config or TuneConfig()
        self.run_config = run_config or RunConfig()
        if checkpoint_config is not None and self.run_config.checkpoint_config is not None:
            raise ConfigError("Tuner: pass checkpoint_config once, directly or in run_config, not both.")
        self.checkpoint_config = checkpoint_config or self.run_config.checkpoint_config or CheckpointConfig()
        self._resume = False

    @classmethod
    def restore(cls, path: str | os.PathLike, trainable: Any, *, param_space: Any = None, **kwargs: Any) -> Tuner:
        """Continue the experiment in `path` (its unfinished trials, from their last checkpoints)."""
        unknown = [k for k in kwargs if k not in ("resume_unfinished", "resume_errored", "restart_errored")]
        if unknown:
            raise _refuse("Tuner.restore", unknown)
        path = os.path.abspath(os.fspath(path))
        if param_space is None:  # Ray reads it from the experiment: here, the config a trial ran with
            from rlarena.train.results import Results

            saved = next((t.config for t in Results.from_path(path).trials if t.config), None)
            if saved is None:
                raise ConfigError(f"Tuner.restore({path!r}): no trial there has run yet; pass param_space= again.")
            param_space = {k: v for k, v in saved.items() if k != "algo"}
        tuner = cls(
            trainable,
            param_space=param_space,
            run_config=RunConfig(name=os.path.basename(path), storage_path=os.path.dirname(path)),
        )
        tuner._resume = True
        return tuner

    def fit(self) -> ResultGrid:
        tc, rc, cc = self.tune_config, self.run_config, self.checkpoint_config
        analysis = _run(
            self.trainable,
            self.param_space,
            call="Tuner",
            metric=tc.metric,
            mode=tc.mode,
            stop=rc.stop,
            num_samples=tc.num_samples,
            storage_path=rc.storage_path,
            name=rc.name,
            checkpoint_freq=cc.checkpoint_frequency,
            checkpoint_at_end=bool(cc.checkpoint_at_end),
            num_to_keep=cc.num_to_keep,
            score_attribute=cc.checkpoint_score_attribute,
            score_order=cc.checkpoint_score_order,
            resume=self._resume,
            verbose=rc.verbose,
        )
        return ResultGrid(
            analysis
        )  # like Ray, a failed trial is in the grid's errors (rlarena.run raises when all fail)
