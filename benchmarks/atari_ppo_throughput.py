"""Atari PPO training throughput (sampling + updates), rlarena vs Stable-Baselines3, side by side in
this process.

Both run RL-Zoo's Atari PPO (rl-baselines3-zoo hyperparams/ppo.yml, `atari:`): 8 envs x 128 steps
(1,024 env steps an iteration), minibatch 256, 4 epochs, lr 2.5e-4, clip 0.1, entropy 0.01, vf 0.5
(the zoo's `lin_` schedules are constants here: they do not change the work), gamma 0.99, GAE 0.95,
grad clip 0.5, on the same env id (ALE/Breakout-v5 by default: sticky actions 0.25, made with
frameskip=1 on both sides, DeepMind's wrappers on top):

- rlarena: `.environment(ENV)` (its wrappers: no-op reset, skip 4 with max-pool, 84x84 grey, episodic
  life, FIRE reset, clipped rewards, 4 frames stacked channels first, uint8), gymnasium's
  SyncVectorEnv of 8 (the default `vectorization_mode="auto"`), model = the Nature CNN with its
  512-unit layer shared by the policy and value heads, nothing after it (fcnet_hiddens and
  post_fcnet_hiddens empty, vf_share_layers True): SB3's CnnPolicy, parameter for parameter (the
  script prints both counts).
- SB3: `make_atari_env(ENV, n_envs=8, env_kwargs={"frameskip": 1})` (AtariWrapper; DummyVecEnv, or
  SubprocVecEnv with --sb3-vec subproc) + `VecFrameStack(4)`, `PPO("CnnPolicy")` (features extractor
  shared, SB3's default), device cpu.

Each run builds the library's agent, trains one warm-up iteration (not timed), then times --iters
iterations: rlarena around `algo.train()`, SB3 around one `model.learn(iters x 1024)` call. Repeats
alternate which library goes first. Each library runs at its own best torch thread count, measured at
the start (--threads auto: 1 vs 2, two timed iterations each after a warm-up, interleaved).

--profile: cProfile over one iteration of each (after the warm-up) and where the time goes: env
stepping, the CNN forward while sampling, rlarena's batched forward for values and log-probs after the
rollout, the update's forward, backward and optimizer.

    python benchmarks/atari_ppo_throughput.py                    # 3 repeats x 24 iterations (24,576 steps), ~25 min
    python benchmarks/atari_ppo_throughput.py --profile --repeats 0
    python benchmarks/atari_ppo_throughput.py --quick            # 1 repeat x 2 iterations, 1 thread, ~2 min
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import header

ZOO = {"n_envs": 8, "n_steps": 128, "batch_size": 256, "n_epochs": 4, "learning_rate": 2.5e-4, "clip_range": 0.1,
       "ent_coef": 0.01, "vf_coef": 0.5, "gamma": 0.99, "gae_lambda": 0.95, "max_grad_norm": 0.5}
STEPS_PER_ITER = ZOO["n_envs"] * ZOO["n_steps"]


# -- the two agents -----------------------------------------------------------------------------------

def build_rlarena(env_id: str, seed: int, threads: int, vec: str, sample_async: bool = False):
    from rlarena import PPOConfig
    return (PPOConfig().environment(env_id)
            .env_runners(num_envs_per_env_runner=ZOO["n_envs"], vectorization_mode=vec, sample_async=sample_async)
            .training(lr=ZOO["learning_rate"], train_batch_size=STEPS_PER_ITER, minibatch_size=ZOO["batch_size"],
                      num_epochs=ZOO["n_epochs"], clip_param=ZOO["clip_range"], entropy_coeff=ZOO["ent_coef"],
                      vf_loss_coeff=ZOO["vf_coef"], gamma=ZOO["gamma"], lambda_=ZOO["gae_lambda"],
                      grad_clip=ZOO["max_grad_norm"],
                      # SB3's CnnPolicy: Nature CNN + its 512 units shared, the two heads directly on them
                      model={"fcnet_hiddens": [], "post_fcnet_hiddens": [], "vf_share_layers": True})
            .resources(num_torch_threads=threads)
            .debugging(seed=seed)
            .build())


def build_sb3(env_id: str, seed: int, vec: str):
    import ale_py
    import gymnasium as gym
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecFrameStack
    gym.register_envs(ale_py)
    vec_cls = SubprocVecEnv if vec == "subproc" else DummyVecEnv
    env = VecFrameStack(make_atari_env(env_id, n_envs=ZOO["n_envs"], seed=seed, vec_env_cls=vec_cls,
                                       env_kwargs={"frameskip": 1}), n_stack=4)
    return PPO("CnnPolicy", env, n_steps=ZOO["n_steps"], batch_size=ZOO["batch_size"], n_epochs=ZOO["n_epochs"],
               learning_rate=ZOO["learning_rate"], clip_range=ZOO["clip_range"], ent_coef=ZOO["ent_coef"],
               vf_coef=ZOO["vf_coef"], gamma=ZOO["gamma"], gae_lambda=ZOO["gae_lambda"],
               max_grad_norm=ZOO["max_grad_norm"], device="cpu", seed=seed)


def sb3_backend(model) -> str:
    env, names = model.env, []
    while env is not None:
        names.append(type(env).__name__)
        env = getattr(env, "venv", None)
    return " > ".join(names)


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


class Agent:
    """A built agent of either library with the same small surface: warm_up(), train(iters) -> seconds."""

    def __init__(self, lib: str, args, seed: int, threads: int, sample_async: bool = False):
        import torch
        self.lib = lib
        if lib == "sb3":
            torch.set_num_threads(threads)
            self.model = build_sb3(args.env, seed, args.sb3_vec)
        else:
            self.algo = build_rlarena(args.env, seed, threads, args.rlarena_vec, sample_async)  # sets the threads

    def iterate(self, iters: int) -> float:
        t0 = time.perf_counter()
        if self.lib == "sb3":
            self.model.learn(iters * STEPS_PER_ITER, reset_num_timesteps=False)
        else:
            for _ in range(iters):
                self.algo.train()
        return time.perf_counter() - t0

    def steps(self) -> int:
        return self.model.num_timesteps if self.lib == "sb3" else self.algo.num_env_steps_sampled_lifetime

    def close(self) -> None:
        if self.lib == "sb3":
            self.model.env.close()
        else:
            self.algo.stop()


def timed_run(lib: str, args, seed: int, threads: int, iters: int, sample_async: bool = False) -> float:
    """Env steps/s over `iters` iterations after one warm-up iteration."""
    agent = Agent(lib, args, seed, threads, sample_async)
    try:
        agent.iterate(1)
        steps0 = agent.steps()
        seconds = agent.iterate(iters)
        return (agent.steps() - steps0) / seconds
    finally:
        agent.close()


def probe_threads(lib: str, args) -> int:
    """1 vs 2 torch threads on one agent: warm-up, then --probe-iters iterations at each count, twice,
    interleaved; the faster (best of two)."""
    import torch
    agent = Agent(lib, args, seed=123, threads=1)
    best: dict[int, float] = {}
    try:
        agent.iterate(1)
        for _ in range(2):
            for n in (1, 2):
                torch.set_num_threads(n)
                best[n] = max(best.get(n, 0.0), args.probe_iters * STEPS_PER_ITER / agent.iterate(args.probe_iters))
    finally:
        agent.close()
    choice = max(best, key=best.get)
    print(f"# {lib} torch-thread probe (env steps/s, best of 2 x {args.probe_iters} iterations): "
          + ", ".join(f"{n}: {r:.1f}" for n, r in best.items()) + f" -> {choice}", flush=True)
    return choice


# -- profile ------------------------------------------------------------------------------------------

def cum(stats: pstats.Stats, path_end: str, func: str) -> float:
    """Cumulative seconds of the function `func` defined in a file ending with `path_end` (summed over
    the matches: e.g. several classes' step in one file)."""
    total = 0.0
    for (filename, _, name), (_, _, _, ct, _) in stats.stats.items():  # type: ignore[attr-defined]
        if (name == func or name.startswith(f"<method '{func}'")) and filename.replace("\\", "/").endswith(path_end):
            total += ct
    return total


def profile_one(lib: str, args, threads: int) -> None:
    agent = Agent(lib, args, seed=0, threads=threads)
    try:
        agent.iterate(1)
        prof = cProfile.Profile()
        prof.enable()
        wall = agent.iterate(1)
        prof.disable()
    finally:
        agent.close()
    st = pstats.Stats(prof)
    total = cum(st, "rlarena/algorithms/algorithm.py", "train") if lib == "rlarena" else cum(st, "stable_baselines3/ppo/ppo.py", "learn")
    backward = cum(st, "", "run_backward")
    if lib == "rlarena":
        sample = cum(st, "rlarena/rollout/runner.py", "sample")
        env = cum(st, "gymnasium/vector/sync_vector_env.py", "step") + cum(st, "rlarena/envs/subproc.py", "step")
        forward_sampling = cum(st, "rlarena/policies/torch_policy.py", "sample")
        after = cum(st, "rlarena/algorithms/on_policy.py", "prepare_batch")
        update = cum(st, "rlarena/algorithms/ppo.py", "update_policy") - after
        loss_fwd = cum(st, "rlarena/algorithms/ppo.py", "ppo_loss")
        optim = cum(st, "rlarena/learners/learner.py", "step") - backward
        rows = [("sampling (runner.sample)", sample),
                ("  env stepping (SyncVectorEnv.step: ALE + wrappers)", env),
                ("  CNN forward for actions (policy.sample, batch 8)", forward_sampling),
                ("  rest of sampling (storage writes, episode stats)", sample - env - forward_sampling),
                ("values + log-probs after the rollout (prepare_batch: one forward of 1,032 obs, GAE)", after),
                ("update: 16 minibatch steps", update),
                ("  forward + loss (ppo_loss)", loss_fwd),
                ("  backward", backward),
                ("  optimizer (grad clip + Adam) and the rest of the step", optim),
                ("  rest of the update (gathers, statistics)", update - loss_fwd - backward - optim)]
    else:
        sample = cum(st, "stable_baselines3/common/on_policy_algorithm.py", "collect_rollouts")
        env = cum(st, "stable_baselines3/common/vec_env/base_vec_env.py", "step")
        forward_sampling = cum(st, "stable_baselines3/common/policies.py", "forward")
        train = cum(st, "stable_baselines3/ppo/ppo.py", "train")
        loss_fwd = cum(st, "stable_baselines3/common/policies.py", "evaluate_actions")
        optim = cum(st, "torch/optim/optimizer.py", "wrapper") + cum(st, "torch/nn/utils/clip_grad.py", "clip_grad_norm_")
        rows = [("sampling (collect_rollouts)", sample),
                ("  env stepping (VecTransposeImage > VecFrameStack > vec env .step)", env),
                ("  CNN forward for actions, values, log-probs (policy.forward, batch 8)", forward_sampling),
                ("  rest of sampling (buffer.add, obs_as_tensor, GAE, value bootstrap)",
                 sample - env - forward_sampling),
                ("update: 16 minibatch steps (PPO.train)", train),
                ("  forward (evaluate_actions)", loss_fwd),
                ("  backward", backward),
                ("  optimizer (clip_grad_norm_ + Adam)", optim),
                ("  rest of the update (buffer.get, minibatch copies, loss ops)", train - loss_fwd - backward - optim)]
    print(f"\n## profile, {lib}, one iteration ({STEPS_PER_ITER} env steps), {threads} torch thread(s): "
          f"{wall:.2f} s wall under cProfile")
    for name, seconds in rows:
        print(f"  {name:88s} {seconds:6.2f} s  {100 * seconds / total:5.1f} %")
    other = total - sum(s for n, s in rows if not n.startswith(" "))
    print(f"  {'other (result dict, logging, ...)':88s} {other:6.2f} s  {100 * other / total:5.1f} %")


# -- main ---------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="ALE/Breakout-v5", help="an ALE id (both libraries make it with frameskip=1)")
    p.add_argument("--iters", type=int, default=24, help="timed iterations per run (1,024 env steps each)")
    p.add_argument("--repeats", type=int, default=3, help="alternated runs per library (seeds 0..N-1)")
    p.add_argument("--threads", default="auto", help="torch threads for both: 1, 2, or auto = probe each library")
    p.add_argument("--probe-iters", type=int, default=2, help="iterations per thread-probe measurement")
    p.add_argument("--sb3-vec", choices=("dummy", "subproc"), default="dummy",
                   help="SB3's vec env: DummyVecEnv (make_atari_env's default) or SubprocVecEnv")
    p.add_argument("--rlarena-vec", default="auto", help="rlarena's vectorization_mode (auto = SyncVectorEnv here)")
    p.add_argument("--async", dest="sample_async", action="store_true",
                   help="also rlarena with sample_async=True (sampling in a second process while the learner "
                        "updates: one iteration of policy lag, corrected by the behaviour log-probs)")
    p.add_argument("--profile", action="store_true", help="cProfile one iteration of each library")
    p.add_argument("--quick", action="store_true", help="1 repeat x 2 iterations, 1 thread, no probe")
    args = p.parse_args(argv)
    if args.quick:
        args.iters, args.repeats, args.threads = 2, 1, "1"

    header(f"Atari PPO training throughput ({args.env}, RL-Zoo settings, Nature CNN), rlarena vs SB3")
    import ale_py
    import stable_baselines3
    print(f"# ale-py {ale_py.__version__}, SB3 {stable_baselines3.__version__}; {args.iters} timed iterations "
          f"({args.iters * STEPS_PER_ITER} env steps) after 1 warm-up iteration, {args.repeats} repeats")
    print(f"# settings: {ZOO}")

    # the two networks, and the env backends
    ours, theirs = Agent("rlarena", args, 0, 1), Agent("sb3", args, 0, 1)
    try:
        policy = ours.algo.get_policy()
        print(f"# rlarena: {n_params(policy.model):,} parameters; observations {policy.observation_space.shape} "
              f"{policy.observation_space.dtype}, stored as {policy.obs_dtype}; env backend "
              f"{type(ours.algo.runner.env).__name__} (vectorization_mode={args.rlarena_vec!r})")
        print(f"# SB3:     {n_params(theirs.model.policy):,} parameters; observations "
              f"{theirs.model.observation_space.shape} {theirs.model.observation_space.dtype}, rollout buffer "
              f"{theirs.model.rollout_buffer.observations.dtype}; env backend {sb3_backend(theirs.model)}")
    finally:
        ours.close()
        theirs.close()

    if args.threads == "auto":
        threads = {lib: probe_threads(lib, args) for lib in ("rlarena", "sb3")}
    else:
        threads = {"rlarena": int(args.threads), "sb3": int(args.threads)}

    if args.profile:
        for lib in ("rlarena", "sb3"):
            profile_one(lib, args, threads[lib])

    libs = ["rlarena", "sb3"] + (["rlarena-async"] if args.sample_async else [])
    rates: dict[str, list[float]] = {lib: [] for lib in libs}
    for r in range(args.repeats):
        order = libs if r % 2 == 0 else libs[::-1]
        for lib in order:
            if lib == "rlarena-async":
                rate = timed_run("rlarena", args, r, threads["rlarena"], args.iters, sample_async=True)
            else:
                rate = timed_run(lib, args, r, threads[lib], args.iters)
            rates[lib].append(rate)
            print(f"  repeat {r} {lib:14s} {rate:8.1f} env steps/s", flush=True)
    if not args.repeats:
        return 0

    print()
    med = {lib: statistics.median(v) for lib, v in rates.items()}
    for lib in libs:
        t = threads["sb3" if lib == "sb3" else "rlarena"]
        print(f"median {lib:14s}: {med[lib]:8.1f} env steps/s (training: sampling + updates), torch threads {t}; "
              f"runs {', '.join(f'{v:.1f}' for v in rates[lib])}")
    print(f"RATIO training env steps/s  rlarena / SB3 = {med['rlarena'] / med['sb3']:.2f}x  (bar: 3x)")
    if args.sample_async:
        print(f"RATIO training env steps/s  rlarena sample_async / SB3 = {med['rlarena-async'] / med['sb3']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
