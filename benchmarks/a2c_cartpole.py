"""CartPole-v1 A2C: wall-clock training time and env steps to a greedy evaluation score of 475,
rlarena vs Stable-Baselines3, side by side in this process.

Both libraries run RL-Zoo's CartPole-v1 A2C (rl-baselines3-zoo hyperparams/a2c.yml: 8 envs, no
entropy bonus, 500k env steps) with SB3's A2C defaults for everything else, written out on both
sides: 5 steps per env per update (40 env steps an iteration), lr 7e-4 (constant), gamma 0.99,
gae_lambda 1.0 (n-step returns), vf coef 0.5, gradient norm clipped at 0.5, RMSprop (alpha 0.99,
eps 1e-5), no advantage normalization, separate [64, 64] tanh policy and value MLPs (orthogonal
init, as SB3). SB3: make_vec_env (DummyVecEnv of 8 Monitor-wrapped envs), MlpPolicy, device cpu, one
model.learn() call for the whole budget with a callback that evaluates between iterations, so its
timing covers its own training loop.

Every --eval-every env steps (at the first iteration boundary past each multiple) the training
clock is paused and the current policy plays 20 greedy episodes on separate envs (SB3:
evaluate_policy(deterministic=True) on its own vec env of 10; rlarena: algo.evaluate()). A run stops
at the first evaluation with mean >= 475 or at --max-steps (the zoo's 500k). Reported: training wall
time (evaluation excluded), env steps at success, training env-steps/s, their medians over seeds,
and the ratios SB3 / rlarena. Seeds alternate which library goes first.

    python benchmarks/a2c_cartpole.py                                 # 5 seeds, both libraries
    python benchmarks/a2c_cartpole.py --seeds 1 --max-steps 20000     # smoke run
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

# RL-Zoo's CartPole-v1 A2C (hyperparams/a2c.yml: n_envs, ent_coef, n_timesteps); the rest are SB3's
# A2C defaults, written out
ZOO = {"n_envs": 8, "n_steps": 5, "learning_rate": 7e-4, "gamma": 0.99, "gae_lambda": 1.0, "ent_coef": 0.0,
       "vf_coef": 0.5, "max_grad_norm": 0.5, "rms_prop_eps": 1e-5, "normalize_advantage": False,
       "net_arch": [64, 64], "n_timesteps": 500_000}


def rlarena_config(seed: int, threads: int):
    from rlarena import A2CConfig
    return (A2CConfig().environment(ENV_ID)
            .env_runners(num_envs_per_env_runner=ZOO["n_envs"])
            .training(lr=ZOO["learning_rate"], train_batch_size=ZOO["n_envs"] * ZOO["n_steps"], gamma=ZOO["gamma"],
                      lambda_=ZOO["gae_lambda"], entropy_coeff=ZOO["ent_coef"], vf_loss_coeff=ZOO["vf_coef"],
                      grad_clip=ZOO["max_grad_norm"], use_rms_prop=True, rms_prop_eps=ZOO["rms_prop_eps"],
                      normalize_advantages=ZOO["normalize_advantage"],
                      model={"fcnet_hiddens": ZOO["net_arch"], "fcnet_activation": "tanh", "vf_share_layers": False})
            .evaluation(evaluation_duration=20)
            .resources(num_torch_threads=threads)
            .debugging(seed=seed)
            .build())


# -- Stable-Baselines3 ----------------------------------------------------------------------------

def make_sb3_model(seed: int):
    from stable_baselines3 import A2C
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv
    env = make_vec_env(ENV_ID, n_envs=ZOO["n_envs"], seed=seed, vec_env_cls=DummyVecEnv,
                       env_kwargs={"render_mode": None})
    return A2C("MlpPolicy", env, n_steps=ZOO["n_steps"], learning_rate=ZOO["learning_rate"], gamma=ZOO["gamma"],
               gae_lambda=ZOO["gae_lambda"], ent_coef=ZOO["ent_coef"], vf_coef=ZOO["vf_coef"],
               max_grad_norm=ZOO["max_grad_norm"], rms_prop_eps=ZOO["rms_prop_eps"], use_rms_prop=True,
               normalize_advantage=ZOO["normalize_advantage"],
               policy_kwargs={"net_arch": {"pi": ZOO["net_arch"], "vf": ZOO["net_arch"]}}, seed=seed, device="cpu",
               verbose=0)


def sb3_run(seed: int, schedule, max_steps: int, threshold: float, threads: int) -> dict[str, Any]:
    import torch
    from stable_baselines3.common.env_util import make_vec_env
    torch.set_num_threads(threads)
    model = make_sb3_model(seed)
    eval_env = make_vec_env(ENV_ID, n_envs=10, seed=seed + 10_000, env_kwargs={"render_mode": None})
    return run_sb3(model, eval_env, seed, schedule, max_steps, threshold)


# -- main -----------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="5", help="'5' = five seeds 0..4; a list '0,5,7'; a range '0-4'; one seed N: 'N-N'")
    p.add_argument("--max-steps", type=int, default=ZOO["n_timesteps"], help="env-step budget per run (RL-Zoo's 500k)")
    p.add_argument("--eval-every", type=int, default=2000,
                   help="evaluate at the first iteration boundary (every 40 env steps) past each multiple of N env steps")
    p.add_argument("--threshold", type=float, default=475.0, help="greedy 20-episode mean to reach")
    p.add_argument("--libs", default="rlarena,sb3", help="comma list of rlarena,sb3")
    p.add_argument("--sb3-threads", default="auto",
                   help="torch threads for SB3: an int, or 'auto' = probe 1 and 2 and use the faster")
    p.add_argument("--probe-iters", type=int, default=200, help="SB3 iterations (40 env steps each) per probe run")
    p.add_argument("--rlarena-threads", type=int, default=1, help="num_torch_threads for rlarena")
    args = p.parse_args(argv)

    seeds, libs = parse_seeds(args.seeds), parse_libs(args.libs)

    header("CartPole-v1 A2C, same hyperparameters (RL-Zoo), rlarena vs SB3")
    print(f"# seeds {seeds}, threshold {args.threshold} (20 greedy episodes), budget {args.max_steps} env steps, "
          f"evaluate every {args.eval_every} env steps, evaluation time excluded")
    print(f"# hyperparameters: {ZOO}; RMSprop alpha 0.99, separate policy and value MLPs, tanh")

    sb3_threads = None
    if "sb3" in libs:
        if args.sb3_threads == "auto":
            probe_steps = args.probe_iters * ZOO["n_envs"] * ZOO["n_steps"]
            sb3_threads = probe_sb3_threads(lambda: make_sb3_model(123), probe_steps, [1, 2])
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
