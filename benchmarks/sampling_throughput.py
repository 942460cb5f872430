"""Sampling throughput on CartPole-v1 with 64 envs, side by side in this process:

(a) ceiling: Gymnasium's own numpy-batched CartPole vector env (vector_entry_point) stepped with
    precomputed random actions, nothing else;
(b) rlarena: the env runner, algo.runner.sample(), i.e. policy inference (torch, batched) + env step +
    writes into the preallocated rollout storage, for fragments of --fragment steps per env;
(c) SB3 (reference, --no-sb3 to skip): PPO.collect_rollouts on make_vec_env(64) (DummyVecEnv of 64
    Monitor-wrapped envs), which also computes values, log-probs and GAE while collecting.

Each measurement is repeated --rounds times, interleaved so drift hits all of them. Reported: the
best round of each (least disturbed by other jobs on a shared machine), and the headline ratio
runner / ceiling as the median over rounds of the ratio within a round (adjacent measurements, so
drift cancels); target >= 0.40. SB3 is ~10x slower, so it runs one fragment per round.

    python benchmarks/sampling_throughput.py
    python benchmarks/sampling_throughput.py --rounds 2 --fragment 32   # quick validation
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import header

ENV_ID = "CartPole-v1"


def make_raw(num_envs: int, seed: int):
    import gymnasium as gym
    env = gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point")
    env.reset(seed=seed)
    return env


def time_raw(env, actions: np.ndarray) -> float:
    step = env.step
    t0 = time.perf_counter()
    for a in actions:
        step(a)
    return actions.size / (time.perf_counter() - t0)


def make_rlarena(num_envs: int, fragment: int, seed: int, threads: int):
    from rlarena import PPOConfig
    algo = (PPOConfig().environment(ENV_ID)
            .env_runners(num_envs_per_env_runner=num_envs, rollout_fragment_length=fragment)
            .training(train_batch_size=num_envs * fragment, minibatch_size=num_envs * fragment)
            .resources(num_torch_threads=threads)
            .debugging(seed=seed)
            .build())
    assert algo.runner.num_envs == num_envs and len(algo.runner.storage.rewards) == fragment
    return algo


def time_rlarena(algo, fragments: int) -> float:
    sample = algo.runner.sample
    n = algo.runner.storage.rewards.size
    t0 = time.perf_counter()
    for _ in range(fragments):
        sample()
    return fragments * n / (time.perf_counter() - t0)


def make_sb3(num_envs: int, fragment: int, seed: int):
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    env = make_vec_env(ENV_ID, n_envs=num_envs, seed=seed)
    model = PPO("MlpPolicy", env, n_steps=fragment, batch_size=num_envs * fragment, seed=seed, device="cpu")
    _, callback = model._setup_learn(10**9, None)  # what learn() does once before its loop
    callback.on_training_start(locals(), globals())
    return model, callback


def time_sb3(model, callback, fragments: int) -> float:
    t0 = time.perf_counter()
    for _ in range(fragments):
        model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=model.n_steps)
    return fragments * model.n_steps * model.env.num_envs / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-envs", type=int, default=64)
    p.add_argument("--fragment", type=int, default=128, help="steps per env per sample() call")
    p.add_argument("--fragments", type=int, default=2, help="sample() calls per timed round")
    p.add_argument("--rounds", type=int, default=15, help="timed rounds per measurement")
    p.add_argument("--threads", type=int, default=1, help="torch threads (both libraries)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-sb3", action="store_true", help="skip SB3's collection rate")
    args = p.parse_args(argv)

    import torch
    header(f"Sampling throughput, {ENV_ID}, {args.num_envs} envs")
    steps_per_round = args.fragments * args.fragment
    print(f"# per round: {steps_per_round} vector steps x {args.num_envs} envs (SB3: {args.fragment}); "
          f"{args.rounds} rounds; torch threads {args.threads}")

    raw = make_raw(args.num_envs, args.seed)
    rng = np.random.default_rng(args.seed)
    actions = rng.integers(0, 2, size=(steps_per_round, args.num_envs), dtype=np.int64)
    algo = make_rlarena(args.num_envs, args.fragment, args.seed, args.threads)
    sb3 = None if args.no_sb3 else make_sb3(args.num_envs, args.fragment, args.seed)
    torch.set_num_threads(args.threads)

    # warmup: first calls allocate, build autograd-free kernels, fill caches
    time_raw(raw, actions[: min(100, len(actions))])
    time_rlarena(algo, 2)
    if sb3:
        time_sb3(*sb3, 1)

    rates: dict[str, list[float]] = {"ceiling": [], "rlarena": [], "sb3": []}
    for r in range(args.rounds):
        rates["ceiling"].append(time_raw(raw, actions))
        rates["rlarena"].append(time_rlarena(algo, args.fragments))
        if sb3:
            rates["sb3"].append(time_sb3(*sb3, 1))
        print(f"  round {r + 1}: ceiling {rates['ceiling'][-1]:,.0f}  rlarena {rates['rlarena'][-1]:,.0f}"
              + (f"  sb3 {rates['sb3'][-1]:,.0f}" if sb3 else "") + " steps/s", flush=True)
    raw.close()
    algo.stop()
    if sb3:
        sb3[0].env.close()

    best = {k: max(v) for k, v in rates.items() if v}
    paired = statistics.median(r / c for r, c in zip(rates["rlarena"], rates["ceiling"]))
    print()
    print(f"(a) ceiling, raw vector env + precomputed actions: {best['ceiling']:>12,.0f} env steps/s (best round)")
    print(f"(b) rlarena env runner (policy inference + env):   {best['rlarena']:>12,.0f} env steps/s (best round)")
    if sb3:
        print(f"(c) SB3 collect_rollouts (DummyVecEnv, + values):  {best['sb3']:>12,.0f} env steps/s (best round)")
    print(f"RATIO rlarena runner / ceiling = {paired:.2f} (median of per-round ratios; best/best "
          f"{best['rlarena'] / best['ceiling']:.2f})  (target >= 0.40)")
    if sb3:
        paired_sb3 = statistics.median(r / s for r, s in zip(rates["rlarena"], rates["sb3"]))
        print(f"RATIO rlarena runner / SB3 collection = {paired_sb3:.1f}x (median of per-round ratios; "
              f"best/best {best['rlarena'] / best['sb3']:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
