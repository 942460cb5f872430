"""Deep Q-Networks (Mnih et al. 2015, Nature 518) with the Rainbow parts that are cheap on a CPU: double Q
(van Hasselt et al. 2016), a dueling head (Wang et al. 2016), prioritized replay (Schaul et al. 2016)
and n-step returns (rlarena.rollout.replay). Config, loss, update; the sample-store-update loop and
SB3's option names (train_freq, gradient_steps, learning_starts, ...) are algorithms/off_policy.py's.

Options keep RLlib's names and defaults (its DQN on the new API stack); where a default differs, the
line says so. Before each fragment the policy's epsilon is set from the schedule over env steps; the
target network is copied (tau 1) or Polyak-averaged every target_network_update_freq env steps.
SB3's exploration_* and max_grad_norm are `epsilon=[[0, initial], [fraction * total, final]]` and grad_clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from rlarena.algorithms.algorithm import DEFAULT_POLICY_ID, MAIN_OPTIMIZER
from rlarena.algorithms.config import AlgorithmConfig, option
from rlarena.algorithms.off_policy import OffPolicyAlgorithm, OffPolicyConfig, ReplayBatch, check_schedule, piecewise
from rlarena.algorithms.on_policy import scheduled_lr
from rlarena.errors import ConfigError, TrainingError
from rlarena.nn.flat import Adam, FlatParameters
from rlarena.q_policy import QPolicy, masked_q

STAT_NAMES = ("qf_loss", "q_mean", "td_error_abs_mean", "grad_norm")

@dataclass
class DQNConfig(OffPolicyConfig):
    """DQN's options, RLlib's names and defaults (SB3's equivalents in the module docstrings)."""

    # SB3's QNetwork ([64, 64] ReLU); RLlib's 256-wide layers cost ~4x the time per step on a CPU
    model_defaults: ClassVar[dict[str, Any]] = {"fcnet_hiddens": [64, 64], "fcnet_activation": "relu"}
    # RLlib's PrioritizedEpisodeReplayBuffer, capacity 50000, alpha 0.6, beta 0.4 (annealed to 1 here)
    replay_defaults: ClassVar[dict[str, Any]] = {**OffPolicyConfig.replay_defaults,
                                                 "type": "PrioritizedReplayBuffer", "capacity": 50_000}
    num_envs_per_env_runner: int = option(8, "env_runners")  # vectorized sampling (RLlib's and SB3's: 1)
    lr: float = option(5e-4, "training")  # RLlib's (SB3: 1e-4)
    train_batch_size: int = option(32, "training")  # RLlib's and SB3's batch_size
    grad_clip: float | None = option(40.0, "training")  # RLlib's (SB3's max_grad_norm: 10)
    adam_epsilon: float = option(1e-8, "training")  # RLlib's
    double_q: bool = option(True, "training")
    dueling: bool = option(True, "training")  # RLlib's default; SB3's DQN has no dueling head
    target_network_update_freq: int = option(500, "training")  # env steps between target updates (RLlib's)
    epsilon: list = option([[0, 1.0], [10000, 0.05]], "training")  # [[env_step, epsilon], ...], interpolated
    num_steps_sampled_before_learning_starts: int = option(1000, "training")  # RLlib's (SB3's learning_starts: 100)

    def validate(self) -> None:
        super().validate()
        self._check("adam_epsilon", self.adam_epsilon > 0, "must be > 0")
        check_schedule(self, "epsilon")


# the replayed batch DQN's loss reads (the name its tests and users know)
QBatch = ReplayBatch


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


class DQN(OffPolicyAlgorithm):
    config_class = DQNConfig
    config: DQNConfig
    policy_class = QPolicy
    stat_names = STAT_NAMES

    def make_policy(self, observation_space: Any, action_space: Any, config: AlgorithmConfig,
                    seed: int | None) -> QPolicy:
        assert isinstance(config, DQNConfig)
        return QPolicy(observation_space, action_space, config.model_config, config.observation_filter, seed,
                       dueling=config.dueling)

    def setup(self) -> None:
        super().setup()
        self.flats: dict[str, FlatParameters] = {}

    def setup_policy(self, policy_id: str) -> None:
        policy, cfg = self.policies[policy_id], self.policy_configs[policy_id]
        assert isinstance(cfg, DQNConfig)
        if not isinstance(policy, QPolicy):
            raise ConfigError(f"DQN trains Q-network policies; policy {policy_id!r} is a {type(policy).__name__}. "
                              f"Leave its PolicySpec's policy_class out (DQN builds a QPolicy), or leave it out of "
                              f"policies_to_train.")
        flat = self.flats[policy_id] = FlatParameters(policy.model)
        self.add_target(policy_id, "q", policy.model, flat)
        self.optimizers[(policy_id, MAIN_OPTIMIZER)] = Adam(flat, lr=cfg.lr, eps=cfg.adam_epsilon)
        self.add_buffer(policy_id)

    def before_sample(self) -> None:
        for pid in self.policies_to_train:
            self.policies[pid].epsilon = piecewise(self.policy_configs[pid].epsilon,  # type: ignore[attr-defined]
                                                   self.num_env_steps_sampled_lifetime)

    def update_policy(self, policy_id: str) -> torch.Tensor:
        """One gradient step of one policy on a replayed batch; its statistics (len(STAT_NAMES))."""
        cfg: DQNConfig = self.policy_configs[policy_id]  # type: ignore[assignment]
        model, flat = self.policies[policy_id].model, self.flats[policy_id]  # type: ignore[attr-defined]
        optimizer = self.optimizers[(policy_id, MAIN_OPTIMIZER)]
        lr = optimizer.lr = scheduled_lr(cfg.lr_schedule, cfg.lr, self.num_env_steps_sampled_lifetime)
        batch, indices = self.replay(policy_id)
        loss, td_error, stats = dqn_loss(model, self.targets[policy_id]["q"][0], batch, cfg.double_q)
        if not math.isfinite(loss.item()):
            raise TrainingError(f"DQN loss became {loss.item()} at iteration {self.iteration + 1}"
                                f"{'' if policy_id == DEFAULT_POLICY_ID else f' (policy {policy_id!r})'}. The update "
                                f"was not applied. Lower lr (now {lr}), set grad_clip, or scale the rewards.")
        flat.zero_grad()
        loss.backward()
        grad_norm = flat.clip_grad_norm_(cfg.grad_clip) if cfg.grad_clip is not None else \
            torch.linalg.vector_norm(flat.grad)
        optimizer.step()
        self.update_priorities(policy_id, indices, td_error)
        return torch.cat([stats, grad_norm.reshape(1)])

    def policy_metrics(self, policy_id: str) -> dict[str, float]:
        return {"epsilon": self.policies[policy_id].epsilon,  # type: ignore[attr-defined]
                "cur_lr": self.optimizers[(policy_id, MAIN_OPTIMIZER)].lr}


DQNConfig.algo_class = DQN
