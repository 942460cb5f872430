"""Remote env runners on Ray (issue 13, first part): start-up to the first result, and LunarLander-v3
sampling throughput with 0 (local), 1 and 2 remote runners on this machine.

Start-up: from a fresh process with Ray not running, `PPOConfig().env_runners(num_env_runners=2)...
.build()` (which starts a local Ray) and then the first `train()`; reported: seconds to the built
algorithm and to the first result. RLlib on this machine (issue 13's figures): 9.4 s to build, 11.5 s to
the first iteration.

Throughput: PPO's sampling only (`algo.sample()`, no update), 8 envs per runner, fragments of 128 steps
per env; env steps/s over --seconds of sampling after one warm-up fragment. The raw env's own rate
(one process stepping a Gymnasium SyncVectorEnv of 8 with random actions) is printed beside it.

    python benchmarks/ray_runners.py
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import header

STARTUP = """
import time
start = time.perf_counter()
from rlarena import PPOConfig
algo = (PPOConfig().environment("CartPole-v1").env_runners(num_env_runners=2, num_envs_per_env_runner=4)
        .training(train_batch_size=512, minibatch_size=128, num_epochs=1).build())
built = time.perf_counter() - start
algo.train()
first = time.perf_counter() - start
algo.stop()
print(built, first)
"""


def startup() -> tuple[float, float]:
    out = subprocess.run([sys.executable, "-c", STARTUP], check=True, capture_output=True, text=True)
    built, first = map(float, out.stdout.split()[-2:])
    return built, first


def throughput(runners: int, seconds: float) -> float:
    from rlarena import PPOConfig
    algo = (PPOConfig().environment("LunarLander-v3")
            .env_runners(num_env_runners=runners, num_envs_per_env_runner=8)
            .training(train_batch_size=8 * 128 * max(1, runners)).build())
    try:
        algo.sample()  # warm-up: actors started, first weights sent
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            batch = algo.sample()["default_policy"]
            steps += batch.num_steps
        return steps / (time.perf_counter() - start)
    finally:
        algo.stop()


def raw_env(seconds: float) -> float:
    import gymnasium as gym
    env = gym.make_vec("LunarLander-v3", num_envs=8, vectorization_mode="sync")
    env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.step(env.action_space.sample())
        steps += 8
    env.close()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="sampling time per configuration")
    parser.add_argument("--startups", type=int, default=3)
    args = parser.parse_args()
    header("Ray remote env runners: start-up and LunarLander-v3 sampling throughput")
    runs = [startup() for _ in range(args.startups)]
    print("start-up (fresh process, Ray not running; 2 runners):")
    for built, first in runs:
        print(f"  built in {built:.1f} s, first result at {first:.1f} s")
    raw = raw_env(args.seconds)
    print(f"raw env (one process, SyncVectorEnv of 8, random actions): {raw:,.0f} env steps/s")
    from rlarena.distributed import ray_init
    ray_init()  # started once here, shared by the three configurations
    rates = {n: throughput(n, args.seconds) for n in (0, 1, 2)}
    for n, rate in rates.items():
        label = "local (no Ray)" if n == 0 else f"{n} remote runner{'s' if n > 1 else ''}"
        print(f"  {label:>16}: {rate:,.0f} env steps/s ({rate / rates[0]:.2f}x local, {rate / raw:.2f} of the raw env)")


if __name__ == "__main__":
    main()
