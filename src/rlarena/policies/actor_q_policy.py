"""`ActorQPolicy`: the policy of SAC (DroQ, REDQ), TD3/DDPG, TQC and CrossQ, an actor with Q critics
(rlarena.nn.actor_q.ActorQ).

Box actions: the actor acts in [-1, 1]^d; `to_env_actions` maps that linearly onto the env's bounds
(as SB3 does), and the replay buffer stores the [-1, 1] action. So the env's Box must be bounded.
Discrete actions (SAC only): a categorical actor; action masks are honoured as everywhere (masked
logits: an illegal action is never sampled nor chosen).

Exploration, which the algorithm sets before each fragment: SAC (TQC, CrossQ: the same actor; CrossQ's
numpy twin normalizes with the batch renormalization's running statistics) samples its stochastic actor; TD3 adds
Gaussian noise of std `exploration_noise` (in [-1, 1] units) to its deterministic action, clipped; with
`random_actions` set (the warm-up before learning starts, as SB3) every action is uniform (over the
legal ones).

Values (compute_values, the exported graph) come from the critics with their dropout off (DroQ's
critics drop units only in training).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlarena.errors import ConfigError
from rlarena.nn.actor_q import ActorQ, squashed_gaussian_logp, without_dropout
from rlarena.nn.batch_renorm import RenormSpec
from rlarena.nn.normalize import RunningMeanStd
from rlarena.policies.policy import MASKED_LOGIT
from rlarena.policies.torch_policy import TrainablePolicy

# the policy kinds that take Box actions only (SAC's also takes Discrete)
BOX_ONLY = ("td3", "tqc", "crossq")


class ActorQPolicy(TrainablePolicy):
    """kind: "sac" (a squashed Gaussian for Box, categorical for Discrete), "td3" (deterministic, Box),
    "tqc" (SAC's actor, quantile critics; Box) or "crossq" (SAC's actor, batch renormalization; Box).

    num_q: the critics (None: 2 with twin_q, else 1); quantiles, critic_hiddens, renorm, critic_dropout,
    critic_layer_norm: ActorQ's."""

    model: ActorQ
    exploration_attributes = ("exploration_noise", "random_actions")

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        model_config: dict,
        observation_filter: str = "NoFilter",
        seed: int | None = None,
        kind: str = "sac",
        twin_q: bool = True,
        initial_alpha: float | None = None,
        algorithm: str = "SAC",
        warmup_steps: int = 0,
        exploration_noise: float = 0.0,
        num_q: int | None = None,
        quantiles: int | None = None,
        critic_hiddens: Sequence[int] | None = None,
        renorm: RenormSpec | None = None,
        critic_dropout: float = 0.0,
        critic_layer_norm: bool = False,
    ):
        discrete = isinstance(action_space, gym.spaces.Discrete)
        if kind in BOX_ONLY and not isinstance(action_space, gym.spaces.Box):
            raise ConfigError(
                f"{algorithm} needs Box actions; this env has {action_space}. Use SAC or DQN for "
                f"Discrete actions, PPO for other spaces."
            )
        if not isinstance(action_space, gym.spaces.Discrete | gym.spaces.Box):
            raise ConfigError(
                f"{algorithm} needs Box or Discrete actions; this env has {action_space}. Use PPO for other spaces."
            )
        if isinstance(action_space, gym.spaces.Box) and not (
            np.isfinite(action_space.low).all() and np.isfinite(action_space.high).all()
        ):
            raise ConfigError(
                f"{algorithm} needs a bounded Box action space (its actor's tanh output is scaled to "
                f"the bounds); this env's is {action_space}. Wrap the env in "
                f"gymnasium.wrappers.ClipAction over a bounded space, or use PPO."
            )
        super().__init__(observation_space, action_space, observation_filter, seed)
        if self.obs_layout is not None:
            # a Dict, Tuple or MultiBinary of vectors and indices: the actor and critics read its flat features
            if self.obs_layout.images:
                raise ConfigError(
                    f"{algorithm} reads vector observations; this one holds an image "
                    f"({self.obs_layout.images[0].name or 'the observation'}, shape {self.obs_layout.images[0].shape}). "
                    f"Use PPO, APPO or DQN for pixels."
                )
            self.vector_features = self.obs_layout.numpy_features
            self.obs_dim, self.obs_dtype = self.obs_layout.feature_dim, np.dtype(np.float32)
            if self.obs_filter is not None:
                self.obs_filter = RunningMeanStd((self.obs_dim,))
        self.kind = kind
        action_dim = (
            int(action_space.n) if isinstance(action_space, gym.spaces.Discrete) else int(np.prod(action_space.shape))
        )
        model_kind = "categorical" if discrete else ("deterministic" if kind == "td3" else "gaussian")
        self.model = ActorQ(
            self.obs_dim,
            action_dim,
            model_kind,
            tuple(model_config["fcnet_hiddens"]),
            model_config["fcnet_activation"],
            (2 if twin_q else 1) if num_q is None else num_q,
            initial_alpha,
            quantiles,
            critic_hiddens,
            renorm,
            critic_dropout,
            critic_layer_norm,
        )
        self.num_actions = action_dim
        self.output_names = ("logits", "value") if discrete else ("action", "value")
        # exploration (the Exploration capability: set_exploration sets these from the two options)
        self.warmup_steps, self.configured_noise = warmup_steps, exploration_noise
        self.exploration_noise = 0.0  # TD3's Gaussian std in [-1, 1] units
        self.random_actions = False  # uniform actions (the warm-up before learning starts)
        self._numpy_key = -1
        if isinstance(action_space, gym.spaces.Box):  # self.continuous
            self._scale = ((action_space.high - action_space.low) / 2).astype(np.float32).reshape(-1)
            self._offset = ((action_space.high + action_space.low) / 2).astype(np.float32).reshape(-1)

    # -- actions ------------------------------------------------------------------------------
    def _actor(self) -> Any:
        key = next(self.model.actor.parameters()).data_ptr()
        if key != self._numpy_key:  # first call, or the parameters moved (to a flat buffer)
            self._numpy_actor, self._numpy_key = self.model.actor.numpy(), key
        return self._numpy_actor

    def sample(self, x: np.ndarray, explore: bool = True, mask: np.ndarray | None = None) -> np.ndarray:
        """Preprocessed obs [B, D] -> actions: [B, d] float32 in [-1, 1] (Box) or [B] int64 (Discrete)."""
        B = len(x)
        if explore and self.random_actions:
            if self.continuous:
                return self.rng.uniform(-1.0, 1.0, (B, self.num_actions)).astype(np.float32)
            noise = self.rng.random((B, self.num_actions))
            return (noise if mask is None else np.where(mask, noise, -1.0)).argmax(-1)
        out = self._actor()(x)
        if self.model.kind == "categorical":
            if mask is not None:
                out = np.where(mask, out, MASKED_LOGIT)
            if not explore:
                return out.argmax(-1)
            return (out - np.log(self.rng.standard_exponential(out.shape))).argmax(-1)  # Gumbel-max
        if self.model.kind == "gaussian":
            mean, log_std = out
            if explore:
                mean = mean + np.exp(log_std) * self.rng.standard_normal(mean.shape, np.float32)
            return np.tanh(mean).astype(np.float32, copy=False)
        action = np.tanh(out)
        if explore and self.exploration_noise > 0:
            action = np.clip(
                action + self.exploration_noise * self.rng.standard_normal(action.shape, np.float32), -1.0, 1.0
            )
        return action.astype(np.float32, copy=False)

    def set_exploration(self, env_step: int) -> None:
        """Uniform actions for the first warmup_steps env steps, then the actor (with TD3's noise)."""
        self.random_actions = env_step < self.warmup_steps
        self.exploration_noise = self.configured_noise

    def to_env_actions(self, actions: np.ndarray) -> np.ndarray:
        if not self.continuous:
            return actions
        env_actions = actions * self._scale + self._offset
        return env_actions.reshape(len(actions), *self.action_shape)

    def from_env_actions(self, env_actions: np.ndarray) -> np.ndarray:
        """Box env actions [B, ...] (logged ones, say) -> float32 [B, d] in the actor's [-1, 1]: the
        inverse of to_env_actions, clipped to the bounds."""
        unit = (np.asarray(env_actions, np.float32).reshape(len(env_actions), -1) - self._offset) / self._scale
        return np.clip(unit, -1.0, 1.0).astype(np.float32, copy=False)

    def action_log_probs(self, x: np.ndarray, actions: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """float32 [B]: log pi(actions | x) of env actions (the ActionLogProbs capability; SAC's policy
        only). A Box action's density is the squashed Gaussian's, mapped linearly onto the bounds: the
        Jacobian of that map, -sum_i log(half width_i), makes it comparable with other policies'."""
        if self.model.kind == "deterministic":
            raise ConfigError(
                f"{self.kind.upper()}'s actor is deterministic: its actions have no log-probability. "
                f"Estimate a SAC policy, or set off_policy_estimation_methods={{}}."
            )
        with torch.inference_mode():
            xt = torch.as_tensor(np.asarray(x, np.float32))
            if self.continuous:
                mean, log_std = self.model.actor(xt)
                half_width = (np.asarray(self._high, np.float64) - self._low) / 2  # the Box's bounds
                logp = squashed_gaussian_logp(mean, log_std, torch.from_numpy(self.from_env_actions(actions)))
                logp = logp - float(np.log(half_width).sum())
            else:
                logits = self.model.actor(xt)
                if mask is not None:
                    logits = logits.masked_fill(~torch.as_tensor(mask, dtype=torch.bool), -math.inf)
                a = torch.as_tensor(np.asarray(actions, np.int64).reshape(-1))
                logp = torch.log_softmax(logits, -1).gather(-1, a[:, None]).squeeze(-1)
            return logp.numpy().astype(np.float32)

    # -- values and export --------------------------------------------------------------------
    def _greedy_and_value(self, x: torch.Tensor, action_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(the greedy action in [-1, 1]^d or the masked logits, V(s)): Box: the critics' Q(s, greedy
        action) (ActorQ.q_value); Discrete: the expectation of min_k Q_k(s, .) under the policy. The critics'
        dropout is off: a value is a function of the state."""
        out = self.model.greedy(x)
        with without_dropout(self.model.critic):
            if self.continuous:
                return out, self.model.q_value(x, out)
            if action_mask is not None:
                out = torch.where(action_mask != 0, out, torch.full_like(out, MASKED_LOGIT))
            return out, (torch.softmax(out, -1) * self.model.critic(x).min(0).values).sum(-1)

    def compute_values(self, obs_batch: Any) -> np.ndarray:
        mask = self.action_mask(obs_batch)
        with torch.inference_mode():
            x = torch.from_numpy(self.normalize(self.flatten(obs_batch)))
            return self._greedy_and_value(x, None if mask is None else torch.from_numpy(mask))[1].numpy()

    def export_outputs(self, x: torch.Tensor, action_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(the greedy env action (Box, scaled to the bounds) or the masked logits, V(s))."""
        out, value = self._greedy_and_value(x, action_mask)
        if self.continuous:
            out = out * torch.from_numpy(self._scale) + torch.from_numpy(self._offset)
        return out, value
