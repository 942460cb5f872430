"""Runner groups: where the env runners that fill an algorithm's batches run, behind one seam.

The algorithm decides *when* to sample; its runner group *collects*. Every group holds this process's
runner (worker 0), which acts with the algorithm's own policy objects: their weights, filter states
and exploration (its get_state()) are what runners elsewhere sample with. make_runner_group() picks
the group once, from the config:

    learns from logged data (an OfflineRunner)   OfflineSource: nothing samples; sample() refuses
    num_env_runners=0, sample_async=False        LocalRunnerGroup: this process's runner samples
    num_env_runners=0, sample_async=True         ForkedRunnerGroup: num_sampling_processes forked
                                                 processes sample while this one learns
    num_env_runners=N, sample_async=False        RayRunnerGroup: N Ray actors, each call with this
                                                 process's state
    num_env_runners=N, sample_async=True         AsyncRayRunnerGroup: the N actors sample while this
                                                 process learns

Every group meets RunnerGroup: sample() -> Sample, reset(seed_for) (fresh episodes after a restore),
broadcast() (this process's state to runners that sample while it learns), health, stats, stop(); and
answers RLlib's EnvRunnerGroup methods (local_env_runner(), num_remote_env_runners(), sync_weights()).

Evaluation has a seam of its own, EvaluationGroup: LocalEvaluation (envs in this process, made at the
first evaluation) or RayEvaluation (evaluation_num_env_runners Ray actors), each evaluation start(seed)
then finish(), so that one on Ray plays while the algorithm trains (evaluation_parallel_to_training).
make_evaluation_group() picks one.

Ray is imported only when a config asks for Ray actors (rlarena.rollout.ray_runners). The
seeds of the runners elsewhere: the table in rlarena.rollout.factory.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from rlarena.envs.registry import make_env_creator, make_vector_env
from rlarena.errors import ConfigError, no_such_policy
from rlarena.multiagent.builder import as_multi_agent
from rlarena.rollout.async_sampling import AsyncSampler, fragments_sample, policy_lag
from rlarena.rollout.factory import (
    EPISODE_ID_STRIDE,
    SALT_ACTIONS,
    SALT_ENVS,
    SALT_EVAL_ACTIONS,
    make_env_runner,
    make_multi_agent_env_runner,
    reseed_policies,
    seed_for,
    structure_signature,
    worker_seed,
)
from rlarena.rollout.multi_agent_runner import MultiAgentEnvRunner, episodes_summary
from rlarena.rollout.runner import EnvRunner, Runner, Sample, episode_summary, evaluate_episodes

if TYPE_CHECKING:  # the algorithm layer builds the groups: the config is only read here
    import gymnasium as gym

    from rlarena.algorithms.config import AlgorithmConfig
    from rlarena.policies.policy import Policy
    from rlarena.rollout.ray_runners import AsyncRemoteSampler, RemoteEnvRunnerGroup, RemoteEvalRunnerGroup
    from rlarena.rollout.storage import Rollout

    # a multi-agent algorithm's (policies, mapping function, policies to train): what runners elsewhere
    # sample and evaluate with, sent again whenever it changes (a league grows)
    Structure = tuple[dict[str, Policy], Callable[..., str], list[str]]
    # make_policy(observation space, action space, seed): a fresh copy of the algorithm's trainable policy
    MakePolicy = Callable[[Any, Any, int | None], Policy]

__all__ = [
    "AsyncRayRunnerGroup",
    "EnvRunnerGroup",
    "EvaluationGroup",
    "ForkedRunnerGroup",
    "LocalEvaluation",
    "LocalRunnerGroup",
    "OfflineRunner",
    "OfflineSource",
    "RayEvaluation",
    "RayRunnerGroup",
    "Runner",
    "RunnerGroup",
    "make_evaluation_group",
    "make_runner_group",
    "sampler_health",
]


@runtime_checkable
class RunnerGroup(Protocol):
    """The seam between an algorithm and the runners that sample for it (see the module's docstring)."""

    runner: Runner  # this process's runner (worker 0): the algorithm's own policies

    def sample(self) -> Sample:
        """One train batch's fragments: the batches per policy in training (several runners' side by
        side), the env steps, the finished episodes."""
        ...

    def reset(self, seed_for: Callable[[int], int | None]) -> None:
        """Fresh episodes everywhere (after a restore: env state cannot be saved): runner i's envs
        seeded from seed_for(i), this process's from seed_for(0); runners that sample while the
        learner learns start again from this process's state."""
        ...

    def broadcast(self) -> None:
        """This process's state to the runners elsewhere that sample while it learns (sample_async);
        nothing to do where each sample takes it."""
        ...

    @property
    def health(self) -> dict[str, int]:
        """RLlib's num_healthy_env_runners and num_env_runner_restarts."""
        ...

    @property
    def stats(self) -> dict[str, float]:
        """What the last sample() saw: with sample_async, policy_lag and num_fragments; else nothing."""
        ...

    def stop(self) -> None:
        """Stop the runners elsewhere; close this process's runner's envs."""
        ...


@runtime_checkable
class EvaluationGroup(Protocol):
    """Where evaluation episodes are played: this process or Ray actors (see the module's docstring)."""

    def start(self, seed: int | None) -> Any:
        """Begin an evaluation of evaluation_duration episodes seeded from `seed` (runners elsewhere
        start playing now); returns what finish() takes."""
        ...

    def finish(self, started: Any) -> dict[str, float]:
        """The started evaluation's metrics: episode_return_mean/std/min/max, episode_len_mean,
        episodes (multi-agent: per policy and per agent too); {} when there is no env to play."""
        ...

    def stop(self) -> None:
        """Close the evaluation envs or stop the evaluation runners."""
        ...


def _no_env_to_sample() -> ConfigError:
    return ConfigError(
        "This algorithm learns from logged data (.offline_data(input_=...)); it has no env to "
        "sample. Leave input_ out to train on the env."
    )


class OfflineRunner:
    """The runner of an algorithm that learns from logged episodes: nothing to sample, no episodes
    (evaluation plays the env when one is given). It holds the algorithm's policies, as every runner does."""

    def __init__(self, policies: dict[str, Policy]) -> None:
        self.policies = policies
        self.policies_to_train: set[str] = set()

    def sample(self) -> Sample:
        raise _no_env_to_sample()

    def get_state(self) -> dict[str, Any]:
        """Nothing samples with it: no state to send."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Nothing samples here."""

    def reset(self, seed: int | None) -> None:
        """No episodes to start."""

    def close(self) -> None:
        """No envs."""

    def forget_policy(self, policy_id: str) -> None:
        """No episodes under way."""


def merge_filters(policies: dict[str, Any], batches: dict[str, Rollout]) -> None:
    """MeanStdFilter with runners elsewhere: each policy's filter (this process's) learns from every
    runner's observations, as it does from its own runner's (they normalized with its statistics)."""
    for pid, batch in batches.items():
        if batch.raw_obs is not None:
            policies[pid].obs_filter.update(batch.raw_obs[:-1][batch.valid])


# -- the groups -----------------------------------------------------------------------------------
def sampler_health(sampler: Any) -> dict[str, int]:
    """RLlib's num_healthy_env_runners and num_env_runner_restarts of sampling processes
    (rlarena.rollout.async_sampling.AsyncSampler; None before they start: 0 and 0)."""
    return {
        "num_healthy_env_runners": 0 if sampler is None else sampler.num_healthy,
        "num_env_runner_restarts": 0 if sampler is None else sampler.restarts,
    }


class EnvRunnerGroup(ABC):
    """What the runner groups share, under RLlib's name (algo.env_runner_group, algo.workers): this
    process's runner, and RLlib's EnvRunnerGroup methods. The defaults are this process's: no runner
    elsewhere to send weights to, none to fail, nothing to report."""

    def __init__(self, runner: Runner):
        self.runner = runner

    @abstractmethod
    def sample(self) -> Sample:
        """One train batch's fragments (RunnerGroup.sample)."""

    def reset(self, seed_for: Callable[[int], int | None]) -> None:
        self.runner.reset(seed_for(0))

    def broadcast(self) -> None:
        """No runner elsewhere samples with older weights."""

    @property
    def health(self) -> dict[str, int]:
        return {"num_healthy_env_runners": 0, "num_env_runner_restarts": 0}

    @property
    def stats(self) -> dict[str, float]:
        return {}

    def stop(self) -> None:
        self.runner.close()

    # -- RLlib's EnvRunnerGroup (WorkerSet before RLlib 2.10) -----------------------------------------
    def local_env_runner(self) -> Runner:
        """This process's runner: it acts with the algorithm's own policy objects (always in sync)."""
        return self.runner

    def local_worker(self) -> Runner:
        """RLlib's older name of local_env_runner()."""
        return self.local_env_runner()

    def num_remote_env_runners(self) -> int:
        """The runners elsewhere: Ray actors or sampling processes (0: this process samples)."""
        return 0

    def num_remote_workers(self) -> int:
        """RLlib's older name of num_remote_env_runners()."""
        return self.num_remote_env_runners()

    def sync_weights(
        self,
        policies: list[str] | None = None,
        from_worker_or_learner_group: Any = None,
        to_worker_indices: list[int] | None = None,
        global_vars: dict | None = None,
        timeout_seconds: float | None = None,
        inference_only: bool = False,
    ) -> None:
        """RLlib's signature. Nothing to copy here (this process's runner holds the policies themselves);
        runners elsewhere take this process's state with their next call, or now where they sample
        while the learner learns (broadcast()). An unknown policy id is an error, as on Ray."""
        for pid in policies or ():
            if pid not in self.runner.policies:
                raise no_such_policy(pid, self.runner.policies)
        self.broadcast()


class LocalRunnerGroup(EnvRunnerGroup):
    """This process's runner samples (num_env_runners=0, sample_async=False): breakpoints work."""

    def sample(self) -> Sample:
        return self.runner.sample()


class OfflineSource(EnvRunnerGroup):
    """An algorithm that learns from logged episodes (rlarena.offline reads them): no runner samples."""

    def sample(self) -> Sample:
        raise _no_env_to_sample()


class RayRunnerGroup(EnvRunnerGroup):
    """num_env_runners Ray actors (rlarena.rollout.ray_runners.RemoteEnvRunnerGroup), every
    call with this process's state (one put), their fragments side by side in worker-index order.
    This process's runner never samples."""

    def __init__(self, runner: Runner, remote: RemoteEnvRunnerGroup):
        super().__init__(runner)
        self.remote = remote

    def sample(self) -> Sample:
        sample = self.remote.sample(self.runner.get_state())
        merge_filters(self.runner.policies, sample.batches)
        return sample

    def reset(self, seed_for: Callable[[int], int | None]) -> None:
        self.runner.reset(seed_for(0))
        self.remote.reset(seed_for)

    @property
    def health(self) -> dict[str, int]:
        return {"num_healthy_env_runners": self.remote.num_healthy, "num_env_runner_restarts": self.remote.restarts}

    def stop(self) -> None:
        self.remote.stop()
        super().stop()

    def num_remote_env_runners(self) -> int:
        return len(self.remote)


class _SamplingWhileLearning(EnvRunnerGroup):
    """Runners elsewhere that sample while this process learns (sample_async). The sampler starts at
    the first sample(), from this process's state then; each sample() takes the fragments that are
    ready, at least train_batch_size env steps, side by side (each with the log-probs of its actions
    under the weights that sampled it). A policy added or removed, or the mapping replaced, starts the
    runners again from the new state. stats: the fragments' policy lag (weight versions behind) and
    how many there were."""

    sampler: AsyncSampler | AsyncRemoteSampler | None

    def __init__(self, config: AlgorithmConfig, runner: Runner, structure: Callable[[], Structure] | None):
        super().__init__(runner)
        self.config, self.structure = config, structure
        self.sampler = None
        self._signature: Any = None  # the structure the runners sample with
        self._stats: dict[str, float] = {}

    @abstractmethod
    def _start(self) -> AsyncSampler | AsyncRemoteSampler:
        """The sampler, its runners starting from this process's state now."""

    def _signature_now(self) -> Any:
        return None if self.structure is None else structure_signature(*self.structure())

    def sample(self) -> Sample:
        signature = self._signature_now()
        if self.sampler is None:
            self.sampler = self._start()
        elif signature != self._signature:
            self.sampler.reset(self.runner.get_state())
        self._signature = signature
        fragments = self.sampler.poll(self.config.train_batch_size)
        self._stats = {"policy_lag": policy_lag(fragments, self.sampler.version), "num_fragments": len(fragments)}
        sample = fragments_sample(fragments)
        merge_filters(self.runner.policies, sample.batches)
        return sample

    def broadcast(self) -> None:
        """This process's weights, filter states and exploration, which the runners sample with from
        their next fragment on."""
        if self.sampler is not None:
            self.sampler.broadcast(self.runner.get_state())

    def reset(self, seed_for: Callable[[int], int | None]) -> None:
        self.runner.reset(seed_for(0))
        if self.sampler is not None:  # the runners start again from this state (calls under way end first)
            self.sampler.reset(self.runner.get_state())
            self._signature = self._signature_now()

    @property
    def stats(self) -> dict[str, float]:
        return self._stats


class ForkedRunnerGroup(_SamplingWhileLearning):
    """num_sampling_processes worker processes forked from this one (rlarena.rollout.async_sampling),
    each with a runner of its own over its copies of the policies, seeded as a Ray actor's is."""

    sampler: AsyncSampler | None

    def __init__(
        self, config: AlgorithmConfig, env_name: str, runner: Runner, structure: Callable[[], Structure] | None
    ):
        super().__init__(config, runner, structure)
        self.env_name = env_name

    def _start(self) -> AsyncSampler:
        return AsyncSampler(
            self.config,
            self.env_name,
            self.config.num_sampling_processes,
            self._build,
            lambda runner: runner.policies,
            self.runner.get_state(),
        )

    def _build(self, worker_index: int, restarts: int) -> Runner:
        """Runner `worker_index` of the sampling processes, built in the forked process (its copies of
        the policies, reseeded): envs from worker_seed(seed, SALT_ENVS, ...), actions from
        (SALT_ACTIONS, ...)."""
        cfg, seed = self.config, self.config.seed
        env_seed = worker_seed(seed, SALT_ENVS, worker_index, restarts)
        action_seed = worker_seed(seed, SALT_ACTIONS, worker_index, restarts)
        if self.structure is None:
            policies = self.runner.policies
            reseed_policies(policies, action_seed)
            policy = next(iter(policies.values()))
            return make_env_runner(
                cfg, lambda *spaces: policy, env_seed, self.env_name, worker_index, num_workers=cfg.num_samplers
            )
        policies, mapping_fn, policies_to_train = self.structure()
        reseed_policies(policies, action_seed)
        return make_multi_agent_env_runner(
            cfg,
            dict(policies),
            mapping_fn,
            policies_to_train,
            env_seed,
            self.env_name,
            worker_index,
            num_workers=cfg.num_samplers,
            episode_ids=itertools.count(worker_index * EPISODE_ID_STRIDE),
        )

    @property
    def health(self) -> dict[str, int]:
        return sampler_health(self.sampler)

    def stop(self) -> None:
        if self.sampler is not None:
            self.sampler.close()
            self.sampler = None
        super().stop()

    def num_remote_env_runners(self) -> int:
        return self.config.num_sampling_processes


class AsyncRayRunnerGroup(_SamplingWhileLearning):
    """The num_env_runners Ray actors sampling while this process learns
    (rlarena.rollout.ray_runners.AsyncRemoteSampler over the RemoteEnvRunnerGroup)."""

    sampler: AsyncRemoteSampler | None

    def __init__(
        self,
        config: AlgorithmConfig,
        runner: Runner,
        structure: Callable[[], Structure] | None,
        remote: RemoteEnvRunnerGroup,
    ):
        super().__init__(config, runner, structure)
        self.remote = remote

    def _start(self) -> AsyncRemoteSampler:
        from rlarena.rollout.ray_runners import AsyncRemoteSampler

        return AsyncRemoteSampler(self.remote, self.runner.get_state())

    def reset(self, seed_for: Callable[[int], int | None]) -> None:
        super().reset(seed_for)
        self.remote.reset(seed_for)

    @property
    def health(self) -> dict[str, int]:
        return {"num_healthy_env_runners": self.remote.num_healthy, "num_env_runner_restarts": self.remote.restarts}

    def stop(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
            self.sampler = None
        self.remote.stop()
        super().stop()

    def num_remote_env_runners(self) -> int:
        return len(self.remote)


def ray_runners_module(key: str, value: int) -> Any:
    """rlarena.rollout.ray_runners (which imports ray), or a ConfigError saying how to get Ray."""
    try:
        from rlarena.rollout import ray_runners
    except ModuleNotFoundError as exc:
        if exc.name != "ray":
            raise
        raise ConfigError(
            f"{key}={value} runs on Ray actors, and Ray is not installed: pip install 'rlarena[ray]' (or set {key}=0)."
        ) from None
    return ray_runners


def make_runner_group(
    config: AlgorithmConfig,
    env_name: str,
    runner: EnvRunner | MultiAgentEnvRunner | OfflineRunner,
    structure: Callable[[], Structure] | None = None,
    make_policy: MakePolicy | None = None,
) -> EnvRunnerGroup:
    """The runner group the config asks for, chosen once (the table in the module's docstring).
    `runner`: this process's runner (an OfflineRunner: the algorithm learns from logged data).
    Multi-agent: `structure()` gives the algorithm's (policies, mapping function, policies to train)
    of now. Single-agent on Ray: `make_policy` makes each actor's copy of the policy."""
    if isinstance(runner, OfflineRunner):
        return OfflineSource(runner)
    if config.num_env_runners == 0:
        return (
            ForkedRunnerGroup(config, env_name, runner, structure) if config.sample_async else LocalRunnerGroup(runner)
        )
    remote = _remote_runners(config, env_name, runner, structure, make_policy)
    return (
        AsyncRayRunnerGroup(config, runner, structure, remote)
        if config.sample_async
        else RayRunnerGroup(runner, remote)
    )


def _remote_runners(
    config: AlgorithmConfig,
    env_name: str,
    runner: EnvRunner | MultiAgentEnvRunner,
    structure: Callable[[], Structure] | None,
    make_policy: MakePolicy | None,
) -> RemoteEnvRunnerGroup:
    """num_env_runners Ray actors, worker indices 1..N (this process is worker 0). Runner i's envs reset
    with worker_seed(seed, SALT_ENVS, i, r) (r: its restarts), its actions sample with (SALT_ACTIONS, ...):
    its copies of the algorithm's policies (multi-agent), or make_policy's copy (single-agent)."""
    module = ray_runners_module("num_env_runners", config.num_env_runners)
    seed = config.seed

    def env_seed_for(i: int, r: int) -> int | None:
        return worker_seed(seed, SALT_ENVS, i, r)

    def action_seed_for(i: int, r: int) -> int | None:
        return worker_seed(seed, SALT_ACTIONS, i, r)

    if structure is not None:
        return module.RemoteEnvRunnerGroup(
            config, env_name, env_seed_for, structure=structure, action_seed_for=action_seed_for
        )
    assert isinstance(runner, EnvRunner) and make_policy is not None, "single-agent runners on Ray need make_policy"
    spaces = (runner.env.single_observation_space, runner.env.single_action_space)
    return module.RemoteEnvRunnerGroup(
        config, env_name, env_seed_for, policy_for=lambda i, r: make_policy(*spaces, action_seed_for(i, r))
    )


# -- evaluation -----------------------------------------------------------------------------------
class LocalEvaluation:
    """Evaluation in this process: evaluation_duration episodes, greedy unless evaluation_explore, on
    envs of its own made at the first evaluation (in this process, vectorized in sync: evaluation is
    short, no worker processes to start). Single-agent: `policy` plays num_eval_envs copies of the
    env; multi-agent: `structure()`'s policies and mapping function play a multi-agent runner's.
    Without an env (an offline algorithm given none) there is nothing to play."""

    def __init__(
        self,
        config: AlgorithmConfig,
        env_name: str,
        policy: Policy | None = None,
        structure: Callable[[], Structure] | None = None,
    ):
        self.config, self.env_name, self.policy, self.structure = config, env_name, policy, structure
        self.env: gym.vector.VectorEnv | None = None  # single-agent
        self.runner: MultiAgentEnvRunner | None = None  # multi-agent

    def start(self, seed: int | None) -> int | None:
        """Nothing to start: this process plays its episodes in finish()."""
        return seed

    def finish(self, started: int | None) -> dict[str, float]:
        cfg, seed = self.config, started
        if cfg.env is None:
            return {}
        if self.structure is not None:
            policies, mapping_fn, _ = self.structure()
            if self.runner is None:
                creator = make_env_creator(cfg.env)
                envs = [as_multi_agent(creator(dict(cfg.env_config))) for _ in range(cfg.num_eval_envs)]
                self.runner = MultiAgentEnvRunner(envs, policies, mapping_fn, set(), 1, None, self.env_name)
            self.runner.mapping_fn = mapping_fn
            return episodes_summary(self.runner.play_episodes(cfg.evaluation_duration, cfg.evaluation_explore, seed))
        assert self.policy is not None, "single-agent evaluation plays the algorithm's policy"
        if self.env is None:
            mode = "sync" if cfg.vectorization_mode in ("subproc", "async") else cfg.vectorization_mode
            self.env = make_vector_env(cfg.env, cfg.env_config, cfg.num_eval_envs, mode)
        return evaluate_episodes(
            self.env, self.policy, cfg.evaluation_duration, cfg.evaluation_explore, seed, self.env_name
        )

    def stop(self) -> None:
        for held in (self.env, self.runner):
            if held is not None:
                held.close()
        self.env = self.runner = None


class RayEvaluation:
    """evaluation_num_env_runners Ray actors (rlarena.rollout.ray_runners.RemoteEvalRunnerGroup):
    an evaluation's episodes split evenly over them, runner i's share seeded from seed_for(seed, i).
    start() sends what to play (the policy's weights, or the multi-agent `structure()`) and returns at
    once: the episodes play while the algorithm trains (evaluation_parallel_to_training)."""

    def __init__(
        self,
        config: AlgorithmConfig,
        remote: RemoteEvalRunnerGroup,
        policy: Policy | None = None,
        structure: Callable[[], Structure] | None = None,
    ):
        self.config, self.remote, self.policy, self.structure = config, remote, policy, structure

    def start(self, seed: int | None) -> dict[int, Any]:
        cfg = self.config
        if self.structure is not None:
            what: Any = self.structure()
        else:
            assert self.policy is not None
            what = self.policy.get_state()
        return self.remote.start(what, cfg.evaluation_duration, cfg.evaluation_explore, lambda i: seed_for(seed, i))

    def finish(self, started: dict[int, Any]) -> dict[str, float]:
        played = self.remote.finish(started)
        return episodes_summary(played) if self.structure is not None else episode_summary(*played)

    def stop(self) -> None:
        self.remote.stop()


def make_evaluation_group(
    config: AlgorithmConfig,
    env_name: str,
    policy: Policy | None = None,
    structure: Callable[[], Structure] | None = None,
    make_policy: MakePolicy | None = None,
) -> LocalEvaluation | RayEvaluation:
    """Evaluation in this process, or on evaluation_num_env_runners Ray actors. Single-agent: `policy`
    plays (on Ray, each actor's copy is make_policy's, its exploration seeded from
    worker_seed(seed, SALT_EVAL_ACTIONS, i, r)); multi-agent: `structure()`'s policies do."""
    if config.evaluation_num_env_runners == 0:
        return LocalEvaluation(config, env_name, policy, structure)
    if config.env is None:
        raise ConfigError(
            f"evaluation_num_env_runners={config.evaluation_num_env_runners}: evaluation runners play "
            f"an env; set .environment(...) too, or evaluation_num_env_runners=0."
        )
    module = ray_runners_module("evaluation_num_env_runners", config.evaluation_num_env_runners)
    if structure is not None:  # each evaluation sends the policies themselves
        return RayEvaluation(config, module.RemoteEvalRunnerGroup(config, env_name, multi_agent=True), None, structure)
    assert policy is not None and make_policy is not None, "single-agent evaluation on Ray needs the policy"
    spaces = (policy.observation_space, policy.action_space)
    remote = module.RemoteEvalRunnerGroup(
        config,
        env_name,
        policy_for=lambda i, r: make_policy(*spaces, worker_seed(config.seed, SALT_EVAL_ACTIONS, i, r)),
    )
    return RayEvaluation(config, remote, policy)
