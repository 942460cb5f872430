"""IMPALA (Espeholt et al. 2018, arXiv:1802.01561): actor-critic on fragments sampled by older weights,
corrected with V-trace (rlarena.algorithms.vtrace). Env runners sample in other processes while the
learner updates (sample_async, on by default; rlarena.rollout.async_sampling), each fragment with the
log-probs of the weights that sampled it. A simple design: no aggregation workers, one learner.

Defaults are RLlib's IMPALA where they apply on one machine (lr 5e-4, entropy 0.01, value 0.5,
grad clip 40, V-trace clip thresholds 1.0, one pass over the batch, weights broadcast after every
update); where a default differs, the line says so. APPO (algorithms/appo.py) shares the batch
preparation below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from rlarena.algorithms.algorithm import MAIN_OPTIMIZER
from rlarena.algorithms.config import AlgorithmConfig, NotProvided, NotProvidedType, option, provided
from rlarena.algorithms.on_policy import (
    OnPolicyAlgorithm,
    OnPolicyConfig,
    explained_variance,
    masked,
)
from rlarena.algorithms.sequences import Precomputed, cut, log_probs, unroll_fragment
from rlarena.algorithms.vtrace import vtrace
from rlarena.errors import ConfigError
from rlarena.nn.flat import Adam, FlatParameters
from rlarena.policies.torch_policy import TorchPolicy
from rlarena.rollout.storage import Rollout

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11 on

STAT_NAMES = ("policy_loss", "vf_loss", "entropy")


@dataclass
class IMPALAConfig(OnPolicyConfig):
    """IMPALA's options (RLlib's names)."""

    model_defaults: ClassVar[dict[str, Any]] = {"fcnet_hiddens": [64, 64], "fcnet_activation": "tanh"}
    lr: float = option(5e-4, "training")
    # RLlib: 500 steps in 50-step fragments; here 8 envs x 64 steps, one fragment per update
    train_batch_size: int = option(512, "training")
    grad_clip: float | None = option(40.0, "training")
    entropy_coeff: float = option(0.01, "training")
    vf_loss_coeff: float = option(0.5, "training")
    vtrace: bool = option(True, "training")  # RLlib's switch (APPO's files set it); only True here
    vtrace_clip_rho_threshold: float | None = option(1.0, "training")  # rho bar; None: not clipped
    vtrace_clip_pg_rho_threshold: float | None = option(1.0, "training")  # the policy gradient's rho bar
    num_epochs: int = option(1, "training", bound="MAX_EPOCHS")  # passes over each train batch
    minibatch_size: int | None = option(None, "training", bound="MAX_BATCH")  # None: the whole batch in one step
    sample_async: bool = option(True, "env_runners")

    def training(
        self,
        *,
        lr: float | NotProvidedType = NotProvided,
        train_batch_size: int | NotProvidedType = NotProvided,
        grad_clip: float | None | NotProvidedType = NotProvided,
        entropy_coeff: float | NotProvidedType = NotProvided,
        vf_loss_coeff: float | NotProvidedType = NotProvided,
        vtrace: bool | NotProvidedType = NotProvided,
        vtrace_clip_rho_threshold: float | None | NotProvidedType = NotProvided,
        vtrace_clip_pg_rho_threshold: float | None | NotProvidedType = NotProvided,
        num_epochs: int | NotProvidedType = NotProvided,
        minibatch_size: int | None | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """The options declared above; the others go to OnPolicyConfig.training()."""
        return super().training(**provided(locals()))

    def validate(self) -> None:
        super().validate()
        self._check(
            "vtrace",
            self.vtrace,
            "is always on in rlarena's IMPALA and APPO; for PPO's ratio as the only "
            "correction of the policy lag, use PPOConfig with sample_async=True",
        )
        self._check("num_epochs", self.num_epochs >= 1, "must be >= 1")
        self._check("minibatch_size", self.minibatch_size is None or self.minibatch_size >= 1, "must be >= 1 or None")
        for name in ("vtrace_clip_rho_threshold", "vtrace_clip_pg_rho_threshold"):
            value = getattr(self, name)
            self._check(name, value is None or value > 0, "must be > 0 or None")
        if self.minibatch_size is not None and self.minibatch_size > self.train_batch_size:
            raise ConfigError(
                f"Invalid minibatch_size={self.minibatch_size}: larger than train_batch_size="
                f"{self.train_batch_size}. Lower minibatch_size or raise train_batch_size."
            )


@dataclass
class VTraceBatch:
    """One policy's train batch with V-trace targets: its valid steps only, flattened."""

    obs: torch.Tensor  # [B, D]
    actions: torch.Tensor  # [B] or [B, A]
    behaviour_logp: torch.Tensor  # [B] log-probs under the weights that sampled the steps
    target_logp: torch.Tensor  # [B] under the policy V-trace corrects towards (APPO: its target network)
    vs: torch.Tensor  # [B] value targets
    advantages: torch.Tensor  # [B] the policy gradient's advantages (rho-clipped)
    mask: torch.Tensor | None  # [B, n] legal actions
    explained_variance: float

    def columns(self) -> list[torch.Tensor]:
        cols = [self.obs, self.actions, self.behaviour_logp, self.target_logp, self.vs, self.advantages]
        return cols if self.mask is None else [*cols, self.mask]


def prepare_vtrace_batch(model, dist, batch: Rollout, cfg: IMPALAConfig, target_model=None) -> VTraceBatch:
    """Values of every observation (obs[T]: the bootstrap) and the target log-probs in one forward
    each, V-trace over [T, N] time-major, then the valid steps only. The target policy is `model`, or
    `target_model` when given (APPO). A fragment sampled here (sample_async=False) is on-policy: its
    behaviour log-probs are the target's."""
    T, N = batch.rewards.shape
    obs = torch.from_numpy(np.asarray(batch.obs))  # [T+1, N, D] (frame stacks gathered)
    actions = torch.from_numpy(batch.actions.reshape(T * N, *batch.actions.shape[2:]))
    mask = None if batch.action_mask is None else torch.from_numpy(batch.action_mask[:T].reshape(T * N, -1))
    with torch.no_grad():
        dist_inputs, values = model(obs.reshape((T + 1) * N, -1))
        if target_model is not None:
            dist_inputs, _ = target_model(obs[:T].reshape(T * N, -1))
        target_logp, _ = dist.log_prob_entropy(masked(dist_inputs[: T * N], mask), actions, False)
    target_np = target_logp.numpy().reshape(T, N)
    behaviour_np = target_np if batch.behaviour_logp is None else batch.behaviour_logp
    values_np = values.numpy().reshape(T + 1, N)
    discounts = cfg.gamma * (1.0 - batch.terminated)
    out = vtrace(
        behaviour_np,
        target_np,
        batch.rewards,
        values_np[:-1],
        values_np[-1],
        discounts,
        cfg.vtrace_clip_rho_threshold,
        cfg.vtrace_clip_pg_rho_threshold,
        lambda_=cfg.lambda_,
        valid=batch.valid,
    )
    valid_np = np.flatnonzero(batch.valid.reshape(-1))
    valid = torch.from_numpy(valid_np)
    vs = out.vs[batch.valid]
    return VTraceBatch(
        obs=obs[:T].reshape(T * N, -1)[valid],
        actions=actions[valid],
        behaviour_logp=torch.from_numpy(behaviour_np.reshape(-1)[valid_np]),
        target_logp=target_logp[valid],
        vs=torch.from_numpy(vs),
        advantages=torch.from_numpy(out.pg_advantages.reshape(-1)[valid_np]),
        mask=None if mask is None else mask[valid],
        explained_variance=explained_variance(vs, values_np[:-1][batch.valid]),
    )


def impala_loss(
    model, dist, cfg: IMPALAConfig, obs, actions, behaviour_logp, target_logp, vs, adv, mask=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, stats): -mean(A_t log pi(a_t|x_t)) + c_v mean(1/2 (V(x_t) - v_t)^2) - c_e mean(H), the
    V-trace actor-critic loss (Espeholt et al. 2018, eq. 2-4), as means over the batch (RLlib sums)."""
    dist_inputs, values = model(obs)
    logp, entropy = dist.log_prob_entropy(masked(dist_inputs, mask), actions, True)
    if cfg.normalize_advantages and len(adv) > 1:
        std, mean = torch.std_mean(adv)
        adv = (adv - mean) / (std + 1e-8)
    policy_loss = -(adv * logp).mean()
    vf_loss = 0.5 * (values - vs).pow(2).mean()
    entropy_mean = entropy.mean()
    loss = policy_loss + cfg.vf_loss_coeff * vf_loss - cfg.entropy_coeff * entropy_mean
    return loss, torch.stack([policy_loss, vf_loss, entropy_mean]).detach()


class VTraceAlgorithm(OnPolicyAlgorithm):
    """What IMPALA and APPO share: Adam, minibatch passes over the V-trace batch, the statistics.
    Subclasses give the loss (and APPO its target network)."""

    config: IMPALAConfig
    supports_memory = True
    stat_names: ClassVar[tuple[str, ...]] = STAT_NAMES

    def make_optimizer(self, flat: FlatParameters, config: AlgorithmConfig) -> Adam:
        return Adam(flat, lr=config.lr)

    def target_model(self, policy_id: str) -> Any:
        """The policy V-trace corrects towards: the learning one (IMPALA)."""
        return None

    def loss(
        self, policy_id: str, model, dist, cfg, minibatch: list[torch.Tensor], mask
    ) -> tuple[torch.Tensor, torch.Tensor]:
        obs, actions, behaviour_logp, target_logp, vs, adv = minibatch
        return impala_loss(model, dist, cfg, obs, actions, behaviour_logp, target_logp, vs, adv, mask=mask)

    def update_policy(self, policy_id: str, batch: Rollout) -> dict[str, float]:
        cfg = self.policy_configs[policy_id]
        assert isinstance(cfg, IMPALAConfig)  # a copy of this algorithm's config, its overrides applied
        policy = self.policies[policy_id]
        assert isinstance(policy, TorchPolicy)  # the actor-critic policy_class it trains (Algorithm's default)
        model, dist = policy.model, policy.dist
        if batch.state_in is not None:  # a recurrent policy: sequences
            return self.update_recurrent(policy_id, cfg, model, dist, batch)
        data = prepare_vtrace_batch(model, dist, batch, cfg, self.target_model(policy_id))
        n = len(data.vs)
        if n == 0:  # every step of the fragment was an autoreset
            return {}
        lr = self.learners[policy_id].current_lr(MAIN_OPTIMIZER)
        columns = data.columns()
        size = n if cfg.minibatch_size is None else cfg.minibatch_size
        mb_size = math.ceil(n / max(1, math.ceil(n / size)))
        stats: list[torch.Tensor] = []
        grad_norms: list[torch.Tensor] = []
        for _ in range(cfg.num_epochs):
            order = torch.from_numpy(self.rng.permutation(n)) if mb_size < n else None
            parts = columns if order is None else [column[order] for column in columns]
            for minibatch in zip(*(column.split(mb_size) for column in parts)):
                loss, mb_stats = self.loss(
                    policy_id, model, dist, cfg, list(minibatch[:6]), minibatch[6] if data.mask is not None else None
                )
                stats.append(mb_stats)
                self.apply_gradients(policy_id, loss, batch, lr, grad_norms)
        out = self.update_stats(self.stat_names, stats, grad_norms, data.explained_variance, lr)
        out["mean_rho"] = float((data.target_logp - data.behaviour_logp).exp().mean())
        return out

    def update_recurrent(self, policy_id: str, cfg: IMPALAConfig, model, dist, batch: Rollout) -> dict[str, float]:
        """V-trace over the whole fragment (the model, and the target, unrolled from the stored state),
        then num_epochs over minibatches of max_seq_len sequences (minibatch_size // max_seq_len of them)."""
        dist_inputs, values = unroll_fragment(model, batch)
        target = self.target_model(policy_id)
        target_logp = log_probs(dist, unroll_fragment(target, batch)[0] if target is not None else dist_inputs, batch)
        target_np = target_logp.numpy()
        behaviour_np = target_np if batch.behaviour_logp is None else batch.behaviour_logp
        values_np = values.numpy()
        out = vtrace(
            behaviour_np,
            target_np,
            batch.rewards,
            values_np[:-1],
            values_np[-1],
            cfg.gamma * (1.0 - batch.terminated),
            cfg.vtrace_clip_rho_threshold,
            cfg.vtrace_clip_pg_rho_threshold,
            lambda_=cfg.lambda_,
            valid=batch.valid,
        )
        ev = explained_variance(out.vs[batch.valid], values_np[:-1][batch.valid])
        columns = {"behaviour_logp": behaviour_np, "target_logp": target_np, "vs": out.vs, "adv": out.pg_advantages}
        data = cut(batch, cfg.model_config["max_seq_len"], columns, ev, model)
        n = data.num_sequences
        if n == 0:
            return {}
        L = data.obs.shape[0]
        per_mb = n if cfg.minibatch_size is None else max(1, min(n, round(cfg.minibatch_size / L)))
        lr = self.learners[policy_id].current_lr(MAIN_OPTIMIZER)
        stats: list[torch.Tensor] = []
        grad_norms: list[torch.Tensor] = []
        for _ in range(cfg.num_epochs):
            for idx in torch.from_numpy(self.rng.permutation(n)).split(per_mb):
                mb = data.select(idx)
                inputs, values_mb, _ = model.unroll(mb.obs, mb.state0, mb.starts, mb.extra)
                v = mb.valid
                cols = [mb.obs, mb.actions[v], *(mb.columns[k][v].float() for k in columns)]
                loss, mb_stats = self.loss(
                    policy_id,
                    Precomputed(model, inputs[v], values_mb[v]),
                    dist,
                    cfg,
                    cols,
                    None if mb.mask is None else mb.mask[v],
                )
                stats.append(mb_stats)
                self.apply_gradients(policy_id, loss, batch, lr, grad_norms)
        result = self.update_stats(self.stat_names, stats, grad_norms, ev, lr)
        result["mean_rho"] = float(np.exp(target_np - behaviour_np)[batch.valid].mean())
        return result


class IMPALA(VTraceAlgorithm):
    config_class = IMPALAConfig


IMPALAConfig.algo_class = IMPALA
