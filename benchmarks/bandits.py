"""Contextual bandits (issue 16): cumulative regret of LinUCB, LinTS and a uniform-random policy on the
linear bandit and the wheel bandit, and LinUCB/LinTS training speed.

The bar: after 10k steps the regret grows sublinearly and is <= 1/5 of the random policy's. Each run
trains 10,000 env steps (one env, 100 steps per train(), a posterior update after every step, the
defaults); the cumulative regret is read at 1k, 2k, 5k and 10k steps, and the regret of steps
5,001-10,000 is set against that of steps 1-5,000 ("2nd half / 1st half": 1 is linear growth). Medians
over seeds. Regret is the pseudo-regret the envs report (best arm's expected reward minus the chosen
arm's). The linear bandit draws a new problem (arm parameters) per seed (problem_seed = seed).

LinUCB runs twice on the wheel bandit: with the default alpha 1.0 and with alpha 10, since the bound's
width must match the rewards' scale (mu_3 = 50) there. env steps/s is training wall time, the env's
own time included, on one core (num_torch_threads 1; the math is numpy), beside the env alone.

    python benchmarks/bandits.py                       # 5 seeds, writes benchmarks/bandits_regret.png
    python benchmarks/bandits.py --seeds 1 --no-plot   # smoke run
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from rlarena import LinTSConfig, LinUCBConfig
from rlarena.envs.bandits import LinearDiscreteEnv, WheelBanditEnv, uniform_random_regret

STEPS = 10_000
MARKS = (1_000, 2_000, 5_000, 10_000)
RUNS = [  # (env name, label, config maker)
    ("linear_bandit", "LinUCB", lambda: LinUCBConfig()),
    ("linear_bandit", "LinTS", lambda: LinTSConfig()),
    ("wheel_bandit", "LinUCB", lambda: LinUCBConfig()),
    ("wheel_bandit", "LinUCB alpha=10", lambda: LinUCBConfig().training(alpha=10.0)),
    ("wheel_bandit", "LinTS", lambda: LinTSConfig()),
]
COLORS = {"LinUCB": "tab:blue", "LinUCB alpha=10": "tab:cyan", "LinTS": "tab:orange", "random": "tab:gray"}
ENVS = {"linear_bandit": LinearDiscreteEnv, "wheel_bandit": WheelBanditEnv}


def env_config(env: str, seed: int) -> dict:
    return {"problem_seed": seed} if env == "linear_bandit" else {}


def train_curve(env: str, make_config, seed: int) -> tuple[np.ndarray, float]:
    """(cumulative regret after each 100 steps [100], env steps/s)."""
    algo = make_config().environment(env, env_config=env_config(env, seed)).debugging(seed=seed).build()
    curve, seconds = [], 0.0
    while algo.num_env_steps_sampled_lifetime < STEPS:
        start = time.perf_counter()
        result = algo.train()
        seconds += time.perf_counter() - start
        curve.append(result["cumulative_regret"])
    algo.stop()
    return np.array(curve), STEPS / seconds


def env_ceiling(env: str) -> float:
    """env steps/s of the same one-env vector env stepped with random arms and reset after each step
    (the bandit loop without the policy): the most the training loop could reach."""
    from rlarena.envs.registry import make_vector_env
    vec = make_vector_env(env, {}, 1)
    vec.reset(seed=0)
    arms = np.random.default_rng(0).integers(vec.single_action_space.n, size=(STEPS, 1))
    start = time.perf_counter()
    for a in arms:
        vec.step(a)
        vec.reset()
    return STEPS / (time.perf_counter() - start)


def row(label: str, curves: list[np.ndarray], speeds: list[float] | None) -> str:
    at = [float(np.median([c[m // 100 - 1] for c in curves])) for m in MARKS]
    halves = float(np.median([(c[-1] - c[len(c) // 2 - 1]) / c[len(c) // 2 - 1] for c in curves]))
    speed = f"{np.median(speeds):>9,.0f}" if speeds else f"{'-':>9}"
    return f"| {label:<16} | " + " | ".join(f"{v:>10,.1f}" for v in at) + f" | {halves:>6.3f} | {speed} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    curves: dict[tuple[str, str], list[np.ndarray]] = {}
    head = ("| policy           | " + " | ".join(f"{m:>10,}" for m in MARKS)
            + " | 2nd/1st | steps/s   |\n|" + "---|" * (len(MARKS) + 3))
    for env in ENVS:
        print(f"\n{env}: median cumulative regret over {len(seeds)} seeds at each step count")
        print(head)
        random = [uniform_random_regret(ENVS[env](env_config(env, s)), STEPS, s)[99::100] for s in seeds]
        curves[(env, "random")] = random
        for run_env, label, make in RUNS:
            if run_env != env:
                continue
            runs = [train_curve(env, make, s) for s in seeds]
            curves[(env, label)] = [c for c, _ in runs]
            print(row(label, [c for c, _ in runs], [s for _, s in runs]))
        print(row("uniform random", random, None))
        print(f"env alone (random arms, same vector env and resets): {env_ceiling(env):,.0f} steps/s")
        for run_env, label, _ in RUNS:
            if run_env == env:
                ratio = np.median([c[-1] for c in curves[(env, label)]]) / np.median([c[-1] for c in random])
                print(f"{label}: regret at 10k / random's = {ratio:.4f} (bar: <= 0.2)")
    if not args.no_plot:
        plot(curves, Path(__file__).resolve().parent / "bandits_regret.png")


def plot(curves: dict[tuple[str, str], list[np.ndarray]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    steps = np.arange(1, STEPS // 100 + 1) * 100
    for ax, env in zip(axes, ENVS):
        for (e, label), runs in curves.items():
            if e == env:
                ax.plot(steps, np.median(runs, 0), label=label, color=COLORS[label],
                        linestyle="--" if label == "random" else "-")
        ax.set_title(env)
        ax.set_xlabel("env steps")
        ax.set_ylabel("cumulative regret (median over seeds)")
        ax.set_yscale("log")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    print(f"\nplot: {path}")


if __name__ == "__main__":
    main()
