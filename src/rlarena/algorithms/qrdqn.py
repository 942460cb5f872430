"""Quantile Regression DQN (Dabney et al. 2018, "Distributional Reinforcement Learning with Quantile
Regression", AAAI, arXiv:1710.10044): DQN whose network outputs, for each action, M quantiles of the
return instead of its mean. Everything else is rlarena's DQN (algorithms/dqn.py): its loop, epsilon
schedule, replay (uniform or prioritized), n-step returns and action masks.

The network gives Z(s, a) = (z_1 .. z_M)(s, a), the quantiles at the fractions tau_m = (m + 1/2) / M
(the midpoints of Lemma 2), and Q(s, a) = mean_m z_m(s, a) (Algorithm 1). For a replayed
(s, a, R, discount, s'):

    a* = argmax_a' mean_m z^target_m(s', a')      over the legal a' only (double_q: the online network's)
    y_j = R + discount * z^target_j(s', a*),      j = 1 .. M                        (Algorithm 1)
    loss = mean_b w_b * sum_m mean_j rho^1_{tau_m}(y_j - z_m(s_b, a_b))         (Algorithm 1, eq. 10)
           rho^1_tau(u) = |tau - 1[u < 0]| * Huber_1(u),  Huber_1(u) = u^2/2 if |u| <= 1 else |u| - 1/2

The sum over the online quantiles m and the mean over the target atoms j are the paper's and
sb3-contrib's (`quantile_huber_loss(..., sum_over_quantiles=True)`); TQC takes the mean over both.
Prioritized replay's TD error is mean_m z_m(s, a) - mean_j y_j, the mean over quantiles of the
difference (sb3-contrib has no prioritized replay; RLlib has no QR-DQN).

Defaults are sb3-contrib's QRDQN (its peer, whose defaults are the paper's Atari settings: lr 5e-5,
Adam epsilon 0.01 / 32, 200 quantiles, target copied every 10,000 steps), where rlarena's DQN has the
option; each line says which. Its train_freq 4 with one env becomes DQN's rhythm here (8 envs, one
gradient step per vector step: one per 8 env steps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from rlarena.algorithms.algorithm import MAIN_OPTIMIZER
from rlarena.algorithms.config import AlgorithmConfig, NotProvided, NotProvidedType, option, provided
from rlarena.algorithms.dqn import DQN, DQNConfig
from rlarena.algorithms.off_policy import OffPolicyConfig, ReplayBatch
from rlarena.errors import ConfigError
from rlarena.learners import Learner
from rlarena.nn.quantiles import quantile_huber_loss
from rlarena.policies.q_policy import QPolicy, masked_q

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11 on


@dataclass
class QRDQNConfig(DQNConfig):
    """QR-DQN's options: DQN's, with sb3-contrib's defaults (the module docstring)."""

    # sb3-contrib's QuantileNetwork: [64, 64] ReLU (DQN's model_defaults, inherited)
    # sb3-contrib's: a uniform replay buffer of 1e6 transitions (DQN's default is RLlib's prioritized 50000)
    replay_defaults: ClassVar[dict[str, Any]] = OffPolicyConfig.replay_defaults
    n_quantiles: int = option(200, "training", bound="MAX_QUANTILES")  # M (the paper's Atari N and sb3-contrib's)
    lr: float = option(5e-5, "training")  # paper's Adam and sb3-contrib's learning_rate
    grad_clip: float | None = option(None, "training")  # sb3-contrib's max_grad_norm None (DQN's: RLlib's 40)
    adam_epsilon: float = option(0.01 / 32, "training")  # paper's and sb3-contrib's 0.01 / batch_size, at 32
    double_q: bool = option(False, "training")  # sb3-contrib's target: the target network's own greedy action
    dueling: bool = option(False, "training")  # sb3-contrib's network has no dueling head
    target_network_update_freq: int = option(10_000, "training")  # sb3-contrib's target_update_interval
    # sb3-contrib's endpoints (1.0 -> 0.01); its span is a fraction (0.005) of the whole run, whose length a
    # config does not know here: RLlib DQN's 10,000 env steps
    epsilon: list = option([[0, 1.0], [10_000, 0.01]], "training")
    num_steps_sampled_before_learning_starts: int = option(100, "training")  # sb3-contrib's learning_starts

    def training(
        self,
        *,
        n_quantiles: int | NotProvidedType = NotProvided,
        lr: float | NotProvidedType = NotProvided,
        grad_clip: float | None | NotProvidedType = NotProvided,
        adam_epsilon: float | NotProvidedType = NotProvided,
        double_q: bool | NotProvidedType = NotProvided,
        dueling: bool | NotProvidedType = NotProvided,
        target_network_update_freq: int | NotProvidedType = NotProvided,
        epsilon: list | NotProvidedType = NotProvided,
        num_steps_sampled_before_learning_starts: int | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """The options declared above; the others go to DQNConfig.training()."""
        return super().training(**provided(locals()))

    def validate(self) -> None:
        super().validate()
        self._check("n_quantiles", self.n_quantiles >= 1, "must be >= 1")


def qrdqn_loss(
    model: torch.nn.Module, target: torch.nn.Module, batch: ReplayBatch, double_q: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, td_error [B], stats[3]: qf_loss, q_mean, td_error_abs_mean); model and target map obs
    [B, D] to quantiles [B, n, M]. The module docstring has the math."""
    rows = torch.arange(len(batch.actions))
    z = model(batch.obs)[rows, batch.actions]  # [B, M]
    with torch.no_grad():
        z_next_target = target(batch.next_obs)  # [B, n, M]
        chooser = model(batch.next_obs) if double_q else z_next_target
        best = masked_q(chooser.mean(-1), batch.next_mask).argmax(-1)  # greedy by the mean, legal actions only
        z_next = z_next_target[rows, best]  # [B, M]
        if batch.next_mask is not None:  # a final observation with no legal action has nothing to bootstrap
            z_next = torch.where(batch.next_mask.any(-1, keepdim=True), z_next, torch.zeros_like(z_next))
        y = batch.rewards[:, None] + batch.discounts[:, None] * z_next  # [B, M] target atoms
    # quantile_huber_loss means over the online quantiles; the paper's loss sums over them: times M
    per_row = z.shape[-1] * quantile_huber_loss(z[None], y)
    loss = (batch.weights * per_row).mean()
    td_error = z.detach().mean(-1) - y.mean(-1)
    stats = torch.stack([loss.detach(), z.detach().mean(), td_error.abs().mean()])
    return loss, td_error, stats


class QRDQN(DQN):
    """DQN's loop and learner with the quantile network and loss above (no memory: R2D2 is DQN's)."""

    config_class = QRDQNConfig
    config: QRDQNConfig
    supports_memory = False

    def make_policy(
        self, observation_space: Any, action_space: Any, config: AlgorithmConfig, seed: int | None
    ) -> QPolicy:
        assert isinstance(config, QRDQNConfig)
        return QPolicy(
            observation_space,
            action_space,
            config.model_config,
            config.observation_filter,
            seed,
            dueling=config.dueling,
            epsilon_schedule=config.epsilon,
            quantiles=config.n_quantiles,
        )

    def build_learner(self, learner: Learner) -> None:
        """DQN's (Adam, the target network "q", the replay buffer), for a quantile Q-network."""
        policy = learner.policy
        if not (isinstance(policy, QPolicy) and policy.quantiles == self.config.n_quantiles):
            raise ConfigError(
                f"QRDQN trains its own quantile Q-network policies; policy {learner.policy_id!r} is a "
                f"{type(policy).__name__} without {self.config.n_quantiles} quantiles. Leave its PolicySpec's "
                f"policy_class out (QRDQN builds one), or leave it out of policies_to_train."
            )
        super().build_learner(learner)

    def update_policy(self, policy_id: str) -> torch.Tensor:
        """One gradient step of one policy on a replayed batch; its statistics (DQN's stat_names)."""
        learner = self.replay_learner(policy_id)
        cfg: QRDQNConfig = learner.config
        batch, indices = self.replay(policy_id)
        loss, td_error, stats = qrdqn_loss(learner.policy.model, learner.targets["q"].module, batch, cfg.double_q)
        learner.check_finite(loss)
        norms = learner.step(loss, MAIN_OPTIMIZER)  # the gradient's norm before clipping, when grad_clip is set
        grad_norm = norms[MAIN_OPTIMIZER] if norms else torch.linalg.vector_norm(learner.flats[MAIN_OPTIMIZER].grad)
        self.update_priorities(policy_id, indices, td_error)
        return torch.cat([stats, grad_norm.reshape(1)])


QRDQNConfig.algo_class = QRDQN
