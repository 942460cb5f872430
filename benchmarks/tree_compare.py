"""Before/after a refactor: the same seeded training runs in this tree and in another checkout of
rlarena (an earlier commit), alternated in one job, and the ratio of their times.

For changes that keep training bit-identical (checked: the runs print a hash of the trained weights,
which must agree between the trees), the time to a threshold changes by exactly the ratio of the time
per run, so this is the before/after figure of the learning benchmarks without re-running them to
their thresholds.

    git worktree add /tmp/rlarena_before <commit>
    python benchmarks/tree_compare.py --old /tmp/rlarena_before/src              # 5 rounds
    git worktree remove /tmp/rlarena_before

Each run is a fresh interpreter (python -c) with PYTHONPATH set to the tree's src directory; rounds
alternate which tree goes first, and the medians are over rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

RUN = """
import hashlib, time
import numpy as np
import rlarena
from rlarena import {config}
cfg = {build}
algo = cfg.debugging(seed=0).build()
start = time.perf_counter()
for _ in range({iters}):
    algo.train()
elapsed = time.perf_counter() - start
h = hashlib.sha256()
for k, v in sorted(algo.get_policy().get_state().items()):
    h.update(np.ascontiguousarray(v).tobytes())
print(elapsed, algo.num_env_steps_sampled_lifetime, h.hexdigest()[:16], rlarena.__file__)
algo.stop()
"""

# name -> (config class, the config expression, iterations): RL-Zoo-like settings, short runs
CASES = {
    "PPO CartPole": (
        "PPOConfig",
        (
            "PPOConfig().environment('CartPole-v1').env_runners(num_envs_per_env_runner=8)"
            ".training(lr=1e-3, gamma=0.98, lambda_=0.8, train_batch_size=256, minibatch_size=256, "
            "num_epochs=20)"
        ),
        40,
    ),
    "DQN CartPole": (
        "DQNConfig",
        (
            "DQNConfig().environment('CartPole-v1').training(lr=2.3e-3, train_batch_size=64, "
            "num_steps_sampled_before_learning_starts=1000, model={'fcnet_hiddens': [256, 256]}, "
            "min_sample_timesteps_per_iteration=1000)"
        ),
        6,
    ),
    "SAC Pendulum": (
        "SACConfig",
        ("SACConfig().environment('Pendulum-v1').training(lr=1e-3, min_sample_timesteps_per_iteration=500)"),
        3,
    ),
    "TD3 Pendulum": (
        "TD3Config",
        ("TD3Config().environment('Pendulum-v1').training(lr=1e-3, min_sample_timesteps_per_iteration=500)"),
        3,
    ),
    "PPO LunarLander async": (
        "PPOConfig",
        (
            "PPOConfig().environment('LunarLander-v3').env_runners("
            "num_envs_per_env_runner=16, sample_async=True).training("
            "train_batch_size=16384, minibatch_size=64, num_epochs=4, lr=3e-4, gamma=0.999, "
            "lambda_=0.98, entropy_coeff=0.01, grad_clip=0.5, "
            "model={'fcnet_hiddens': [64, 64], 'fcnet_activation': 'tanh'})"
        ),
        6,
    ),
}


def run(src: str, case: str) -> tuple[float, int, str, str]:
    config, build, iters = CASES[case]
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.check_output(
        [sys.executable, "-c", RUN.format(config=config, build=build, iters=iters)],
        text=True,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    elapsed, steps, digest, where = out.split()
    return float(elapsed), int(steps), digest, where


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", required=True, help="the other tree's src directory")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    args = parser.parse_args()
    new = str(Path(__file__).resolve().parent.parent / "src")
    print(f"new: {new}\nold: {args.old}\n")
    print(f"{'case':<14} {'old s (median)':>15} {'new s (median)':>15} {'new/old':>8}  weights")
    for case in args.cases:
        times: dict[str, list[float]] = {"old": [], "new": []}
        digests: dict[str, set[str]] = {"old": set(), "new": set()}
        for r in range(args.rounds):
            order = [("old", args.old), ("new", new)] if r % 2 == 0 else [("new", new), ("old", args.old)]
            for name, src in order:
                elapsed, _, digest, where = run(src, case)
                assert where.startswith(src), f"{name} ran {where}, not the tree at {src}"
                times[name].append(elapsed)
                digests[name].add(digest)
        old, new_t = statistics.median(times["old"]), statistics.median(times["new"])
        same = (
            "identical"
            if digests["old"] == digests["new"] and len(digests["new"]) == 1
            else f"DIFFER {sorted(digests['old'])} vs {sorted(digests['new'])}"
        )
        print(f"{case:<14} {old:>15.3f} {new_t:>15.3f} {new_t / old:>8.3f}  {same}", flush=True)


if __name__ == "__main__":
    main()
