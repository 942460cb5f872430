"""MARWIL (Wang et al. 2018, "Exponentially Weighted Imitation Learning for Batched Historical Data")
and behaviour cloning (BC, MARWIL with beta = 0): learn a policy from logged episodes alone.

    A_t = R_t - V(s_t)                     R_t: the discounted return-to-go of the logged episode
    c  <- c + rate (mean(A^2) - c)         the moving average of the squared advantage norm
    L  = -mean(exp(beta A_t / sqrt(c)) log pi(a_t | s_t)) + vf_coeff 0.5 mean(A^2)

The weights exp(.) are constants (no gradient), so the policy imitates the logged actions in
proportion to how much better than expected they turned out. BC (beta = 0) imitates them all alike
and trains no value function. Returns-to-go are computed per logged episode when the data is read
(rlarena.offline.io); where an episode was truncated (a time limit) or cut, gamma^k V(its last
new_obs) is added, with the value function of the moment (RLlib's bootstrap): without it, the states
before a time limit look bad for a reason the observation does not show (CartPole's expert data: MARWIL
stayed near 150).

Names and defaults are RLlib's MARWIL and BC: lr 1e-4, beta 1.0, vf_coeff 1.0,
moving_average_sqd_adv_norm_update_rate 1e-8 and _start 100.0, bc_logstd_coeff 0.0 (Box actions:
+coeff * sum(log_std) in the weighted term, for more spread), train_batch_size 2000 rows per
iteration. Added: minibatch_size (rows per gradient step; None: the whole batch, one step, as RLlib) and
normalize_weights (True: the weights divided by their minibatch mean; False: RLlib's loss exactly).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rlarena.algorithms.algorithm import DEFAULT_POLICY_ID, MAIN_OPTIMIZER, Algorithm
from rlarena.algorithms.config import AlgorithmConfig, NotProvided, NotProvidedType, option, provided
from rlarena.algorithms.sequences import Precomputed
from rlarena.learners import Learner
from rlarena.nn.flat import Adam
from rlarena.policies.recurrent_policy import RecurrentPolicy
from rlarena.policies.torch_policy import TorchPolicy

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11 on

MAX_EXPONENT = 20.0  # exp(beta A / sqrt(c)) is capped at e^20: one outlier return must not overflow the loss


@dataclass
class MARWILConfig(AlgorithmConfig):
    """MARWIL's options, RLlib's names and defaults."""

    lr: float = option(1e-4, "training")
    train_batch_size: int = option(2000, "training")
    minibatch_size: int | None = option(
        None, "training", bound="MAX_BATCH"
    )  # None: one gradient step on the whole batch
    beta: float = option(1.0, "training")  # 0: behaviour cloning
    vf_coeff: float = option(1.0, "training")
    bc_logstd_coeff: float = option(0.0, "training")
    moving_average_sqd_adv_norm_update_rate: float = option(1e-8, "training")
    moving_average_sqd_adv_norm_start: float = option(100.0, "training")
    # ours (RLlib: False): the weights divided by their minibatch mean, so the policy's gradient keeps its
    # scale while the value function fits (the weights fell 500x on CartPole, and Adam's second moments,
    # set by the first large gradients, then all but froze the policy)
    normalize_weights: bool = option(True, "training")

    def training(
        self,
        *,
        lr: float | NotProvidedType = NotProvided,
        train_batch_size: int | NotProvidedType = NotProvided,
        minibatch_size: int | None | NotProvidedType = NotProvided,
        beta: float | NotProvidedType = NotProvided,
        vf_coeff: float | NotProvidedType = NotProvided,
        bc_logstd_coeff: float | NotProvidedType = NotProvided,
        moving_average_sqd_adv_norm_update_rate: float | NotProvidedType = NotProvided,
        moving_average_sqd_adv_norm_start: float | NotProvidedType = NotProvided,
        normalize_weights: bool | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """The options declared above; the others go to AlgorithmConfig.training()."""
        return super().training(**provided(locals()))

    def validate(self) -> None:
        super().validate()
        self._check("beta", self.beta >= 0, "must be >= 0 (0: behaviour cloning)")
        self._check("vf_coeff", self.vf_coeff >= 0, "must be >= 0")
        self._check(
            "minibatch_size",
            self.minibatch_size is None or 1 <= self.minibatch_size <= self.train_batch_size,
            f"must be in [1, train_batch_size={self.train_batch_size}] or None",
        )
        self._check(
            "moving_average_sqd_adv_norm_update_rate",
            0 <= self.moving_average_sqd_adv_norm_update_rate <= 1,
            "must be in [0, 1]",
        )
        self._check("moving_average_sqd_adv_norm_start", self.moving_average_sqd_adv_norm_start > 0, "must be > 0")


@dataclass
class BCConfig(MARWILConfig):
    """Behaviour cloning: MARWIL with beta = 0 (RLlib's BCConfig)."""

    beta: float = option(0.0, "training")


def marwil_loss(
    model,
    dist,
    cfg: MARWILConfig,
    obs: torch.Tensor,
    actions: torch.Tensor,
    returns: torch.Tensor | None,
    ma_adv_norm: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor], float]:
    """(loss, stats, the updated moving average of the squared advantage norm) for one minibatch;
    `returns` the (bootstrapped) returns-to-go, targets without gradient (None for BC: beta 0)."""
    dist_inputs, values = model(obs)
    logp, _ = dist.log_prob_entropy(dist_inputs, actions, False)
    if cfg.bc_logstd_coeff and getattr(model, "log_std", None) is not None:
        logp = logp + cfg.bc_logstd_coeff * model.log_std.sum()
    stats: dict[str, torch.Tensor] = {"logp": logp.mean().detach()}
    if cfg.beta == 0:
        policy_loss = -logp.mean()
        loss = policy_loss
    else:
        assert returns is not None  # with beta > 0 the batches carry returns (training_step asks for them)
        adv = returns - values
        adv_sq = adv.pow(2).mean()
        ma_adv_norm += cfg.moving_average_sqd_adv_norm_update_rate * (adv_sq.item() - ma_adv_norm)
        weights = torch.exp(torch.clamp(cfg.beta * adv.detach() / (1e-8 + math.sqrt(ma_adv_norm)), max=MAX_EXPONENT))
        if cfg.normalize_weights:
            weights = weights / weights.mean()
        policy_loss = -(weights * logp).mean()
        vf_loss = 0.5 * adv_sq
        loss = policy_loss + cfg.vf_coeff * vf_loss
        var = returns.var()
        stats.update(
            vf_loss=vf_loss.detach(),
            mean_weight=weights.mean(),
            explained_variance=(1 - (returns - values).var() / var).detach() if var > 0 else var * 0,
        )
    stats["policy_loss"] = policy_loss.detach()
    return loss, stats, ma_adv_norm


@dataclass
class MARWILProgress:
    """What MARWIL's learner keeps beside Adam: c, the moving average of the squared advantage norm, and
    the logged rows trained on (the learner's clock: an offline run samples no env steps, so its lr
    schedule runs over the rows it has trained on). Saved as the learner's state "learner"."""

    ma_adv_norm: float
    num_rows_trained_lifetime: int = 0

    def get_state(self) -> dict[str, np.ndarray]:
        return {
            "ma_adv_norm": np.array(self.ma_adv_norm, np.float64),
            "num_rows_trained_lifetime": np.array(self.num_rows_trained_lifetime, np.int64),
        }

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        self.ma_adv_norm = float(np.asarray(state["ma_adv_norm"]).reshape(-1)[0])
        self.num_rows_trained_lifetime = int(np.asarray(state["num_rows_trained_lifetime"]).reshape(-1)[0])


class MARWILLearner(Learner):
    """MARWIL's learner: Adam, and its MARWILProgress (set by MARWIL.build_learner)."""

    progress: MARWILProgress


class MARWIL(Algorithm):
    """Reads rows of logged episodes (with their returns-to-go) and takes gradient steps on them."""

    supports_memory = True  # whole logged episodes unrolled (recurrent_step)
    config_class = MARWILConfig
    config: MARWILConfig
    data_mode = "offline"
    learner_class = MARWILLearner
    # a checkpoint written before the advantage norm was saved has none: it keeps its start value
    restore_missing_ok = ("learner",)

    def setup(self) -> None:
        self._batches: Any = None  # the stream of logged batches, started at the first training step

    def build_learner(self, learner: Learner) -> None:
        learner.add_optimizer(MAIN_OPTIMIZER, learner.policy.model, lambda flat, lr: Adam(flat, lr=lr))
        assert isinstance(learner, MARWILLearner)
        progress = learner.progress = MARWILProgress(learner.config.moving_average_sqd_adv_norm_start)
        learner.register_state("learner", progress.get_state, progress.set_state)
        learner.clock = lambda: progress.num_rows_trained_lifetime

    @property
    def progress(self) -> MARWILProgress:
        learner = self.learners[DEFAULT_POLICY_ID]
        assert isinstance(learner, MARWILLearner)
        return learner.progress

    @property
    def ma_adv_norm(self) -> float:
        """c: the moving average of the squared advantage norm (the learner's)."""
        return self.progress.ma_adv_norm

    @property
    def num_rows_trained_lifetime(self) -> int:
        """Logged rows trained on so far (the learner's)."""
        return self.progress.num_rows_trained_lifetime

    def training_step(self) -> dict[str, float]:
        cfg, policy, learner = self.config, self.policy, self.learners[DEFAULT_POLICY_ID]
        assert isinstance(policy, TorchPolicy)  # the actor-critic policy_class MARWIL trains (Algorithm's default)
        model, dist, progress = policy.model, policy.dist, self.progress
        if isinstance(policy, RecurrentPolicy):
            return self.recurrent_step(policy, learner)
        if self._batches is None:
            gamma = cfg.gamma if cfg.beta > 0 else None  # BC needs no returns
            self._batches = self.offline_data.batches(cfg.train_batch_size, self.rng, gamma=gamma)
        batch = next(self._batches)
        if policy.obs_filter is not None:  # MeanStdFilter: its statistics come from the data read
            policy.obs_filter.update(batch["obs"])
        obs = torch.from_numpy(np.ascontiguousarray(policy.normalize(batch["obs"])))
        actions = torch.from_numpy(batch["actions"])
        returns = None
        if "returns" in batch:  # + gamma^k V(s_T) where the logged episode was truncated or cut (RLlib's bootstrap)
            with torch.no_grad():
                final = torch.from_numpy(np.ascontiguousarray(policy.normalize(batch["bootstrap_obs"])))
                returns = torch.from_numpy(batch["returns"]) + torch.from_numpy(
                    batch["bootstrap_discount"]
                ) * model.value(final)
        n = len(obs)
        size = cfg.minibatch_size or n
        order = self.rng.permutation(n) if size < n else np.arange(n)
        totals: dict[str, float] = {}
        steps = 0
        for start in range(0, n - size + 1, size):
            idx = torch.from_numpy(order[start : start + size])
            loss, stats, progress.ma_adv_norm = marwil_loss(
                model,
                dist,
                cfg,
                obs[idx],
                actions[idx],
                None if returns is None else returns[idx],
                progress.ma_adv_norm,
            )
            learner.check_finite(
                loss,
                f"loss at iteration {self.iteration + 1}",
                "With beta > 0, a smaller beta may help. " if cfg.beta > 0 else "",
            )
            learner.step(loss, MAIN_OPTIMIZER)
            for key, value in stats.items():
                totals[key] = totals.get(key, 0.0) + float(value)
            steps += 1
        progress.num_rows_trained_lifetime += n
        out = {k: v / steps for k, v in totals.items()}
        if cfg.beta > 0:
            out["moving_average_sqd_adv_norm"] = progress.ma_adv_norm
        out.update(
            num_env_steps_trained_this_iter=n,
            num_env_steps_trained_lifetime=progress.num_rows_trained_lifetime,
            num_gradient_steps=steps,
        )
        return out

    def recurrent_step(self, policy: RecurrentPolicy, learner: Learner) -> dict[str, float]:
        """One gradient step on whole logged episodes (train_batch_size rows or a little more, whole
        episodes), each unrolled from a zero state at its start; the loss counts the logged steps. The
        value of an episode's last new_obs (to bootstrap a truncated or cut episode's returns) is the
        model's after the episode's steps."""
        cfg, progress = self.config, self.progress
        model, dist = policy.model, policy.dist
        if self._batches is None:
            gamma = cfg.gamma if cfg.beta > 0 else None
            self._batches = self.offline_data.episode_batches(cfg.train_batch_size, self.rng, gamma=gamma)
        batch = next(self._batches)
        valid_np = batch["valid"]
        L1, M = batch["obs"].shape[:2]
        flat_obs = batch["obs"].reshape(L1 * M, -1)
        if policy.obs_filter is not None:
            policy.obs_filter.update(flat_obs[np.append(valid_np, np.zeros((1, M), bool), 0).reshape(-1)])
        obs = torch.from_numpy(np.ascontiguousarray(policy.normalize(flat_obs)).reshape(L1, M, -1))
        extra = None
        if model.extra_dim:  # the previous action and reward, from the logged steps (zero at the start)
            prev = np.zeros((L1, M, model.extra_dim), np.float32)
            actions_np = batch["actions"]
            if policy.use_prev_action:
                width = sum(n for _, n in policy._action_blocks)
                encoded = policy.encode_actions(actions_np.reshape(L1 - 1, M, -1).reshape((L1 - 1) * M, -1))
                prev[1:, :, :width] = encoded.reshape(L1 - 1, M, width)
            if policy.use_prev_reward:
                prev[1:, :, -1] = batch["rewards"]
            extra = torch.from_numpy(prev)
        starts = torch.zeros((L1, M), dtype=torch.bool)
        state0 = torch.zeros(M, policy.state_size)
        inputs, values, _ = model.unroll(obs, state0, starts, extra)
        valid = torch.from_numpy(valid_np)
        returns = None
        if "returns" in batch:
            lengths = torch.from_numpy(valid_np.sum(0))
            with torch.no_grad():
                final_values = values.detach()[lengths, torch.arange(M)]  # V(last new_obs), after the episode
            returns = torch.from_numpy(batch["returns"]) + torch.from_numpy(batch["bootstrap_discount"]) * final_values
            returns = returns[valid]
        actions = torch.from_numpy(batch["actions"])[valid]
        loss, stats, progress.ma_adv_norm = marwil_loss(
            Precomputed(model, inputs[:-1][valid], values[:-1][valid]),
            dist,
            cfg,
            obs[:-1][valid],
            actions,
            returns,
            progress.ma_adv_norm,
        )
        learner.check_finite(loss, f"loss at iteration {self.iteration + 1}", "")
        learner.step(loss, MAIN_OPTIMIZER)
        n = int(valid_np.sum())
        progress.num_rows_trained_lifetime += n
        out = {k: float(v) for k, v in stats.items()}
        if cfg.beta > 0:
            out["moving_average_sqd_adv_norm"] = progress.ma_adv_norm
        out.update(
            num_env_steps_trained_this_iter=n,
            num_env_steps_trained_lifetime=progress.num_rows_trained_lifetime,
            num_gradient_steps=1,
        )
        return out

    def _restore(self, meta: dict[str, Any], arrays: dict[str, dict[str, np.ndarray]]) -> None:
        # a checkpoint written before learners (format 1) holds the advantage norm and the rows counter in
        # MARWIL's own group "marwil"
        group = f"learner.{DEFAULT_POLICY_ID}"
        if group not in arrays and "marwil" in arrays:
            arrays = {**arrays, group: arrays["marwil"]}
        super()._restore(meta, arrays)


class BC(MARWIL):
    """Behaviour cloning (MARWIL with beta = 0)."""

    config_class = BCConfig


MARWILConfig.algo_class = MARWIL
BCConfig.algo_class = BC
