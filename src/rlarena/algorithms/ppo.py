"""Proximal Policy Optimization (Schulman et al. 2017, arXiv:1707.06347): config, loss, update.

Defaults follow Stable-Baselines3's PPO (itself matched to OpenAI baselines' ppo2); where a default
differs, the line says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from rlarena.algorithms.algorithm import DEFAULT_POLICY_ID, Algorithm
from rlarena.algorithms.config import AlgorithmConfig, option
from rlarena.errors import ConfigError, TrainingError
from rlarena.nn.flat import Adam, FlatParameters
from rlarena.policy import MASKED_LOGIT
from rlarena.rollout.gae import compute_gae
from rlarena.rollout.storage import Rollout

STAT_NAMES = ("policy_loss", "vf_loss", "entropy", "approx_kl", "clip_fraction")


@dataclass
class PPOConfig(AlgorithmConfig):
    lambda_: float = option(0.95, "training")  # GAE lambda
    clip_param: float = option(0.2, "training")  # surrogate clip epsilon
    vf_clip_param: float | None = option(None, "training")  # clip V around its old value (ppo2); None: off
    num_epochs: int = option(10, "training")
    minibatch_size: int = option(64, "training")
    entropy_coeff: float = option(0.0, "training")
    vf_loss_coeff: float = option(0.5, "training")
    normalize_advantages: bool = option(True, "training")  # over the train batch (RLlib); SB3: per minibatch
    target_kl: float | None = option(None, "training")  # stop the epochs early past this KL (SB3)

    def validate(self) -> None:
        super().validate()
        self._check("lambda_", 0 <= self.lambda_ <= 1, "must be in [0, 1]")
        self._check("clip_param", self.clip_param > 0, "must be > 0")
        self._check("num_epochs", self.num_epochs >= 1, "must be >= 1")
        self._check("minibatch_size", self.minibatch_size >= 1, "must be >= 1")
        if self.minibatch_size > self.train_batch_size:
            raise ConfigError(f"Invalid minibatch_size={self.minibatch_size}: larger than "
                              f"train_batch_size={self.train_batch_size}. Lower minibatch_size or raise "
                              f"train_batch_size.")
        self._check("vf_loss_coeff", self.vf_loss_coeff >= 0, "must be >= 0")
        self._check("vf_clip_param", self.vf_clip_param is None or self.vf_clip_param > 0, "must be > 0 or None")
        self._check("target_kl", self.target_kl is None or self.target_kl > 0, "must be > 0 or None")


def masked(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Illegal actions get a logit of -1e9: probability 0, never sampled, never greedy."""
    return logits if mask is None else logits.masked_fill(~mask, MASKED_LOGIT)


def ppo_loss(model, dist, cfg: PPOConfig, obs: torch.Tensor, actions: torch.Tensor, logp_old: torch.Tensor,
             adv: torch.Tensor, returns: torch.Tensor, values_old: torch.Tensor, with_stats: bool,
             mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(loss, stats[len(STAT_NAMES)] or None) for one minibatch; `adv` is already standardized.

    On CPU every torch op costs several microseconds of dispatch, which for these small nets is most
    of the time; so the statistics (and the entropy, when its coefficient is 0) are computed only
    when asked for, and fused ops (mse_loss, add with alpha) stand in for chains of small ones.
    """
    dist_inputs, values = model(obs)
    dist_inputs = masked(dist_inputs, mask)
    need_entropy = with_stats or cfg.entropy_coeff != 0
    logp, entropy = dist.log_prob_entropy(dist_inputs, actions, need_entropy)
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


def scheduled_lr(schedule: list | None, base_lr: float, step: int) -> float:
    """Piecewise-linear lr over env steps (RLlib's lr_schedule format: [[step, lr], ...])."""
    if not schedule:
        return base_lr
    steps, lrs = zip(*schedule)
    return float(np.interp(step, steps, lrs))


class PPO(Algorithm):
    config_class = PPOConfig
    config: PPOConfig

    def setup_policy(self, policy_id: str) -> None:
        policy, cfg = self.policies[policy_id], self.policy_configs[policy_id]
        self.flats[policy_id] = FlatParameters(policy.model)
        # Adam eps 1e-5 as SB3's PPO and CleanRL (torch's default is 1e-8)
        self.optimizers[policy_id] = Adam(self.flats[policy_id], lr=cfg.lr, eps=1e-5)

    def setup(self) -> None:
        self.flats: dict[str, FlatParameters] = {}

    def training_step(self) -> dict[str, float]:
        batches = self.sample()
        out: dict[str, float] = {}
        for pid in self.policies_to_train:
            if pid not in batches:  # no agent of this policy acted in this fragment
                continue
            stats = self.update_policy(pid, batches[pid])
            out.update({f"learner/{pid}/{k}": v for k, v in stats.items()} if self.is_multi_agent else stats)
        return out

    def update_policy(self, policy_id: str, batch: Rollout) -> dict[str, float]:
        """num_epochs of minibatch updates of one policy on its [T, N] rollout."""
        cfg, policy = self.policy_configs[policy_id], self.policies[policy_id]
        model, dist, optimizer, flat = policy.model, policy.dist, self.optimizers[policy_id], self.flats[policy_id]
        T, N = batch.rewards.shape

        # old log-probs and values for the whole fragment in one batched forward (the runner only
        # sampled actions); values[T] is V(obs after the last step), the bootstrap
        obs = torch.from_numpy(batch.obs)  # [T+1, N, D]
        actions = torch.from_numpy(batch.actions.reshape(T * N, *batch.actions.shape[2:]))
        mask = None if batch.action_mask is None else torch.from_numpy(batch.action_mask.reshape(T * N, -1))
        with torch.no_grad():
            dist_inputs, values = model(obs.reshape((T + 1) * N, -1))
            logp_old, _ = dist.log_prob_entropy(masked(dist_inputs[: T * N], mask), actions, False)
        values_np = values.numpy().reshape(T + 1, N)
        adv, returns = compute_gae(batch.rewards, values_np[:-1], batch.terminated, batch.truncated,
                                   values_np[1:], cfg.gamma, cfg.lambda_)

        valid = np.flatnonzero(batch.valid.reshape(-1))  # drop autoreset-only steps and padding
        flat_obs = obs[:T].reshape(T * N, -1)
        if cfg.normalize_advantages:
            # standardized over the whole batch, as RLlib does (SB3 and CleanRL: per minibatch; the
            # same when an epoch is one minibatch, and one set of ops per iteration instead of per step)
            v = adv.reshape(-1)[valid]
            adv = (adv - v.mean()) / (v.std(ddof=1) + 1e-8) if len(v) > 1 else adv
        adv_t, ret_t = torch.from_numpy(adv.reshape(-1)), torch.from_numpy(returns.reshape(-1))
        values_old = values[: T * N]
        lr = scheduled_lr(cfg.lr_schedule, cfg.lr, self.num_env_steps_sampled_lifetime)
        optimizer.lr = lr

        stats, grad_norms = [], []
        columns = [flat_obs, actions, logp_old, adv_t, ret_t, values_old] + ([mask] if mask is not None else [])
        mb_size = math.ceil(len(valid) / max(1, math.ceil(len(valid) / cfg.minibatch_size)))
        for epoch in range(cfg.num_epochs):
            # statistics describe the last epoch (every epoch when target_kl needs the KL)
            with_stats = cfg.target_kl is not None or epoch == cfg.num_epochs - 1
            order = torch.from_numpy(valid[self.rng.permutation(len(valid))])
            # one gather per column and epoch; the minibatches are then views of it
            for minibatch in zip(*(column[order].split(mb_size) for column in columns)):
                loss, mb_stats = ppo_loss(model, dist, cfg, *minibatch[:6], with_stats,
                                          mask=minibatch[6] if mask is not None else None)
                if not math.isfinite(loss.item()):
                    # the env runners refuse NaN/inf from the env, so this is the update diverging; the
                    # batch is looked at again here (on the error path only) in case something changed it
                    cause = ("its batch is finite, so the update diverged"
                             if np.isfinite(batch.obs).all() and np.isfinite(batch.rewards).all() else
                             "its batch holds NaN/inf observations or rewards, changed after sampling (a callback?)")
                    raise TrainingError(f"PPO loss became {loss.item()} at iteration {self.iteration + 1}"
                                        f"{'' if policy_id == DEFAULT_POLICY_ID else f' (policy {policy_id!r})'}: "
                                        f"{cause}. The update was not applied, so the weights are still finite. "
                                        f"Lower lr (now {lr}), set grad_clip, or normalize observations/rewards "
                                        f"(observation_filter='MeanStdFilter').")
                flat.zero_grad()
                loss.backward()
                if cfg.grad_clip is not None:
                    grad_norms.append(flat.clip_grad_norm_(cfg.grad_clip))
                optimizer.step()
                if mb_stats is not None:
                    stats.append(mb_stats)
            if cfg.target_kl is not None and stats[-1][3] > 1.5 * cfg.target_kl:  # SB3's early stop rule
                break

        out = dict(zip(STAT_NAMES, torch.stack(stats).mean(0).tolist()))
        if grad_norms:
            out["grad_norm"] = float(torch.stack(grad_norms).mean())
        v, r = values_np[:-1][batch.valid], returns[batch.valid]
        out["explained_variance"] = float(1 - np.var(r - v) / np.var(r)) if np.var(r) > 0 else float("nan")
        out["cur_lr"] = lr
        return out


PPOConfig.algo_class = PPO
PPOTrainer = PPO  # RLlib 1.x's name: PPOTrainer(config={...}, env=...) takes a dict of option names, old ones too
