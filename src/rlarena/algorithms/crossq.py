"""CrossQ (Bhatt et al. 2024, "CrossQ: Batch Normalization in Deep Reinforcement Learning for Greater
Sample Efficiency and Simplicity", ICLR, arXiv:1902.05605) for Box actions: SAC without target
networks, with batch renormalization (Ioffe 2017; rlarena.nn.batch_renorm) in actor and critics.

The critics see (s, a) and (s', a') in one forward pass, so the normalization's batch statistics are
those of the mixture of both (the paper's point: normalized apart, the (s', a') half would be out of
the distribution the statistics describe, and that is why naive batch norm in SAC fails):

    a' ~ pi(.|s')                                    (the actor on its running statistics)
    [Q_k(s, a); Q_k(s', a')] = Q_k([s; s'], [a; a'])  (one batch of 2B rows, batch statistics)
    y = r + discount * (min_k sg(Q_k(s', a')) - alpha log pi(a'|s'))        (sg: no gradient)
    critics: 1/2 sum_k mean_i w_i (Q_k(s_i, a_i) - y_i)^2                        (as SAC, each step)
    every policy_delay critic steps, on the same batch (the actor on batch statistics, the critics on
    their running ones): the temperature's loss and the actor's, SAC's (Haarnoja et al. 2018, eq. 7)

Defaults are the paper's (its authors' train.py) where sb3-contrib's CrossQ and SBX's differ; the line
says which: lr 1e-3, Adam beta1 0.5 for actor and critics (the temperature's Adam keeps torch's 0.9, as
both references), policy_delay 3, critics [2048, 2048] and actor [256, 256] ReLU, twin critics, batch
renormalization (momentum 0.01, eps 1e-3, 100_000 warm-up batches) before every linear layer of both,
learning starts after 5000 uniformly random steps, batch 256, one gradient step per env step. SB3's
ent_coef and learning_starts are read as for SAC; tau and target_network_update_freq do not apply
(no target networks) and are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from rlarena.algorithms.config import NotProvided, NotProvidedType, option, provided
from rlarena.algorithms.off_policy import ActorQConfig, ReplayBatch, frozen
from rlarena.algorithms.sac import (
    SAC,
    SACConfig,
    SACLearner,
    actor_loss,
    step_actor_and_temperature,
    target_entropy_of,
    temperature_loss,
)
from rlarena.learners import Learner
from rlarena.nn.actor_q import ActorQ, GaussianActor, QEnsemble
from rlarena.nn.batch_renorm import RenormSpec, batch_statistics

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11 on


@dataclass
class CrossQConfig(SACConfig):
    """CrossQ's options over SAC's (sb3-contrib's names; the defaults' sources in the module docstring)."""

    lr: float = option(1e-3, "training")  # paper, sb3-contrib
    num_steps_sampled_before_learning_starts: int = option(5000, "training")  # paper (sb3-contrib, SBX: 100)
    tau: float = option(1.0, "training")  # no target networks (sb3-contrib passes tau = 1 to SB3)
    policy_delay: int = option(3, "training")  # critic steps per actor and temperature step (paper, sb3-contrib)
    critic_hiddens: list[int] = option([2048, 2048], "training")  # paper, SBX (sb3-contrib: [1024, 1024])
    adam_beta1: float = option(0.5, "training")  # actor's and critics' Adam (paper, SBX, sb3-contrib)
    batch_norm_momentum: float = option(0.01, "training")  # sb3-contrib's; SBX writes 1 - 0.01 = 0.99
    batch_norm_eps: float = option(1e-3, "training")  # SBX, sb3-contrib
    renorm_warmup_steps: int = option(100_000, "training")  # batches of plain batch norm (SBX, sb3-contrib)
    # CrossQ's critics bootstrap from themselves (crossq_critic_loss), its actor's loss is SAC's min over them
    unread_options: ClassVar[tuple[str, ...]] = ("target_critics_subset", "actor_q_reduction")

    def training(
        self,
        *,
        lr: float | NotProvidedType = NotProvided,
        num_steps_sampled_before_learning_starts: int | NotProvidedType = NotProvided,
        tau: float | NotProvidedType = NotProvided,
        policy_delay: int | NotProvidedType = NotProvided,
        critic_hiddens: list[int] | NotProvidedType = NotProvided,
        adam_beta1: float | NotProvidedType = NotProvided,
        batch_norm_momentum: float | NotProvidedType = NotProvided,
        batch_norm_eps: float | NotProvidedType = NotProvided,
        renorm_warmup_steps: int | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """The options declared above; the others go to SACConfig.training()."""
        return super().training(**provided(locals()))

    def validate(self) -> None:
        super().validate()
        no_targets = "CrossQ has no target networks (its batch-normalized critics bootstrap from themselves)"
        self._check("tau", self.tau == 1.0, f"{no_targets}; leave tau out")
        self._check("target_network_update_freq", self.target_network_update_freq == 0, f"{no_targets}; leave it out")
        self._check("train_batch_size", self.train_batch_size >= 2, "must be >= 2 (batch statistics)")
        self._check(
            "critic_hiddens",
            all(isinstance(u, int) and not isinstance(u, bool) and u >= 1 for u in self.critic_hiddens),
            "must be a list of layer sizes >= 1, e.g. [2048, 2048]",
        )
        self._check("adam_beta1", 0 <= self.adam_beta1 < 1, "must be in [0, 1)")
        self._check("batch_norm_momentum", 0 < self.batch_norm_momentum <= 1, "must be in (0, 1]")
        self._check("batch_norm_eps", self.batch_norm_eps > 0, "must be > 0")
        self._check("renorm_warmup_steps", self.renorm_warmup_steps >= 0, "must be >= 0")


def joint_q(
    critic: QEnsemble, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor, next_actions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(Q_k(s, a) [K, B], Q_k(s', a') [K, B]) from one forward pass over the 2B rows (in the critic's
    mode: inside batch_statistics, both halves share the batch's statistics)."""
    q = critic(torch.cat([obs, next_obs]), torch.cat([actions, next_actions]))
    return q[:, : len(obs)], q[:, len(obs) :]


def crossq_critic_loss(model: ActorQ, batch: ReplayBatch, alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, td_error [B] of the first critic); see the module docstring."""
    assert isinstance(model.actor, GaussianActor)  # CrossQ's actor: SAC's, Box actions
    with torch.no_grad():
        next_action, next_logp = model.actor.sample(batch.next_obs)
    with batch_statistics(model.critic):
        q, q_next = joint_q(model.critic, batch.obs, batch.actions, batch.next_obs, next_action)
    y = batch.rewards + batch.discounts * (q_next.detach().min(0).values - alpha * next_logp)
    td_error = q - y
    return 0.5 * (batch.weights * td_error.pow(2)).mean(-1).sum(), td_error[0].detach()


class CrossQ(SAC):
    config_class = CrossQConfig
    config: CrossQConfig
    policy_kind = "crossq"

    def policy_options(self, config: ActorQConfig) -> dict[str, Any]:
        assert isinstance(config, CrossQConfig)
        renorm = RenormSpec(config.batch_norm_momentum, config.batch_norm_eps, config.renorm_warmup_steps)
        return {**super().policy_options(config), "critic_hiddens": config.critic_hiddens, "renorm": renorm}

    def build_learner(self, learner: Learner) -> None:
        """Adam with beta1 adam_beta1 for the actor and the critics, a plain Adam for the temperature,
        no targets, the replay buffer, and the critic step counter (state "learner")."""
        assert isinstance(learner, SACLearner)
        cfg: CrossQConfig = learner.config
        model = self.actor_q_model(learner)
        assert model.temperature is not None  # SAC's kind of ActorQ learns its temperature
        self.add_optimizers(learner, {"actor": model.actor, "critic": model.critic}, (cfg.adam_beta1, 0.999))
        self.add_optimizers(learner, {"alpha": model.temperature})
        self.add_buffer(learner)
        self.count_critic_steps(learner)

    def update_policy(self, policy_id: str) -> torch.Tensor:
        """A critic step on the joint forward pass; every policy_delay-th, a step of the temperature and
        the actor (as sb3-contrib: both on this step's temperature, after the critics' step)."""
        learner = self.replay_learner(policy_id)
        cfg: CrossQConfig = learner.config
        model: ActorQ = learner.policy.model
        assert model.temperature is not None  # SAC's kind of ActorQ learns its temperature
        batch, indices = self.replay(policy_id)
        alpha = model.temperature.alpha
        loss_q, td_error = crossq_critic_loss(model, batch, alpha)
        learner.check_finite(loss_q, "critic loss")
        learner.step(loss_q, "critic")
        self.update_priorities(policy_id, indices, td_error)
        learner.critic_steps += 1
        if learner.critic_steps % cfg.policy_delay == 0:
            # the actor on the batch's statistics, the critics on their running ones (sb3-contrib, SBX)
            with batch_statistics(model.actor), frozen(model.critic):
                loss_pi, entropy, q_pi = actor_loss(model, batch, alpha)
            target_entropy = target_entropy_of(cfg, learner.policy.action_space)
            loss_alpha = temperature_loss(model, entropy, target_entropy)
            learner.check_finite(torch.stack([loss_pi.detach(), loss_alpha.detach()]), "losses (actor, alpha)")
            step_actor_and_temperature(learner, loss_pi, loss_alpha, target_entropy is not None)
            learner.last_actor_stats = torch.stack([loss_pi.detach(), loss_alpha.detach(), q_pi.mean(), entropy.mean()])
        loss_pi, loss_alpha, q_mean, entropy_mean = learner.last_actor_stats
        return torch.stack([loss_q.detach(), loss_pi, loss_alpha, alpha, q_mean, entropy_mean])


CrossQConfig.algo_class = CrossQ
