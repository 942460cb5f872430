"""Deep Q-Networks (Mnih et al. 2015, Nature 518) with the Rainbow parts that are cheap on a CPU: double Q
(van Hasselt et al. 2016), a dueling head (Wang et al. 2016), prioritized replay (Schaul et al. 2016)
and n-step returns (rlarena.rollout.replay). Config, loss, update.

Options keep RLlib's names and defaults (its DQN on the new API stack); where a default differs, the
line says so. One iteration (RLlib's training_step loop) repeats, until it has sampled
min_sample_timesteps_per_iteration env steps: sample rollout_fragment_length steps per env with
epsilon-greedy actions, add them to the replay buffer, then (past num_steps_sampled_before_learning_starts)
take the gradient steps and update the target network when target_network_update_freq steps have passed.

Stable-Baselines3's names are accepted too:
    SB3 train_freq=k (vector steps between updates)  ->  rollout_fragment_length=k
    SB3 gradient_steps=g (per update; -1: one per env step sampled)
                                                      ->  training_intensity = g * train_batch_size / (k * num_envs)
    SB3 learning_starts / target_update_interval / exploration_* / buffer_size / max_grad_norm
                                                      ->  num_steps_sampled_before_learning_starts /
                                                          target_network_update_freq / epsilon /
                                                          replay_buffer_config["capacity"] / grad_clip
Without either, one gradient step follows each fragment (RLlib's "natural" intensity,
train_batch_size / (rollout_fragment_length * num_envs) replayed per sampled step).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from rlarena.algorithms.algorithm import DEFAULT_POLICY_ID, MAIN_OPTIMIZER, Algorithm, _seed_for
from rlarena.algorithms.config import AlgorithmConfig, option
from rlarena.algorithms.on_policy import scheduled_lr
from rlarena.errors import CheckpointError, ConfigError, TrainingError, closest
from rlarena.nn.flat import Adam, FlatParameters
from rlarena.q_policy import QPolicy, masked_q
from rlarena.rollout.replay import PrioritizedReplayBuffer, ReplayBuffer
from rlarena.rollout.storage import Rollout

STAT_NAMES = ("qf_loss", "q_mean", "td_error_abs_mean", "grad_norm")

# replay_buffer_config: RLlib's keys and defaults (PrioritizedEpisodeReplayBuffer, capacity 50000, alpha
# 0.6, beta 0.4), plus beta's annealing to 1 (Schaul et al. 2016, sec. 3.4; RLlib keeps beta fixed)
REPLAY_DEFAULTS: dict[str, Any] = {"type": "PrioritizedReplayBuffer", "capacity": 50_000, "alpha": 0.6, "beta": 0.4,
                                   "beta_annealing_steps": 100_000, "epsilon": 1e-6}
REPLAY_TYPES = {"ReplayBuffer": ReplayBuffer, "PrioritizedReplayBuffer": PrioritizedReplayBuffer}
# RLlib's other names for the same two buffers (its episode and multi-agent variants; one buffer per
# trained policy here), and its older key names
REPLAY_TYPE_ALIASES = {"EpisodeReplayBuffer": "ReplayBuffer", "MultiAgentReplayBuffer": "ReplayBuffer",
                       "MultiAgentEpisodeReplayBuffer": "ReplayBuffer",
                       "PrioritizedEpisodeReplayBuffer": "PrioritizedReplayBuffer",
                       "MultiAgentPrioritizedReplayBuffer": "PrioritizedReplayBuffer",
                       "MultiAgentPrioritizedEpisodeReplayBuffer": "PrioritizedReplayBuffer"}
REPLAY_KEY_ALIASES = {"prioritized_replay_alpha": "alpha", "prioritized_replay_beta": "beta",
                      "prioritized_replay_eps": "epsilon"}


# RLlib's old API stack and SB3 -> ours
OLD_NAMES = {"learning_starts": "num_steps_sampled_before_learning_starts",
             "target_update_interval": "target_network_update_freq"}


@dataclass
class DQNConfig(AlgorithmConfig):
    """DQN's options, RLlib's names and defaults (SB3's equivalents in the module docstring)."""

    # SB3's QNetwork ([64, 64] ReLU); RLlib's 256-wide layers cost ~4x the time per step on a CPU
    model_defaults: ClassVar[dict[str, Any]] = {"fcnet_hiddens": [64, 64], "fcnet_activation": "relu"}
    lr: float = option(5e-4, "training")  # RLlib's (SB3: 1e-4)
    train_batch_size: int = option(32, "training")  # RLlib's and SB3's batch_size
    grad_clip: float | None = option(40.0, "training")  # RLlib's (SB3's max_grad_norm: 10)
    adam_epsilon: float = option(1e-8, "training")  # RLlib's
    replay_buffer_config: dict = option({}, "training")  # over REPLAY_DEFAULTS (read `replay_config`)
    store_buffer_in_checkpoints: bool = option(True, "training")  # RLlib's default is False
    n_step: int = option(1, "training")
    double_q: bool = option(True, "training")
    dueling: bool = option(True, "training")  # RLlib's default; SB3's DQN has no dueling head
    target_network_update_freq: int = option(500, "training")  # env steps between target updates (RLlib's)
    tau: float = option(1.0, "training")  # target <- tau * online + (1 - tau) * target; 1: a hard copy
    epsilon: list = option([[0, 1.0], [10000, 0.05]], "training")  # [[env_step, epsilon], ...], interpolated
    num_steps_sampled_before_learning_starts: int = option(1000, "training")  # RLlib's (SB3's learning_starts: 100)
    training_intensity: float | None = option(None, "training")  # replayed / sampled steps; None: natural
    train_freq: int | None = option(None, "training")  # SB3's name of rollout_fragment_length
    gradient_steps: int | None = option(None, "training")  # SB3's: per fragment; -1: one per env step sampled
    min_sample_timesteps_per_iteration: int = option(1000, "training")  # RLlib's DQN default

    def _translate(self, options: dict[str, Any], valid: Any) -> dict[str, Any]:
        """RLlib's older and SB3's names of DQN options read as ours (the rest as every config does)."""
        renamed = {OLD_NAMES.get(k, k) if k not in valid else k: v for k, v in options.items()}
        return super()._translate(renamed, valid)

    @property
    def replay_config(self) -> dict[str, Any]:
        """REPLAY_DEFAULTS with replay_buffer_config over them (RLlib's older key and type names read as ours)."""
        given = {REPLAY_KEY_ALIASES.get(k, k): v for k, v in self.replay_buffer_config.items()}
        if isinstance(given.get("type"), str):
            given["type"] = REPLAY_TYPE_ALIASES.get(given["type"], given["type"])
        return {**REPLAY_DEFAULTS, **given}

    @property
    def fragment_length(self) -> int:
        """Steps per env between updates: rollout_fragment_length, else SB3's train_freq, else 1."""
        if self.rollout_fragment_length != "auto":
            return int(self.rollout_fragment_length)
        return self.train_freq if self.train_freq is not None else 1

    def validate(self) -> None:
        super().validate()
        rc = self.replay_config
        for key in rc:
            if key not in REPLAY_DEFAULTS:
                raise ConfigError(f"Unknown replay_buffer_config key {key!r}.{closest(str(key), REPLAY_DEFAULTS)} "
                                  f"Valid keys: {', '.join(REPLAY_DEFAULTS)}.")
        self._choice("replay_buffer_config['type']", rc["type"], tuple(REPLAY_TYPES))
        ok_numbers = all(isinstance(rc[k], int | float) and not isinstance(rc[k], bool)
                         for k in ("capacity", "alpha", "beta", "beta_annealing_steps", "epsilon"))
        if not (ok_numbers and rc["capacity"] >= 1 and rc["alpha"] >= 0 and 0 <= rc["beta"] <= 1
                and rc["beta_annealing_steps"] >= 0 and rc["epsilon"] > 0):
            raise ConfigError(f"Invalid replay_buffer_config={self.replay_buffer_config!r}: capacity must be >= 1, "
                              f"alpha >= 0, beta in [0, 1], beta_annealing_steps >= 0 (0: no annealing), "
                              f"epsilon > 0.")
        if rc["capacity"] // self.num_envs_per_env_runner < self.n_step + 1:
            raise ConfigError(f"Invalid replay_buffer_config capacity={rc['capacity']}: it must hold n_step + 1 = "
                              f"{self.n_step + 1} steps of each of the {self.num_envs_per_env_runner} envs; raise it "
                              f"to >= {(self.n_step + 1) * self.num_envs_per_env_runner}.")
        self._check("n_step", self.n_step >= 1, "must be >= 1")
        self._check("target_network_update_freq", self.target_network_update_freq >= 1, "must be >= 1 (env steps)")
        self._check("tau", 0 < self.tau <= 1, "must be in (0, 1]")
        self._check("adam_epsilon", self.adam_epsilon > 0, "must be > 0")
        self._check("num_steps_sampled_before_learning_starts", self.num_steps_sampled_before_learning_starts >= 0,
                    "must be >= 0")
        self._check("min_sample_timesteps_per_iteration", self.min_sample_timesteps_per_iteration >= 0, "must be >= 0")
        ok = len(self.epsilon) >= 1 and all(
            isinstance(p, list | tuple) and len(p) == 2 and all(isinstance(x, int | float) for x in p)
            and 0 <= p[1] <= 1 for p in self.epsilon) and all(
            a[0] <= b[0] for a, b in zip(self.epsilon[:-1], self.epsilon[1:]))
        self._check("epsilon", ok, "must be a list of [env_step, epsilon] pairs, steps ascending, epsilons in [0, 1], "
                                   "e.g. [[0, 1.0], [10000, 0.05]]")
        self._check("training_intensity", self.training_intensity is None or self.training_intensity > 0,
                    "must be > 0 or None")
        self._check("train_freq", self.train_freq is None or self.train_freq >= 1, "must be >= 1 or None")
        if self.train_freq is not None and self.rollout_fragment_length not in ("auto", self.train_freq):
            raise ConfigError(f"train_freq={self.train_freq} (SB3's name) and rollout_fragment_length="
                              f"{self.rollout_fragment_length} say the same thing differently: set one.")
        self._check("gradient_steps", self.gradient_steps is None or self.gradient_steps >= 1
                    or self.gradient_steps == -1, "must be >= 1, -1 (one per env step sampled) or None")
        if self.gradient_steps is not None and self.training_intensity is not None:
            raise ConfigError(f"gradient_steps={self.gradient_steps} (SB3's) and training_intensity="
                              f"{self.training_intensity} (RLlib's) both set the updates per fragment: set one.")


@dataclass
class QBatch:
    """B replayed n-step transitions, ready for the loss."""

    obs: torch.Tensor  # [B, D] float32, preprocessed
    actions: torch.Tensor  # [B] int64
    rewards: torch.Tensor  # [B] float32, the discounted n-step reward sum
    discounts: torch.Tensor  # [B] float32, gamma^k; 0 where the episode terminated
    next_obs: torch.Tensor  # [B, D] float32, preprocessed
    next_mask: torch.Tensor | None  # [B, n] bool legal actions of next_obs, for masked policies
    weights: torch.Tensor  # [B] float32 importance weights (1 for uniform replay)


def dqn_loss(model: torch.nn.Module, target: torch.nn.Module, batch: QBatch,
             double_q: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, td_error [B], stats[3]: qf_loss, q_mean, td_error_abs_mean).

        y = R + discount * Q_target(s', a*),  a* = argmax_a Q(s', a) (double Q, van Hasselt et al. 2016,
                                                   eq. 4) or argmax_a Q_target(s', a), over the legal a only
        loss = mean_i w_i * Huber(Q(s_i, a_i) - y_i)   (delta 1, as RLlib and SB3)
    """
    q = model(batch.obs).gather(1, batch.actions[:, None]).squeeze(1)
    with torch.no_grad():
        q_next_target = target(batch.next_obs)
        chooser = model(batch.next_obs) if double_q else q_next_target
        best = masked_q(chooser, batch.next_mask).argmax(-1)
        q_next = q_next_target.gather(1, best[:, None]).squeeze(1)
        if batch.next_mask is not None:  # a final observation with no legal action has nothing to bootstrap
            q_next = torch.where(batch.next_mask.any(-1), q_next, torch.zeros_like(q_next))
        y = batch.rewards + batch.discounts * q_next
    td_error = q - y
    loss = (batch.weights * F.huber_loss(q, y, reduction="none", delta=1.0)).mean()
    stats = torch.stack([loss.detach(), q.detach().mean(), td_error.detach().abs().mean()])
    return loss, td_error.detach(), stats


def piecewise(schedule: list, step: int) -> float:
    """A [[step, value], ...] schedule, linearly interpolated (held constant past its ends)."""
    steps, values = zip(*schedule)
    return float(np.interp(step, steps, values))


class DQN(Algorithm):
    config_class = DQNConfig
    config: DQNConfig
    policy_class = QPolicy

    def make_policy(self, observation_space: Any, action_space: Any, config: AlgorithmConfig,
                    seed: int | None) -> QPolicy:
        assert isinstance(config, DQNConfig)
        return QPolicy(observation_space, action_space, config.model_config, config.observation_filter, seed,
                       dueling=config.dueling)

    def setup(self) -> None:
        self.flats: dict[str, FlatParameters] = {}
        self.targets: dict[str, tuple[torch.nn.Module, FlatParameters]] = {}  # policy id -> (network, its flat)
        self.buffers: dict[str, ReplayBuffer] = {}
        self.last_target_update = 0  # env step of the last target update
        self.num_gradient_steps = 0
        self._update_credit = 0.0  # fractional gradient steps owed (training_intensity)

    def setup_policy(self, policy_id: str) -> None:
        policy, cfg = self.policies[policy_id], self.policy_configs[policy_id]
        assert isinstance(cfg, DQNConfig)
        if not isinstance(policy, QPolicy):
            raise ConfigError(f"DQN trains Q-network policies; policy {policy_id!r} is a {type(policy).__name__}. "
                              f"Leave its PolicySpec's policy_class out (DQN builds a QPolicy), or leave it out of "
                              f"policies_to_train.")
        target = copy.deepcopy(policy.model)  # before the flat buffer takes the online parameters
        self.flats[policy_id] = FlatParameters(policy.model)
        self.targets[policy_id] = (target, FlatParameters(target))
        self.optimizers[(policy_id, MAIN_OPTIMIZER)] = Adam(self.flats[policy_id], lr=cfg.lr, eps=cfg.adam_epsilon)
        rc = cfg.replay_config
        # the multi-agent runner emits segments (one agent's transitions, each ending terminated or truncated
        # at an episode or fragment end), fed as one stream; single-agent columns continue across fragments
        num_envs = 1 if self.is_multi_agent else self.config.num_envs_per_env_runner
        width = policy.obs_dim + (policy.num_actions if policy.masked else 0)  # the mask rides with the obs
        kwargs: dict[str, Any] = {"alpha": rc["alpha"]} if rc["type"] == "PrioritizedReplayBuffer" else {}
        self.buffers[policy_id] = REPLAY_TYPES[rc["type"]](
            rc["capacity"], num_envs, (width,), np.float32, n_step=cfg.n_step, gamma=cfg.gamma,
            seed=_seed_for(self.config.seed, 5, list(self.policies).index(policy_id)), **kwargs)

    # -- sampling into the buffer ---------------------------------------------------------------
    def _store(self, policy_id: str, batch: Rollout) -> None:
        """Add a fragment to the policy's buffer: observations before the filter (it is applied when
        replayed, with the statistics of then), each with its legal actions appended."""
        obs = batch.raw_obs if batch.raw_obs is not None else batch.obs  # [T+1, N, D]
        if batch.action_mask is not None:
            obs = np.concatenate([obs, batch.action_mask.astype(np.float32)], -1)
        buffer = self.buffers[policy_id]
        if not self.is_multi_agent:
            # the vector env's next-step autoreset: obs[t+1] after an episode end is its final observation,
            # and step t+1 only resets (valid False), see rollout/replay.py
            for t in range(len(batch.rewards)):
                buffer.add(obs[t], batch.actions[t], batch.rewards[t], batch.terminated[t], batch.truncated[t],
                           obs[t + 1], batch.valid[t])
            return
        for s in range(batch.valid.shape[1]):
            for t in np.flatnonzero(batch.valid[:, s]):
                buffer.add(obs[t, s][None], batch.actions[t, s][None], batch.rewards[t, s][None],
                           batch.terminated[t, s][None], batch.truncated[t, s][None], obs[t + 1, s][None])

    def _num_updates(self, sampled: int) -> int:
        cfg = self.config
        if cfg.gradient_steps is not None:
            return sampled if cfg.gradient_steps == -1 else cfg.gradient_steps
        if cfg.training_intensity is None:
            return 1
        self._update_credit += cfg.training_intensity * sampled / cfg.train_batch_size
        updates = int(self._update_credit)
        self._update_credit -= updates
        return updates

    # -- the update -----------------------------------------------------------------------------
    def _replay(self, policy_id: str) -> tuple[QBatch, Any]:
        cfg: DQNConfig = self.policy_configs[policy_id]  # type: ignore[assignment]
        policy: QPolicy = self.policies[policy_id]  # type: ignore[assignment]
        buffer = self.buffers[policy_id]
        if isinstance(buffer, PrioritizedReplayBuffer):
            rc = cfg.replay_config
            done = 1.0 if rc["beta_annealing_steps"] == 0 else \
                min(1.0, self.num_env_steps_sampled_lifetime / rc["beta_annealing_steps"])
            sample = buffer.sample(cfg.train_batch_size, beta=rc["beta"] + (1 - rc["beta"]) * done)
        else:
            sample = buffer.sample(cfg.train_batch_size)
        D = policy.obs_dim
        batch = QBatch(obs=torch.from_numpy(policy.normalize(sample.obs[:, :D])),
                       actions=torch.from_numpy(sample.actions), rewards=torch.from_numpy(sample.rewards),
                       discounts=torch.from_numpy(sample.discounts),
                       next_obs=torch.from_numpy(policy.normalize(sample.next_obs[:, :D])),
                       next_mask=torch.from_numpy(sample.next_obs[:, D:] > 0.5) if policy.masked else None,
                       weights=torch.from_numpy(sample.weights))
        return batch, sample.indices

    def update_policy(self, policy_id: str) -> torch.Tensor:
        """One gradient step of one policy on a replayed batch; its statistics (len(STAT_NAMES))."""
        cfg: DQNConfig = self.policy_configs[policy_id]  # type: ignore[assignment]
        model, flat = self.policies[policy_id].model, self.flats[policy_id]  # type: ignore[attr-defined]
        optimizer = self.optimizers[(policy_id, MAIN_OPTIMIZER)]
        lr = optimizer.lr = scheduled_lr(cfg.lr_schedule, cfg.lr, self.num_env_steps_sampled_lifetime)
        batch, indices = self._replay(policy_id)
        loss, td_error, stats = dqn_loss(model, self.targets[policy_id][0], batch, cfg.double_q)
        if not math.isfinite(loss.item()):
            raise TrainingError(f"DQN loss became {loss.item()} at iteration {self.iteration + 1}"
                                f"{'' if policy_id == DEFAULT_POLICY_ID else f' (policy {policy_id!r})'}. The update "
                                f"was not applied. Lower lr (now {lr}), set grad_clip, or scale the rewards.")
        flat.zero_grad()
        loss.backward()
        grad_norm = flat.clip_grad_norm_(cfg.grad_clip) if cfg.grad_clip is not None else \
            torch.linalg.vector_norm(flat.grad)
        optimizer.step()
        buffer = self.buffers[policy_id]
        if isinstance(buffer, PrioritizedReplayBuffer):  # priorities |delta| + eps (Schaul et al. 2016, sec. 3.3)
            buffer.update_priorities(indices, td_error.abs().numpy() + cfg.replay_config["epsilon"])
        return torch.cat([stats, grad_norm.reshape(1)])

    def _update_targets(self) -> None:
        if self.num_env_steps_sampled_lifetime - self.last_target_update < self.config.target_network_update_freq:
            return
        for pid in self.policies_to_train:
            tau = self.policy_configs[pid].tau  # type: ignore[attr-defined]
            self.targets[pid][1].param.lerp_(self.flats[pid].param, tau)  # Polyak; tau 1 copies
        self.last_target_update = self.num_env_steps_sampled_lifetime

    def training_step(self) -> dict[str, float]:
        cfg = self.config
        start = self.num_env_steps_sampled_lifetime
        stats: dict[str, list[torch.Tensor]] = {pid: [] for pid in self.policies_to_train}
        while True:
            for pid in self.policies_to_train:
                self.policies[pid].epsilon = piecewise(self.policy_configs[pid].epsilon,  # type: ignore[attr-defined]
                                                       self.num_env_steps_sampled_lifetime)
            before = self.num_env_steps_sampled_lifetime
            for pid, batch in self.sample().items():
                if pid in self.buffers:
                    self._store(pid, batch)
            if self.num_env_steps_sampled_lifetime >= cfg.num_steps_sampled_before_learning_starts:
                updates = self._num_updates(self.num_env_steps_sampled_lifetime - before)
                for pid in self.policies_to_train:
                    buffer = self.buffers[pid]
                    if len(buffer) < (buffer.n_step + 2) * buffer.num_envs:  # nothing sampleable yet
                        continue
                    for _ in range(updates):
                        stats[pid].append(self.update_policy(pid))
                        self.num_gradient_steps += 1
                self._update_targets()
            if self.num_env_steps_sampled_lifetime - start >= cfg.min_sample_timesteps_per_iteration:
                break
        out: dict[str, float] = {}
        for pid, rows in stats.items():
            values = dict(zip(STAT_NAMES, torch.stack(rows).mean(0).tolist())) if rows else {}
            values.update(epsilon=self.policies[pid].epsilon,  # type: ignore[attr-defined]
                          replay_size=float(len(self.buffers[pid])), cur_lr=self.optimizers[(pid, MAIN_OPTIMIZER)].lr,
                          num_gradient_steps_lifetime=self.num_gradient_steps)  # of all policies together
            out.update({f"learner/{pid}/{k}": v for k, v in values.items()} if self.is_multi_agent else values)
        return out

    # -- checkpoints ----------------------------------------------------------------------------
    def _state_arrays(self) -> dict[str, dict[str, np.ndarray]]:
        """Adds each trained policy's target network and (unless store_buffer_in_checkpoints is False)
        replay buffer, and the counters; the epsilon and beta schedules' position is the env step count."""
        arrays = super()._state_arrays()
        for pid, (_, target_flat) in self.targets.items():
            if pid not in self.policies:
                continue
            arrays[f"target.{pid}"] = {"params": target_flat.param.numpy().copy()}
            if self.config.store_buffer_in_checkpoints:  # copies: a snapshot must not follow later adds
                arrays[f"replay.{pid}"] = {k: np.array(v) for k, v in self.buffers[pid].state_dict().items()}
        arrays["dqn"] = {"counters": np.array([self.last_target_update, self.num_gradient_steps], np.int64),
                         "update_credit": np.array([self._update_credit], np.float64)}
        return arrays

    def _restore(self, meta: dict[str, Any], arrays: dict[str, dict[str, np.ndarray]]) -> None:
        super()._restore(meta, arrays)  # weights, optimizers, counters; the runner starts fresh episodes
        try:
            self.last_target_update, self.num_gradient_steps = (int(x) for x in arrays["dqn"]["counters"])
            self._update_credit = float(arrays["dqn"]["update_credit"][0])
            for pid, (_, target_flat) in self.targets.items():
                if pid not in self.policies:
                    continue
                target_flat.param.copy_(torch.from_numpy(arrays[f"target.{pid}"]["params"]))
                if f"replay.{pid}" in arrays:
                    self.buffers[pid].load_state_dict(arrays[f"replay.{pid}"])
                if not self.is_multi_agent:  # the episodes under way when saved do not go on: end them there
                    self.buffers[pid].cut()
        except (KeyError, ValueError, RuntimeError, TypeError) as exc:
            raise CheckpointError(f"Checkpoint does not match this DQN ({type(exc).__name__}: {exc}). Was it saved "
                                  f"with a different model, replay buffer or algorithm?") from exc


DQNConfig.algo_class = DQN
