"""Offline RL on CartPole-v1: record 50k steps from a trained PPO agent, then train BC and MARWIL from
the files alone to a 20-episode greedy mean of 475; and, on data that mixes the expert's episodes with a
random policy's, how much MARWIL gains over BC.

  1. examples/record_offline_data.py's CartPole part: PPO (tuned_examples/ppo/cartpole.yaml's settings)
     trains until 20 greedy episodes average >= 475; `rlarena rollout CKPT --explore --steps 50000
     --output DIR` records its sampled actions (expert data); an untrained PPO checkpoint gives the
     random policy's steps.
  3. BC and MARWIL (beta 3) train on the expert data; after every --eval-every iterations the training
     clock stops and 20 greedy episodes are played (the env is used for nothing else). Reported: the
     training wall time and gradient steps to the first mean >= 475 (or the budget), medians over seeds.
  4. Mixed data (--expert-share of the steps from the expert, the rest random): BC and MARWIL train
     for the same number of iterations; reported: the final 20-episode greedy mean (median over seeds).

There is no SB3 peer (Stable-Baselines3 has no offline algorithms); the time to record is shown beside.

    python benchmarks/offline_cartpole.py              # 5 seeds
    python benchmarks/offline_cartpole.py --seeds 1 --max-iters 200
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

from _common import header, median, parse_seeds, print_table
from record_offline_data import record_cartpole

from rlarena import BCConfig, MARWILConfig

THRESHOLD = 475.0
OFFLINE = {"lr": 1e-3, "train_batch_size": 2048, "minibatch_size": 256, "model": {"fcnet_hiddens": [64, 64]}}


def train_offline(cls: Any, inputs: list[str], seed: int, max_iters: int, eval_every: int,
                  stop_at_threshold: bool, **training: Any) -> dict[str, Any]:
    algo = (cls().offline_data(input_=inputs).environment("CartPole-v1").training(**{**OFFLINE, **training})
            .evaluation(evaluation_duration=20).debugging(seed=seed)).build()
    train_s, score, reached = 0.0, float("nan"), None
    for i in range(1, max_iters + 1):
        result = algo.train()
        train_s += result["time_this_iter_s"]
        if i % eval_every == 0 or i == max_iters:
            score = algo.evaluate()["episode_return_mean"]
            if score >= THRESHOLD and reached is None:
                reached = {"time_s": train_s, "iters": i}
                if stop_at_threshold:
                    break
    algo.stop()
    return {"final": score, "reached": reached, "train_s": train_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="5", help="e.g. 5 (0..4) or 0,1,2")
    parser.add_argument("--steps", type=int, default=50_000, help="expert steps recorded")
    parser.add_argument("--max-iters", type=int, default=300, help="offline iterations (8 gradient steps each)")
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--expert-share", type=float, default=0.05, help="share of expert steps in the mixed data")
    parser.add_argument("--mixed-iters", type=int, default=300)
    args = parser.parse_args()
    seeds = parse_seeds(args.seeds)
    header("Offline RL on CartPole-v1: BC and MARWIL from recorded PPO steps")
    rows, mixed = [], []
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            start = time.perf_counter()
            record_cartpole(root, seed, args.steps, args.expert_share)  # PPO expert, then rollouts with --output
            record_s = time.perf_counter() - start
            data = root / "cartpole"
            for name, cls, extra in (("BC", BCConfig, {}), ("MARWIL", MARWILConfig, {"beta": 3.0})):
                out = train_offline(cls, [str(data / "expert")], seed, args.max_iters, args.eval_every, True,
                                    **extra)
                reached = out["reached"] or {}
                rows.append({"algo": name, "seed": seed, "record_s": record_s,
                             "time_s": reached.get("time_s"), "iters": reached.get("iters"),
                             "final": out["final"], "solved": out["reached"] is not None})
                mix = train_offline(cls, [str(data / "mixed" / "expert"), str(data / "mixed" / "random")], seed,
                                    args.mixed_iters, args.mixed_iters, False, **extra)
                mixed.append({"algo": name, "seed": seed, "score": mix["final"], "train_s": mix["train_s"]})
            print(f"seed {seed}: " + ", ".join(f"{r['algo']} {r['final']:.0f}" for r in rows[-2:])
                  + " | mixed: " + ", ".join(f"{m['algo']} {m['score']:.0f}" for m in mixed[-2:]), flush=True)
    print(f"\nExpert data: {args.steps} steps; BC and MARWIL to a 20-episode greedy mean >= {THRESHOLD:.0f} "
          f"(evaluated every {args.eval_every} iterations of {OFFLINE['train_batch_size']} rows, "
          f"{OFFLINE['train_batch_size'] // OFFLINE['minibatch_size']} gradient steps each)")
    print_table(rows, [("algo", "algo", "s"), ("seed", "seed", "d"), ("solved", "solved", "")
                       , ("time_s", "train s", ".1f"), ("iters", "iters", "d"), ("final", "final mean", ".1f"),
                       ("record_s", "PPO + record s", ".1f")])
    for name in ("BC", "MARWIL"):
        mine = [r for r in rows if r["algo"] == name]
        solved = [r for r in mine if r["solved"]]
        print(f"{name}: solved {len(solved)}/{len(mine)}; median train time {median([r['time_s'] for r in solved]):.1f} s, "
              f"median iterations {median([r['iters'] for r in solved]):.0f}")
    print(f"\nMixed data ({args.expert_share:.0%} of the steps expert, the rest random), {args.mixed_iters} iterations:")
    print_table(mixed, [("algo", "algo", "s"), ("seed", "seed", "d"), ("score", "greedy mean", ".1f"),
                        ("train_s", "train s", ".1f")])
    bc = median([m["score"] for m in mixed if m["algo"] == "BC"])
    marwil = median([m["score"] for m in mixed if m["algo"] == "MARWIL"])
    print(f"median greedy mean: BC {bc:.1f}, MARWIL {marwil:.1f} (MARWIL - BC = {marwil - bc:+.1f})")


if __name__ == "__main__":
    main()
