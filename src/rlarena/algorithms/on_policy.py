"""What on-policy algorithms (PPO, A2C) share: the fragment-length rule, the batch preparation (old
log-probs and values in one forward, GAE, the `valid` filter, advantage standardization), each policy's
learner with its one optimizer, the per-policy training step and the divergence check. Their files
keep only their loss and update.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rlarena.algorithms.algorithm import DEFAULT_POLICY_ID, MAIN_OPTIMIZER, Algorithm
from rlarena.algorithms.config import AlgorithmConfig, NotProvided, NotProvidedType, option, provided
from rlarena.errors import TrainingError
from rlarena.learners import Learner
from rlarena.nn.distributions import masked
from rlarena.nn.flat import FlatOptimizer, FlatParameters
from rlarena.rollout.gae import compute_gae
from rlarena.rollout.storage import Rollout

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11 on


@dataclass
class OnPolicyConfig(AlgorithmConfig):
    """Options every on-policy algorithm has; PPOConfig and A2CConfig redeclare the defaults they change."""

    lambda_: float = option(1.0, "training")  # GAE lambda; 1.0: Monte-Carlo returns bootstrapped at the fragment end
    entropy_coeff: float = option(0.0, "training")
    vf_loss_coeff: float = option(0.5, "training")
    normalize_advantages: bool = option(False, "training")  # standardize advantages over the train batch
    broadcast_interval: int = option(1, "training")  # with sample_async: updates between weight broadcasts (RLlib's)

    def training(
        self,
        *,
        lambda_: float | NotProvidedType = NotProvided,
        entropy_coeff: float | NotProvidedType = NotProvided,
        vf_loss_coeff: float | NotProvidedType = NotProvided,
        normalize_advantages: bool | NotProvidedType = NotProvided,
        broadcast_interval: int | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """The options declared above; the others go to AlgorithmConfig.training()."""
        return super().training(**provided(locals()))

    @property
    def fragment_length(self) -> int:
        """Steps per env per iteration: rollout_fragment_length; "auto": train_batch_size / (num_envs x
        num_samplers) rounded up, so one iteration's fragments fill one train batch (the on-policy row of
        AlgorithmConfig.fragment_length)."""
        if self.rollout_fragment_length != "auto":
            return int(self.rollout_fragment_length)
        return math.ceil(self.train_batch_size / (self.num_envs_per_env_runner * self.num_samplers))

    def validate(self) -> None:
        super().validate()
        self._check("lambda_", 0 <= self.lambda_ <= 1, "must be in [0, 1]")
        self._check("vf_loss_coeff", self.vf_loss_coeff >= 0, "must be >= 0")
        self._check("broadcast_interval", self.broadcast_interval >= 1, "must be >= 1")


def explained_variance(targets: np.ndarray, values: np.ndarray) -> float:
    """1 - Var(targets - values) / Var(targets): how much of the value targets the values explain
    (nan when the targets are constant)."""
    var = np.var(targets)
    return float(1 - np.var(targets - values) / var) if var > 0 else float("nan")


@dataclass
class OnPolicyBatch:
    """One policy's fragment ready for a loss: its valid steps only (B of the T * N), flattened."""

    obs: torch.Tensor  # [B, D] float32
    actions: torch.Tensor  # [B] int64 (Discrete) or [B, A] float32 (Box)
    logp_old: torch.Tensor  # [B] log-probs of the actions under the weights that sampled them
    advantages: torch.Tensor  # [B] float32, standardized when the config asks
    returns: torch.Tensor  # [B] value targets (advantages before standardization + old values)
    values_old: torch.Tensor  # [B] V(obs) under the sampling weights
    mask: torch.Tensor | None  # [B, n] bool legal actions, for masked policies
    explained_variance: float  # of the returns by the old values (nan when the returns are constant)

    def columns(self) -> list[torch.Tensor]:
        """The per-step tensors in the order losses take them (the mask last, when there is one)."""
        cols = [self.obs, self.actions, self.logp_old, self.advantages, self.returns, self.values_old]
        return cols if self.mask is None else [*cols, self.mask]


def prepare_batch(
    model: torch.nn.Module, dist, batch: Rollout, gamma: float, lam: float, normalize_advantages: bool
) -> OnPolicyBatch:
    """Old log-probs and values for the whole fragment in one batched forward (the runner only
    sampled actions; values[T] is V(obs after the last step), the bootstrap), GAE over [T, N], then
    the valid steps only: autoreset-only steps and padding are dropped. A fragment sampled while the
    learner moved on (sample_async) brings the log-probs of the weights that sampled it: those are
    the old log-probs then, so the PPO ratio corrects for the policy lag."""
    T, N = batch.rewards.shape
    obs = torch.from_numpy(np.asarray(batch.obs))  # [T+1, N, D] (frame stacks gathered)
    actions = torch.from_numpy(batch.actions.reshape(T * N, *batch.actions.shape[2:]))
    mask = None if batch.action_mask is None else torch.from_numpy(batch.action_mask[:T].reshape(T * N, -1))
    with torch.no_grad():
        dist_inputs, values = model(obs.reshape((T + 1) * N, -1))
        if batch.behaviour_logp is not None:
            logp_old = torch.from_numpy(batch.behaviour_logp.reshape(T * N))
        else:
            logp_old, _ = dist.log_prob_entropy(masked(dist_inputs[: T * N], mask), actions, False)
    values_np = values.numpy().reshape(T + 1, N)
    adv, returns = compute_gae(
        batch.rewards, values_np[:-1], batch.terminated, batch.truncated, values_np[1:], gamma, lam
    )

    valid_np = np.flatnonzero(batch.valid.reshape(-1))
    valid = torch.from_numpy(valid_np)
    adv = adv.reshape(-1)[valid_np]
    if normalize_advantages and len(adv) > 1:
        # standardized over the whole batch, as RLlib does (SB3 and CleanRL: per minibatch; the same
        # when an epoch is one minibatch, and one set of ops per iteration instead of per step)
        adv = (adv - adv.mean()) / (adv.std(ddof=1) + 1e-8)
    return OnPolicyBatch(
        obs=obs[:T].reshape(T * N, -1)[valid],
        actions=actions[valid],
        logp_old=logp_old[valid],
        advantages=torch.from_numpy(adv),
        returns=torch.from_numpy(returns.reshape(-1)[valid_np]),
        values_old=values[: T * N][valid],
        mask=None if mask is None else mask[valid],
        explained_variance=explained_variance(returns[batch.valid], values_np[:-1][batch.valid]),
    )


class OnPolicyAlgorithm(Algorithm):
    """Sample one fragment, then update each trained policy on its own batch. Subclasses give the
    optimizer (make_optimizer) and the update (update_policy)."""

    config: OnPolicyConfig
    samples_on_ray = True  # its update reads one [T, N] fragment, however many runners filled it
    samples_async = True

    def setup(self) -> None:
        self.num_updates = 0  # training steps, for broadcast_interval

    def build_learner(self, learner: Learner) -> None:
        learner.add_optimizer(
            MAIN_OPTIMIZER, learner.policy.model, lambda flat, lr: self.make_optimizer(flat, learner.config)
        )

    @abstractmethod
    def make_optimizer(self, flat: FlatParameters, config: AlgorithmConfig) -> FlatOptimizer:
        """The optimizer of one policy's parameters."""

    @abstractmethod
    def update_policy(self, policy_id: str, batch: Rollout) -> dict[str, float]:
        """Update one policy on its [T, N] rollout; return its statistics."""

    def training_step(self) -> dict[str, float]:
        batches = self.sample()
        out: dict[str, float] = {}
        for pid in self.policies_to_train:
            if pid not in batches:  # no agent of this policy acted in this fragment
                continue
            stats = self.update_policy(pid, batches[pid])
            out.update({f"learner/{pid}/{k}": v for k, v in stats.items()} if self.is_multi_agent else stats)
        self.num_updates += 1
        if self.num_updates % self.config.broadcast_interval == 0:  # to runners sampling while we learn
            self.env_runner_group.broadcast()
        return out

    def apply_gradients(
        self, policy_id: str, loss: torch.Tensor, batch: Rollout, lr: float, grad_norms: list[torch.Tensor]
    ) -> None:
        """One step of one policy's optimizer on `loss` (its learner's step): checked finite first,
        gradients clipped at grad_clip (the norm before clipping appended to grad_norms)."""
        self.check_finite(loss, batch, policy_id, lr)
        norms = self.learners[policy_id].step(loss, MAIN_OPTIMIZER)
        if MAIN_OPTIMIZER in norms:
            grad_norms.append(norms[MAIN_OPTIMIZER])

    @staticmethod
    def update_stats(
        names: tuple[str, ...],
        stats: list[torch.Tensor],
        grad_norms: list[torch.Tensor],
        explained_variance: float,
        lr: float,
    ) -> dict[str, float]:
        """An update's statistics: the minibatches' means, the mean gradient norm, the explained
        variance of the value targets and the lr."""
        out = dict(zip(names, torch.stack(stats).mean(0).tolist()))
        if grad_norms:
            out["grad_norm"] = float(torch.stack(grad_norms).mean())
        out["explained_variance"] = explained_variance
        out["cur_lr"] = lr
        return out

    def check_finite(self, loss: torch.Tensor, batch: Rollout, policy_id: str, lr: float) -> None:
        """Raise TrainingError, before the step, when the loss is NaN or inf."""
        if math.isfinite(loss.item()):
            return
        # the env runners refuse NaN/inf from the env, so this is the update diverging; the batch is
        # looked at again here (on the error path only) in case something changed it
        cause = (
            "its batch is finite, so the update diverged"
            if np.isfinite(batch.obs).all() and np.isfinite(batch.rewards).all()
            else "its batch holds NaN/inf observations or rewards, changed after sampling (a callback?)"
        )
        raise TrainingError(
            f"{type(self).__name__} loss became {loss.item()} at iteration {self.iteration + 1}"
            f"{'' if policy_id == DEFAULT_POLICY_ID else f' (policy {policy_id!r})'}: "
            f"{cause}. The update was not applied, so the weights are still finite. "
            f"Lower lr (now {lr}), set grad_clip, or normalize observations/rewards "
            f"(observation_filter='MeanStdFilter')."
        )
