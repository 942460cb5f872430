"""TD3 (Fujimoto et al. 2018, arXiv:1802.09477) and DDPG (Lillicrap et al. 2016, arXiv:1509.02971) for
Box actions: config, losses, update. One file: DDPG is TD3 with its three additions switched off
(twin_q, policy_delay, smooth_target_policy), as RLlib and SB3 define it.

    critics:  y = r + discount * min_k Q'_k(s', clip(mu'(s') + clip(N(0, target_noise), +-target_noise_clip), -1, 1))
              loss = sum_k mean_i w_i (Q_k(s_i, a_i) - y_i)^2             (as SB3: no 1/2)
    actor, every policy_delay critic steps:  loss = -mean_i Q_1(s_i, mu(s_i)); then Polyak targets (tau)

Actions live in [-1, 1]^d inside the networks (ActorQPolicy maps them to the env's bounds). Exploration
adds N(0, exploration_noise) to the deterministic action (SB3's NormalActionNoise in the same units;
RLlib's GaussianNoise stddev); the first random_timesteps steps (None: until learning starts) act
uniformly at random, as SB3. Defaults are SB3's TD3 (lr 1e-3, batch 256, tau 0.005, [400, 300] ReLU,
learning starts after 100 steps, one gradient step per env step); SB3's target_policy_noise is read as
target_noise, its learning_rate is lr.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from rlarena.algorithms.config import NotProvided, NotProvidedType, option, provided
from rlarena.algorithms.off_policy import ActorQAlgorithm, ActorQConfig, ReplayBatch, ReplayLearner, frozen
from rlarena.errors import CheckpointError
from rlarena.learners import Learner
from rlarena.nn.actor_q import ActorQ

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11 on

STAT_NAMES = ("critic_loss", "actor_loss", "q_mean")
SB3_NAMES = {"target_policy_noise": "target_noise"}


@dataclass
class TD3Config(ActorQConfig):
    """TD3's options, RLlib's names, SB3's defaults."""

    model_defaults: ClassVar[dict[str, Any]] = {"fcnet_hiddens": [400, 300], "fcnet_activation": "relu"}
    lr: float = option(1e-3, "training")  # SB3's learning_rate, for actor and critics without their own
    policy_delay: int = option(2, "training")  # critic steps per actor (and target) step
    smooth_target_policy: bool = option(True, "training")
    target_noise: float = option(0.2, "training")  # std of the target policy's smoothing noise
    target_noise_clip: float = option(0.5, "training")
    exploration_noise: float = option(0.1, "training")  # std of the Gaussian exploration noise, [-1, 1] units

    def training(
        self,
        *,
        lr: float | NotProvidedType = NotProvided,
        policy_delay: int | NotProvidedType = NotProvided,
        smooth_target_policy: bool | NotProvidedType = NotProvided,
        target_noise: float | NotProvidedType = NotProvided,
        target_noise_clip: float | NotProvidedType = NotProvided,
        exploration_noise: float | NotProvidedType = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """The options declared above; the others go to ActorQConfig.training()."""
        return super().training(**provided(locals()))

    def _translate(self, options: dict[str, Any], valid: Any) -> dict[str, Any]:
        return super()._translate({SB3_NAMES.get(k, k): v for k, v in options.items()}, valid)

    def validate(self) -> None:
        super().validate()
        self._check("policy_delay", self.policy_delay >= 1, "must be >= 1")
        self._check("target_noise", self.target_noise >= 0, "must be >= 0")
        self._check("target_noise_clip", self.target_noise_clip >= 0, "must be >= 0")
        self._check("exploration_noise", self.exploration_noise >= 0, "must be >= 0")


@dataclass
class DDPGConfig(TD3Config):
    """DDPG: TD3 without twin critics, delayed policy updates or target policy smoothing."""

    twin_q: bool = option(False, "training")
    policy_delay: int = option(1, "training")
    smooth_target_policy: bool = option(False, "training")


def td3_critic_loss(
    model: ActorQ, target: ActorQ | _Pair, batch: ReplayBatch, smooth: bool, noise: float, noise_clip: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, td_error [B] of the first critic, mean Q_1); see the module docstring."""
    with torch.no_grad():
        action = torch.tanh(target.actor(batch.next_obs))
        if smooth:
            eps = (torch.randn_like(action) * noise).clamp(-noise_clip, noise_clip)
            action = (action + eps).clamp(-1.0, 1.0)
        y = batch.rewards + batch.discounts * target.critic(batch.next_obs, action).min(0).values
    q = model.critic(batch.obs, batch.actions)
    td_error = q - y
    return (batch.weights * td_error.pow(2)).mean(-1).sum(), td_error[0].detach(), q[0].detach().mean()


def td3_actor_loss(model: ActorQ, obs: torch.Tensor) -> torch.Tensor:
    """-mean Q_1(s, mu(s)) (Fujimoto et al. 2018, Algorithm 1)."""
    return -model.critic(obs, torch.tanh(model.actor(obs)))[0].mean()


class _Pair(torch.nn.Module):
    """The target actor and critics together, as td3_critic_loss reads them (an ActorQ's two parts)."""

    def __init__(self, actor: torch.nn.Module, critic: torch.nn.Module):
        super().__init__()
        self.actor, self.critic = actor, critic


class TD3Learner(ReplayLearner):
    """A TD3 policy's learner: beside the replay buffer, its target actor and critics as one pair, the
    critic steps taken (every policy_delay-th one steps the actor: learner state "learner") and the
    actor's last loss (reported between its steps)."""

    target: _Pair
    critic_steps: int
    last_actor_loss: torch.Tensor


class TD3(ActorQAlgorithm):
    config_class = TD3Config
    config: TD3Config
    stat_names = STAT_NAMES
    policy_kind = "td3"
    learner_class = TD3Learner

    def build_learner(self, learner: Learner) -> None:
        """An Adam each for the actor and the critics, their targets, the replay buffer, and the critic
        step counter (state "learner")."""
        assert isinstance(learner, TD3Learner)
        model = self.actor_q_model(learner)
        flats = self.add_optimizers(learner, {"actor": model.actor, "critic": model.critic})
        learner.target = _Pair(
            learner.add_target("actor", model.actor, flats["actor"]),
            learner.add_target("critic", model.critic, flats["critic"]),
        )
        learner.critic_steps = 0
        learner.last_actor_loss = torch.full((), float("nan"))
        self.add_buffer(learner)
        learner.register_state(
            "learner",
            lambda: {"critic_steps": np.array([learner.critic_steps], np.int64)},
            lambda arrays: setattr(learner, "critic_steps", int(arrays["critic_steps"][0])),
        )

    def replay_learner(self, policy_id: str) -> TD3Learner:
        learner = self.learners[policy_id]
        assert isinstance(learner, TD3Learner)
        return learner

    def policy_options(self, config: ActorQConfig) -> dict[str, Any]:
        assert isinstance(config, TD3Config)
        return {"exploration_noise": config.exploration_noise}

    def update_policy(self, policy_id: str) -> torch.Tensor:
        learner = self.replay_learner(policy_id)
        cfg: TD3Config = learner.config
        model: ActorQ = learner.policy.model
        batch, indices = self.replay(policy_id)
        loss_q, td_error, q_mean = td3_critic_loss(
            model, learner.target, batch, cfg.smooth_target_policy, cfg.target_noise, cfg.target_noise_clip
        )
        learner.check_finite(loss_q, "critic loss")
        learner.step(loss_q, "critic")
        self.update_priorities(policy_id, indices, td_error)
        learner.critic_steps += 1
        if learner.critic_steps % cfg.policy_delay == 0:
            with frozen(model.critic):  # the actor's loss moves the actor only
                loss_pi = td3_actor_loss(model, batch.obs)
            learner.check_finite(loss_pi, "actor loss")
            learner.step(loss_pi, "actor")
            learner.last_actor_loss = loss_pi.detach()
            if cfg.target_network_update_freq == 0:
                learner.update_targets(cfg.tau)
        return torch.stack([loss_q.detach(), learner.last_actor_loss, q_mean])

    def _restore(self, meta: dict[str, Any], arrays: dict[str, dict[str, np.ndarray]]) -> None:
        # checkpoint format 1 counted the critic steps in the algorithm's group, one entry per policy in
        # the order their learners were built; later ones hold them in each learner's "learner" state
        old = arrays.get(self._state_group, {}).get("critic_steps")
        if old is not None and any(f"learner.{pid}" not in arrays for pid in self.learners):
            if len(old) != len(self.learners):
                raise CheckpointError(
                    f"Checkpoint does not match this {type(self).__name__}: it counts the critic "
                    f"steps of {len(old)} policies, this algorithm trains {len(self.learners)}."
                )
            arrays = {
                **arrays,
                **{
                    f"learner.{pid}": {"critic_steps": np.array([n], np.int64)}
                    for pid, n in zip(self.learners, np.asarray(old).tolist())
                },
            }
        super()._restore(meta, arrays)


class DDPG(TD3):
    config_class = DDPGConfig
    config: DDPGConfig


TD3Config.algo_class = TD3
DDPGConfig.algo_class = DDPG
