"""Ship a LunarLander agent: train PPO, evaluate it, package it for the Hugging Face Hub.

The seed tutorial's flow (the Deep RL course's unit 1), with rlarena:
  1. train PPO on LunarLander-v3 with tuned_examples/ppo/lunarlander.yaml's settings
     (stops at a greedy evaluation mean of 200, Gymnasium's "solved", or at --max-iters)
  2. evaluate the greedy policy
  3. save a checkpoint and package it: 10 greedy episodes, a replay video, a model card README.md
     with Hub metadata, config.json, model.safetensors, model.onnx, results.json
  4. with --repo-id and --push (and HF_TOKEN set), upload the folder; load it back either way

    python examples/lunarlander_hub.py                                  # ~2 min on 2 cores, needs Box2D
    python examples/lunarlander_hub.py --repo-id me/ppo-LunarLander-v3 --push
    python examples/lunarlander_hub.py --env CartPole-v1 --max-iters 2 --episodes 2 --out /tmp/pkg   # a smoke test

The same from the command line:
    rlarena train -f tuned_examples/ppo/lunarlander.yaml
    rlarena package runs/<run>/<trial> --out ppo-LunarLander-v3 --repo-id me/ppo-LunarLander-v3 [--push]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import gymnasium as gym
import yaml

import rlarena
from rlarena import PPOConfig

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "tuned_examples" / "ppo" / "lunarlander.yaml"

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--env", default="LunarLander-v3", help="train on this env instead (CartPole-v1: a smoke test)")
parser.add_argument("--max-iters", type=int, default=200, help="stop training after this many iterations")
parser.add_argument("--episodes", type=int, default=10, help="greedy evaluation episodes in the package")
parser.add_argument("--out", default=None, help="the package folder (default: a new temporary directory)")
parser.add_argument("--repo-id", default=None, help="the Hub repository, user/name")
parser.add_argument("--push", action="store_true", help="upload the package (needs HF_TOKEN)")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

# -- 1. Train with the tuned recipe's settings ----------------------------------------------------
recipe = yaml.safe_load(RECIPE.read_text())
settings = dict(recipe["config"])
target = recipe["stop"]["evaluation/episode_return_mean"]  # 200: Gymnasium's "solved"
if args.env != recipe["env"]:
    # a smoke test: tiny batches so an iteration takes well under a second
    settings.update(train_batch_size=256, minibatch_size=64, num_envs_per_env_runner=4, evaluation_interval=1,
                    evaluation_duration=2)
    target = float("inf")
config = PPOConfig().environment(args.env).debugging(seed=args.seed)
config.update_from_dict(settings)
algo = config.build()
print(f"training PPO on {args.env}: batch {config.train_batch_size}, lr {config.lr}, gamma {config.gamma}")
for _ in range(args.max_iters):
    result = algo.train()
    greedy = result.get("evaluation/episode_return_mean")
    print(f"iter {algo.iteration:3d}  env steps {algo.num_env_steps_sampled_lifetime:8d}  "
          f"return mean {result['episode_return_mean']:7.1f}  greedy eval "
          + (f"{greedy:7.1f}" if greedy is not None else "      -"))
    if greedy is not None and greedy >= target:
        print(f"solved: greedy evaluation mean {greedy:.1f} >= {target}")
        break

# -- 2. Evaluate ----------------------------------------------------------------------------------
evaluation = algo.evaluate()
print(f"evaluate(): mean return {evaluation['episode_return_mean']:.1f} ± {evaluation['episode_return_std']:.1f} "
      f"over {evaluation['episodes']} greedy episodes")

# -- 3. Save and package --------------------------------------------------------------------------
out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="lunarlander_hub_")) / f"ppo-{args.env}"
checkpoint = algo.save(out.parent / f"{out.name}-checkpoint")  # beside the package: resume training from it
algo.stop()
print(f"saved checkpoint: {checkpoint}")
package = rlarena.package_to_hub(checkpoint, out, repo_id=args.repo_id, push=args.push, episodes=args.episodes,
                                 seed=args.seed)
results = package.results
print(f"packaged: {package.folder}")
print(f"  mean_reward {results['mean_reward']:.2f} +/- {results['std_reward']:.2f} over {results['episodes']} "
      f"greedy episodes; replay {package.video.name if package.video else '(none)'}")
print("  files: " + ", ".join(sorted(p.name for p in package.folder.iterdir())))
if package.url:
    print(f"pushed: {package.url}")

# -- 4. Load it back: JSON + safetensors, nothing unpickled ---------------------------------------
agent = rlarena.load_from_hub(args.repo_id if package.url else package.folder)
env = gym.make(args.env)
obs, _ = env.reset(seed=args.seed)  # episode 1 of the evaluation: the replay's start
done, episode_return = False, 0.0
while not done:
    obs, reward, terminated, truncated, _ = env.step(agent.compute_single_action(obs, explore=False))
    episode_return += float(reward)
    done = terminated or truncated
env.close()
agent.stop()
print(f"loaded agent, one greedy episode: return {episode_return:.1f} "
      f"(episode 1 of the evaluation: {results['episode_returns'][0]:.1f})")
