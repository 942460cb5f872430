"""Shared helpers for the benchmark scripts (not a public module).

Every benchmark here runs rlarena and its peer in the same process, one after the other, and
prints a ratio: the machines are shared, so absolute times drift between jobs but a ratio measured
side by side holds.
"""

from __future__ import annotations

import math
import platform
import statistics
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' -> [0, 1, 2]; '3' alone means three seeds 0..2; '5-7' -> [5, 6, 7]."""
    text = text.strip()
    if "," in text:
        return [int(s) for s in text.split(",") if s.strip()]
    if "-" in text[1:]:
        lo, hi = text.split("-", 1)
        return list(range(int(lo), int(hi) + 1))
    return list(range(int(text)))


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt(value: Any, spec: str = ".2f") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return format(value, spec)


def print_table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> None:
    """columns: (key, header, format spec)."""
    cells = [[h for _, h, _ in columns]] + [[fmt(r.get(k), s) for k, _, s in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for j, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
        if j == 0:
            print("  ".join("-" * w for w in widths))


def header(title: str) -> None:
    import gymnasium
    import torch

    import rlarena
    try:
        import stable_baselines3
        sb3 = stable_baselines3.__version__
    except ImportError:
        sb3 = "not installed"
    print(f"# {title}")
    try:
        import subprocess
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no", "src"],
                               capture_output=True, text=True, timeout=5, check=False).stdout.strip()
        if rev:
            print(f"# rlarena source: git {rev}{' + uncommitted changes in src/' if dirty else ''}")
    except (OSError, subprocess.SubprocessError):
        pass
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S')}  python {platform.python_version()}  rlarena "
          f"{rlarena.__version__}  torch {torch.__version__}  gymnasium {gymnasium.__version__}  SB3 {sb3}")
    try:
        import os
        load = os.getloadavg()
        print(f"# cpus {os.cpu_count()}  load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
              f"(another job on the machine skews absolute times; the ratios hold better)")
    except OSError:
        pass


def load_tuned(path: str | Path, algos: tuple[str, ...] = ("PPO", "APPO", "IMPALA")) -> dict[str, Any]:
    """A tuned example: {'algo': 'PPO', 'env': ..., 'config': {flat option: value}, 'stop': {...}}, whose
    algo is one of `algos` (those the calling benchmark runs)."""
    import yaml
    path = Path(path)
    if not path.is_absolute() and not path.exists():
        path = REPO / path
    with open(path) as f:
        spec = yaml.safe_load(f)
    for key in ("algo", "env", "config"):
        if key not in spec:
            raise SystemExit(f"{path}: missing top-level key {key!r} (expected algo, env, config, stop)")
    if spec["algo"] not in algos:
        raise SystemExit(f"{path}: algo {spec['algo']!r} is not supported by this benchmark ({', '.join(algos)})")
    spec["path"] = str(path)
    return spec


def rlarena_from_sb3(env_id: str, hp: dict[str, Any], seed: int, threads: int):
    """rlarena PPO with SB3-named hyperparameters (n_envs, n_steps, batch_size, ...), [64, 64] tanh."""
    from rlarena import PPOConfig
    return (PPOConfig().environment(env_id)
            .env_runners(num_envs_per_env_runner=hp["n_envs"])
            .training(lr=hp["learning_rate"], gamma=hp["gamma"], lambda_=hp["gae_lambda"],
                      clip_param=hp["clip_range"], train_batch_size=hp["n_envs"] * hp["n_steps"],
                      minibatch_size=hp["batch_size"], num_epochs=hp["n_epochs"], entropy_coeff=hp["ent_coef"],
                      vf_loss_coeff=hp["vf_coef"], grad_clip=hp["max_grad_norm"],
                      model={"fcnet_hiddens": [64, 64], "fcnet_activation": "tanh"})
            .evaluation(evaluation_duration=20)
            .resources(num_torch_threads=threads)
            .debugging(seed=seed)
            .build())


def build_from_tuned(spec: dict[str, Any], seed: int, overrides: dict[str, Any] | None = None):
    from rlarena.algorithms import get_algorithm_class
    config_class = get_algorithm_class(spec["algo"]).config_class
    cfg = config_class().environment(spec["env"]).update_from_dict({**spec["config"], **(overrides or {})})
    # the harness evaluates on its own schedule, with the training clock paused
    return cfg.evaluation(evaluation_interval=None).debugging(seed=seed).build()


# -- evaluation schedules -------------------------------------------------------------------------
# A schedule is a factory for a fresh predicate due(iterations_done, env_steps) -> bool, called after
# every training iteration; each run gets its own (the step schedule keeps state).

def every_iterations(k: int):
    return lambda: (lambda iters, steps: iters % k == 0)


def every_steps(k: int):
    def factory():
        nxt = [k]

        def due(iters: int, steps: int) -> bool:
            if steps >= nxt[0]:
                nxt[0] = (steps // k + 1) * k
                return True
            return False
        return due
    return factory


# -- rlarena ----------------------------------------------------------------------------------------

def run_rlarena(build, seed: int, schedule, max_steps: int, threshold: float) -> dict[str, Any]:
    """Train iteration by iteration until a greedy evaluation reaches `threshold` or `max_steps`.

    The clock runs only around algo.train() (which does not evaluate: evaluation_interval is unset),
    so the build and every evaluation are excluded; the last iteration before the budget is always
    evaluated.
    """
    algo = build(seed)
    assert not algo.config.evaluation_interval, "evaluation must be driven by the benchmark, not train()"
    due = schedule()
    train_s, steps, iters, evals, solved, last_eval = 0.0, 0, 0, 0, False, float("nan")
    try:
        while steps < max_steps:
            t0 = time.perf_counter()
            result = algo.train()
            steps = result["num_env_steps_sampled_lifetime"]
            iters += 1
            evaluate = due(iters, steps) or steps >= max_steps
            sampler = getattr(algo.env_runner_group, "sampler", None)  # with sample_async
            if evaluate and sampler is not None:
                # runners sampling while the learner learns get no free time while the clock is paused
                sampler.wait_idle()
            train_s += time.perf_counter() - t0
            if evaluate:
                last_eval = algo.evaluate()["episode_return_mean"]
                evals += 1
                if last_eval >= threshold:
                    solved = True
                    break
    finally:
        algo.stop()
    return {"lib": "rlarena", "seed": seed, "solved": solved, "time_s": train_s, "steps": steps, "iters": iters,
            "evals": evals, "eval_return": last_eval, "steps_per_s": steps / train_s if train_s else float("nan")}


def run_seeds(libs: list[str], seeds: list[int], run: dict[str, Any], time_format: str = ".2f") -> list[dict[str, Any]]:
    """One row per (seed, library): run[lib](seed) trains to the threshold. The libraries swap who
    goes first from seed to seed, so machine drift hits both."""
    rows: list[dict[str, Any]] = []
    for i, seed in enumerate(seeds):
        for lib in (libs if i % 2 == 0 else libs[::-1]):
            row = run[lib](seed)
            rows.append(row)
            print(f"  seed {seed} {lib:8s} {'solved' if row['solved'] else 'NOT solved'} in "
                  f"{row['time_s']:{time_format}} s, {row['steps']} steps ({row['steps_per_s']:.0f} steps/s, "
                  f"last eval {row['eval_return']:.1f})", flush=True)
    return rows


# -- Stable-Baselines3 --------------------------------------------------------------------------------

def make_sb3_eval_callback(eval_env, schedule, n_episodes: int, threshold: float):
    """An SB3 callback that evaluates between iterations with the clock paused and stops at `threshold`.

    SB3's loop per iteration: collect_rollouts (on_rollout_start, on_step per vector step,
    on_rollout_end) then train(). So the k-th on_rollout_start comes after k-1 complete iterations
    (rollout + update): the policy is evaluated there. The final iteration is evaluated in
    on_training_end. After a success the next on_step returns False and learn() returns; the
    success time is taken at the start of the evaluation, so that one extra vector step is not
    counted. Set `clock_start` just before model.learn(): learn()'s own setup is counted, once.
    """
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy

    class EvalAndStop(BaseCallback):
        def __init__(self):
            super().__init__()
            self.due = schedule()
            self.clock_start = 0.0
            self.eval_s = 0.0
            self.completed = 0  # iterations (rollout + update) completed
            self.evaluated_at = -1
            self.evals = 0
            self.last_eval = float("nan")
            self.success: tuple[float, int, int] | None = None  # (train seconds, env steps, iterations)

        def _evaluate(self) -> None:
            t0 = time.perf_counter()
            mean, _ = evaluate_policy(self.model, eval_env, n_eval_episodes=n_episodes, deterministic=True)
            if mean >= threshold and self.success is None:
                self.success = (t0 - self.clock_start - self.eval_s, self.model.num_timesteps, self.completed)
            self.eval_s += time.perf_counter() - t0
            self.evals += 1
            self.evaluated_at = self.completed
            self.last_eval = float(mean)

        def _on_rollout_start(self) -> None:
            if self.success is None and self.completed > 0 and self.due(self.completed, self.model.num_timesteps):
                self._evaluate()
            self.completed += 1

        def _on_step(self) -> bool:
            return self.success is None

        def _on_training_end(self) -> None:
            # learn() ended on the budget: the last iteration completed but was not evaluated yet
            if self.success is None and self.evaluated_at != self.completed:
                self._evaluate()

    return EvalAndStop()


def run_sb3(model, eval_env, seed: int, schedule, max_steps: int, threshold: float,
            n_episodes: int = 20) -> dict[str, Any]:
    """One model.learn() call for the whole budget, evaluated by the callback above."""
    cb = make_sb3_eval_callback(eval_env, schedule, n_episodes, threshold)
    cb.clock_start = time.perf_counter()
    model.learn(total_timesteps=max_steps, callback=cb)
    end = time.perf_counter()
    if cb.success is not None:
        train_s, steps, iters = cb.success
    else:
        train_s, steps, iters = end - cb.clock_start - cb.eval_s, model.num_timesteps, cb.completed
    model.env.close()
    eval_env.close()
    return {"lib": "sb3", "seed": seed, "solved": cb.success is not None, "time_s": train_s, "steps": steps,
            "iters": iters, "evals": cb.evals, "eval_return": cb.last_eval,
            "steps_per_s": steps / train_s if train_s else float("nan")}


def summarize(rows: list[dict[str, Any]], libs: list[str], threshold: float,
              notes: dict[str, str] | None = None) -> dict[str, dict[str, float]]:
    """Print the per-seed table, the medians and the SB3 / rlarena ratios; return the medians."""
    print()
    print_table(sorted(rows, key=lambda r: (r["seed"], r["lib"])),
                [("seed", "seed", "d"), ("lib", "lib", "s"), ("solved", "solved", ""),
                 ("time_s", "train time s", ".2f"), ("steps", "env steps", "d"), ("iters", "iters", "d"),
                 ("evals", "evals", "d"), ("eval_return", "last eval", ".1f"),
                 ("steps_per_s", "steps/s", ".0f")])
    print()
    med: dict[str, dict[str, float]] = {}
    for lib in libs:
        mine = [r for r in rows if r["lib"] == lib]
        med[lib] = {k: median([r[k] for r in mine]) for k in ("time_s", "steps", "steps_per_s")}
        solved = sum(r["solved"] for r in mine)
        note = "" if solved == len(mine) else "  (unsolved runs count at the budget: a lower bound)"
        extra = (notes or {}).get(lib, "")
        print(f"median {lib:8s}: {med[lib]['time_s']:.2f} s, {med[lib]['steps']:.0f} env steps to "
              f"{threshold:g}, {med[lib]['steps_per_s']:.0f} training steps/s; solved {solved}/{len(mine)}"
              f"{extra}{note}")
    if "rlarena" in med and "sb3" in med:
        print(f"RATIO time to {threshold:g}          SB3 / rlarena = "
              f"{med['sb3']['time_s'] / med['rlarena']['time_s']:.2f}x")
        print(f"RATIO training steps/s     rlarena / SB3 = "
              f"{med['rlarena']['steps_per_s'] / med['sb3']['steps_per_s']:.2f}x")
        print(f"RATIO env steps to {threshold:g}     SB3 / rlarena = "
              f"{med['sb3']['steps'] / med['rlarena']['steps']:.2f}x (sample efficiency)")
        steps_test([r["steps"] for r in rows if r["lib"] == "rlarena"], [r["steps"] for r in rows if r["lib"] == "sb3"])
    return med


def steps_test(mine: list[float], theirs: list[float]) -> None:
    """With 10 or more seeds a side: a two-sided Mann-Whitney U test of env steps to the threshold (unsolved
    runs count at the budget) and a bootstrap 90 % interval of the ratio of medians SB3 / rlarena."""
    if min(len(mine), len(theirs)) < 10:
        return
    import numpy as np
    from scipy.stats import mannwhitneyu

    p = mannwhitneyu(mine, theirs, alternative="two-sided").pvalue
    rng = np.random.default_rng(0)
    ratios = [np.median(rng.choice(theirs, len(theirs))) / np.median(rng.choice(mine, len(mine)))
              for _ in range(10_000)]
    low, high = np.percentile(ratios, [5, 95])
    print(f"env steps: Mann-Whitney two-sided p = {p:.3f}; bootstrap 90 % interval of SB3 / rlarena medians "
          f"{low:.2f}-{high:.2f}")


def parse_libs(text: str, extra: tuple[str, ...] = ()) -> list[str]:
    """'rlarena,sb3' -> ['rlarena', 'sb3']; anything else exits with the valid names (rlarena, sb3 and
    the script's `extra` peers)."""
    libs = text.split(",")
    valid = ("rlarena", "sb3", *extra)
    unknown = set(libs) - set(valid)
    if unknown:
        raise SystemExit(f"--libs: unknown {sorted(unknown)}; use any of {', '.join(valid)}")
    return libs


def probe_sb3_threads(make_model, steps: int, candidates: list[int], label: str = "") -> int:
    """Time make_model().learn(steps) (no evaluation) at each torch thread count, twice, interleaved;
    return the fastest (best of two) and print the rates."""
    import torch
    best: dict[int, float] = {}
    for _ in range(2):
        for n in candidates:
            torch.set_num_threads(n)
            model = make_model()
            t0 = time.perf_counter()
            model.learn(total_timesteps=steps)
            best[n] = max(best.get(n, 0.0), steps / (time.perf_counter() - t0))
            model.env.close()
    choice = max(best, key=best.get)
    print(f"# SB3 {label}torch-thread probe (training env-steps/s, best of 2): "
          + ", ".join(f"{n} thread{'s' if n > 1 else ''}: {r:.0f}" for n, r in best.items())
          + f" -> SB3 runs with {choice}")
    return choice
