"""One trial of an experiment: build (or restore) the algorithm, train it until the stop criteria,
log every result and checkpoint by the policy. rlarena.run calls run_trial for each trial in this
process, or inside one Ray actor per trial (rlarena.train.ray_trials), with the same code and files.

The trial reaches its experiment through a small TrialHost (the experiment directory, the moment the
first result makes the run real, and each change of its status), so the experiment file can be
written by the process that owns it: this one locally, the driver on Ray.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from rlarena import limits
from rlarena.algorithms.algorithm import Algorithm
from rlarena.algorithms.config import AlgorithmConfig
from rlarena.errors import CheckpointError, ConfigError, RLArenaError
from rlarena.refs import Trust
from rlarena.train.checkpoints import CheckpointManager
from rlarena.train.loggers import PARAMS_FILE, TrialLogger, read_results
from rlarena.train.plot import plot_trial
from rlarena.train.progress import Reporter
from rlarena.train.results import TrialResult, load_trial
from rlarena.train.stop import Stopper, StopSpec, key_due, missing_key_error

RESUMABLE = ("PENDING", "RUNNING", "INTERRUPTED", "ERROR")


@dataclass
class Trial:
    trial_id: str
    dirname: str
    params: dict[str, Any]
    status: str = "PENDING"
    error: str | None = None


@dataclass
class Options:
    stop: StopSpec
    checkpoint_freq: int
    checkpoint_at_end: bool
    num_to_keep: int | None
    score_attribute: str | None
    score_order: str
    tensorboard: bool
    plot: bool
    trust: Trust  # what resumed checkpoints may name: the config's own objects, trusted modules
    # the file the trials' options were read from (rlarena train -f), whose networks are bounded as
    # a checkpoint's are (rlarena.limits); None: the caller's own config
    source: str | None = None

    def load_result(self, path: Path, trial: Trial) -> TrialResult:
        """The results a trial left in experiment `path`, ranked by these options."""
        return load_trial(path, asdict(trial), self.score_attribute, self.score_order)


class StopFlag:
    """Set to ask a trial to stop after the current iteration, writing a checkpoint (Ctrl-C)."""

    requested: bool = False


class TrialHost(Protocol):
    """What a trial needs of its experiment."""

    path: Path  # the experiment directory; the trial writes under path / trial.dirname
    started: bool  # whether the experiment file exists (it is written from the first result on)

    def start(self) -> None:
        """Write the experiment file: called once, when the first result is in, before any log."""

    def save(self) -> None:
        """Record the trials' statuses (one of them has just changed)."""


def needed_keys(stopper: Stopper, score_attribute: str | None) -> dict[str, str]:
    """Result keys the run relies on -> what names them (for the error when results lack one)."""
    needed = {k: "Stop criterion" for k in stopper.criteria}
    if score_attribute:
        needed.setdefault(score_attribute, "checkpoint_score_attribute")
    return needed


def _restore(manager: CheckpointManager, config: AlgorithmConfig, reporter: Reporter, trust: Trust) -> Algorithm | None:
    """The algorithm at the newest loadable checkpoint; unreadable ones are set aside."""
    while manager.latest is not None:
        record = manager.latest
        try:
            # where it writes and how many processes it runs are this run's choice, not the checkpoint's
            caller = {
                k: getattr(config, k) for k, (role, _) in config.option_roles().items() if role in ("where", "how many")
            }
            algo = Algorithm.from_checkpoint(record.path, env=config.env, config_overrides=caller, trust=trust)
        except CheckpointError as exc:
            moved = manager.set_aside(record)
            reporter.message(
                f"Checkpoint {record.path} cannot be loaded ({exc}); moved to {moved}, trying the one before."
            )
            continue
        saved, given = algo.config.to_dict(), config.to_dict()
        changed = [f"{k} ({saved[k]!r} in the checkpoint)" for k in given if k != "env" and saved.get(k) != given[k]]
        if changed:
            reporter.message(
                f"Resuming with the checkpoint's config; these options differ from the one "
                f"given and are ignored: {', '.join(changed)}."
            )
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


def run_trial(
    trial: Trial, config: AlgorithmConfig, host: TrialHost, opts: Options, reporter: Reporter, interrupt: StopFlag
) -> tuple[TrialResult, BaseException | None]:
    """Train one trial to its end (or until `interrupt` is set); (its result, the exception that
    failed it). A ConfigError (a stop key or score attribute the results lack: the same for every
    trial) and KeyboardInterrupt are raised, with the trial's status recorded first."""
    trial_dir = host.path / trial.dirname
    manager = CheckpointManager(trial_dir / "checkpoints", opts.num_to_keep, opts.score_attribute, opts.score_order)
    logger = TrialLogger(trial_dir, opts.tensorboard, notice=lambda text: reporter.message(text))
    stopper = Stopper(opts.stop)
    required = needed_keys(stopper, opts.score_attribute)
    seen: set[str] = set()
    label = trial.dirname + (f"  ({params_text(trial.params)})" if trial.params else "")

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
                reporter.message(
                    f"Trial {label}: resumed from {Path(manager.latest.path).name} "
                    f"(iteration {algo.iteration}, {algo.num_env_steps_sampled_lifetime} env steps)"
                )
            else:
                logger.start_fresh()
        if algo is None:
            reporter.message(f"Trial {label}")
            with limits.loading(opts.source) if opts.source else contextlib.nullcontext():
                algo = config.build()
        seen.update(last or {})
        trial.status = "RUNNING"
        host.save()
        reporter.header(with_eval=bool(config.evaluation_interval))
        start, since_restore = time.perf_counter(), 0
        done = False
        while not done:
            result = algo.train()
            since_restore += 1
            result.update(
                trial_id=trial.trial_id,
                timestamp=int(time.time()),
                time_since_restore=time.perf_counter() - start,
                iterations_since_restore=since_restore,
            )
            _check_keys(result, seen, required, config.evaluation_interval)
            if not host.started:
                host.start()
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
                reporter.message(
                    f"Trial {trial.dirname} done at iteration {algo.iteration}: {'; '.join(stopper.met(result))}."
                )
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
        host.save()
        if opts.plot and (trial_dir / "progress.csv").exists():
            try:
                plot_trial(trial_dir)
            except RLArenaError as exc:  # matplotlib missing, a progress.csv that is not a plain file
                reporter.message(f"Learning-curve plot skipped: {exc}")
    return TrialResult(
        trial.trial_id,
        str(trial_dir.resolve()),
        trial.params,
        trial.status,
        trial.error,
        last,
        list(manager.records),
        manager.best.path if manager.best else None,
        manager.latest.path if manager.latest else None,
    ), error


def params_text(params: dict[str, Any]) -> str:
    return "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
