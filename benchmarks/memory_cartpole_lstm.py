"""CartPole without velocities (needs memory): PPO + LSTM, wall-clock training time and env steps to a
greedy 10-episode mean of 475, rlarena vs sb3-contrib's RecurrentPPO, side by side in this process.

Env: `CartPoleNoVel-v1` for both (registered by `import rlarena`: CartPole-v1 with the two velocities
set to 0, RL-Zoo's MaskVelocityWrapper; `--env StatelessCartPole-v1` drops them instead, [x, theta]).

SB3 (sb3-contrib RecurrentPPO) with RL-Zoo's tuned ppo_lstm settings for CartPoleNoVel-v1
(rl-baselines3-zoo hyperparams/ppo_lstm.yml): 8 envs x 32 steps, batch_size 256, 20 epochs, lr
lin_1e-3 and clip lin_0.2 (linear to 0 over the 1e5-step budget), gamma 0.98, GAE lambda 0.8, no
entropy bonus, normalize True (VecNormalize: observations and rewards, gamma 0.98), policy_kwargs
ortho_init=False, ReLU, lstm_hidden_size 64, enable_critic_lstm=True (a second LSTM for the critic),
net_arch pi [64] vf [64]. make_vec_env (DummyVecEnv), device cpu. One `model.learn(1e5)` call for the
whole budget; a callback evaluates between iterations with the clock paused (_common's
make_sb3_eval_callback: evaluate_policy(deterministic=True) over 10 episodes on a VecNormalize eval env
that shares the training env's observation statistics and does not update them).

rlarena PPO with the closest settings: train_batch_size 256 (8 envs x 32 steps), minibatch_size 256,
num_epochs 20, lr_schedule [[0, 1e-3], [1e5, 0]] (the zoo's lin_1e-3; --constant-lr for lr 1e-3),
clip 0.2 constant (rlarena has no clip schedule), gamma 0.98, lambda 0.8, entropy 0, vf 0.5, grad
clip 0.5, observation_filter MeanStdFilter (observations only: no reward normalization), model
{use_lstm, lstm_cell_size 64, fcnet_hiddens [], post_fcnet_hiddens [64], fcnet_activation relu,
max_seq_len 32}: one LSTM shared by the policy and value heads (SB3: one each), then [64] per head,
orthogonal init. Clock around algo.train() only (_common.run_rlarena); algo.evaluate(): 10 greedy
episodes, the LSTM state carried.

Both evaluate at the first iteration boundary past every --eval-every env steps (default 2,048 = 8
iterations) and stop at the first mean >= 475 or at the budget (1e5). Evaluation time is excluded on
both sides the same way. Seeds alternate which library goes first. Reported per seed and as medians:
training time to 475, env steps, training steps/s; ratios SB3 / rlarena.

    python benchmarks/memory_cartpole_lstm.py                    # 5 seeds, both libraries
    python benchmarks/memory_cartpole_lstm.py --env StatelessCartPole-v1
    python benchmarks/memory_cartpole_lstm.py --quick            # 1 seed, 20k-step budget, 1 thread
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

ZOO = {"n_envs": 8, "n_steps": 32, "batch_size": 256, "n_epochs": 20, "learning_rate": "lin_1e-3",
       "clip_range": "lin_0.2", "gamma": 0.98, "gae_lambda": 0.8, "ent_coef": 0.0, "normalize": True,
       "policy_kwargs": "ortho_init=False, activation_fn=ReLU, lstm_hidden_size=64, enable_critic_lstm=True, "
                        "net_arch=dict(pi=[64], vf=[64])", "n_timesteps": 100_000}
THRESHOLD = 475.0
EPISODES = 10


def rlarena_config(env_id: str, seed: int, threads: int, budget: int, constant_lr: bool):
    import rlarena  # noqa: F401  (registers the memory envs)
    from rlarena import PPOConfig
    lr = {"lr": 1e-3} if constant_lr else {"lr": 1e-3, "lr_schedule": [[0, 1e-3], [budget, 0.0]]}
    return (PPOConfig().environment(env_id)
            .env_runners(num_envs_per_env_runner=8, observation_filter="MeanStdFilter")
            .training(train_batch_size=256, minibatch_size=256, num_epochs=20, gamma=0.98, lambda_=0.8,
                      clip_param=0.2, entropy_coeff=0.0, vf_loss_coeff=0.5, grad_clip=0.5, **lr,
                      model={"use_lstm": True, "lstm_cell_size": 64, "fcnet_hiddens": [], "post_fcnet_hiddens": [64],
                             "fcnet_activation": "relu", "max_seq_len": 32})
            .evaluation(evaluation_duration=EPISODES)
            .resources(num_torch_threads=threads)
            .debugging(seed=seed)
            .build())


def linear(initial: float):
    """RL-Zoo's lin_<x>: x times the remaining progress (1 at the start, 0 at the end of learn())."""
    return lambda progress_remaining: progress_remaining * initial


def make_sb3(env_id: str, seed: int):
    """(RecurrentPPO with the zoo's settings, its eval env sharing the observation statistics)."""
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
    from torch import nn

    import rlarena  # noqa: F401  (registers the memory envs)
    env = VecNormalize(make_vec_env(env_id, n_envs=8, seed=seed, vec_env_cls=DummyVecEnv), gamma=0.98)
    model = RecurrentPPO("MlpLstmPolicy", env, n_steps=32, batch_size=256, n_epochs=20, learning_rate=linear(1e-3),
                         clip_range=linear(0.2), gamma=0.98, gae_lambda=0.8, ent_coef=0.0, vf_coef=0.5,
                         max_grad_norm=0.5, device="cpu", seed=seed,
                         policy_kwargs={"ortho_init": False, "activation_fn": nn.ReLU, "lstm_hidden_size": 64,
                                        "enable_critic_lstm": True, "net_arch": {"pi": [64], "vf": [64]}})
    eval_env = VecNormalize(make_vec_env(env_id, n_envs=EPISODES, seed=10_000 + seed, vec_env_cls=DummyVecEnv),
                            training=False, norm_reward=False)
    eval_env.obs_rms = env.obs_rms  # the same object: evaluations see the current statistics (sync_envs_normalization)
    return model, eval_env


def sb3_run(env_id: str, seed: int, schedule, budget: int, threads: int) -> dict:
    import torch
    torch.set_num_threads(threads)
    model, eval_env = make_sb3(env_id, seed)
    return run_sb3(model, eval_env, seed, schedule, budget, THRESHOLD, n_episodes=EPISODES)


def probe_rlarena_threads(env_id: str, iters: int) -> int:
    """rlarena's 1 vs 2 torch threads: `iters` iterations after a warm-up, twice, interleaved; the faster."""
    best: dict[int, float] = {}
    for _ in range(2):
        for n in (1, 2):
            algo = rlarena_config(env_id, 123, n, 100_000, constant_lr=True)
            try:
                algo.train()
                t0 = time.perf_counter()
                for _ in range(iters):
                    algo.train()
                best[n] = max(best.get(n, 0.0), iters * 256 / (time.perf_counter() - t0))
            finally:
                algo.stop()
    choice = max(best, key=best.get)
    print("# rlarena torch-thread probe (training env-steps/s, best of 2): "
          + ", ".join(f"{n}: {r:.0f}" for n, r in best.items()) + f" -> rlarena runs with {choice}", flush=True)
    return choice


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="CartPoleNoVel-v1", help="CartPoleNoVel-v1 (RL-Zoo's) or StatelessCartPole-v1")
    p.add_argument("--seeds", default="5", help="'5' = seeds 0..4; a list '0,5,7'; a range '0-4'")
    p.add_argument("--max-steps", type=int, default=100_000, help="env-step budget (the zoo's n_timesteps)")
    p.add_argument("--eval-every", type=int, default=2048, help="evaluate at the first iteration past every N env steps")
    p.add_argument("--libs", default="rlarena,sb3")
    p.add_argument("--threads", default="auto", help="torch threads for both: 1, 2, or auto = probe each library")
    p.add_argument("--probe-iters", type=int, default=10, help="iterations (256 env steps) per thread-probe run")
    p.add_argument("--constant-lr", action="store_true", help="rlarena with lr 1e-3 constant instead of the zoo's lin_1e-3")
    p.add_argument("--quick", action="store_true", help="1 seed, 20k-step budget, 1 thread, no probe")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.max_steps, args.threads = "1", 20_000, "1"
    seeds, libs = parse_seeds(args.seeds), parse_libs(args.libs)

    header(f"{args.env} PPO + LSTM, time to a greedy {EPISODES}-episode mean of {THRESHOLD:g}, "
           f"rlarena vs sb3-contrib RecurrentPPO")
    import sb3_contrib
    print(f"# sb3-contrib {sb3_contrib.__version__}; seeds {seeds}, budget {args.max_steps} env steps, evaluate every "
          f"{args.eval_every} env steps (at iteration boundaries), evaluation time excluded")
    print(f"# RL-Zoo ppo_lstm {args.env if args.env == 'CartPoleNoVel-v1' else 'CartPoleNoVel-v1'} settings: {ZOO}")

    if args.threads == "auto":
        threads = {"rlarena": probe_rlarena_threads(args.env, args.probe_iters) if "rlarena" in libs else 1,
                   "sb3": probe_sb3_threads(lambda: make_sb3(args.env, 123)[0], args.probe_iters * 256, [1, 2],
                                            "RecurrentPPO ") if "sb3" in libs else 1}
    else:
        threads = {"rlarena": int(args.threads), "sb3": int(args.threads)}

    schedule = every_steps(args.eval_every)
    rows = run_seeds(libs, seeds, {
        "rlarena": lambda seed: run_rlarena(
            lambda s: rlarena_config(args.env, s, threads["rlarena"], args.max_steps, args.constant_lr),
            seed, schedule, args.max_steps, THRESHOLD),
        "sb3": lambda seed: sb3_run(args.env, seed, schedule, args.max_steps, threads["sb3"])})
    summarize(rows, libs, THRESHOLD, {lib: f", torch threads {threads[lib]}" for lib in libs})
    if "rlarena" in libs and "sb3" in libs:
        print("(bar: time ratio >= 3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
