"""Quick start: PPO on FrozenLake-v1 (4x4, not slippery), from a random baseline to a restored policy.

The FrozenLake half of the seed tutorial's quick start (RLlib's classic notebook). The same steps as
quickstart_cartpole.py, on an env whose observation is a Discrete cell index: rlarena one-hot
encodes it for the network, so nothing needs wrapping.

    python examples/quickstart_frozenlake.py                 # learns the path in a few seconds
    python examples/quickstart_frozenlake.py --max-iters 3   # a smoke test
"""

from __future__ import annotations

import argparse
import tempfile
import time

import gymnasium as gym
import numpy as np

import rlarena
from rlarena import Algorithm, PPOConfig

ENV_ID = "FrozenLake-v1"
ENV_CONFIG = {"is_slippery": False}  # deterministic moves; the slippery lake is a much harder problem
TARGET = 0.9  # reward is 1 for reaching the goal G, else 0: the mean return is the success rate
ACTION_NAMES = ["LEFT", "DOWN", "RIGHT", "UP"]

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--max-iters", type=int, default=50, help="stop training after this many iterations")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--checkpoint-dir", default=None, help="where to save (default: a new temporary directory)")
parser.add_argument("--quiet", action="store_true", help="no per-iteration lines")
args = parser.parse_args()

# -- 1. The environment ---------------------------------------------------------------------------
env = gym.make(ENV_ID, render_mode="ansi", **ENV_CONFIG)
obs, info = env.reset(seed=args.seed)
print(f"observation_space: {env.observation_space}")  # the cell index, row * 4 + column
print(f"action_space:      {env.action_space}")  # 0 LEFT, 1 DOWN, 2 RIGHT, 3 UP
print(f"sample obs:        {obs!r}")
print(env.render())  # S: start, F: frozen, H: hole (episode ends, reward 0), G: goal (reward 1)

# -- 2. Check it: raises EnvError listing every problem (a correct env passes silently) ------------
rlarena.check_env(env)
print("check_env: OK")

# -- 3a. Random baseline --------------------------------------------------------------------------
env.action_space.seed(args.seed)
random_returns = []
for episode in range(1000):  # episodes are short and a success is rare, so use many
    obs, info = env.reset(seed=args.seed + episode)
    done, episode_return = False, 0.0
    while not done:
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        episode_return += float(reward)
        done = terminated or truncated
    random_returns.append(episode_return)
env.close()
random_mean = float(np.mean(random_returns))
print(f"random policy: mean return {random_mean:.2f} over 1000 episodes")

# -- 3b. Train PPO --------------------------------------------------------------------------------
config = (
    PPOConfig()
    .environment(ENV_ID, env_config=ENV_CONFIG)  # env_config: the kwargs for gymnasium.make
    .env_runners(num_envs_per_env_runner=8)
    # a little entropy bonus keeps exploring until the (sparse) goal has been found a few times
    .training(lr=1e-3, gamma=0.95, lambda_=0.9, train_batch_size=512, minibatch_size=128, num_epochs=10,
              entropy_coeff=0.01)
    .evaluation(evaluation_interval=1, evaluation_duration=20)  # 20 greedy episodes after every iteration
    .debugging(seed=args.seed)
)
algo = config.build()

# What the network sees: the Discrete observation as a one-hot vector of length 16.
print(f"obs 0 as the policy's input: {algo.get_policy().flatten(np.array([0]))[0]}")

start = time.perf_counter()
solved = False
for _ in range(args.max_iters):
    result = algo.train()
    # episode_return_mean: the last 100 training episodes, played with exploration (sampled actions)
    eval_mean = result["evaluation/episode_return_mean"]
    if not args.quiet:
        print(f"iter {result['training_iteration']:3d}  env steps {result['num_env_steps_sampled_lifetime']:6d}  "
              f"return mean {result['episode_return_mean']:4.2f}  greedy eval {eval_mean:4.2f}  "
              f"{result['env_steps_per_sec']:6.0f} steps/s")
    if eval_mean >= TARGET:
        solved = True
        break
wall = time.perf_counter() - start
status = f"reached greedy eval mean >= {TARGET}" if solved else f"stopped at --max-iters {args.max_iters}"
print(f"{status} after {algo.iteration} iterations, "
      f"{algo.num_env_steps_sampled_lifetime} env steps, {wall:.1f} s")

# -- 4. Evaluate ----------------------------------------------------------------------------------
evaluation = algo.evaluate()
print(f"evaluate(): mean return {evaluation['episode_return_mean']:.2f} ± "
      f"{evaluation['episode_return_std']:.2f} over {evaluation['episodes']} episodes")

# -- 5. Save, restore, play -----------------------------------------------------------------------
checkpoint_dir = args.checkpoint_dir or tempfile.mkdtemp(prefix="quickstart_frozenlake_")
path = algo.save(checkpoint_dir)
print(f"saved checkpoint: {path}")

algo2 = Algorithm.from_checkpoint(path)  # env_config travels with the checkpoint
print(f"restored: {algo2} (continues training from iteration {algo2.iteration})")

env = gym.make(ENV_ID, render_mode="ansi", **ENV_CONFIG)
obs, info = env.reset(seed=args.seed)
done, episode_return, moves = False, 0.0, []
while not done:
    action = algo2.compute_single_action(obs, explore=False)  # a Discrete obs goes in as it is
    obs, reward, terminated, truncated, info = env.step(action)
    episode_return += float(reward)
    moves.append(ACTION_NAMES[action])
    done = terminated or truncated
print(f"restored policy, one greedy episode: return {episode_return:.0f} in {len(moves)} moves "
      f"({' '.join(moves[:12])}{' ...' if len(moves) > 12 else ''}); random baseline {random_mean:.2f}")
print(env.render())  # where the episode ended
env.close()

algo2.stop()
algo.stop()
