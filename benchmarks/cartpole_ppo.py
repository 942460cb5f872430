"""CartPole-v1 PPO: wall-clock training time and env steps to a greedy evaluation score of 475,
rlarena vs Stable-Baselines3, side by side in this process.

Default mode ("same hyperparameters", RL-Zoo's CartPole PPO): 8 envs x 32 steps = 256 steps per
iteration, one minibatch of 256, 20 epochs, lr 1e-3, gamma 0.98, GAE lambda 0.8, clip 0.2, no
entropy bonus, vf coef 0.5, grad clip 0.5, [64, 64] tanh MLPs, constant lr and clip (the zoo's lin_
schedules are off for both). SB3: make_vec_env (DummyVecEnv of 8 Monitor-wrapped envs), MlpPolicy,
device cpu, one model.learn() call for the whole budget with a callback that evaluates between
iterations, so its timing covers its own complete training loop and pays learn()'s setup once.

After every `--eval-every` iterations the training clock is paused and the current policy plays
20 greedy episodes on separate envs (SB3: evaluate_policy(deterministic=True) on its own vec env;
rlarena: algo.evaluate()). A run stops at the first evaluation with mean >= 475 or at --max-steps.
Reported: training wall time (evaluation excluded), env steps at success, training env-steps/s,
their medians over seeds, and the ratios SB3 / rlarena. Env steps to 475 vary ~20x from seed to
seed, so a 10-seed median moves by tens of percent; tests/test_ppo_parity.py checks the update
itself against SB3's on one shared batch (benchmarks/README.md, "Parity with SB3").

--best [YAML] runs rlarena alone (or with --libs rlarena,sb3, against SB3's zoo settings) with the
tuned settings of tuned_examples/ppo/cartpole_fast.yaml; --set key=value overrides any option
(for trying settings).

    python benchmarks/cartpole_ppo.py                       # 3 seeds, both libraries
    python benchmarks/cartpole_ppo.py --seeds 1 --max-steps 20000   # quick validation
    python benchmarks/cartpole_ppo.py --best                # rlarena's tuned settings
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    build_from_tuned,
    every_iterations,
    header,
    load_tuned,
    parse_libs,
    parse_seeds,
    probe_sb3_threads,
    rlarena_from_sb3,
    run_rlarena,
    run_sb3,
    run_seeds,
    summarize,
)

ENV_ID = "CartPole-v1"
DEFAULT_TUNED = "tuned_examples/ppo/cartpole_fast.yaml"

# RL-Zoo's CartPole-v1 PPO (hyperparams/ppo.yml), constant lr and clip range
ZOO = {"n_envs": 8, "n_steps": 32, "batch_size": 256, "n_epochs": 20, "learning_rate": 1e-3, "gamma": 0.98,
       "gae_lambda": 0.8, "clip_range": 0.2, "ent_coef": 0.0, "vf_coef": 0.5, "max_grad_norm": 0.5}


def rlarena_same_config(seed: int, threads: int):
    return rlarena_from_sb3(ENV_ID, ZOO, seed, threads)


# -- Stable-Baselines3 ----------------------------------------------------------------------------

def make_sb3_model(seed: int, hp: dict[str, Any] = ZOO):
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv
    # render_mode None: make_vec_env defaults to rgb_array (harmless for CartPole, but no reason to)
    env = make_vec_env(ENV_ID, n_envs=hp["n_envs"], seed=seed, vec_env_cls=DummyVecEnv,
                       env_kwargs={"render_mode": None})
    return PPO("MlpPolicy", env, n_steps=hp["n_steps"], batch_size=hp["batch_size"], n_epochs=hp["n_epochs"],
               learning_rate=hp["learning_rate"], gamma=hp["gamma"], gae_lambda=hp["gae_lambda"],
               clip_range=hp["clip_range"], ent_coef=hp["ent_coef"], vf_coef=hp["vf_coef"],
               max_grad_norm=hp["max_grad_norm"], policy_kwargs={"net_arch": [64, 64]}, seed=seed,
               device="cpu", verbose=0)


def sb3_run(seed: int, schedule, max_steps: int, threshold: float, threads: int) -> dict[str, Any]:
    import torch
    from stable_baselines3.common.env_util import make_vec_env
    torch.set_num_threads(threads)
    model = make_sb3_model(seed)
    eval_env = make_vec_env(ENV_ID, n_envs=10, seed=seed + 10_000, env_kwargs={"render_mode": None})
    return run_sb3(model, eval_env, seed, schedule, max_steps, threshold)


# -- main -----------------------------------------------------------------------------------------

def parse_overrides(items: list[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key.strip()] = value
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="3", help="'3' = three seeds 0,1,2; a list '0,5,7'; a range '0-4'; one seed N: 'N-N'")
    p.add_argument("--max-steps", type=int, default=None, help="env-step budget per run (default 100000, "
                   "or the YAML's stop.num_env_steps_sampled_lifetime with --best)")
    p.add_argument("--eval-every", type=int, default=1, help="evaluate every N training iterations")
    p.add_argument("--threshold", type=float, default=None, help="greedy 20-episode mean to reach (475)")
    p.add_argument("--libs", default=None, help="comma list of rlarena,sb3 (default both; rlarena with --best)")
    p.add_argument("--sb3-threads", default="auto",
                   help="torch threads for SB3: an int, or 'auto' = probe 1 and 2 and use the faster")
    p.add_argument("--probe-iters", type=int, default=20, help="SB3 iterations per thread-probe run")
    p.add_argument("--rlarena-threads", type=int, default=1, help="num_torch_threads for rlarena (same hp mode)")
    p.add_argument("--best", nargs="?", const=DEFAULT_TUNED, default=None, metavar="YAML",
                   help=f"rlarena with tuned settings (default {DEFAULT_TUNED})")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override an rlarena option in --best mode, e.g. --set num_epochs=10")
    args = p.parse_args(argv)

    seeds = parse_seeds(args.seeds)
    threshold, max_steps = args.threshold, args.max_steps
    if args.best:
        spec = load_tuned(args.best)
        stop = spec.get("stop", {})
        threshold = threshold if threshold is not None else stop.get("evaluation/episode_return_mean", 475.0)
        max_steps = max_steps or stop.get("num_env_steps_sampled_lifetime", 100_000)
        overrides = parse_overrides(args.set)
        if spec["env"] != ENV_ID:
            raise SystemExit(f"{spec['path']}: env {spec['env']!r}, this benchmark is for {ENV_ID}")
        config = {**spec["config"], **overrides}
        build = lambda s: build_from_tuned(spec, s, overrides)
        libs = parse_libs(args.libs or "rlarena")
        title = f"CartPole-v1 PPO, rlarena tuned settings ({spec['path']})"
    else:
        if args.set:
            raise SystemExit("--set applies to --best mode only")
        threshold = 475.0 if threshold is None else threshold
        max_steps = max_steps or 100_000
        build = lambda s: rlarena_same_config(s, args.rlarena_threads)
        libs = parse_libs(args.libs or "rlarena,sb3")
        title = "CartPole-v1 PPO, same hyperparameters (RL-Zoo), rlarena vs SB3"

    header(title)
    print(f"# seeds {seeds}, threshold {threshold} (20 greedy episodes), budget {max_steps} env steps, "
          f"evaluate every {args.eval_every} iteration(s), evaluation time excluded")
    if args.best:
        print(f"# rlarena config: {config}")
    else:
        print(f"# hyperparameters: {ZOO}")

    sb3_threads = None
    if "sb3" in libs:
        sb3_threads = (probe_sb3_threads(lambda: make_sb3_model(123, ZOO), args.probe_iters * ZOO['n_envs'] * ZOO['n_steps'], [1, 2]) if args.sb3_threads == "auto"
                       else int(args.sb3_threads))

    schedule = every_iterations(args.eval_every)
    rows = run_seeds(libs, seeds, {
        "rlarena": lambda seed: run_rlarena(build, seed, schedule, max_steps, threshold),
        "sb3": lambda seed: sb3_run(seed, schedule, max_steps, threshold, sb3_threads)})

    med = summarize(rows, libs, threshold, {"sb3": f", torch threads {sb3_threads}"})
    if "rlarena" in med and "sb3" in med and not args.best:
        print("(target: time ratio >= 3)")
    if args.best and "rlarena" in med:
        print(f"rlarena tuned: median {med['rlarena']['time_s']:.2f} s of training to {threshold:g} "
              f"(target < 2 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
