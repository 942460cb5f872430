"""Truncated Quantile Critics (Kuznetsov et al. 2020, "Controlling Overestimation Bias with Truncated
Mixture of Continuous Distributional Quantile Critics", ICML, arXiv:2005.04269) for Box actions: SAC
with distributional critics whose pooled target drops its highest atoms.

N critics each output M quantiles Z_n(s, a) = (z_n1 .. z_nM) of the return at the fractions
tau_m = (m + 1/2) / M (m = 0 .. M-1). For a' ~ pi(.|s'), the target critics' N*M atoms are pooled and
sorted, z_(1) <= ... <= z_(NM), and the top d*N dropped (d = top_quantiles_to_drop_per_net), kN = (M-d)N:

    y_i = r + discount * (z_(i)(s', a') - alpha log pi(a'|s')),     i = 1 .. kN
    critics: mean_n mean_m mean_i rho^1_{tau_m}(y_i - z_nm(s, a))
             rho^1_tau(u) = |tau - 1[u < 0]| * Huber_1(u),  Huber_1(u) = u^2/2 if |u| <= 1 else |u| - 1/2
             (the quantile Huber loss of QR-DQN, Dabney et al. 2018, with kappa = 1)
    actor:   mean_b (alpha log pi(a_b|s_b) - mean_n mean_m z_nm(s_b, a_b)),  a_b ~ pi(.|s_b)
    temperature: as SAC's (target entropy -dim(A)).

The loss is a mean over critics, quantiles and target atoms (as the authors' code and sb3-contrib;
QR-DQN sums over the quantiles). Everything else is rlarena's SAC: its actor, temperature, Polyak
targets, replay and update order (all three losses on this step's networks, as RLlib; sb3-contrib
computes the actor's loss after the critics' step).

Defaults are sb3-contrib's TQC (which are SB3's SAC's, ours too): n_quantiles 25, n_critics 2 (the
paper uses 5; RL-Zoo's tuned TQC settings build on sb3-contrib's 2, so we start from them),
top_quantiles_to_drop_per_net 2, lr 3e-4, batch 256, tau 0.005, [256, 256] ReLU for actor and critics
(the paper's critics are 3 x 512), learning starts after 100 steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from rlarena.algorithms.config import NotProvided, NotProvidedType, option, provided
from rlarena.algorithms.off_policy import ActorQConfig, ReplayBatch, ReplayLearner
from rlarena.algorithms.sac import SAC, SACConfig
from rlarena.nn.actor_q import ActorQ, GaussianActor
from rlarena.nn.quantiles import quantile_huber_loss

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11 on


@dataclass
class TQCConfig(SACConfig):
    """TQC's options over SAC's (sb3-contrib's names and defaults; N is SAC's n_critics, 2 as sb3-contrib's,
    the paper's is 5)."""

    n_quantiles: int = option(25, "training", bound="MAX_QUANTILES")  # M, per critic (paper and sb3-contrib)
    top_quantiles_to_drop_per_net: int = option(2, "training")  # d (paper and sb3-contrib)
    # TQC's target truncates the pooled quantiles, its actor reads their mean
    unread_options: ClassVar[tuple[str, ...]] = ("target_critics_subset", "actor_q_reduction")

    def training(
        self,
        *,
        n_quantiles: int | NotProvidedType = NotProvided,
        top_quantiles_to_drop_per_net: int | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """The options declared above; the others go to SACConfig.training()."""
        return super().training(**provided(locals()))

    def sizes(self) -> list[tuple[str, Any, str]]:
        """Beside each option's own bound, the quantiles of all critics together (the loss is their square
        per row): bounded unless the caller passed n_quantiles."""
        return [*super().sizes(), ("n_quantiles.all_critics", self.n_quantiles * self.n_critics, "MAX_QUANTILES")]

    def validate(self) -> None:
        super().validate()
        self._check("n_quantiles", self.n_quantiles >= 1, "must be >= 1")
        self._check(
            "top_quantiles_to_drop_per_net",
            0 <= self.top_quantiles_to_drop_per_net < self.n_quantiles,
            f"must be in [0, n_quantiles) = [0, {self.n_quantiles}): some atoms must stay in the target",
        )
        self._check("twin_q", self.twin_q, "does not apply to TQC: its critics are n_critics (set n_critics=1)")


def truncated_atoms(quantiles: torch.Tensor, drop_per_net: int) -> torch.Tensor:
    """[N, B, M] quantiles of N critics -> [B, (M - d) N]: all N*M atoms of each row sorted ascending,
    the top d*N dropped (Kuznetsov et al. 2020, sec. 3: the truncated mixture)."""
    n, b, m = quantiles.shape
    pooled = quantiles.permute(1, 0, 2).reshape(b, n * m).sort(-1).values
    return pooled[:, : (m - drop_per_net) * n]


def tqc_critic_loss(
    model: ActorQ, target: torch.nn.Module, batch: ReplayBatch, alpha: torch.Tensor, drop_per_net: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, td_error [B]: the first critic's mean quantile minus the targets' mean); see the module
    docstring."""
    assert isinstance(model.actor, GaussianActor)  # TQC's actor: SAC's, Box actions
    n, b = model.critic.num_q, len(batch.rewards)
    with torch.no_grad():
        action, logp = model.actor.sample(batch.next_obs)
        atoms = truncated_atoms(target(batch.next_obs, action).reshape(n, b, -1), drop_per_net)
        y = batch.rewards[:, None] + batch.discounts[:, None] * (atoms - alpha * logp[:, None])  # [B, kN]
    z = model.critic(batch.obs, batch.actions).reshape(n, b, -1)  # [N, B, M]
    loss = (batch.weights * quantile_huber_loss(z, y)).mean()
    return loss, (z[0].mean(-1) - y.mean(-1)).detach()


def tqc_actor_loss(
    model: ActorQ, batch: ReplayBatch, alpha: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, -log pi of the actions taken [B] for the temperature, their Q: the mean of all critics'
    quantiles [B]); see the module docstring."""
    assert isinstance(model.actor, GaussianActor)  # TQC's actor: SAC's, Box actions
    action, logp = model.actor.sample(batch.obs)
    q = model.q_value(batch.obs, action)  # mean over critics and quantiles
    return (alpha * logp - q).mean(), -logp.detach(), q.detach()


class TQC(SAC):
    """SAC's update with the losses above (SAC.actor_loss / critic_loss)."""

    config_class = TQCConfig
    config: TQCConfig
    policy_kind = "tqc"

    def policy_options(self, config: ActorQConfig) -> dict[str, Any]:
        assert isinstance(config, TQCConfig)
        return {**super().policy_options(config), "quantiles": config.n_quantiles}

    def actor_loss(
        self, learner: ReplayLearner, batch: ReplayBatch, alpha: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return tqc_actor_loss(learner.policy.model, batch, alpha)

    def critic_loss(
        self, learner: ReplayLearner, batch: ReplayBatch, alpha: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        drop = learner.config.top_quantiles_to_drop_per_net
        return tqc_critic_loss(learner.policy.model, learner.targets["critic"].module, batch, alpha, drop)


TQCConfig.algo_class = TQC
