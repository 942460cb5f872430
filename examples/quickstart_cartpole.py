"""Quick start: PPO on CartPole-v1, from a random baseline to a saved and restored policy.

A port of the seed tutorial's CartPole quick start (RLlib's classic notebook):
  1. make the env and look at its spaces        4. evaluate the greedy policy
  2. check it with rlarena.check_env             5. save a checkpoint, restore it, play one episode
  3. a random-policy baseline, then train PPO

    python examples/quickstart_cartpole.py                 # solves CartPole in a few seconds
    python examples/quickstart_cartpole.py --max-iters 3   # a smoke test
"""

from __future__ import annotations

import argparse
import tempfile
import time

import gymnasium as gym
import numpy as np

import rlarena
from rlarena import Algorithm, PPOConfig

ENV_ID = "CartPole-v1"
TARGET = 475.0  # Gymnasium's reward_threshold for CartPole-v1 (an episode is capped at 500)

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--max-iters", type=int, default=200, help="stop training after this many iterations")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--checkpoint-dir", default=None, help="where to save (default: a new temporary directory)")
parser.add_argument("--quiet", action="store_true", help="no per-iteration lines")
args = parser.parse_args()

# -- 1. The environment ---------------------------------------------------------------------------
env = gym.make(ENV_ID)
obs, info = env.reset(seed=args.seed)
print(f"observation_space: {env.observation_space}")  # cart position/velocity, pole angle/velocity
print(f"action_space:      {env.action_space}")  # 0: push left, 1: push right
print(f"sample obs:        {obs}")

# -- 2. Check it: raises EnvError listing every problem (a correct env passes silently) ------------
rlarena.check_env(env)
print("check_env: OK")

# -- 3a. Random baseline: how well does uniform random play do? -----------------------------------
env.action_space.seed(args.seed)
random_returns = []
for episode in range(20):
    obs, info = env.reset(seed=args.seed + episode)
    done, episode_return = False, 0.0
    while not done:
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        episode_return += float(reward)
        done = terminated or truncated
    random_returns.append(episode_return)
env.close()
random_mean = float(np.mean(random_returns))
print(f"random policy: mean return {random_mean:.1f} ± {np.std(random_returns):.1f} over 20 episodes")

# -- 3b. Train PPO --------------------------------------------------------------------------------
# Small batches and many epochs learn CartPole in a few thousand steps; the library defaults
# (SB3's: lr 3e-4, gamma 0.99, lambda 0.95, 2048-step batches) are tuned for harder tasks.
config = (
    PPOConfig()
    .environment(ENV_ID)
    .env_runners(num_envs_per_env_runner=8)  # 8 CartPoles stepped as one vector env
    .training(lr=1e-3, gamma=0.98, lambda_=0.8, train_batch_size=256, minibatch_size=256, num_epochs=20)
    .evaluation(evaluation_interval=5, evaluation_duration=20)  # 20 greedy episodes every 5 iterations
    .debugging(seed=args.seed)
)
algo = config.build()

start = time.perf_counter()
solved = False
for _ in range(args.max_iters):
    result = algo.train()
    # episode_return_mean: the last 100 training episodes, played with exploration (sampled actions)
    eval_mean = result.get("evaluation/episode_return_mean")
    if not args.quiet:
        eval_text = f"{eval_mean:6.1f}" if eval_mean is not None else "     -"
        print(f"iter {result['training_iteration']:3d}  env steps {result['num_env_steps_sampled_lifetime']:6d}  "
              f"return mean {result['episode_return_mean']:6.1f}  greedy eval {eval_text}  "
              f"{result['env_steps_per_sec']:6.0f} steps/s")
    if eval_mean is not None and eval_mean >= TARGET:
        solved = True
        break
wall = time.perf_counter() - start
status = f"reached greedy eval mean >= {TARGET:.0f}" if solved else f"stopped at --max-iters {args.max_iters}"
print(f"{status} after {algo.iteration} iterations, "
      f"{algo.num_env_steps_sampled_lifetime} env steps, {wall:.1f} s")

# -- 4. Evaluate: greedy actions (explore=False) on separate evaluation envs ----------------------
evaluation = algo.evaluate()
print(f"evaluate(): mean return {evaluation['episode_return_mean']:.1f} ± "
      f"{evaluation['episode_return_std']:.1f} over {evaluation['episodes']} episodes")

# -- 5. Save, restore, play -----------------------------------------------------------------------
# A checkpoint is a directory of JSON (config, counters) and safetensors (weights, optimizer state).
checkpoint_dir = args.checkpoint_dir or tempfile.mkdtemp(prefix="quickstart_cartpole_")
path = algo.save(checkpoint_dir)
print(f"saved checkpoint: {path}")

algo2 = Algorithm.from_checkpoint(path)  # rebuilds PPO from the checkpoint alone
print(f"restored: {algo2} (continues training from iteration {algo2.iteration})")

env = gym.make(ENV_ID)
obs, info = env.reset(seed=args.seed + 1000)  # a start the random baseline did not see
done, episode_return = False, 0.0
while not done:
    action = algo2.compute_single_action(obs, explore=False)  # greedy: the most likely action
    obs, reward, terminated, truncated, info = env.step(action)
    episode_return += float(reward)
    done = terminated or truncated
env.close()
print(f"restored policy, one greedy episode: return {episode_return:.0f} "
      f"(random baseline {random_mean:.1f}, {episode_return / random_mean:.0f}x better)")

algo2.stop()
algo.stop()
