"""Where a second torch thread starts to pay for one gradient step (issue 28: threads follow the work).

One gradient step = forward, backward and Adam of an MLP (obs 8 -> [h, h] -> 1, ReLU), on a batch of B
rows, as the off-policy critics and the on-policy minibatches take them. For each width h and batch B
the script times the step at 1 and at 2 intra-op threads (interleaved, best of --repeats), and prints
ms per step, the step's FLOPs (forward 2 x weights x B, backward twice that) and the speed-up of 2
threads. The crossover is the smallest FLOP count from which 2 threads are faster by --gain or more;
rlarena's num_torch_threads="auto" uses it (rlarena.algorithms.threads).

    python benchmarks/threads_crossover.py
    python benchmarks/threads_crossover.py --widths 64,256,1024 --batches 64,256 --repeats 5
"""

from __future__ import annotations

import argparse
import sys
import time

from _common import header


def step_time(width: int, batch: int, threads: int, steps: int) -> float:
    """Seconds per gradient step, the median-free best of one timed run of `steps` steps."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(8, width), torch.nn.ReLU(), torch.nn.Linear(width, width), torch.nn.ReLU(),
        torch.nn.Linear(width, 1),
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x, y = torch.randn(batch, 8), torch.randn(batch, 1)
    for _ in range(3):  # warm-up
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        opt.step()
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        opt.step()
    return (time.perf_counter() - start) / steps


def flops(width: int, batch: int) -> float:
    weights = 8 * width + width * width + width
    return 6.0 * weights * batch  # forward 2 * weights * B, backward 4 * weights * B


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--widths", default="32,64,128,256,512,1024")
    p.add_argument("--batches", default="32,64,256")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seconds", type=float, default=0.4, help="about how long each timed run lasts")
    p.add_argument("--gain", type=float, default=1.1, help="2 threads must be this much faster")
    args = p.parse_args()
    header("one gradient step (MLP 8 -> [h, h] -> 1, Adam) at 1 and 2 torch threads")
    rows = []
    for batch in [int(b) for b in args.batches.split(",")]:
        for width in [int(w) for w in args.widths.split(",")]:
            probe = step_time(width, batch, 1, 5)
            steps = max(10, int(args.seconds / max(probe, 1e-6)))
            best = {1: float("inf"), 2: float("inf")}
            for _ in range(args.repeats):
                for threads in (1, 2):
                    best[threads] = min(best[threads], step_time(width, batch, threads, steps))
            speedup = best[1] / best[2]
            rows.append((flops(width, batch), width, batch, best[1], best[2], speedup))
            print(f"h {width:5d}  B {batch:4d}  {flops(width, batch) / 1e6:9.2f} MFLOP/step  "
                  f"1 thread {best[1] * 1e3:7.3f} ms  2 threads {best[2] * 1e3:7.3f} ms  speed-up {speedup:.2f}x",
                  flush=True)
    rows.sort()
    gaining = [r[0] for r in rows if r[5] >= args.gain]
    losing_above = [r[0] for r in rows if r[5] < args.gain and gaining and r[0] >= min(gaining)]
    if gaining:
        print(f"CROSSOVER: 2 threads >= {args.gain}x faster from {min(gaining) / 1e6:.2f} MFLOP per step"
              + (f" (but not at {', '.join(f'{f / 1e6:.2f}' for f in losing_above)} MFLOP)" if losing_above else ""))
    else:
        print(f"CROSSOVER: 2 threads never {args.gain}x faster here")
    return 0


if __name__ == "__main__":
    sys.exit(main())
