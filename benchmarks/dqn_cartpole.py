"""CartPole-v1 DQN: wall-clock training time and env steps to a greedy evaluation score of 475,
rlarena vs Stable-Baselines3, side by side in this process.

Both libraries run RL-Zoo's CartPole-v1 DQN (rl-baselines3-zoo hyperparams/dqn.yml): one env, lr
2.3e-3 (constant), batch 64, replay of 100k transitions (uniform), learning starts after 1000 env
steps, gamma 0.99, a hard target copy every 10 env steps, 128 gradient steps after every 256 env
steps, epsilon from 1.0 to 0.04 over the first 8000 env steps (the zoo's exploration_fraction 0.16
of its 50k budget), [256, 256] ReLU Q-network, Huber loss, Adam (torch's eps 1e-8: SB3's DQNPolicy
passes no optimizer kwargs), gradient norm clipped at 10 (SB3's max_grad_norm).
SB3's DQN is the Nature DQN: rlarena is set to match (dueling False, double_q False, replay type
ReplayBuffer, n_step 1, tau 1). SB3: make_vec_env (DummyVecEnv of 1 Monitor-wrapped env), MlpPolicy,
device cpu, one model.learn() call for the whole budget with a callback that evaluates between
iterations (an iteration = 256 env steps then 128 gradient steps, in both libraries: rlarena's
min_sample_timesteps_per_iteration is 256), so its timing covers its own training loop.

Every --eval-every env steps (at the first iteration boundary past each multiple) the training
clock is paused and the current policy plays 20 greedy episodes on separate envs (SB3:
evaluate_policy(deterministic=True) on its own vec env of 10; rlarena: algo.evaluate()). A run stops
at the first evaluation with mean >= 475 or at --max-steps (the zoo's 50k). Reported: training wall
time (evaluation excluded), env steps at success, training env-steps/s, their medians over seeds,
and the ratios SB3 / rlarena. Seeds alternate which library goes first.

    python benchmarks/dqn_cartpole.py                                 # 5 seeds, both libraries
    python benchmarks/dqn_cartpole.py --seeds 1 --max-steps 5000      # smoke run
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

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

ENV_ID = "CartPole-v1"

# RL-Zoo's CartPole-v1 DQN (hyperparams/dqn.yml); the rest are SB3's DQN defaults, written out
ZOO = {"n_envs": 1, "learning_rate": 2.3e-3, "batch_size": 64, "buffer_size": 100_000, "learning_starts": 1000,
       "gamma": 0.99, "target_update_interval": 10, "train_freq": 256, "gradient_steps": 128,
       "exploration_fraction": 0.16, "exploration_initial_eps": 1.0, "exploration_final_eps": 0.04,
       "net_arch": [256, 256], "max_grad_norm": 10.0, "tau": 1.0, "n_timesteps": 50_000}
# SB3's exploration_fraction is a fraction of learn()'s total_timesteps: the zoo's 0.16 of 50k. The
# schedule is held at 8000 env steps whatever --max-steps is, so a shorter budget does not change it.
EXPLORATION_STEPS = round(ZOO["exploration_fraction"] * ZOO["n_timesteps"])


def rlarena_config(seed: int, threads: int):
    from rlarena import DQNConfig
    return (DQNConfig().environment(ENV_ID)
            .env_runners(num_envs_per_env_runner=ZOO["n_envs"])
            .training(lr=ZOO["learning_rate"], train_batch_size=ZOO["batch_size"], gamma=ZOO["gamma"],
                      replay_buffer_config={"type": "ReplayBuffer", "capacity": ZOO["buffer_size"]},
                      num_steps_sampled_before_learning_starts=ZOO["learning_starts"],
                      target_network_update_freq=ZOO["target_update_interval"], tau=ZOO["tau"],
                      train_freq=ZOO["train_freq"], gradient_steps=ZOO["gradient_steps"],
                      epsilon=[[0, ZOO["exploration_initial_eps"]], [EXPLORATION_STEPS, ZOO["exploration_final_eps"]]],
                      grad_clip=ZOO["max_grad_norm"], adam_epsilon=1e-8, double_q=False, dueling=False, n_step=1,
                      # one iteration = one SB3 rollout (256 env steps + 128 gradient steps), so both
                      # libraries can be evaluated at the same env steps
                      min_sample_timesteps_per_iteration=ZOO["train_freq"] * ZOO["n_envs"],
                      model={"fcnet_hiddens": ZOO["net_arch"], "fcnet_activation": "relu"})
            .evaluation(evaluation_duration=20)
            .resources(num_torch_threads=threads)
            .debugging(seed=seed)
            .build())


# -- Stable-Baselines3 ----------------------------------------------------------------------------

def make_sb3_model(seed: int, total_steps: int):
    from stable_baselines3 import DQN
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv
    env = make_vec_env(ENV_ID, n_envs=ZOO["n_envs"], seed=seed, vec_env_cls=DummyVecEnv,
                       env_kwargs={"render_mode": None})
    return DQN("MlpPolicy", env, learning_rate=ZOO["learning_rate"], buffer_size=ZOO["buffer_size"],
               learning_starts=ZOO["learning_starts"], batch_size=ZOO["batch_size"], tau=ZOO["tau"],
               gamma=ZOO["gamma"], train_freq=ZOO["train_freq"], gradient_steps=ZOO["gradient_steps"],
               target_update_interval=ZOO["target_update_interval"],
               exploration_fraction=EXPLORATION_STEPS / total_steps,
               exploration_initial_eps=ZOO["exploration_initial_eps"],
               exploration_final_eps=ZOO["exploration_final_eps"], max_grad_norm=ZOO["max_grad_norm"],
               policy_kwargs={"net_arch": ZOO["net_arch"]}, seed=seed, device="cpu", verbose=0)


def sb3_run(seed: int, schedule, max_steps: int, threshold: float, threads: int) -> dict[str, Any]:
    import torch
    from stable_baselines3.common.env_util import make_vec_env
    torch.set_num_threads(threads)
    model = make_sb3_model(seed, max_steps)
    eval_env = make_vec_env(ENV_ID, n_envs=10, seed=seed + 10_000, env_kwargs={"render_mode": None})
    return run_sb3(model, eval_env, seed, schedule, max_steps, threshold)


# -- main -----------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="5", help="'5' = five seeds 0..4; a list '0,5,7'; a range '0-4'; one seed N: 'N-N'")
    p.add_argument("--max-steps", type=int, default=ZOO["n_timesteps"], help="env-step budget per run (RL-Zoo's 50k)")
    p.add_argument("--eval-every", type=int, default=1000,
                   help="evaluate at the first iteration boundary (every 256 env steps) past each multiple of N env steps")
    p.add_argument("--threshold", type=float, default=475.0, help="greedy 20-episode mean to reach")
    p.add_argument("--libs", default="rlarena,sb3", help="comma list of rlarena,sb3")
    p.add_argument("--sb3-threads", default="auto",
                   help="torch threads for SB3: an int, or 'auto' = probe 1 and 2 and use the faster")
    p.add_argument("--probe-iters", type=int, default=8,
                   help="SB3 iterations (256 env steps + 128 gradient steps) after learning starts, per probe run")
    p.add_argument("--rlarena-threads", type=int, default=1, help="num_torch_threads for rlarena")
    args = p.parse_args(argv)

    seeds, libs = parse_seeds(args.seeds), parse_libs(args.libs)

    header("CartPole-v1 DQN, same hyperparameters (RL-Zoo), rlarena vs SB3")
    print(f"# seeds {seeds}, threshold {args.threshold} (20 greedy episodes), budget {args.max_steps} env steps, "
          f"evaluate every {args.eval_every} env steps, evaluation time excluded")
    print(f"# hyperparameters: {ZOO}; epsilon reaches {ZOO['exploration_final_eps']} at env step {EXPLORATION_STEPS}")
    print("# rlarena: dueling False, double_q False, ReplayBuffer, n_step 1, adam_epsilon 1e-8, "
          "min_sample_timesteps_per_iteration 256")

    sb3_threads = None
    if "sb3" in libs:
        if args.sb3_threads == "auto":
            probe_steps = ZOO["learning_starts"] + args.probe_iters * ZOO["train_freq"]
            sb3_threads = probe_sb3_threads(lambda: make_sb3_model(123, probe_steps), probe_steps, [1, 2])
        else:
            sb3_threads = int(args.sb3_threads)

    schedule = every_steps(args.eval_every)
    rows = run_seeds(libs, seeds, {
        "rlarena": lambda seed: run_rlarena(lambda s: rlarena_config(s, args.rlarena_threads), seed, schedule,
                                            args.max_steps, args.threshold),
        "sb3": lambda seed: sb3_run(seed, schedule, args.max_steps, args.threshold, sb3_threads)})

    med = summarize(rows, libs, args.threshold, {"sb3": f", torch threads {sb3_threads}"})
    if "rlarena" in med and "sb3" in med:
        print("(target: time ratio >= 3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
