"""Remote env runners on Ray: each actor steps its own vector env with its own copy of the policy and
returns fragments; the driver concatenates them along the env axis, so an on-policy update reads one
[T, N * num_env_runners] Rollout exactly as it reads the local runner's. Evaluation runners play
whole episodes with the weights they are sent.

Every actor is built as this process's runner is: the config's env, when it is a register_env name,
is registered in the actor first (its creator travels with the actor: a Ray worker is a new process,
which never saw this one's register_env calls), replacements included.

Fault tolerance (RLlib's option names): a runner that cannot be built (its constructor raised: an
unknown env, a creator that raises), whose call fails (its env raised, its process or node died) or
that returns nothing within sample_timeout_s is a failed runner, and is killed. With
restart_failed_env_runners it is replaced, after delay_between_env_runner_restarts_s, by a new actor
with the same worker index (the next call sends it the latest weights), while restarts are left
(max_num_env_runner_restarts, over the run); with ignore_env_runner_failures the group goes on without
it. A failure nothing tolerates (neither option, or restarts used up without ignore_env_runner_failures)
is one EnvError naming the runner and the env's own exception; so is a group with no runner left. An
iteration completes with the healthy runners' fragments.

Importing this module imports ray (rlarena.rollout.groups imports it only when a config asks for Ray actors:
RayRunnerGroup, AsyncRayRunnerGroup and RayEvaluation wrap the groups here).
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import ray
import torch

from rlarena.envs.registry import EnvContext, EnvCreator, make_vector_env, register_creators, registered_creators
from rlarena.errors import ConfigError, EnvError, notice
from rlarena.rollout.async_sampling import POLL_S, FaultTolerance, Fragment, behaviour_logp, limit_heap_growth
from rlarena.rollout.factory import (
    EPISODE_ID_STRIDE,
    make_env_runner,
    make_multi_agent_env_runner,
    reseed_policies,
    structure_signature,
)
from rlarena.rollout.multi_agent_episode import Episode
from rlarena.rollout.multi_agent_runner import MultiAgentEnvRunner
from rlarena.rollout.ray_cluster import cpus_needed, ray_init
from rlarena.rollout.runner import EnvRunner, Sample, merge_samples, play_episodes

if TYPE_CHECKING:  # the algorithm layer builds the groups (through rlarena.rollout.groups), not the other way round
    from rlarena.algorithms.config import AlgorithmConfig
    from rlarena.policies.policy import Policy


class _Actor:
    """What every runner actor does while it is built: it registers the driver's register_env names
    first, then builds its envs and policies inside `building()`. An exception there is kept, as one
    line, for `ready()` rather than ending the actor: the driver gets the env's own error, not Ray's
    ActorDiedError with a traceback, and counts it as a failed runner."""

    build_error: str | None = None

    @contextlib.contextmanager
    def building(self, envs: dict[str, EnvCreator], config: AlgorithmConfig) -> Iterator[None]:
        try:
            register_creators(envs)
            torch.set_num_threads(config.num_torch_threads if isinstance(config.num_torch_threads, int) else 1)
            yield
        except Exception as exc:  # noqa: BLE001 - reported by ready(), raised on the driver with the runner's name
            self.build_error = _one_line(exc)

    def ready(self) -> str | None:
        """None once built; else why it could not be (the exception's type and message)."""
        return self.build_error


class _RunnerActor(_Actor):
    """What a remote runner's actor does with the runner it wraps (the runner contract, over Ray)."""

    runner: EnvRunner | MultiAgentEnvRunner

    def sample(self, state: dict[str, dict[str, np.ndarray]]) -> Sample:
        """Take the driver's weights, filter states and exploration (get_state() of its runner; Ray
        resolves the ObjectRef before the call), sample one fragment. A multi-agent runner's finished
        episodes go back whole: the driver counts them and calls on_episode_end."""
        self.runner.set_state(state)
        return self.runner.sample()

    def sample_async(self, state: dict[str, dict[str, np.ndarray]], version: int) -> tuple[int, Sample]:
        """sample() for a learner that moved on meanwhile (sample_async): the fragment comes back with
        the version of the weights that sampled it and their log-probs of its actions."""
        if not getattr(self, "_heap_limited", False):
            limit_heap_growth()
            self._heap_limited = True
        self.runner.set_state(state)
        sample = self.runner.sample()
        behaviour_logp(self.runner.policies, sample)
        return version, sample

    def reset(self, seed: int | None) -> None:
        """Start fresh episodes (after the driver restored a checkpoint), forgetting the unfinished ones."""
        self.runner.reset(seed)

    def close(self) -> None:
        self.runner.close()


class RemoteEnvRunner(_RunnerActor):
    """The body of one Ray actor: the local EnvRunner over a vector env of its own, its envs told
    worker_index (1..N) and num_workers (N) through their EnvContext."""

    runner: EnvRunner

    def __init__(
        self,
        envs: dict[str, EnvCreator],
        config: AlgorithmConfig,
        policy: Policy,
        worker_index: int,
        env_seed: int | None,
        env_name: str,
    ):
        with self.building(envs, config):
            self.runner = make_env_runner(config, lambda *spaces: policy, env_seed, env_name, worker_index)


class RemoteMultiAgentEnvRunner(_RunnerActor):
    """The body of one Ray actor for a multi-agent env: the local MultiAgentEnvRunner over
    num_envs_per_env_runner env copies of its own, with copies of every policy (trained, frozen and
    heuristic). The driver sends the policy set again when it changes (a league grows)."""

    runner: MultiAgentEnvRunner

    def __init__(
        self,
        envs: dict[str, EnvCreator],
        config: AlgorithmConfig,
        structure: tuple[dict[str, Policy], Callable[..., str], list[str]],
        worker_index: int,
        env_seed: int | None,
        action_seed: int | None,
        env_name: str,
    ):
        with self.building(envs, config):
            policies, mapping_fn, policies_to_train = structure
            reseed_policies(policies, action_seed)
            self.runner = make_multi_agent_env_runner(
                config,
                dict(policies),
                mapping_fn,
                policies_to_train,
                env_seed,
                env_name,
                worker_index,
                episode_ids=itertools.count(worker_index * EPISODE_ID_STRIDE),
            )

    def set_structure(self, structure: tuple[dict[str, Policy], Callable[..., str], list[str]]) -> None:
        """The driver's policies, mapping function and policies to train, after it changed them."""
        policies, mapping_fn, policies_to_train = structure
        for pid in set(self.runner.policies) - set(policies):
            self.runner.forget_policy(pid)
        self.runner.policies.clear()
        self.runner.policies.update(policies)
        self.runner.mapping_fn, self.runner.policies_to_train = mapping_fn, set(policies_to_train)


class RemoteEvalRunner(_Actor):
    """The body of one evaluation actor: in-process envs (evaluation is short), whole episodes with
    the weights of each call. Its envs' EnvContext says worker_index 1..M of the M evaluation runners."""

    def __init__(
        self,
        envs: dict[str, EnvCreator],
        config: AlgorithmConfig,
        policy: Policy,
        worker_index: int,
        num_envs: int,
        env_name: str,
    ):
        with self.building(envs, config):
            context = EnvContext(
                config.env_config, worker_index=worker_index, num_workers=config.evaluation_num_env_runners, remote=True
            )
            mode = "sync" if config.vectorization_mode in ("subproc", "async") else config.vectorization_mode
            assert config.env is not None, "evaluation runners are made only for a config with an env"
            self.env = make_vector_env(config.env, context, num_envs, mode)
            self.policy, self.env_name = policy, env_name

    def evaluate(
        self, weights: dict[str, np.ndarray], num_episodes: int, explore: bool, seed: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        self.policy.set_state(weights)
        return play_episodes(self.env, self.policy, num_episodes, explore, seed, self.env_name)

    def close(self) -> None:
        self.env.close()


def _mapped_in_evaluate(agent_id: Any, episode: Any, **kwargs: Any) -> str:
    """The mapping function of a multi-agent evaluation runner until evaluate() brings the one to play with
    (no episode maps an agent before that)."""
    raise AssertionError("an evaluation runner maps agents only in evaluate(), with the mapping function it is sent")


class RemoteMultiAgentEvalRunner(_Actor):
    """The body of one evaluation actor for a multi-agent env: env copies of its own; each call brings
    the policies (weights included) and the mapping function the evaluation plays with."""

    def __init__(
        self, envs: dict[str, EnvCreator], config: AlgorithmConfig, worker_index: int, num_envs: int, env_name: str
    ):
        with self.building(envs, config):
            self.runner = make_multi_agent_env_runner(
                config,
                {},
                _mapped_in_evaluate,
                [],
                None,
                env_name,
                worker_index,
                num_envs,
                num_workers=config.evaluation_num_env_runners,
            )

    def evaluate(
        self,
        structure: tuple[dict[str, Policy], Callable[..., str], list[str]],
        num_episodes: int,
        explore: bool,
        seed: int | None,
    ) -> list[Episode]:
        self.runner.policies, self.runner.mapping_fn, _ = structure
        return self.runner.play_episodes(num_episodes, explore, seed)

    def close(self) -> None:
        self.runner.close()


@dataclass
class _Slot:
    """One worker index of a group: its actor (None while it waits for a restart)."""

    worker_index: int
    actor: Any
    failed_at: float | None = None  # when its last actor failed (time.monotonic)
    failure: str = ""  # how its last actor failed (a line naming the runner and the error)
    synced: Any = None  # the policy set its actor has (multi-agent runners)
    started: Any = None  # an ObjectRef ready once the actor is built (None once it was seen ready)
    made_at: float = 0.0  # when the actor was made (time.monotonic)

    def __post_init__(self) -> None:
        self.new_actor(self.actor)

    def new_actor(self, actor: Any) -> None:
        self.actor, self.failed_at, self.synced = actor, None, None
        self.started, self.made_at = actor.ready.remote(), time.monotonic()


# how long a new actor may take to build (Ray starts a process, imports torch, builds the envs)
# before its first call's sample_timeout_s starts counting
START_TIMEOUT_S = 300.0


class _ActorGroup(FaultTolerance):
    """Actors with worker indices 1..N made by `make_actor(worker_index, restarts)`, the health of
    each, and the fault-tolerance rules of the config. `self.envs` (set before the first actor is
    made): the creator of the config's register_env name, put in Ray's object store once, which
    make_actor gives every actor (replacements too) as its first argument."""

    kind = "env runner"

    def __init__(self, config: AlgorithmConfig, num_actors: int, make_actor: Callable[[int, int], Any], env_name: str):
        self.config, self.env_name, self.make_actor = config, env_name, make_actor
        self.envs = _put_creators(config)
        self.restarts = 0  # over the run, every worker index
        self.slots = [_Slot(i, make_actor(i, 0)) for i in range(1, num_actors + 1)]

    def __len__(self) -> int:
        return len(self.slots)

    @property
    def actors(self) -> list[Any]:
        """The live actors, in worker-index order."""
        return [slot.actor for slot in self.slots if slot.actor is not None]

    @property
    def num_healthy(self) -> int:
        """Runners alive and started (a replacement counts once it has started)."""
        return sum(slot.actor is not None and slot.started is None for slot in self.slots)

    def _healthy_slots(self) -> list[_Slot]:
        """The slots with an actor, after restarting those whose delay has passed. A failed runner
        whose restart can no longer come (restarts used up) stops training unless failures are
        ignored: EnvError. When none is left, wait for the next restart; none can come: EnvError."""
        cfg = self.config
        delay = cfg.delay_between_env_runner_restarts_s
        while True:
            for slot in self.slots:
                if slot.actor is not None:
                    continue
                assert slot.failed_at is not None  # a slot without an actor is one that failed (_fail sets both)
                if not self._may_restart():
                    if not cfg.ignore_env_runner_failures:
                        raise EnvError(self._stop_message(slot.failure))
                elif time.monotonic() - slot.failed_at >= delay:
                    self.restarts += 1
                    slot.new_actor(self.make_actor(slot.worker_index, self.restarts))
                    notice(
                        f"Remote {self.kind} {slot.worker_index} restarted (restart {self.restarts} of at most "
                        f"{cfg.max_num_env_runner_restarts})."
                    )
            healthy = [slot for slot in self.slots if slot.actor is not None]
            if healthy:
                return healthy
            if not self._may_restart():
                last = max(self.slots, key=lambda slot: slot.failed_at or 0.0)
                raise EnvError(
                    f"Every remote {self.kind} of {len(self.slots)} (env {self.env_name!r}) has failed"
                    f"{' and its restarts are used up' if cfg.restart_failed_env_runners else ''}: "
                    f"nothing left to sample. The last: {last.failure}."
                )
            # none is healthy: every slot failed, each at its failed_at
            due = min(slot.failed_at for slot in self.slots if slot.failed_at is not None) + delay
            time.sleep(max(0.0, due - time.monotonic()))

    def _ready_slots(self) -> list[_Slot]:
        """The healthy slots whose actor has started, the ones to call now. A new actor (a restart)
        joins once it has started, without holding up the others; while none has started (the first
        call) they are all waited for. One that fails to start, or takes longer than START_TIMEOUT_S,
        fails its runner."""
        while True:
            healthy = self._healthy_slots()
            starting = [slot for slot in healthy if slot.started is not None]
            if starting:
                wait = len(starting) == len(healthy)  # nothing to call meanwhile: wait for them all
                oldest = min(slot.made_at for slot in starting)
                timeout = max(0.0, START_TIMEOUT_S - (time.monotonic() - oldest)) if wait else 0
                ready, _ = ray.wait([slot.started for slot in starting], num_returns=len(starting), timeout=timeout)
                for slot in starting:
                    if slot.started in ready:
                        try:
                            error = ray.get(slot.started)
                        except ray.exceptions.RayError as exc:  # its process died, or its arguments did not load
                            self._fail(slot.worker_index, _cause(exc))
                            continue
                        if error is None:
                            slot.started = None
                        else:  # its constructor raised (the env's own error)
                            self._fail(slot.worker_index, f"building it raised {error}")
                    elif time.monotonic() - slot.made_at >= START_TIMEOUT_S:
                        self._fail(slot.worker_index, f"did not start within {START_TIMEOUT_S:g} s")
            callable_now = [slot for slot in healthy if slot.actor is not None and slot.started is None]
            if callable_now:
                return callable_now

    def _gather(self, calls: dict[int, Any]) -> dict[int, Any]:
        """Wait for {worker index: ObjectRef} up to sample_timeout_s; {worker index: value} of the calls
        that answered. A call that raised or did not answer in time fails its runner (_fail)."""
        refs = list(calls.values())
        if not refs:
            return {}
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=self.config.sample_timeout_s)
        ready_set = set(ready)
        out = {}
        for index, ref in calls.items():
            if ref not in ready_set:
                self._fail(
                    index,
                    f"returned nothing within sample_timeout_s={self.config.sample_timeout_s} s "
                    f"(a hung env? raise sample_timeout_s for slow envs)",
                )
                continue
            try:
                out[index] = ray.get(ref)
            except ray.exceptions.RayError as exc:
                self._fail(index, _cause(exc))
        return out

    def _fail(self, worker_index: int, what: str) -> None:
        """Kill runner `worker_index`; raise unless the config tolerates its failure (a restart is
        left, or failures are ignored)."""
        slot = self.slots[worker_index - 1]
        actor, slot.actor, slot.failed_at, slot.synced = slot.actor, None, time.monotonic(), None
        ray.kill(actor)
        slot.failure = f"Remote {self.kind} {worker_index} of {len(self.slots)} (env {self.env_name!r}) failed: {what}"
        self._tolerate(slot.failure)

    def stop(self) -> None:
        """Close every actor's envs (their worker processes, with vectorization_mode="subproc"), then
        kill the actors. The Ray instance stays up for the next algorithm, as with RLlib."""
        try:
            ray.get([actor.close.remote() for actor in self.actors], timeout=10)
        except ray.exceptions.RayError:  # a dead or stuck runner: killed below all the same
            pass
        for actor in self.actors:
            ray.kill(actor)
        for slot in self.slots:
            slot.actor = None


def _one_line(exc: BaseException) -> str:
    """An exception as one line: its type and message."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _cause(exc: Exception) -> str:
    """A remote error in one line: the env's own exception (type and message) when there is one. An
    actor whose creation failed before its constructor ran (its arguments did not load) ends its
    message with the error's own last line, after Ray's traceback: that line is kept."""
    if isinstance(exc, ray.exceptions.RayActorError) and exc.actor_init_failed:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        return f"{type(exc).__name__}: {lines[-1]}" if lines else type(exc).__name__
    return _one_line(getattr(exc, "cause", None) or exc)


def _put_creators(config: AlgorithmConfig) -> Any:
    """The creator of the config's register_env name ({} for any other env), in Ray's object store.
    Ray pickles it by value (cloudpickle: lambdas and closures too); one that cannot be is refused."""
    envs = registered_creators([config.env])
    try:
        return ray.put(envs)
    except Exception as exc:  # noqa: BLE001 - what pickling raises depends on what the creator holds
        raise ConfigError(
            f"The creator registered as {config.env!r} cannot be sent to Ray's env runners: "
            f"{_one_line(exc)}. Make it build what it needs (clients, locks, open files) inside "
            f"the call rather than hold it, or use num_env_runners=0."
        ) from None


class RemoteEnvRunnerGroup(_ActorGroup):
    """num_env_runners actors (worker indices 1..N) that implement the runner contract together:
    sample(state) -> Sample, the runners' fragments put side by side per policy and their finished
    episodes, in worker-index order (so a seeded run repeats whatever order the actors finish in).

    Single-agent envs: RemoteEnvRunner actors, runner i made with policy_for(i, restarts).
    Multi-agent envs (`structure` given): RemoteMultiAgentEnvRunner actors; structure() gives the
    driver's current (policies, mapping function, policies to train), which a runner gets when made
    and again before its next fragment whenever it changed (a policy added or removed, the mapping
    replaced). Runner i's envs reset with env_seed_for(i, restarts), its actions sample with
    action_seed_for(i, restarts)."""

    def __init__(
        self,
        config: AlgorithmConfig,
        env_name: str,
        env_seed_for: Callable[[int, int], int | None],
        policy_for: Callable[[int, int], Policy] | None = None,
        structure: Callable[[], tuple[dict[str, Policy], Any, list[str]]] | None = None,
        action_seed_for: Callable[[int, int], int | None] | None = None,
    ):
        ray_init(
            config.ray_address,
            cpus_needed(config.num_env_runners + config.evaluation_num_env_runners, config.num_cpus_per_env_runner),
        )
        self.structure = structure
        make: Callable[[int, int], Any]
        if structure is None:
            assert policy_for is not None, "single-agent runners on Ray need policy_for"
            single = ray.remote(RemoteEnvRunner).options(num_cpus=config.num_cpus_per_env_runner)
            make = lambda i, r: single.remote(self.envs, config, policy_for(i, r), i, env_seed_for(i, r), env_name)
        else:
            assert action_seed_for is not None, "multi-agent runners on Ray need action_seed_for"
            multi = ray.remote(RemoteMultiAgentEnvRunner).options(num_cpus=config.num_cpus_per_env_runner)
            make = lambda i, r: multi.remote(
                self.envs, config, structure(), i, env_seed_for(i, r), action_seed_for(i, r), env_name
            )
        super().__init__(config, config.num_env_runners, make, env_name)

    def reset(self, seed_for: Callable[[int], int | None]) -> None:
        """Every healthy runner starts fresh episodes, runner i's envs seeded with seed_for(i)."""
        self._gather({s.worker_index: s.actor.reset.remote(seed_for(s.worker_index)) for s in self._ready_slots()})

    def sample(self, state: dict[str, dict[str, np.ndarray]]) -> Sample:
        """Send the state once (one ray.put every runner reads; the policy set first to the runners
        that lack the current one) and gather every healthy runner's Sample. When every runner fails
        in one call, the call is made again with those restarted (or raises)."""
        while True:
            ref, sync = ray.put(state), self._sync()
            calls = {}
            for slot in self._ready_slots():
                sync(slot)
                calls[slot.worker_index] = slot.actor.sample.remote(ref)
            answers = self._gather(calls)
            if answers:
                break
        return merge_samples([answers[i] for i in sorted(answers)])

    def _sync(self) -> Callable[[_Slot], None]:
        """What brings a runner's policy set up to date before a sample (multi-agent runners)."""
        if self.structure is None:
            return lambda slot: None
        structure = self.structure()
        signature = structure_signature(*structure)
        refs: list[Any] = []

        def sync(slot: _Slot) -> None:
            if slot.synced is None:  # a new actor was made with the structure of now
                slot.synced = signature
            if slot.synced != signature:
                if not refs:
                    refs.append(ray.put(structure))
                slot.actor.set_structure.remote(refs[0])  # runs before the sample (an actor's calls keep order)
                slot.synced = signature

        return sync


class RemoteEvalRunnerGroup(_ActorGroup):
    """evaluation_num_env_runners actors; an evaluation's episodes are split evenly over the healthy
    ones, each with its own seed, and returned in worker-index order. Single-agent envs:
    RemoteEvalRunner actors made with policy_for(i, restarts), sent the weights of each evaluation.
    Multi-agent envs (`multi_agent`): RemoteMultiAgentEvalRunner actors, sent the policies and mapping
    function (the evaluation's `what`) each time."""

    kind = "evaluation runner"

    def __init__(
        self,
        config: AlgorithmConfig,
        env_name: str,
        policy_for: Callable[[int, int], Policy] | None = None,
        multi_agent: bool = False,
    ):
        ray_init(
            config.ray_address,
            cpus_needed(config.num_env_runners + config.evaluation_num_env_runners, config.num_cpus_per_env_runner),
        )
        per_runner = -(-config.evaluation_duration // config.evaluation_num_env_runners)
        num_envs = min(config.num_eval_envs, per_runner)
        self.multi_agent = multi_agent
        make: Callable[[int, int], Any]
        if multi_agent:
            multi = ray.remote(RemoteMultiAgentEvalRunner).options(num_cpus=config.num_cpus_per_env_runner)
            make = lambda i, r: multi.remote(self.envs, config, i, num_envs, env_name)
        else:
            assert policy_for is not None, "single-agent evaluation runners on Ray need policy_for"
            single = ray.remote(RemoteEvalRunner).options(num_cpus=config.num_cpus_per_env_runner)
            make = lambda i, r: single.remote(self.envs, config, policy_for(i, r), i, num_envs, env_name)
        super().__init__(config, config.evaluation_num_env_runners, make, env_name)

    def start(
        self, what: Any, num_episodes: int, explore: bool, seed_for: Callable[[int], int | None]
    ) -> dict[int, Any]:
        """Start an evaluation on the healthy runners (runner i plays its share with seed_for(i)) of
        `what`: the policy's weights, or (multi-agent) the (policies, mapping function, policies to
        train) to play; finish() collects it. Returns the pending calls."""
        slots = self._ready_slots()
        ref = ray.put(what)
        shares = [(num_episodes + k) // len(slots) for k in range(len(slots))]
        return {
            s.worker_index: s.actor.evaluate.remote(ref, n, explore, seed_for(s.worker_index))
            for s, n in zip(slots, shares)
            if n > 0
        }

    def finish(self, calls: dict[int, Any]) -> Any:
        """The started evaluation's episodes in worker-index order: (returns, lengths) arrays, or the
        multi-agent Episodes; a runner that failed meanwhile counts no episode (or raises, per the
        fault-tolerance options)."""
        answers = self._gather(calls)
        if not answers:
            raise EnvError(f"Every remote evaluation runner failed during the evaluation (env {self.env_name!r}).")
        parts = [answers[i] for i in sorted(answers)]
        if self.multi_agent:
            return [episode for part in parts for episode in part]
        return np.concatenate([r for r, _ in parts]), np.concatenate([n for _, n in parts])


class AsyncRemoteSampler:
    """The remote env runners sampling while the learner learns (sample_async with num_env_runners > 0):
    each runner keeps max_requests_in_flight_per_env_runner calls under way, each with the newest
    weights when it started; poll() takes the fragments that are done and starts the next calls at
    once. The group's fault tolerance applies: a runner that fails or answers nothing within
    sample_timeout_s is restarted, dropped or reported, and the learner never waits on it."""

    def __init__(self, group: RemoteEnvRunnerGroup, state: dict[str, Any]):
        self.group, self.config = group, group.config
        self.version = 0
        self.state_ref = ray.put(state)
        self.pending: dict[Any, tuple[int, float]] = {}  # ObjectRef -> (worker index, when it started)

    @property
    def num_healthy(self) -> int:
        return self.group.num_healthy

    @property
    def restarts(self) -> int:
        return self.group.restarts

    def broadcast(self, state: dict[str, Any]) -> int:
        self.version += 1
        self.state_ref = ray.put(state)
        return self.version

    def _launch(self) -> None:
        """Top every ready runner up to its calls in flight, with the newest weights."""
        depth = self.config.max_requests_in_flight_per_env_runner
        in_flight: dict[int, int] = {}
        for index, _ in self.pending.values():
            in_flight[index] = in_flight.get(index, 0) + 1
        sync = self.group._sync()
        for slot in self.group._ready_slots():
            for _ in range(depth - in_flight.get(slot.worker_index, 0)):
                sync(slot)
                ref = slot.actor.sample_async.remote(self.state_ref, self.version)
                self.pending[ref] = (slot.worker_index, time.monotonic())

    def poll(self, min_steps: int) -> list[Fragment]:
        fragments: list[Fragment] = []
        steps = 0
        while steps < min_steps or not fragments:
            self._launch()
            pending = list(self.pending)
            if ray.wait(pending, num_returns=1, timeout=POLL_S)[0]:  # one is done: take every one done
                ready = ray.wait(pending, num_returns=len(pending), timeout=0)[0]
            else:
                ready = []
            for ref in ready:
                index, _ = self.pending.pop(ref)
                slot = self.group.slots[index - 1]
                if slot.actor is None:  # failed since: its answer is dropped
                    continue
                try:
                    version, sample = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    self._drop(index)
                    self.group._fail(index, _cause(exc))
                    continue
                fragments.append(Fragment(sample, version, index))
                steps += sample.steps
            timeout = self.config.sample_timeout_s
            late = {
                index
                for index, started in self.pending.values()
                if timeout is not None and time.monotonic() - started > timeout
            }
            for index in late:
                self._drop(index)
                self.group._fail(
                    index,
                    f"returned nothing within sample_timeout_s={timeout} s (a hung env? raise "
                    f"sample_timeout_s for slow envs)",
                )
        return fragments

    def _drop(self, worker_index: int) -> None:
        for ref in [r for r, (i, _) in self.pending.items() if i == worker_index]:
            del self.pending[ref]

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Wait until every call under way is done (their fragments are taken by the next poll)."""
        if self.pending:
            ray.wait(list(self.pending), num_returns=len(self.pending), timeout=timeout)

    def reset(self, state: dict[str, Any]) -> None:
        """New weights for every call from now on; the fragments under way are dropped."""
        self.wait_idle()
        self.pending.clear()
        self.broadcast(state)

    def stop(self) -> None:
        self.pending.clear()  # the group's actors are stopped by its runner group (rlarena.rollout.groups)
