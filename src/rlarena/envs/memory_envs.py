"""Envs that need memory: the current observation alone does not tell the best action, so a feed-forward
policy (an MLP) stays at a known chance score and a recurrent one (an LSTM) can reach the maximum.

Registered as Gymnasium ids when rlarena.envs is imported (rlarena.envs.register_ids; string entry
points, so nothing here is imported until an env is made); without rlarena imported, gymnasium.make
reaches them as "rlarena.envs:RepeatPrevious-v0".

- StatelessCartPole-v1 (and CartPoleNoVel-v1): maximum 500. Without memory, pushing toward the pole's
  lean scores about 42 (random: 22); with the one previous observation (a finite difference for the
  speeds), the same rule scores 500.
- RepeatPrevious-v0: maximum 1.0; without memory, chance: -(1 - 2/symbols), -0.5 with 4 symbols.
- TMaze-v0: maximum 1.0; without memory, 50 % of the goals: an expected return of 0.0.

Each draws its randomness from self.np_random, seeded by reset(seed=...). Never imports torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import Env, spaces
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

from rlarena.errors import ConfigError


class StatelessCartPoleEnv(CartPoleEnv):
    """CartPole-v1 without its velocities: the cart's position and the pole's angle only, so balancing
    needs the speeds estimated from past observations. The dynamics, rewards and 500-step limit are
    CartPole-v1's.

    keep_shape=False (StatelessCartPole-v1, as RLlib's and POPGym's StatelessCartPole): observations
    are [x, theta], within CartPole's own bounds for them, [+-4.8, +-0.419].
    keep_shape=True (CartPoleNoVel-v1, as RL-Zoo's MaskVelocityWrapper): observations keep CartPole's 4
    entries and space with the velocities (entries 1 and 3) set to 0, so RL-Zoo's settings and models
    for CartPoleNoVel-v1 fit unchanged.
    """

    VELOCITIES = (1, 3)  # x_dot, theta_dot in CartPole's [x, x_dot, theta, theta_dot]

    def __init__(self, keep_shape: bool = False, render_mode: str | None = None, sutton_barto_reward: bool = False):
        super().__init__(sutton_barto_reward=sutton_barto_reward, render_mode=render_mode)
        self.keep_shape = keep_shape
        if not keep_shape:  # CartPole's own bounds of x and theta (twice where an episode ends)
            high = np.array([self.x_threshold * 2, self.theta_threshold_radians * 2], dtype=np.float32)
            self.observation_space = spaces.Box(-high, high, dtype=np.float32)

    def _hide(self, obs: np.ndarray) -> np.ndarray:
        if self.keep_shape:
            obs = obs.copy()
            obs[list(self.VELOCITIES)] = 0.0
            return obs
        return obs[[0, 2]]

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        obs, info = super().reset(seed=seed, options=options)
        return self._hide(obs), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = super().step(action)
        return self._hide(obs), float(reward), terminated, truncated, info


class RepeatPreviousEnv(Env[np.ndarray, np.int64]):
    """POPGym's "repeat previous": each step shows one of `symbols` symbols at random (one-hot, float32)
    and the agent must name the symbol it was shown `delay` steps before the current one.

    An episode is `length` steps. The first `delay` steps have nothing to repeat and score 0; each later
    step scores +1/(length - delay) when the action is that symbol and -1/(length - delay) when not.
    Maximum return: 1.0. A policy without memory sees only the current symbol, which says nothing about
    the one `delay` steps back (delay >= 1), so it is right with probability 1/symbols whatever it does:
    its expected return (chance) is 2/symbols - 1 = -(1 - 2/symbols), -0.5 for the default 4 symbols.
    delay=0 (repeat the symbol shown now) needs no memory: a sanity check that a policy learns at all.
    """

    def __init__(self, symbols: int = 4, delay: int = 2, length: int = 32, render_mode: str | None = None):
        _check_no_render("RepeatPrevious-v0", render_mode)
        for name, value, least in (("symbols", symbols, 2), ("delay", delay, 0), ("length", length, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ConfigError(f"RepeatPrevious-v0: {name}={value!r}, expected a whole number >= {least}.")
        if length <= delay:
            raise ConfigError(
                f"RepeatPrevious-v0: length={length} leaves nothing to score with delay={delay}; "
                f"expected length > delay."
            )
        self.symbols, self.delay, self.length = symbols, delay, length
        self.observation_space = spaces.Box(0.0, 1.0, shape=(symbols,), dtype=np.float32)
        self.action_space = spaces.Discrete(symbols)
        self.shown: list[int] = []  # every symbol shown this episode, the current one last

    def _show(self) -> np.ndarray:
        symbol = int(self.np_random.integers(self.symbols))
        self.shown.append(symbol)
        obs = np.zeros(self.symbols, dtype=np.float32)
        obs[symbol] = 1.0
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.shown = []
        return self._show(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        t = len(self.shown) - 1  # steps taken before this one; the current symbol is shown[t]
        reward = 0.0
        if t >= self.delay:
            scale = 1.0 / (self.length - self.delay)
            reward = scale if int(action) == self.shown[t - self.delay] else -scale
        return self._show(), reward, t + 1 >= self.length, False, {}


class TMazeEnv(Env[np.ndarray, np.int64]):
    """Bakker's T-maze (Bakker 2002, "Reinforcement learning with long short-term memory"): a corridor
    of `length` cells ending in a junction; the goal is up the left or the right arm, shown only in the
    first observation.

    Observations (float32, 4 entries): [goal is left, goal is right, in the corridor, at the junction];
    the first observation sets one of the first two, later ones say only corridor or junction.
    Actions: 0 forward, 1 turn left, 2 turn right. Forward walks one cell (at the junction it bumps and
    stays); a turn in the corridor bumps and stays; a turn at the junction ends the episode with +1 for
    the goal's side and -1 for the other. Every step costs `step_penalty` (default 0). An episode that
    has not chosen after `2 * (length + 1)` steps is truncated (a return of 0, less the step penalties).
    Maximum return: 1 - (length + 1) * step_penalty (walk `length` cells, turn). A policy without memory
    sees the same junction whichever side the goal is: it reaches the goal half the time, an expected
    return of 0 (without a step penalty).
    """

    FORWARD, LEFT, RIGHT = 0, 1, 2

    def __init__(self, length: int = 5, step_penalty: float = 0.0, render_mode: str | None = None):
        _check_no_render("TMaze-v0", render_mode)
        if not isinstance(length, int) or isinstance(length, bool) or length < 1:
            raise ConfigError(f"TMaze-v0: length={length!r}, expected a whole number >= 1 (cells of corridor).")
        if not isinstance(step_penalty, int | float) or not 0.0 <= step_penalty < 1.0:
            raise ConfigError(f"TMaze-v0: step_penalty={step_penalty!r}, expected a number in [0, 1).")
        self.length, self.step_penalty = length, float(step_penalty)
        self.max_steps = 2 * (length + 1)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(4,), dtype=np.float32)
        self.action_space = spaces.Discrete(3)
        self.goal = self.LEFT
        self.position = 0  # cells walked; the junction is at `length`
        self.t = 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(4, dtype=np.float32)
        if self.t == 0:
            obs[0 if self.goal == self.LEFT else 1] = 1.0
        else:
            obs[3 if self.position == self.length else 2] = 1.0
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.goal = self.LEFT if self.np_random.integers(2) == 0 else self.RIGHT
        self.position, self.t = 0, 0
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        action = int(action)
        self.t += 1
        reward, terminated = -self.step_penalty, False
        if action == self.FORWARD:
            self.position = min(self.position + 1, self.length)
        elif self.position == self.length:  # a turn at the junction: the choice
            terminated = True
            reward += 1.0 if action == self.goal else -1.0
        info = {"success": action == self.goal} if terminated else {}
        return self._obs(), reward, terminated, not terminated and self.t >= self.max_steps, info


def _check_no_render(name: str, render_mode: str | None) -> None:
    """render_mode None is the only one these envs have (gymnasium.make passes render_mode=None)."""
    if render_mode is not None:
        raise ConfigError(f"{name}: render_mode={render_mode!r}, but it draws nothing; leave render_mode None.")
