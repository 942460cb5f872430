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

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F

from rlarena.algorithms.algorithm import MAIN_OPTIMIZER
from rlarena.algorithms.config import AlgorithmConfig, NotProvided, NotProvidedType, option, provided
from rlarena.algorithms.off_policy import (
    OffPolicyAlgorithm,
    OffPolicyConfig,
    ReplayBatch,
    ReplayLearner,
    check_schedule,
)
from rlarena.errors import ConfigError
from rlarena.learners import Learner
from rlarena.nn.flat import Adam
from rlarena.policies.q_policy import QPolicy, masked_q

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11 on

STAT_NAMES = ("qf_loss", "q_mean", "td_error_abs_mean", "grad_norm")


@dataclass
class DQNConfig(OffPolicyConfig):
    """DQN's options, RLlib's names and defaults (SB3's equivalents in the module docstrings)."""

    # SB3's QNetwork ([64, 64] ReLU); RLlib's 256-wide layers cost ~4x the time per step on a CPU
    model_defaults: ClassVar[dict[str, Any]] = {"fcnet_hiddens": [64, 64], "fcnet_activation": "relu"}
    # RLlib's PrioritizedEpisodeReplayBuffer, capacity 50000, alpha 0.6, beta 0.4 (annealed to 1 here)
    replay_defaults: ClassVar[dict[str, Any]] = {
        **OffPolicyConfig.replay_defaults,
        "type": "PrioritizedReplayBuffer",
        "capacity": 50_000,
    }
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

    def training(
        self,
        *,
        lr: float | NotProvidedType = NotProvided,
        train_batch_size: int | NotProvidedType = NotProvided,
        grad_clip: float | None | NotProvidedType = NotProvided,
        adam_epsilon: float | NotProvidedType = NotProvided,
        double_q: bool | NotProvidedType = NotProvided,
        dueling: bool | NotProvidedType = NotProvided,
        target_network_update_freq: int | NotProvidedType = NotProvided,
        epsilon: list | NotProvidedType = NotProvided,
        num_steps_sampled_before_learning_starts: int | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """The options declared above; the others go to OffPolicyConfig.training()."""
        return super().training(**provided(locals()))

    def validate(self) -> None:
        super().validate()
        self._check("adam_epsilon", self.adam_epsilon > 0, "must be > 0")
        check_schedule(self, "epsilon")


# the replayed batch DQN's loss reads (the name its tests and users know)
QBatch = ReplayBatch


def dqn_loss(
    model: torch.nn.Module, target: torch.nn.Module, batch: QBatch, double_q: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
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

    def make_policy(
        self, observation_space: Any, action_space: Any, config: AlgorithmConfig, seed: int | None
    ) -> QPolicy:
        assert isinstance(config, DQNConfig)
        return QPolicy(
            observation_space,
            action_space,
            config.model_config,
            config.observation_filter,
            seed,
            dueling=config.dueling,
            epsilon_schedule=config.epsilon,
        )

    def build_learner(self, learner: Learner) -> None:
        """Adam on the Q-network, its target network "q", the replay buffer."""
        assert isinstance(learner, ReplayLearner)
        policy, cfg = learner.policy, learner.config
        assert isinstance(cfg, DQNConfig)
        if not isinstance(policy, QPolicy):
            raise ConfigError(
                f"DQN trains Q-network policies; policy {learner.policy_id!r} is a "
                f"{type(policy).__name__}. Leave its PolicySpec's policy_class out (DQN builds a "
                f"QPolicy), or leave it out of policies_to_train."
            )
        flat = learner.add_optimizer(MAIN_OPTIMIZER, policy.model, lambda f, lr: Adam(f, lr=lr, eps=cfg.adam_epsilon))
        learner.add_target("q", policy.model, flat)
        self.add_buffer(learner)

    def update_policy(self, policy_id: str) -> torch.Tensor:
        """One gradient step of one policy on a replayed batch; its statistics (len(STAT_NAMES))."""
        learner = self.replay_learner(policy_id)
        cfg: DQNConfig = learner.config
        batch, indices = self.replay(policy_id)
        loss, td_error, stats = dqn_loss(learner.policy.model, learner.targets["q"].module, batch, cfg.double_q)
        learner.check_finite(loss)
        norms = learner.step(loss, MAIN_OPTIMIZER)  # the gradient's norm before clipping, when grad_clip is set
        grad_norm = norms[MAIN_OPTIMIZER] if norms else torch.linalg.vector_norm(learner.flats[MAIN_OPTIMIZER].grad)
        self.update_priorities(policy_id, indices, td_error)
        return torch.cat([stats, grad_norm.reshape(1)])

    def policy_metrics(self, policy_id: str) -> dict[str, float]:
        policy = self.policies[policy_id]
        assert isinstance(policy, QPolicy)  # build_learner refused any other trained policy
        return {"epsilon": policy.epsilon, "cur_lr": self.learners[policy_id].current_lr(MAIN_OPTIMIZER)}


DQNConfig.algo_class = DQN
