"""Algorithm: decides *when* (sample, update, evaluate, checkpoint). Each algorithm file holds its math.

The public surface is RLlib's: train(), evaluate(), save(), from_checkpoint(), get_state()/set_state(),
compute_single_action(), compute_actions(), get_policy(), add_policy()/remove_policy(),
workers/env_runner_group, stop().
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from rlarena import limits
from rlarena._version import __version__
from rlarena.algorithms.config import AlgorithmConfig
from rlarena.algorithms.registry import get_algorithm_class
from rlarena.callbacks import Callbacks, call_hook, make_callbacks
from rlarena.checkpoint import read_checkpoint, write_checkpoint
from rlarena.envs.registry import (
    EnvSpec,
    env_name,
    make_env_creator,
    ref_to_json,
)
from rlarena.envs.spaces import space_from_json, space_to_json
from rlarena.errors import CheckpointError, ConfigError, closest, no_such_policy
from rlarena.learners import Learner
from rlarena.multiagent.builder import (
    DEFAULT_POLICY_ID,
    build_policy,
    default_mapping_fn,
    make_multi_agent_env,
    policy_spaces,
)
from rlarena.multiagent.policies import PolicySpec
from rlarena.multiagent.runner import MultiAgentEnvRunner, MultiAgentEpisodeStats, stack_obs
from rlarena.nn.flat import FlatOptimizer
from rlarena.policy import Policy, policy_actions
from rlarena.refs import Trust, trust_built
from rlarena.rollout.factory import make_env_runner, make_multi_agent_env_runner, seed_for
from rlarena.rollout.groups import (
    EnvRunnerGroup,
    EvaluationGroup,
    OfflineRunner,
    make_evaluation_group,
    make_runner_group,
)
from rlarena.rollout.runner import EnvRunner, EpisodeStats
from rlarena.torch_policy import TorchPolicy, TrainablePolicy

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11 on

# Old (RLlib API stack / seed tutorial) metric names answered alongside the new ones.
METRIC_ALIASES = {"episode_reward_mean": "episode_return_mean", "episode_reward_min": "episode_return_min",
                  "episode_reward_max": "episode_return_max", "timesteps_total": "num_env_steps_sampled_lifetime",
                  "episodes_total": "num_episodes_lifetime", "num_healthy_workers": "num_healthy_env_runners",
                  "num_remote_worker_restarts": "num_env_runner_restarts"}


# A learner's optimizers are named: one "main" optimizer per policy for most algorithms, several for
# some (SAC: actor, critic, alpha). Checkpoints hold each as "optimizer.<policy id>.<name>".
MAIN_OPTIMIZER = "main"


class ResultDict(dict):
    """The flat metrics dict train() returns ("group/key" names for grouped metrics). Old nested
    RLlib access keeps working: result["evaluation"]["episode_reward_mean"],
    result["policy_reward_mean"]["policy1"], result["env_runners"]["episode_return_mean"] and
    result["info"]["learner"][policy_id]["learner_stats"] return views of the flat keys; any other
    unknown key raises a KeyError that names the closest keys."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.learner_stats: dict[str, dict[str, float]] = {}  # policy id -> stats, for result["info"]

    def __missing__(self, key: str) -> Any:
        prefix = f"{key}/"
        if any(isinstance(k, str) and k.startswith(prefix) for k in self):
            return _with_aliases({k[len(prefix):]: v for k, v in self.items() if k.startswith(prefix)})
        if key in ("env_runners", "sampler_results"):
            return _with_aliases({k: v for k, v in self.items() if "/" not in k})
        if key == "info":
            return {"learner": {pid: {"learner_stats": stats} for pid, stats in self.learner_stats.items()}}
        hint = closest(str(key), [k for k in self if isinstance(k, str)])
        if key == "evaluation":
            hint = " No evaluation ran this iteration: set .evaluation(evaluation_interval=N) or call evaluate()."
        raise KeyError(f"{key!r} is not in the results.{hint} Results are flat: see list(result).")


def _with_aliases(metrics: dict[str, Any]) -> dict[str, Any]:
    out = dict(metrics)
    for old, new in METRIC_ALIASES.items():
        if new in out:
            out[old] = out[new]
    return ResultDict(out)


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


def saved_config(config_class: type[AlgorithmConfig], meta: dict[str, Any], trust: Trust,
                 replaced: set[str]) -> AlgorithmConfig:
    """The config a checkpoint or Hub package saved: meta["config"] read with `trust`, each policy
    given the spaces it was built with (meta["policies"]; added policies too). The options in
    `replaced` are left out: the caller sets them, so they are neither read nor resolved."""
    config = config_class.from_dict({k: v for k, v in meta["config"].items() if k not in replaced}, trust)
    saved_policies = meta.get("policies") or {}
    for pid, spec in (config.policies or {}).items():
        saved = saved_policies.get(pid)
        if saved:
            spec.observation_space = space_from_json(saved["observation_space"])
            spec.action_space = space_from_json(saved["action_space"])
    return config


_seed_for = seed_for  # the name the algorithm files import (the seeds' table: rlarena.rollout.factory)


class Algorithm(ABC):
    config_class: ClassVar[type[AlgorithmConfig]] = AlgorithmConfig
    # the trainable policy a PolicySpec without a class gets (checkpoints save it as policy_class None)
    policy_class: ClassVar[type[TrainablePolicy]] = TorchPolicy
    # whether num_env_runners > 0 samples on remote Ray env runners (rlarena.rollout.groups); the config
    # refuses it for the others
    samples_on_ray: ClassVar[bool] = False
    # whether it can sample while it learns (sample_async: rlarena.rollout.groups); the config refuses
    # sample_async for the others
    samples_async: ClassVar[bool] = False
    # the Learner (sub)class each trained policy gets: one with typed attributes for what build_learner adds
    learner_class: ClassVar[type[Learner]] = Learner
    # learner state kinds a checkpoint may lack (Learner.set_state): a replay buffer not stored
    restore_missing_ok: ClassVar[bool | tuple[str, ...]] = ()
    # what the algorithm does with .offline_data(): "sample" (it samples an env: `output` records it,
    # `input_` is refused), "offline" (it learns from `input_` only), or "none" (it samples its own way)
    data_mode: ClassVar[str] = "sample"

    def __init__(self, config: AlgorithmConfig | dict[str, Any] | None = None, env: EnvSpec | None = None):
        if not isinstance(config, AlgorithmConfig):  # RLlib's PPO(config={...}, env=...): option names, old ones too
            options = {**(config or {}), **({"env": env} if env is not None else {})}
            config = self.config_class().update_from_dict(options).checked()
        self.config = config
        torch.set_num_threads(config.num_torch_threads)
        if config.seed is not None:
            torch.manual_seed(_seed_for(config.seed, 0))
        self.env_name = env_name(config.env) if config.env is not None else "offline data"
        self.callbacks = make_callbacks(config.callbacks_class)  # hooks that ask for what we lack fail here
        self.rng = np.random.default_rng(_seed_for(config.seed, 3))
        self.policies: dict[str, Policy] = {}
        self.policy_configs: dict[str, AlgorithmConfig] = {}  # per-policy overrides applied
        self.learners: dict[str, Learner] = {}  # trained policy id -> what optimizing it owns
        self.iteration = 0
        self.num_env_steps_sampled_lifetime = 0
        self.time_total_s = 0.0
        self.num_evaluations = 0
        self.env: Any = None  # the training vector env (single-agent sampling)
        self.offline_data: Any = None  # rlarena.offline.OfflineData: what an offline algorithm learns from
        self._ope_data: dict[str, np.ndarray] | None = None  # the episodes off-policy estimation reads
        self.recorder: Any = None  # rlarena.offline.record.Recorder, with .offline_data(output=DIR)
        # the finished episodes every runner hands over (Sample.episodes), counted for the results
        self.episode_stats: EpisodeStats = EpisodeStats()
        self._check_data_mode()
        if config.input_ is not None or self.data_mode == "offline":  # loaded from a file without its data: env only
            self._setup_offline()
        else:
            self._setup_env()
        # where the runners that sample for it run (this process, forked processes, Ray actors), chosen
        # once from the config; this process's runner holds the policies whose state goes out
        self.env_runner_group: EnvRunnerGroup = make_runner_group(
            config, self.env_name, self.runner, self._structure if self.is_multi_agent else None,
            lambda obs_space, act_space, seed: self.make_policy(obs_space, act_space, config, seed))
        if config.output is not None:
            from rlarena.offline.record import Recorder
            self.recorder = Recorder(config.output, {pid: self.policies[pid] for pid in self.policies_to_train},
                                     config.output_max_file_size, self.is_multi_agent)
        self.setup()
        for pid in self.policies_to_train:
            self.setup_policy(pid)
        # where evaluation episodes play: this process, or evaluation_num_env_runners Ray actors
        self.eval_env_runner_group: EvaluationGroup = make_evaluation_group(
            config, self.env_name, None if self.is_multi_agent else self.policy,
            self._structure if self.is_multi_agent else None,
            lambda obs_space, act_space, seed: self.make_policy(obs_space, act_space, config, seed))
        if self.callbacks is not None:
            call_hook(self.callbacks, "on_algorithm_init", algorithm=self)

    def _check_data_mode(self) -> None:
        name, cfg = type(self).__name__, self.config
        offline = "BC, MARWIL or CQL"
        if cfg.input_ is not None and self.data_mode != "offline":
            raise ConfigError(f"{name} learns by sampling its env, not from logged data (input_): to learn from "
                              f"logged episodes use {offline}.")
        if cfg.input_ is None and self.data_mode == "offline" and (cfg.env is None or limits.current_source() is None):
            raise ConfigError(f"{name} learns from logged data: set .offline_data(input_=DIR) (a directory or files "
                              f"of Parquet rows recorded with .offline_data(output=DIR) or `rlarena rollout CKPT "
                              f"--output DIR`); an env, if given, is only for evaluation.")
        if cfg.output is not None and self.data_mode != "sample":
            raise ConfigError(f"{name} does not record its experience (output): record with PPO, A2C, DQN, SAC, "
                              f"TD3 or DDPG, or play a checkpoint with `rlarena rollout CKPT --output DIR`.")

    def _setup_env(self) -> None:
        config = self.config
        # per-episode callback hooks need the multi-agent runner (it steps episodes one by one); a
        # single-agent env then runs there as a one-agent env
        episode_hooks = self.callbacks is not None and self.callbacks.wants_episode_hooks
        probe = make_multi_agent_env(config.env, config.env_config, single_agent_too=episode_hooks)
        self.is_multi_agent = probe is not None
        if config.samples_elsewhere and self.callbacks is not None and any(
                getattr(type(self.callbacks), hook) is not getattr(Callbacks, hook)
                for hook in ("on_episode_start", "on_episode_step")):
            probe.close()
            what = (f"num_env_runners={config.num_env_runners}" if config.num_env_runners > 0 else "sample_async=True")
            raise ConfigError(f"{what}: {type(self.callbacks).__name__} overrides on_episode_start or "
                              f"on_episode_step, which run beside the env, in this process only. With runners "
                              f"elsewhere, on_episode_end is called here with each finished episode; move the work "
                              f"there, or set num_env_runners=0 and sample_async=False.")
        if self.is_multi_agent:
            self._setup_multi_agent(probe)
        else:
            if config.policies is not None:
                raise ConfigError(f".multi_agent(policies=...) needs a multi-agent env (a rlarena.MultiAgentEnv or a "
                                  f"PettingZoo env); {self.env_name!r} is a single-agent Gymnasium env.")
            # this process is worker 0 (RLlib's local worker); runners elsewhere are 1..N. With runners
            # elsewhere, one in-process env gives the spaces and the local runner (which never samples)
            def add_policy(observation_space: Any, action_space: Any) -> Policy:
                return self._add_policy_object(DEFAULT_POLICY_ID, PolicySpec(observation_space=observation_space,
                                                                             action_space=action_space))

            self.runner: EnvRunner | MultiAgentEnvRunner | OfflineRunner = make_env_runner(
                config, add_policy, _seed_for(config.seed, 2), self.env_name,
                num_envs=1 if config.samples_elsewhere else None)
            self.env = self.runner.env
            self.policies_to_train = [DEFAULT_POLICY_ID]

    def _setup_offline(self) -> None:
        """Learn from logged episodes: one policy, its spaces the env's when one is given (for
        evaluation), else the data's (the files' metadata)."""
        cfg = self.config
        if cfg.policies is not None:
            raise ConfigError("Offline training (.offline_data(input_=...)) trains one policy; leave .multi_agent() "
                              "out (rows of several agents train that one policy).")
        obs_space = act_space = None
        if cfg.env is not None:
            probe = make_multi_agent_env(cfg.env, cfg.env_config)
            if probe is not None:
                raise ConfigError(f"Offline training evaluates in single-agent envs; {self.env_name!r} is multi-agent.")
            env = make_env_creator(cfg.env)(dict(cfg.env_config))
            obs_space, act_space = env.observation_space, env.action_space
            env.close()
        if cfg.input_ is not None:
            from rlarena.offline import OfflineData
            self.offline_data = OfflineData(cfg.input_, obs_space, act_space)
            obs_space, act_space = self.offline_data.observation_space, self.offline_data.action_space
        self.is_multi_agent = False
        self._add_policy_object(DEFAULT_POLICY_ID, PolicySpec(observation_space=obs_space, action_space=act_space))
        self.policies_to_train = [DEFAULT_POLICY_ID]
        self.runner = OfflineRunner(self.policies)

    def _setup_multi_agent(self, probe: Any) -> None:
        cfg = self.config
        self.mapping_fn = cfg.policy_mapping_fn or default_mapping_fn
        self._probe_env = probe
        self.episode_stats = MultiAgentEpisodeStats()
        for pid, spec in (cfg.policies or {DEFAULT_POLICY_ID: PolicySpec()}).items():
            self._add_policy_object(pid, spec)
        self.policies_to_train = list(cfg.policies_to_train if cfg.policies_to_train is not None
                                      else [p for p, pol in self.policies.items() if isinstance(pol, TrainablePolicy)])
        # with runners elsewhere this process's runner never samples: the probe env is enough
        self.runner = make_multi_agent_env_runner(cfg, self.policies, self.mapping_fn, self.policies_to_train,
                                                  _seed_for(cfg.seed, 2), self.env_name, first_env=probe,
                                                  num_envs=1 if cfg.samples_elsewhere else None,
                                                  callbacks=self.callbacks, algorithm=self)

    def _structure(self) -> tuple[dict[str, Policy], Any, list[str]]:
        """The policies, mapping function and policies to train that multi-agent runners elsewhere
        sample and evaluate with (sent again whenever they change)."""
        return self.policies, self.mapping_fn, list(self.policies_to_train)

    def _add_policy_object(self, pid: str, spec: PolicySpec) -> Policy:
        if self.is_multi_agent:
            obs_space, act_space = policy_spaces(pid, spec, self._probe_env, self.mapping_fn)
            spec = PolicySpec(spec.policy_class, obs_space, act_space, dict(spec.config))
        cfg = self.config.copy().update_from_dict(spec.config) if spec.config else self.config
        try:
            cfg.validate()
        except ConfigError as exc:
            if not spec.config:
                raise
            raise ConfigError(f"Policy {pid!r} (its PolicySpec config overrides): {exc}") from None
        seed = _seed_for(self.config.seed, 1, len(self.policies))
        policy = build_policy(spec, spec.observation_space, spec.action_space, cfg.model_config,
                              cfg.observation_filter, seed, lambda o, a: self.make_policy(o, a, cfg, seed))
        self.policies[pid], self.policy_configs[pid] = policy, cfg
        if self.is_multi_agent:
            self.config.policies = {**(self.config.policies or {}), pid: spec}
        return policy

    @property
    def policy(self) -> TrainablePolicy:
        """The single-agent policy (the multi-agent default policy)."""
        return self.get_policy(DEFAULT_POLICY_ID)  # type: ignore[return-value]

    def make_policy(self, observation_space: Any, action_space: Any, config: AlgorithmConfig,
                    seed: int | None) -> TrainablePolicy:
        """The trainable policy of a PolicySpec that names no class (`policy_class` by default; an
        algorithm whose policy takes more options than the model config overrides this)."""
        return self.policy_class(observation_space, action_space, config.model_config, config.observation_filter,
                                 seed)

    # -- what subclasses write ----------------------------------------------------------------
    def setup(self) -> None:
        """Create algorithm-wide state (target networks, replay buffers, ...)."""

    def setup_policy(self, policy_id: str) -> None:
        """Build the Learner of `policy_id`, which owns all that training it needs (build_learner)."""
        learner = self.learner_class(policy_id, self.policies[policy_id], self.policy_configs[policy_id],
                                     type(self).__name__, clock=lambda: self.num_env_steps_sampled_lifetime)
        self.build_learner(learner)
        self.learners[policy_id] = learner

    def build_learner(self, learner: Learner) -> None:
        """Register what training learner.policy needs: its optimizers (learner.add_optimizer, with their
        learning rates: the lr schedule is then applied for you), target networks (add_target), replay
        buffer or counters (register_state)."""

    @property
    def optimizers(self) -> dict[tuple[str, str], FlatOptimizer]:
        """Every learner's optimizers, by (policy id, name): a view (the learners own them)."""
        return {(pid, name): opt for pid, learner in self.learners.items() for name, opt in learner.optimizers.items()}

    @abstractmethod
    def training_step(self) -> dict[str, float]:
        """Sample and update once; return learner statistics."""

    def sample(self) -> dict[str, Any]:
        """One train batch's fragments from the runner group (rlarena.rollout.groups): {policy id:
        Rollout} for the policies in training. Wherever the runners are, they keep one contract
        (rlarena.rollout.runner.Sample): the batches, the env steps, and the finished episodes, which
        this algorithm's episode_stats count."""
        sample = self.env_runner_group.sample()
        if self.config.samples_elsewhere and self.is_multi_agent and self.callbacks is not None:
            for episode in sample.episodes:  # finished elsewhere: their hook runs here
                call_hook(self.callbacks, "on_episode_end", episode=episode, env_index=episode.env_index,
                          algorithm=self, worker=None, env_runner=None, env=None, base_env=None,
                          policies=self.policies)
        self.episode_stats.merge(sample.episodes)
        batches = sample.batches
        self.num_env_steps_sampled_lifetime += sample.steps
        if self.recorder is not None:
            self.recorder.record(batches)
        if self.callbacks is not None:
            call_hook(self.callbacks, "on_sample_end", algorithm=self, batches=batches, samples=batches,
                      worker=self.runner, env_runner=self.runner)
        return batches

    # -- the loop -----------------------------------------------------------------------------
    def train(self) -> dict[str, Any]:
        """One iteration: sample + update (+ evaluation every `evaluation_interval` iterations).

        time_this_iter_s and time_total_s count training only; evaluation time is reported apart.
        """
        if self.data_mode == "offline" and self.offline_data is None:
            raise ConfigError(f"{type(self).__name__} learns from logged data, and this one was loaded without it (a "
                              f"checkpoint does not choose what is read): pass the data to train on, "
                              f"from_checkpoint(path, config_overrides={{'input_': DIR}}). Evaluating and playing "
                              f"need none.")
        interval = self.config.evaluation_interval
        evaluates = bool(interval) and (self.iteration + 1) % interval == 0
        # evaluation_parallel_to_training: the evaluation runners play the weights from before this step
        parallel = self._start_evaluation() if evaluates and self.config.evaluation_parallel_to_training else None
        start = time.perf_counter()
        steps_before = self.num_env_steps_sampled_lifetime
        learner_stats = self.training_step()
        elapsed = time.perf_counter() - start
        self.iteration += 1
        self.time_total_s += elapsed
        steps = self.num_env_steps_sampled_lifetime - steps_before
        episode_metrics, hist_stats = self._episode_metrics()
        result = ResultDict({"training_iteration": self.iteration, **episode_metrics,
                             "num_env_steps_sampled_this_iter": steps,
                             "num_env_steps_sampled_lifetime": self.num_env_steps_sampled_lifetime,
                             "time_this_iter_s": elapsed, "time_total_s": self.time_total_s,
                             "env_steps_per_sec": steps / elapsed if elapsed > 0 else float("nan"),
                             **self._runner_health(), **learner_stats})
        result.update(_with_aliases(result))
        result["hist_stats"] = hist_stats  # RLlib's per-episode lists
        result["config"] = self.config.to_dict()  # RLlib's results carry the config (tutorials `del` it)
        result.learner_stats = self._learner_stats_by_policy(learner_stats)
        if evaluates:
            metrics = self.evaluate() if parallel is None else self._finish_evaluation(parallel)
            result.update({f"evaluation/{k}": v for k, v in metrics.items()})
        if self.callbacks is not None:
            call_hook(self.callbacks, "on_train_result", algorithm=self, result=result, trainer=self)
        return result

    def _runner_health(self) -> dict[str, float]:
        """RLlib's num_healthy_env_runners and num_env_runner_restarts (0 and 0 when sampling here); with
        sample_async, the last sample's policy_lag and num_fragments."""
        return {**self.env_runner_group.health, **self.env_runner_group.stats}

    def _episode_metrics(self) -> tuple[dict[str, Any], dict[str, list]]:
        """(the episode metrics of this iteration, RLlib's hist_stats); starts the next iteration's window."""
        hist_stats = self.episode_stats.hist_stats()  # before metrics(), which starts the next iteration
        return self.episode_stats.metrics(), hist_stats

    def _learner_stats_by_policy(self, stats: dict[str, float]) -> dict[str, dict[str, float]]:
        if not self.is_multi_agent:
            return {DEFAULT_POLICY_ID: dict(stats)}
        out: dict[str, dict[str, float]] = {}
        for key, value in stats.items():
            _, pid, name = key.split("/", 2)  # learner/<policy id>/<stat>
            out.setdefault(pid, {})[name] = value
        return out

    def evaluate(self) -> dict[str, float]:
        """`evaluation_duration` greedy episodes (unless evaluation_explore) on separate envs: in this
        process, or split over the evaluation runners (evaluation_num_env_runners)."""
        return self._finish_evaluation(self._start_evaluation())

    def _start_evaluation(self) -> tuple[float, Any]:
        """Count the evaluation and start it (evaluation runners start playing now): (start time, what
        _finish_evaluation() completes)."""
        start = time.perf_counter()
        self.num_evaluations += 1
        return start, self.eval_env_runner_group.start(_seed_for(self.config.seed, 4, self.num_evaluations))

    def _finish_evaluation(self, started: tuple[float, Any]) -> dict[str, float]:
        start, pending = started
        out = self.eval_env_runner_group.finish(pending)
        if self.config.off_policy_estimation_methods and self.offline_data is not None:
            out.update(self._estimate_off_policy())
        out["evaluation_time_s"] = time.perf_counter() - start
        out = _with_aliases(out)
        if self.callbacks is not None:
            call_hook(self.callbacks, "on_evaluate_end", algorithm=self, evaluation_metrics=out)
        return out

    def _estimate_off_policy(self) -> dict[str, float]:
        """RLlib's off-policy estimates (importance sampling, ...) of the policy's value on the logged
        episodes of the first files, at least `evaluation_duration` episodes (rlarena.offline.estimators)."""
        from rlarena.offline.estimators import estimate_off_policy
        if self._ope_data is None:  # read once: the logged episodes do not change between evaluations
            parts, episodes = [], 0
            for path in self.offline_data.files:  # whole files, until enough episodes
                parts.append(self.offline_data.read_file(path))
                episodes += len(np.unique(parts[-1]["eps_id"]))
                if episodes >= self.config.evaluation_duration:
                    break
            self._ope_data = {k: np.concatenate([p[k] for p in parts]) for k, v in parts[0].items() if v is not None}
        return estimate_off_policy(self.policy, self._ope_data, self.config.gamma,
                                   self.config.off_policy_estimation_methods)

    # -- policies -----------------------------------------------------------------------------
    def get_policy(self, policy_id: str = DEFAULT_POLICY_ID) -> Policy:
        try:
            return self.policies[policy_id]
        except KeyError:
            raise no_such_policy(policy_id, self.policies) from None

    def add_policy(self, policy_id: str, policy_cls: type[Policy] | None = None, *,
                   policy_state: dict[str, np.ndarray] | None = None, observation_space: Any = None,
                   action_space: Any = None, config: dict[str, Any] | None = None,
                   policy_mapping_fn: Any = None, policies_to_train: list[str] | None = None) -> Policy:
        """Add a policy between iterations (RLlib's add_policy). Spaces default to the env's agents
        mapped to it, else to the first policy's; policy_state (from get_policy(x).get_state())
        copies weights, e.g. to freeze a snapshot of the learner. The new mapping applies from each
        env copy's next episode."""
        self._require_multi_agent("add_policy")
        if policy_id in self.policies:
            raise ConfigError(f"A policy {policy_id!r} exists already; remove_policy() it first or pick another id.")
        if policy_mapping_fn is not None:
            self.set_policy_mapping_fn(policy_mapping_fn)
        first = next(iter(self.policies.values()))
        if observation_space is None or action_space is None:
            try:
                observation_space, action_space = policy_spaces(policy_id, PolicySpec(None, observation_space,
                                                                                      action_space),
                                                                self._probe_env, self.mapping_fn)
            except ConfigError:
                observation_space = observation_space or first.observation_space
                action_space = action_space or first.action_space
        trust_built([policy_cls])  # as a class a config built here holds (rlarena.refs)
        policy = self._add_policy_object(policy_id, PolicySpec(policy_cls, observation_space, action_space,
                                                               dict(config or {})))
        if policy_state is not None:
            policy.set_state(policy_state)
        if policies_to_train is not None:
            self.set_policies_to_train(policies_to_train)
        elif self.config.policies_to_train is None and isinstance(policy, TrainablePolicy):
            self.set_policies_to_train([*self.policies_to_train, policy_id], remember=False)
        return policy

    def remove_policy(self, policy_id: str, *, policy_mapping_fn: Any = None,
                      policies_to_train: list[str] | None = None) -> None:
        """Remove a policy between iterations. Agents of running episodes that were mapped to it are
        mapped again (with the new policy_mapping_fn) at their next step."""
        self._require_multi_agent("remove_policy")
        self.get_policy(policy_id)
        if policy_mapping_fn is not None:
            self.set_policy_mapping_fn(policy_mapping_fn)
        for store in (self.policies, self.policy_configs, self.config.policies or {}):
            store.pop(policy_id, None)
        self.learners.pop(policy_id, None)  # its optimizers, targets, replay buffer and counters
        self.set_policies_to_train(policies_to_train if policies_to_train is not None
                                   else [p for p in self.policies_to_train if p != policy_id],
                                   remember=policies_to_train is not None or self.config.policies_to_train is not None)
        self.runner.forget_policy(policy_id)  # runners elsewhere get the new policy set before their next fragment

    def set_policy_mapping_fn(self, policy_mapping_fn: Any) -> None:
        trust_built([policy_mapping_fn])  # this process's own object: a checkpoint saved later may name it
        self.mapping_fn = self.config.policy_mapping_fn = policy_mapping_fn
        self.runner.mapping_fn = policy_mapping_fn  # runners elsewhere and evaluation get it with the policies

    def set_policies_to_train(self, policies_to_train: list[str], remember: bool = True) -> None:
        for pid in policies_to_train:
            if not isinstance(self.get_policy(pid), TrainablePolicy):
                raise ConfigError(f"Policy {pid!r} is a {type(self.policies[pid]).__name__}, which cannot be trained.")
            if pid not in self.learners:
                self.setup_policy(pid)
        self.policies_to_train = list(policies_to_train)
        if remember:
            self.config.policies_to_train = list(policies_to_train)
        self.runner.policies_to_train = set(policies_to_train)  # type: ignore[union-attr]

    def _require_multi_agent(self, what: str) -> None:
        if not self.is_multi_agent:
            raise ConfigError(f"{what}() needs a multi-agent env; {self.env_name!r} is single-agent.")

    # -- inference ----------------------------------------------------------------------------
    def compute_actions(self, obs_batch: Any, explore: bool | None = None,
                        policy_id: str = DEFAULT_POLICY_ID) -> np.ndarray:
        """Actions for a batch of observations. explore=None samples (RLlib's default); False is greedy."""
        first = next(iter(obs_batch.values())) if isinstance(obs_batch, dict) else obs_batch
        return policy_actions(self.get_policy(policy_id), obs_batch, explore is not False, len(first))

    def compute_single_action(self, observation: Any = None, explore: bool | None = None,
                              policy_id: str = DEFAULT_POLICY_ID, *, obs: Any = None) -> Any:
        """The action for one observation (RLlib's name for it is `observation`; `obs=` works too)."""
        if (observation is None) == (obs is None):
            raise ConfigError("compute_single_action() takes one observation: pass it positionally or as "
                              "observation=... (or obs=...).")
        action = self.compute_actions(stack_obs([obs if observation is None else observation]), explore, policy_id)[0]
        return action.item() if np.ndim(action) == 0 else action

    compute_action = compute_single_action  # RLlib 1.x's name (the MultiAgentArena tutorial uses it)

    def export_onnx(self, path: str | Path, policy_id: str = DEFAULT_POLICY_ID) -> Path:
        """Write policy `policy_id` as an ONNX model that onnxruntime plays alone (rlarena.export.onnx:
        the observation (+ action_mask) in; the masked logits (or the Box mean), then the value, out)."""
        from rlarena.export.onnx import export_onnx
        return export_onnx(self.policies, path, policy_id, env_name=self.env_name)

    # -- checkpoints --------------------------------------------------------------------------
    def _state_arrays(self) -> dict[str, dict[str, np.ndarray]]:
        """Every array a restored algorithm needs; subclasses with more state extend it."""
        arrays = {"rng": {"torch": torch.get_rng_state().numpy()}}
        for pid, policy in self.policies.items():
            state = policy.get_state()
            if state:
                arrays[f"policy.{pid}"] = state
        for learner in self.learners.values():
            arrays.update(learner.get_state())
        return arrays

    def get_state(self) -> dict[str, Any]:
        """RLlib's Algorithm.get_state(): a snapshot that set_state() restores: counters, the episode
        window, every policy (class, spaces, weights as copies), optimizer and RNG states. save()
        writes the same snapshot to disk (the config beside it)."""
        return {"counters": {"iteration": self.iteration,
                             "num_env_steps_sampled_lifetime": self.num_env_steps_sampled_lifetime,
                             "time_total_s": self.time_total_s, "num_evaluations": self.num_evaluations,
                             "num_episodes_lifetime": self.episode_stats.lifetime},
                "episode_window": list(self.episode_stats.window),
                "policies": {pid: {"policy_class": None if isinstance(p, self.policy_class) else type(p),
                                   "observation_space": p.observation_space, "action_space": p.action_space}
                             for pid, p in self.policies.items()},
                "policies_to_train": list(self.policies_to_train),
                "rng": {"algorithm": self.rng.bit_generator.state,
                        "policies": {pid: p.rng.bit_generator.state for pid, p in self.policies.items()
                                     if isinstance(p, TrainablePolicy)}},
                "arrays": self._state_arrays()}

    def set_state(self, state: dict[str, Any]) -> None:
        """Return to a get_state() snapshot of this algorithm: a league grown or shrunk since is put
        back (policies added since are removed, removed ones built again from their class and spaces),
        then weights, optimizers, counters and RNGs are restored. Episodes under way start afresh: env
        state cannot be captured in general."""
        if not isinstance(state, dict) or not {"counters", "policies", "arrays", "rng"} <= set(state):
            raise ConfigError(f"set_state() takes what {type(self).__name__}.get_state() returned (a dict with "
                              f"counters, policies, arrays and rng), got {type(state).__name__}.")
        policies = state["policies"]
        if self.is_multi_agent:
            for pid in [p for p in self.policies if p not in policies]:
                self.remove_policy(pid)
            for pid, spec in policies.items():
                if pid not in self.policies:
                    self.add_policy(pid, spec["policy_class"], observation_space=spec["observation_space"],
                                    action_space=spec["action_space"])
            if "policies_to_train" in state:
                self.set_policies_to_train(state["policies_to_train"], remember=self.config.policies_to_train is not None)
        self._restore(state, state["arrays"])

    @property
    def workers(self) -> EnvRunnerGroup:
        """RLlib's older name of env_runner_group (the Connect Four blog's algorithm.workers.sync_weights())."""
        return self.env_runner_group

    def save(self, checkpoint_dir: str | Path | None = None) -> str:
        """Write a checkpoint directory (atomically) and return its path."""
        if checkpoint_dir is None:
            checkpoint_dir = Path("checkpoints") / f"{type(self).__name__}_{self.env_name}" / \
                f"checkpoint_{self.iteration:06d}"
        state = self.get_state()
        meta = {"algorithm": type(self).__name__, "rlarena_version": __version__,
                "config": self.config.to_dict(),
                **{k: state[k] for k in ("counters", "episode_window", "rng")},
                "policies": {pid: {"policy_class": None if spec["policy_class"] is None
                                   else ref_to_json(spec["policy_class"]),
                                   "observation_space": space_to_json(spec["observation_space"]),
                                   "action_space": space_to_json(spec["action_space"])}
                             for pid, spec in state["policies"].items()}}
        path = write_checkpoint(checkpoint_dir, meta, state["arrays"])
        if self.callbacks is not None:
            call_hook(self.callbacks, "on_checkpoint", algorithm=self, checkpoint_dir=path)
        return path

    def restore(self, checkpoint_path: str | Path) -> None:
        """RLlib's in-place restore: this algorithm takes the weights, optimizer state, counters, episode
        window and RNG state saved at `checkpoint_path`, keeping its own config. The checkpoint must come
        from the same algorithm with the same policies; Algorithm.from_checkpoint builds one from any
        checkpoint instead. Nothing the checkpoint's config names is read (the live config stays)."""
        meta, arrays = read_checkpoint(checkpoint_path)
        where = f"Checkpoint {str(checkpoint_path)!r}"
        if meta.get("algorithm") != type(self).__name__:
            raise CheckpointError(f"{where} holds a {meta.get('algorithm')} checkpoint; this is a {type(self).__name__}. "
                                  f"Load it with Algorithm.from_checkpoint().")
        saved = meta.get("policies") if isinstance(meta.get("policies"), dict) else {}
        if set(saved) != set(self.policies):
            raise CheckpointError(f"{where} holds policies {sorted(saved)}; this algorithm has {sorted(self.policies)}. "
                                  f"Load it with Algorithm.from_checkpoint().")
        self._restore(meta, arrays)

    @classmethod
    def from_checkpoint(cls, path: str | Path, env: EnvSpec | None = None,
                        config_overrides: dict[str, Any] | None = None,
                        trusted_modules: Iterable[str] | str | None = None, trust: Trust | None = None) -> Algorithm:
        """Rebuild the algorithm saved at `path` and continue where it stopped.

        `env` replaces the saved env (needed when the original was a lambda or local function);
        `config_overrides` sets options by name before building, e.g. {"num_envs_per_env_runner": 1}
        to load a policy for inference without the full set of training envs, or
        {"policy_mapping_fn": fn} when the saved one was a lambda.

        Loading imports nothing the checkpoint names unless you allowed it (rlarena.refs): a saved env,
        callbacks class, mapping function or policy class resolves only to one of rlarena's built-ins,
        an object registered in this process (register_env, register_trusted), an object you pass
        again here (`env`, `config_overrides`), or an object of a module in `trusted_modules`
        (e.g. ["my_project"]; trust only checkpoints you or someone you trust made). `trust`: a
        prepared rlarena.refs.Trust, e.g. the experiment runner's, which passes its config's objects.
        """
        overrides = dict(config_overrides or {})
        base = trust or Trust()
        modules = [trusted_modules] if isinstance(trusted_modules, str) else list(trusted_modules or ())
        trust = Trust.create([*base.modules, *modules], [*base.objects.values(), *_objects_in([env, overrides])],
                             source=f"checkpoint {str(path)!r}")
        meta, arrays = read_checkpoint(path)
        missing = [k for k in ("algorithm", "config", "counters", "episode_window", "rng") if k not in meta]
        if missing or not isinstance(meta["config"], dict):
            raise CheckpointError(f"Checkpoint {str(path)!r} is corrupted: its metadata lacks "
                                  f"{', '.join(missing) or 'a valid config'}.")
        try:
            algo_cls = get_algorithm_class(meta["algorithm"])
        except ConfigError as exc:
            raise CheckpointError(f"Checkpoint {str(path)!r}: {exc}") from None
        if cls is not Algorithm and not issubclass(algo_cls, cls):
            raise CheckpointError(f"{str(path)!r} holds a {algo_cls.__name__} checkpoint, not {cls.__name__}; "
                                  f"load it with Algorithm.from_checkpoint().")
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
            raise CheckpointError(f"Checkpoint {str(path)!r} holds a {algo_cls.__name__} agent trained on logged data "
                                  f"without an env, and a checkpoint does not choose what is read: pass the data "
                                  f"(config_overrides={{'input_': DIR}}) to continue training, or an env to play it "
                                  f"in (env=...).")
        try:
            config.validate()
        except ConfigError as exc:  # a value edited into the file (or a bad override): say where it came from
            raise CheckpointError(f"Checkpoint {str(path)!r}: {exc}") from None
        config.check_sizes(source, caller)  # before anything is allocated; networks are counted as built
        with limits.loading(source, bounded="model" not in caller):
            algo = algo_cls(config)
        algo._restore(meta, arrays)
        return algo

    def _restore_learners(self, arrays: dict[str, dict[str, np.ndarray]],
                          missing_ok: bool | tuple[str, ...] = ()) -> None:
        """Each learner's state from its groups (Learner.set_state; `missing_ok` as there)."""
        for learner in self.learners.values():
            learner.set_state(arrays, missing_ok)

    def _restore(self, meta: dict[str, Any], arrays: dict[str, dict[str, np.ndarray]]) -> None:
        try:
            for pid, policy in self.policies.items():
                if f"policy.{pid}" in arrays or isinstance(policy, TrainablePolicy):
                    policy.set_state(arrays[f"policy.{pid}"])
            self._restore_learners(arrays, self.restore_missing_ok)
            torch.set_rng_state(torch.from_numpy(arrays["rng"]["torch"].copy()))
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            detail = " ".join(str(exc).split())  # torch's state_dict errors span lines: keep the error one line
            raise CheckpointError(f"Checkpoint does not match this {type(self).__name__} ({type(exc).__name__}: "
                                  f"{detail}). Was it saved with a different model or algorithm?") from exc
        try:
            counters = meta["counters"]
            self.iteration = int(counters["iteration"])
            self.num_env_steps_sampled_lifetime = int(counters["num_env_steps_sampled_lifetime"])
            self.time_total_s = float(counters["time_total_s"])
            self.num_evaluations = int(counters["num_evaluations"])
            self.episode_stats.lifetime = int(counters["num_episodes_lifetime"])
            self.episode_stats.window.clear()  # restore() and set_state() replace a live window
            self.episode_stats.window.extend(tuple(p) for p in meta["episode_window"])
            for pid, state in meta["rng"]["policies"].items():
                self.policies[pid].rng.bit_generator.state = state  # type: ignore[attr-defined]
            self.rng.bit_generator.state = meta["rng"]["algorithm"]
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise CheckpointError(f"Checkpoint metadata is corrupted ({type(exc).__name__}: {exc}).") from exc
        # env state cannot be saved in general: fresh episodes, reproducibly for this iteration (this
        # process's runner from seed_for(seed, 2, iteration), runner i elsewhere from (..., i))
        self.env_runner_group.reset(lambda i: _seed_for(self.config.seed, 2, self.iteration, *((i,) if i else ())))

    # -- lifetime -----------------------------------------------------------------------------
    def stop(self) -> None:
        """Close the envs, stop the runners elsewhere (and write what the recorder holds)."""
        if self.recorder is not None:
            self.recorder.close()
        self.env_runner_group.stop()
        self.eval_env_runner_group.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(env={self.env_name!r}, iteration={self.iteration})"
