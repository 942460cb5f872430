"""MultiAgentArena (the RLlib tutorial's two-agent grid game), two PPO policies: training time and
env steps until the combined mean return (agent1 + agent2, last 100 episodes) reaches 10, the
tutorial's bar; per seed and the median.

Peer, side by side in this process: the env's own step rate in a plain Python loop with random
actions (the ceiling for any runner that steps this env), against rlarena's multi-agent runner
sampling with policy inference (8 env copies, two policies).

    python benchmarks/multi_agent_arena.py              # 3 seeds
    python benchmarks/multi_agent_arena.py --seeds 1 --max-iters 5   # quick check
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, parse_seeds


def policy_mapping_fn(agent_id, episode, **kwargs):
    return "policy1" if agent_id == "agent1" else "policy2"


def build(seed: int):
    from rlarena import PolicySpec, PPOConfig
    return (PPOConfig().environment("multi_agent_arena").env_runners(num_envs_per_env_runner=8)
            .training(train_batch_size=4000, minibatch_size=500, num_epochs=10, lr=3e-4)
            .multi_agent(policies={"policy1": PolicySpec(), "policy2": PolicySpec()},
                         policy_mapping_fn=policy_mapping_fn)
            .debugging(seed=seed).build())


def raw_env_rate(steps: int) -> float:
    from rlarena.envs.arena import MultiAgentArena
    env = MultiAgentArena()
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 4, (steps, 2))
    start = time.perf_counter()
    for a1, a2 in actions:
        _, _, term, trunc, _ = env.step({"agent1": a1, "agent2": a2})
        if term["__all__"] or trunc["__all__"]:
            env.reset()
    return steps / (time.perf_counter() - start)


def runner_rate(fragments: int) -> float:
    algo = build(0)
    algo.runner.sample()
    start = time.perf_counter()
    steps = sum(algo.runner.sample().steps for _ in range(fragments))
    rate = steps / (time.perf_counter() - start)
    algo.stop()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="3")
    parser.add_argument("--max-iters", type=int, default=100)
    parser.add_argument("--threshold", type=float, default=10.0)
    args = parser.parse_args()
    header("MultiAgentArena, two PPO policies: time to a combined mean return of 10")
    rows = []
    for seed in parse_seeds(args.seeds):
        algo = build(seed)
        result = {}
        for _ in range(args.max_iters):
            result = algo.train()
            if result["episode_return_mean"] >= args.threshold:
                break
        solved = result["episode_return_mean"] >= args.threshold
        rows.append((result["time_total_s"], result["num_env_steps_sampled_lifetime"], solved))
        print(f"  seed {seed}: {'reached' if solved else 'NOT reached'} {result['episode_return_mean']:.2f} after "
              f"{result['num_env_steps_sampled_lifetime']} env steps, {result['time_total_s']:.1f} s of training "
              f"(policy1 {result['policy_reward_mean']['policy1']:.2f}, "
              f"policy2 {result['policy_reward_mean']['policy2']:.2f})", flush=True)
        algo.stop()
    print(f"median: {statistics.median(r[0] for r in rows):.1f} s, {statistics.median(r[1] for r in rows):.0f} "
          f"env steps to {args.threshold:g}; reached {sum(r[2] for r in rows)}/{len(rows)}")
    raw, ours = raw_env_rate(20_000), runner_rate(5)
    print(f"raw env loop, random actions: {raw:,.0f} env steps/s; rlarena runner with two policies: "
          f"{ours:,.0f} env steps/s")
    print(f"RATIO runner / raw env loop = {ours / raw:.2f}")


if __name__ == "__main__":
    main()
