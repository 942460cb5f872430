"""Ship the Connect Four agent: export it to ONNX, play it with onnxruntime alone.

  1. load the agent shipped with rlarena (src/rlarena/games/connect_four/agent): an AlphaZero
     checkpoint whose one policy, "default_policy", is its network (policy logits and a value)
  2. export it: Algorithm.export_onnx writes model.onnx (observation + action_mask in, logits out)
  3. play games against a negamax opponent with OnnxPolicy (onnxruntime, no torch in the loop),
     printing each move and the final board
  4. the browser app serves the same file: rlarena play connect4 --onnx model.onnx

What plays here is the network alone, its greedy move. The AlphaZero agent proper is that network
inside a Monte Carlo tree search: `rlarena arena --search N` plays it (N simulations per move), and
the page offers it at a few simulation counts (`rlarena play connect4` for the shipped agent, or
--search 50,200 with --onnx; the search runs in numpy over the same ONNX model).

    python examples/connect_four_export_play.py                     # 2 games against negamax depth 3
    python examples/connect_four_export_play.py --games 1 --depth 1 --out /tmp/c4   # a smoke test

The same from the command line:
    rlarena export src/rlarena/games/connect_four/agent --onnx model.onnx   # its only policy
    rlarena arena                       # the shipped network against every opponent: a win/draw/loss table
    rlarena arena --search 200          # the same for the search agent, 200 simulations per move
    rlarena play connect4 --onnx model.onnx --search 50,200
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from rlarena import Algorithm
from rlarena.export import OnnxPolicy
from rlarena.games.connect_four.opponents import NegamaxPolicy
from rlarena.games.connect_four.rules import AGENTS, ConnectFourMultiAgent, render_ansi

SHIPPED = Path(__file__).resolve().parent.parent / "src" / "rlarena" / "games" / "connect_four" / "agent"

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--games", type=int, default=2, help="games to play; the agent alternates seats")
parser.add_argument("--depth", type=int, default=3, choices=range(1, 8), help="the negamax opponent's depth (plies)")
parser.add_argument("--out", default=None, help="where to write model.onnx (default: a new temporary directory)")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

# -- 1-2. Load the shipped checkpoint and export its network -------------------------------------
# One in-process env is enough to load a policy for inference.
algo = Algorithm.from_checkpoint(SHIPPED, config_overrides={"num_envs_per_env_runner": 1, "vectorization_mode": "sync"})
out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="connect_four_onnx_"))
out.mkdir(parents=True, exist_ok=True)
network = algo.get_policy("default_policy")
model = algo.export_onnx(out / "model.onnx", policy_id="default_policy")
print(f"loaded {algo} ({algo.num_env_steps_sampled_lifetime:,} env steps of self-play); exported {model}")

# -- 3. Play with onnxruntime ---------------------------------------------------------------------
agent = OnnxPolicy(model)
env = ConnectFourMultiAgent()
opponent = NegamaxPolicy(env.get_observation_space(AGENTS[0]), env.get_action_space(AGENTS[0]), depth=args.depth,
                         seed=args.seed)
# the exported graph and the torch network choose the same greedy column (checked on the first position;
# not algo.compute_single_action, which for AlphaZero runs the tree search)
obs, _ = env.reset(seed=args.seed)
first = obs[AGENTS[0]]
assert agent.compute_single_action(first, explore=False) == \
    int(network.compute_actions({k: np.asarray(v)[None] for k, v in first.items()}, explore=False)[0])
algo.stop()

score = []
for game in range(args.games):
    seat = game % 2  # the agent moves first (X) in even games, second (O) in odd ones
    names = {AGENTS[seat]: "agent (ONNX)", AGENTS[1 - seat]: f"negamax_{args.depth}"}
    print(f"\ngame {game + 1}: X = {names[AGENTS[0]]}, O = {names[AGENTS[1]]}")
    obs, _ = env.reset(seed=args.seed + game)
    done, rewards = False, {}
    while not done:
        (mover, o), = obs.items()  # turn-based: obs holds the one agent to move
        if mover == AGENTS[seat]:
            column = agent.compute_single_action(o, explore=False)  # greedy: the most likely legal column
        else:
            column = int(opponent.compute_actions({k: np.asarray(v)[None] for k, v in o.items()})[0])
        obs, rewards, terminateds, _, _ = env.step({mover: column})
        print(f"{names[mover]} plays column {column}")
        done = terminateds["__all__"]
    print(render_ansi(env.game.board), end="")
    result = rewards[AGENTS[seat]]
    score.append(result)
    print({1.0: "the agent wins", 0.0: "a draw", -1.0: "negamax wins"}[result])
env.close()
wins, draws = sum(r > 0 for r in score), sum(r == 0 for r in score)
print(f"\nagent against negamax_{args.depth}: {wins} wins, {draws} draws, {len(score) - wins - draws} losses "
      f"in {len(score)} games")

# -- 4. The browser app ---------------------------------------------------------------------------
print(f"\nPlay it yourself in the browser (the network alone; add --search 50,200 for the search agent):"
      f"\n    rlarena play connect4 --onnx {model}")
