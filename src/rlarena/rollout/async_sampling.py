"""Sampling that overlaps learning: env runners in worker processes keep sampling with the weights they
have while the learner updates (IMPALA, APPO, and PPO/A2C with sample_async=True).

Each worker process holds its own runner (its envs and its own copy of the policies, forked from the
learner's), so it never reads weights while they change. Per fragment it:

1. takes a credit (a semaphore the learner releases when it takes one of the worker's fragments): at
   most `max_requests_in_flight_per_env_runner` of its fragments wait or are being sampled, so memory
   stays flat however long it runs and however slow the learner is;
2. takes the newest weights from the mailbox, shared memory the learner overwrites under a lock held
   only for the copy (neither side waits for the other);
3. samples a fragment and computes, in one batched forward, the log-probs of the actions under the
   weights that sampled them (the behaviour policy; V-trace and the PPO ratio need them);
4. sends the fragment, its weights version and worker index to the learner, pickled at once (the
   runner's storage is reused by the next fragment).

With one credit the worker samples fragment k + 1 while the learner updates on fragment k: one
fragment of policy lag. A worker that cannot build its runner (an env creator that raises), dies,
raises, or sends nothing for sample_timeout_s is handled as a failed remote runner (the
fault-tolerance options): restarted with the same worker index and the latest weights while
max_num_env_runner_restarts allows, dropped with ignore_env_runner_failures, or an EnvError naming it
and the env's own exception.

Processes are forked (POSIX), never spawned: env creators that are lambdas or closures work, names
registered with register_env are known there (the child inherits the registry as it is at the fork:
the first sample, a restart), and a worker starts in tens of milliseconds, with no import of torch
again. The forked worker uses one torch thread.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import queue
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rlarena.errors import ConfigError, EnvError, notice
from rlarena.rollout.runner import Sample, merge_samples

# how often a waiting worker or learner looks again at whether it should stop or a worker died (s)
POLL_S = 0.2


class FaultTolerance:
    """The .fault_tolerance() rules for failed runners, wherever they run (this module's sampling
    processes, Ray's actors in rlarena.rollout.ray_runners): a failed runner is restarted while
    max_num_env_runner_restarts lasts (counted over the run, every runner together), left out with
    ignore_env_runner_failures, and otherwise stops training with one error that names both options.
    Subclasses hold `config` and `restarts`; `runners` names them in that error."""

    config: Any
    restarts: int
    runners = "runners"

    def _may_restart(self) -> bool:
        cfg = self.config
        return bool(cfg.restart_failed_env_runners and self.restarts < cfg.max_num_env_runner_restarts)

    def _tolerate(self, failure: str) -> None:
        """Say that `failure` happened and what follows: a restart, or going on without the runner;
        raise EnvError when the config tolerates neither."""
        cfg = self.config
        if self._may_restart():
            notice(f"{failure}; restarting it in {cfg.delay_between_env_runner_restarts_s:g} s.")
        elif cfg.ignore_env_runner_failures:
            notice(f"{failure}; going on without it.")
        else:
            raise EnvError(self._stop_message(failure))

    def _stop_message(self, failure: str) -> str:
        """The error of a failure that stops training: what failed and what the options allow."""
        cfg = self.config
        if cfg.restart_failed_env_runners:
            return (
                f"{failure}. Its restart cannot come: the max_num_env_runner_restarts="
                f"{cfg.max_num_env_runner_restarts} restarts are used up. Raise it, or go on without failed "
                f"{self.runners}: .fault_tolerance(ignore_env_runner_failures=True)."
            )
        return (
            f"{failure}. To go on without it or restart it: .fault_tolerance(ignore_env_runner_failures=True) "
            f"or .fault_tolerance(restart_failed_env_runners=True)."
        )


def behaviour_logp(policies: dict[str, Any], sample: Sample) -> None:
    """Set each batch's behaviour_logp [T, N]: the log-probs of its actions under the weights that
    sampled them (the policy now, before any new weights arrive), in one forward per policy. The
    learner's own forward of the same steps gives the target log-probs."""
    for pid, batch in sample.batches.items():
        batch.behaviour_logp = fragment_logp(policies[pid], batch)


def fragment_logp(policy: Any, batch: Any) -> np.ndarray:
    """float32 [T, N]: the log-probs of a fragment's actions under `policy` now, in one forward (a
    recurrent model's: unrolled from the fragment's stored state, with its stored previous actions and
    rewards)."""
    from rlarena.nn.distributions import masked

    T, N = batch.rewards.shape
    obs = torch.from_numpy(batch.obs[:T].reshape(T * N, -1))
    actions = torch.from_numpy(batch.actions.reshape(T * N, *batch.actions.shape[2:]))
    mask = None if batch.action_mask is None else torch.from_numpy(batch.action_mask[:T].reshape(T * N, -1))
    with torch.no_grad():
        if batch.state_in is not None:  # a recurrent model: the fragment unrolled from its stored state
            starts = np.zeros((T, N), bool)
            starts[1:] = ~batch.valid[:-1]  # step t only reset the env: observation t + 1 starts an episode
            extra = getattr(policy.model, "extra_dim", 0)  # the previous action and reward, as stored
            dist_inputs, _, _ = policy.model.unroll(
                torch.from_numpy(batch.obs[:T]),
                torch.from_numpy(batch.state_in[0]),
                torch.from_numpy(starts),
                torch.from_numpy(batch.state_in[:T, :, batch.state_in.shape[-1] - extra :]) if extra else None,
            )
            dist_inputs = dist_inputs.reshape(T * N, -1)
        else:
            dist_inputs, _ = policy.model(obs)
        logp, _ = policy.dist.log_prob_entropy(masked(dist_inputs, mask), actions, False)
    return logp.numpy().reshape(T, N)


class Mailbox:
    """The newest weights (pickled) and their version, in shared memory, for every worker to copy."""

    def __init__(self, ctx: Any, payload: bytes):
        self.capacity = 2 * len(payload) + 2**20
        self.lock = ctx.Lock()
        self.version = ctx.RawValue("q", -1)
        self.size = ctx.RawValue("q", 0)
        self.buffer = ctx.RawArray("B", self.capacity)

    def write(self, version: int, payload: bytes) -> bool:
        """False when the payload outgrew the buffer (the caller then starts the workers afresh)."""
        if len(payload) > self.capacity:
            return False
        with self.lock:
            np.frombuffer(self.buffer, np.uint8, len(payload))[:] = np.frombuffer(payload, np.uint8)
            self.size.value, self.version.value = len(payload), version
        return True

    def read(self, seen: int) -> tuple[int, Any] | None:
        """(version, state) when newer than `seen`, else None."""
        if self.version.value == seen:  # (a stale read only delays the copy to the next fragment)
            return None
        with self.lock:
            version, payload = self.version.value, bytes(np.frombuffer(self.buffer, np.uint8, self.size.value))
        return version, pickle.loads(payload)


def limit_heap_growth() -> None:
    """Fix glibc's mmap threshold at its default (128 KiB) in a sampling process. Left dynamic, glibc
    raises it to the size of each large block freed (the behaviour forward's [T * N, hidden]
    activations), so those blocks come from the heap, between the env's small allocations, and the
    heap only grows: 1.8 GB after 450 LunarLander fragments, measured. Fixed, large blocks are mapped
    and returned to the system whole. Elsewhere than glibc: nothing to do."""
    import ctypes

    try:
        ctypes.CDLL(None).mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


@dataclass
class Fragment:
    """One worker's fragment as the learner receives it."""

    sample: Sample  # its batches carry behaviour_logp
    weights_version: int  # the version of the weights that sampled it
    worker_index: int


def _worker_main(
    build: Callable[[], Any],
    policies_of: Callable[[Any], dict[str, Any]],
    worker: tuple[int, int],
    credits: Any,
    mailbox: Mailbox,
    out: Any,
    stop: Any,
    busy_since: Any,
) -> None:
    """The loop of one worker process (forked: `build` and everything it closes over are its copies);
    `worker`: its index and generation (restarts of that index), which every message carries."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the learner's to handle (it stops us)
    # This process is daemonic (it ends with the learner), and multiprocessing refuses children to a
    # daemonic process; the runner's vector env may need some (vectorization_mode "subproc" or "async").
    # They are daemonic themselves, so this process's exit (stop(), an error) terminates them. (The
    # setter allows it here: in a forked child, the Process object has not recorded a started process.)
    mp.current_process().daemon = False
    torch.set_num_threads(1)
    limit_heap_growth()
    built = False
    try:
        runner = build()
        policies = policies_of(runner)
        built = True
        version, state = -1, None
        while not stop.is_set():
            if not credits.acquire(timeout=POLL_S):
                continue
            busy_since.value = time.time()
            latest = mailbox.read(version)
            if latest is not None:
                version, state = latest
            # every fragment from the learner's state: the runner's own filter learned from the last
            # fragment, and the learner's (which learns from every runner's) is the one to use
            runner.set_state(state)
            sample = runner.sample()
            behaviour_logp(policies, sample)
            payload = pickle.dumps(("ok", worker, version, sample), protocol=pickle.HIGHEST_PROTOCOL)
            out.put(payload)
            busy_since.value = 0.0
    except KeyboardInterrupt:
        pass
    except BaseException as exc:  # noqa: BLE001 - sent to the learner, which raises it with the env's name
        detail = f"{'' if built else 'building it raised '}{type(exc).__name__}: {' '.join(str(exc).split())}"
        out.put(pickle.dumps(("error", worker, detail, traceback.format_exc())))
    finally:
        out.close()
        out.join_thread()  # what was put reaches the learner before the process ends


class _Worker:
    """One worker index: its process (None while it waits for a restart) and credits."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.generation = 0  # processes started for this index
        self.proc: Any = None
        self.credits: Any = None
        self.busy_since: Any = None  # when it started the fragment it samples (time.time()); 0: waiting
        self.failed_at: float | None = None
        self.failure = ""  # how its last process failed (a line naming it and the error)


class AsyncSampler(FaultTolerance):
    """`num_workers` forked worker processes sampling into one queue.

    build(worker_index, restarts) -> a runner (the runner contract, rlarena.rollout.runner), called in
    the worker process; policies_of(runner) -> {policy id: policy} whose models compute the behaviour
    log-probs. broadcast(state) sends new weights (get_state() of the learner's runner); poll() returns
    the fragments that are ready, waiting for at least one.
    """

    runners = "processes"

    def __init__(
        self,
        config: Any,
        env_name: str,
        num_workers: int,
        build: Callable[[int, int], Any],
        policies_of: Callable[[Any], dict[str, Any]],
        state: dict[str, Any],
    ):
        if sys.platform == "win32":
            raise ConfigError(
                "sample_async=True samples in forked worker processes, which Windows lacks; set "
                "sample_async=False, or num_env_runners > 0 to sample on Ray actors."
            )
        self.config, self.env_name = config, env_name
        self.build, self.policies_of = build, policies_of
        self.depth = config.max_requests_in_flight_per_env_runner
        self.ctx = mp.get_context("fork")
        self.out = self.ctx.Queue()  # bounded by the credits: at most depth fragments per worker
        self.stop_event = self.ctx.Event()
        self.version = 0
        self.mailbox = self._new_mailbox(state)
        self.restarts = 0
        self.received: list[Fragment] = []  # read from the queue while checking health, for the next poll
        self.workers = [_Worker(i) for i in range(1, num_workers + 1)]
        for worker in self.workers:
            self._start(worker)

    # -- processes ----------------------------------------------------------------------------
    @staticmethod
    def _pickled(state: dict[str, Any]) -> bytes:
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    def _new_mailbox(self, state: dict[str, Any]) -> Mailbox:
        """A mailbox sized for `state`, holding it as the current version."""
        payload = self._pickled(state)
        mailbox = Mailbox(self.ctx, payload)
        mailbox.write(self.version, payload)
        return mailbox

    def _start(self, worker: _Worker) -> None:
        worker.credits = self.ctx.Semaphore(self.depth)
        worker.busy_since = self.ctx.RawValue("d", 0.0)
        worker.generation += 1
        restarts = self.restarts
        worker.proc = self.ctx.Process(
            target=_worker_main,
            daemon=True,
            name=f"rlarena-sampler-{worker.index}",
            args=(
                lambda: self.build(worker.index, restarts),
                self.policies_of,
                (worker.index, worker.generation),
                worker.credits,
                self.mailbox,
                self.out,
                self.stop_event,
                worker.busy_since,
            ),
        )
        worker.proc.start()
        worker.failed_at = None

    @property
    def num_healthy(self) -> int:
        return sum(w.proc is not None for w in self.workers)

    def _fail(self, worker: _Worker, what: str) -> None:
        """Stop worker `worker`; raise unless the config tolerates its failure (a restart is left, or
        failures are ignored), as for remote runners."""
        proc, worker.proc, worker.failed_at = worker.proc, None, time.monotonic()
        if proc is not None and proc.is_alive():
            proc.kill()
            proc.join(timeout=5)
        worker.failure = (
            f"Sampling process {worker.index} of {len(self.workers)} (env {self.env_name!r}) failed: {what}"
        )
        self._tolerate(worker.failure)

    def _check_health(self) -> None:
        """Fail workers whose process ended or that have sampled one fragment for longer than
        sample_timeout_s; restart the failed ones whose delay has passed. A failed worker whose
        restart can no longer come stops training unless failures are ignored; none left and none can
        come: EnvError."""
        timeout = self.config.sample_timeout_s
        if any(w.proc is not None and not w.proc.is_alive() for w in self.workers):
            # a process that ended sent its last message (its error) first: read it, so the env's own
            # error is what fails it
            self._receive_ready()
        for worker in self.workers:
            if worker.proc is None:
                continue
            started = worker.busy_since.value
            if not worker.proc.is_alive():
                self._fail(worker, f"its process ended (exit code {worker.proc.exitcode})")
            elif timeout is not None and started and time.time() - started > timeout:
                self._fail(
                    worker,
                    f"sampled one fragment for longer than sample_timeout_s={timeout} s (a hung "
                    f"env? raise sample_timeout_s for slow envs)",
                )
        cfg = self.config
        for worker in self.workers:
            if worker.proc is not None:
                continue
            assert worker.failed_at is not None  # a worker without a process is one that failed (_fail sets both)
            if not self._may_restart():
                if not cfg.ignore_env_runner_failures:
                    raise EnvError(self._stop_message(worker.failure))
            elif time.monotonic() - worker.failed_at >= cfg.delay_between_env_runner_restarts_s:
                self.restarts += 1
                self._start(worker)
                notice(
                    f"Sampling process {worker.index} restarted (restart {self.restarts} of at most "
                    f"{cfg.max_num_env_runner_restarts})."
                )
        if not any(w.proc is not None for w in self.workers) and not self._may_restart():
            last = max(self.workers, key=lambda w: w.failed_at or 0.0)
            raise EnvError(
                f"Every sampling process of {len(self.workers)} (env {self.env_name!r}) has failed"
                f"{' and its restarts are used up' if cfg.restart_failed_env_runners else ''}: nothing "
                f"left to sample. The last: {last.failure}."
            )

    # -- the learner's side -------------------------------------------------------------------
    def broadcast(self, state: dict[str, Any]) -> int:
        """New weights (and filter state) for every worker; returns their version. A worker takes them
        before its next fragment; one that has not taken the previous ones yet gets these instead."""
        self.version += 1
        if not self.mailbox.write(self.version, self._pickled(state)):  # grown (a league): start afresh
            self.reset(state)
        return self.version

    def poll(self, min_steps: int) -> list[Fragment]:
        """The fragments that are ready, waiting until they hold at least `min_steps` env steps (and
        for at least one). Failed workers are handled on the way (see the module's docstring)."""
        self._check_health()
        while sum(f.sample.steps for f in self.received) < min_steps or not self.received:
            try:
                payload = self.out.get(timeout=POLL_S)
            except queue.Empty:
                self._check_health()
                continue
            self._receive(payload)
        self._receive_ready()  # and what else is ready now
        fragments, self.received = self.received, []
        for fragment in fragments:  # taken: their runners may sample the next ones
            worker = self.workers[fragment.worker_index - 1]
            if worker.proc is not None:
                worker.credits.release()
        return fragments

    def _receive(self, payload: bytes) -> None:
        """A worker's message: a fragment joins self.received; an error fails its worker."""
        kind, (index, generation), *rest = pickle.loads(payload)
        worker = self.workers[index - 1]
        if worker.proc is None or generation != worker.generation:  # from a process failed since: dropped
            return
        if kind == "error":
            detail, trace = rest
            worker.proc.join(timeout=5)
            if os.environ.get("RLARENA_DEBUG"):
                print(trace, file=sys.stderr)
            self._fail(worker, detail)
            return
        version, sample = rest
        self.received.append(Fragment(sample, version, index))

    def _receive_ready(self) -> None:
        """Every message in the queue now, without waiting."""
        while True:
            try:
                payload = self.out.get_nowait()
            except queue.Empty:
                return
            self._receive(payload)

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Wait until no worker is sampling (each has sent the fragments it may and waits for the
        learner): a benchmark that pauses its clock gives the workers no free time."""
        deadline = time.monotonic() + timeout
        while any(w.proc is not None and w.busy_since.value for w in self.workers) and time.monotonic() < deadline:
            time.sleep(0.001)

    def reset(self, state: dict[str, Any]) -> None:
        """Start every worker afresh (new processes, forked from now) with `state`, dropping what they
        had sampled: after a checkpoint was restored, or the set of policies changed."""
        self.close()
        self.out = self.ctx.Queue()
        self.stop_event = self.ctx.Event()
        self.received = []
        self.mailbox = self._new_mailbox(state)
        for worker in self.workers:
            self._start(worker)

    def close(self) -> None:
        self.stop_event.set()
        deadline = time.monotonic() + 5
        for worker in self.workers:
            if worker.proc is None:
                continue
            while worker.proc.is_alive() and time.monotonic() < deadline:
                try:  # a worker blocked on a full pipe finishes its put once we read
                    self.out.get(timeout=0.05)
                except queue.Empty:
                    pass
            if worker.proc.is_alive():
                worker.proc.kill()
            worker.proc.join(timeout=5)
            worker.proc = None
        self.out.close()
        self.out.cancel_join_thread()

    stop = close


def fragments_sample(fragments: list[Fragment]) -> Sample:
    """The fragments side by side (worker-index order, then arrival), as one Sample."""
    return merge_samples([f.sample for f in sorted(fragments, key=lambda f: f.worker_index)])


def policy_lag(fragments: list[Fragment], version: int) -> float:
    """How many weight versions behind the learner's the fragments were sampled, on average."""
    return float(np.mean([version - f.weights_version for f in fragments])) if fragments else float("nan")
