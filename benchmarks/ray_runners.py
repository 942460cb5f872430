"""Remote env runners on Ray (issue 13, first part): start-up to the first result, LunarLander-v3
sampling throughput with 0 (local), 1 and 2 remote runners on this machine, and CartPole-v1 and
LunarLander-v3 sampling with 1, 2 and 4 remote runners on a simulated multi-node cluster.

Start-up: from a fresh process with Ray not running, `PPOConfig().env_runners(num_env_runners=2)...
.build()` (which starts a local Ray) and then the first `train()`; reported: seconds to the built
algorithm and to the first result. RLlib on this machine (issue 13's figures): 9.4 s to build, 11.5 s to
the first iteration.

Throughput: PPO's sampling only (`algo.sample()`, no update), 8 envs per runner, fragments of 128 steps
per env; env steps/s over --seconds of sampling after one warm-up fragment. The raw env's own rate
(one process stepping a Gymnasium SyncVectorEnv of 8 with random actions) is printed beside it.

Cluster: ray.cluster_utils.Cluster on this machine, every node bound to 127.0.0.1: a head with no CPU
(the driver) and --nodes worker nodes of 2 CPUs each; runners of 1 CPU spread over them. The nodes
share this machine's cores, so the rate stops growing at about the core count: the figure shows where.

    python benchmarks/ray_runners.py
    python benchmarks/ray_runners.py --quick    # 1 s per configuration, 1 start-up: checks the script runs
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
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
algo.sample()
sampled = time.perf_counter() - start
algo.train()
first = time.perf_counter() - start
algo.stop()
print(built, sampled, first)
"""


def startup() -> tuple[float, float, float]:
    """Seconds from a fresh process to the built algorithm, its first sample and its first result."""
    out = subprocess.run([sys.executable, "-c", STARTUP], check=True, capture_output=True, text=True)
    built, sampled, first = map(float, out.stdout.split()[-3:])
    return built, sampled, first


def _rss_mib(_runner=None) -> float:
    """Resident memory of this process (or of a runner actor's, when given the runner)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def actor_memory(runners: int = 2) -> list[float]:
    """RSS (MiB) of each remote runner's process after a few LunarLander fragments."""
    import ray

    from rlarena import PPOConfig
    algo = (PPOConfig().environment("LunarLander-v3").env_runners(num_env_runners=runners, num_envs_per_env_runner=8)
            .training(train_batch_size=8 * 128 * runners).build())
    try:
        for _ in range(5):
            algo.sample()
        return ray.get([actor.__ray_call__.remote(_rss_mib) for actor in algo.env_runner_group.remote.actors])
    finally:
        algo.stop()


def throughput(runners: int, seconds: float, env: str = "LunarLander-v3", fragment: int = 128) -> float:
    from rlarena import PPOConfig
    algo = (PPOConfig().environment(env)
            .env_runners(num_env_runners=runners, num_envs_per_env_runner=8)
            .training(train_batch_size=8 * fragment * max(1, runners)).build())
    try:
        algo.sample()  # warm-up: actors started, first weights sent
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            batch = algo.sample()["default_policy"]
            steps += batch.num_steps
        return steps / (time.perf_counter() - start)
    finally:
        algo.stop()


def raw_env(seconds: float, env_id: str = "LunarLander-v3") -> float:
    import gymnasium as gym
    env = gym.make_vec(env_id, num_envs=8, vectorization_mode="sync")
    env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.step(env.action_space.sample())
        steps += 8
    env.close()
    return steps / (time.perf_counter() - start)


@contextlib.contextmanager
def loopback_cluster(num_nodes: int, cpus_per_node: int) -> Iterator[str]:
    """A simulated cluster on this machine (the head, no CPU, plus num_nodes worker nodes), every
    process bound to 127.0.0.1, this process connected as its driver; yields its address. As in
    tests/test_ray_cluster.py: Ray binds to loopback only where it believes clusters are unsupported, and
    a Cluster writes its address where any plain ray.init() on this machine would join it, so it
    gets a temp directory of its own."""
    import ray
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    saved = {k: os.environ.get(k) for k in ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_TMPDIR")}
    tmp = tempfile.mkdtemp(prefix="rlc")  # short: Ray's socket paths live below it
    os.environ.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_TMPDIR=tmp)
    ray_constants.ENABLE_RAY_CLUSTER = False  # read when ray was imported
    loopback = {"node_ip_address": "127.0.0.1"}
    cluster = Cluster(initialize_head=True, head_node_args={**loopback, "num_cpus": 0, "include_dashboard": False})
    try:
        for _ in range(num_nodes):
            cluster.add_node(**loopback, num_cpus=cpus_per_node)
        ray.init(address=cluster.address)
        yield cluster.address
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def cluster_section(num_nodes: int, seconds: float) -> None:
    runners = (1, 2, 4)
    cpus = -(-max(runners) // num_nodes)
    print(f"simulated cluster on this machine ({os.cpu_count()} cores): head without CPU + {num_nodes} worker "
          f"node{'s' if num_nodes > 1 else ''} of {cpus} CPUs, runners of 1 CPU, 8 envs each:")
    for env in ("CartPole-v1", "LunarLander-v3"):
        raw = raw_env(seconds, env)
        with loopback_cluster(num_nodes, cpus):
            rates = {n: throughput(n, seconds, env) for n in runners}
        print(f"  {env} (raw env, one process: {raw:,.0f} env steps/s)")
        for n, rate in rates.items():
            print(f"    {n} remote runner{'s' if n > 1 else ' '}: {rate:,.0f} env steps/s "
                  f"({rate / rates[runners[0]]:.2f}x one runner, {rate / raw:.2f} of the raw env)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="sampling time per configuration")
    parser.add_argument("--startups", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=2, help="worker nodes of the simulated cluster")
    parser.add_argument("--quick", action="store_true", help="1 s per configuration, 1 start-up")
    parser.add_argument("--fragments", type=int, nargs="+", default=[128, 1024],
                        help="steps per env per sample call (PPO's train_batch_size / envs)")
    parser.add_argument("--skip-cluster", action="store_true", help="leave out the simulated cluster")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.startups = 1.0, 1
    header("Ray remote env runners: start-up and sampling throughput, one machine and a simulated cluster")
    runs = [startup() for _ in range(args.startups)]
    print("start-up (fresh process, Ray not running; 2 runners):")
    for built, sampled, first in runs:
        print(f"  built in {built:.1f} s, first sample at {sampled:.1f} s, first result at {first:.1f} s")
    raw = raw_env(args.seconds)
    print(f"raw env (one process, SyncVectorEnv of 8, random actions): {raw:,.0f} env steps/s")
    from rlarena.rollout.ray_cluster import ray_init
    ray_init()  # started once here, shared by the three configurations
    for fragment in args.fragments:
        print(f"LunarLander-v3, 8 envs per runner, {fragment}-step fragments:")
        rates = {n: throughput(n, args.seconds, fragment=fragment) for n in (0, 1, 2)}
        for n, rate in rates.items():
            label = "local (no Ray)" if n == 0 else f"{n} remote runner{'s' if n > 1 else ''}"
            print(f"  {label:>16}: {rate:,.0f} env steps/s ({rate / rates[0]:.2f}x local, "
                  f"{rate / raw:.2f} of the raw env)")
    rss = actor_memory()
    print(f"memory per runner actor (RSS after 5 LunarLander fragments, 8 envs): "
          f"{', '.join(f'{m:.0f}' for m in rss)} MiB (this driver: {_rss_mib():.0f} MiB)")
    import ray
    ray.shutdown()  # the cluster's driver is this process too
    if not args.skip_cluster:
        cluster_section(args.nodes, args.seconds)


if __name__ == "__main__":
    main()
