"""RandomPolicy: uniformly random legal actions, the built-in baseline and league filler."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from rlarena.errors import ConfigError
from rlarena.policies.policy import Policy, is_masked_space


class RandomPolicy(Policy):
    """Uniformly random legal actions (respects action masks)."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, seed: int | None = None):
        super().__init__(observation_space, action_space)
        self.rng = np.random.default_rng(seed)
        self.masked = is_masked_space(observation_space)

    def compute_actions(self, obs_batch: Any, explore: bool = True) -> np.ndarray:
        if self.masked:
            mask = np.asarray(obs_batch["action_mask"], bool)
            # a random legal action: argmax of random scores where legal
            return np.where(mask, self.rng.random(mask.shape), -1.0).argmax(-1)
        n = len(obs_batch["observation"] if isinstance(obs_batch, dict) else obs_batch)
        return np.stack([self._sample() for _ in range(n)])

    def _sample(self) -> Any:
        space = self.action_space
        if isinstance(space, gym.spaces.Discrete):
            return int(self.rng.integers(space.n)) + int(space.start)
        if not isinstance(space, gym.spaces.Box):
            raise ConfigError(f"RandomPolicy samples Discrete and Box action spaces, not {space}.")
        return self.rng.uniform(space.low, space.high).astype(space.dtype)
