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
from typing import Any, ClassVar

import numpy as np
import torch

from rlarena.algorithms.algorithm import DEFAULT_POLICY_ID
from rlarena.algorithms.config import option
from rlarena.algorithms.off_policy import ActorQAlgorithm, ActorQConfig, ReplayBatch
from rlarena.errors import CheckpointError, TrainingError
from rlarena.nn.actor_q import ActorQ

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


def td3_critic_loss(model: ActorQ, target: ActorQ, batch: ReplayBatch, smooth: bool, noise: float,
                    noise_clip: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
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


class TD3(ActorQAlgorithm):
    config_class = TD3Config
    config: TD3Config
    stat_names = STAT_NAMES
    policy_kind = "td3"

    def setup(self) -> None:
        super().setup()
        self.critic_steps: dict[str, int] = {}
        self.target_models: dict[str, _Pair] = {}
        self._last_actor_loss: dict[str, torch.Tensor] = {}

    def setup_policy(self, policy_id: str) -> None:
        model = self.policies[policy_id].model  # type: ignore[attr-defined]
        flats = self.add_optimizers(policy_id, {"actor": model.actor, "critic": model.critic})
        self.target_models[policy_id] = _Pair(self.add_target(policy_id, "actor", model.actor, flats["actor"]),
                                              self.add_target(policy_id, "critic", model.critic, flats["critic"]))
        self.critic_steps[policy_id] = 0
        self._last_actor_loss[policy_id] = torch.full((), float("nan"))
        self.add_buffer(policy_id)

    def before_sample(self) -> None:
        super().before_sample()
        for pid in self.policies_to_train:
            self.policies[pid].exploration_noise = self.policy_configs[pid].exploration_noise  # type: ignore[attr-defined]

    def update_policy(self, policy_id: str) -> torch.Tensor:
        cfg: TD3Config = self.policy_configs[policy_id]  # type: ignore[assignment]
        model: ActorQ = self.policies[policy_id].model  # type: ignore[attr-defined]
        flats = self.flats[policy_id]
        batch, indices = self.replay(policy_id)
        loss_q, td_error, q_mean = td3_critic_loss(model, self.target_models[policy_id], batch,  # type: ignore[arg-type]
                                                   cfg.smooth_target_policy, cfg.target_noise, cfg.target_noise_clip)
        if not torch.isfinite(loss_q):
            raise TrainingError(f"{type(self).__name__} critic loss became {loss_q.item()} at iteration "
                                f"{self.iteration + 1}{'' if policy_id == DEFAULT_POLICY_ID else f' (policy {policy_id!r})'}"
                                f". The update was not applied. Lower the learning rates, set grad_clip, or scale the "
                                f"rewards.")
        flats["critic"].zero_grad()
        loss_q.backward()
        if cfg.grad_clip is not None:
            flats["critic"].clip_grad_norm_(cfg.grad_clip)
        self.optimizers[(policy_id, "critic")].step()
        self.update_priorities(policy_id, indices, td_error)
        self.critic_steps[policy_id] += 1
        if self.critic_steps[policy_id] % cfg.policy_delay == 0:
            flats["actor"].zero_grad()
            model.critic.requires_grad_(False)  # the actor's loss moves the actor only
            loss_pi = td3_actor_loss(model, batch.obs)
            loss_pi.backward()
            model.critic.requires_grad_(True)
            if cfg.grad_clip is not None:
                flats["actor"].clip_grad_norm_(cfg.grad_clip)
            self.optimizers[(policy_id, "actor")].step()
            self._last_actor_loss[policy_id] = loss_pi.detach()
            if cfg.target_network_update_freq == 0:
                self.update_target(policy_id, cfg.tau)
        return torch.stack([loss_q.detach(), self._last_actor_loss[policy_id], q_mean])

    # the critic-step counters decide when the actors step: they are part of the state
    def _state_arrays(self) -> dict[str, dict[str, np.ndarray]]:
        arrays = super()._state_arrays()
        arrays[self._state_group]["critic_steps"] = np.array([self.critic_steps[p] for p in self.critic_steps],
                                                             np.int64)
        return arrays

    def _restore(self, meta: dict[str, Any], arrays: dict[str, dict[str, np.ndarray]]) -> None:
        super()._restore(meta, arrays)
        steps = arrays[self._state_group].get("critic_steps", np.zeros(0, np.int64))
        if len(steps) != len(self.critic_steps):
            raise CheckpointError(f"Checkpoint does not match this {type(self).__name__}: it counts the critic steps of "
                              f"{len(steps)} policies, this algorithm trains {len(self.critic_steps)}.")
        self.critic_steps = {p: int(n) for p, n in zip(self.critic_steps, steps)}


class _Pair(torch.nn.Module):
    def __init__(self, actor: torch.nn.Module, critic: torch.nn.Module):
        super().__init__()
        self.actor, self.critic = actor, critic


class DDPG(TD3):
    config_class = DDPGConfig
    config: DDPGConfig


TD3Config.algo_class = TD3
DDPGConfig.algo_class = DDPG
