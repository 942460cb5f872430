"""An Algorithm's evaluation: where the episodes play is its evaluation group's business
(rlarena.rollout.groups: this process or Ray actors); here it is counted, seeded, timed, joined by
off-policy estimates on logged data, and reported under RLlib's names.

`start(algo)` counts the evaluation and starts it (evaluation runners start playing now, so with
evaluation_parallel_to_training they play the weights from before the training step); `finish(algo,
started)` completes it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from rlarena.algorithms.results import with_aliases
from rlarena.callbacks import call_hook
from rlarena.rollout.factory import seed_for

if TYPE_CHECKING:
    from rlarena.algorithms.algorithm import Algorithm


def start(algo: Algorithm) -> tuple[float, Any]:
    """(start time, what finish() completes)."""
    started = time.perf_counter()
    algo.num_evaluations += 1
    return started, algo.eval_env_runner_group.start(seed_for(algo.config.seed, 4, algo.num_evaluations))


def finish(algo: Algorithm, started: tuple[float, Any]) -> dict[str, float]:
    began, pending = started
    out = algo.eval_env_runner_group.finish(pending)
    if algo.config.off_policy_estimation_methods and algo.offline_data is not None:
        out.update(estimate_off_policy(algo))
    out["evaluation_time_s"] = time.perf_counter() - began
    out = with_aliases(out)
    if algo.callbacks is not None:
        call_hook(algo.callbacks, "on_evaluate_end", algorithm=algo, evaluation_metrics=out)
    return out


def estimate_off_policy(algo: Algorithm) -> dict[str, float]:
    """RLlib's off-policy estimates (importance sampling, ...) of the policy's value on the logged
    episodes of the first files, at least `evaluation_duration` episodes (rlarena.offline.estimators)."""
    from rlarena.offline.estimators import estimate_off_policy as estimate

    if algo._ope_data is None:  # read once: the logged episodes do not change between evaluations
        parts, episodes = [], 0
        for path in algo.offline_data.files:  # whole files, until enough episodes
            parts.append(algo.offline_data.read_file(path))
            episodes += len(np.unique(parts[-1]["eps_id"]))
            if episodes >= algo.config.evaluation_duration:
                break
        algo._ope_data = {k: np.concatenate([p[k] for p in parts]) for k, v in parts[0].items() if v is not None}
    return estimate(algo.policy, algo._ope_data, algo.config.gamma, algo.config.off_policy_estimation_methods)
