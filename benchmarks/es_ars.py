"""ES and ARS (rlarena.algorithms.es): CartPole-v1 to a greedy score of 475 with 1 and 2 worker
processes, and ARS on Pendulum-v1 for a fixed budget.

CartPole configs (after RLlib's tuned examples cartpole-es.yaml and cartpole-ars.yaml):
  ES:  episodes_per_batch 50 (25 mirrored pairs), stepsize 0.01, l2_coeff 0.005, noise_stdev 0.02,
       a [32, 32] tanh MLP policy (RLlib's example keeps the [256, 256] default: smaller here for time)
  ARS: num_rollouts 50, rollouts_used 25, sgd_stepsize 0.01, noise_stdev 0.02, a linear policy
After every iteration whose perturbed episodes average >= 400, the training clock is paused and the
unperturbed policy plays 20 greedy episodes (algo.evaluate()); a run stops at the first mean >= 475
or at --max-seconds of training. Reported per algorithm and worker count: training wall time
(evaluation and worker start-up excluded; start-up is shown apart), env steps, iterations, medians
over seeds, and the speedup of 2 workers over 1. The updates are the same for any worker count (the
same seed gives the same weights), so the two columns run the same iterations and only time differs.

Pendulum: ARS V2 (observations normalized by a MeanStdFilter merged across the workers), linear
policy, num_rollouts 32, rollouts_used 16, sgd_stepsize 0.02, noise_stdev 0.03, 2 workers,
--pendulum-iters iterations; reported: the greedy mean of 20 episodes at the end.

    python benchmarks/es_ars.py                   # 3 seeds
    python benchmarks/es_ars.py --seeds 1 --max-seconds 10
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import header, median, parse_seeds, print_table

from rlarena.algorithms.es import ARSConfig, ESConfig


def cartpole_config(algo: str, workers: int, seed: int) -> Any:
    if algo == "ES":
        cfg = ESConfig().training(episodes_per_batch=50, stepsize=0.01, l2_coeff=0.005, noise_stdev=0.02,
                                  model={"fcnet_hiddens": [32, 32]})
    else:
        cfg = ARSConfig().training(num_rollouts=50, rollouts_used=25, sgd_stepsize=0.01, noise_stdev=0.02)
    return (cfg.environment("CartPole-v1").env_runners(num_es_workers=workers)
            .evaluation(evaluation_duration=20).debugging(seed=seed))


def solve_cartpole(algo_name: str, workers: int, seed: int, max_seconds: float) -> dict[str, Any]:
    start = time.perf_counter()
    algo = cartpole_config(algo_name, workers, seed).build()
    startup = time.perf_counter() - start
    greedy, solved = float("nan"), False
    try:
        while algo.time_total_s < max_seconds:
            result = algo.train()
            if result["perturbed_return_mean"] >= 400:
                greedy = algo.evaluate()["episode_return_mean"]
                if greedy >= 475:
                    solved = True
                    break
        out = {"algo": algo_name, "workers": workers, "seed": seed, "solved": solved, "greedy": greedy,
               "train_s": algo.time_total_s, "startup_s": startup, "iters": algo.iteration,
               "steps": algo.num_env_steps_sampled_lifetime}
    finally:
        algo.stop()
    out["wall_s"] = time.perf_counter() - start
    return out


def pendulum(seed: int, iters: int, workers: int) -> dict[str, Any]:
    algo = (ARSConfig().environment("Pendulum-v1")
            .training(num_rollouts=32, rollouts_used=16, sgd_stepsize=0.02, noise_stdev=0.03)
            .env_runners(num_es_workers=workers, observation_filter="MeanStdFilter")  # ARS V2
            .evaluation(evaluation_duration=20).debugging(seed=seed).build())
    try:
        for _ in range(iters):
            algo.train()
        return {"seed": seed, "iters": iters, "steps": algo.num_env_steps_sampled_lifetime,
                "train_s": algo.time_total_s, "greedy": algo.evaluate()["episode_return_mean"]}
    finally:
        algo.stop()


def _ceiling_job(barrier: Any, episodes: int, out: Any) -> None:
    """Play `episodes` Pendulum episodes (200 steps each: a fixed amount of work) with an ES player;
    put the seconds it took into `out`."""
    import gymnasium as gym
    import torch

    from rlarena.algorithms.es import PerturbationPlayer
    torch.set_num_threads(1)
    env = gym.make("Pendulum-v1")
    player = PerturbationPlayer("Pendulum-v1", {}, env.observation_space, env.action_space,
                                {"fcnet_hiddens": [32, 32], "fcnet_activation": "tanh", "vf_share_layers": False,
                                 "log_std_init": 0.0, "board_features": None}, 2**16, 0.02)
    barrier.wait()
    start = time.perf_counter()
    player.play([(0, seed, 1) for seed in range(episodes)])
    out.put(time.perf_counter() - start)


def parallel_ceiling(episodes: int) -> dict[str, float]:
    """The machine's own limit on a 2-process speedup: the same fixed work in one process alone, then
    in two processes at once (what two ES workers do, without any coordination). 2 x alone / together."""
    import multiprocessing as mp
    ctx = mp.get_context("spawn")
    times = {}
    for n in (1, 2):
        barrier, out = ctx.Barrier(n), ctx.Queue()
        procs = [ctx.Process(target=_ceiling_job, args=(barrier, episodes, out)) for _ in range(n)]
        for p in procs:
            p.start()
        times[n] = max(out.get() for _ in procs)
        for p in procs:
            p.join()
    return {"alone_s": times[1], "together_s": times[2], "ceiling": 2 * times[1] / times[2]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="3")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="training time cap per CartPole run")
    parser.add_argument("--pendulum-iters", type=int, default=100)
    parser.add_argument("--ceiling-only", action="store_true", help="only measure the machine's 2-process ceiling")
    args = parser.parse_args()
    seeds = parse_seeds(args.seeds)
    header("ES and ARS: CartPole-v1 to greedy 475 with 1 and 2 worker processes; ARS on Pendulum-v1")
    ceilings = [parallel_ceiling(100) for _ in range(3)]
    print("The machine's 2-process ceiling (100 Pendulum episodes per process, alone vs two at once): "
          + ", ".join(f"{c['ceiling']:.2f}x ({c['alone_s']:.2f} s alone, {c['together_s']:.2f} s together)"
                      for c in ceilings) + f"; median {median([c['ceiling'] for c in ceilings]):.2f}x", flush=True)
    if args.ceiling_only:
        return
    rows = []
    for algo_name in ("ES", "ARS"):
        for seed in seeds:
            for workers in (1, 2):
                row = solve_cartpole(algo_name, workers, seed, args.max_seconds)
                print(f"  {algo_name} seed {seed} workers {workers}: solved {row['solved']} greedy {row['greedy']:.1f} "
                      f"train {row['train_s']:.2f}s startup {row['startup_s']:.2f}s iters {row['iters']} "
                      f"steps {row['steps']}", flush=True)
                rows.append(row)
    print()
    print_table(rows, [("algo", "algo", ""), ("seed", "seed", "d"), ("workers", "workers", "d"),
                       ("solved", "solved", ""), ("greedy", "greedy", ".1f"), ("iters", "iters", "d"),
                       ("steps", "env steps", ",d"), ("train_s", "train s", ".2f"), ("startup_s", "start-up s", ".2f")])
    print()
    summary = []
    for algo_name in ("ES", "ARS"):
        one = [r for r in rows if r["algo"] == algo_name and r["workers"] == 1]
        two = [r for r in rows if r["algo"] == algo_name and r["workers"] == 2]
        summary.append({"algo": algo_name, "solved": f"{sum(r['solved'] for r in one)}/{len(one)} | "
                                                     f"{sum(r['solved'] for r in two)}/{len(two)}",
                        "steps": median([r["steps"] for r in one]),
                        "t1": median([r["train_s"] for r in one]), "t2": median([r["train_s"] for r in two]),
                        "speedup": median([a["train_s"] / b["train_s"] for a, b in zip(one, two)]),
                        "startup": median([r["startup_s"] for r in two])})
    print_table(summary, [("algo", "algo", ""), ("solved", "solved (1 | 2 workers)", ""),
                          ("steps", "median env steps", ",.0f"), ("t1", "median train s, 1 worker", ".2f"),
                          ("t2", "median train s, 2 workers", ".2f"), ("speedup", "median speedup", ".2f"),
                          ("startup", "2-worker start-up s", ".2f")])
    print()
    prow = [pendulum(seed, args.pendulum_iters, 2) for seed in seeds]
    print(f"ARS on Pendulum-v1, 2 workers, {args.pendulum_iters} iterations:")
    print_table(prow, [("seed", "seed", "d"), ("iters", "iters", "d"), ("steps", "env steps", ",d"),
                       ("train_s", "train s", ".2f"), ("greedy", "greedy mean (20 episodes)", ".1f")])
    print(f"median greedy {median([r['greedy'] for r in prow]):.1f}")


if __name__ == "__main__":
    main()
