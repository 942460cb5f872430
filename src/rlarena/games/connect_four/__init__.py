"""Connect Four, all in one place. Importing this package imports none of its modules
(no torch, gradio or pettingzoo); import the one you need:

- rules.py: the rules in numpy: ROWS/COLS (the one definition of the board size), bitboards, one game
  (`Game`), N games at once (`BatchedConnectFour`), the MultiAgentEnv `ConnectFourMultiAgent`
  (registered as "connect_four") and a PettingZoo-compatible AEC `env()`.
- opponents.py: heuristic and negamax opponents as Policies (`OPPONENTS`, the ladder by name).
- solver.py: the exact solver (Pascal Pons' method); grading.py: move-by-move grades on the stored
  test sets in data/; positions.py: how those positions are sampled.
- matches.py: the generic match harness (rlarena.multiagent.matches) bound to Connect Four: openings
  (TWO_PLY, random_openings), evaluation opponents, tables.
- league.py: `ConnectFourLeague`, the generic self-play league (rlarena.multiagent.league) with the
  negamax ladder.
- features.py: torch-only tactical features and a CNN for the board model
  (`model={"board_features": "connect_four" | "conv"}`), imported by the policy only when asked for.
- app.py: the Gradio page of `rlarena play connect4`.
- agent/: the shipped agent (an AlphaZero checkpoint, its network the one policy "default_policy", and
  that network exported as model.onnx).
"""

from rlarena.policies.policy import register_feature_layer

# the board model's input layers (features.py, torch), by the names `model={"board_features": ...}` takes;
# 6 x 7 cells x 2 planes of observation values
register_feature_layer("connect_four", "rlarena.games.connect_four.features:ConnectFourFeatures", 84)
register_feature_layer("conv", "rlarena.games.connect_four.features:BoardConv", 84)
