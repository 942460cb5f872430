"""How many intra-op threads torch gets: `num_torch_threads="auto"` (the default) follows the work.

A second thread pays only where one gradient step's matrices are large: below about
AUTO_THREADS_FLOPS per step, splitting each matmul costs more in synchronisation than it saves
(PPO's 64-unit networks on minibatches of 64 run fastest on one thread), above it the step gets
faster (SAC's [256, 256] critics on batches of 256; benchmarks/threads_crossover.py measures where).
So "auto" estimates one gradient step's floating-point work from the networks the learners train and
the rows each step reads, and takes two threads (or the cores there are, if fewer) from there on:

    FLOPs per step ~= 6 x (weights of every trained network) x (rows per gradient step)
                      (forward 2 x weights x rows, backward twice that)

rows: minibatch_size where the algorithm has one (PPO, APPO, IMPALA), else train_batch_size (a replay
batch, A2C's batch). A network with a convolution counts as large: its work grows with the image,
far past the crossover at the batch sizes rlarena's configs use. It stays one thread where another
process samples beside the learner (sample_async) and on a single core. A number sets the threads
as asked. The choice is in every result (`num_torch_threads`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from torch import nn

if TYPE_CHECKING:
    from rlarena.algorithms.algorithm import Algorithm
    from rlarena.algorithms.config import AlgorithmConfig

# One gradient step's FLOPs from which a second thread is >= 10 % faster on a 2-core AMD EPYC (AVX2):
# benchmarks/threads_crossover.py, 2026-12-07 (benchmarks/README.md): 0.9-1.06x up to 27 MFLOP, 1.12-1.13x
# at 52-58 MFLOP, 1.29-1.49x from 100 MFLOP on
AUTO_THREADS_FLOPS = 50e6
AUTO_MAX_THREADS = 2  # measured up to the 2 cores of rlarena's target machine; more by asking for them


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_before_learners(config: AlgorithmConfig) -> int:
    """The threads to build with (and to sample with, elsewhere): the number asked for, else 1."""
    n = config.num_torch_threads
    return n if isinstance(n, int) else 1


def step_flops(algo: Algorithm) -> float:
    """The estimate of one gradient step's FLOPs (module docstring): every learner's, added up."""
    total = 0.0
    for learner in algo.learners.values():
        cfg: Any = learner.config
        rows = getattr(cfg, "minibatch_size", None) or cfg.train_batch_size
        model = getattr(learner.policy, "model", None)
        if isinstance(model, nn.Module) and any(
            isinstance(m, nn.Conv1d | nn.Conv2d | nn.Conv3d) for m in model.modules()
        ):
            return float("inf")
        weights = sum(int(flat.param.numel()) for flat in learner.flats.values())
        total += 6.0 * weights * rows
    return total


def auto_threads(algo: Algorithm) -> int:
    """num_torch_threads="auto": the threads for this algorithm's learners (module docstring)."""
    cores = available_cores()
    if cores < 2 or algo.config.sample_async:
        return 1
    return min(cores, AUTO_MAX_THREADS) if step_flops(algo) >= AUTO_THREADS_FLOPS else 1
