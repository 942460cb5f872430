"""The game protocol that AlphaZero-style search plays: two players, zero-sum, alternating moves,
perfect information, a fixed number of moves (actions) per position.

A game object holds no position; positions are immutable values (tuples of ints), so `step` returns
a new one and the search can keep any number of them without copying. Everything is from the point
of view of the player to move: `encode` puts that player's pieces in plane 0, and `terminal_value`
is that player's result (-1 when the previous move won, 0 for a draw).

    game = make_game("tic_tac_toe")
    s = game.initial_state()
    s = game.step(s, 4)                          # the centre
    game.legal_moves(s)                          # bool [9]
    game.terminal_value(s)                       # None: the game goes on

Numpy only (no torch): the served search agent runs on onnxruntime.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from rlarena.errors import ConfigError, closest

State = Any  # an immutable value (a tuple of ints for the built-in games)


class TwoPlayerGame(ABC):
    name: ClassVar[str]
    num_actions: ClassVar[int]
    observation_shape: ClassVar[tuple[int, ...]]  # what `encode` returns per position (planes last)
    agents: ClassVar[tuple[str, str]] = ("player_0", "player_1")  # seat 0 moves first
    default_model: ClassVar[dict[str, Any]] = {}  # model options that suit the game (rlarena's model config)

    @abstractmethod
    def initial_state(self) -> State:
        """The start position."""

    def clone(self, state: State) -> State:
        """A copy of `state` (positions are immutable values: the same object)."""
        return state

    @abstractmethod
    def legal_moves(self, state: State) -> np.ndarray:
        """bool [num_actions]: the moves allowed in `state` (all False once the game is over)."""

    @abstractmethod
    def step(self, state: State, action: int) -> State:
        """The position after the player to move plays the legal move `action`."""

    @abstractmethod
    def terminal_value(self, state: State) -> float | None:
        """None while the game goes on; else the result for the player to move in `state`:
        -1.0 (the opponent's last move won), 0.0 (draw) or +1.0."""

    @abstractmethod
    def to_play(self, state: State) -> int:
        """The seat (0 or 1) to move in `state`."""

    @abstractmethod
    def encode(self, states: Sequence[State]) -> np.ndarray:
        """float32 [B, *observation_shape]: the positions as the network reads them, from the mover's
        side (plane 0: the mover's pieces, plane 1: the opponent's)."""

    def from_observation(self, observation: np.ndarray) -> State:
        """The position behind one env observation of the player to move (the inverse of `encode`);
        lets a search agent play in the game's env."""
        raise NotImplementedError(f"{type(self).__name__} cannot read env observations.")

    def symmetries(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The board symmetries other than the identity, as (observation permutation over the flat
        encoding, action permutation): an encoding x and policy p become x[..., obs_perm] and
        p[..., act_perm]. Used to augment training data."""
        return []

    def key(self, state: State) -> Any:
        """A hashable identity of the position (for held-out sets and distinct-game counts)."""
        return state

    def held_out_keys(self) -> frozenset:
        """Keys of positions that training must never learn from (e.g. the evaluation test sets)."""
        return frozenset()

    def render(self, state: State) -> str:
        return repr(state)


def random_opening(game: TwoPlayerGame, rng: np.random.Generator, min_plies: int, max_plies: int) -> State:
    """The position after min_plies..max_plies uniformly random legal moves (stopping short of a move
    that would end the game: an opening never finishes it)."""
    state = game.initial_state()
    for _ in range(int(rng.integers(min_plies, max_plies + 1))):
        nxt = game.step(state, int(rng.choice(np.flatnonzero(game.legal_moves(state)))))
        if game.terminal_value(nxt) is not None:
            break
        state = nxt
    return state


GAMES: dict[str, str] = {  # name -> "module:class", imported when asked for
    "tic_tac_toe": "rlarena.games.tic_tac_toe:TicTacToe",
    "connect_four": "rlarena.games.connect_four.game:ConnectFourGame",
}


def make_game(spec: object) -> TwoPlayerGame:
    """A game from its name ("connect_four", "tic_tac_toe"), a TwoPlayerGame instance or class; any other
    spec (a config's env that is no game) is a ConfigError."""
    if isinstance(spec, TwoPlayerGame):
        return spec
    if isinstance(spec, type) and issubclass(spec, TwoPlayerGame):
        return spec()
    if isinstance(spec, str) and spec in GAMES:
        import importlib

        module, cls = GAMES[spec].split(":")
        return getattr(importlib.import_module(module), cls)()
    raise ConfigError(
        f"AlphaZero plays two-player games given as a name ({', '.join(GAMES)}) or a "
        f"rlarena.games.TwoPlayerGame; got {spec!r}.{closest(str(spec), GAMES)}"
    )
