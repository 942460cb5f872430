"""Standing budgets (DEVELOPERS.md): `import rlarena` + building a CartPole PPO costs at most 0.5 s more
than `import torch, gymnasium` alone, and training it peaks at most 100 MiB above that bare import.

Each measurement is a fresh interpreter. Time: within one process, the time `import torch, gymnasium`
takes, then the time from there until `import rlarena` and building a CartPole PPO are done (the
extra); medians over --repeats interpreters (two processes differ by more than the extra on a busy
machine, so the extra is measured inside one). Memory: peak RSS (ru_maxrss) after importing torch and
gymnasium, versus after also importing rlarena, building PPO and training --iters iterations.

    python benchmarks/budgets.py
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

TIMES = ("import time; t0 = time.perf_counter(); import torch, gymnasium; t1 = time.perf_counter(); "
         "import rlarena; algo = rlarena.PPOConfig().environment('CartPole-v1').build(); "
         "print(t1 - t0, time.perf_counter() - t1)")
MEMORY = ("import resource, torch, gymnasium; bare = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
          "import rlarena; algo = rlarena.PPOConfig().environment('CartPole-v1').build(); "
          "[algo.train() for _ in range({iters})]; "
          "print(bare / 1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")


def run(code: str) -> list[float]:
    return [float(x) for x in subprocess.check_output([sys.executable, "-c", code], text=True).split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--iters", type=int, default=10, help="training iterations for the memory peak")
    args = parser.parse_args()
    bare, extra = zip(*(run(TIMES) for _ in range(args.repeats)))
    b, e = statistics.median(bare), statistics.median(extra)
    print(f"import torch, gymnasium: median {b:.3f} s; then import rlarena + build CartPole PPO: "
          f"median {e:.3f} s (max {max(extra):.3f} s)")
    print(f"extra: {e:+.3f} s (budget +0.5 s)  {'OK' if e <= 0.5 else 'OVER BUDGET'}")
    peak_bare, peak_ours = run(MEMORY.format(iters=args.iters))
    print(f"peak RSS after import torch, gymnasium: {peak_bare:.0f} MiB; after building and training "
          f"{args.iters} iterations (2048 steps each): {peak_ours:.0f} MiB")
    extra = peak_ours - peak_bare
    print(f"extra: {extra:+.0f} MiB (budget +100 MiB)  {'OK' if extra <= 100 else 'OVER BUDGET'}")


if __name__ == "__main__":
    main()
