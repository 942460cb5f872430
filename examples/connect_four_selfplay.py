"""Connect Four walk-through (the seed project): the env, action masks, opponents, a self-play
league callback, training and an evaluation table.

    python examples/connect_four_selfplay.py [--iters 30]

The full PPO league recipe is tuned_examples/ppo/connect_four_selfplay.py; the shipped agent is
AlphaZero's (tuned_examples/alphazero/connect_four.py).
"""

import argparse

import gymnasium as gym
import numpy as np

import rlarena
from rlarena import PolicySpec, PPOConfig
from rlarena.games.connect_four.league import ConnectFourLeague
from rlarena.games.connect_four.matches import evaluation_table, format_table
from rlarena.games.connect_four.opponents import OPPONENTS
from rlarena.games.connect_four.rules import BatchedConnectFour, ConnectFourMultiAgent, env, observation_space
from rlarena.multiagent.league import league_mapping_fn

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--iters", type=int, default=30)
args = parser.parse_args()

# 1. The game: a PettingZoo AEC env with exactly connect_four_v3's behaviour (rlarena's own numpy
#    rules), a MultiAgentEnv form for training, and a batched form that plays many games at once.
aec = env(render_mode="ansi")
aec.reset(seed=0)
obs, reward, terminated, truncated, info = aec.last()
print("observation planes", obs["observation"].shape, "(mover's pieces, opponent's), mask", obs["action_mask"])
rlarena.check_env(ConnectFourMultiAgent())
games = BatchedConnectFour(4)
batch = games.reset()
print("batched: movers' masks", batch["action_mask"].tolist())

# 2. Opponents are Policies: heuristics from the seed tutorial, a greedy scorer and negamax.
spaces = (observation_space(), gym.spaces.Discrete(7))
print("opponents:", ", ".join(OPPONENTS))

# 3. Self-play: the learner ("learned") against a league; ConnectFourLeague (a Callbacks subclass)
#    adds negamax depths and frozen snapshots of the learner as it gets better; seats alternate.
config = (
    PPOConfig()
    .environment("connect_four")
    .env_runners(num_envs_per_env_runner=32)
    .training(train_batch_size=8192, minibatch_size=1024, num_epochs=4, lr=3e-4, entropy_coeff=0.01,
              # masked logits: illegal columns are never chosen; board_features adds the lines of four
              # (win / block / unsafe per column) to the planes (rlarena/games/connect_four/features.py)
              model={"fcnet_hiddens": [256, 256], "board_features": "connect_four"})
    .multi_agent(policies={"learned": PolicySpec(),
                           **{name: PolicySpec(policy_class=OPPONENTS[name])
                              for name in ("random", "always_same", "linear", "beat_last", "smart")}},
                 policy_mapping_fn=league_mapping_fn, policies_to_train=["learned"])
    .callbacks(ConnectFourLeague)
    .debugging(seed=0)
)
algo = config.build()
for _ in range(args.iters):
    result = algo.train()
    print(f"iter {result['training_iteration']:3d}  league score {result['league/score']:.2f}  "
          f"league size {result['league/size']}")

# 4. Evaluation: greedy play, both seats, against each opponent.
learned = algo.get_policy("learned")
table = evaluation_table(learned, {name: OPPONENTS[name](*spaces) for name in ("random", "smart", "negamax_1")}, 20)
print(format_table(table))
column = learned.compute_actions(batch, explore=False)
print("the learner's first moves in the 4 new games:", np.asarray(column).tolist())
algo.stop()
