"""Algorithm: decides *when* (sample, update, evaluate, checkpoint). Each algorithm file holds its math.

The public surface is RLlib's: train(), evaluate(), save(), from_checkpoint(), get_state()/set_state(),
compute_single_action(), compute_actions(), get_policy(), add_policy()/remove_policy(),
workers/env_runner_group, stop().
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from rlarena import limits
from rlarena.algorithms import building, checkpointing, evaluation
from rlarena.algorithms.config import AlgorithmConfig
from rlarena.algorithms.results import learner_stats_by_policy, train_result
from rlarena.algorithms.threads import auto_threads, threads_before_learners
from rlarena.callbacks import call_hook, make_callbacks
from rlarena.checkpoint import write_checkpoint
from rlarena.envs.registry import (
    EnvSpec,
    env_name,
)
from rlarena.errors import CheckpointError, ConfigError, no_such_policy
from rlarena.learners import Learner
from rlarena.multiagent.builder import (
    DEFAULT_POLICY_ID,
)
from rlarena.nn.custom import custom_model_class, keeps_state
from rlarena.nn.flat import FlatOptimizer
from rlarena.policies.policy import Policy, Recurrent, batch_len, policy_actions, row, stack_obs
from rlarena.policies.recurrent_policy import RecurrentPolicy, memory_cell
from rlarena.policies.torch_policy import TorchPolicy, TrainablePolicy
from rlarena.refs import Trust
from rlarena.rollout.factory import seed_for
from rlarena.rollout.groups import (
    EnvRunnerGroup,
    EvaluationGroup,
    OfflineRunner,
    make_evaluation_group,
    make_runner_group,
)
from rlarena.rollout.multi_agent_runner import MultiAgentEnvRunner
from rlarena.rollout.runner import EnvRunner, EpisodeStats

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11 on

# A learner's optimizers are named: one "main" optimizer per policy for most algorithms, several for
# some (SAC: actor, critic, alpha). Checkpoints hold each as "optimizer.<policy id>.<name>".
MAIN_OPTIMIZER = "main"


_seed_for = seed_for  # the name the algorithm files import (the seeds' table: rlarena.rollout.factory)


def _single(action: Any) -> Any:
    """One action as a user reads it: a Python number for a scalar (a structure's parts as arrays)."""
    return action.item() if isinstance(action, np.ndarray | np.generic) and np.ndim(action) == 0 else action


class Algorithm(ABC):
    config_class: ClassVar[type[AlgorithmConfig]] = AlgorithmConfig
    # the trainable policy a PolicySpec without a class gets (checkpoints save it as policy_class None)
    policy_class: ClassVar[type[TrainablePolicy]] = TorchPolicy
    # whether num_env_runners > 0 samples on remote Ray env runners (rlarena.rollout.groups); the config
    # refuses it for the others
    samples_on_ray: ClassVar[bool] = False
    supports_memory: ClassVar[bool] = (
        False  # its loss unrolls sequences: model={"use_lstm": True} builds a RecurrentPolicy
    )
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

    # set by setup_data() (rlarena.algorithms.building)
    runner: EnvRunner | MultiAgentEnvRunner | OfflineRunner  # this process's runner (worker 0)
    is_multi_agent: bool
    policies_to_train: list[str]
    mapping_fn: Callable[..., str]  # multi-agent: agent id -> policy id
    _probe_env: Any  # multi-agent: the env the policies' spaces were read from
    num_torch_threads: int = 1  # the learners' torch threads (config.num_torch_threads; "auto" chooses)

    def __init__(self, config: AlgorithmConfig | dict[str, Any] | None = None, env: EnvSpec | None = None):
        if not isinstance(config, AlgorithmConfig):  # RLlib's PPO(config={...}, env=...): option names, old ones too
            options = {**(config or {}), **({"env": env} if env is not None else {})}
            config = self.config_class().update_from_dict(options).checked()
        self.config = config
        torch.set_num_threads(threads_before_learners(config))  # "auto" decides once the learners exist
        if config.seed is not None:
            torch.manual_seed(_seed_for(config.seed, 0))
        self.env_name = env_name(config.env) if config.env is not None else "offline data"
        self.callbacks = make_callbacks(config.callbacks_class)  # hooks that ask for what we lack fail here
        self.rng = np.random.default_rng(_seed_for(config.seed, 3))
        self.policies: dict[str, Policy] = {}
        self.policy_configs: dict[str, AlgorithmConfig] = {}  # per-policy overrides applied
        self.learners: dict[str, Learner] = {}
        # algorithm-wide checkpoint groups (register_state): group -> (get, set)
        self._states: dict[
            str, tuple[Callable[[], dict[str, np.ndarray]], Callable[[dict[str, np.ndarray]], None]]
        ] = {}  # trained policy id -> what optimizing it owns
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
        self.setup_data()
        # where the runners that sample for it run (this process, forked processes, Ray actors), chosen
        # once from the config; this process's runner holds the policies whose state goes out
        self.env_runner_group: EnvRunnerGroup = self.make_runner_group()
        if config.output is not None:
            from rlarena.offline.record import Recorder

            self.recorder = Recorder(
                config.output,
                {pid: self.policies[pid] for pid in self.policies_to_train},
                config.output_max_file_size,
                self.is_multi_agent,
            )
        self.setup()
        for pid in self.policies_to_train:
            self.setup_policy(pid)
        # the learners' threads: as asked, or "auto" from the work of one gradient step
        asked = config.num_torch_threads
        self.num_torch_threads = asked if isinstance(asked, int) else auto_threads(self)
        torch.set_num_threads(self.num_torch_threads)
        # where evaluation episodes play: this process, or evaluation_num_env_runners Ray actors
        self.eval_env_runner_group: EvaluationGroup = self.make_evaluation_group()
        if self.callbacks is not None:
            call_hook(self.callbacks, "on_algorithm_init", algorithm=self)

    def setup_data(self) -> None:
        """Where its experience comes from (its env, or logged data), its policies and this process's
        runner (rlarena.algorithms.building); an algorithm that plays its own way overrides it."""
        building.setup_data(self)

    def make_runner_group(self) -> EnvRunnerGroup:
        """The runner group the config asks for (rlarena.rollout.groups.make_runner_group)."""
        return make_runner_group(
            self.config,
            self.env_name,
            self.runner,
            self._structure if self.is_multi_agent else None,
            self._make_policy_here,
        )

    def make_evaluation_group(self) -> EvaluationGroup:
        """Where evaluation episodes play (rlarena.rollout.groups.make_evaluation_group)."""
        return make_evaluation_group(
            self.config,
            self.env_name,
            None if self.is_multi_agent else self.policy,
            self._structure if self.is_multi_agent else None,
            self._make_policy_here,
        )

    def _make_policy_here(self, observation_space: Any, action_space: Any, seed: int | None) -> Policy:
        return self.make_policy(observation_space, action_space, self.config, seed)

    def _structure(self) -> tuple[dict[str, Policy], Any, list[str]]:
        """The policies, mapping function and policies to train that multi-agent runners elsewhere
        sample and evaluate with (sent again whenever they change)."""
        return self.policies, self.mapping_fn, list(self.policies_to_train)

    @property
    def policy(self) -> TrainablePolicy:
        """The single-agent policy (the multi-agent default policy)."""
        return self.get_policy(DEFAULT_POLICY_ID)  # type: ignore[return-value]

    def make_policy(
        self, observation_space: Any, action_space: Any, config: AlgorithmConfig, seed: int | None
    ) -> TrainablePolicy:
        """The trainable policy of a PolicySpec that names no class (`policy_class` by default; an
        algorithm whose policy takes more options than the model config overrides this)."""
        make = self.model_policy_class(config)
        return make(observation_space, action_space, config.model_config, config.observation_filter, seed)

    def model_policy_class(self, config: AlgorithmConfig) -> Callable[..., TrainablePolicy]:
        """The trainable policy class the model options ask for (a RecurrentPolicy for memory), after
        checking this algorithm trains them; rlarena.algorithms.building calls it before make_policy,
        so an algorithm that overrides make_policy refuses what it cannot train too."""
        model = config.model_config
        name = type(self).__name__
        if model.get("custom_model") is not None and not issubclass(self.policy_class, TorchPolicy):
            raise ConfigError(
                f"model.custom_model: {name} trains its own network ({self.policy_class.__name__}); "
                f"your own model (the ModelV2 protocol: logits and value_function) trains with PPO, APPO, "
                f"IMPALA, A2C, BC or MARWIL."
            )
        cell = memory_cell(model)
        custom = model.get("custom_model")
        if custom is not None and cell is not None:
            raise ConfigError(
                f"model.use_{cell}=True with a custom_model: rlarena wraps only its own networks in memory; give "
                f"your model its own state (get_initial_state() and forward(input_dict, state, seq_lens), or "
                f"rlarena.models.TorchRNN's forward_rnn) and drop use_{cell}, or drop custom_model."
            )
        if custom is not None and keeps_state(custom_model_class(custom)):
            what = f"custom_model {custom_model_class(custom).__name__} keeps its own state (get_initial_state())"
        elif cell is None:
            return self.policy_class
        else:
            what = f"model.use_{cell}=True"
        if not self.supports_memory:
            raise ConfigError(
                f"{what}: {name} does not train recurrent models yet; PPO, IMPALA and APPO "
                f"(sequences of max_seq_len steps), A2C (each fragment unrolled whole), BC and MARWIL do."
            )
        if self.is_multi_agent:
            raise ConfigError(
                f"{what} in a multi-agent env is not available yet: memory models train in single-agent envs so far."
            )
        return RecurrentPolicy

    # -- what subclasses write ----------------------------------------------------------------
    def setup(self) -> None:
        """Create algorithm-wide state (target networks, replay buffers, ...)."""

    def setup_policy(self, policy_id: str) -> None:
        """Build the Learner of `policy_id`, which owns all that training it needs (build_learner)."""
        learner = self.learner_class(
            policy_id,
            self.policies[policy_id],
            self.policy_configs[policy_id],
            type(self).__name__,
            clock=lambda: self.num_env_steps_sampled_lifetime,
        )
        self.build_learner(learner)
        self.learners[policy_id] = learner

    def build_learner(self, learner: Learner) -> None:
        """Register what training learner.policy needs: its optimizers (learner.add_optimizer, with their
        learning rates: the lr schedule is then applied for you), target networks (add_target), replay
        buffer or counters (register_state)."""

    def register_state(
        self,
        group: str,
        get: Callable[[], dict[str, np.ndarray]],
        set: Callable[[dict[str, np.ndarray]], None],
    ) -> None:
        """Algorithm-wide arrays a run needs to continue (an update rhythm's counters), saved as checkpoint
        group `group` and given back to `set` on restore; a policy's own state is its Learner's
        (Learner.register_state)."""
        self._states[group] = (get, set)

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
                call_hook(
                    self.callbacks,
                    "on_episode_end",
                    episode=episode,
                    env_index=episode.env_index,
                    algorithm=self,
                    worker=None,
                    env_runner=None,
                    env=None,
                    base_env=None,
                    policies=self.policies,
                )
        self.episode_stats.merge(sample.episodes)
        batches = sample.batches
        self.num_env_steps_sampled_lifetime += sample.steps
        if self.recorder is not None:
            self.recorder.record(batches)
        if self.callbacks is not None:
            call_hook(
                self.callbacks,
                "on_sample_end",
                algorithm=self,
                batches=batches,
                samples=batches,
                worker=self.runner,
                env_runner=self.runner,
            )
        return batches

    # -- the loop -----------------------------------------------------------------------------
    def train(self) -> dict[str, Any]:
        """One iteration: sample + update (+ evaluation every `evaluation_interval` iterations).

        time_this_iter_s and time_total_s count training only; evaluation time is reported apart.
        """
        if self.data_mode == "offline" and self.offline_data is None:
            raise ConfigError(
                f"{type(self).__name__} learns from logged data, and this one was loaded without it (a "
                f"checkpoint does not choose what is read): pass the data to train on, "
                f"from_checkpoint(path, config_overrides={{'input_': DIR}}). Evaluating and playing "
                f"need none."
            )
        interval = self.config.evaluation_interval
        evaluates = interval is not None and interval > 0 and (self.iteration + 1) % interval == 0
        # evaluation_parallel_to_training: the evaluation runners play the weights from before this step
        parallel = evaluation.start(self) if evaluates and self.config.evaluation_parallel_to_training else None
        start = time.perf_counter()
        steps_before = self.num_env_steps_sampled_lifetime
        learner_stats = self.training_step()
        elapsed = time.perf_counter() - start
        self.iteration += 1
        self.time_total_s += elapsed
        steps = self.num_env_steps_sampled_lifetime - steps_before
        result = train_result(self, elapsed, steps, learner_stats)
        if evaluates:
            metrics = self.evaluate() if parallel is None else evaluation.finish(self, parallel)
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
        return learner_stats_by_policy(stats, self.is_multi_agent)

    def evaluate(self) -> dict[str, float]:
        """`evaluation_duration` greedy episodes (unless evaluation_explore) on separate envs: in this
        process, or split over the evaluation runners (evaluation_num_env_runners)."""
        return evaluation.finish(self, evaluation.start(self))

    # -- policies -----------------------------------------------------------------------------
    def get_policy(self, policy_id: str = DEFAULT_POLICY_ID) -> Policy:
        try:
            return self.policies[policy_id]
        except KeyError:
            raise no_such_policy(policy_id, self.policies) from None

    def add_policy(
        self,
        policy_id: str,
        policy_cls: type[Policy] | None = None,
        *,
        policy_state: dict[str, np.ndarray] | None = None,
        observation_space: Any = None,
        action_space: Any = None,
        config: dict[str, Any] | None = None,
        policy_mapping_fn: Any = None,
        policies_to_train: list[str] | None = None,
    ) -> Policy:
        """Add a policy between iterations (RLlib's add_policy). Spaces default to the env's agents
        mapped to it, else to the first policy's; policy_state (from get_policy(x).get_state())
        copies weights, e.g. to freeze a snapshot of the learner. The new mapping applies from each
        env copy's next episode."""
        return building.add_policy(
            self,
            policy_id,
            policy_cls,
            policy_state=policy_state,
            observation_space=observation_space,
            action_space=action_space,
            config=config,
            policy_mapping_fn=policy_mapping_fn,
            policies_to_train=policies_to_train,
        )

    def remove_policy(
        self, policy_id: str, *, policy_mapping_fn: Any = None, policies_to_train: list[str] | None = None
    ) -> None:
        """Remove a policy between iterations, its Learner with it. Agents of running episodes that were
        mapped to it are mapped again (with the new policy_mapping_fn) at their next step."""
        building.remove_policy(
            self, policy_id, policy_mapping_fn=policy_mapping_fn, policies_to_train=policies_to_train
        )

    def set_policy_mapping_fn(self, policy_mapping_fn: Any) -> None:
        building.set_policy_mapping_fn(self, policy_mapping_fn)

    def set_policies_to_train(self, policies_to_train: list[str], remember: bool = True) -> None:
        building.set_policies_to_train(self, policies_to_train, remember)

    # -- inference ----------------------------------------------------------------------------
    def compute_actions(
        self, obs_batch: Any, explore: bool | None = None, policy_id: str = DEFAULT_POLICY_ID
    ) -> np.ndarray:
        """Actions for a batch of observations. explore=None samples (RLlib's default); False is greedy."""
        return policy_actions(self.get_policy(policy_id), obs_batch, explore is not False, batch_len(obs_batch))

    def compute_single_action(
        self,
        observation: Any = None,
        state: Any = None,
        explore: bool | None = None,
        policy_id: str = DEFAULT_POLICY_ID,
        *,
        obs: Any = None,
        prev_action: Any = None,
        prev_reward: Any = None,
        **kwargs: Any,
    ) -> Any:
        """The action for one observation (RLlib's name for it is `observation`; `obs=` works too).

        A recurrent policy's memory: pass `state` (RLlib's `compute_single_action(obs, state)`; the
        first call's state is `get_policy().get_initial_state()`) and get RLlib's
        `(action, state_out, info)` back, state_out to pass with the next observation. Without a
        state, a recurrent policy acts as at an episode's first step. A bool in `state`'s place is
        taken as `explore` (rlarena's older positional order)."""
        if (observation is None) == (obs is None):
            raise ConfigError(
                "compute_single_action() takes one observation: pass it positionally or as "
                "observation=... (or obs=...)."
            )
        if isinstance(state, bool | np.bool_):  # compute_single_action(obs, False): the older (obs, explore)
            state, explore = None, bool(state) if explore is None else explore
        unknown = sorted(set(kwargs) - {"full_fetch", "unsquash_action", "clip_action", "timestep", "episode", "info"})
        if unknown:
            raise ConfigError(f"compute_single_action() got unknown arguments: {', '.join(unknown)}.")
        batch = stack_obs([obs if observation is None else observation])
        if state is not None and not (isinstance(state, list | tuple) and len(state) == 0):
            policy = self.get_policy(policy_id)
            if not isinstance(policy, Recurrent):
                raise ConfigError(
                    f"compute_single_action(..., state=...): policy {policy_id!r} has no memory "
                    f"(model use_lstm / use_gru / use_attention); call it without a state."
                )
            rows = np.asarray(state[0] if isinstance(state, list | tuple) and len(state) == 1 else state, np.float32)
            if rows.size != policy.state_size:
                raise ConfigError(
                    f"compute_single_action(..., state=...): the state has {rows.size} numbers, policy "
                    f"{policy_id!r} keeps {policy.state_size}; start from get_policy().get_initial_state() "
                    f"and pass back the state_out each call returns."
                )
            rows = rows.reshape(1, -1).copy()
            self._previous_inputs(policy, rows, prev_action, prev_reward)
            actions, state_out = policy.compute_actions_with_state(batch, rows, explore is not False)
            return _single(row(actions, 0)), [state_out[0]], {}
        if prev_action is not None or prev_reward is not None:
            raise ConfigError(
                "compute_single_action(prev_action=..., prev_reward=...): they are inputs of a memory "
                "(model lstm_use_prev_action / lstm_use_prev_reward); pass the state too."
            )
        return _single(row(self.compute_actions(batch, explore, policy_id), 0))

    @staticmethod
    def _previous_inputs(policy: Any, rows: np.ndarray, prev_action: Any, prev_reward: Any) -> None:
        """Write RLlib's prev_action / prev_reward into a state row of a memory that reads them."""
        reads_action, slot = getattr(policy, "use_prev_action", False), getattr(policy, "reward_slot", None)
        if prev_action is not None:
            if not reads_action:
                raise ConfigError(
                    "compute_single_action(prev_action=...): this policy's memory does not read the previous "
                    "action (model lstm_use_prev_action); leave prev_action out."
                )
            stored = policy.action_layout.from_env(stack_obs([prev_action]), 1) if policy.action_layout else prev_action
            encoded = policy.encode_actions(np.asarray(stored).reshape(1, -1))
            start = policy.cell_state_size
            rows[:, start : start + encoded.shape[1]] = encoded
        if prev_reward is not None:
            if slot is None:
                raise ConfigError(
                    "compute_single_action(prev_reward=...): this policy's memory does not read the previous "
                    "reward (model lstm_use_prev_reward); leave prev_reward out."
                )
            rows[:, slot] = float(prev_reward)

    compute_action = compute_single_action  # RLlib 1.x's name (the MultiAgentArena tutorial uses it)

    def export_onnx(self, path: str | Path, policy_id: str = DEFAULT_POLICY_ID) -> Path:
        """Write policy `policy_id` as an ONNX model that onnxruntime plays alone (rlarena.export.onnx:
        the observation (packed for images, dicts and custom models; + action_mask, + state_in for
        memory) in; the masked logits (or the Box mean), then the value (+ state_out), out)."""
        from rlarena.export.onnx import export_onnx

        return export_onnx(self.policies, path, policy_id, env_name=self.env_name)

    # -- checkpoints --------------------------------------------------------------------------
    def _state_arrays(self) -> dict[str, dict[str, np.ndarray]]:
        """Every array a restored algorithm needs (checkpointing.state_arrays); subclasses with more
        state extend it."""
        return checkpointing.state_arrays(self)

    def get_state(self) -> dict[str, Any]:
        """RLlib's Algorithm.get_state(): a snapshot that set_state() restores: counters, the episode
        window, every policy (class, spaces, weights as copies), optimizer and RNG states. save()
        writes the same snapshot to disk (the config beside it)."""
        return checkpointing.get_state(self)

    def set_state(self, state: dict[str, Any]) -> None:
        """Return to a get_state() snapshot of this algorithm: a league grown or shrunk since is put
        back (policies added since are removed, removed ones built again from their class and spaces),
        then weights, optimizers, counters and RNGs are restored. Episodes under way start afresh: env
        state cannot be captured in general."""
        checkpointing.set_state(self, state)

    @property
    def workers(self) -> EnvRunnerGroup:
        """RLlib's older name of env_runner_group (the Connect Four blog's algorithm.workers.sync_weights())."""
        return self.env_runner_group

    def save(self, checkpoint_dir: str | Path | None = None) -> str:
        """Write a checkpoint directory (atomically) and return its path."""
        if checkpoint_dir is None:
            checkpoint_dir = (
                Path("checkpoints") / f"{type(self).__name__}_{self.env_name}" / f"checkpoint_{self.iteration:06d}"
            )
        state = self.get_state()
        path = write_checkpoint(checkpoint_dir, checkpointing.metadata(self, state), state["arrays"])
        if self.callbacks is not None:
            call_hook(self.callbacks, "on_checkpoint", algorithm=self, checkpoint_dir=path)
        return path

    def restore(self, checkpoint_path: str | Path) -> None:
        """RLlib's in-place restore: this algorithm takes the weights, optimizer state, counters, episode
        window and RNG state saved at `checkpoint_path`, keeping its own config. The checkpoint must come
        from the same algorithm with the same policies; Algorithm.from_checkpoint builds one from any
        checkpoint instead. Nothing the checkpoint's config names is read (the live config stays)."""
        meta, arrays = checkpointing.read_own(self, checkpoint_path)
        self._restore(meta, arrays)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        env: EnvSpec | None = None,
        config_overrides: dict[str, Any] | None = None,
        trusted_modules: Iterable[str] | str | None = None,
        trust: Trust | None = None,
    ) -> Algorithm:
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
        loaded = checkpointing.load(path, env, config_overrides, trusted_modules, trust)
        if cls is not Algorithm and not issubclass(loaded.algo_class, cls):
            raise CheckpointError(
                f"{str(path)!r} holds a {loaded.algo_class.__name__} checkpoint, not {cls.__name__}; "
                f"load it with Algorithm.from_checkpoint()."
            )
        with limits.loading(loaded.source, bounded=loaded.bounded):
            algo: Algorithm = loaded.algo_class(loaded.config)
        algo._restore(loaded.meta, loaded.arrays)
        return algo

    def _restore_learners(
        self, arrays: dict[str, dict[str, np.ndarray]], missing_ok: bool | tuple[str, ...] = ()
    ) -> None:
        """Each learner's state from its groups (Learner.set_state; `missing_ok` as there)."""
        for learner in self.learners.values():
            learner.set_state(arrays, missing_ok)

    def _restore(self, meta: dict[str, Any], arrays: dict[str, dict[str, np.ndarray]]) -> None:
        """Weights, learners, counters and RNGs from a checkpoint or get_state() (checkpointing.restore)."""
        checkpointing.restore(self, meta, arrays)

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
