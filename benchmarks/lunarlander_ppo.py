"""LunarLander-v3 PPO: wall-clock training time and env steps to a greedy evaluation score of 200,
rlarena vs Stable-Baselines3, side by side in this process.

Needs Box2D: pip install -c constraints.txt "gymnasium[box2d]"  (rlarena's [box2d] extra).

Default mode, the seed tutorial's settings (RL-Zoo / Hugging Face Deep RL course): 16 envs x 1024
steps = 16384 steps per iteration, minibatch 64, 4 epochs, lr 3e-4, gamma 0.999, GAE lambda 0.98,
entropy 0.01, clip 0.2, vf coef 0.5, grad clip 0.5, [64, 64] tanh MLPs. Both libraries' training
envs are created WITHOUT a render mode (SB3's make_vec_env defaults to rgb_array, which makes
LunarLander keep flame particles alive and slows stepping several-fold; see DESIGN.md), and SB3
steps a DummyVecEnv, rlarena its default ('auto': a SyncVectorEnv for LunarLander).

Every --eval-every-steps env steps (checked after each iteration) the clock is paused and the
policy plays 20 greedy episodes on separate envs (SB3: evaluate_policy(deterministic=True);
rlarena: algo.evaluate()). A run stops at the first evaluation with mean >= 200 or at --max-steps.

--best [YAML] runs rlarena with tuned_examples/ppo/lunarlander.yaml instead (SB3, when in --libs,
keeps the seed settings): how fast rlarena gets there with its own best settings.

    python benchmarks/lunarlander_ppo.py                             # full: 3 seeds, 2M budget (long)
    python benchmarks/lunarlander_ppo.py --seeds 1 --max-steps 20000 --eval-every-steps 10000  # check
    python benchmarks/lunarlander_ppo.py --best --libs rlarena
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    build_from_tuned,
    every_steps,
    header,
    load_tuned,
    parse_libs,
    parse_seeds,
    rlarena_from_sb3,
    run_rlarena,
    run_sb3,
    run_seeds,
    summarize,
)

ENV_ID = "LunarLander-v3"
DEFAULT_TUNED = "tuned_examples/ppo/lunarlander.yaml"

SEED_SETTINGS = {"n_envs": 16, "n_steps": 1024, "batch_size": 64, "n_epochs": 4, "learning_rate": 3e-4,
                 "gamma": 0.999, "gae_lambda": 0.98, "ent_coef": 0.01, "clip_range": 0.2, "vf_coef": 0.5,
                 "max_grad_norm": 0.5}


def rlarena_seed_config(seed: int, threads: int):
    return rlarena_from_sb3(ENV_ID, SEED_SETTINGS, seed, threads)


def sb3_run(seed: int, schedule, max_steps: int, threshold: float, threads: int) -> dict[str, Any]:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv
    hp = SEED_SETTINGS
    torch.set_num_threads(threads)
    no_render = {"render_mode": None}  # make_vec_env's default is rgb_array: see the module docstring
    env = make_vec_env(ENV_ID, n_envs=hp["n_envs"], seed=seed, vec_env_cls=DummyVecEnv, env_kwargs=no_render)
    model = PPO("MlpPolicy", env, n_steps=hp["n_steps"], batch_size=hp["batch_size"], n_epochs=hp["n_epochs"],
                learning_rate=hp["learning_rate"], gamma=hp["gamma"], gae_lambda=hp["gae_lambda"],
                clip_range=hp["clip_range"], ent_coef=hp["ent_coef"], vf_coef=hp["vf_coef"],
                max_grad_norm=hp["max_grad_norm"], policy_kwargs={"net_arch": [64, 64]}, seed=seed,
                device="cpu", verbose=0)
    eval_env = make_vec_env(ENV_ID, n_envs=10, seed=seed + 10_000, env_kwargs=no_render)
    return run_sb3(model, eval_env, seed, schedule, max_steps, threshold)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="3", help="'3' = three seeds 0,1,2; a list '0,5,7'; a range '0-4'; one seed N: 'N-N'")
    p.add_argument("--max-steps", type=int, default=None,
                   help="env-step budget per run (default 2000000, or the YAML's stop with --best)")
    p.add_argument("--eval-every-steps", type=int, default=50_000, help="evaluate every N env steps")
    p.add_argument("--threshold", type=float, default=None, help="greedy 20-episode mean to reach (200)")
    p.add_argument("--libs", default="rlarena,sb3", help="comma list of rlarena,sb3")
    p.add_argument("--threads", type=int, default=1, help="torch threads for both libraries")
    p.add_argument("--best", nargs="?", const=DEFAULT_TUNED, default=None, metavar="YAML",
                   help=f"rlarena with tuned settings (default {DEFAULT_TUNED})")
    args = p.parse_args(argv)

    try:
        import Box2D  # noqa: F401
    except ImportError:
        raise SystemExit('LunarLander needs Box2D: pip install -c constraints.txt "gymnasium[box2d]"') from None

    seeds, libs = parse_seeds(args.seeds), parse_libs(args.libs)
    threshold, max_steps = args.threshold, args.max_steps
    if args.best:
        spec = load_tuned(args.best)
        if spec["env"] != ENV_ID:
            raise SystemExit(f"{spec['path']}: env {spec['env']!r}, this benchmark is for {ENV_ID}")
        stop = spec.get("stop", {})
        threshold = threshold if threshold is not None else stop.get("evaluation/episode_return_mean", 200.0)
        max_steps = max_steps or stop.get("num_env_steps_sampled_lifetime", 2_000_000)
        build = lambda s: build_from_tuned(spec, s)
        title = f"LunarLander-v3 PPO, rlarena tuned settings ({spec['path']})"
    else:
        threshold = 200.0 if threshold is None else threshold
        max_steps = max_steps or 2_000_000
        build = lambda s: rlarena_seed_config(s, args.threads)
        title = "LunarLander-v3 PPO, seed tutorial settings, rlarena vs SB3"

    header(title)
    print(f"# seeds {seeds}, threshold {threshold} (20 greedy episodes), budget {max_steps} env steps, "
          f"evaluate every {args.eval_every_steps} env steps, evaluation time excluded, torch threads "
          f"{args.threads}")
    print(f"# rlarena: {spec['config'] if args.best else SEED_SETTINGS}")
    if "sb3" in libs:
        print(f"# SB3: {SEED_SETTINGS}, DummyVecEnv, no render mode")

    schedule = every_steps(args.eval_every_steps)
    rows = run_seeds(libs, seeds, {
        "rlarena": lambda seed: run_rlarena(build, seed, schedule, max_steps, threshold),
        "sb3": lambda seed: sb3_run(seed, schedule, max_steps, threshold, args.threads)}, time_format=".1f")
    summarize(rows, libs, threshold)
    return 0


if __name__ == "__main__":
    sys.exit(main())
