"""Two-player games, one package or module per game, and the search that plays them (no torch here).

- base.py: `TwoPlayerGame`, the protocol AlphaZero plays (positions as immutable values, legal moves,
  step, terminal value, the network's encoding, board symmetries), and `make_game(name)`.
- mcts.py: MCTS with PUCT over a policy/value network, batched across trees, with an MCTS-Solver;
  `SearchPolicy` plays it as an rlarena Policy (served on onnxruntime by the Connect Four page).
- tic_tac_toe.py: a game small enough to check perfect play (`solve`).
- connect_four/: everything Connect Four (rules, opponents, solver, matches, league, page, agent).
"""

from rlarena.games.base import GAMES, TwoPlayerGame, make_game

__all__ = ["GAMES", "TwoPlayerGame", "make_game"]
