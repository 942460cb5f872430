"""Soft Actor-Critic (Haarnoja et al. 2018, arXiv:1801.01290 and 1812.05905) for Box actions, and its
discrete form (Christodoulou 2019, arXiv:1910.07207) for Discrete actions: config, losses, update.

Box: a tanh-squashed Gaussian actor, twin Q critics with Polyak-averaged targets, and a learned
temperature alpha with target entropy "auto" = -dim(A). Discrete: a categorical actor, critics that
output Q(s, .) for every action, expectations taken exactly over the actions, target entropy "auto"
= 0.98 log n (as RLlib). Action masks: masked logits, and masked targets.

Defaults are SB3's SAC (where RLlib's differ, the line says so): lr 3e-4 for actor, critics and alpha,
batch 256, tau 0.005, gamma 0.99, one env, one gradient step per env step, uniform replay of 1e6,
learning starts after 100 steps of uniform random actions, [256, 256] ReLU networks. The loop is
algorithms/off_policy.py's, which also reads SB3's train_freq, gradient_steps and learning_starts.
SB3's ent_coef is read too: "auto" (alpha learned from 1.0), "auto_0.1" (learned from 0.1), or a
number (alpha fixed). RLlib's older optimization_config={"actor_learning_rate", "critic_learning_rate",
"entropy_learning_rate"} is read as actor_lr, critic_lr and alpha_lr.

The critics are an ensemble of n_critics (2: twin Q) that SAC's options shape further (SBX's SAC names
n_critics, dropout_rate, layer_norm and policy_delay):
    critic_dropout, critic_layer_norm: Linear -> Dropout -> LayerNorm -> ReLU in each hidden layer of the
        critics (DroQ), dropout active in the online, target and actor-loss passes (nn/actor_q.py);
    target_critics_subset M: the target's min over M of the N target critics, drawn at random anew each
        gradient step, the same M for every row (REDQ's in-target minimization; None: all N);
    actor_q_reduction: the actor's loss reads min_k Q_k ("min", SAC's clipped double Q, and SBX's for
        DroQ too) or the mean over all critics ("mean", REDQ's and DroQ's code; Chen et al. 2021, Alg. 1);
    policy_delay: the actor and the temperature step every policy_delay critic steps;
    gradient_steps (SB3's) or training_intensity: the update-to-data ratio (UTD, "G" in both papers).
DroQ's and REDQ's recipes (these options' settings in the papers): algorithms/droq_redq.py.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import gymnasium as gym
import numpy as np
import torch

from rlarena.algorithms.config import NotProvided, NotProvidedType, option, provided
from rlarena.algorithms.off_policy import ActorQAlgorithm, ActorQConfig, ReplayBatch, ReplayLearner, frozen
from rlarena.errors import ConfigError
from rlarena.learners import Learner
from rlarena.nn.actor_q import ActorQ, GaussianActor
from rlarena.policies.actor_q_policy import ActorQPolicy
from rlarena.policies.policy import MASKED_LOGIT

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11 on

STAT_NAMES = ("critic_loss", "actor_loss", "alpha_loss", "alpha_value", "q_mean", "entropy")
OPTIMIZATION_CONFIG_KEYS = {
    "actor_learning_rate": "actor_lr",
    "critic_learning_rate": "critic_lr",
    "entropy_learning_rate": "alpha_lr",
}


@dataclass
class SACConfig(ActorQConfig):
    """SAC's options, RLlib's names, SB3's defaults (the module docstring lists both libraries' names)."""

    model_defaults: ClassVar[dict[str, Any]] = {"fcnet_hiddens": [256, 256], "fcnet_activation": "relu"}
    lr: float = option(
        3e-4, "training"
    )  # SB3's learning_rate, for every optimizer without its own (RLlib's actor: 3e-5)
    alpha_lr: float | None = option(None, "training")  # None: lr
    initial_alpha: float = option(1.0, "training")
    target_entropy: Any = option("auto", "training")  # "auto", a number, or None: alpha stays initial_alpha
    n_critics: int = option(2, "training", bound="MAX_CRITICS")  # N (SBX's; REDQ: 10)
    critic_dropout: float = option(0.0, "training")  # SBX's dropout_rate (DroQ: 0.01)
    critic_layer_norm: bool = option(False, "training")  # SBX's layer_norm (DroQ: True)
    target_critics_subset: int | None = option(None, "training", bound="MAX_CRITICS")  # REDQ's M; None: all N
    actor_q_reduction: Literal["min", "mean"] = option("min", "training")  # over the critics (REDQ, DroQ: "mean")
    policy_delay: int = option(1, "training")  # critic steps per actor and temperature step (SBX's; REDQ: 20)
    # the options above that an algorithm built on SAC with losses of its own does not read: refused when set
    unread_options: ClassVar[tuple[str, ...]] = ()

    def training(
        self,
        *,
        lr: float | NotProvidedType = NotProvided,
        alpha_lr: float | None | NotProvidedType = NotProvided,
        initial_alpha: float | NotProvidedType = NotProvided,
        target_entropy: Literal["auto"] | float | None | NotProvidedType = NotProvided,
        n_critics: int | NotProvidedType = NotProvided,
        critic_dropout: float | NotProvidedType = NotProvided,
        critic_layer_norm: bool | NotProvidedType = NotProvided,
        target_critics_subset: int | None | NotProvidedType = NotProvided,
        actor_q_reduction: Literal["min", "mean"] | NotProvidedType = NotProvided,
        policy_delay: int | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """The options declared above; the others go to ActorQConfig.training()."""
        return super().training(**provided(locals()))

    def _translate(self, options: dict[str, Any], valid: Any) -> dict[str, Any]:
        options = dict(options)
        if "optimization_config" in options:  # RLlib's old stack
            given = options.pop("optimization_config") or {}
            if not isinstance(given, dict) or set(given) - set(OPTIMIZATION_CONFIG_KEYS):
                raise ConfigError(
                    f"optimization_config must be a dict with keys {', '.join(OPTIMIZATION_CONFIG_KEYS)}; "
                    f"got {given!r}."
                )
            options.update({OPTIMIZATION_CONFIG_KEYS[k]: v for k, v in given.items()})
        if "ent_coef" in options:  # SB3's
            options.update(_from_ent_coef(options.pop("ent_coef")))
        return super()._translate(options, valid)

    def validate(self) -> None:
        super().validate()
        self._check("alpha_lr", self.alpha_lr is None or self.alpha_lr > 0, "must be > 0 or None (None: lr)")
        self._check("initial_alpha", self.initial_alpha > 0, "must be > 0")
        te = self.target_entropy
        self._check(
            "target_entropy",
            te in ("auto", None) or (isinstance(te, int | float) and not isinstance(te, bool) and math.isfinite(te)),
            "must be 'auto', a number, or None (alpha fixed at initial_alpha)",
        )
        self._check("n_critics", self.n_critics >= 1, "must be >= 1")
        self._check(
            "twin_q",
            self.twin_q or self.n_critics in (1, 2),
            f"means one critic (RLlib's name), but n_critics={self.n_critics}: leave twin_q out",
        )
        self._check("critic_dropout", 0 <= self.critic_dropout < 1, "must be in [0, 1) (DroQ: 0.01)")
        m = self.target_critics_subset
        self._check(
            "target_critics_subset",
            m is None or 1 <= m <= self.num_critics,
            f"must be None (all critics) or in [1, n_critics] = [1, {self.num_critics}] (REDQ: 2 of 10)",
        )
        self._check("policy_delay", self.policy_delay >= 1, "must be >= 1")
        defaults = {f.name: f.default for f in dataclasses.fields(SACConfig)}
        name = self.algo_class.__name__ if self.algo_class is not None else type(self).__name__
        for key in self.unread_options:
            self._check(
                key,
                getattr(self, key) == defaults[key],
                f"does not apply to {name} (its losses are its own); leave it out",
            )

    @property
    def num_critics(self) -> int:
        """The critics built: n_critics, or one with RLlib's twin_q=False."""
        return self.n_critics if self.twin_q else 1


def _from_ent_coef(value: Any) -> dict[str, Any]:
    if value == "auto":
        return {"target_entropy": "auto", "initial_alpha": 1.0}
    if isinstance(value, str) and value.startswith("auto_"):
        try:
            return {"target_entropy": "auto", "initial_alpha": float(value[5:])}
        except ValueError:
            pass
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return {"target_entropy": None, "initial_alpha": float(value)}
    raise ConfigError(f"ent_coef={value!r} (SB3's name) must be 'auto', 'auto_<initial value>' or a number.")


def target_entropy_of(config: SACConfig, action_space: gym.Space) -> float | None:
    """The entropy the temperature steers the policy's towards; None: alpha is fixed."""
    if config.target_entropy != "auto":
        return config.target_entropy
    if isinstance(action_space, gym.spaces.Discrete):
        return 0.98 * math.log(int(action_space.n))  # RLlib's: 98 % of the uniform policy's entropy
    assert isinstance(action_space, gym.spaces.Box)  # SAC's policy takes Discrete or Box actions
    return -float(np.prod(action_space.shape))  # Haarnoja et al. 2018b, sec. 5: -dim(A)


def temperature_loss(model: ActorQ, entropy: torch.Tensor, target_entropy: float | None) -> torch.Tensor:
    """log alpha * (entropy - target entropy), averaged (Haarnoja et al. 2018b, eq. 18): alpha grows while
    the policy's entropy [B] is under the target; 0 when alpha is fixed (target_entropy None)."""
    if target_entropy is None:
        return torch.zeros(())
    assert model.temperature is not None  # SAC's kind of ActorQ learns its temperature
    return (model.temperature.log_alpha * (entropy - target_entropy)).mean()


def _masked(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return logits if mask is None else logits.masked_fill(~mask, MASKED_LOGIT)


def target_min(q_next: torch.Tensor, subset: int | None = None) -> torch.Tensor:
    """The min over the critics (dim 0) of q_next [K, ...]: of all K, or of `subset` of them drawn at
    random without replacement, the same for every row (REDQ's in-target minimization, Chen et al.
    2021, Algorithm 1, as the authors' code)."""
    if subset is not None and subset < len(q_next):
        q_next = q_next[torch.randperm(len(q_next))[:subset]]
    return q_next.min(0).values


def reduce_critics(q: torch.Tensor, how: str) -> torch.Tensor:
    """q [K, ...] -> [...]: min_k Q_k ("min", clipped double Q) or the mean over the critics ("mean")."""
    return q.min(0).values if how == "min" else q.mean(0)


def critic_loss(
    model: ActorQ, target: torch.nn.Module, batch: ReplayBatch, alpha: torch.Tensor, subset: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, td_error [B] of the first critic).

    y = r + discount * (min_{k in S} Q'_k(s', a') - alpha log pi(a'|s')),  a' ~ pi(.|s')
    (S: all critics, or `subset` of them drawn anew (REDQ); Discrete: the expectation over a' under pi)
    loss = 1/2 sum_k mean_i w_i (Q_k(s_i, a_i) - y_i)^2     (Haarnoja et al. 2018, eq. 5; as SB3)
    Every critic is computed for the target, M of them kept: one batched matmul (REDQ's code runs the M).
    """
    with torch.no_grad():
        if model.kind == "categorical":
            logp = torch.log_softmax(_masked(model.actor(batch.next_obs), batch.next_mask), -1)
            q_next = target_min(target(batch.next_obs), subset)
            v_next = (logp.exp() * (q_next - alpha * logp)).sum(-1)
        else:
            assert isinstance(model.actor, GaussianActor)  # SAC's Box actor
            action, logp = model.actor.sample(batch.next_obs)
            v_next = target_min(target(batch.next_obs, action), subset) - alpha * logp
        y = batch.rewards + batch.discounts * v_next
    if model.kind == "categorical":
        q = model.critic(batch.obs).gather(2, batch.actions.expand(model.critic.num_q, -1)[..., None]).squeeze(2)
    else:
        q = model.critic(batch.obs, batch.actions)
    td_error = q - y
    loss = 0.5 * (batch.weights * td_error.pow(2)).mean(-1).sum()
    return loss, td_error[0].detach()


def actor_loss(
    model: ActorQ, batch: ReplayBatch, alpha: torch.Tensor, reduction: str = "min"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, log pi of the actions taken [B] (Box) / the policy's entropy [B] (Discrete) for the
    temperature, their Q as the loss reads it [B]).

        Box:      loss = mean_i (alpha log pi(a_i|s_i) - min_k Q_k(s_i, a_i)),  a_i = tanh(mu + sigma eps)
        Discrete: loss = mean_i sum_a pi(a|s_i) (alpha log pi(a|s_i) - min_k Q_k(s_i, a))
    (Haarnoja et al. 2018, eq. 7; Christodoulou 2019, eq. 12); reduction "mean": mean_k Q_k in place of
    min_k Q_k (REDQ, Chen et al. 2021, Algorithm 1; DroQ). The critics' weights get no gradient.
    """
    if model.kind == "categorical":
        logp = torch.log_softmax(_masked(model.actor(batch.obs), batch.mask), -1)
        pi = logp.exp()
        with torch.no_grad():
            q = reduce_critics(model.critic(batch.obs), reduction)
        loss = (pi * (alpha * logp - q)).sum(-1).mean()
        return loss, -(pi * logp).sum(-1).detach(), (pi * q).sum(-1).detach()
    assert isinstance(model.actor, GaussianActor)  # SAC's Box actor
    action, logp = model.actor.sample(batch.obs)
    q = reduce_critics(model.critic(batch.obs, action), reduction)
    return (alpha * logp - q).mean(), -logp.detach(), q.detach()


def step_actor_and_temperature(
    learner: Learner, loss_pi: torch.Tensor, loss_alpha: torch.Tensor, learned: bool
) -> None:
    """One backward pass for the actor's and the temperature's losses (separate graphs: the temperature's
    reads the entropy detached), then a step of each; grad_clip is for the actor, not the one scalar.
    `learned` False (a fixed alpha): the actor alone."""
    if learned:
        learner.step(loss_pi + loss_alpha, "actor", "alpha", clip=("actor",))
    else:
        learner.step(loss_pi, "actor")


class SACLearner(ReplayLearner):
    """A SAC policy's learner: beside the replay buffer, the critic steps taken (every policy_delay-th
    one steps the actor and the temperature too: learner state "learner") and the actor's last
    statistics (reported between its steps)."""

    critic_steps: int
    last_actor_stats: torch.Tensor  # actor_loss, alpha_loss, q_mean, entropy


class SAC(ActorQAlgorithm):
    config_class = SACConfig
    config: SACConfig
    stat_names: ClassVar[tuple[str, ...]] = STAT_NAMES
    policy_kind = "sac"
    learner_class: ClassVar[type[Learner]] = SACLearner
    # a checkpoint without the critic step counter (saved before SAC counted them) restarts it from 0
    restore_missing_ok: ClassVar[bool | tuple[str, ...]] = ("replay", "learner")

    def policy_options(self, config: ActorQConfig) -> dict[str, Any]:
        assert isinstance(config, SACConfig)
        return {
            "initial_alpha": config.initial_alpha,
            "num_q": config.num_critics,
            "critic_dropout": config.critic_dropout,
            "critic_layer_norm": config.critic_layer_norm,
        }

    def build_learner(self, learner: Learner) -> None:
        """An Adam each for the actor, the critics and the temperature; the target critics; the replay
        buffer; the critic step counter."""
        assert isinstance(learner, SACLearner)
        model = self.actor_q_model(learner)
        assert model.temperature is not None  # SAC's kind of ActorQ learns its temperature
        flats = self.add_optimizers(learner, {"actor": model.actor, "critic": model.critic, "alpha": model.temperature})
        learner.add_target("critic", model.critic, flats["critic"])
        self.add_buffer(learner)
        self.count_critic_steps(learner)

    @staticmethod
    def count_critic_steps(learner: SACLearner) -> None:
        """Start the learner's critic step counter (for policy_delay), saved as its state "learner"."""
        learner.critic_steps = 0
        learner.last_actor_stats = torch.full((4,), float("nan"))
        learner.register_state(
            "learner",
            lambda: {"critic_steps": np.array([learner.critic_steps], np.int64)},
            lambda arrays: setattr(learner, "critic_steps", int(arrays["critic_steps"][0])),
        )

    def replay_learner(self, policy_id: str) -> SACLearner:
        learner = self.learners[policy_id]
        assert isinstance(learner, SACLearner)
        return learner

    # the two losses update_policy takes, as methods: an algorithm built on SAC's update (TQC) swaps its own in
    def actor_loss(
        self, learner: ReplayLearner, batch: ReplayBatch, alpha: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss, entropy term [B] for the temperature, Q of the actor's actions [B]): `actor_loss`."""
        return actor_loss(learner.policy.model, batch, alpha, learner.config.actor_q_reduction)

    def critic_loss(
        self, learner: ReplayLearner, batch: ReplayBatch, alpha: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, td_error [B] for the priorities): `critic_loss` against the target critics."""
        subset = learner.config.target_critics_subset
        return critic_loss(learner.policy.model, learner.targets["critic"].module, batch, alpha, subset)

    def update_policy(self, policy_id: str) -> torch.Tensor:
        """One gradient step of the critics and, every policy_delay-th, of the temperature and the actor
        first, all losses on this step's networks (as RLlib; SB3 computes the actor's after the critics'
        step), then the targets (each step, unless target_network_update_freq sets a rhythm in env steps)."""
        learner = self.replay_learner(policy_id)
        cfg: SACConfig = learner.config
        model: ActorQ = learner.policy.model
        batch, indices = self.replay(policy_id)
        assert model.temperature is not None  # SAC's kind of ActorQ learns its temperature
        alpha = model.temperature.alpha  # this step's value, for all three losses
        learner.critic_steps += 1
        actor_step = learner.critic_steps % cfg.policy_delay == 0
        target_entropy = target_entropy_of(cfg, learner.policy.action_space)
        if actor_step:  # the actor on the replayed states: its entropy drives the temperature
            with frozen(model.critic):  # the actor's loss moves the actor only: no critic weight gradients
                loss_pi, entropy, q_pi = self.actor_loss(learner, batch, alpha)
            loss_alpha = temperature_loss(model, entropy, target_entropy)
        loss_q, td_error = self.critic_loss(learner, batch, alpha)
        if actor_step:
            learner.check_finite(
                torch.stack([loss_q.detach(), loss_pi.detach(), loss_alpha.detach()]), "losses (critic, actor, alpha)"
            )
            step_actor_and_temperature(learner, loss_pi, loss_alpha, target_entropy is not None)
            learner.last_actor_stats = torch.stack([loss_pi.detach(), loss_alpha.detach(), q_pi.mean(), entropy.mean()])
        else:
            learner.check_finite(loss_q, "critic loss")
        learner.step(loss_q, "critic")
        if cfg.target_network_update_freq == 0:
            learner.update_targets(cfg.tau)
        self.update_priorities(policy_id, indices, td_error)
        last_pi, last_alpha, q_mean, entropy_mean = learner.last_actor_stats
        return torch.stack([loss_q.detach(), last_pi, last_alpha, alpha, q_mean, entropy_mean])

    def policy_metrics(self, policy_id: str) -> dict[str, float]:
        policy = self.policies[policy_id]
        assert isinstance(policy, ActorQPolicy) and policy.model.temperature is not None  # checked by build_learner
        return {"alpha": float(policy.model.temperature.alpha), **super().policy_metrics(policy_id)}


SACConfig.algo_class = SAC
