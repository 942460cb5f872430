"""Training throughput with sampling that overlaps learning (issue 15): env steps/s of the whole
training loop (sample + update) on LunarLander-v3 with the seed settings (16 envs x 1024 steps,
minibatch 64, 4 epochs), for

- SB3's PPO (DummyVecEnv, the same settings), in this job, for the ratio;
- rlarena's PPO sampling then learning (sample_async=False);
- rlarena's PPO with 1 and 2 sampling processes (sample_async=True; 2 processes: 8 envs each);
- the raw env's ceiling on this machine: 1 and 2 processes stepping a SyncVectorEnv of 16 with random
  actions, no policy, no learner;
- optionally (--cluster) APPO on a simulated Ray cluster (a head without CPU and 2 worker nodes of 2
  CPUs, every process on 127.0.0.1) with 1, 2 and 4 remote runners, to show where it saturates.

Each configuration trains --iters iterations after one warm-up iteration; steps/s is over those.

    python benchmarks/async_throughput.py              # ~3 min
    python benchmarks/async_throughput.py --cluster    # + the Ray cluster section (~2 min more)
    python benchmarks/async_throughput.py --iters 1    # quick check
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import header

SEED = {"num_envs_per_env_runner": 16, "train_batch_size": 16384, "minibatch_size": 64, "num_epochs": 4,
        "lr": 3e-4, "gamma": 0.999, "lambda_": 0.98, "clip_param": 0.2, "entropy_coeff": 0.01,
        "vf_loss_coeff": 0.5, "grad_clip": 0.5, "model": {"fcnet_hiddens": [64, 64], "fcnet_activation": "tanh"}}


def rlarena_rate(iters: int, algo_name: str = "PPO", **options) -> float:
    from rlarena.algorithms import get_algorithm_class
    config = get_algorithm_class(algo_name).config_class().environment("LunarLander-v3")
    algo = config.update_from_dict({**SEED, **options}).debugging(seed=0).build()
    try:
        algo.train()  # warm-up: processes forked, first fragment
        steps0, start = algo.num_env_steps_sampled_lifetime, time.perf_counter()
        for _ in range(iters):
            algo.train()
        return (algo.num_env_steps_sampled_lifetime - steps0) / (time.perf_counter() - start)
    finally:
        algo.stop()


def sb3_rate(iters: int) -> float:
    import gymnasium as gym
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    env = make_vec_env(lambda: gym.make("LunarLander-v3"), n_envs=16, seed=0)
    model = PPO("MlpPolicy", env, n_steps=1024, batch_size=64, n_epochs=4, learning_rate=3e-4, gamma=0.999,
                gae_lambda=0.98, ent_coef=0.01, clip_range=0.2, vf_coef=0.5, max_grad_norm=0.5, seed=0,
                device="cpu", policy_kwargs={"net_arch": [64, 64]})
    model.learn(16384)  # warm-up
    start = time.perf_counter()
    model.learn(16384 * iters, reset_num_timesteps=False)
    return 16384 * iters / (time.perf_counter() - start)


def _raw(seconds: float, out) -> None:
    import gymnasium as gym
    env = gym.make_vec("LunarLander-v3", num_envs=16, vectorization_mode="sync")
    env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.step(env.action_space.sample())
        steps += 16
    out.put(steps / (time.perf_counter() - start))


def raw_rate(processes: int, seconds: float = 5.0) -> float:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_raw, args=(seconds, out)) for _ in range(processes)]
    for p in procs:
        p.start()
    rates = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return sum(rates)


def cluster_rates(iters: int) -> dict[int, float]:
    from ray_runners import loopback_cluster
    rates = {}
    with loopback_cluster(2, 2) as address:
        for n in (1, 2, 4):
            rates[n] = rlarena_rate(iters, "APPO", num_env_runners=n, num_envs_per_env_runner=8,
                                    train_batch_size=8192, minibatch_size=64, num_epochs=4, ray_address=address)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=4, help="timed iterations per configuration (16,384 steps each)")
    parser.add_argument("--cluster", action="store_true", help="also APPO on a simulated Ray cluster")
    args = parser.parse_args()
    header("LunarLander-v3 training throughput, sampling overlapped with learning")
    raw1, raw2 = raw_rate(1), raw_rate(2)
    print(f"raw env ceiling (16 envs per process, random actions): 1 process {raw1:,.0f}/s, 2 processes {raw2:,.0f}/s")
    sb3 = sb3_rate(args.iters)
    rows = [("SB3 PPO (DummyVecEnv)", sb3),
            ("rlarena PPO, sample then learn", rlarena_rate(args.iters)),
            ("rlarena PPO, 1 sampling process", rlarena_rate(args.iters, sample_async=True)),
            ("rlarena PPO, 2 sampling processes x 8 envs", rlarena_rate(args.iters, sample_async=True,
                                                                    num_sampling_processes=2,
                                                                    num_envs_per_env_runner=8))]
    print(f"{'configuration':45s} {'env steps/s':>12s} {'x SB3':>6s} {'of the 2-core raw ceiling':>26s}")
    for name, rate in rows:
        print(f"{name:45s} {rate:12,.0f} {rate / sb3:6.2f} {rate / raw2:26.2f}")
    if args.cluster:
        rates = cluster_rates(args.iters)
        print("APPO on a simulated Ray cluster (head without CPU + 2 nodes of 2 CPUs, loopback), 8 envs per runner:")
        for n, rate in rates.items():
            print(f"  {n} remote runner{'s' if n > 1 else ' '}: {rate:,.0f} env steps/s ({rate / rates[1]:.2f}x one runner, "
                  f"{rate / raw2:.2f} of the 2-core raw ceiling)")


if __name__ == "__main__":
    main()
