"""Contextual-bandit envs: one-step episodes (a context in, an arm out, a reward back), as RLlib's
examples (rllib/examples/env/bandit_envs_discrete.py) but seeded through reset(seed=...).

Every step's info holds the pseudo-regret of the arm chosen (the best arm's expected reward minus the
chosen arm's, noise left out) as info["regret"], and the best arm as info["optimal_action"]; LinUCB and
LinTS (rlarena.algorithms.bandits) sum it into `cumulative_regret`. The problem itself (the arms'
parameters, the users and items) is drawn from `problem_seed`, so every copy of a vector env poses the
same problem; reset(seed=...) seeds the contexts and the noise.

Registered names (rlarena.envs.registry): "linear_bandit", "wheel_bandit", "recommender_bandit", and
RLlib's class names "LinearDiscreteEnv" and "WheelBanditEnv".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np


class _ContextualBandit(gym.Env, ABC):
    """One-step episodes: reset() draws a context; step(arm) pays the arm's reward, ends the episode and
    returns the next context (RLlib's envs do the same, so a runner that does not reset still goes on)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}
    action_space: gym.spaces.Discrete

    def __init__(self) -> None:
        self._means: np.ndarray | None = None  # the current context's expected reward per arm [k]

    @abstractmethod
    def _next_context(self) -> np.ndarray:
        """Draw the next context with self.np_random; set self._means; return the observation."""

    @abstractmethod
    def _noise(self, arm: int) -> float:
        """The reward noise of pulling `arm` in the current context."""

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return self._next_context(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._means is None:
            raise RuntimeError(f"{type(self).__name__}.step() before reset().")
        arm = int(action)
        if not 0 <= arm < self.action_space.n:
            raise ValueError(f"{type(self).__name__}: action {action!r} is not an arm (0..{self.action_space.n - 1}).")
        means = self._means
        best = int(means.argmax())
        reward = float(means[arm] + self._noise(arm))
        info = {"regret": float(means[best] - means[arm]), "optimal_action": best}
        return self._next_context(), reward, True, False, info


class LinearDiscreteEnv(_ContextualBandit):
    """RLlib's LinearDiscreteEnv: reward(x, a) = theta_a . x + N(0, reward_noise_std^2), contexts
    x ~ N(0, (1/3)^2 I), each theta_a uniform in [-1, 1]^d and then scaled to norm 1 (RLlib's defaults:
    8 features, 4 arms, noise 0.01)."""

    def __init__(self, config: dict | None = None):
        super().__init__()
        cfg = {"feature_dim": 8, "num_actions": 4, "reward_noise_std": 0.01, "problem_seed": 0, **(config or {})}
        self.feature_dim, self.num_actions = int(cfg["feature_dim"]), int(cfg["num_actions"])
        self.sigma = float(cfg["reward_noise_std"])
        problem = np.random.default_rng(cfg["problem_seed"])
        thetas = problem.uniform(-1, 1, (self.num_actions, self.feature_dim))
        self.thetas = thetas / np.linalg.norm(thetas, axis=1, keepdims=True)
        self.observation_space = gym.spaces.Box(-10.0, 10.0, (self.feature_dim,), np.float32)
        self.action_space = gym.spaces.Discrete(self.num_actions)

    def _next_context(self) -> np.ndarray:
        x = np.clip(self.np_random.normal(0.0, 1 / 3, self.feature_dim), -10, 10).astype(np.float32)
        self._means = self.thetas @ x.astype(np.float64)
        return x

    def _noise(self, arm: int) -> float:
        return float(self.np_random.normal(0.0, self.sigma))


class WheelBanditEnv(_ContextualBandit):
    """The wheel bandit (Riquelme, Tucker and Snoek 2018, "Deep Bayesian Bandits Showdown", sec. 5.1):
    contexts uniform in the unit disc, five arms. Arm 0 pays N(mu_1, std^2) everywhere. Inside the
    radius `delta` arms 1-4 pay N(mu_2, std^2), so arm 0 is best; outside it the arm of the context's
    quadrant (1: x>0, y>0; 2: x<0, y>0; 3: x<0, y<0; 4: x>0, y<0) pays N(mu_3, std^2) and is best, the
    other three pay mu_2. Defaults: the paper's and RLlib's (delta 0.5, mu 1.2 / 1.0 / 50, std 0.01);
    larger delta (the paper goes to 0.99) makes the rare high reward harder to find. The reward is not
    linear in the context: a linear model must separate the quadrants with its arms' argmax."""

    def __init__(self, config: dict | None = None):
        super().__init__()
        cfg = {"delta": 0.5, "mu_1": 1.2, "mu_2": 1.0, "mu_3": 50.0, "std": 0.01, **(config or {})}
        self.delta, self.std = float(cfg["delta"]), float(cfg["std"])
        self.mu_1, self.mu_2, self.mu_3 = float(cfg["mu_1"]), float(cfg["mu_2"]), float(cfg["mu_3"])
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = gym.spaces.Discrete(5)

    def _next_context(self) -> np.ndarray:
        radius, angle = np.sqrt(self.np_random.uniform()), self.np_random.uniform(0, 2 * np.pi)  # uniform in the disc
        x = np.array([radius * np.cos(angle), radius * np.sin(angle)], np.float32)
        means = np.array([self.mu_1] + [self.mu_2] * 4)
        if np.linalg.norm(x) > self.delta:
            quadrant = (1 if x[1] >= 0 else 4) if x[0] >= 0 else (2 if x[1] >= 0 else 3)
            means[quadrant] = self.mu_3
        self._means = means
        return x

    def _noise(self, arm: int) -> float:
        return float(self.np_random.normal(0.0, self.std))


class RecommenderEnv(_ContextualBandit):
    """A small recommender: `num_users` users and `num_items` items with fixed embeddings in R^d (drawn
    N(0, I/d) from problem_seed). Each step a user arrives and `slate_size` distinct candidate items are
    offered; the arm is a slate position; reward = user . item + N(0, reward_noise_std^2), which the
    agent does not know. The observation of candidate j is vec(user item_j^T), the user-item interaction
    features of Li et al. 2010's hybrid LinUCB (sec. 3.2), shape [slate_size, d * d]: the reward is
    linear in them with one weight vector shared by all positions (vec(I)), which the bandit learns."""

    def __init__(self, config: dict | None = None):
        super().__init__()
        cfg = {
            "embedding_dim": 4,
            "num_users": 50,
            "num_items": 100,
            "slate_size": 5,
            "reward_noise_std": 0.1,
            "problem_seed": 0,
            **(config or {}),
        }
        self.dim, self.slate_size = int(cfg["embedding_dim"]), int(cfg["slate_size"])
        self.sigma = float(cfg["reward_noise_std"])
        if not 1 <= self.slate_size <= int(cfg["num_items"]):
            raise ValueError(f"slate_size={self.slate_size} must be in [1, num_items={cfg['num_items']}].")
        problem = np.random.default_rng(cfg["problem_seed"])
        scale = 1 / np.sqrt(self.dim)
        self.users = problem.normal(0.0, scale, (int(cfg["num_users"]), self.dim))
        self.items = problem.normal(0.0, scale, (int(cfg["num_items"]), self.dim))
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.slate_size, self.dim * self.dim), np.float32)
        self.action_space = gym.spaces.Discrete(self.slate_size)

    def _next_context(self) -> np.ndarray:
        user = self.users[self.np_random.integers(len(self.users))]
        slate = self.items[self.np_random.choice(len(self.items), self.slate_size, replace=False)]
        self._means = slate @ user
        return np.einsum("i,kj->kij", user, slate).reshape(self.slate_size, -1).astype(np.float32)

    def _noise(self, arm: int) -> float:
        return float(self.np_random.normal(0.0, self.sigma))


def uniform_random_regret(env: gym.Env, steps: int, seed: int | None = None) -> np.ndarray:
    """The baseline bandit results are judged against: the cumulative regret [steps] of arms drawn
    uniformly at random on `env` (one of the envs above, or any env that reports info["regret"])."""
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    regret = np.empty(steps)
    for t in range(steps):
        _, _, terminated, truncated, info = env.step(int(rng.integers(env.action_space.n)))
        regret[t] = info["regret"]
        if terminated or truncated:
            env.reset()
    return np.cumsum(regret)
