"""The learning-quality regression suite: run every tuned_examples/**/*.yaml and check that it reaches
its threshold within its budget.

A tuned example's `stop` holds both: threshold keys (any result key, e.g.
evaluation/episode_return_mean: 475) and budget keys (num_env_steps_sampled_lifetime, timesteps_total,
training_iteration, time_total_s). A run PASSES when it stops on a threshold, FAILS when the budget
runs out first. Runs go through rlarena.run (the same path as `rlarena train -f FILE`) into a
temporary directory, one after another.

A file whose stop names evaluation/ keys but whose config sets no evaluation_interval (a file made
for a benchmark that drives evaluation itself) is evaluated every --eval-interval iterations.

RLlib's own tuned-example files (tuned_examples/rllib/, unchanged) run the same way: their old option
names are translated (notices about ignored options are not shown here), their stop keys read RLlib's
way (episode_reward_mean, sampler_results/..., timesteps_total as the budget). A file for an algorithm
rlarena does not have yet (SAC, IMPALA, ...) is reported as SKIP, with the one-line reason. PPO, A2C
and DQN files (tuned_examples/ppo, a2c, dqn) run the same way: the `algo:` key picks the algorithm.

    python benchmarks/tuned_examples.py                           # every file, seed 0
    python benchmarks/tuned_examples.py --filter cartpole --seeds 0-2
    python benchmarks/tuned_examples.py --filter dqn/ --seeds 0-2        # the DQN files only
    python benchmarks/tuned_examples.py tuned_examples/ppo/lunarlander.yaml --verbose 1
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from rlarena.errors import RLArenaNotice

REPO = Path(__file__).resolve().parent.parent
BUDGET_KEYS = {"num_env_steps_sampled_lifetime", "timesteps_total", "training_iteration", "time_total_s",
               "time_since_restore"}


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' -> [0, 1, 2]; '0-2' -> [0, 1, 2]; '5' -> [5]."""
    if "-" in text[1:]:
        lo, hi = text.split("-", 1)
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",") if s.strip()]


def _num(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def record_missing_data(inputs: Any) -> None:
    """An offline example's data under offline_data/ that is not there yet is recorded first
    (examples/record_offline_data.py, the part the path names: cartpole or pendulum)."""
    import subprocess
    for entry in [inputs] if isinstance(inputs, str) else inputs or []:
        parts = Path(entry).parts
        if len(parts) >= 2 and parts[0] == "offline_data" and not Path(entry).exists():
            print(f"recording {entry} (examples/record_offline_data.py --only {parts[1]})", flush=True)
            subprocess.run([sys.executable, str(REPO / "examples" / "record_offline_data.py"), "--only", parts[1]],
                           check=True)


def run_one(path: Path, seed: int, eval_interval: int, verbose: int, storage: str) -> dict[str, Any]:
    from rlarena.algorithms import RLLIB_ONLY
    from rlarena.cli.spec import load_spec, make_config
    from rlarena.errors import RLArenaError
    from rlarena.train import run
    from rlarena.train.stop import result_key

    row: dict[str, Any] = {"file": str(path.relative_to(REPO) if path.is_relative_to(REPO) else path), "seed": seed}
    spec: dict[str, Any] = {}
    try:
        spec = load_spec(path)
        stop = {result_key(k): v for k, v in spec.get("stop", {}).items()}
        thresholds = {k: v for k, v in stop.items() if k not in BUDGET_KEYS}
        budget = {k: v for k, v in stop.items() if k in BUDGET_KEYS}
        if not thresholds or not budget:
            raise ValueError("stop needs a threshold key and a budget key (e.g. num_env_steps_sampled_lifetime)")
        config, param_space = make_config(str(spec["algo"]), spec.get("env"), {**spec.get("config", {}), "seed": seed})
        record_missing_data(config.input_)
        if param_space:
            raise ValueError("a tuned example is one config, not a sweep")
        if any(k.startswith("evaluation/") for k in thresholds) and not config.evaluation_interval:
            config.evaluation_interval = eval_interval
        row.update(threshold=", ".join(f"{k} >= {_num(v)}" for k, v in thresholds.items()),
                   budget=", ".join(f"{k} {_num(v)}" for k, v in budget.items()))
        start = time.perf_counter()
        results = run(config, stop=stop, storage_path=storage, name=f"{path.stem}_seed{seed}",
                      checkpoint_at_end=False, verbose=verbose, tensorboard=False, plot=False)
        wall = time.perf_counter() - start
    except (RLArenaError, ValueError) as exc:
        skip = str(spec.get("algo")) in RLLIB_ONLY  # a file for an algorithm rlarena lacks: said, not failed
        return {**row, "status": "SKIP" if skip else "ERROR", "note": str(exc)}
    last = results.trials[0].last_result or {}
    rows = results.trials[0].results
    met = [k for k, v in thresholds.items() if isinstance(last.get(k), int | float) and last[k] >= v]
    key = next(iter(thresholds))
    best = max((r[key] for r in rows if isinstance(r.get(key), int | float) and not math.isnan(r[key])),
               default=float("nan"))
    return {**row, "status": "PASS" if met else "FAIL", "reached": f"{key} max {best:.1f}",
            "env_steps": last.get("num_env_steps_sampled_lifetime"), "iterations": last.get("training_iteration"),
            "wall_s": round(wall, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("files", nargs="*", help="YAML files (default: every tuned_examples/**/*.yaml)")
    parser.add_argument("--filter", default=None, help="only files whose path contains this text")
    parser.add_argument("--seeds", default="0", help="seeds: '0,1,2' or '0-2'")
    parser.add_argument("--eval-interval", type=int, default=1,
                        help="evaluation cadence for files whose stop needs evaluation but set none")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=0, help="rlarena.run's verbosity")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=RLArenaNotice)  # ignored RLlib options: the CLI shows them
    files = [Path(f).resolve() for f in args.files] or sorted((REPO / "tuned_examples").glob("**/*.yaml"))
    if args.filter:
        files = [f for f in files if args.filter in str(f)]
    if not files:
        print("no tuned example files matched", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="rlarena_tuned_") as storage:
        for path in files:
            for seed in parse_seeds(args.seeds):
                row = run_one(path, seed, args.eval_interval, args.verbose, storage)
                rows.append(row)
                print(f"{row['status']:<5} {row['file']} seed {seed}: "
                      + (row.get("note") or f"{row['reached']} (needs {row['threshold']}; budget {row['budget']}) "
                                            f"after {row['env_steps']} env steps, {row['iterations']} iterations, "
                                            f"{row['wall_s']} s"), flush=True)
    passed = sum(r["status"] == "PASS" for r in rows)
    skipped = sum(r["status"] == "SKIP" for r in rows)
    print(f"\n{passed}/{len(rows) - skipped} passed" + (f", {skipped} skipped" if skipped else ""))
    return 0 if passed + skipped == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
