"""rlarena.run(..., ray=True | "address"): the trials of a sweep in parallel, one Ray actor per trial.

Each actor runs rlarena.train.trial.run_trial, the code a local run calls, so a trial writes the same
files into the same directory (params.json, result.json, progress.csv, checkpoints/). The driver (the
process that called rlarena.run) owns experiment_state.json: it marks a trial RUNNING when it starts
one, writes the file when the first result is in (the actor waits for that before writing any log, so a
mistyped stop key still leaves nothing behind), and records each trial's final status. A crashed driver
leaves RUNNING trials, which resume=True continues from their last checkpoints, as a local run does.

Resources: a trial's actor takes 1 CPU (the learner) and its remote env runners their own
(num_cpus_per_env_runner each, evaluation runners included), so a trial needs
1 + (num_env_runners + evaluation_num_env_runners) * num_cpus_per_env_runner CPUs. Trials start while
the needs of those running fit the cluster's CPUs, so every trial's env runners find room.

Progress: the driver polls the running trials every POLL_S seconds and prints what each trial's
reporter wrote (its rows per iteration, its messages), every line prefixed with the trial id.

The trials' directories must be visible to every node at the same path (one machine, or a shared
filesystem on a cluster): the actors write them and the driver reads them. Importing this module
imports ray.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

from rlarena.algorithms.config import AlgorithmConfig
from rlarena.envs.registry import register_creators, registered_creators
from rlarena.errors import ConfigError, TrainingError, notice
from rlarena.rollout.ray_cluster import ray_init, ray_shutdown
from rlarena.train.progress import Reporter
from rlarena.train.results import TrialResult
from rlarena.train.trial import RESUMABLE, Options, StopFlag, Trial, TrialHost, run_trial

POLL_S = 0.25  # how often the driver collects the trials' output and start requests


def trial_cpus(config: AlgorithmConfig) -> float:
    """The CPUs one trial occupies: its learner and each of its remote env runners."""
    runners = config.num_env_runners + config.evaluation_num_env_runners
    return 1.0 + runners * config.num_cpus_per_env_runner


class _Lines:
    """The trial reporter's output stream: complete lines, taken by the driver's polls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._text = ""

    def write(self, text: str) -> int:
        with self._lock:
            self._text += text
        return len(text)

    def flush(self) -> None:
        pass

    def take(self) -> list[str]:
        with self._lock:
            *lines, self._text = self._text.split("\n")
        return lines


class _ActorHost:
    """The trial's view of the experiment inside the actor. start() waits until the driver has
    written the experiment file; statuses are the driver's to record (save() does nothing here)."""

    def __init__(self, path: Path, started: bool):
        self.path = path
        self.started = started
        self.waiting = False
        self.go = threading.Event()

    def start(self) -> None:
        self.waiting = True
        self.go.wait()
        self.waiting = False
        self.started = True

    def save(self) -> None:
        pass


class TrialActor:
    """The body of one trial's Ray actor (threaded: run() trains while poll() and the driver's other
    calls are answered)."""

    def __init__(
        self,
        trial: Trial,
        config: AlgorithmConfig,
        path: Path,
        opts: Options,
        verbose: int,
        started: bool,
        envs: dict[str, Any],
    ):
        register_creators(envs)  # the driver's register_env names, unknown in this process
        self.trial, self.config, self.opts = trial, config, opts
        self.lines = _Lines()
        self.reporter = Reporter(verbose, out=self.lines)  # type: ignore[arg-type]
        self.host = _ActorHost(path, started)
        self.stop_flag = StopFlag()

    def run(self) -> tuple[Trial, TrialResult | None, BaseException | None]:
        """(the trial with its final status, its result, the exception that failed it); a ConfigError
        (the same mistake in every trial) comes back as the exception, with no result."""
        try:
            result, error = run_trial(self.trial, self.config, self.host, self.opts, self.reporter, self.stop_flag)
        except ConfigError as exc:
            return self.trial, None, exc
        return self.trial, result, error

    def poll(self) -> tuple[list[str], bool]:
        """(the lines written since the last poll, whether the trial waits for the experiment file)."""
        return self.lines.take(), self.host.waiting

    def experiment_started(self) -> None:
        self.host.go.set()

    def request_stop(self) -> None:
        self.stop_flag.requested = True


@dataclass
class _Running:
    trial: Trial
    actor: Any  # the TrialActor's handle
    done: Any  # the ObjectRef of its run()
    cpus: float
    poll: Any = None  # the ObjectRef of its poll() in flight (an actor still starting answers later)


def connect(address: bool | str, config: AlgorithmConfig, cpus: float) -> bool:
    """Connect this process to Ray: True -> config.ray_address, else RAY_ADDRESS, else a local Ray
    private to this process (rlarena.rollout.ray_cluster.ray_init; never a cluster found on disk); a string ->
    that cluster, where "auto" (RLlib's --ray-address auto: the cluster `ray start` recorded on this
    machine) falls back to a private local Ray, with a notice, when none is running. True when this
    call started or joined Ray (and the caller should shut it down), False when it was up."""
    if ray.is_initialized():
        return False
    target = (config.ray_address if address is True else address) or None
    num_cpus = max(os.cpu_count() or 1, int(-(-cpus // 1)))  # Ray's CPUs are scheduling slots, not cores
    if target == "auto" and not os.environ.get("RAY_ADDRESS"):
        try:
            ray_init("auto")
        except ConnectionError:
            notice(
                "ray address 'auto': no Ray cluster is running on this machine; the trials run on a local "
                "Ray on 127.0.0.1 instead."
            )
            ray_init(None, num_cpus)
        return True
    ray_init(target, num_cpus)
    return True


def run_on_ray(
    address: bool | str,
    experiment: TrialHost,
    trials: list[Trial],
    configs: dict[str, AlgorithmConfig],
    opts: Options,
    reporter: Reporter,
    interrupt: StopFlag,
) -> tuple[list[TrialResult], list[BaseException], bool]:
    """Run the unfinished `trials` on Ray; (every trial's result in order, the exceptions that failed
    trials, whether Ctrl-C stopped the run). See the module's docstring."""
    needs = {t.trial_id: trial_cpus(configs[t.trial_id]) for t in trials}
    todo = [t for t in trials if t.status in RESUMABLE]
    if not todo:  # a finished run, resumed: nothing to start Ray for
        return [opts.load_result(experiment.path, t) for t in trials], [], False
    started_here = connect(address, next(iter(configs.values())), max(needs[t.trial_id] for t in todo))
    try:
        total = ray.cluster_resources().get("CPU", 0.0)
        for trial in todo:
            if needs[trial.trial_id] > total:
                cfg = configs[trial.trial_id]
                raise ConfigError(
                    f"Trial {trial.trial_id} needs {needs[trial.trial_id]:g} CPUs on Ray (1 for the "
                    f"trial, {cfg.num_cpus_per_env_runner:g} for each of its "
                    f"{cfg.num_env_runners + cfg.evaluation_num_env_runners} remote env runners) and "
                    f"the Ray cluster has {total:g}. Lower num_env_runners or num_cpus_per_env_runner, "
                    f"or add CPUs to the cluster."
                )
        sizes = " or ".join(sorted({f"{needs[t.trial_id]:g}" for t in todo}))
        reporter.message(
            f"{len(todo)} trial(s) on Ray ({total:g} CPUs, {sizes} per trial); each line of a trial's "
            f"output starts with its id."
        )
        driver = _Driver(experiment, configs, opts, reporter, interrupt, needs, total)
        driver.run(todo)
    finally:
        if started_here:
            ray_shutdown()
    results = [driver.results.get(t.trial_id) or opts.load_result(experiment.path, t) for t in trials]
    return results, list(driver.errors.values()), interrupt.requested


class _Driver:
    def __init__(
        self,
        experiment: TrialHost,
        configs: dict[str, AlgorithmConfig],
        opts: Options,
        reporter: Reporter,
        interrupt: StopFlag,
        needs: dict[str, float],
        total: float,
    ):
        self.experiment, self.configs, self.opts = experiment, configs, opts
        self.reporter, self.interrupt, self.needs, self.total = reporter, interrupt, needs, total
        self.envs = registered_creators([c.env for c in configs.values()])
        self.actor_class = ray.remote(TrialActor).options(num_cpus=1, max_concurrency=4)
        self.running: dict[Any, _Running] = {}  # ObjectRef of run() -> the trial
        self.results: dict[str, TrialResult] = {}  # of the trials run here, by trial id
        self.errors: dict[str, BaseException] = {}  # what failed some of them

    def run(self, todo: list[Trial]) -> None:
        queue = list(todo)
        stop_sent = False
        try:
            while queue or self.running:
                while queue and not self.interrupt.requested and self._fits(queue[0]):
                    self._launch(queue.pop(0))
                if self.interrupt.requested and not stop_sent:  # Ctrl-C: each trial stops after its iteration
                    for run in self.running.values():
                        run.actor.request_stop.remote()
                    stop_sent = True
                    queue.clear()  # trials not started stay PENDING, as in a local run
                ready, _ = ray.wait(list(self.running), num_returns=1, timeout=POLL_S)
                self._poll()
                for ref in ready:
                    self._finish(self.running.pop(ref))
        except BaseException:  # a second Ctrl-C, or a ConfigError from a trial: stop every trial at once
            for run in self.running.values():
                ray.kill(run.actor)
                run.trial.status = "INTERRUPTED"
            self.running.clear()
            self.experiment.save()
            raise

    def _fits(self, trial: Trial) -> bool:
        used = sum(run.cpus for run in self.running.values())
        return not self.running or used + self.needs[trial.trial_id] <= self.total

    def _launch(self, trial: Trial) -> None:
        actor = self.actor_class.remote(
            trial,
            self.configs[trial.trial_id],
            self.experiment.path.resolve(),
            self.opts,
            self.reporter.verbose,
            self.experiment.started,
            self.envs,
        )
        done = actor.run.remote()
        self.running[done] = _Running(trial, actor, done, self.needs[trial.trial_id])
        trial.status = "RUNNING"
        self.experiment.save()

    def _poll(self) -> None:
        """Print the running trials' new output; write the experiment file when one asks. Never waits:
        a trial whose actor is still starting answers in a later round."""
        for run in self.running.values():
            if run.poll is None:
                run.poll = run.actor.poll.remote()
        pending = {run.poll: run for run in self.running.values()}
        ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
        for ref in ready:
            run = pending[ref]
            run.poll = None
            try:
                lines, waiting = ray.get(ref)
            except ray.exceptions.RayError:  # the actor died: its run() says how, in _finish
                continue
            self._print(run.trial, lines)
            if waiting:
                if not self.experiment.started:
                    self.experiment.start()
                run.actor.experiment_started.remote()

    def _print(self, trial: Trial, lines: list[str]) -> None:
        for line in lines:
            self.reporter.message(f"{trial.trial_id} | {line}" if line else "", level=0)

    def _finish(self, run: _Running) -> None:
        trial = run.trial
        for poll in [run.poll, run.actor.poll.remote()]:  # the last of its output
            try:
                if poll is not None:
                    self._print(trial, ray.get(poll)[0])
            except ray.exceptions.RayError:
                pass
        try:
            back, result, error = ray.get(run.done)
        except ray.exceptions.RayError as exc:  # the trial's process died (killed, out of memory, node lost)
            cause = getattr(exc, "cause", None) or exc
            back, result = trial, None
            back.status, back.error = "ERROR", f"{type(cause).__name__}: {' '.join(str(cause).split())}"
            error = TrainingError(f"Trial {trial.trial_id} failed on Ray: {back.error}")
            self.reporter.message(f"Trial {trial.dirname} failed: {back.error}")
        finally:
            ray.kill(run.actor)
        trial.status, trial.error = back.status, back.error
        self.experiment.save()
        if isinstance(error, ConfigError):
            raise error
        if result is None:
            result = self.opts.load_result(self.experiment.path, trial)
        self.results[trial.trial_id] = result
        if error is not None:
            self.errors[trial.trial_id] = error
