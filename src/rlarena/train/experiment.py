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

Trials run one after another in this process (rlarena.train.trial holds the per-trial code), or with
ray=True / an address in parallel on Ray, one actor per trial (rlarena.train.ray_trials), into the
same layout.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Self

from rlarena import limits
from rlarena.algorithms.config import AlgorithmConfig, outside_notice
from rlarena.algorithms.legacy import RENAMED
from rlarena.envs.registry import env_name
from rlarena.errors import CheckpointError, ConfigError, notice
from rlarena.refs import Trust
from rlarena.train.checkpoints import CheckpointManager
from rlarena.train.loggers import write_json_atomic
from rlarena.train.progress import Reporter
from rlarena.train.results import STATE_FILE, Results, TrialResult, read_state
from rlarena.train.search import generate_variants, variant_tag
from rlarena.train.stop import EVAL_PREFIX, Stopper, StopSpec, eval_key_error
from rlarena.train.trial import RESUMABLE, Options, StopFlag, Trial, needed_keys, params_text, run_trial


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=,+-]", "_", text)[:120]


class _Interrupt(StopFlag):
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
        self.reporter.message(
            "\nCtrl-C: stopping after this iteration and writing a checkpoint "
            "(Ctrl-C again to stop at once, without one)."
        )

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class _Experiment:
    """The experiment directory and its experiment_state.json (written from the first result on)."""

    def __init__(self, path: Path, trials: list[Trial], meta: dict[str, Any]):
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


def run(
    config: AlgorithmConfig,
    *,
    stop: StopSpec = None,
    param_space: dict[str, Any] | None = None,
    num_samples: int = 1,
    checkpoint_freq: int = 0,
    checkpoint_at_end: bool = True,
    num_to_keep: int | None = None,
    checkpoint_score_attribute: str | None = None,
    checkpoint_score_order: str = "max",
    storage_path: str | os.PathLike = "runs",
    name: str | None = None,
    resume: bool = False,
    verbose: int = 1,
    tensorboard: bool = True,
    plot: bool = True,
    trusted_modules: list[str] | None = None,
    ray: bool | str | None = None,
    source: str | None = None,
) -> Results:
    """Train `config` until `stop`, checkpointing and logging into storage_path/name/<trial>/.

    stop: {result key: threshold} (any one met stops; old names such as episode_reward_mean and
        timesteps_total work), or a function (iteration, result) -> bool; None trains until Ctrl-C.
    param_space, num_samples: a sweep; {option: value or grid_search/choice/uniform/loguniform};
        trials run one after another (in parallel with `ray`) and the results rank them.
    checkpoint_freq: every N iterations (0: never); checkpoint_at_end: when a trial stops.
    num_to_keep: keep the best N checkpoints by checkpoint_score_attribute (or the N latest when
        that is None); the latest is always kept as well, for resuming.
    name: the experiment directory (default: <Algo>_<env>_<date>); resume=True continues it (with
        name=None: the latest run of this algorithm and env in storage_path).
    verbose: 0 silent, 1 a row per iteration, 2 also learner statistics and checkpoint notices.
    trusted_modules: on resume, modules whose classes and functions the checkpoints may name besides
        the objects `config` holds (see Algorithm.from_checkpoint).
    ray: None/False (default): every trial in this process. True: the trials in parallel on Ray, one
        actor per trial (config.ray_address, else RAY_ADDRESS, else a private local Ray with this
        machine's CPUs); a string: on that cluster ("auto": the running one, else a private local Ray). Same
        directories, files, results and resume; each trial takes 1 CPU plus num_cpus_per_env_runner for
        each of its remote env runners, and trials start while they fit the cluster's CPUs. The driver
        prints each trial's rows and messages as they come, prefixed by its trial id; Ctrl-C stops every
        trial after its iteration, with a checkpoint. A Ray this call started is shut down when it
        returns. On a cluster, storage_path must be a directory every node sees at the same path (see
        rlarena.train.ray_trials).
    source: the file the config's options were read from (`rlarena train -f`): the networks the trials
        build are bounded as a checkpoint's are (rlarena.limits.MAX_PARAMETERS); None: your own config.
    """
    if not isinstance(config, AlgorithmConfig):
        raise ConfigError(
            f"rlarena.run takes an AlgorithmConfig such as PPOConfig().environment('CartPole-v1'), "
            f"got {type(config).__name__}. (Ray Tune's run('PPO', config={{...}}) form: "
            f"get_algorithm_class('PPO').config_class().update_from_dict({{...}}).)"
        )
    if not isinstance(checkpoint_freq, int) or checkpoint_freq < 0:
        raise ConfigError(f"checkpoint_freq={checkpoint_freq!r}: use a whole number of iterations >= 0 (0: never).")
    if verbose not in (0, 1, 2):
        raise ConfigError(f"verbose={verbose!r}: use 0, 1 or 2.")
    if not (ray is None or isinstance(ray, bool) or (isinstance(ray, str) and ray.strip())):
        raise ConfigError(
            f"ray={ray!r}: use True (a local Ray, or the cluster config.ray_address or RAY_ADDRESS "
            f"names), a cluster address such as 'auto' or '10.0.0.5:6379', or None to run here."
        )
    # a malformed stop, or an evaluation key without evaluation, fails before anything runs
    needed = needed_keys(Stopper(stop), checkpoint_score_attribute)
    evaluates = bool(config.evaluation_interval) or "evaluation_interval" in (param_space or {})
    for key, what in needed.items():
        if key.startswith(EVAL_PREFIX) and not evaluates:
            raise eval_key_error(what, key)
    CheckpointManager(Path("."), num_to_keep, checkpoint_score_attribute, checkpoint_score_order)  # checks both
    config.validate()
    opts = Options(
        stop,
        checkpoint_freq,
        checkpoint_at_end,
        num_to_keep,
        checkpoint_score_attribute,
        checkpoint_score_order,
        tensorboard,
        plot,
        Trust.create(trusted_modules, config.named_objects()),
        source,
    )
    reporter = Reporter(verbose)
    interval = config.evaluation_interval
    if (checkpoint_score_attribute or "").startswith(EVAL_PREFIX) and interval and checkpoint_freq % interval:
        reporter.message(
            f"Note: {checkpoint_score_attribute} is in the results every {interval} iterations only; "
            f"checkpoints at other iterations rank last. A checkpoint_freq that is a multiple of "
            f"evaluation_interval scores every checkpoint."
        )

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

    with _Interrupt(reporter) as interrupt:
        if ray:
            try:
                from rlarena.train.ray_trials import run_on_ray
            except ModuleNotFoundError as exc:
                if exc.name is None or exc.name.split(".")[0] != "ray":
                    raise
                raise ConfigError(
                    f"rlarena.run(ray={ray!r}) runs the trials on Ray, and Ray is not installed: "
                    f"pip install 'rlarena[ray]' (or leave ray unset to run them here)."
                ) from None
            results, failures, interrupted = run_on_ray(
                ray, experiment, experiment.trials, configs, opts, reporter, interrupt
            )
        else:
            results, failures, interrupted = _run_here(experiment, configs, opts, reporter, interrupt)
    out = Results(str(exp_path.resolve()), results, checkpoint_score_attribute, checkpoint_score_order, interrupted)
    if failures and all(t.status == "ERROR" for t in experiment.trials):
        raise failures[-1]  # every trial failed: nothing to return but the error
    _summarize(out, reporter, interrupted)
    return out


def _experiment_path(storage: Path, name: str | None, prefix: str, resume: bool, reporter: Reporter) -> Path:
    if name is not None:
        if not name or name != _safe(name) or name in (".", ".."):
            raise ConfigError(f"name={name!r}: use letters, digits and . _ - = , + (it names a directory).")
        path = storage / name
        if path.exists() and any(path.iterdir()) and not resume:
            raise ConfigError(
                f"{str(path)!r} already holds a run. Continue it with resume=True (--resume), or choose another name."
            )
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


def _load_or_plan(
    path: Path,
    config: AlgorithmConfig,
    algo_name: str,
    prefix: str,
    param_space: dict[str, Any] | None,
    num_samples: int,
    opts: Options,
) -> _Experiment:
    """The trials of an existing experiment (resume), or new ones from the param space."""
    state_path = path / STATE_FILE
    if state_path.exists():
        state = read_state(path)  # checked: a CheckpointError for anything rlarena did not write
        trials = [Trial(**t) for t in state["trials"]]
        _check_trial_dirs(path, trials)
        if state.get("algo") not in (None, algo_name):
            raise ConfigError(
                f"{str(path)!r} holds a {state['algo']} run; it cannot be resumed with a {algo_name} config."
            )
        for t in trials:
            if t.status == "RUNNING":  # the process that ran it died (kill -9)
                t.status = "INTERRUPTED"
            t.params = _confine_params(t.params, config, param_space, f"Experiment state {str(state_path)!r}")
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
        trials.append(Trial(trial_id, _safe(f"{prefix}_{trial_id}" + (f"_{tag}" if tag else "")), params))
    meta = {
        "name": path.name,
        "algo": algo_name,
        "env": prefix[len(algo_name) + 1 :],
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "param_space": repr(param_space or {}),
        "num_samples": num_samples,
        "checkpoint_score_attribute": opts.score_attribute,
        "checkpoint_score_order": opts.score_order,
    }
    _check_trial_dirs(path, trials)  # `resume` of a directory without state starts afresh there
    return _Experiment(path, trials, meta)


def _confine_params(
    params: dict[str, Any], config: AlgorithmConfig, param_space: dict[str, Any] | None, source: str
) -> dict[str, Any]:
    """A resumed trial's parameters, read back from the experiment file: the options this call's
    param_space searches (and the seed) are the caller's; any other is the file's, which may set how
    the agent computes within rlarena.limits' bounds, but no path, cluster or process count (those are
    left out with a notice: the caller's config decides)."""
    searched = {*(param_space or {}), "seed"}
    roles = config.option_roles()
    outside = {
        k: v
        for k, v in params.items()
        if k not in searched and roles.get(RENAMED.get(k, k), ("computes",))[0] in ("where", "how many")
    }
    kept = {k: v for k, v in params.items() if k not in outside}
    if outside:
        notice(outside_notice(source, outside, "in the config given to rlarena.run (or --config)"))
    trial_config = config.copy().update_from_dict(kept)
    named = {RENAMED.get(k, k) for k in kept}
    limits.check_all(source, [s for s in trial_config.sizes() if s[0].split(".")[0] in named], searched)
    return kept


def _check_trial_dirs(path: Path, trials: list[Trial]) -> None:
    """A run writes into each trial's directory and, resumed, deletes under it (old logs, unfinished
    and surplus checkpoints), so a symbolic link there, which could point anywhere, is refused before
    anything is written, as is a FIFO or device (a log appended to it would block or go nowhere).
    rlarena itself never makes one; whole files are renamed into place, and the logs appended every
    iteration are opened without following links (rlarena.train.loggers)."""
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
                raise CheckpointError(
                    f"Cannot run in {str(path)!r}: {str(entry)!r} is a symbolic link (to "
                    f"{os.readlink(entry)!r}). A run writes and deletes files in a trial's "
                    f"directory, and rlarena never follows links there; replace the link with "
                    f"what it points to, or remove it."
                )
            if entry != trial_dir and entry.exists() and not (entry.is_file() or entry.is_dir()):
                raise CheckpointError(
                    f"Cannot run in {str(path)!r}: {str(entry)!r} is not a regular file or "
                    f"directory (a FIFO or device). A run writes its logs there; remove it."
                )
        if trial_dir.exists() and not trial_dir.is_dir():
            raise CheckpointError(
                f"Cannot run in {str(path)!r}: {str(trial_dir)!r}, trial {trial.trial_id}'s directory, is a file."
            )


def _run_here(
    experiment: _Experiment,
    configs: dict[str, AlgorithmConfig],
    opts: Options,
    reporter: Reporter,
    interrupt: _Interrupt,
) -> tuple[list[TrialResult], list[BaseException], bool]:
    """The unfinished trials one after another in this process; (every trial's result in order, the
    exceptions that failed trials, whether Ctrl-C stopped the run)."""
    interrupted = False
    failures: list[BaseException] = []
    results: list[TrialResult] = []
    for trial in experiment.trials:
        if trial.status not in RESUMABLE or interrupted:
            results.append(opts.load_result(experiment.path, trial))
            continue
        result, exc = run_trial(trial, configs[trial.trial_id], experiment, opts, reporter, interrupt)
        results.append(result)
        if exc is not None:
            failures.append(exc)
        interrupted = interrupt.requested
    return results, failures, interrupted


def _summarize(results: Results, reporter: Reporter, interrupted: bool) -> None:
    if len(results.trials) > 1:
        reporter.message(f"\nTrials ranked by {results.score_attribute} ({results.score_order}):")
        for trial in results.ranked():
            value = (trial.last_result or {}).get(results.score_attribute)
            text = f"{value:.4g}" if isinstance(value, int | float) else "-"
            iters = (trial.last_result or {}).get("training_iteration", 0)
            reporter.message(
                f"  {trial.trial_id}  {trial.status:<11} iter {iters:>5}  {text:>10}  {params_text(trial.params)}"
            )
    if results.best_checkpoint:
        reporter.message(f"best checkpoint: {results.best_checkpoint}")
    if interrupted:
        reporter.message(
            f"Interrupted, checkpoint written. Continue with --resume (Python: resume=True): {results.experiment_path}"
        )
