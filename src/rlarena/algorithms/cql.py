"""Conservative Q-Learning (Kumar et al. 2020, arXiv:2006.04779): CQL(H) on SAC, learned from logged
episodes only (.offline_data(input_=DIR)), Box actions.

Each gradient step reads a batch of logged transitions (env actions mapped to the actor's [-1, 1]
units), then updates, as RLlib's CQL (rllib/algorithms/cql/cql_torch_policy.py, the old stack, and
torch/cql_torch_learner.py):
- alpha (SAC's temperature): loss log alpha * (H(pi) - target entropy), as SAC;
- actor: for the first `bc_iters` gradient steps behaviour cloning, mean(alpha log pi(a~|s) - log pi(a|s))
  with a the logged action; after them SAC's mean(alpha log pi(a~|s) - min_k Q_k(s, a~));
- critics: each its mean squared Bellman error (RLlib's MSE, no 1/2; target min_k Q'_k(s', a'), without
  the entropy term unless deterministic_backup=False) plus the CQL(H) penalty of `cql_penalty`;
- lagrangian=True: the penalty is alpha' (penalty - lagrangian_thresh), alpha' >= 0 learned to raise
  it while the penalty exceeds the threshold (Kumar et al. 2020, eq. 30; RLlib's alpha_prime);
- the target critics, Polyak-averaged (tau) after every gradient step.

Defaults are RLlib's CQLConfig (bc_iters 20000, min_q_weight 5, num_actions 10, temperature 1,
lagrangian False with threshold 5, deterministic_backup True, actor/critic/alpha lr 1e-4/1e-3/1e-3) over
SAC's (batch 256, tau 0.005, twin Q, [256, 256] ReLU); where ours differ the line says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from rlarena.algorithms.algorithm import DEFAULT_POLICY_ID
from rlarena.algorithms.config import NotProvided, NotProvidedType, option, provided
from rlarena.algorithms.off_policy import ReplayBatch, frozen
from rlarena.algorithms.sac import SAC, SACConfig, step_actor_and_temperature, target_entropy_of, temperature_loss
from rlarena.errors import ConfigError
from rlarena.learners import Learner
from rlarena.nn.actor_q import ActorQ, GaussianActor, Temperature, squashed_gaussian_logp
from rlarena.policies.actor_q_policy import ActorQPolicy

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11 on

STAT_NAMES = (
    "critic_loss",
    "actor_loss",
    "alpha_loss",
    "alpha_value",
    "cql_loss",
    "q_data_mean",
    "entropy",
    "alpha_prime_value",
    "alpha_prime_loss",
)


@dataclass
class CQLConfig(SACConfig):
    """CQL's options (RLlib's names and defaults) over SAC's."""

    actor_lr: float | None = option(1e-4, "training")  # RLlib's CQL (SAC: lr)
    critic_lr: float | None = option(1e-3, "training")
    alpha_lr: float | None = option(1e-3, "training")
    bc_iters: int = option(20_000, "training")  # gradient steps of behaviour cloning before SAC's actor loss
    min_q_weight: float = option(5.0, "training")  # the penalty's weight (alpha in Kumar et al.)
    num_actions: int = option(
        10, "training", bound="MAX_ACTION_SAMPLES"
    )  # actions sampled per state for each of the three logsumexp parts
    temperature: float = option(1.0, "training")  # of the logsumexp
    lagrangian: bool = option(False, "training")
    lagrangian_thresh: float = option(5.0, "training")  # tau of Kumar et al., eq. 30
    deterministic_backup: bool = option(True, "training")  # True: no -alpha log pi(a'|s') in the critics' target
    # CQL's update is its own: every step moves the actor, whose loss and the critics' target read all critics
    unread_options: ClassVar[tuple[str, ...]] = ("target_critics_subset", "actor_q_reduction", "policy_delay")
    # RLlib's is 100 (one batch a train() call); ours 100 batches of 256, so a run's results are not one
    # line per gradient step
    min_train_timesteps_per_iteration: int = option(25_600, "training", bound="MAX_BATCH")
    store_buffer_in_checkpoints: bool = option(False, "training")  # CQL has no replay buffer

    def training(
        self,
        *,
        actor_lr: float | None | NotProvidedType = NotProvided,
        critic_lr: float | None | NotProvidedType = NotProvided,
        alpha_lr: float | None | NotProvidedType = NotProvided,
        bc_iters: int | NotProvidedType = NotProvided,
        min_q_weight: float | NotProvidedType = NotProvided,
        num_actions: int | NotProvidedType = NotProvided,
        temperature: float | NotProvidedType = NotProvided,
        lagrangian: bool | NotProvidedType = NotProvided,
        lagrangian_thresh: float | NotProvidedType = NotProvided,
        deterministic_backup: bool | NotProvidedType = NotProvided,
        min_train_timesteps_per_iteration: int | NotProvidedType = NotProvided,
        store_buffer_in_checkpoints: bool | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """The options declared above; the others go to SACConfig.training()."""
        return super().training(**provided(locals()))

    def validate(self) -> None:
        super().validate()
        self._check("bc_iters", self.bc_iters >= 0, "must be >= 0 (gradient steps of behaviour cloning)")
        self._check("min_q_weight", self.min_q_weight >= 0, "must be >= 0")
        self._check("num_actions", self.num_actions >= 1, "must be >= 1")
        self._check("temperature", self.temperature > 0, "must be > 0")
        self._check("min_train_timesteps_per_iteration", self.min_train_timesteps_per_iteration >= 1, "must be >= 1")
        self._check(
            "store_buffer_in_checkpoints",
            not self.store_buffer_in_checkpoints,
            "must be False: CQL reads its batches from the input files, it keeps no replay buffer",
        )
        self._check(
            "target_network_update_freq",
            self.target_network_update_freq == 0,
            "must be 0: CQL moves its target critics by tau after every gradient step",
        )

    @property
    def alpha_prime_lr(self) -> float:
        """alpha' learns at the critics' rate (RLlib's)."""
        return self.critic_lr or self.lr


def cql_penalty(
    q_data: torch.Tensor,
    q_rand: torch.Tensor,
    q_curr: torch.Tensor,
    q_next: torch.Tensor,
    logp_curr: torch.Tensor,
    logp_next: torch.Tensor,
    action_dim: int,
    temperature: float,
    min_q_weight: float,
) -> torch.Tensor:
    """CQL(H)'s penalty per critic [K] (Kumar et al. 2020, eq. 4, its logsumexp importance-sampled as in
    their appendix F; RLlib's min_qf_loss):

        w * (T * mean_i log sum_j exp(c_ij / T) - mean_i Q(s_i, a_i)),
        c_i = [Q(s_i, u_j) - log mu(u_j), Q(s_i, a_j) - log pi(a_j|s_i), Q(s_i, a'_j) - log pi(a'_j|s'_i)]

    with a_i the logged action, u_j uniform on [-1, 1]^d (log mu = -d log 2), a_j ~ pi(.|s_i) and
    a'_j ~ pi(.|s'_i), all evaluated at s_i (as the paper's code and RLlib's old stack).
    q_data [K, B]; q_rand, q_curr, q_next [K, B, N]; logp_curr, logp_next [B, N].
    """
    log_mu = -action_dim * math.log(2.0)
    c = torch.cat([q_rand - log_mu, q_curr - logp_curr, q_next - logp_next], -1)  # [K, B, 3N]
    return min_q_weight * (temperature * torch.logsumexp(c / temperature, -1).mean(-1) - q_data.mean(-1))


def cql_critic_loss(
    model: ActorQ, target: torch.nn.Module, batch: ReplayBatch, alpha: torch.Tensor, cfg: CQLConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(per critic [K]: mean (Q_k(s, a) - y)^2, per critic [K]: the CQL penalty, the mean Q of the logged
    actions), y = r + discount *
    (min_k Q'_k(s', a') [- alpha log pi(a'|s')]), a' ~ pi(.|s'). The actor gets no gradient from either."""
    B, N = len(batch.rewards), cfg.num_actions
    assert isinstance(model.actor, GaussianActor)  # CQL's actor: SAC's for Box actions
    with torch.no_grad():
        next_action, next_logp = model.actor.sample(batch.next_obs)
        v_next = target(batch.next_obs, next_action).min(0).values
        if not cfg.deterministic_backup:
            v_next = v_next - alpha * next_logp
        y = batch.rewards + batch.discounts * v_next
        # N actions per state: uniform, and the policy's at s and at s'
        obs_n = batch.obs.repeat_interleave(N, 0)  # [B*N, D]
        a_curr, logp_curr = model.actor.sample(obs_n)
        a_next, logp_next = model.actor.sample(batch.next_obs.repeat_interleave(N, 0))
        a_rand = torch.rand_like(a_curr) * 2 - 1
    q_data = model.critic(batch.obs, batch.actions)  # [K, B]
    # one critic pass over the 3N actions of each state, all at s
    q_all = model.critic(obs_n.repeat(3, 1), torch.cat([a_rand, a_curr, a_next]))  # [K, 3*B*N]
    q_rand, q_curr, q_next = (q.reshape(-1, B, N) for q in q_all.chunk(3, -1))
    penalty = cql_penalty(
        q_data,
        q_rand,
        q_curr,
        q_next,
        logp_curr.reshape(B, N),
        logp_next.reshape(B, N),
        batch.actions.shape[-1],
        cfg.temperature,
        cfg.min_q_weight,
    )
    return (q_data - y).pow(2).mean(-1), penalty, q_data.detach().mean()


class CQL(SAC):
    config_class = CQLConfig
    config: CQLConfig
    stat_names = STAT_NAMES
    data_mode = "offline"
    learner_class: ClassVar[type[Learner]] = Learner  # no replay buffer: the batches come from the files

    def setup(self) -> None:
        super().setup()
        self._batches: Any = None  # the stream of logged batches, started at the first training step
        self.num_env_steps_trained = 0

    def build_learner(self, learner: Learner) -> None:
        """SAC's optimizers and target critics, no replay buffer; with lagrangian, alpha' as a module of
        the policy's model (so it checkpoints with the weights) and its own Adam. No env steps are
        sampled: the lr schedule runs over the logged rows trained on."""
        policy, cfg = learner.policy, learner.config
        if not policy.continuous:
            raise ConfigError(
                f"CQL needs Box actions; this data's are {policy.action_space}. For Discrete actions "
                f"learn from the data with BC or MARWIL (BCConfig, MARWILConfig), or train DQN online."
            )
        model = self.actor_q_model(learner)
        assert model.temperature is not None  # SAC's kind of ActorQ learns its temperature
        modules: dict[str, torch.nn.Module] = {"actor": model.actor, "critic": model.critic, "alpha": model.temperature}
        if cfg.lagrangian:
            alpha_prime = Temperature(1.0)  # log alpha' = 0 at the start (RLlib's)
            model.add_module("alpha_prime", alpha_prime)
            modules["alpha_prime"] = alpha_prime
        flats = self.add_optimizers(learner, modules)
        learner.add_target("critic", model.critic, flats["critic"])
        learner.clock = lambda: self.num_env_steps_trained

    def _batch(self, data: dict[str, np.ndarray]) -> ReplayBatch:
        """Logged rows as a batch for the losses: observations filtered as the policy sees them, env
        actions in the actor's [-1, 1] units, discount 0 after a termination (truncated and cut episodes
        bootstrap from new_obs)."""
        policy = self.policy
        assert isinstance(policy, ActorQPolicy)  # CQL's policy: SAC's (actor_q_model checked it)
        n = len(data["rewards"])
        return ReplayBatch(
            obs=torch.from_numpy(policy.normalize(data["obs"])),
            actions=torch.from_numpy(policy.from_env_actions(data["actions"])),
            rewards=torch.from_numpy(np.asarray(data["rewards"], np.float32)),
            discounts=torch.from_numpy(np.where(data["terminateds"], 0.0, self.config.gamma).astype(np.float32)),
            next_obs=torch.from_numpy(policy.normalize(data["new_obs"])),
            next_mask=None,
            weights=torch.ones(n),
        )

    def update_policy(self, policy_id: str, batch: ReplayBatch | None = None) -> torch.Tensor:
        """One gradient step of alpha, the actor, the critics (and alpha'), all on this step's networks,
        then the target critics."""
        assert batch is not None
        learner = self.learners[policy_id]
        cfg: CQLConfig = learner.config
        model: ActorQ = learner.policy.model
        assert model.temperature is not None and isinstance(model.actor, GaussianActor)  # SAC's, for Box actions
        alpha = model.temperature.alpha
        # actor: behaviour cloning for the first bc_iters steps, then SAC's loss
        action, logp = model.actor.sample(batch.obs)
        if self.num_gradient_steps < cfg.bc_iters:
            mean, log_std = model.actor(batch.obs)
            loss_pi = (alpha * logp - squashed_gaussian_logp(mean, log_std, batch.actions)).mean()
        else:
            with frozen(model.critic):  # the actor's loss moves the actor only
                loss_pi = (alpha * logp - model.critic(batch.obs, action).min(0).values).mean()
        entropy = -logp.detach()
        target_entropy = target_entropy_of(cfg, learner.policy.action_space)
        loss_alpha = temperature_loss(model, entropy, target_entropy)
        bellman, penalty, q_data = cql_critic_loss(model, learner.targets["critic"].module, batch, alpha, cfg)
        alpha_prime, loss_alpha_prime = torch.ones(()), torch.zeros(())
        if cfg.lagrangian:
            # alpha' >= 0 grows while the penalty exceeds the threshold (RLlib: clamped to [0, 1e6])
            assert isinstance(model.alpha_prime, Temperature)  # added by build_learner
            alpha_prime = model.alpha_prime.log_alpha.exp().clamp(0.0, 1e6)[0]
            loss_alpha_prime = -(alpha_prime * (penalty.detach() - cfg.lagrangian_thresh)).mean()
            penalty = alpha_prime.detach() * (penalty - cfg.lagrangian_thresh)
        loss_q = (bellman + penalty).sum()
        learner.check_finite(torch.stack([loss_q.detach(), loss_pi.detach()]), "losses (critic, actor)")
        step_actor_and_temperature(learner, loss_pi, loss_alpha, target_entropy is not None)
        learner.step(loss_q, "critic")
        if cfg.lagrangian:
            learner.step(loss_alpha_prime, "alpha_prime", clip=False)
        learner.update_targets(cfg.tau)
        return torch.stack(
            [
                loss_q.detach(),
                loss_pi.detach(),
                loss_alpha.detach(),
                alpha,
                penalty.detach().sum(),
                q_data,
                entropy.mean(),
                alpha_prime.detach(),
                loss_alpha_prime.detach(),
            ]
        )

    def training_step(self) -> dict[str, float]:
        """Gradient steps on logged batches until min_train_timesteps_per_iteration rows were trained on."""
        cfg = self.config
        if self._batches is None:
            self._batches = self.offline_data.batches(cfg.train_batch_size, self.rng)
        stats, rows = [], 0
        while rows < cfg.min_train_timesteps_per_iteration:
            data = next(self._batches)
            stats.append(self.update_policy(DEFAULT_POLICY_ID, self._batch(data)))
            self.num_gradient_steps += 1
            rows += len(data["rewards"])
            self.num_env_steps_trained += len(data["rewards"])  # the schedules' clock (build_learner)
        out = dict(zip(self.stat_names, torch.stack(stats).mean(0).tolist()))
        if not self.config.lagrangian:
            del out["alpha_prime_value"], out["alpha_prime_loss"]
        out.update(
            num_env_steps_trained=rows,
            num_env_steps_trained_lifetime=self.num_env_steps_trained,
            num_gradient_steps_lifetime=self.num_gradient_steps,
            bc_phase=float(self.num_gradient_steps <= cfg.bc_iters),
        )
        return out

    # -- checkpoints: targets and counters; no replay buffer -------------------------------------
    def _rhythm_state(self) -> dict[str, np.ndarray]:
        return {**super()._rhythm_state(), "env_steps_trained": np.array([self.num_env_steps_trained], np.int64)}

    def _set_rhythm_state(self, arrays: dict[str, np.ndarray]) -> None:
        super()._set_rhythm_state(arrays)
        self.num_env_steps_trained = int(arrays["env_steps_trained"][0])

    def _restore(self, meta: dict[str, Any], arrays: dict[str, dict[str, np.ndarray]]) -> None:
        super()._restore(meta, arrays)  # weights, optimizers, targets, counters (no replay buffer to restore)
        self._batches = None  # the stream starts again from the restored generator


CQLConfig.algo_class = CQL
