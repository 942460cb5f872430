"""MiniGrid DoorKey 5x5 with dict observations, PPO with a small CNN: wall-clock training time and env
steps to a greedy evaluation mean of --threshold, rlarena vs Stable-Baselines3 with the same network,
side by side in this process.

Env, the same for both: `MiniGrid-DoorKey-5x5-v0` (7 actions, 250-step limit) with its text "mission"
key dropped, as rlarena's `.environment("MiniGrid-DoorKey-5x5-v0")` builds it
(rlarena.envs.minigrid.make_minigrid_env, DropMission): observations
Dict(direction: Discrete(4), image: Box(0, 255, (7, 7, 3), uint8)), the image being MiniGrid's
(object, colour, state) codes of the 7x7 view, not pixels. The zoo's FlatObsWrapper is not used: the
point is the dict path. Reward: 1 - 0.9 * steps / 250 on reaching the goal, 0 otherwise, so a greedy
mean return is about 0.96 x the success rate once learned (the 5x5 room solved in ~11 steps).

Network, the same for both (24,360 parameters each, printed at the start): the image as CHW scaled by
1/255, conv 16 3x3/1, ReLU, conv 32 3x3/1, ReLU (rlarena's default filters for frames under 36x36),
flatten (288), concatenated with the direction one-hot (4), 64 ReLU, shared by the policy head (7
logits) and the value head; orthogonal init (sqrt(2); heads 0.01 and 1) on both sides.
- rlarena: model {conv_filters [[16, 3, 1], [32, 3, 1]], fcnet_hiddens [], post_fcnet_hiddens [64],
  fcnet_activation relu, vf_share_layers True}: the catalog's ObsEncoder (CNN on the uint8 image,
  scaled there; the Discrete one-hot) and one 64-unit layer.
- SB3: PPO("MultiInputPolicy") with `features_extractor_class=DictCNN` (the same layers) and net_arch
  [] (heads on the 64 features), share_features_extractor True. SB3 wraps the env in VecTransposeImage
  (HWC -> CHW) and its preprocess_obs, with normalize_images True (the default), divides the uint8
  image by 255 and one-hots the Discrete direction before the extractor: DictCNN scales nothing
  itself, so both networks see the same numbers. (The default CombinedExtractor cannot be used: its
  NatureCNN needs 36x36.)

PPO settings for both: RL-Zoo's `MiniGrid-DoorKey-5x5-v0` entry: 8 envs x 128 steps, minibatch 64, 10
epochs, lr 2.5e-4, clip 0.2, gamma 0.99, GAE 0.95, vf 0.5, grad clip 0.5, no entropy bonus; without
its `normalize: true` (VecNormalize would standardize the image codes and scale the rewards, which
rlarena has no match for, and it refuses the Discrete direction). SB3: DummyVecEnv (make_vec_env).
Every --eval-every env steps (at the next iteration boundary) the clock pauses for 20 greedy episodes
(SB3: evaluate_policy(deterministic=True), rlarena: algo.evaluate()); a run stops at the first mean >=
--threshold or at --max-steps.

The threshold, 0.9 (20 greedy episodes, mean return): a solved episode here returns ~0.96 (about 10
steps), so 0.9 means at least 19 of the 20 episodes solved (18 give ~0.86). It comes from SB3's own
curve (`--curve --libs sb3`, seed 0, 20 greedy episodes every 4,096 env steps to 200k; mean return /
success rate): 0.000 / 0.00 at every point up to 90,112 steps (no greedy success: the reward is
sparse), then 0.096 / 0.10 (94k), 0.290 / 0.30, 0.145 / 0.15, 0.483 / 0.50, 0.720 / 0.75, 0.719 / 0.75,
**0.961 / 1.00 (118,784)**, 0.913, 0.910, 0.863 (131k), then 0.96 / 1.00 at every point to 188k but
one 0.911 / 0.95 (160k), then a collapse to 0.097 (192k) and 0.818 / 0.85 at 200k: the rise
ends at 118,784 steps (0.961), and 0.9 is the level held after it. rlarena's curve, same seed and
settings: 0.000 up to 102,400, a first 0.240 at 106k, **0.904 at 143,360**, then between 0.62 and 0.95
to 200k. The zoo's ent_coef 0.0 was kept: SB3 learned with it within 120k steps. The first greedy
success comes after ~90-105k steps, and varies from seed to seed, hence the 300k budget.

    python benchmarks/minigrid_dict.py                                         # 5 seeds, both libraries
    python benchmarks/minigrid_dict.py --quick                                 # 1 seed, 20k-step budget, ~1 min
    python benchmarks/minigrid_dict.py --curve --libs sb3 --max-steps 200000   # SB3's greedy curve, seed 0
    python benchmarks/minigrid_dict.py --throughput 10                         # steps/s, + rlarena sample_async
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    every_steps,
    header,
    parse_libs,
    parse_seeds,
    probe_sb3_threads,
    run_rlarena,
    run_sb3,
    run_seeds,
    summarize,
)

ENV_ID = "MiniGrid-DoorKey-5x5-v0"
HP = {
    "n_envs": 8,
    "n_steps": 128,
    "batch_size": 64,
    "n_epochs": 10,
    "learning_rate": 2.5e-4,
    "clip_range": 0.2,
    "ent_coef": 0.0,
    "vf_coef": 0.5,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "max_grad_norm": 0.5,
}
FILTERS = [[16, 3, 1], [32, 3, 1]]
UNITS = 64
EVAL_EPISODES = 20


def make_env(env_config: dict | None = None, render_mode: str | None = None):
    """The env rlarena's `.environment(ENV_ID)` builds: gymnasium.make, the text mission dropped."""
    from rlarena.envs.minigrid import make_minigrid_env

    return make_minigrid_env(ENV_ID, {}, render_mode)


def rlarena_config(seed: int, threads: int, sample_async: bool = False):
    from rlarena import PPOConfig

    return (
        PPOConfig()
        .environment(ENV_ID)
        .env_runners(num_envs_per_env_runner=HP["n_envs"], sample_async=sample_async)
        .training(
            lr=HP["learning_rate"],
            train_batch_size=HP["n_envs"] * HP["n_steps"],
            minibatch_size=HP["batch_size"],
            num_epochs=HP["n_epochs"],
            clip_param=HP["clip_range"],
            entropy_coeff=HP["ent_coef"],
            vf_loss_coeff=HP["vf_coef"],
            gamma=HP["gamma"],
            lambda_=HP["gae_lambda"],
            grad_clip=HP["max_grad_norm"],
            model={
                "conv_filters": FILTERS,
                "fcnet_hiddens": [],
                "post_fcnet_hiddens": [UNITS],
                "fcnet_activation": "relu",
                "vf_share_layers": True,
            },
        )
        .evaluation(evaluation_duration=EVAL_EPISODES)
        .resources(num_torch_threads=threads)
        .debugging(seed=seed)
        .build()
    )


def dict_cnn_class():
    import torch
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
    from torch import nn

    class DictCNN(BaseFeaturesExtractor):
        """rlarena's ObsEncoder for {image, direction} + its 64-unit layer, for SB3. SB3 hands it the
        image as CHW already divided by 255 and the direction already one-hot (preprocess_obs)."""

        def __init__(self, observation_space, features_dim: int = UNITS):
            super().__init__(observation_space, features_dim)
            c, h, w = observation_space["image"].shape  # CHW: the space after VecTransposeImage
            layers, ch = [], c
            for out, k, s in FILTERS:
                layers += [nn.Conv2d(ch, out, k, s), nn.ReLU()]
                ch, h, w = out, (h - k) // s + 1, (w - k) // s + 1
            self.cnn = nn.Sequential(*layers, nn.Flatten())
            n_directions = int(observation_space["direction"].n)
            self.linear = nn.Sequential(nn.Linear(ch * h * w + n_directions, features_dim), nn.ReLU())

        def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
            # rlarena's order: the image features, then the one-hot (flattened as CombinedExtractor does:
            # the rollout buffer keeps a Discrete as shape (1,), so its one-hot arrives as [B, 1, 4])
            direction = observations["direction"].flatten(1)
            return self.linear(torch.cat([self.cnn(observations["image"]), direction], 1))

    return DictCNN


def make_sb3_model(seed: int):
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv

    env = make_vec_env(make_env, n_envs=HP["n_envs"], seed=seed, vec_env_cls=DummyVecEnv)
    return PPO(
        "MultiInputPolicy",
        env,
        n_steps=HP["n_steps"],
        batch_size=HP["batch_size"],
        n_epochs=HP["n_epochs"],
        learning_rate=HP["learning_rate"],
        clip_range=HP["clip_range"],
        ent_coef=HP["ent_coef"],
        vf_coef=HP["vf_coef"],
        gamma=HP["gamma"],
        gae_lambda=HP["gae_lambda"],
        max_grad_norm=HP["max_grad_norm"],
        device="cpu",
        seed=seed,
        policy_kwargs={"features_extractor_class": dict_cnn_class(), "net_arch": [], "share_features_extractor": True},
    )


def make_sb3_eval_env(seed: int):
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, VecTransposeImage

    return VecTransposeImage(make_vec_env(make_env, n_envs=10, seed=10_000 + seed, vec_env_cls=DummyVecEnv))


def throughput(iters: int, repeats: int) -> None:
    """Training env steps/s without evaluations, `iters` iterations of 1,024 env steps after 2 warm-up
    ones, alternated: rlarena, rlarena with sample_async=True (the env steps in a forked process on the
    second core while the learner updates; the PPO ratio corrects for the one-fragment lag), SB3 (one
    learn() call). 1 torch thread each."""
    import statistics

    import torch

    torch.set_num_threads(1)
    steps = iters * HP["n_envs"] * HP["n_steps"]
    runs: dict[str, list[float]] = {"rlarena": [], "rlarena async": [], "sb3": []}
    for r in range(repeats):
        for name, rates in runs.items():
            if name == "sb3":
                model = make_sb3_model(r)
                model.learn(2 * HP["n_envs"] * HP["n_steps"])
                t = time.perf_counter()
                model.learn(steps, reset_num_timesteps=False)
                dt = time.perf_counter() - t
                model.get_env().close()
            else:
                algo = rlarena_config(r, 1, sample_async=name == "rlarena async")
                algo.train()
                algo.train()
                t = time.perf_counter()
                for _ in range(iters):
                    algo.train()
                dt = time.perf_counter() - t
                algo.stop()
            rates.append(steps / dt)
            print(f"  repeat {r} {name:14s} {steps / dt:7.0f} env steps/s")
    med = {k: statistics.median(v) for k, v in runs.items()}
    for name in ("rlarena", "rlarena async"):
        print(
            f"RATIO training steps/s  {name} / SB3 = {med[name] / med['sb3']:.2f}x  ({med[name]:.0f} vs {med['sb3']:.0f})"
        )


def sb3_run(seed: int, schedule, max_steps: int, threshold: float, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    model = make_sb3_model(seed)
    return run_sb3(model, make_sb3_eval_env(seed), seed, schedule, max_steps, threshold, EVAL_EPISODES)


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def print_networks(libs: list[str]) -> None:
    """Both networks' parameter counts (they must be equal) and their layers, built once (seed 0)."""
    counts = {}
    if "rlarena" in libs:
        algo = rlarena_config(0, 1)
        try:
            model = algo.get_policy().model
            counts["rlarena"] = n_params(model)
            layers = [m for m in model.modules() if not list(m.children())]
            print(f"# rlarena network: {counts['rlarena']:,} parameters: " + ", ".join(map(str, layers)))
        finally:
            algo.stop()
    if "sb3" in libs:
        model = make_sb3_model(0)
        counts["sb3"] = n_params(model.policy)
        layers = [m for m in model.policy.modules() if not list(m.children()) and type(m).__name__ != "Sequential"]
        print(f"# SB3 network:     {counts['sb3']:,} parameters: " + ", ".join(map(str, layers)))
        model.env.close()
    if len(counts) == 2 and counts["rlarena"] != counts["sb3"]:
        raise SystemExit(f"the two networks differ: {counts}")


# -- --curve: one seed's greedy evaluations over the whole budget, to set the threshold ---------------


def curve_point(lib: str, steps: int, train_s: float, returns: list[float] | None, mean: float) -> None:
    success = "" if returns is None else f"  success {sum(r > 0 for r in returns) / len(returns):.2f}"
    print(f"  {lib:8s} {steps:7d} steps  {train_s:7.1f} s  mean return {mean:.3f}{success}", flush=True)


def rlarena_curve(seed: int, schedule, max_steps: int, threads: int) -> None:
    algo = rlarena_config(seed, threads)
    due, steps, iters, train_s = schedule(), 0, 0, 0.0
    try:
        while steps < max_steps:
            t0 = time.perf_counter()
            steps = algo.train()["num_env_steps_sampled_lifetime"]
            train_s += time.perf_counter() - t0
            iters += 1
            if due(iters, steps) or steps >= max_steps:
                curve_point("rlarena", steps, train_s, None, algo.evaluate()["episode_return_mean"])
    finally:
        algo.stop()


def sb3_curve(seed: int, schedule, max_steps: int, threads: int) -> None:
    """One learn() call; a callback evaluates between iterations with the clock paused (as run_sb3's)."""
    import torch
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy

    torch.set_num_threads(threads)
    model, eval_env = make_sb3_model(seed), make_sb3_eval_env(seed)

    class Curve(BaseCallback):
        def __init__(self):
            super().__init__()
            self.due, self.completed, self.evaluated_at = schedule(), 0, -1
            self.clock_start, self.eval_s = time.perf_counter(), 0.0

        def _evaluate(self) -> None:
            t0 = time.perf_counter()
            returns, _ = evaluate_policy(
                self.model, eval_env, n_eval_episodes=EVAL_EPISODES, deterministic=True, return_episode_rewards=True
            )
            train_s = t0 - self.clock_start - self.eval_s
            curve_point("sb3", self.model.num_timesteps, train_s, list(returns), sum(returns) / len(returns))
            self.eval_s += time.perf_counter() - t0
            self.evaluated_at = self.completed

        def _on_rollout_start(self) -> None:
            if self.completed > 0 and self.due(self.completed, self.model.num_timesteps):
                self._evaluate()
            self.completed += 1

        def _on_step(self) -> bool:
            return True

        def _on_training_end(self) -> None:
            if self.evaluated_at != self.completed:
                self._evaluate()

    cb = Curve()
    cb.clock_start = time.perf_counter()
    model.learn(total_timesteps=max_steps, callback=cb)
    model.env.close()
    eval_env.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seeds", default="5", help="'5' = seeds 0..4; a list '0,5,7'; a range '0-4'")
    p.add_argument(
        "--threshold", type=float, default=0.9, help="greedy 20-episode mean return to reach (SB3's curve: docstring)"
    )
    p.add_argument("--max-steps", type=int, default=300_000, help="env-step budget per run")
    p.add_argument(
        "--eval-every", type=int, default=4096, help="evaluate at the first iteration past every N env steps"
    )
    p.add_argument("--libs", default="rlarena,sb3")
    p.add_argument("--sb3-threads", default="1", help="an int, or 'auto' = probe 1 and 2")
    p.add_argument("--rlarena-threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="1 seed, 20k-step budget, evaluations every 4k steps")
    p.add_argument(
        "--curve",
        action="store_true",
        help="no threshold: the first seed's greedy mean return (SB3: and success rate) at every evaluation to "
        "--max-steps, per library in --libs (how the threshold was set)",
    )
    p.add_argument(
        "--throughput",
        type=int,
        default=0,
        metavar="ITERS",
        help="no learning to a threshold: training steps/s over ITERS iterations, rlarena (sync and sample_async) "
        "and SB3 alternated, 3 repeats",
    )
    args = p.parse_args(argv)
    if args.throughput:
        header(f"{ENV_ID} (dict observations) PPO with a small CNN, training steps/s, rlarena vs SB3")
        throughput(args.throughput, 3)
        return 0
    if args.quick:
        args.seeds, args.max_steps, args.eval_every = "1", 20_000, 4096
    seeds, libs = parse_seeds(args.seeds), parse_libs(args.libs)
    what = "greedy curve" if args.curve else f"time to a greedy mean return of {args.threshold:g}"
    header(f"{ENV_ID} (dict observations) PPO with a small CNN, {what}, rlarena vs SB3")
    print(
        f"# seeds {seeds[:1] if args.curve else seeds}, budget {args.max_steps} env steps, evaluate every "
        f"{args.eval_every} env steps ({EVAL_EPISODES} greedy episodes, time limit 250), evaluation time "
        f"excluded; settings {HP}"
    )
    print_networks(libs)
    sb3_threads = 1
    if "sb3" in libs:
        sb3_threads = (
            probe_sb3_threads(lambda: make_sb3_model(123), 8 * 1024, [1, 2])
            if args.sb3_threads == "auto"
            else int(args.sb3_threads)
        )
    schedule = every_steps(args.eval_every)
    if args.curve:
        for lib in libs:
            if lib == "rlarena":
                rlarena_curve(seeds[0], schedule, args.max_steps, args.rlarena_threads)
            else:
                sb3_curve(seeds[0], schedule, args.max_steps, sb3_threads)
        return 0
    rows = run_seeds(
        libs,
        seeds,
        {
            "rlarena": lambda seed: run_rlarena(
                lambda s: rlarena_config(s, args.rlarena_threads), seed, schedule, args.max_steps, args.threshold
            ),
            "sb3": lambda seed: sb3_run(seed, schedule, args.max_steps, args.threshold, sb3_threads),
        },
        time_format=".2f",
    )
    summarize(
        rows,
        libs,
        args.threshold,
        {"rlarena": f", torch threads {args.rlarena_threads}", "sb3": f", torch threads {sb3_threads}"},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
