"""rlarena.run: train one config (or a sweep of them) with stop criteria, checkpoints, logs, resume.

    results = rlarena.run(config, stop={"episode_return_mean": 475}, checkpoint_freq=10,
                          storage_path="runs", name="cartpole")

Layout on disk (Ray Tune's):
    runs/cartpole/experiment_state.json             trials, their params and status (for resume)
    runs/cartpole/PPO_CartPole-v1_00000/            one directory per trial:
        params.json, result.json, progress.csv, events.out.tfevents.*, learning_curve.png,
        checkpoints/checkpoint_000010/ ...

Nothing is written until a trial's first iteration has produced a result, so a mistyped stop key
(reported after that iteration) leaves no half-made run behind. Ctrl-C asks the trial to stop after
the current iteration and write a checkpoint (a second Ctrl-C stops at once); resume=True continues
every unfinished trial from its last checkpoint, also after `kill -9`.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

from rlarena.algorithms.algorithm import Algorithm
from rlarena.algorithms.config import AlgorithmConfig
from rlarena.envs.registry import env_name
from rlarena.errors import CheckpointError, ConfigError
from rlarena.refs import Trust
from rlarena.train.checkpoints import CheckpointManager
from rlarena.train.loggers import (
    PARAMS_FILE,
    TrialLogger,
    read_results,
    write_json_atomic,
)
from rlarena.train.plot import plot_trial
from rlarena.train.progress import Reporter
from rlarena.train.results import STATE_FILE, Results, TrialResult, load_trial, read_state
from rlarena.train.search import generate_variants, variant_tag
from rlarena.train.stop import (
    EVAL_PREFIX,
    Stopper,
    StopSpec,
    eval_key_error,
    key_due,
    missing_key_error,
)

RESUMABLE = ("PENDING", "RUNNING", "INTERRUPTED", "ERROR")


@dataclass
class _Trial:
    trial_id: str
    dirname: str
    params: dict[str, Any]
    status: str = "PENDING"
    error: str | None = None


@dataclass
class _Options:
    stop: StopSpec
    checkpoint_freq: int
    checkpoint_at_end: bool
    num_to_keep: int | None
    score_attribute: str | None
    score_order: str
    tensorboard: bool
    plot: bool
    trust: Trust  # what resumed checkpoints may name: the config's own objects, trusted modules


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=,+-]", "_", text)[:120]


class _Interrupt:
    """First Ctrl-C: finish this iteration, checkpoint, stop. Second: KeyboardInterrupt at once.

    Env worker processes forked while this handler is installed inherit it and ignore the signal
    (they check the pid), so the iteration in flight can finish.
    """

    def __init__(self, reporter: Reporter):
        self.reporter = reporter
        self.requested = False
        self._pid = os.getpid()
        self._previous: Any = None

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if os.getpid() != self._pid:
            return
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.reporter.message("\nCtrl-C: stopping after this iteration and writing a checkpoint "
                              "(Ctrl-C again to stop at once, without one).")

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class _Experiment:
    """The experiment directory and its experiment_state.json (written from the first result on)."""

    def __init__(self, path: Path, trials: list[_Trial], meta: dict[str, Any]):
        self.path = path
        self.trials = trials
        self.meta = meta
        self.started = (path / STATE_FILE).exists()

    def save(self) -> None:
        if not self.started:
            return
        write_json_atomic(self.path / STATE_FILE, {**self.meta, "trials": [asdict(t) for t in self.trials]})

    def start(self) -> None:
        if not self.started:
            self.path.mkdir(parents=True, exist_ok=True)
            self.started = True
            self.save()


def run(config: AlgorithmConfig, *, stop: StopSpec = None, param_space: dict[str, Any] | None = None,
        num_samples: int = 1, checkpoint_freq: int = 0, checkpoint_at_end: bool = True,
        num_to_keep: int | None = None, checkpoint_score_attribute: str | None = None,
        checkpoint_score_order: str = "max", storage_path: str | os.PathLike = "runs", name: str | None = None,
        resume: bool = False, verbose: int = 1, tensorboard: bool = True, plot: bool = True,
        trusted_modules: list[str] | None = None) -> Results:
    """Train `config` until `stop`, checkpointing and logging into storage_path/name/<trial>/.

    stop: {result key: threshold} (any one met stops; old names such as episode_reward_mean and
        timesteps_total work), or a function (iteration, result) -> bool; None trains until Ctrl-C.
    param_space, num_samples: a sweep; {option: value or grid_search/choice/uniform/loguniform};
        trials run one after another and the results rank them.
    checkpoint_freq: every N iterations (0: never); checkpoint_at_end: when a trial stops.
    num_to_keep: keep the best N checkpoints by checkpoint_score_attribute (or the N latest when
        that is None); the latest is always kept as well, for resuming.
    name: the experiment directory (default: <Algo>_<env>_<date>); resume=True continues it (with
        name=None: the latest run of this algorithm and env in storage_path).
    verbose: 0 silent, 1 a row per iteration, 2 also learner statistics and checkpoint notices.
    trusted_modules: on resume, modules whose classes and functions the checkpoints may name besides
        the objects `config` holds (see Algorithm.from_checkpoint).
    """
    if not isinstance(config, AlgorithmConfig):
        raise ConfigError(f"rlarena.run takes an AlgorithmConfig such as PPOConfig().environment('CartPole-v1'), "
                          f"got {type(config).__name__}. (Ray Tune's run('PPO', config={{...}}) form: "
                          f"get_algorithm_class('PPO').config_class().update_from_dict({{...}}).)")
    if not isinstance(checkpoint_freq, int) or checkpoint_freq < 0:
        raise ConfigError(f"checkpoint_freq={checkpoint_freq!r}: use a whole number of iterations >= 0 (0: never).")
    if verbose not in (0, 1, 2):
        raise ConfigError(f"verbose={verbose!r}: use 0, 1 or 2.")
    # a malformed stop, or an evaluation key without evaluation, fails before anything runs
    needed = _needed_keys(Stopper(stop), checkpoint_score_attribute)
    evaluates = bool(config.evaluation_interval) or "evaluation_interval" in (param_space or {})
    for key, what in needed.items():
        if key.startswith(EVAL_PREFIX) and not evaluates:
            raise eval_key_error(what, key)
    CheckpointManager(Path("."), num_to_keep, checkpoint_score_attribute, checkpoint_score_order)  # checks both
    config.validate()
    opts = _Options(stop, checkpoint_freq, checkpoint_at_end, num_to_keep, checkpoint_score_attribute,
                    checkpoint_score_order, tensorboard, plot, Trust.create(trusted_modules, config.named_objects()))
    reporter = Reporter(verbose)
    interval = config.evaluation_interval
    if (checkpoint_score_attribute or "").startswith(EVAL_PREFIX) and interval and checkpoint_freq % interval:
        reporter.message(f"Note: {checkpoint_score_attribute} is in the results every {interval} iterations only; "
                         f"checkpoints at other iterations rank last. A checkpoint_freq that is a multiple of "
                         f"evaluation_interval scores every checkpoint.")

    algo_name = config.algo_class.__name__ if config.algo_class else type(config).__name__
    prefix = f"{algo_name}_{_safe(env_name(config.env) if config.env is not None else 'offline')}"
    storage = Path(storage_path)
    exp_path = _experiment_path(storage, name, prefix, resume, reporter)
    experiment = _load_or_plan(exp_path, config, algo_name, prefix, param_space, num_samples, opts)
    if resume and not any(t.status in RESUMABLE for t in experiment.trials):
        reporter.message(f"Every trial in {exp_path} has finished; nothing to resume.")

    configs = {t.trial_id: config.copy().update_from_dict(t.params) for t in experiment.trials}
    for trial_config in configs.values():
        trial_config.validate()

    interrupted = False
    failures: list[BaseException] = []
    results: list[TrialResult] = []
    with _Interrupt(reporter) as interrupt:
        for trial in experiment.trials:
            if trial.status not in RESUMABLE or interrupted:
                results.append(load_trial(exp_path, asdict(trial), opts.score_attribute, opts.score_order))
                continue
            result, exc = _run_trial(trial, configs[trial.trial_id], experiment, opts, reporter, interrupt)
            results.append(result)
            if exc is not None:
                failures.append(exc)
            interrupted = interrupt.requested
    out = Results(str(exp_path.resolve()), results, checkpoint_score_attribute, checkpoint_score_order, interrupted)
    if failures and all(t.status == "ERROR" for t in experiment.trials):
        raise failures[-1]  # every trial failed: nothing to return but the error
    _summarize(out, reporter, interrupted)
    return out


def _needed_keys(stopper: Stopper, score_attribute: str | None) -> dict[str, str]:
    """Result keys the run relies on -> what names them (for the error when results lack one)."""
    needed = {k: "Stop criterion" for k in stopper.criteria}
    if score_attribute:
        needed.setdefault(score_attribute, "checkpoint_score_attribute")
    return needed


def _experiment_path(storage: Path, name: str | None, prefix: str, resume: bool, reporter: Reporter) -> Path:
    if name is not None:
        if not name or name != _safe(name) or name in (".", ".."):
            raise ConfigError(f"name={name!r}: use letters, digits and . _ - = , + (it names a directory).")
        path = storage / name
        if path.exists() and any(path.iterdir()) and not resume:
            raise ConfigError(f"{str(path)!r} already holds a run. Continue it with resume=True (--resume), "
                              f"or choose another name.")
        if resume and not (path / STATE_FILE).exists():
            reporter.message(f"Nothing to resume in {path}: starting a new run there.")
        return path
    if resume:
        runs = [p for p in storage.glob(f"{prefix}_*") if (p / STATE_FILE).exists()]
        if runs:
            latest = max(runs, key=lambda p: (p / STATE_FILE).stat().st_mtime)
            reporter.message(f"Resuming the latest {prefix} run: {latest}")
            return latest
        reporter.message(f"No earlier {prefix} run in {storage} to resume: starting a new one.")
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    path, n = storage / f"{prefix}_{stamp}", 1
    while path.exists():
        path, n = storage / f"{prefix}_{stamp}_{n}", n + 1
    return path


def _load_or_plan(path: Path, config: AlgorithmConfig, algo_name: str, prefix: str,
                  param_space: dict[str, Any] | None, num_samples: int, opts: _Options) -> _Experiment:
    """The trials of an existing experiment (resume), or new ones from the param space."""
    state_path = path / STATE_FILE
    if state_path.exists():
        state = read_state(path)  # checked: a CheckpointError for anything rlarena did not write
        trials = [_Trial(**t) for t in state["trials"]]
        _check_trial_dirs(path, trials)
        if state.get("algo") not in (None, algo_name):
            raise ConfigError(f"{str(path)!r} holds a {state['algo']} run; it cannot be resumed with a "
                              f"{algo_name} config.")
        for t in trials:
            if t.status == "RUNNING":  # the process that ran it died (kill -9)
                t.status = "INTERRUPTED"
        return _Experiment(path, trials, {k: v for k, v in state.items() if k != "trials"})
    variants = generate_variants(param_space, num_samples, config.seed)
    single = len(variants) == 1
    trials = []
    for i, params in enumerate(variants):
        if num_samples > 1 and config.seed is not None and "seed" not in params:
            params = {**params, "seed": config.seed + i // (len(variants) // num_samples)}  # samples differ
        config.copy().update_from_dict(params)  # an unknown option fails here, naming the closest
        tag = "" if single else variant_tag(param_space, params)
        if num_samples > 1 and "seed" in params and "seed=" not in tag:
            tag = f"{tag},seed={params['seed']}".lstrip(",")
        trial_id = f"{i:05d}"
        trials.append(_Trial(trial_id, _safe(f"{prefix}_{trial_id}" + (f"_{tag}" if tag else "")), params))
    meta = {"name": path.name, "algo": algo_name, "env": prefix[len(algo_name) + 1:],
            "created": time.strftime("%Y-%m-%d %H:%M:%S"), "param_space": repr(param_space or {}),
            "num_samples": num_samples, "checkpoint_score_attribute": opts.score_attribute,
            "checkpoint_score_order": opts.score_order}
    _check_trial_dirs(path, trials)  # `resume` of a directory without state starts afresh there
    return _Experiment(path, trials, meta)


def _check_trial_dirs(path: Path, trials: list[_Trial]) -> None:
    """A run writes into each trial's directory and, resumed, deletes under it (old logs, unfinished
    and surplus checkpoints), so a symbolic link there, which could point anywhere, is refused before
    anything is written. rlarena itself never makes one."""
    for trial in trials:
        trial_dir = path / trial.dirname
        entries = [trial_dir]
        if trial_dir.is_dir() and not trial_dir.is_symlink():
            entries += list(trial_dir.iterdir())
            checkpoints = trial_dir / "checkpoints"
            if checkpoints.is_dir() and not checkpoints.is_symlink():
                entries += list(checkpoints.iterdir())
        for entry in entries:
            if entry.is_symlink():
                raise CheckpointError(f"Cannot run in {str(path)!r}: {str(entry)!r} is a symbolic link (to "
                                      f"{os.readlink(entry)!r}). A run writes and deletes files in a trial's "
                                      f"directory, and rlarena never follows links there; replace the link with "
                                      f"what it points to, or remove it.")
        if trial_dir.exists() and not trial_dir.is_dir():
            raise CheckpointError(f"Cannot run in {str(path)!r}: {str(trial_dir)!r}, trial {trial.trial_id}'s "
                                  f"directory, is a file.")


def _restore(manager: CheckpointManager, config: AlgorithmConfig, reporter: Reporter, trust: Trust) -> Algorithm | None:
    """The algorithm at the newest loadable checkpoint; unreadable ones are set aside."""
    while manager.latest is not None:
        record = manager.latest
        try:
            algo = Algorithm.from_checkpoint(record.path, env=config.env, trust=trust)
        except CheckpointError as exc:
            moved = manager.set_aside(record)
            reporter.message(f"Checkpoint {record.path} cannot be loaded ({exc}); moved to {moved}, "
                             f"trying the one before.")
            continue
        saved, given = algo.config.to_dict(), config.to_dict()
        changed = [f"{k} ({saved[k]!r} in the checkpoint)" for k in given if k != "env" and saved.get(k) != given[k]]
        if changed:
            reporter.message(f"Resuming with the checkpoint's config; these options differ from the one "
                             f"given and are ignored: {', '.join(changed)}.")
        return algo
    return None


def _check_keys(result: dict[str, Any], seen: set[str], required: dict[str, str], eval_interval: int | None) -> None:
    """A stop key or score attribute that results never carry fails after the first iteration
    (after the first evaluation for evaluation/ keys), naming the closest keys."""
    seen.update(result)
    iteration = int(result.get("training_iteration", 1))
    for key, what in required.items():
        if key not in seen and key_due(key, iteration, eval_interval):
            raise missing_key_error(what, key, result, eval_interval)


def _run_trial(trial: _Trial, config: AlgorithmConfig, experiment: _Experiment, opts: _Options,
               reporter: Reporter, interrupt: _Interrupt) -> tuple[TrialResult, BaseException | None]:
    trial_dir = experiment.path / trial.dirname
    manager = CheckpointManager(trial_dir / "checkpoints", opts.num_to_keep, opts.score_attribute, opts.score_order)
    logger = TrialLogger(trial_dir, opts.tensorboard, notice=lambda text: reporter.message(text))
    stopper = Stopper(opts.stop)
    required = _needed_keys(stopper, opts.score_attribute)
    seen: set[str] = set()
    label = trial.dirname + (f"  ({_params_text(trial.params)})" if trial.params else "")

    algo: Algorithm | None = None
    last: dict[str, Any] | None = None
    error: BaseException | None = None
    try:
        if trial.status != "PENDING" and trial_dir.exists():
            manager.scan({int(r["training_iteration"]): r for r in read_results(trial_dir)}, clean=True)
            algo = _restore(manager, config, reporter, opts.trust)
            if algo is not None and manager.latest is not None:
                rows = logger.resume_at(algo.iteration, algo.num_env_steps_sampled_lifetime)
                last = rows[-1] if rows else None
                reporter.message(f"Trial {label}: resumed from {Path(manager.latest.path).name} "
                                 f"(iteration {algo.iteration}, {algo.num_env_steps_sampled_lifetime} env steps)")
            else:
                logger.start_fresh()
        if algo is None:
            reporter.message(f"Trial {label}")
            algo = config.build()
        seen.update(last or {})
        trial.status = "RUNNING"
        experiment.save()
        reporter.header(with_eval=bool(config.evaluation_interval))
        start, since_restore = time.perf_counter(), 0
        done = False
        while not done:
            result = algo.train()
            since_restore += 1
            result.update(trial_id=trial.trial_id, timestamp=int(time.time()),
                          time_since_restore=time.perf_counter() - start, iterations_since_restore=since_restore)
            _check_keys(result, seen, required, config.evaluation_interval)
            if not experiment.started:
                experiment.start()
            if not (trial_dir / PARAMS_FILE).exists():
                logger.write_params({"algo": type(algo).__name__, **algo.config.to_dict()})
            logger.log(result)
            last = result
            done = stopper(result)
            reporter.row(result, stopper)
            due = opts.checkpoint_freq and algo.iteration % opts.checkpoint_freq == 0
            if due or (done and opts.checkpoint_at_end) or interrupt.requested:
                record = manager.save(algo, result)
                reporter.message(f"checkpoint: {record.path}", level=2)
            if done:
                trial.status = "TERMINATED"
                reporter.message(f"Trial {trial.dirname} done at iteration {algo.iteration}: "
                                 f"{'; '.join(stopper.met(result))}.")
            elif interrupt.requested:
                trial.status = "INTERRUPTED"
                break
    except ConfigError as exc:  # a user's mistake (stop key, score attribute): the same for every trial
        trial.status, trial.error = "ERROR", str(exc)
        raise
    except KeyboardInterrupt:
        trial.status = "INTERRUPTED"
        raise
    except Exception as exc:  # noqa: BLE001 - recorded on the trial; run() re-raises when all trials fail
        trial.status, trial.error, error = "ERROR", f"{type(exc).__name__}: {exc}", exc
        reporter.message(f"Trial {trial.dirname} failed: {trial.error}")
    finally:
        logger.close()
        if algo is not None:
            algo.stop()
        experiment.save()
        if opts.plot and (trial_dir / "progress.csv").exists():
            try:
                plot_trial(trial_dir)
            except ConfigError as exc:  # matplotlib missing
                reporter.message(f"Learning-curve plot skipped: {exc}")
    return TrialResult(trial.trial_id, str(trial_dir.resolve()), trial.params, trial.status, trial.error, last,
                       list(manager.records), manager.best.path if manager.best else None,
                       manager.latest.path if manager.latest else None), error


def _params_text(params: dict[str, Any]) -> str:
    return "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _summarize(results: Results, reporter: Reporter, interrupted: bool) -> None:
    if len(results.trials) > 1:
        reporter.message(f"\nTrials ranked by {results.score_attribute} ({results.score_order}):")
        for trial in results.ranked():
            value = (trial.last_result or {}).get(results.score_attribute)
            text = f"{value:.4g}" if isinstance(value, int | float) else "-"
            iters = (trial.last_result or {}).get("training_iteration", 0)
            reporter.message(f"  {trial.trial_id}  {trial.status:<11} iter {iters:>5}  {text:>10}  "
                             f"{_params_text(trial.params)}")
    if results.best_checkpoint:
        reporter.message(f"best checkpoint: {results.best_checkpoint}")
    if interrupted:
        reporter.message(f"Interrupted, checkpoint written. Continue with --resume (Python: resume=True): "
                         f"{results.experiment_path}")

