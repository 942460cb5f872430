"""Tiny probe environments an algorithm must solve in seconds.

In the spirit of Stable-Baselines3's identity envs and Andy Jones' probe environments
(https://andyljones.com/posts/rl-debugging.html): each isolates one thing the learner must get right,
so a failure points at a cause instead of "CartPole did not learn".

The classes live at module level so a checkpoint can name them as "probe_envs:ClassName".
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class DiscreteIdentityEnv(gym.Env):
    """Observation: one-hot of a random target in {0..n-1}; reward +1 iff action == target; 1 step.

    Optimal greedy return 1.0; a uniform random policy gets 1/n.
    """

    def __init__(self, n: int = 4):
        self.n = n
        self.observation_space = spaces.Box(0.0, 1.0, (n,), np.float32)
        self.action_space = spaces.Discrete(n)
        self._target = 0

    def _obs(self) -> np.ndarray:
        self._target = int(self.np_random.integers(self.n))
        return np.eye(self.n, dtype=np.float32)[self._target]

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action):
        reward = 1.0 if int(action) == self._target else 0.0
        return self._obs(), reward, True, False, {}


class ContinuousIdentityEnv(gym.Env):
    """Observation: a random scalar x in [-1, 1]; action a in Box(-1, 1, (1,)); reward -(a - x)^2; 1 step.

    Optimal greedy return 0; the zero action gets E[-x^2] = -1/3.
    """

    def __init__(self):
        self.observation_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self._x = np.zeros(1, np.float32)

    def _obs(self) -> np.ndarray:
        self._x = self.np_random.uniform(-1.0, 1.0, size=1).astype(np.float32)
        return self._x.copy()

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action):
        reward = -float((np.asarray(action, np.float32).reshape(1)[0] - self._x[0]) ** 2)
        return self._obs(), reward, True, False, {}


class TwoStepValueEnv(gym.Env):
    """Two steps, reward only at the end: s0 --(r=0)--> s1 --(r=1, terminated)--> end.

    Observations are one-hot [1, 0] for s0 and [0, 1] for s1. The observation returned with the
    termination is s0's again, on purpose: a learner that wrongly bootstraps through a termination
    would learn V(s1) = 1 + gamma * V(s0) instead of 1. Actions do not matter, so the values are
    exact: V(s0) = gamma, V(s1) = 1.
    """

    S0 = np.array([1.0, 0.0], np.float32)
    S1 = np.array([0.0, 1.0], np.float32)

    def __init__(self):
        self.observation_space = spaces.Box(0.0, 1.0, (2,), np.float32)
        self.action_space = spaces.Discrete(2)
        self._t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return self.S0.copy(), {}

    def step(self, action):
        self._t += 1
        if self._t == 1:
            return self.S1.copy(), 0.0, False, False, {}
        return self.S0.copy(), 1.0, True, False, {}


class ConstantTruncatedEnv(gym.Env):
    """Reward 1 every step, the same observation every step, truncated (never terminated) after k steps.

    A time limit is not part of the task, so the value of the (only) observation is the
    infinite-horizon value 1 / (1 - gamma). Treating the truncation as a termination instead would
    fit V to the average finite-horizon return over the k positions, which is much lower.
    """

    OBS = np.array([1.0], np.float32)

    def __init__(self, k: int = 3):
        self.k = k
        self.observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = spaces.Discrete(2)
        self._t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return self.OBS.copy(), {}

    def step(self, action):
        self._t += 1
        return self.OBS.copy(), 1.0, False, self._t >= self.k, {}

    @staticmethod
    def truncation_as_termination_value(gamma: float, k: int) -> float:
        """The value a learner that ignores truncation would fit: the mean over the k positions of the
        finite discounted sum sum_{i<k-j} gamma^i."""
        return float(np.mean([sum(gamma**i for i in range(k - j)) for j in range(k)]))


class NaNRewardEnv(gym.Env):
    """A healthy env that starts returning a NaN reward after `after` steps (a user's bug)."""

    def __init__(self, after: int = 20):
        self.after = after
        self.observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = spaces.Discrete(2)
        self._steps = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self._steps += 1
        reward = math.nan if self._steps > self.after else 1.0
        return np.zeros(2, np.float32), reward, self._steps % 5 == 0, False, {}


class BoomEnv(gym.Env):
    """Raises RuntimeError("boom") from step() in the middle of its first long episode."""

    def __init__(self, boom_at: int = 7):
        self.boom_at = boom_at
        self.observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = spaces.Discrete(2)
        self._steps = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self._steps += 1
        if self._steps >= self.boom_at:
            raise RuntimeError("boom")
        return np.zeros(2, np.float32), 1.0, False, False, {}
