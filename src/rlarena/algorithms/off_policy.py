"""What the off-policy algorithms (DQN, SAC, TD3/DDPG) share: the replay options, the sample-store-update
loop, replayed batches as tensors, and each trained policy's learner with its replay buffer
(ReplayLearner: the buffer is learner state "replay", saved beside its optimizers and target networks).

One iteration (RLlib's training_step) repeats, until it has sampled min_sample_timesteps_per_iteration
env steps: sample rollout_fragment_length steps per env (the policy explores as the algorithm's
`before_sample` sets it), add them to each trained policy's replay buffer, then (past
num_steps_sampled_before_learning_starts) take the gradient steps (`update_policy`) and let the
algorithm update its targets.

Stable-Baselines3's names are accepted too:
    SB3 train_freq=k (vector steps between updates)  ->  rollout_fragment_length=k
    SB3 gradient_steps=g (per update; -1: one per env step sampled)
                                                      ->  training_intensity = g * train_batch_size / (k * num_envs)
    SB3 learning_starts / target_update_interval / buffer_size
                                                      ->  num_steps_sampled_before_learning_starts /
                                                          target_network_update_freq / replay_buffer_config["capacity"]
Without either, one gradient step follows each fragment (RLlib's "natural" intensity,
train_batch_size / (rollout_fragment_length * num_envs) replayed per sampled step).
"""

from __future__ import annotations

import itertools
from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from rlarena import limits
from rlarena.algorithms.algorithm import Algorithm, _seed_for
from rlarena.algorithms.config import AlgorithmConfig, NotProvided, NotProvidedType, option, provided
from rlarena.errors import ConfigError, closest
from rlarena.learners import Learner
from rlarena.nn.actor_q import ActorQ
from rlarena.nn.flat import Adam, FlatParameters
from rlarena.policies.actor_q_policy import ActorQPolicy
from rlarena.policies.policy import Exploration, Recurrent
from rlarena.policies.torch_policy import TrainablePolicy
from rlarena.rollout.frames import frame_stack
from rlarena.rollout.replay import PrioritizedReplayBuffer, ReplayBuffer
from rlarena.rollout.storage import Rollout

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11 on

# replay_buffer_config's keys; each algorithm's config states its defaults (`replay_defaults`).
# beta_annealing_steps: beta grows linearly to 1 over these env steps (Schaul et al. 2016, sec. 3.4;
# RLlib keeps beta fixed); 0 keeps it fixed
# steps per env a remote runner samples per call with rollout_fragment_length "auto" (remote_fragment_scale)
REMOTE_FRAGMENT_STEPS = 32
REPLAY_KEYS = ("type", "capacity", "alpha", "beta", "beta_annealing_steps", "epsilon", "replay_burn_in")


REPLAY_TYPES = {"ReplayBuffer": ReplayBuffer, "PrioritizedReplayBuffer": PrioritizedReplayBuffer}
# RLlib's other names for the same two buffers (its episode and multi-agent variants; one buffer per
# trained policy here), and its older key names
REPLAY_TYPE_ALIASES = {
    "EpisodeReplayBuffer": "ReplayBuffer",
    "MultiAgentReplayBuffer": "ReplayBuffer",
    "MultiAgentEpisodeReplayBuffer": "ReplayBuffer",
    "PrioritizedEpisodeReplayBuffer": "PrioritizedReplayBuffer",
    "MultiAgentPrioritizedReplayBuffer": "PrioritizedReplayBuffer",
    "MultiAgentPrioritizedEpisodeReplayBuffer": "PrioritizedReplayBuffer",
}
REPLAY_KEY_ALIASES = {
    "prioritized_replay_alpha": "alpha",
    "prioritized_replay_beta": "beta",
    "prioritized_replay_eps": "epsilon",
}

# RLlib's old API stack and SB3 -> ours
OLD_NAMES = {
    "learning_starts": "num_steps_sampled_before_learning_starts",
    "target_update_interval": "target_network_update_freq",
}


@dataclass
class OffPolicyConfig(AlgorithmConfig):
    """The replay and update-rhythm options every off-policy algorithm has (RLlib's names)."""

    replay_defaults: ClassVar[dict[str, Any]] = {
        "type": "ReplayBuffer",
        "capacity": 1_000_000,
        "alpha": 0.6,
        "beta": 0.4,
        "beta_annealing_steps": 100_000,
        "epsilon": 1e-6,
        "replay_burn_in": 0,  # DQN with memory (R2D2): steps before each stored sequence that only warm its state up
    }
    num_envs_per_env_runner: int = option(1, "env_runners")  # SB3's and RLlib's: one env, one update per step
    replay_buffer_config: dict = option({}, "training")  # over replay_defaults (read `replay_config`)
    store_buffer_in_checkpoints: bool = option(True, "training")  # RLlib's default is False
    n_step: int = option(1, "training", bound="MAX_BATCH")
    tau: float = option(1.0, "training")  # target <- tau * online + (1 - tau) * target; 1: a hard copy
    target_network_update_freq: int = option(0, "training")  # env steps between target updates; 0: each update
    num_steps_sampled_before_learning_starts: int = option(1000, "training")
    training_intensity: float | None = option(
        None, "training", bound="MAX_EPOCHS"
    )  # replayed / sampled steps; None: natural
    train_freq: int | None = option(None, "training", bound="MAX_BATCH")  # SB3's name of rollout_fragment_length
    gradient_steps: int | None = option(
        None, "training", bound="MAX_EPOCHS"
    )  # SB3's: per fragment; -1: one per env step sampled
    min_sample_timesteps_per_iteration: int = option(1000, "training", bound="MAX_BATCH")

    def training(
        self,
        *,
        replay_buffer_config: dict | NotProvidedType = NotProvided,
        store_buffer_in_checkpoints: bool | NotProvidedType = NotProvided,
        n_step: int | NotProvidedType = NotProvided,
        tau: float | NotProvidedType = NotProvided,
        target_network_update_freq: int | NotProvidedType = NotProvided,
        num_steps_sampled_before_learning_starts: int | NotProvidedType = NotProvided,
        training_intensity: float | None | NotProvidedType = NotProvided,
        train_freq: int | None | NotProvidedType = NotProvided,
        gradient_steps: int | None | NotProvidedType = NotProvided,
        min_sample_timesteps_per_iteration: int | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """The options declared above; the others go to AlgorithmConfig.training()."""
        return super().training(**provided(locals()))

    def _translate(self, options: dict[str, Any], valid: Any) -> dict[str, Any]:
        """RLlib's older and SB3's names of off-policy options read as ours (the rest as every config does)."""
        renamed = {OLD_NAMES.get(k, k) if k not in valid else k: v for k, v in options.items()}
        return super()._translate(renamed, valid)

    @property
    def replay_config(self) -> dict[str, Any]:
        """replay_defaults with replay_buffer_config over them (RLlib's older key and type names read as ours)."""
        given = {REPLAY_KEY_ALIASES.get(k, k): v for k, v in self.replay_buffer_config.items()}
        if isinstance(given.get("type"), str):
            given["type"] = REPLAY_TYPE_ALIASES.get(given["type"], given["type"])
        return {**self.replay_defaults, **given}

    @property
    def fragment_length(self) -> int:
        """Steps per env between updates: rollout_fragment_length, else SB3's train_freq, else 1 (times
        remote_fragment_scale with remote env runners)."""
        if self.rollout_fragment_length != "auto":
            return int(self.rollout_fragment_length)
        return (self.train_freq if self.train_freq is not None else 1) * self.remote_fragment_scale

    @property
    def remote_fragment_scale(self) -> int:
        """With remote env runners and rollout_fragment_length "auto", a runner samples a whole
        multiple of the local fragment, about REMOTE_FRAGMENT_STEPS steps per env, per call (a Ray call
        costs milliseconds; one env step per call would spend the run waiting on calls), and that
        many times the updates follow it: the same updates per env step, in bursts. This is the one
        place where the runner group (Ray) changes an algorithm's rhythm; every other "auto" rule is the
        same in this process, in forked processes and on Ray (AlgorithmConfig.fragment_length)."""
        if self.rollout_fragment_length != "auto" or self.num_env_runners == 0:
            return 1
        return max(1, REMOTE_FRAGMENT_STEPS // (self.train_freq or 1))

    def sizes(self) -> list[tuple[str, Any, str]]:
        return [*super().sizes(), ("replay_buffer_config.capacity", self.replay_config.get("capacity"), "MAX_REPLAY")]

    @property
    def num_envs_sampled(self) -> int:
        """The envs stepped per fragment: every runner's (the replay buffer keeps one column each)."""
        return self.num_envs_per_env_runner * max(1, self.num_env_runners)

    def validate(self) -> None:
        super().validate()
        rc = self.replay_config
        for key in rc:
            if key not in REPLAY_KEYS:
                raise ConfigError(
                    f"Unknown replay_buffer_config key {key!r}.{closest(str(key), REPLAY_KEYS)} "
                    f"Valid keys: {', '.join(REPLAY_KEYS)}."
                )
        self._choice("replay_buffer_config['type']", rc["type"], tuple(REPLAY_TYPES))
        burn = rc["replay_burn_in"]
        if not (isinstance(burn, int) and not isinstance(burn, bool) and 0 <= burn <= limits.MAX_EPISODE_STEPS):
            raise ConfigError(
                f"Invalid replay_buffer_config['replay_burn_in']={burn!r}: a whole number of steps >= 0 (the "
                f"steps before each stored sequence that warm up a recurrent Q-network's state)."
            )
        ok_numbers = all(
            isinstance(rc[k], int | float) and not isinstance(rc[k], bool)
            for k in ("capacity", "alpha", "beta", "beta_annealing_steps", "epsilon")
        )
        if not (
            ok_numbers
            and rc["capacity"] >= 1
            and rc["alpha"] >= 0
            and 0 <= rc["beta"] <= 1
            and rc["beta_annealing_steps"] >= 0
            and rc["epsilon"] > 0
        ):
            raise ConfigError(
                f"Invalid replay_buffer_config={self.replay_buffer_config!r}: capacity must be >= 1, "
                f"alpha >= 0, beta in [0, 1], beta_annealing_steps >= 0 (0: no annealing), "
                f"epsilon > 0."
            )
        if rc["capacity"] // self.num_envs_sampled < self.n_step + 1:
            raise ConfigError(
                f"Invalid replay_buffer_config capacity={rc['capacity']}: it must hold n_step + 1 = "
                f"{self.n_step + 1} steps of each of the {self.num_envs_sampled} envs; raise it "
                f"to >= {(self.n_step + 1) * self.num_envs_sampled}."
            )
        if self.num_env_runners > 0 and (self.restart_failed_env_runners or self.ignore_env_runner_failures):
            raise ConfigError(
                f"fault_tolerance(...) with num_env_runners={self.num_env_runners}: an off-policy "
                f"algorithm's replay buffer keeps each env's transitions in order, and a lost runner "
                f"would leave its envs' episodes cut without their last observation; remote runners "
                f"of off-policy algorithms stop training when one fails (PPO and A2C go on). Leave "
                f"restart_failed_env_runners and ignore_env_runner_failures off."
            )
        self._check("n_step", self.n_step >= 1, "must be >= 1")
        self._check(
            "target_network_update_freq",
            self.target_network_update_freq >= 0,
            "must be >= 0 (env steps; 0: after every update)",
        )
        self._check("tau", 0 < self.tau <= 1, "must be in (0, 1]")
        self._check(
            "num_steps_sampled_before_learning_starts",
            self.num_steps_sampled_before_learning_starts >= 0,
            "must be >= 0",
        )
        self._check("min_sample_timesteps_per_iteration", self.min_sample_timesteps_per_iteration >= 0, "must be >= 0")
        self._check(
            "training_intensity", self.training_intensity is None or self.training_intensity > 0, "must be > 0 or None"
        )
        self._check("train_freq", self.train_freq is None or self.train_freq >= 1, "must be >= 1 or None")
        if self.train_freq is not None and self.rollout_fragment_length not in ("auto", self.train_freq):
            raise ConfigError(
                f"train_freq={self.train_freq} (SB3's name) and rollout_fragment_length="
                f"{self.rollout_fragment_length} say the same thing differently: set one."
            )
        self._check(
            "gradient_steps",
            self.gradient_steps is None or self.gradient_steps >= 1 or self.gradient_steps == -1,
            "must be >= 1, -1 (one per env step sampled) or None",
        )
        if self.gradient_steps is not None and self.training_intensity is not None:
            raise ConfigError(
                f"gradient_steps={self.gradient_steps} (SB3's) and training_intensity="
                f"{self.training_intensity} (RLlib's) both set the updates per fragment: set one."
            )


@dataclass
class ReplayBatch:
    """B replayed n-step transitions as tensors, ready for a loss."""

    obs: torch.Tensor  # [B, D] float32, preprocessed
    actions: torch.Tensor  # [B] int64 (Discrete) or [B, d] float32 (Box, in the policy's [-1, 1] units)
    rewards: torch.Tensor  # [B] float32, the discounted n-step reward sum
    discounts: torch.Tensor  # [B] float32, gamma^k; 0 where the episode terminated
    next_obs: torch.Tensor  # [B, D] float32, preprocessed
    next_mask: torch.Tensor | None  # [B, n] bool legal actions of next_obs, for masked policies
    weights: torch.Tensor  # [B] float32 importance weights (1 for uniform replay)
    mask: torch.Tensor | None = None  # [B, n] bool legal actions of obs, for masked policies


def check_schedule(config: AlgorithmConfig, key: str, low: float = 0.0, high: float = 1.0) -> None:
    schedule = getattr(config, key)
    ok = (
        len(schedule) >= 1
        and all(
            isinstance(p, list | tuple)
            and len(p) == 2
            and all(isinstance(x, int | float) for x in p)
            and low <= p[1] <= high
            for p in schedule
        )
        and all(a[0] <= b[0] for a, b in itertools.pairwise(schedule))
    )
    config._check(
        key,
        ok,
        f"must be a list of [env_step, value] pairs, steps ascending, values in [{low}, {high}], "
        f"e.g. [[0, 1.0], [10000, 0.05]]",
    )


@contextmanager
def frozen(module: torch.nn.Module) -> Iterator[None]:
    """`module`'s parameters take no gradient inside (an actor's loss moves the actor only, not the
    critics it is evaluated by)."""
    module.requires_grad_(False)
    try:
        yield
    finally:
        module.requires_grad_(True)


class ReplayLearner(Learner):
    """A policy's learner in a replay-based algorithm: beside its optimizers and target networks, its
    replay buffer (OffPolicyAlgorithm.add_buffer), checkpointed as learner state "replay"."""

    buffer: ReplayBuffer


class OffPolicyAlgorithm(Algorithm):
    """The loop and the state every replay-based algorithm shares. Subclasses write `build_learner`
    (their optimizers and target networks on the learner; they call `add_buffer`), `update_policy` (one
    gradient step on `replay(pid)`, returning its statistics as a tensor named by `stat_names`), and
    optionally `before_sample` (exploration schedules), `update_targets` (after the updates of one
    fragment) and `policy_metrics`."""

    samples_on_ray = True  # remote runners' fragments side by side: one replay column per env
    learner_class: ClassVar[type[Learner]] = ReplayLearner
    # a checkpoint saved with store_buffer_in_checkpoints=False has no replay buffers: they start empty
    restore_missing_ok: ClassVar[bool | tuple[str, ...]] = ("replay",)

    config: OffPolicyConfig
    stat_names: ClassVar[tuple[str, ...]] = ()

    def setup(self) -> None:
        # the update rhythm, of all policies together; each policy's own state is its learner's
        self.last_target_update = 0  # env step of the last target update
        self.num_gradient_steps = 0
        self._update_credit = 0.0  # fractional gradient steps owed (training_intensity)
        self.register_state(self._state_group, self._rhythm_state, self._set_rhythm_state)

    def replay_learner(self, policy_id: str) -> ReplayLearner:
        """The learner of a trained policy (learner_class), typed."""
        learner = self.learners[policy_id]
        assert isinstance(learner, ReplayLearner)
        return learner

    def add_buffer(self, learner: ReplayLearner) -> ReplayBuffer:
        """The learner's replay buffer (replay_buffer_config), registered as its state "replay"
        (saved unless store_buffer_in_checkpoints is False)."""
        policy, cfg = learner.policy, learner.config
        assert isinstance(policy, TrainablePolicy) and isinstance(cfg, OffPolicyConfig)
        rc = cfg.replay_config
        # the multi-agent runner emits segments (one agent's transitions, each ending terminated or truncated
        # at an episode or fragment end), fed as one stream; single-agent columns continue across fragments
        num_envs = 1 if self.is_multi_agent else self.config.num_envs_sampled
        width = policy.obs_dim
        if policy.masked:  # the mask rides with the obs
            assert policy.mask_size is not None  # a masked policy's mask covers its categorical choices
            width += policy.mask_size
        kwargs: dict[str, Any] = {"alpha": rc["alpha"]} if rc["type"] == "PrioritizedReplayBuffer" else {}
        seed = _seed_for(self.config.seed, 5, list(self.policies).index(learner.policy_id))
        buffer = learner.buffer = REPLAY_TYPES[rc["type"]](
            rc["capacity"],
            num_envs,
            (width,),
            policy.obs_dtype,  # uint8 frames stay bytes
            policy.action_shape,
            policy.action_dtype,
            n_step=cfg.n_step,
            gamma=cfg.gamma,
            seed=seed,
            frames=frame_stack(policy),
            state_size=policy.state_size if isinstance(policy, Recurrent) else 0,
            **kwargs,
        )

        def get() -> dict[str, np.ndarray] | None:
            if not self.config.store_buffer_in_checkpoints:
                return None
            return {
                k: np.array(v) for k, v in buffer.state_dict().items()
            }  # copies: a snapshot must not follow later adds

        learner.register_state("replay", get, buffer.load_state_dict)
        return buffer

    # -- sampling into the buffer ---------------------------------------------------------------
    def before_sample(self) -> None:
        """Each trained policy sets its exploration for the next fragment from its own schedule (the
        Exploration capability), given the env steps sampled so far."""
        for pid in self.policies_to_train:
            policy = self.policies[pid]
            if isinstance(policy, Exploration):
                policy.set_exploration(self.num_env_steps_sampled_lifetime)

    def _store(self, policy_id: str, batch: Rollout) -> None:
        """Add a fragment to the policy's buffer: observations before the filter (it is applied when
        replayed, with the statistics of then), each with its legal actions appended."""
        obs = batch.raw_obs if batch.raw_obs is not None else np.asarray(batch.obs)  # [T+1, N, D]
        if batch.action_mask is not None:
            obs = np.concatenate([obs, batch.action_mask.astype(obs.dtype)], -1)
        buffer = self.replay_learner(policy_id).buffer
        if not self.is_multi_agent:
            # the vector env's next-step autoreset: obs[t+1] after an episode end is its final observation,
            # and step t+1 only resets (valid False), see rollout/replay.py
            for t in range(len(batch.rewards)):
                buffer.add(
                    obs[t],
                    batch.actions[t],
                    batch.rewards[t],
                    batch.terminated[t],
                    batch.truncated[t],
                    obs[t + 1],
                    batch.valid[t],
                    None if batch.state_in is None else batch.state_in[t],
                )
            return
        for s in range(batch.valid.shape[1]):
            for t in np.flatnonzero(batch.valid[:, s]).tolist():
                buffer.add(
                    obs[t, s][None],
                    batch.actions[t, s][None],
                    batch.rewards[t, s][None],
                    batch.terminated[t, s][None],
                    batch.truncated[t, s][None],
                    obs[t + 1, s][None],
                )

    def _num_updates(self, sampled: int) -> int:
        cfg = self.config
        if cfg.gradient_steps is not None:
            return sampled if cfg.gradient_steps == -1 else cfg.gradient_steps * cfg.remote_fragment_scale
        if cfg.training_intensity is None:
            return cfg.remote_fragment_scale
        self._update_credit += cfg.training_intensity * sampled / cfg.train_batch_size
        updates = int(self._update_credit)
        self._update_credit -= updates
        return updates

    # -- the update -----------------------------------------------------------------------------
    def replay(self, policy_id: str) -> tuple[ReplayBatch, np.ndarray]:
        """A batch of train_batch_size transitions of the policy's buffer (prioritized: beta annealed
        over the env steps), and their slot indices (for update_priorities)."""
        learner = self.replay_learner(policy_id)
        cfg: OffPolicyConfig = learner.config
        policy: TrainablePolicy = learner.policy
        buffer = learner.buffer
        if isinstance(buffer, PrioritizedReplayBuffer):
            rc = cfg.replay_config
            done = (
                1.0
                if rc["beta_annealing_steps"] == 0
                else min(1.0, self.num_env_steps_sampled_lifetime / rc["beta_annealing_steps"])
            )
            sample = buffer.sample(cfg.train_batch_size, beta=rc["beta"] + (1 - rc["beta"]) * done)
        else:
            sample = buffer.sample(cfg.train_batch_size)
        D = policy.obs_dim
        batch = ReplayBatch(
            obs=torch.from_numpy(policy.normalize(sample.obs[:, :D])),
            actions=torch.from_numpy(sample.actions),
            rewards=torch.from_numpy(sample.rewards),
            discounts=torch.from_numpy(sample.discounts),
            next_obs=torch.from_numpy(policy.normalize(sample.next_obs[:, :D])),
            next_mask=torch.from_numpy(sample.next_obs[:, D:] > 0.5) if policy.masked else None,
            weights=torch.from_numpy(sample.weights),
            mask=torch.from_numpy(sample.obs[:, D:] > 0.5) if policy.masked else None,
        )
        return batch, sample.indices

    def update_priorities(self, policy_id: str, indices: np.ndarray, td_error: torch.Tensor) -> None:
        """Prioritized replay: priorities |delta| + eps (Schaul et al. 2016, sec. 3.3)."""
        learner = self.replay_learner(policy_id)
        buffer = learner.buffer
        if isinstance(buffer, PrioritizedReplayBuffer):
            eps = learner.config.replay_config["epsilon"]
            buffer.update_priorities(indices, td_error.abs().numpy() + eps)

    @abstractmethod
    def update_policy(self, policy_id: str) -> torch.Tensor:
        """One gradient step of one policy on a replayed batch; its statistics (len(stat_names))."""

    def update_targets(self) -> None:
        """Polyak-average every target network towards its online one (tau 1: a copy). training_step
        calls it at SB3's rhythm: when a fragment's sampling reaches a multiple of
        target_network_update_freq env steps, before the updates that follow (the networks as they
        were when that step was sampled, as SB3 copies during collection); with 0, after each
        fragment's updates."""
        for pid in self.policies_to_train:
            learner = self.learners[pid]
            learner.update_targets(learner.config.tau)
        self.last_target_update = self.num_env_steps_sampled_lifetime

    def policy_metrics(self, policy_id: str) -> dict[str, float]:
        """Per-policy values reported beside the loss statistics (exploration, temperature, ...)."""
        return {}

    def training_step(self) -> dict[str, float]:
        cfg = self.config
        start = self.num_env_steps_sampled_lifetime
        stats: dict[str, list[torch.Tensor]] = {pid: [] for pid in self.policies_to_train}
        while True:
            self.before_sample()
            before = self.num_env_steps_sampled_lifetime
            for pid, batch in self.sample().items():
                if pid in self.learners:
                    self._store(pid, batch)
            freq, now = cfg.target_network_update_freq, self.num_env_steps_sampled_lifetime
            if freq and now // freq > before // freq:  # this fragment reached a multiple of freq
                self.update_targets()
            # SB3's and RLlib's: learning once more than learning_starts env steps were sampled
            if now > cfg.num_steps_sampled_before_learning_starts:
                updates = self._num_updates(now - before)
                updated = False
                for pid in self.policies_to_train:
                    buffer = self.replay_learner(pid).buffer
                    if len(buffer) < (buffer.n_step + 2) * buffer.num_envs:  # nothing sampleable yet
                        continue
                    for _ in range(updates):
                        stats[pid].append(self.update_policy(pid))
                        self.num_gradient_steps += 1
                        updated = True
                if updated and not freq:
                    self.update_targets()
            if self.num_env_steps_sampled_lifetime - start >= cfg.min_sample_timesteps_per_iteration:
                break
        out: dict[str, float] = {}
        for pid, rows in stats.items():
            values = dict(zip(self.stat_names, torch.stack(rows).mean(0).tolist())) if rows else {}
            values.update(
                self.policy_metrics(pid),
                replay_size=float(len(self.replay_learner(pid).buffer)),
                num_gradient_steps_lifetime=self.num_gradient_steps,
            )  # of all policies together
            out.update({f"learner/{pid}/{k}": v for k, v in values.items()} if self.is_multi_agent else values)
        return out

    # -- checkpoints ----------------------------------------------------------------------------
    @property
    def _state_group(self) -> str:
        return type(self).__name__.lower()

    def _rhythm_state(self) -> dict[str, np.ndarray]:
        """The update rhythm's counters (each policy's targets and replay buffer are its learner's state);
        schedules' positions are the env step count."""
        return {
            "counters": np.array([self.last_target_update, self.num_gradient_steps], np.int64),
            "update_credit": np.array([self._update_credit], np.float64),
        }

    def _set_rhythm_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.last_target_update, self.num_gradient_steps = (int(x) for x in arrays["counters"])
        self._update_credit = float(arrays["update_credit"][0])

    def _restore(self, meta: dict[str, Any], arrays: dict[str, dict[str, np.ndarray]]) -> None:
        # weights, learners (optimizers, targets, replay buffers), the rhythm; the runner starts fresh episodes
        super()._restore(meta, arrays)
        if not self.is_multi_agent:  # episodes under way when saved end there
            for learner in self.learners.values():
                if isinstance(learner, ReplayLearner):
                    learner.buffer.cut()


# -- an actor with Q critics: what SAC and TD3/DDPG share ------------------------------------------
@dataclass
class ActorQConfig(OffPolicyConfig):
    """The options SAC and TD3 share (RLlib's names, SB3's defaults)."""

    actor_lr: float | None = option(None, "training")  # None: lr
    critic_lr: float | None = option(None, "training")  # None: lr
    train_batch_size: int = option(256, "training")
    tau: float = option(0.005, "training")
    twin_q: bool = option(True, "training")
    num_steps_sampled_before_learning_starts: int = option(100, "training")  # SB3's learning_starts (RLlib: 1500)
    random_timesteps: int | None = option(None, "training")  # uniform actions this long; None: until learning starts

    def training(
        self,
        *,
        actor_lr: float | None | NotProvidedType = NotProvided,
        critic_lr: float | None | NotProvidedType = NotProvided,
        train_batch_size: int | NotProvidedType = NotProvided,
        tau: float | NotProvidedType = NotProvided,
        twin_q: bool | NotProvidedType = NotProvided,
        num_steps_sampled_before_learning_starts: int | NotProvidedType = NotProvided,
        random_timesteps: int | None | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """The options declared above; the others go to OffPolicyConfig.training()."""
        return super().training(**provided(locals()))

    def validate(self) -> None:
        super().validate()
        for key in ("actor_lr", "critic_lr"):
            value = getattr(self, key)
            self._check(key, value is None or value > 0, "must be > 0 or None (None: lr)")
        self._check(
            "random_timesteps", self.random_timesteps is None or self.random_timesteps >= 0, "must be >= 0 or None"
        )

    @property
    def warmup_steps(self) -> int:
        return self.num_steps_sampled_before_learning_starts if self.random_timesteps is None else self.random_timesteps


class ActorQAlgorithm(OffPolicyAlgorithm):
    """SAC's and TD3's policy (ActorQPolicy of `policy_kind`), their per-network optimizers, the uniform
    warm-up before learning starts, and targets updated in update_policy unless
    target_network_update_freq sets a rhythm in env steps."""

    policy_class = ActorQPolicy
    policy_kind: ClassVar[str]

    def policy_options(self, config: ActorQConfig) -> dict[str, Any]:
        """The ActorQPolicy options beyond the kind and twin_q (SAC: its initial alpha)."""
        return {}

    def make_policy(
        self, observation_space: Any, action_space: Any, config: AlgorithmConfig, seed: int | None
    ) -> ActorQPolicy:
        assert isinstance(config, ActorQConfig)
        return ActorQPolicy(
            observation_space,
            action_space,
            config.model_config,
            config.observation_filter,
            seed,
            kind=self.policy_kind,
            twin_q=config.twin_q,
            algorithm=type(self).__name__,
            warmup_steps=config.warmup_steps,
            **self.policy_options(config),
        )

    def actor_q_model(self, learner: Learner) -> ActorQ:
        """The learner's policy's actor and critics; refuses a policy this algorithm did not build."""
        policy, name = learner.policy, type(self).__name__
        if not (isinstance(policy, ActorQPolicy) and policy.kind == self.policy_kind):
            raise ConfigError(
                f"{name} trains its own actor-critic policies; policy {learner.policy_id!r} is a "
                f"{type(policy).__name__}. Leave its PolicySpec's policy_class out ({name} builds one), "
                f"or leave it out of policies_to_train."
            )
        assert isinstance(policy.model, ActorQ)
        return policy.model

    @staticmethod
    def add_optimizers(
        learner: Learner, modules: dict[str, torch.nn.Module], betas: tuple[float, float] = (0.9, 0.999)
    ) -> dict[str, FlatParameters]:
        """An Adam (`betas`: torch's default) per named network of the policy (lr: the config's
        `<name>_lr`, else lr), on the learner; their flat parameters by name."""
        cfg = learner.config
        return {
            key: learner.add_optimizer(
                key, module, lambda flat, lr: Adam(flat, lr, betas), lr=getattr(cfg, f"{key}_lr") or cfg.lr
            )
            for key, module in modules.items()
        }

    def update_targets(self) -> None:
        if self.config.target_network_update_freq > 0:  # 0: in update_policy (SAC: each step; TD3: each actor step)
            super().update_targets()

    def policy_metrics(self, policy_id: str) -> dict[str, float]:
        policy = self.policies[policy_id]
        assert isinstance(policy, ActorQPolicy)  # actor_q_model refused any other trained policy
        return {"random_actions": float(policy.random_actions)}
