"""Pendulum-v1 SAC and TD3: wall-clock training time and env steps to a greedy evaluation score of
-200, rlarena vs Stable-Baselines3, side by side in this process (SAC also on MuJoCo tasks: --env).

Both libraries run RL-Zoo's Pendulum-v1 settings (rl-baselines3-zoo hyperparams/sac.yml, td3.yml),
SB3's defaults for the rest, every option written out on both sides:
- SAC: lr 1e-3 (actor, critics and temperature), batch 256, replay 1e6, learning starts after 100
  env steps (uniform random actions until then), tau 0.005, gamma 0.99, one gradient step after every
  env step, ent_coef "auto" (alpha learned from 1.0, target entropy -dim(A)), twin critics, [256, 256]
  ReLU, one env. Budget: the zoo's 20k env steps.
- TD3: lr 1e-3, batch 256, replay 200k, learning starts after 10k env steps (uniform random actions
  until then), gamma 0.98, tau 0.005, Gaussian exploration noise of std 0.1 (in [-1, 1] action units:
  SB3's NormalActionNoise is added to the scaled action), policy_delay 2, target policy noise 0.2
  clipped at 0.5, one gradient step after every env step, [400, 300] ReLU, one env. Budget: 20k.
SB3: make_vec_env (DummyVecEnv of 1 Monitor-wrapped env), MlpPolicy, device cpu, one model.learn()
call for the whole budget with _common.py's evaluation callback (an SB3 iteration is 1 env step + 1
gradient step here), so its timing covers its own training loop. rlarena: one iteration is
min(--eval-every, 1000) env steps (min_sample_timesteps_per_iteration), each followed by its
gradient step, so both libraries are evaluated at the same env steps.

Every --eval-every env steps the training clock is paused and the current policy plays 20 greedy
episodes on separate envs (SB3: evaluate_policy(deterministic=True) on its own vec env of 10;
rlarena: algo.evaluate()). A run stops at the first evaluation with mean >= -200 or at --max-steps.
Reported: training wall time (evaluation excluded), env steps at success, training env-steps/s, the
time per gradient step (training time / gradient steps taken: the whole loop, env steps included,
divided by the updates, which dominate it), their medians over seeds, and the ratios SB3 / rlarena.
Seeds alternate which library goes first.

    python benchmarks/sac_td3_pendulum.py                                  # SAC and TD3, 5 seeds each
    python benchmarks/sac_td3_pendulum.py --algo sac --threads 2           # both libraries on 2 threads
    python benchmarks/sac_td3_pendulum.py --seeds 1 --max-steps 3000 --algo sac --sb3-threads 1  # smoke
    python benchmarks/sac_td3_pendulum.py --seeds 1 --max-steps 3000 --algo td3 --learning-starts 1000 --sb3-threads 1

Issue 28's comparison: rlarena at its shipped tuned settings (a tuned example) against SB3 at RL-Zoo's,
and SBX (Stable Baselines Jax: its SAC and CrossQ, run by sbx_worker.py in SBX's own venv, one process
per run, in this job) at RL-Zoo's settings, or at others given as --sbx-hp:
    python benchmarks/sac_td3_pendulum.py --algo sac --rlarena-tuned tuned_examples/sac/pendulum_fast.yaml \
        --libs rlarena,sb3,sbx-sac,sbx-crossq --sbx-python /tmp/sbxvenv/bin/python
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    build_from_tuned,
    every_steps,
    header,
    load_tuned,
    median,
    parse_libs,
    parse_seeds,
    probe_sb3_threads,
    run_rlarena,
    run_sb3,
    run_seeds,
    summarize,
)

ENV_ID = "Pendulum-v1"
THRESHOLD = -200.0

# RL-Zoo's Pendulum-v1 SAC (hyperparams/sac.yml: learning_rate 1e-3, 20k steps); SB3's SAC defaults for
# the rest, written out
SAC_HP = {"n_envs": 1, "learning_rate": 1e-3, "batch_size": 256, "buffer_size": 1_000_000, "learning_starts": 100,
          "tau": 0.005, "gamma": 0.99, "train_freq": 1, "gradient_steps": 1, "ent_coef": "auto",
          "net_arch": [256, 256], "n_timesteps": 20_000}
# RL-Zoo's Pendulum-v1 TD3 (hyperparams/td3.yml); SB3's TD3 defaults for the rest, written out
TD3_HP = {"n_envs": 1, "learning_rate": 1e-3, "batch_size": 256, "buffer_size": 200_000, "learning_starts": 10_000,
          "tau": 0.005, "gamma": 0.98, "train_freq": 1, "gradient_steps": 1, "noise_std": 0.1, "policy_delay": 2,
          "target_policy_noise": 0.2, "target_noise_clip": 0.5, "net_arch": [400, 300], "n_timesteps": 20_000}
HP = {"sac": SAC_HP, "td3": TD3_HP}
# The inverted pendulums have no SAC entry in RL-Zoo's hyperparams/sac.yml (only their PyBullet versions),
# so SB3 runs its SAC defaults: lr 3e-4, learning starts after 100 env steps, the rest as SAC_HP (the
# zoo's locomotion entries, e.g. Hopper, add 10k random steps first). Budget: issue 28's 50k env steps.
SAC_MUJOCO_HP = {**SAC_HP, "learning_rate": 3e-4, "learning_starts": 100, "n_timesteps": 50_000}
# --env: the task, its threshold (Gymnasium's reward_threshold) and the settings per algorithm
TASKS = {"Pendulum-v1": (-200.0, HP),
         "InvertedPendulum-v5": (950.0, {"sac": SAC_MUJOCO_HP}),
         "InvertedDoublePendulum-v5": (9100.0, {"sac": SAC_MUJOCO_HP})}
# --rlarena-algo: what rlarena runs against SB3's SAC above (issue 28: "the best algorithm rlarena offers at
# its shipped settings"): its config class and what it sets beside SAC_HP's lr, batch, gamma, replay and
# rhythm. CrossQ keeps its paper's lr 1e-3, beta1 0.5 and policy delay 3; its critics are [256, 256] (the
# paper's 2048-wide ones cost ~30x the FLOPs on a CPU) and learning starts at the zoo's 100 steps.
RLARENA_ALGOS = {
    "sac": ("SACConfig", {}),
    "crossq": ("CrossQConfig", {"critic_hiddens": [256, 256], "policy_delay": 3, "adam_beta1": 0.5}),
    "tqc": ("TQCConfig", {"n_quantiles": 25, "n_critics": 2, "top_quantiles_to_drop_per_net": 2}),
}


def rlarena_config(algo: str, hp: dict[str, Any], seed: int, threads: Any, iteration_steps: int,
                   rlarena_algo: str = "sac"):
    import rlarena
    from rlarena import TD3Config
    common: dict[str, Any] = {
        "lr": hp["learning_rate"], "train_batch_size": hp["batch_size"], "gamma": hp["gamma"], "tau": hp["tau"],
        "replay_buffer_config": {"type": "ReplayBuffer", "capacity": hp["buffer_size"]},
        "num_steps_sampled_before_learning_starts": hp["learning_starts"],
        "train_freq": hp["train_freq"], "gradient_steps": hp["gradient_steps"],
        # iterations end on the evaluation grid, so both libraries are evaluated at the same env steps
        "min_sample_timesteps_per_iteration": iteration_steps,
        "model": {"fcnet_hiddens": hp["net_arch"], "fcnet_activation": "relu"}}
    if algo == "sac":
        name, extra = RLARENA_ALGOS[rlarena_algo]
        if rlarena_algo == "crossq":  # no target networks: tau does not apply
            common.pop("tau")
        if rlarena_algo != "tqc":  # TQC's critics are n_critics
            common["twin_q"] = True
        cfg = getattr(rlarena, name)().training(**common, ent_coef=hp["ent_coef"], **extra)  # ent_coef: SB3's name
    else:
        cfg = TD3Config().training(**common, exploration_noise=hp["noise_std"], policy_delay=hp["policy_delay"],
                                   twin_q=True, smooth_target_policy=True, target_noise=hp["target_policy_noise"],
                                   target_noise_clip=hp["target_noise_clip"])
    return (cfg.environment(ENV_ID)
            .env_runners(num_envs_per_env_runner=hp["n_envs"])
            .evaluation(evaluation_duration=20)
            .resources(num_torch_threads=threads)
            .debugging(seed=seed)
            .build())


def rlarena_run(algo: str, hp: dict[str, Any], seed: int, schedule, max_steps: int, threads: Any,
                iteration_steps: int, rlarena_algo: str = "sac", tuned: dict[str, Any] | None = None) -> dict[str, Any]:
    """`tuned` (a tuned example, as load_tuned reads it): rlarena runs its settings, not `hp`; its thread
    count and the benchmark's iteration length (the evaluation grid) apply."""
    built = []

    def build(s: int):
        if tuned is not None:
            built.append(build_from_tuned(tuned, s, {"min_sample_timesteps_per_iteration": iteration_steps}))
        else:
            built.append(rlarena_config(algo, hp, s, threads, iteration_steps, rlarena_algo))
        return built[-1]

    row = run_rlarena(build, seed, schedule, max_steps, THRESHOLD)
    row["grad_steps"] = built[-1].num_gradient_steps  # counted up to the stop, as the clock
    return row


# -- Stable-Baselines3 ----------------------------------------------------------------------------

def make_sb3_model(algo: str, hp: dict[str, Any], seed: int):
    import numpy as np
    from stable_baselines3 import SAC, TD3
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.noise import NormalActionNoise
    from stable_baselines3.common.vec_env import DummyVecEnv
    env = make_vec_env(ENV_ID, n_envs=hp["n_envs"], seed=seed, vec_env_cls=DummyVecEnv,
                       env_kwargs={"render_mode": None})
    common: dict[str, Any] = {
        "learning_rate": hp["learning_rate"], "buffer_size": hp["buffer_size"], "learning_starts": hp["learning_starts"],
        "batch_size": hp["batch_size"], "tau": hp["tau"], "gamma": hp["gamma"], "train_freq": hp["train_freq"],
        "gradient_steps": hp["gradient_steps"], "policy_kwargs": {"net_arch": hp["net_arch"]}, "seed": seed,
        "device": "cpu", "verbose": 0}
    if algo == "sac":
        return SAC("MlpPolicy", env, ent_coef=hp["ent_coef"], **common)
    n_actions = env.action_space.shape[-1]
    noise = NormalActionNoise(mean=np.zeros(n_actions), sigma=hp["noise_std"] * np.ones(n_actions))
    return TD3("MlpPolicy", env, action_noise=noise, policy_delay=hp["policy_delay"],
               target_policy_noise=hp["target_policy_noise"], target_noise_clip=hp["target_noise_clip"], **common)


def sb3_run(algo: str, hp: dict[str, Any], seed: int, schedule, max_steps: int, threads: int) -> dict[str, Any]:
    import torch
    from stable_baselines3.common.env_util import make_vec_env
    torch.set_num_threads(threads)
    model = make_sb3_model(algo, hp, seed)
    eval_env = make_vec_env(ENV_ID, n_envs=10, seed=seed + 10_000, env_kwargs={"render_mode": None})
    row = run_sb3(model, eval_env, seed, schedule, max_steps, THRESHOLD)
    # learn() stops in the collection right after a successful evaluation, before another update
    row["grad_steps"] = model._n_updates
    return row


# -- SBX (its own venv: sbx_worker.py) -------------------------------------------------------------

def sbx_run(lib: str, hp: dict[str, Any], seed: int, max_steps: int, eval_every: int, python: str) -> dict[str, Any]:
    """lib 'sbx-sac' | 'sbx-crossq': one run in a fresh process of SBX's venv (JAX's import and the
    model's build are not timed, as rlarena's build is not; its JIT compile is, and reported as jit_s)."""
    spec = {"algo": lib.split("-", 1)[1], "env": ENV_ID, "seed": seed, "threshold": THRESHOLD,
            "max_steps": max_steps, "eval_every": eval_every, "n_eval_episodes": 20, "hp": hp}
    worker = str(Path(__file__).resolve().parent / "sbx_worker.py")
    done = subprocess.run([python, worker, json.dumps(spec)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{lib} seed {seed} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def probe_sb3(algo: str, hp: dict[str, Any], updates: int, candidates: list[int]) -> int:
    """SB3's fastest thread count over 100 warm-up steps + `updates` steps with an update each
    (learning_starts lowered to 100 for the probe, so TD3's 10k random steps are not timed)."""
    probe_hp = {**hp, "learning_starts": 100}
    return probe_sb3_threads(lambda: make_sb3_model(algo, probe_hp, 123), 100 + updates, candidates,
                             label=f"{algo.upper()} ")


# -- main -----------------------------------------------------------------------------------------

def run_algo(algo: str, args: argparse.Namespace, seeds: list[int], libs: list[str]) -> None:
    hp = dict(HP[algo])
    if args.learning_starts is not None:
        hp["learning_starts"] = args.learning_starts
    max_steps = args.max_steps if args.max_steps is not None else hp["n_timesteps"]
    iteration_steps = min(args.eval_every, 1000)
    print()
    print(f"## {algo.upper()}: {hp}" + ("" if args.learning_starts is None else
                                       f"  (learning_starts set by --learning-starts, not the zoo's "
                                       f"{HP[algo]['learning_starts']})"))
    print(f"# budget {max_steps} env steps; rlarena: min_sample_timesteps_per_iteration {iteration_steps}")

    rl_threads: Any = args.threads if args.threads is not None else args.rlarena_threads
    rl_threads = int(rl_threads) if str(rl_threads).isdigit() else rl_threads
    rl_algo = args.rlarena_algo if algo == "sac" else algo
    if not (args.rlarena_tuned and algo == "sac"):
        print(f"# rlarena runs {rl_algo}: {RLARENA_ALGOS[rl_algo] if algo == 'sac' else 'the same settings'}")
    else:
        rl_threads = "the tuned example's"
    sb3_threads = None
    if "sb3" in libs:
        if args.threads is not None:
            sb3_threads = args.threads
        elif args.sb3_threads == "auto":
            sb3_threads = probe_sb3(algo, hp, args.probe_updates, [1, 2])
        else:
            sb3_threads = int(args.sb3_threads)
    print(f"# torch threads: rlarena {rl_threads}" + ("" if sb3_threads is None else f", SB3 {sb3_threads}"))

    schedule = every_steps(args.eval_every)
    tuned = load_tuned(args.rlarena_tuned, ("SAC", "CrossQ", "TQC")) if args.rlarena_tuned and algo == "sac" else None
    if tuned is not None and tuned["env"] != ENV_ID:
        raise SystemExit(f"{args.rlarena_tuned} trains {tuned['env']}, not --env {ENV_ID}")
    if tuned is not None:
        print(f"# rlarena runs the tuned example {args.rlarena_tuned}: {tuned['algo']} {tuned['config']}")
    sbx_hp = {**hp, **json.loads(args.sbx_hp)}
    if any(lib.startswith("sbx") for lib in libs):
        print(f"# SBX ({args.sbx_python}) runs {sbx_hp}; CrossQ: its own policy delay 3, Adam beta1 0.5, batch "
              f"renorm, critics {sbx_hp.get('qf_net_arch', sbx_hp['net_arch'])}")
    runs = {
        "rlarena": lambda seed: rlarena_run(algo, hp, seed, schedule, max_steps, rl_threads, iteration_steps,
                                            rl_algo, tuned),
        "sb3": lambda seed: sb3_run(algo, hp, seed, schedule, max_steps, sb3_threads)}
    for lib in ("sbx-sac", "sbx-crossq"):
        runs[lib] = lambda seed, lib=lib: sbx_run(lib, sbx_hp, seed, max_steps, args.eval_every, args.sbx_python)
    rows = run_seeds(libs, seeds, runs)
    for row in rows:
        row["ms_per_grad_step"] = 1000 * row["time_s"] / row["grad_steps"] if row["grad_steps"] else float("nan")

    med = summarize(rows, libs, THRESHOLD, {"rlarena": f", torch threads {rl_threads}",
                                            "sb3": f", torch threads {sb3_threads}"})
    per_step = {}
    for lib in libs:
        mine = [r for r in rows if r["lib"] == lib]
        per_step[lib] = median([r["ms_per_grad_step"] for r in mine])
        print(f"time per gradient step {lib:8s}: {per_step[lib]:.2f} ms (median of training time / gradient "
              f"steps; per seed: {', '.join(format(r['ms_per_grad_step'], '.2f') for r in mine)}; gradient steps: "
              f"{', '.join(str(r['grad_steps']) for r in mine)})")
    if "rlarena" in med and "sb3" in med:
        print(f"RATIO time per gradient step SB3 / rlarena = {per_step['sb3'] / per_step['rlarena']:.2f}x")
        print("(target: time ratio >= 3)")
    for lib in (x for x in libs if x.startswith("sbx")):
        mine = [r for r in rows if r["lib"] == lib]
        print(f"{lib}: JIT compile {median([r['jit_s'] for r in mine]):.2f} s median (included in its time; per "
              f"seed {', '.join(format(r['jit_s'], '.2f') for r in mine)})")
        if "rlarena" in med:
            print(f"RATIO time to {THRESHOLD:g} {lib} / rlarena = {med[lib]['time_s'] / med['rlarena']['time_s']:.2f}x; "
                  f"without its JIT {(med[lib]['time_s'] - median([r['jit_s'] for r in mine])) / med['rlarena']['time_s']:.2f}x"
                  f"  (target: >= 1)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algo", choices=("sac", "td3", "both"), default="both")
    p.add_argument("--env", choices=tuple(TASKS), default="Pendulum-v1",
                   help="the task (MuJoCo ones need: pip install mujoco)")
    p.add_argument("--seeds", default="5", help="'5' = five seeds 0..4; a list '0,5,7'; a range '0-4'; one seed N: 'N-N'")
    p.add_argument("--max-steps", type=int, default=None, help="env-step budget per run (default: the zoo's 20k)")
    p.add_argument("--eval-every", type=int, default=1000, help="evaluate every N env steps")
    p.add_argument("--learning-starts", type=int, default=None,
                   help="override learning_starts on both sides (for smoke runs of TD3, whose zoo value is 10k)")
    p.add_argument("--libs", default="rlarena,sb3", help="comma list of rlarena,sb3,sbx-sac,sbx-crossq")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads for both libraries (overrides --sb3-threads and --rlarena-threads)")
    p.add_argument("--sb3-threads", default="auto",
                   help="torch threads for SB3: an int, or 'auto' = probe 1 and 2 and use the faster")
    p.add_argument("--probe-updates", type=int, default=500, help="SB3 env steps with an update each, per probe run")
    p.add_argument("--rlarena-threads", default="1", help="num_torch_threads for rlarena: an int, or 'auto'")
    p.add_argument("--rlarena-algo", choices=tuple(RLARENA_ALGOS), default="sac",
                   help="with --algo sac: what rlarena runs against SB3's SAC (RLARENA_ALGOS)")
    p.add_argument("--rlarena-tuned", default=None,
                   help="with --algo sac: rlarena runs this tuned example (SAC, CrossQ or TQC) instead of RL-Zoo's settings")
    p.add_argument("--sbx-python", default="/tmp/sbxvenv/bin/python", help="the python of a venv with sbx-rl")
    p.add_argument("--sbx-hp", default="{}", help="JSON: SBX's settings over RL-Zoo's (SAC_HP), e.g. "
                   '\'{"net_arch": [64, 64], "learning_rate": 0.003}\'; "qf_net_arch" for CrossQ\'s critics')
    args = p.parse_args(argv)

    seeds, libs = parse_seeds(args.seeds), parse_libs(args.libs, ("sbx-sac", "sbx-crossq"))
    global ENV_ID, THRESHOLD, HP  # the task: every function above reads these
    ENV_ID = args.env
    THRESHOLD, HP = TASKS[args.env]
    if args.algo != "sac" and "td3" not in HP:
        raise SystemExit(f"--env {args.env}: --algo sac only (TD3 has RL-Zoo settings here for Pendulum-v1 only)")
    if args.eval_every < 1:
        raise SystemExit("--eval-every must be >= 1")

    header(f"{ENV_ID} SAC and TD3, RL-Zoo's settings, rlarena vs SB3")
    print(f"# seeds {seeds}, threshold {THRESHOLD} (20 greedy episodes), evaluate every {args.eval_every} env "
          f"steps, evaluation time excluded")
    for algo in (("sac", "td3") if args.algo == "both" else (args.algo,)):
        run_algo(algo, args, seeds, libs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
