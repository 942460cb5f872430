"""MultiAgentArena: the two-agent grid game of RLlib's tutorials, as a MultiAgentEnv (numpy, no torch).

Rules as in Sven Mika's tutorial env (github.com/sven1977/rllib_tutorials: the MultiAgentArena of
production_rl_2022 / rllib_industry_webinar_20211201, also taught at Ray Summit 2021), matched rule
by rule:

- a `height` x `width` grid (default 10 x 10); agent1 starts top-left (0, 0), agent2 bottom-right.
- actions Discrete(4): 0=up, 1=right, 2=down, 3=left. Both agents act every step; agent2 moves
  first, then agent1 (the tutorial: "Agent2 always moves first").
- a move into the other agent's cell is blocked (the mover stays put) and is a collision, whoever
  moved; a move into a wall leaves the agent against the wall.
- agent1 covers ground: its start cell counts as visited; entering a never-visited cell (an
  unblocked move) marks it visited, even in a step where agent2 bumped into agent1.
- rewards per step: agent1 -1.0 if there was a collision, else +1.0 if it entered a new cell, else
  -0.5; agent2 +1.0 if there was a collision, else -0.1.
- observation per agent: MultiDiscrete([W*H, W*H]) = (own cell, other's cell), cell = row*W + col.
- an episode lasts `ts` steps (default 100).

Deliberate differences: the time limit is reported as truncation (truncateds["agent1"],
truncateds["agent2"] and truncateds["__all__"] True, terminateds all False) because it is one — the
tutorial's old API had a single `dones` dict. Config keys are checked (a misspelt key is an error),
and actions outside Discrete(4) are an error instead of a silent no-op. The earlier Ray Summit
2021 live-coding version chose the first mover by coin flip and started with no visited cell; we
follow the later, deterministic version.
"""

from __future__ import annotations

import operator
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from rlarena import limits
from rlarena.envs.multi_agent import ALL, MultiAgentEnv, env_config
from rlarena.errors import EnvError

ENV_NAME = "multi_agent_arena"  # the name the registry table gives this env

AGENTS = ["agent1", "agent2"]
MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))  # (d_row, d_col) for 0=up, 1=right, 2=down, 3=left
DEFAULTS: dict[str, Any] = {"width": 10, "height": 10, "ts": 100, "render_mode": None}

Cell = tuple[int, int]  # (row, col)


class MultiAgentArena(MultiAgentEnv):
    """Two agents on a grid: agent1 earns for new cells and loses when bumped; agent2 earns for
    bumping (see the module docstring for the rules and their source).

    `config` keys: width, height, ts (steps per episode), render_mode (None, "ansi" or "human").
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "human"], "name": ENV_NAME}

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        config = env_config("MultiAgentArena", config, DEFAULTS)
        sizes = [config[key] for key in ("width", "height", "ts")]
        if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in sizes):
            raise EnvError(
                f"MultiAgentArena's width, height and ts are whole numbers; got width={sizes[0]!r}, "
                f"height={sizes[1]!r}, ts={sizes[2]!r}."
            )
        self.width, self.height, self.ts = (int(v) for v in sizes)
        if self.width < 1 or self.height < 1 or self.width * self.height < 2 or self.ts < 1:
            raise EnvError(
                f"MultiAgentArena needs width, height >= 1 with room for two agents and ts >= 1; "
                f"got width={self.width}, height={self.height}, ts={self.ts}."
            )
        # an observation is two one-hot cells: the grid is bounded as a saved space is, and so is an episode
        if self.width * self.height > limits.MAX_GRID_CELLS or self.ts > limits.MAX_EPISODE_STEPS:
            raise EnvError(
                f"MultiAgentArena of width={self.width}, height={self.height}, ts={self.ts} is larger than "
                f"rlarena builds ({limits.MAX_GRID_CELLS:,} cells, {limits.MAX_EPISODE_STEPS:,} steps per "
                f"episode: rlarena.limits.MAX_GRID_CELLS and MAX_EPISODE_STEPS; raise them to build it)."
            )
        if config["render_mode"] not in (None, *self.metadata["render_modes"]):
            raise EnvError(
                f"MultiAgentArena render_mode {config['render_mode']!r} is not supported; use "
                f"None, 'ansi' (render() returns the grid as text) or 'human' (prints it)."
            )
        self.render_mode: str | None = config["render_mode"]
        cells = self.width * self.height
        self.possible_agents = list(AGENTS)
        self.agents = []
        self.observation_spaces = {agent: spaces.MultiDiscrete([cells, cells]) for agent in AGENTS}
        self.action_spaces = {agent: spaces.Discrete(4) for agent in AGENTS}
        self.agent1_pos: Cell = (0, 0)
        self.agent2_pos: Cell = (self.height - 1, self.width - 1)
        self.visited: set[Cell] = set()  # cells agent1 has covered this episode
        self.timesteps = 0
        self.collision = False  # whether the last step had a collision
        self.num_collisions = 0
        self.returns = {agent: 0.0 for agent in AGENTS}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
        super().reset(seed=seed)  # the game has no randomness; this keeps np_random seeded for subclasses
        self.agents = list(AGENTS)
        self.agent1_pos, self.agent2_pos = (0, 0), (self.height - 1, self.width - 1)
        self.visited = {self.agent1_pos}
        self.timesteps, self.collision, self.num_collisions = 0, False, 0
        self.returns = {agent: 0.0 for agent in AGENTS}
        return self._obs(), {agent: {} for agent in AGENTS}

    def step(self, action_dict: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:  # type: ignore[override]
        if not self.agents:
            raise EnvError(
                "MultiAgentArena.step() called before reset() or after the episode ended "
                "(truncateds['__all__'] was True); call reset() first."
            )
        a1, a2 = (self._action(action_dict, agent) for agent in AGENTS)
        self.timesteps += 1
        self.agent2_pos, bumped2 = self._move(self.agent2_pos, self.agent1_pos, a2)  # agent2 moves first
        self.agent1_pos, bumped1 = self._move(self.agent1_pos, self.agent2_pos, a1)
        new_cell = not bumped1 and self.agent1_pos not in self.visited
        if new_cell:
            self.visited.add(self.agent1_pos)
        self.collision = bumped1 or bumped2
        self.num_collisions += int(self.collision)
        rewards = {
            "agent1": -1.0 if self.collision else 1.0 if new_cell else -0.5,
            "agent2": 1.0 if self.collision else -0.1,
        }
        for agent, reward in rewards.items():
            self.returns[agent] += reward
        over = self.timesteps >= self.ts
        if over:
            self.agents = []
        terminateds = {"agent1": False, "agent2": False, ALL: False}
        truncateds = {"agent1": over, "agent2": over, ALL: over}  # a time limit: truncation
        return self._obs(), rewards, terminateds, truncateds, {agent: {} for agent in AGENTS}

    def _action(self, action_dict: dict[str, Any], agent: str) -> int:
        if agent not in action_dict:
            raise EnvError(
                f"MultiAgentArena.step() needs an action for both agents (they move at the same "
                f"time); got actions for {sorted(map(str, action_dict))}, missing {agent!r}."
            )
        action = action_dict[agent]
        try:
            index = operator.index(action)
        except TypeError:
            index = -1
        if not 0 <= index < 4:
            raise EnvError(
                f"MultiAgentArena: {agent}'s action {action!r} is not in Discrete(4); expected an "
                f"int 0=up, 1=right, 2=down or 3=left."
            )
        return index

    def _move(self, pos: Cell, other: Cell, action: int) -> tuple[Cell, bool]:
        """Where an agent at `pos` ends up, and whether `other` blocked it (a collision)."""
        d_row, d_col = MOVES[action]
        target = (pos[0] + d_row, pos[1] + d_col)
        if target == other:
            return pos, True
        return (min(max(target[0], 0), self.height - 1), min(max(target[1], 0), self.width - 1)), False

    def _cell(self, pos: Cell) -> int:
        return pos[0] * self.width + pos[1]

    def _obs(self) -> dict[str, np.ndarray]:
        c1, c2 = self._cell(self.agent1_pos), self._cell(self.agent2_pos)
        return {"agent1": np.array([c1, c2], dtype=np.int64), "agent2": np.array([c2, c1], dtype=np.int64)}

    def render(self) -> str | None:
        """render_mode "ansi": the grid as text ('1', '2', '.' = visited by agent1), the step, both
        returns, and "collision!" after a step with a collision. "human": prints it."""
        if self.render_mode is None:
            return None
        rows = []
        for r in range(self.height):
            row = "".join(
                "1"
                if (r, c) == self.agent1_pos
                else "2"
                if (r, c) == self.agent2_pos
                else "."
                if (r, c) in self.visited
                else " "
                for c in range(self.width)
            )
            rows.append(f"|{row}|")
        border = "+" + "-" * self.width + "+"
        status = f"t={self.timesteps} R1={self.returns['agent1']:.1f} R2={self.returns['agent2']:.1f}" + (
            " collision!" if self.collision else ""
        )
        text = "\n".join([border, *rows, border, status])
        if self.render_mode == "human":
            print(text)
            return None
        return text
