"""`QPolicy`: the DQN family's policy. Greedy actions are the masked argmax of Q (QR-DQN's: of the mean
of its quantiles); exploring ones are epsilon-greedy, the random action drawn uniformly over the legal
actions only."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlarena.errors import ConfigError
from rlarena.nn.q_network import QNetwork
from rlarena.policies.torch_policy import TrainablePolicy, input_layer
from rlarena.schedules import piecewise

# Illegal actions' Q for the argmax: lower than any Q a network computes; -inf would make the
# exported "value" output (the max) -inf for a row with no legal action.
MASKED_Q = -1e9


def masked_q(q: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return q if mask is None else q.masked_fill(~mask, MASKED_Q)


class QPolicy(TrainablePolicy):
    """A Q-network policy for Discrete actions. `epsilon` is the exploration rate of explore=True
    calls, from `epsilon_schedule` ([[env_step, epsilon], ...]): set_exploration (the Exploration
    capability: the algorithm calls it with the env steps sampled before each fragment) sets where the
    fragment starts, and each exploring call reads the schedule at its own env step and moves it on by
    its rows (as SB3, whose epsilon follows the schedule step by step, not fragment by fragment).
    `quantiles` (QR-DQN): the network outputs that many quantiles per action, and Q is their mean
    everywhere this policy reads it (acting, compute_q_values, ONNX export)."""

    model: QNetwork
    exploration_attributes = ("epsilon", "explore_step")
    output_names = ("q_values", "value")  # ONNX: masked Q [B, n] (QR-DQN: the quantiles' mean) and max_a Q [B]

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        model_config: dict,
        observation_filter: str = "NoFilter",
        seed: int | None = None,
        dueling: bool = True,
        epsilon_schedule: list | None = None,
        quantiles: int | None = None,
    ):
        if not isinstance(action_space, gym.spaces.Discrete):
            raise ConfigError(
                f"{'QR-DQN' if quantiles else 'DQN'} needs Discrete actions; this env has {action_space}. Use "
                f"SAC, TD3 or TQC for Box actions, PPO for other spaces."
            )
        super().__init__(observation_space, action_space, observation_filter, seed)
        self.num_actions = int(action_space.n)
        self.quantiles = quantiles  # build_model reads it
        self.build_model(model_config, dueling)
        self.epsilon_schedule = epsilon_schedule
        self.epsilon = 0.0
        self.explore_step = 0.0  # the env step of the next exploring call's first row
        self._numpy_q_key = -1

    def build_model(self, model_config: dict, dueling: bool) -> None:
        features, hiddens = input_layer(model_config, self.obs_layout, self.obs_dim)
        self.model = QNetwork(
            self.obs_dim, self.num_actions, hiddens, model_config["fcnet_activation"], dueling, features, self.quantiles
        )
        # an encoder with no numpy form (a CNN): Q in torch
        self._torch_q = features is not None and not hasattr(features, "numpy")

    def epsilon_greedy(self, q: np.ndarray, explore: bool, mask: np.ndarray | None) -> np.ndarray:
        """Greedy actions of Q [B, n] (masked), each replaced with probability epsilon by a uniform legal
        action when exploring."""
        if mask is not None:  # masked argmax: an illegal action is never chosen
            q = np.where(mask, q, MASKED_Q)
        actions = q.argmax(-1)
        if explore and self.epsilon_schedule:
            self.epsilon = piecewise(self.epsilon_schedule, self.explore_step)
            self.explore_step += len(q)
        if explore and self.epsilon > 0:
            random = self.rng.random(len(q)) < self.epsilon
            if random.any():
                # a uniform legal action: the argmax of uniform noise over the legal entries (-1 elsewhere)
                noise = self.rng.random((int(random.sum()), self.num_actions))
                if mask is not None:
                    noise = np.where(mask[random], noise, -1.0)
                actions[random] = noise.argmax(-1)
        return actions

    def set_exploration(self, env_step: int) -> None:
        """The next fragment starts at `env_step`: epsilon there (0 without a schedule)."""
        self.explore_step = float(env_step)
        self.epsilon = piecewise(self.epsilon_schedule, env_step) if self.epsilon_schedule else 0.0

    def q_values(self, x: np.ndarray) -> np.ndarray:
        """Q [B, n] for preprocessed observations (the quantiles' mean), in numpy over views of the live weights."""
        if self._torch_q:
            with torch.inference_mode():
                return self.model.mean_q(torch.from_numpy(x)).numpy()
        key = self.model.q_head.weight.data_ptr()
        if key != self._numpy_q_key:  # first call, or the parameters moved (to a flat buffer)
            self._numpy_q, self._numpy_q_key = self.model.numpy_q(), key
        return self._numpy_q(x)

    def sample(self, x: np.ndarray, explore: bool = True, mask: np.ndarray | None = None) -> np.ndarray:
        return self.epsilon_greedy(self.q_values(x), explore, mask)

    def compute_q_values(self, obs_batch: Any) -> np.ndarray:
        """Q [B, n] for env observations (illegal actions at MASKED_Q)."""
        q = self.q_values(self.normalize(self.flatten(obs_batch)))
        mask = self.action_mask(obs_batch)
        return q if mask is None else np.where(mask, q, MASKED_Q)

    def compute_values(self, obs_batch: Any) -> np.ndarray:
        """V(s) = max over the legal actions of Q(s, a)."""
        return self.compute_q_values(obs_batch).max(-1)

    def export_outputs(self, x: torch.Tensor, action_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.model.mean_q(x)
        if action_mask is not None:
            q = torch.where(action_mask != 0, q, torch.full_like(q, MASKED_Q))
        return q, q.max(-1).values
