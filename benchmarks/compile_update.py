"""Does torch.compile pay for an off-policy update on this CPU? (issue 28: compiled updates, where they pay)

rlarena's SAC on Pendulum-v1 (SB3's / RL-Zoo's settings: [256, 256], batch 256) fills its replay
buffer, then times --steps gradient steps (update_policy) eagerly, and again with the actor and the
critics (online and target) wrapped in torch.compile (inductor, the default mode; each forward compiled in place): the first compiled
steps' wall time is the compile time, then the per-step time. Prints both, the per-step gain, and the
gradient steps a run needs before compiling pays back. Threads: num_torch_threads="auto" (2 here).

    python benchmarks/compile_update.py
    python benchmarks/compile_update.py --steps 300 --mode max-autotune-no-cudagraphs
"""

from __future__ import annotations

import argparse
import sys
import time

from _common import header


def build():
    from rlarena import SACConfig

    algo = (
        SACConfig()
        .environment("Pendulum-v1")
        .training(lr=1e-3, num_steps_sampled_before_learning_starts=100, min_sample_timesteps_per_iteration=300)
        .debugging(seed=0)
        .build()
    )
    algo.train()  # 300 env steps in the buffer, 200 updates taken
    return algo


def time_steps(algo, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        algo.update_policy("default_policy")
    return (time.perf_counter() - start) / steps


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=5, help="compiled steps counted as compile time")
    p.add_argument("--mode", default="default", help="torch.compile mode")
    args = p.parse_args()
    import torch

    header("SAC gradient step on Pendulum-v1: eager vs torch.compile")
    algo = build()
    print(f"# torch threads {algo.num_torch_threads}, mode {args.mode!r}")
    eager = min(time_steps(algo, args.steps) for _ in range(2))
    model = algo.get_policy().model
    learner = algo.learners["default_policy"]
    # each network's forward compiled in place (the modules keep their types, weights and flat views)
    for module in (model.actor, model.critic, learner.targets["critic"].module):
        module.forward = torch.compile(module.forward, mode=args.mode)
    start = time.perf_counter()
    for _ in range(args.warmup):
        algo.update_policy("default_policy")
    compile_s = time.perf_counter() - start
    compiled = min(time_steps(algo, args.steps) for _ in range(2))
    gain = eager - compiled
    print(f"eager    {eager * 1e3:.2f} ms per gradient step")
    print(f"compiled {compiled * 1e3:.2f} ms per gradient step; the first {args.warmup} steps took {compile_s:.1f} s")
    print(f"RATIO eager / compiled = {eager / compiled:.2f}x")
    if gain > 0:
        print(f"pays back after {compile_s / gain:,.0f} gradient steps")
    else:
        print("never pays back: compiled steps are not faster")
    algo.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
