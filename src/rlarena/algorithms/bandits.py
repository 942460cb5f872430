"""Linear contextual bandits: LinUCB (Li et al. 2010, arXiv:1003.0146) and linear Thompson sampling
(LinTS, Agrawal and Goyal 2013, arXiv:1209.3352). Config, policy, update.

Each arm's reward is modelled as linear in a context x, with a ridge-regression posterior

    A = lambda_ I + sum_t x_t x_t^T,   b = sum_t r_t x_t,   theta = A^-1 b

kept exactly: A^-1 is updated by Sherman-Morrison after every reward (rank one, O(d^2), no solve):

    (A + x x^T)^-1 = A^-1 - (A^-1 x)(A^-1 x)^T / (1 + x^T A^-1 x)

Arms are chosen by
    LinUCB:  argmax_a theta_a . x + alpha sqrt(x^T A_a^-1 x)                        (Li et al., eq. 5)
    LinTS:   argmax_a theta~_a . x,  theta~_a ~ N(theta_a, v^2 A_a^-1)              (Agrawal & Goyal, Alg. 1)
    greedy:  argmax_a theta_a . x     (explore=False: evaluation, compute_single_action(explore=False))

Two observation shapes, as RLlib's bandit models: a context Box of shape [d] gives every arm its own
posterior (Li et al.'s disjoint model); a Box of shape [k, d] (k = the number of arms) gives each arm
its own features and all arms one shared posterior (the shared part of Li et al.'s hybrid model;
RLlib's parametric model), e.g. rlarena.envs.bandits.RecommenderEnv's user-item features.

Training steps the vector env here (not through the generic runner, which ignores infos): one action
per env, then one update per reward, so the posterior is current at every decision (RLlib's bandits
do the same with one env, rollout_fragment_length 1 and train_batch_size 1). Envs that report
info["regret"] (rlarena.envs.bandits) get `cumulative_regret` and `regret_this_iter` in the results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from rlarena.algorithms.algorithm import Algorithm, _seed_for
from rlarena.algorithms.config import AlgorithmConfig, NotProvided, NotProvidedType, option, provided
from rlarena.errors import ConfigError, EnvError
from rlarena.limits import count_parameters
from rlarena.policies.policy import MASKED_LOGIT, is_masked_space
from rlarena.policies.torch_policy import TrainablePolicy

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11 on


@dataclass
class BanditConfig(AlgorithmConfig):
    """Options shared by LinUCB and LinTS (RLlib's BanditConfig: one env, 100 env steps per train())."""

    num_envs_per_env_runner: int = option(1, "env_runners")  # RLlib's; N envs: N decisions per posterior update round
    lambda_: float = option(1.0, "training")  # ridge prior A = lambda_ I (RLlib's OnlineLinearRegression lambda_)
    min_sample_timesteps_per_iteration: int = option(
        100, "training", bound="MAX_BATCH"
    )  # env steps per train() (RLlib's)

    def training(
        self,
        *,
        lambda_: float | NotProvidedType = NotProvided,
        min_sample_timesteps_per_iteration: int | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """The options declared above; the others go to AlgorithmConfig.training()."""
        return super().training(**provided(locals()))

    def validate(self) -> None:
        super().validate()
        self._check("lambda_", self.lambda_ > 0, "must be > 0 (the ridge prior's precision)")
        self._check("min_sample_timesteps_per_iteration", self.min_sample_timesteps_per_iteration >= 1, "must be >= 1")
        self._check(
            "observation_filter",
            self.observation_filter == "NoFilter",
            "must be 'NoFilter' for bandits: a moving normalization would change the features the "
            "linear posterior has already absorbed",
        )
        self._check("policies", self.policies is None, "must be None: LinUCB and LinTS are single-agent")
        self._check(
            "lr_schedule",
            self.lr_schedule is None,
            "must be None: LinUCB and LinTS learn by closed-form updates (no learning rate)",
        )


@dataclass
class LinUCBConfig(BanditConfig):
    alpha: float = option(1.0, "training")  # the width of the confidence bound (RLlib's and Li et al.'s alpha)

    def training(self, *, alpha: float | NotProvidedType = NotProvided, **kwargs: Any) -> Self:
        """The options declared above; the others go to BanditConfig.training()."""
        return super().training(**provided(locals()))

    def validate(self) -> None:
        super().validate()
        self._check("alpha", math.isfinite(self.alpha) and self.alpha >= 0, "must be >= 0 (0: greedy)")


@dataclass
class LinTSConfig(BanditConfig):
    # v in Agrawal & Goyal: the posterior's scale; their bound's v = R sqrt(24 d ln(1/delta) / eps) is far
    # too cautious in practice, so the default samples the plain ridge posterior (v = 1), as RLlib does
    posterior_scale: float = option(1.0, "training")

    def training(self, *, posterior_scale: float | NotProvidedType = NotProvided, **kwargs: Any) -> Self:
        """The options declared above; the others go to BanditConfig.training()."""
        return super().training(**provided(locals()))

    def validate(self) -> None:
        super().validate()
        self._check(
            "posterior_scale",
            math.isfinite(self.posterior_scale) and self.posterior_scale >= 0,
            "must be >= 0 (0: greedy)",
        )


class LinearPosterior(torch.nn.Module):
    """The ridge posteriors as buffers (float64): a_inv [M, d, d], b [M, d], theta [M, d], counts [M].
    M is the number of arms (disjoint model) or 1 (shared model). Its forward pass, the greedy expected
    rewards [B, k] of float32 observations [B, D], is what ONNX export writes."""

    a_inv: torch.Tensor  # the buffers registered in __init__
    b: torch.Tensor
    theta: torch.Tensor
    counts: torch.Tensor

    def __init__(self, num_models: int, dim: int, num_arms: int, lambda_: float):
        super().__init__()
        self.dim, self.num_arms, self.shared = dim, num_arms, num_models == 1 and num_arms > 1
        count_parameters(num_models * (dim * dim + 2 * dim + 1), "linear posterior")
        self.register_buffer("a_inv", torch.eye(dim, dtype=torch.float64).repeat(num_models, 1, 1) / lambda_)
        self.register_buffer("b", torch.zeros(num_models, dim, dtype=torch.float64))
        self.register_buffer("theta", torch.zeros(num_models, dim, dtype=torch.float64))
        self.register_buffer("counts", torch.zeros(num_models, dtype=torch.int64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        theta = self.theta.to(x.dtype)
        if self.shared:
            return x.reshape(-1, self.num_arms, self.dim) @ theta[0]  # -1: a dynamic batch axis in ONNX
        return x @ theta.T


class LinearBanditPolicy(TrainablePolicy):
    """LinUCB / LinTS / greedy arm choice over a LinearPosterior; `update` adds rewards to it."""

    model: LinearPosterior
    output_names = ("expected_reward", "value")  # ONNX: greedy expected reward per arm, and its max

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        model_config: dict | None = None,
        observation_filter: str = "NoFilter",
        seed: int | None = None,
        *,
        exploration: str = "ucb",
        alpha: float = 1.0,
        posterior_scale: float = 1.0,
        lambda_: float = 1.0,
    ):
        if not isinstance(action_space, gym.spaces.Discrete):
            raise ConfigError(
                f"LinUCB and LinTS choose among discrete arms: the action space must be Discrete, got {action_space}."
            )
        super().__init__(observation_space, action_space, observation_filter, seed)
        inner = observation_space["observation"] if is_masked_space(observation_space) else observation_space
        k = int(action_space.n)
        shape = tuple(getattr(inner, "shape", None) or ())
        if not isinstance(inner, gym.spaces.Box) or len(shape) not in (1, 2) or (len(shape) == 2 and shape[0] != k):
            raise ConfigError(
                f"LinUCB and LinTS need a Box context of shape [d] (one posterior per arm) or "
                f"[num_arms={k}, d] (per-arm features, one shared posterior); got {inner}."
            )
        if exploration not in ("ucb", "thompson"):
            raise ConfigError(f"Unknown bandit exploration {exploration!r}: 'ucb' (LinUCB) or 'thompson' (LinTS).")
        self.num_arms, self.dim = k, shape[-1]
        self.shared = len(shape) == 2
        self.exploration, self.alpha, self.posterior_scale = exploration, alpha, posterior_scale
        self.model = LinearPosterior(1 if self.shared else k, self.dim, k, lambda_)
        # numpy views of the buffers: load_state_dict copies into them in place, so the views stay live
        self._a_inv, self._b = self.model.a_inv.numpy(), self.model.b.numpy()
        self._theta, self._counts = self.model.theta.numpy(), self.model.counts.numpy()
        self._chol: np.ndarray | None = None  # Cholesky factors of a_inv for LinTS, dropped after each update

    def contexts(self, x: np.ndarray) -> np.ndarray:
        """Flat observations [B, D] -> float64 contexts [B, d] (disjoint) or [B, k, d] (shared)."""
        x = np.asarray(x, np.float64)
        return x.reshape(len(x), self.num_arms, self.dim) if self.shared else x

    # -- actions ------------------------------------------------------------------------------
    def scores(self, x: np.ndarray, explore: bool) -> np.ndarray:
        """[B, k]: the UCB, a Thompson sample, or (explore=False) the expected reward of each arm."""
        ctx = self.contexts(x)
        mean = ctx @ self._theta[0] if self.shared else ctx @ self._theta.T
        if not explore:
            return mean
        if self.exploration == "ucb":
            if self.shared:  # x_a^T A^-1 x_a for each arm's features
                var = ((ctx @ self._a_inv[0]) * ctx).sum(-1)
            else:  # [k, B, d] -> [B, k]
                var = ((ctx @ self._a_inv) * ctx).sum(-1).T
            return mean + self.alpha * np.sqrt(np.maximum(var, 0.0))
        if self._chol is None:  # symmetrized: rounding leaves A^-1 a hair off symmetric
            self._chol = np.linalg.cholesky(0.5 * (self._a_inv + self._a_inv.transpose(0, 2, 1)))
        z = self.rng.standard_normal((len(ctx), *self._theta.shape))  # [B, M, d]: one draw per decision
        noise = self.posterior_scale * np.einsum("mde,bme->bmd", self._chol, z)  # ~ N(0, v^2 A^-1)
        if self.shared:
            return np.einsum("bkd,bd->bk", ctx, noise[:, 0]) + mean
        return np.einsum("bd,bkd->bk", ctx, noise) + mean

    def sample(self, x: np.ndarray, explore: bool = True, mask: np.ndarray | None = None) -> np.ndarray:
        scores = self.scores(x, explore)
        if mask is not None:  # an illegal arm is never chosen
            scores = np.where(mask, scores, -np.inf)
        return scores.argmax(-1)

    def export_outputs(self, x: torch.Tensor, action_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        expected = self.model(x)
        if action_mask is not None:
            expected = torch.where(action_mask != 0, expected, torch.full_like(expected, MASKED_LOGIT))
        return expected, expected.max(-1).values

    # -- the update ---------------------------------------------------------------------------
    def update(self, x: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        """Add (context, arm, reward) rows to the posteriors, one Sherman-Morrison step per row. Rows
        for different posteriors are applied together; rows for the same one in order, in rounds."""
        if len(actions) == 0:
            return
        ctx, actions = self.contexts(x), np.asarray(actions, np.int64)
        rewards = np.asarray(rewards, np.float64)
        if self.shared:  # the chosen arm's features, all into posterior 0
            feats, models = ctx[np.arange(len(ctx)), actions], np.zeros(len(ctx), np.int64)
        else:
            feats, models = ctx, actions
        if len(models) == 1:  # the common case (one env): one round, no sorting
            rounds, touched = [np.zeros(1, np.int64)], models
        else:
            order = np.argsort(models, kind="stable")
            first = np.searchsorted(models[order], models[order])
            rank = np.empty(len(models), np.int64)
            rank[order] = np.arange(len(models)) - first  # the row's place among its posterior's rows
            rounds, touched = [np.flatnonzero(rank == r) for r in range(int(rank.max()) + 1)], np.unique(models)
        a_inv, b = self._a_inv, self._b
        for rows in rounds:
            m, f = models[rows], feats[rows]  # distinct posteriors in this round
            u = (a_inv[m] @ f[:, :, None])[:, :, 0]  # A^-1 x
            a_inv[m] -= u[:, :, None] * u[:, None, :] / (1.0 + (f * u).sum(-1))[:, None, None]
            b[m] += rewards[rows, None] * f
            self._counts[m] += 1
        self._theta[touched] = (a_inv[touched] @ b[touched][:, :, None])[:, :, 0]
        self._chol = None

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        super().set_state(state)
        self._chol = None


class LinearBandit(Algorithm):
    """LinUCB and LinTS: the loop (step, update, count regret) and the regret counters' checkpoints."""

    config_class: ClassVar[type[AlgorithmConfig]] = BanditConfig
    policy_class: ClassVar[type[TrainablePolicy]] = LinearBanditPolicy
    exploration: ClassVar[str] = "ucb"
    data_mode = "none"  # its own loop: no logged data in or out
    config: BanditConfig

    def make_policy(
        self, observation_space: Any, action_space: Any, config: AlgorithmConfig, seed: int | None
    ) -> TrainablePolicy:
        assert isinstance(config, BanditConfig)
        return LinearBanditPolicy(
            observation_space,
            action_space,
            config.model_config,
            config.observation_filter,
            seed,
            exploration=self.exploration,
            alpha=getattr(config, "alpha", 0.0),
            posterior_scale=getattr(config, "posterior_scale", 0.0),
            lambda_=config.lambda_,
        )

    def setup(self) -> None:
        self.cumulative_regret = 0.0  # lifetime sum of info["regret"]
        self.regret_steps = 0  # lifetime steps whose info had a regret
        self.register_state("bandit", self._regret_state, self._set_regret_state)
        self._reset_envs(_seed_for(self.config.seed, 5, 0))

    def _regret_state(self) -> dict[str, np.ndarray]:
        return {
            "cumulative_regret": np.array([self.cumulative_regret]),
            "regret_steps": np.array([self.regret_steps], np.int64),
        }

    def _set_regret_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.cumulative_regret = float(arrays["cumulative_regret"][0])
        self.regret_steps = int(arrays["regret_steps"][0])

    def _reset_envs(self, seed: int | None) -> None:
        self._obs, _ = self.env.reset(seed=seed)
        self._pending = np.zeros(self.env.num_envs, bool)  # next-step autoreset: the next step() resets these
        self._ep_return = np.zeros(self.env.num_envs)
        self._ep_len = np.zeros(self.env.num_envs, np.int64)

    def training_step(self) -> dict[str, float]:
        env, policy, n = self.env, self.policy, self.env.num_envs
        assert isinstance(policy, LinearBanditPolicy)
        regret, regret_steps, reward_sum, updates = 0.0, 0, 0.0, 0
        for _ in range(-(-self.config.min_sample_timesteps_per_iteration // n)):
            x = policy.flatten(self._obs)
            actions = policy.sample(x, True, policy.action_mask(self._obs))
            self._obs, rewards, terminated, truncated, info = env.step(actions)
            valid = ~self._pending  # a pending copy only reset: its action was ignored
            if not (np.isfinite(rewards).all() and np.isfinite(x).all()):  # NaN would poison the posterior for good
                raise EnvError(
                    f"Env {self.env_name!r} gave a non-finite context or reward (rewards {rewards}); "
                    f"LinUCB and LinTS cannot learn from NaN/inf."
                )
            policy.update(x[valid], actions[valid], rewards[valid])
            updates += int(valid.sum())
            reward_sum += float(rewards[valid].sum())
            if "regret" in info:
                has = np.asarray(info["_regret"], bool) & valid
                regret += float(np.asarray(info["regret"], np.float64)[has].sum())
                regret_steps += int(has.sum())
            self._ep_return += np.where(valid, rewards, 0.0)
            self._ep_len += valid
            done = (terminated | truncated) & valid
            if done.any():
                self.episode_stats.add(self._ep_return[done], self._ep_len[done])
                self._ep_return[done], self._ep_len[done] = 0.0, 0
            if done.all():  # every bandit episode ends here: reset now rather than waste a step on it
                self._obs, _ = env.reset()
                self._pending = np.zeros(n, bool)
            else:
                self._pending = done
            self.num_env_steps_sampled_lifetime += n
        self.cumulative_regret += regret
        self.regret_steps += regret_steps
        out = {"mean_reward_this_iter": reward_sum / max(updates, 1), "num_updates": float(updates)}
        if regret_steps:
            out.update(
                cumulative_regret=self.cumulative_regret,
                regret_this_iter=regret,
                regret_per_step_this_iter=regret / regret_steps,
            )
        return out

    # -- checkpoints --------------------------------------------------------------------------
    def _restore(self, meta: dict[str, Any], arrays: dict[str, dict[str, np.ndarray]]) -> None:
        super()._restore(meta, arrays)
        # env state is not saved: fresh contexts, reproducibly for this iteration
        self._reset_envs(_seed_for(self.config.seed, 5, self.iteration))


class LinUCB(LinearBandit):
    config_class = LinUCBConfig
    exploration = "ucb"


class LinTS(LinearBandit):
    config_class = LinTSConfig
    exploration = "thompson"


LinUCBConfig.algo_class = LinUCB
LinTSConfig.algo_class = LinTS
