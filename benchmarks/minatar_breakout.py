"""MinAtar Breakout, PPO with a small CNN: wall-clock training time and env steps to a greedy
evaluation mean of --threshold, rlarena vs Stable-Baselines3 with the same network, side by side in
this process.

Env, the same for both: `MinAtar/Breakout-v1` (10x10x4 bool planes, 3 actions) with its observations
as uint8 0/255 (Box(0, 255, (10, 10, 4), uint8): both libraries read that as an HWC image and scale it
by 1/255 back to 0/1) and a 2,000-step time limit (MinAtar's Breakout has none, and a greedy policy can
keep the ball forever). Why the cast: rlarena reads only uint8 Boxes as images, so MinAtar's own bool
planes would reach an MLP as 400 floats (conv_filters then do nothing; see benchmarks/README.md).

Network, the same for both: conv 16 3x3/1, ReLU, conv 32 3x3/1, ReLU (rlarena's default filters for
frames under 36x36), flatten (1,152), 128 ReLU, shared by the policy and value heads.
- rlarena: model {conv_filters [[16, 3, 1], [32, 3, 1]], post_fcnet_hiddens [128], vf_share_layers True}.
- SB3: PPO("CnnPolicy") with `features_extractor_class=SmallCNN` (the same layers; SB3 transposes the
  image to CHW itself) and net_arch [] (heads on the 128 features), share_features_extractor True.

PPO settings for both (CleanRL's / RL-Zoo's Atari PPO scaled down): 8 envs x 128 steps, minibatch 256,
4 epochs, lr 2.5e-4, clip 0.2, entropy 0.01, vf 0.5, gamma 0.99, GAE 0.95, grad clip 0.5; SB3:
DummyVecEnv. Every --eval-every env steps (at the next iteration boundary) the clock pauses for 20
greedy episodes (SB3: evaluate_policy(deterministic=True), rlarena: algo.evaluate()); a run stops at
the first mean >= --threshold or at --max-steps. The threshold was set from SB3's own curve (see
benchmarks/README.md).

    python benchmarks/minatar_breakout.py                  # 5 seeds, both libraries
    python benchmarks/minatar_breakout.py --quick          # 1 seed, 30k-step budget, 1 thread
"""

from __future__ import annotations

import argparse
import sys
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

ENV_ID = "MinAtar/Breakout-v1"
TIME_LIMIT = 2000
HP = {"n_envs": 8, "n_steps": 128, "batch_size": 256, "n_epochs": 4, "learning_rate": 2.5e-4, "clip_range": 0.2,
      "ent_coef": 0.01, "vf_coef": 0.5, "gamma": 0.99, "gae_lambda": 0.95, "max_grad_norm": 0.5}
FILTERS = [[16, 3, 1], [32, 3, 1]]
UNITS = 128


def make_env(env_config: dict | None = None, render_mode: str | None = None):
    """MinAtar Breakout, observations as uint8 0/255, a 2,000-step time limit."""
    import gymnasium as gym
    import numpy as np
    from gymnasium.wrappers import TimeLimit, TransformObservation

    from rlarena.envs.external_ids import register_external
    register_external(ENV_ID)
    env = gym.make(ENV_ID)
    shape = env.observation_space.shape
    env = TransformObservation(env, lambda obs: obs.astype(np.uint8) * np.uint8(255),
                               gym.spaces.Box(0, 255, shape, np.uint8))
    return TimeLimit(env, TIME_LIMIT)


def rlarena_config(seed: int, threads: int):
    from rlarena import PPOConfig
    return (PPOConfig().environment(make_env)
            .env_runners(num_envs_per_env_runner=HP["n_envs"])
            .training(lr=HP["learning_rate"], train_batch_size=HP["n_envs"] * HP["n_steps"],
                      minibatch_size=HP["batch_size"], num_epochs=HP["n_epochs"], clip_param=HP["clip_range"],
                      entropy_coeff=HP["ent_coef"], vf_loss_coeff=HP["vf_coef"], gamma=HP["gamma"],
                      lambda_=HP["gae_lambda"], grad_clip=HP["max_grad_norm"],
                      model={"conv_filters": FILTERS, "fcnet_hiddens": [], "post_fcnet_hiddens": [UNITS],
                             "fcnet_activation": "relu", "vf_share_layers": True})
            .evaluation(evaluation_duration=20)
            .resources(num_torch_threads=threads)
            .debugging(seed=seed)
            .build())


def small_cnn_class():
    import torch
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
    from torch import nn

    class SmallCNN(BaseFeaturesExtractor):
        """rlarena's small-frame CNN + its 128-unit layer, for SB3 (input CHW, already scaled to 0/1)."""

        def __init__(self, observation_space, features_dim: int = UNITS):
            super().__init__(observation_space, features_dim)
            c, h, w = observation_space.shape
            layers, ch = [], c
            for out, k, s in FILTERS:
                layers += [nn.Conv2d(ch, out, k, s), nn.ReLU()]
                ch, h, w = out, (h - k) // s + 1, (w - k) // s + 1
            self.cnn = nn.Sequential(*layers, nn.Flatten())
            self.linear = nn.Sequential(nn.Linear(ch * h * w, features_dim), nn.ReLU())

        def forward(self, observations: torch.Tensor) -> torch.Tensor:
            return self.linear(self.cnn(observations))

    return SmallCNN


def make_sb3_model(seed: int):
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv
    env = make_vec_env(make_env, n_envs=HP["n_envs"], seed=seed, vec_env_cls=DummyVecEnv)
    return PPO("CnnPolicy", env, n_steps=HP["n_steps"], batch_size=HP["batch_size"], n_epochs=HP["n_epochs"],
               learning_rate=HP["learning_rate"], clip_range=HP["clip_range"], ent_coef=HP["ent_coef"],
               vf_coef=HP["vf_coef"], gamma=HP["gamma"], gae_lambda=HP["gae_lambda"],
               max_grad_norm=HP["max_grad_norm"], device="cpu", seed=seed,
               policy_kwargs={"features_extractor_class": small_cnn_class(), "net_arch": []})


def sb3_run(seed: int, schedule, max_steps: int, threshold: float, threads: int) -> dict:
    import torch
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, VecTransposeImage
    torch.set_num_threads(threads)
    model = make_sb3_model(seed)
    eval_env = VecTransposeImage(make_vec_env(make_env, n_envs=10, seed=10_000 + seed, vec_env_cls=DummyVecEnv))
    return run_sb3(model, eval_env, seed, schedule, max_steps, threshold)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="5", help="'5' = seeds 0..4; a list '0,5,7'; a range '0-4'")
    p.add_argument("--threshold", type=float, default=4.0, help="greedy 20-episode mean to reach (set from SB3's curve: README)")
    p.add_argument("--max-steps", type=int, default=250_000, help="env-step budget per run")
    p.add_argument("--eval-every", type=int, default=16_384, help="evaluate at the first iteration past every N env steps")
    p.add_argument("--libs", default="rlarena,sb3")
    p.add_argument("--sb3-threads", default="1", help="an int, or 'auto' = probe 1 and 2")
    p.add_argument("--rlarena-threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="1 seed, 30k-step budget, evaluations every 8k steps")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.max_steps, args.eval_every = "1", 30_000, 8192
    seeds, libs = parse_seeds(args.seeds), parse_libs(args.libs)
    header(f"{ENV_ID} PPO with a small CNN, time to a greedy mean of {args.threshold:g}, rlarena vs SB3")
    print(f"# seeds {seeds}, budget {args.max_steps} env steps, evaluate every {args.eval_every} env steps "
          f"(20 greedy episodes, time limit {TIME_LIMIT}), evaluation time excluded; settings {HP}")
    sb3_threads = 1
    if "sb3" in libs:
        sb3_threads = (probe_sb3_threads(lambda: make_sb3_model(123), 8 * 1024, [1, 2])
                       if args.sb3_threads == "auto" else int(args.sb3_threads))
    schedule = every_steps(args.eval_every)
    rows = run_seeds(libs, seeds, {
        "rlarena": lambda seed: run_rlarena(lambda s: rlarena_config(s, args.rlarena_threads), seed, schedule,
                                            args.max_steps, args.threshold),
        "sb3": lambda seed: sb3_run(seed, schedule, args.max_steps, args.threshold, sb3_threads)})
    summarize(rows, libs, args.threshold, {"rlarena": f", torch threads {args.rlarena_threads}",
                                           "sb3": f", torch threads {sb3_threads}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
