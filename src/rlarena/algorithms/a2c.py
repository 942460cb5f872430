"""Advantage Actor-Critic (A2C, the synchronous form of Mnih et al. 2016's A3C, arXiv:1602.01783):
config, loss, update.

Defaults follow Stable-Baselines3's A2C: 5 steps per env between updates, n-step returns (GAE with
lambda 1), one gradient step per iteration on the whole batch, RMSprop with alpha 0.99 and eps 1e-5,
gradient norm clipped at 0.5, tanh [64, 64] policy and value towers. Batch preparation (GAE, the
`valid` filter, the lr schedule) is shared with PPO (algorithms/on_policy.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F

from rlarena.algorithms.algorithm import MAIN_OPTIMIZER
from rlarena.algorithms.config import AlgorithmConfig, NotProvided, NotProvidedType, option, provided
from rlarena.algorithms.on_policy import OnPolicyAlgorithm, OnPolicyConfig, prepare_batch
from rlarena.algorithms.sequences import prepare_sequences
from rlarena.nn.distributions import masked
from rlarena.nn.flat import Adam, FlatOptimizer, FlatParameters, RMSprop
from rlarena.policies.torch_policy import TorchPolicy
from rlarena.rollout.storage import Rollout

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11 on

STAT_NAMES = ("policy_loss", "vf_loss", "entropy")


@dataclass
class A2CConfig(OnPolicyConfig):
    """A2C's options; defaults are SB3's A2C (the options keep RLlib's names: SB3's n_steps is
    train_batch_size / num_envs_per_env_runner, gae_lambda is lambda_, ent_coef entropy_coeff,
    vf_coef vf_loss_coeff, max_grad_norm grad_clip, normalize_advantage normalize_advantages)."""

    model_defaults: ClassVar[dict[str, Any]] = {"fcnet_hiddens": [64, 64], "fcnet_activation": "tanh"}  # SB3's net_arch
    lr: float = option(7e-4, "training")  # SB3's learning_rate
    # SB3's n_steps=5 per env times our default 8 envs; with N envs, 5 * N keeps SB3's 5 steps per env
    train_batch_size: int = option(40, "training")
    grad_clip: float | None = option(0.5, "training")  # SB3's max_grad_norm
    lambda_: float = option(1.0, "training")  # SB3's gae_lambda: plain n-step returns
    entropy_coeff: float = option(0.0, "training")  # SB3's ent_coef
    vf_loss_coeff: float = option(0.5, "training")  # SB3's vf_coef
    normalize_advantages: bool = option(False, "training")  # SB3's normalize_advantage
    use_rms_prop: bool = option(True, "training")  # SB3's; False: Adam (eps 1e-5)
    rms_prop_eps: float = option(1e-5, "training")  # SB3's (torch's default is 1e-8)

    def training(
        self,
        *,
        lr: float | NotProvidedType = NotProvided,
        train_batch_size: int | NotProvidedType = NotProvided,
        grad_clip: float | None | NotProvidedType = NotProvided,
        lambda_: float | NotProvidedType = NotProvided,
        entropy_coeff: float | NotProvidedType = NotProvided,
        vf_loss_coeff: float | NotProvidedType = NotProvided,
        normalize_advantages: bool | NotProvidedType = NotProvided,
        use_rms_prop: bool | NotProvidedType = NotProvided,
        rms_prop_eps: float | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """The options declared above; the others go to OnPolicyConfig.training()."""
        return super().training(**provided(locals()))

    def validate(self) -> None:
        super().validate()
        self._check("rms_prop_eps", self.rms_prop_eps > 0, "must be > 0")


def a2c_loss(
    model,
    dist,
    cfg: A2CConfig,
    obs: torch.Tensor,
    actions: torch.Tensor,
    adv: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor | None = None,
    outputs: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, stats[len(STAT_NAMES)]) for the whole batch.

        L = -mean(A_t log pi(a_t | s_t)) + c_v mean((V(s_t) - R_t)^2) - c_e mean(H[pi(. | s_t)])

    the policy gradient with the value as baseline (Mnih et al. 2016, Algorithm S3); no 1/2 on the
    value error and the entropy as a mean over the batch, as SB3. `outputs`: the model's (distribution
    inputs, values) when the caller computed them (a recurrent model's unroll; `obs` is unused then).
    """
    dist_inputs, values = model(obs) if outputs is None else outputs
    logp, entropy = dist.log_prob_entropy(masked(dist_inputs, mask), actions, True)
    policy_loss = -(adv * logp).mean()
    vf_loss = F.mse_loss(values, returns)
    entropy_mean = entropy.mean()
    loss = policy_loss + cfg.vf_loss_coeff * vf_loss - cfg.entropy_coeff * entropy_mean
    return loss, torch.stack([policy_loss, vf_loss, entropy_mean]).detach()


class A2C(OnPolicyAlgorithm):
    config_class = A2CConfig
    config: A2CConfig
    supports_memory = True

    def make_optimizer(self, flat: FlatParameters, config: AlgorithmConfig) -> FlatOptimizer:
        assert isinstance(config, A2CConfig)
        if config.use_rms_prop:
            return RMSprop(flat, lr=config.lr, alpha=0.99, eps=config.rms_prop_eps)  # SB3's A2C optimizer
        return Adam(flat, lr=config.lr, eps=1e-5)

    def update_policy(self, policy_id: str, batch: Rollout) -> dict[str, float]:
        """One gradient step of one policy on its whole [T, N] rollout (no minibatches, as SB3)."""
        cfg = self.policy_configs[policy_id]
        assert isinstance(cfg, A2CConfig)  # a copy of this algorithm's config, its overrides applied
        policy = self.policies[policy_id]
        assert isinstance(policy, TorchPolicy)  # the actor-critic policy_class it trains (Algorithm's default)
        model, dist = policy.model, policy.dist
        lr = self.learners[policy_id].current_lr(MAIN_OPTIMIZER)
        if batch.state_in is not None:  # a recurrent policy: each env's fragment unrolled whole (one sequence)
            seqs = prepare_sequences(model, dist, batch, cfg.gamma, cfg.lambda_, len(batch.rewards))
            v = seqs.valid
            if not bool(v.any()):
                return {}
            recurrent: Any = model  # a RecurrentActorCritic (rlarena.nn.memory)
            inputs, values, _ = recurrent.unroll(seqs.obs, seqs.state0, seqs.starts, seqs.extra)
            adv = seqs.advantages[v]
            if cfg.normalize_advantages and len(adv) > 1:
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            mask = None if seqs.mask is None else seqs.mask[v]
            loss, stats = a2c_loss(
                model, dist, cfg, seqs.obs, seqs.actions[v], adv, seqs.returns[v], mask, (inputs[v], values[v])
            )
            explained = seqs.explained_variance
        else:
            data = prepare_batch(model, dist, batch, cfg.gamma, cfg.lambda_, cfg.normalize_advantages)
            if len(data.advantages) == 0:  # every step of the fragment was an autoreset
                return {}
            loss, stats = a2c_loss(model, dist, cfg, data.obs, data.actions, data.advantages, data.returns, data.mask)
            explained = data.explained_variance
        grad_norms: list[torch.Tensor] = []
        self.apply_gradients(policy_id, loss, batch, lr, grad_norms)
        out = dict(zip(STAT_NAMES, stats.tolist()))
        if grad_norms:
            out["grad_norm"] = float(grad_norms[0])
        out["explained_variance"] = explained
        out["cur_lr"] = lr
        return out


A2CConfig.algo_class = A2C
