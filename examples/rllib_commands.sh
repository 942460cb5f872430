#!/usr/bin/env bash
# The `rllib` commands of Anyscale's "Introduction to RLlib" ("RLlib in 60 Seconds"), as rlarena commands:
# `rllib` became `rlarena` and nothing else. What differs when they run:
#   - `--ray-address auto` runs the trials on the Ray cluster running on this machine; when none runs, a
#     one-line notice says they run on a local Ray bound to 127.0.0.1 instead.
#   - RLlib wrote to ~/ray_results/default/PPO_CartPole-v1_.../checkpoint_20/; rlarena writes to
#     ./runs/PPO_CartPole-v1_<date>/PPO_CartPole-v1_00000/checkpoints/checkpoint_000020/. The tutorial's
#     rollout.sh looked up the latest checkpoint directory; `rlarena rollout` takes the run directory
#     and plays its latest checkpoint.
#   - RLlib's rollout played 10000 steps unless told otherwise; rlarena's plays 5 episodes (or --steps N).
#     Rendering is off unless --render is given, so --no-render (the tutorial's advice in a cloud
#     environment) changes nothing.
# tests/test_rllib_compat.py runs these very lines, giving `rlarena train` a smaller batch (an extra
# --config) so that the 20 iterations take seconds.
set -euo pipefail

# train CartPole with PPO: stop at 20 iterations, a checkpoint every 10 iterations and at the end
rlarena train --run PPO --env CartPole-v1 --stop='{"training_iteration": 20}' --ray-address auto --checkpoint-freq 10 --checkpoint-at-end

# the latest run directory (what the tutorial's rollout.sh found)
checkpoint=$(ls -td runs/PPO_CartPole-v1_*/ | head -n 1)

# roll the trained policy out
rlarena rollout "$checkpoint" --run PPO --no-render
rlarena rollout "$checkpoint" --run PPO --episodes 5
# RLlib's step budget: stop after 1000 env steps in all
rlarena rollout "$checkpoint" --run PPO --steps 1000 --no-render
