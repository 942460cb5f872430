"""Connect Four: rlarena's own rules in numpy (no torch), in three forms.

- `env(render_mode=None)`: a PettingZoo AEC env that behaves exactly like PettingZoo's
  `connect_four_v3` (tests/test_connect_four.py replays random games, illegal moves included, move
  by move against it). It needs pettingzoo; importing this module does not.
- `BatchedConnectFour(num_games)`: N games stepped at once with numpy, for training and evaluation.
- `ConnectFourMultiAgent`: one game as an rlarena MultiAgentEnv (registered as "connect_four"); it
  returns exactly what `PettingZooAECAdapter(connect_four_v3.env())` returns, without PettingZoo.

The rules, as connect_four_v3 defines them: a 6 x 7 board; player_0 moves first; a piece falls to
the lowest empty cell of the chosen column (0-6). Four in a row (horizontal, vertical, diagonal)
wins: +1 for the winner, -1 for the loser. A full board without a four is a draw (0, 0). A move into
a full column ends the game: -1 for the mover, 0 for the other (PettingZoo's TerminateIllegalWrapper).
The observation of an agent is {"observation": int8 (6, 7, 2), "action_mask": int8 (7,)}: plane 0
holds that agent's own pieces, plane 1 the opponent's, row 0 is the top row; the mask marks the
non-full columns for the agent to move and is all zero for the other agent.

Bitboards (used for the win test here and by the opponents' search): a position is one int per
player with bit `col * 7 + row_from_bottom` set for each of its pieces; bit 6 of every column is an
always-empty sentinel, so shifting by 1 (vertical), 7 (horizontal), 6 and 8 (diagonals) never wraps
from one column into the next, and `p & (p >> d) & (p >> 2d) & (p >> 3d)` is non-zero exactly when
`p` holds four in a row in direction d (the layout of John Tromp's Fhourstones and Pascal Pons'
solver).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium
import numpy as np
from gymnasium import spaces

from rlarena.envs.multi_agent import ALL, MultiAgentDict, MultiAgentEnv, env_config
from rlarena.errors import EnvError

ENV_NAME = "connect_four"  # the name the registry table gives ConnectFourMultiAgent

ROWS, COLS = 6, 7
AGENTS = ("player_0", "player_1")  # seat 0 moves first; the board stores seat + 1

# -- bitboards ---------------------------------------------------------------------------------------
COL_BITS = ROWS + 1  # bits per column: 6 cells and the sentinel
BOTTOM = sum(1 << (c * COL_BITS) for c in range(COLS))  # the bottom cell of every column
BOARD_MASK = BOTTOM * ((1 << ROWS) - 1)  # every cell, no sentinel
COLUMN_MASKS = tuple(((1 << ROWS) - 1) << (c * COL_BITS) for c in range(COLS))
DIRECTIONS = (1, COL_BITS, COL_BITS - 1, COL_BITS + 1)  # vertical, horizontal, both diagonals
# CELL_BITS[row, col]: the bit of the cell in PettingZoo's layout (row 0 at the top)
CELL_BITS = np.array([[1 << (c * COL_BITS + ROWS - 1 - r) for c in range(COLS)] for r in range(ROWS)], np.uint64)


def _lines_of_four() -> np.ndarray:
    """intp [69, 4]: the flat cells (row * 7 + col, row 0 at the top) of every line of four."""
    lines = []
    for r in range(ROWS):
        for c in range(COLS):
            for dr, dc in ((0, 1), (1, 0), (1, 1), (-1, 1)):
                cells = [(r + k * dr, c + k * dc) for k in range(4)]
                if all(0 <= rr < ROWS and 0 <= cc < COLS for rr, cc in cells):
                    lines.append([rr * COLS + cc for rr, cc in cells])
    return np.array(lines, np.intp)


LINES_OF_FOUR = _lines_of_four()


def has_four(p: int) -> bool:
    """True when the bitboard p holds four in a row."""
    for d in DIRECTIONS:
        m = p & (p >> d)
        if m & (m >> (2 * d)):
            return True
    return False


def has_four_batch(p: np.ndarray) -> np.ndarray:
    """has_four over a uint64 array of bitboards -> bool array."""
    won = np.zeros(p.shape, bool)
    for d in DIRECTIONS:
        m = p & (p >> np.uint64(d))
        won |= (m & (m >> np.uint64(2 * d))) != 0
    return won


def planes_to_bitboards(observation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Observation planes [B, 6, 7, 2] -> (the mover's, the opponent's) uint64 bitboards [B]."""
    planes = np.asarray(observation).astype(bool)
    mine = np.bitwise_or.reduce(np.where(planes[..., 0], CELL_BITS, np.uint64(0)).reshape(len(planes), -1), axis=1)
    theirs = np.bitwise_or.reduce(np.where(planes[..., 1], CELL_BITS, np.uint64(0)).reshape(len(planes), -1), axis=1)
    return mine, theirs


# -- one game (shared by the AEC env and the MultiAgentEnv) -------------------------------------------
class Game:
    """One board. `board` is PettingZoo's encoding: int8 [6, 7], 0 empty, 1 player_0, 2 player_1,
    row 0 at the top. `play` assumes a legal column; callers decide what an illegal one means."""

    __slots__ = ("bits", "board", "heights", "moves", "views")

    def __init__(self) -> None:
        self.board = np.zeros((ROWS, COLS), np.int8)
        self.views = np.zeros((2, ROWS, COLS, 2), np.int8)  # views[seat]: seat's observation planes
        self.heights = [0] * COLS  # pieces per column
        self.bits = [0, 0]  # bitboard per seat
        self.moves = 0

    def reset(self) -> None:
        self.board[:] = 0
        self.views[:] = 0
        self.heights = [0] * COLS
        self.bits = [0, 0]
        self.moves = 0

    def legal(self, col: int) -> bool:
        return self.heights[col] < ROWS

    def legal_mask(self) -> np.ndarray:
        return np.array([h < ROWS for h in self.heights], np.int8)

    def play(self, col: int, seat: int) -> bool:
        """Drop seat's piece into col; True if it made four in a row."""
        h = self.heights[col]
        row = ROWS - 1 - h
        self.board[row, col] = seat + 1
        self.views[seat, row, col, 0] = self.views[1 - seat, row, col, 1] = 1
        self.heights[col] = h + 1
        self.bits[seat] |= 1 << (col * COL_BITS + h)
        self.moves += 1
        return has_four(self.bits[seat])

    def full(self) -> bool:
        return self.moves == ROWS * COLS

    def planes(self, seat: int) -> np.ndarray:
        """int8 [6, 7, 2]: plane 0 seat's pieces, plane 1 the opponent's (a new array)."""
        return self.views[seat].copy()


def observation_space() -> spaces.Dict:
    """connect_four_v3's observation space (built the same way, so it compares equal)."""
    return spaces.Dict(
        {
            "observation": spaces.Box(low=0, high=1, shape=(ROWS, COLS, 2), dtype=np.int8),
            "action_mask": spaces.Box(low=0, high=1, shape=(COLS,), dtype=np.int8),
        }
    )


# -- rendering -----------------------------------------------------------------------------------------
RENDER_MODES = ("ansi", "rgb_array")
CELL_PX = 48  # rgb_array: pixels per cell
_COLOURS = np.array([[245, 245, 245], [220, 40, 40], [240, 200, 30]], np.uint8)  # empty, player_0, player_1
_BLUE = np.array([30, 80, 200], np.uint8)


def render_ansi(board: np.ndarray) -> str:
    """The board as text: X = player_0, O = player_1, column numbers underneath."""
    symbols = ".XO"
    rows = [" ".join(symbols[v] for v in row) for row in np.asarray(board)]
    return "\n".join(rows + [" ".join(str(c) for c in range(COLS))]) + "\n"


@functools.cache
def _disc() -> np.ndarray:
    yy, xx = np.mgrid[:CELL_PX, :CELL_PX] + 0.5
    centre, radius = CELL_PX / 2, CELL_PX * 0.4
    return (yy - centre) ** 2 + (xx - centre) ** 2 <= radius**2


def render_rgb(board: np.ndarray) -> np.ndarray:
    """uint8 [6 * CELL_PX, 7 * CELL_PX, 3]: a blue board with a disc per cell (red player_0,
    yellow player_1, white empty). Plain numpy, no pygame."""
    discs = _COLOURS[np.asarray(board, np.intp)]  # [6, 7, 3]
    big = np.repeat(np.repeat(discs, CELL_PX, axis=0), CELL_PX, axis=1)  # [6*px, 7*px, 3]
    inside = np.tile(_disc(), (ROWS, COLS))[..., None]
    return np.where(inside, big, _BLUE).astype(np.uint8)


def _render(board: np.ndarray, mode: str | None) -> str | np.ndarray | None:
    if mode == "ansi":
        return render_ansi(board)
    if mode == "rgb_array":
        return render_rgb(board)
    return None


def _check_render_mode(owner: str, render_mode: str | None) -> None:
    if render_mode not in (None, *RENDER_MODES):
        raise EnvError(
            f"{owner} render_mode {render_mode!r} is not supported; use None, 'ansi' (render() "
            f"returns the board as text) or 'rgb_array' (an image array)."
        )


# -- the PettingZoo AEC env ------------------------------------------------------------------------------
def env(render_mode: str | None = None) -> Any:
    """A PettingZoo AEC env with exactly connect_four_v3's behaviour, on rlarena's rules.

    The wrapper stack is PettingZoo's own, applied as connect_four_v3.env() applies it:
    TerminateIllegalWrapper(illegal_reward=-1) (an illegal move ends the game: mover -1, other 0,
    every agent flagged terminated *and* truncated, agent_selection moved to player_0 for the dead
    steps), AssertOutOfBoundsWrapper (an action outside Discrete(7) is an AssertionError) and
    OrderEnforcingWrapper (errors before reset). Only render modes differ: "ansi" and "rgb_array"
    (numpy) instead of pygame's "human" and "rgb_array".
    """
    from pettingzoo.utils import wrappers  # type: ignore[import-untyped]

    raw = raw_env(render_mode=render_mode)
    wrapped = wrappers.TerminateIllegalWrapper(raw, illegal_reward=-1)
    wrapped = wrappers.AssertOutOfBoundsWrapper(wrapped)
    return wrappers.OrderEnforcingWrapper(wrapped)


def raw_env(render_mode: str | None = None) -> Any:
    """The unwrapped AEC env (connect_four_v3's raw_env); most callers want env()."""
    return _aec_class()(render_mode=render_mode)


def __getattr__(name: str) -> Any:
    # `from rlarena.games.connect_four.rules import ConnectFourAEC` (and pickling) build the class on demand,
    # so that importing this module never imports pettingzoo
    if name == "ConnectFourAEC":
        return _aec_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _aec_class() -> type:
    from gymnasium.utils import EzPickle
    from pettingzoo import AECEnv  # type: ignore[import-untyped]

    class ConnectFourAEC(AECEnv, EzPickle):
        """connect_four_v3's raw_env on rlarena's rules. Line for line the same state changes:
        rewards are set only when the game ends and never cleared by a live move; terminations are
        set for both agents on a win or a full board; agent_selection then moves to the other agent,
        which is the one observe() gives a mask to (the legal columns of the final board); done
        agents leave through AECEnv._was_dead_step. Like the original, reset() leaves
        _skip_agent_selection alone."""

        metadata: ClassVar[dict[str, Any]] = {
            "render_modes": list(RENDER_MODES),
            "name": "rlarena_connect_four_v3",
            "is_parallelizable": False,
            "render_fps": 2,
        }
        agents: list[str]
        agent_selection: str
        rewards: dict[str, float]
        _cumulative_rewards: dict[str, float]
        terminations: dict[str, bool]
        truncations: dict[str, bool]
        infos: dict[str, dict[str, Any]]

        def __init__(self, render_mode: str | None = None) -> None:
            EzPickle.__init__(self, render_mode)
            super().__init__()
            _check_render_mode("connect_four env()", render_mode)
            self.render_mode = render_mode
            self.game = Game()
            self.agents = list(AGENTS)
            self.possible_agents = self.agents[:]
            self.action_spaces = {agent: spaces.Discrete(COLS) for agent in self.agents}
            self.observation_spaces = {agent: observation_space() for agent in self.agents}

        def observation_space(self, agent: str) -> spaces.Space:
            return self.observation_spaces[agent]

        def action_space(self, agent: str) -> spaces.Space:
            return self.action_spaces[agent]

        def observe(self, agent: str) -> dict[str, np.ndarray]:
            seat = self.possible_agents.index(agent)
            mask = self.game.legal_mask() if agent == self.agent_selection else np.zeros(COLS, np.int8)
            return {"observation": self.game.planes(seat), "action_mask": mask}

        def step(self, action: int | None) -> None:
            if self.truncations[self.agent_selection] or self.terminations[self.agent_selection]:
                self._was_dead_step(action)
                return
            col = int(action)  # type: ignore[arg-type]
            assert self.game.legal(col), "played illegal move."  # as connect_four_v3 (the wrapper comes first)
            mover = self.agent_selection
            won = self.game.play(col, self.agents.index(mover))
            next_agent = self.agents[1 - self.agents.index(mover)]
            if won:
                self.rewards[mover] += 1
                self.rewards[next_agent] -= 1
                self.terminations = dict.fromkeys(self.agents, True)
            elif self.game.full():
                self.terminations = dict.fromkeys(self.agents, True)
            self.agent_selection = next_agent
            self._accumulate_rewards()

        def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
            # the game has no randomness: seed and options are accepted and unused, as in connect_four_v3
            self.game.reset()
            self.agents = self.possible_agents[:]
            self.rewards = dict.fromkeys(self.agents, 0)
            self._cumulative_rewards = dict.fromkeys(self.agents, 0)
            self.terminations = dict.fromkeys(self.agents, False)
            self.truncations = dict.fromkeys(self.agents, False)
            self.infos = {agent: {} for agent in self.agents}
            self.agent_selection = self.agents[0]

        def render(self) -> str | np.ndarray | None:
            if self.render_mode is None:
                gymnasium.logger.warn("You are calling render method without specifying any render mode.")
                return None
            return _render(self.game.board, self.render_mode)

        def close(self) -> None:
            """Nothing to release (no window)."""

    # pickled (EzPickle) as rlarena.games.connect_four.rules:ConnectFourAEC, found through the module __getattr__
    ConnectFourAEC.__module__, ConnectFourAEC.__qualname__ = __name__, "ConnectFourAEC"
    return ConnectFourAEC


# -- N games at once ------------------------------------------------------------------------------------
class BatchedConnectFour:
    """`num_games` Connect Four games stepped at once with numpy; finished games restart at once.

    Each call is one move in every game, by that game's mover (player_0 starts every game):

        obs = games.reset()                        # the movers' observations
        obs, mover_reward, other_reward, done, info = games.step(actions)   # actions: int [N]

    obs: {"observation": int8 [N, 6, 7, 2] from the mover's view (plane 0 the mover's pieces),
          "action_mask": int8 [N, 7]} -- exactly what the AEC env's observe(agent_selection) gives
          in each game. After a step whose game ended (done[i]), obs[i] is the first observation of
          the next game (an empty board, player_0 to move): autoreset in the same step.
    mover_reward, other_reward: float32 [N], for the player who just moved and for the waiting one.
          Non-zero only when the game ended: a win gives (+1, -1); an illegal move (a full column)
          gives (-1, 0) and ends the game, as in connect_four_v3; a draw gives (0, 0). They equal the
          AEC env's final cumulative rewards of the two agents.
    done: bool [N], the game ended in this step (there is no truncation in Connect Four).
    info: {"mover": int8 [N], the seat (0 = player_0, 1 = player_1) that just moved;
           "illegal": bool [N], the move was into a full column}. The same arrays are reused.
    `to_play` (int8 [N]) is the seat to move next in each game; `board` is int8 [N, 6, 7] in
    PettingZoo's encoding (0 empty, 1 player_0, 2 player_1, row 0 at the top); `moves` (int8 [N]) the
    moves played in each game; `agents` the seats and `max_moves` the longest game (what the match
    harness, rlarena.multiagent.matches, reads).
    Actions outside 0..6 raise ValueError (connect_four_v3 asserts).
    """

    def __init__(self, num_games: int) -> None:
        if int(num_games) < 1:
            raise EnvError(f"BatchedConnectFour needs num_games >= 1, got {num_games}.")
        n = self.num_games = int(num_games)
        self.agents, self.max_moves = AGENTS, ROWS * COLS
        self.board = np.zeros((n, ROWS, COLS), np.int8)
        self.heights = np.zeros((n, COLS), np.int8)  # pieces per column
        self.bits = np.zeros((n, 2), np.uint64)  # bitboard per seat
        self.to_play = np.zeros(n, np.int8)
        self.moves = np.zeros(n, np.int8)
        self._rows = np.arange(n)
        self._info = {"mover": np.zeros(n, np.int8), "illegal": np.zeros(n, bool)}

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """Start every game afresh; returns the movers' observations. The game has no randomness:
        seed is accepted for the Gymnasium-style signature and unused."""
        del seed
        self.board[:] = 0
        self.heights[:] = 0
        self.bits[:] = 0
        self.to_play[:] = 0
        self.moves[:] = 0
        return self.observe()

    def reset_to(self, openings: Sequence[Sequence[int]]) -> dict[str, np.ndarray]:
        """Start every game afresh and play game i's opening moves (columns, player_0 first) in it;
        returns the movers' observations. An opening must be legal and leave its game running (no
        four, board not full). Games that end later still restart from the empty board (autoreset)."""
        if len(openings) != self.num_games:
            raise EnvError(
                f"BatchedConnectFour.reset_to takes one opening per game ({self.num_games}), got {len(openings)}."
            )
        self.reset()
        for i, opening in enumerate(openings):
            for col in opening:
                col = int(col)
                if not 0 <= col < COLS or self.heights[i, col] >= ROWS:
                    raise EnvError(
                        f"Opening {list(opening)} of game {i} plays column {col}, which is not a "
                        f"legal column (0..{COLS - 1}, not full) there."
                    )
                h, seat = int(self.heights[i, col]), int(self.to_play[i])
                self.board[i, ROWS - 1 - h, col] = seat + 1
                self.heights[i, col] = h + 1
                self.bits[i, seat] |= np.uint64(1 << (col * COL_BITS + h))
                self.moves[i] += 1
                self.to_play[i] ^= 1
                if has_four(int(self.bits[i, seat])) or self.moves[i] == ROWS * COLS:
                    raise EnvError(
                        f"Opening {list(opening)} of game {i} ends the game; an opening must leave the game running."
                    )
        return self.observe()

    def observe(self) -> dict[str, np.ndarray]:
        """The movers' observations (new arrays)."""
        mine = (self.to_play + 1)[:, None, None]  # the mover's piece value
        observation = np.stack((self.board == mine, self.board == 3 - mine), axis=3).view(np.int8)
        return {"observation": observation, "action_mask": self.legal_mask()}

    def legal_mask(self) -> np.ndarray:
        """int8 [N, 7]: 1 where the column is not full."""
        return (self.heights < ROWS).view(np.int8)

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        cols = np.asarray(actions)
        if cols.shape != (self.num_games,) or cols.dtype.kind not in "iu":
            raise ValueError(
                f"BatchedConnectFour.step takes one integer column per game: an int array of "
                f"shape ({self.num_games},), got {cols.dtype} {cols.shape}."
            )
        if cols.min() < 0 or cols.max() >= COLS:
            raise ValueError(f"Connect Four columns are 0..{COLS - 1}; got {cols.min()}..{cols.max()}.")
        cols = cols.astype(np.intp, copy=False)
        rows, seat = self._rows, self.to_play
        height = self.heights[rows, cols]
        legal = height < ROWS
        illegal = ~legal
        if illegal.any():
            rows, cols, height, seat = rows[legal], cols[legal], height[legal], seat[legal]
        self.board[rows, ROWS - 1 - height, cols] = seat + 1
        self.heights[rows, cols] = height + 1
        bit = np.left_shift(np.uint64(1), (cols * COL_BITS + height).astype(np.uint64))
        self.bits[rows, seat] |= bit
        self.moves[rows] += 1
        won = np.zeros(self.num_games, bool)
        won[rows] = has_four_batch(self.bits[rows, seat])
        done = won | illegal | (self.moves == ROWS * COLS)
        mover_reward = won.astype(np.float32) - illegal
        other_reward = -won.astype(np.float32)
        info = self._info
        info["mover"][:] = self.to_play
        info["illegal"][:] = illegal
        self.to_play ^= 1
        if done.any():
            self.board[done] = 0
            self.heights[done] = 0
            self.bits[done] = 0
            self.to_play[done] = 0
            self.moves[done] = 0
        return self.observe(), mover_reward, other_reward, done, info


# -- one game as an rlarena MultiAgentEnv ------------------------------------------------------------------
DEFAULTS: dict[str, Any] = {"render_mode": None}


class ConnectFourMultiAgent(MultiAgentEnv):
    """Connect Four as a turn-based MultiAgentEnv: obs holds only the agent to move, step takes
    {mover: column}.

    Every value equals what PettingZooAECAdapter(connect_four_v3.env()) returns (tested), so the two
    are interchangeable: when the game ends, obs holds the final observation of both agents (the
    waiting agent first, as the AEC env's dead steps select them; each carries the mask of the
    non-full columns, because the AEC env selects each agent for its dead step), rewards pays both
    (win +1.0 / -1.0, draw 0.0 / 0.0, illegal move -1.0 for the mover, 0.0 for the other; illegal
    means a full column and ends the game, as in connect_four_v3), terminateds is True for both and
    "__all__", truncateds is all False. A non-final step returns the next mover only, with reward 0.0.
    `config` keys: render_mode (None, "ansi", "rgb_array").
    """

    metadata = {"render_modes": list(RENDER_MODES), "name": ENV_NAME, "render_fps": 2}  # noqa: RUF012

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        config = env_config("ConnectFourMultiAgent", config, DEFAULTS)
        _check_render_mode("ConnectFourMultiAgent", config["render_mode"])
        self.render_mode: str | None = config["render_mode"]
        self.possible_agents = list(AGENTS)
        self.agents = []
        self.observation_spaces = {agent: observation_space() for agent in AGENTS}
        self.action_spaces = {agent: spaces.Discrete(COLS) for agent in AGENTS}
        self.game = Game()
        self.to_play = 0  # seat to move
        self.over = True  # no episode running (before reset, after the end)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[MultiAgentDict, MultiAgentDict]:
        super().reset(seed=seed, options=options)
        self.game.reset()
        self.to_play, self.over = 0, False
        self.agents = list(AGENTS)
        return {AGENTS[0]: self._observe(0, True)}, {AGENTS[0]: {}}

    def _observe(self, seat: int, masked: bool) -> dict[str, np.ndarray]:
        mask = self.game.legal_mask() if masked else np.zeros(COLS, np.int8)
        return {"observation": self.game.planes(seat), "action_mask": mask}

    def step(
        self, action_dict: MultiAgentDict
    ) -> tuple[  # type: ignore[override]  # see MultiAgentEnv.step
        MultiAgentDict, MultiAgentDict, MultiAgentDict, MultiAgentDict, MultiAgentDict
    ]:
        if self.over:
            raise EnvError(
                "step() called before reset() or after the episode ended ('__all__' was True); call reset() first."
            )
        seat = self.to_play
        mover, other = AGENTS[seat], AGENTS[1 - seat]
        if set(action_dict) != {mover}:
            raise EnvError(
                f"Connect Four is turn-based: step() takes exactly one action, for {mover!r} (the only "
                f"agent in the last obs), got actions for {sorted(map(str, action_dict))}."
            )
        action = action_dict[mover]
        if not self.action_spaces[mover].contains(action):
            raise EnvError(f"{mover}'s action {action!r} is not a column 0..{COLS - 1} (Discrete({COLS})).")
        col = int(action)
        if not self.game.legal(col):
            # TerminateIllegalWrapper's dead steps select player_0 first, then player_1
            return self._end((0, 1), {mover: -1.0, other: 0.0})
        if self.game.play(col, seat):
            return self._end((1 - seat, seat), {other: -1.0, mover: 1.0})
        if self.game.full():
            return self._end((1 - seat, seat), {other: 0.0, mover: 0.0})
        self.to_play = 1 - seat
        return (
            {other: self._observe(1 - seat, True)},
            {other: 0.0},
            {other: False, ALL: False},
            {other: False, ALL: False},
            {other: {}},
        )

    def _end(
        self, order: tuple[int, int], rewards: dict[str, float]
    ) -> tuple[MultiAgentDict, MultiAgentDict, MultiAgentDict, MultiAgentDict, MultiAgentDict]:
        self.over = True
        self.agents = []
        obs = {AGENTS[s]: self._observe(s, True) for s in order}
        rewards = {agent: rewards[agent] for agent in obs}
        return (
            obs,
            rewards,
            {**dict.fromkeys(obs, True), ALL: True},
            {**dict.fromkeys(obs, False), ALL: False},
            {agent: {} for agent in obs},
        )

    def render(self) -> str | np.ndarray | None:
        return _render(self.game.board, self.render_mode)
