"""Proximal Policy Optimization (Schulman et al. 2017, arXiv:1707.06347): config, loss, update.

Defaults follow Stable-Baselines3's PPO (itself matched to OpenAI baselines' ppo2); where a default
differs, the line says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F

from rlarena.algorithms.algorithm import MAIN_OPTIMIZER
from rlarena.algorithms.config import AlgorithmConfig, NotProvided, NotProvidedType, option, provided
from rlarena.algorithms.on_policy import OnPolicyAlgorithm, OnPolicyConfig, prepare_batch
from rlarena.algorithms.sequences import SequenceBatch, prepare_sequences
from rlarena.errors import ConfigError
from rlarena.nn.distributions import masked
from rlarena.nn.flat import Adam, FlatParameters
from rlarena.policies.torch_policy import TorchPolicy
from rlarena.rollout.storage import Rollout

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11 on

STAT_NAMES = ("policy_loss", "vf_loss", "entropy", "approx_kl", "clip_fraction")


@dataclass
class PPOConfig(OnPolicyConfig):
    """PPO's options. Defaults are SB3's PPO (n_steps 2048 per env there: here train_batch_size 2048
    over all envs, RLlib's reading, so an iteration is one SB3 rollout of a 1-env run)."""

    model_defaults: ClassVar[dict[str, Any]] = {"fcnet_hiddens": [64, 64], "fcnet_activation": "tanh"}  # SB3's net_arch
    lr: float = option(3e-4, "training")  # SB3's learning_rate
    train_batch_size: int = option(2048, "training")  # SB3's n_steps (x its 1 env)
    grad_clip: float | None = option(0.5, "training")  # SB3's max_grad_norm
    lambda_: float = option(0.95, "training")  # SB3's gae_lambda
    entropy_coeff: float = option(0.0, "training")  # SB3's ent_coef
    vf_loss_coeff: float = option(0.5, "training")  # SB3's vf_coef
    normalize_advantages: bool = option(True, "training")  # per minibatch, as SB3 (RLlib: over the train batch)
    clip_param: float = option(0.2, "training")  # surrogate clip epsilon
    vf_clip_param: float | None = option(None, "training")  # clip V around its old value (ppo2); None: off
    num_epochs: int = option(10, "training", bound="MAX_EPOCHS")
    minibatch_size: int = option(64, "training", bound="MAX_BATCH")
    target_kl: float | None = option(None, "training")  # stop the update at a minibatch past 1.5x this KL (SB3)

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
        clip_param: float | NotProvidedType = NotProvided,
        vf_clip_param: float | None | NotProvidedType = NotProvided,
        num_epochs: int | NotProvidedType = NotProvided,
        minibatch_size: int | NotProvidedType = NotProvided,
        target_kl: float | None | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """The options declared above; the others go to OnPolicyConfig.training()."""
        return super().training(**provided(locals()))

    def validate(self) -> None:
        super().validate()
        self._check("clip_param", self.clip_param > 0, "must be > 0")
        self._check("num_epochs", self.num_epochs >= 1, "must be >= 1")
        self._check("minibatch_size", self.minibatch_size >= 1, "must be >= 1")
        if self.minibatch_size > self.train_batch_size:
            raise ConfigError(
                f"Invalid minibatch_size={self.minibatch_size}: larger than "
                f"train_batch_size={self.train_batch_size}. Lower minibatch_size or raise "
                f"train_batch_size."
            )
        self._check("vf_clip_param", self.vf_clip_param is None or self.vf_clip_param > 0, "must be > 0 or None")
        self._check("target_kl", self.target_kl is None or self.target_kl > 0, "must be > 0 or None")


def ppo_loss(
    model,
    dist,
    cfg: PPOConfig,
    obs: torch.Tensor,
    actions: torch.Tensor,
    logp_old: torch.Tensor,
    adv: torch.Tensor,
    returns: torch.Tensor,
    values_old: torch.Tensor,
    with_stats: bool,
    mask: torch.Tensor | None = None,
    outputs: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(loss, stats[len(STAT_NAMES)] or None) for one minibatch; `adv` is raw GAE, standardized here
    over the minibatch when the config asks (SB3's PPO does it per minibatch; over the whole batch
    instead, as RLlib, changes the update whenever an epoch has several minibatches).

    On CPU every torch op costs several microseconds of dispatch, which for these small nets is most
    of the time; so the statistics (and the entropy, when its coefficient is 0) are computed only
    when asked for, and fused ops (mse_loss, add with alpha) stand in for chains of small ones.
    `outputs`: the model's outputs for the minibatch when the caller computed them (then `obs` is unused).
    """
    # outputs: the model's (distribution inputs, values) computed by the caller (a recurrent model's unroll)
    dist_inputs, values = model(obs) if outputs is None else outputs
    dist_inputs = masked(dist_inputs, mask)
    need_entropy = with_stats or cfg.entropy_coeff != 0
    logp, entropy = dist.log_prob_entropy(dist_inputs, actions, need_entropy)
    if cfg.normalize_advantages and len(adv) > 1:  # as SB3: (adv - mean) / (std + 1e-8), Bessel-corrected std
        std, mean = torch.std_mean(adv)
        adv = (adv - mean) / (std + 1e-8)
    log_ratio = logp - logp_old
    ratio = log_ratio.exp()
    # clipped surrogate objective, Schulman et al. 2017, eq. 7
    policy_loss = -torch.min(ratio * adv, ratio.clamp(1 - cfg.clip_param, 1 + cfg.clip_param) * adv).mean()
    if cfg.vf_clip_param is not None:  # ppo2's value clipping: the pessimistic of both errors
        clipped = values_old + (values - values_old).clamp(-cfg.vf_clip_param, cfg.vf_clip_param)
        vf_loss = torch.max((values - returns).pow(2), (clipped - returns).pow(2)).mean()
    else:
        vf_loss = F.mse_loss(values, returns)  # as SB3: no 1/2 factor
    loss = torch.add(policy_loss, vf_loss, alpha=cfg.vf_loss_coeff)
    if cfg.entropy_coeff != 0:
        loss = loss - cfg.entropy_coeff * entropy.mean()
    if not with_stats:
        return loss, None
    with torch.no_grad():
        approx_kl = ((ratio - 1) - log_ratio).mean()  # Schulman's k3 estimator (as SB3/CleanRL)
        clip_fraction = ((ratio - 1).abs() > cfg.clip_param).float().mean()
        stats = torch.stack([policy_loss, vf_loss, entropy.mean(), approx_kl, clip_fraction])
    return loss, stats


class PPO(OnPolicyAlgorithm):
    config_class = PPOConfig
    config: PPOConfig
    supports_memory = True

    def make_optimizer(self, flat: FlatParameters, config: AlgorithmConfig) -> Adam:
        return Adam(flat, lr=config.lr, eps=1e-5)  # eps 1e-5 as SB3's PPO and CleanRL (torch's default is 1e-8)

    def update_policy(self, policy_id: str, batch: Rollout) -> dict[str, float]:
        """num_epochs of minibatch updates of one policy on its [T, N] rollout."""
        cfg = self.policy_configs[policy_id]
        assert isinstance(cfg, PPOConfig)  # a copy of this algorithm's config, its overrides applied
        policy = self.policies[policy_id]
        assert isinstance(policy, TorchPolicy)  # the actor-critic policy_class it trains (Algorithm's default)
        model, dist = policy.model, policy.dist
        if batch.state_in is not None:  # a recurrent policy: sequences
            return self.update_recurrent(policy_id, cfg, model, dist, batch)
        data = prepare_batch(model, dist, batch, cfg.gamma, cfg.lambda_, normalize_advantages=False)  # per minibatch
        columns = data.columns()
        n = len(data.advantages)
        # minibatches of equal size (SB3 cuts minibatch_size pieces and a smaller rest: the same when
        # minibatch_size divides the batch)
        mb_size = math.ceil(n / max(1, math.ceil(n / cfg.minibatch_size)))

        def minibatches() -> Iterator[tuple[torch.Tensor, ...]]:
            order = torch.from_numpy(self.rng.permutation(n))
            # one gather per column and epoch; the minibatches are then views of it
            return zip(*(column[order].split(mb_size) for column in columns))

        def loss_of(minibatch: tuple[torch.Tensor, ...], with_stats: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
            obs, actions, logp_old, adv, returns, values_old = minibatch[:6]
            mask = minibatch[6] if data.mask is not None else None
            return ppo_loss(model, dist, cfg, obs, actions, logp_old, adv, returns, values_old, with_stats, mask=mask)

        return self.run_epochs(policy_id, cfg, batch, data.explained_variance, minibatches, loss_of)

    def update_recurrent(self, policy_id: str, cfg: PPOConfig, model, dist, batch: Rollout) -> dict[str, float]:
        """num_epochs over minibatches of whole sequences (minibatch_size // max_seq_len of them), each
        unrolled from its stored state; the loss counts the valid steps only."""
        data = prepare_sequences(model, dist, batch, cfg.gamma, cfg.lambda_, cfg.model_config["max_seq_len"])
        L = data.obs.shape[0]
        n = data.num_sequences
        per_mb = max(1, min(n, round(cfg.minibatch_size / L)))

        def minibatches() -> Iterator[SequenceBatch]:
            order = torch.from_numpy(self.rng.permutation(n))
            return (data.select(idx) for idx in order.split(per_mb))

        def loss_of(mb: SequenceBatch, with_stats: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
            inputs, values, _ = model.unroll(mb.obs, mb.state0, mb.starts, mb.extra)
            v = mb.valid
            return ppo_loss(
                model,
                dist,
                cfg,
                mb.obs,
                mb.actions[v],
                mb.logp_old[v],
                mb.advantages[v],
                mb.returns[v],
                mb.values_old[v],
                with_stats,
                mask=None if mb.mask is None else mb.mask[v],
                outputs=(inputs[v], values[v]),
            )

        return self.run_epochs(policy_id, cfg, batch, data.explained_variance, minibatches, loss_of)

    def run_epochs(
        self,
        policy_id: str,
        cfg: PPOConfig,
        batch: Rollout,
        explained_variance: float,
        minibatches: Callable[[], Iterable[Any]],
        loss_of: Callable[[Any, bool], tuple[torch.Tensor, torch.Tensor | None]],
    ) -> dict[str, float]:
        """num_epochs of minibatch steps: each epoch's minibatches() (shuffled anew), loss_of(minibatch,
        with_stats) for each. Statistics describe the last epoch (every epoch when target_kl needs the
        KL). SB3's early stop: a minibatch whose KL (before its step) passes 1.5 x target_kl ends the
        whole update, unapplied."""
        lr = self.learners[policy_id].current_lr(MAIN_OPTIMIZER)
        stats: list[torch.Tensor] = []
        grad_norms: list[torch.Tensor] = []
        for epoch in range(cfg.num_epochs):
            with_stats = cfg.target_kl is not None or epoch == cfg.num_epochs - 1
            for minibatch in minibatches():
                loss, mb_stats = loss_of(minibatch, with_stats)
                if mb_stats is not None:
                    stats.append(mb_stats)
                    if cfg.target_kl is not None and mb_stats[3] > 1.5 * cfg.target_kl:
                        return self.update_stats(STAT_NAMES, stats, grad_norms, explained_variance, lr)
                self.apply_gradients(policy_id, loss, batch, lr, grad_norms)
        return self.update_stats(STAT_NAMES, stats, grad_norms, explained_variance, lr)


PPOConfig.algo_class = PPO
PPOTrainer = PPO  # RLlib 1.x's name: PPOTrainer(config={...}, env=...) takes a dict of option names, old ones too
