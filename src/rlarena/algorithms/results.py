"""What Algorithm.train() and evaluate() return: a flat dict of metrics under RLlib's names, with the
old (RLlib API stack / seed tutorial) names answered beside the new ones, and RLlib's nested access."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rlarena.errors import closest
from rlarena.multiagent.builder import DEFAULT_POLICY_ID

if TYPE_CHECKING:
    from rlarena.algorithms.algorithm import Algorithm

# Old (RLlib API stack / seed tutorial) metric names answered alongside the new ones.
METRIC_ALIASES = {
    "episode_reward_mean": "episode_return_mean",
    "episode_reward_min": "episode_return_min",
    "episode_reward_max": "episode_return_max",
    "timesteps_total": "num_env_steps_sampled_lifetime",
    "episodes_total": "num_episodes_lifetime",
    "num_healthy_workers": "num_healthy_env_runners",
    "num_remote_worker_restarts": "num_env_runner_restarts",
}


class ResultDict(dict):
    """The flat metrics dict train() returns ("group/key" names for grouped metrics). Old nested
    RLlib access keeps working: result["evaluation"]["episode_reward_mean"],
    result["policy_reward_mean"]["policy1"], result["env_runners"]["episode_return_mean"] and
    result["info"]["learner"][policy_id]["learner_stats"] return views of the flat keys; any other
    unknown key raises a KeyError that names the closest keys."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.learner_stats: dict[str, dict[str, float]] = {}  # policy id -> stats, for result["info"]

    def __missing__(self, key: str) -> Any:
        prefix = f"{key}/"
        if any(isinstance(k, str) and k.startswith(prefix) for k in self):
            return with_aliases({k[len(prefix) :]: v for k, v in self.items() if k.startswith(prefix)})
        if key in ("env_runners", "sampler_results"):
            return with_aliases({k: v for k, v in self.items() if "/" not in k})
        if key == "info":
            return {"learner": {pid: {"learner_stats": stats} for pid, stats in self.learner_stats.items()}}
        hint = closest(str(key), [k for k in self if isinstance(k, str)])
        if key == "evaluation":
            hint = " No evaluation ran this iteration: set .evaluation(evaluation_interval=N) or call evaluate()."
        raise KeyError(f"{key!r} is not in the results.{hint} Results are flat: see list(result).")


def with_aliases(metrics: dict[str, Any]) -> dict[str, Any]:
    out = dict(metrics)
    for old, new in METRIC_ALIASES.items():
        if new in out:
            out[old] = out[new]
    return ResultDict(out)


def learner_stats_by_policy(stats: dict[str, float], multi_agent: bool) -> dict[str, dict[str, float]]:
    """{policy id: its learner statistics}; multi-agent statistics are named learner/<policy id>/<stat>."""
    if not multi_agent:
        return {DEFAULT_POLICY_ID: dict(stats)}
    out: dict[str, dict[str, float]] = {}
    for key, value in stats.items():
        _, pid, name = key.split("/", 2)
        out.setdefault(pid, {})[name] = value
    return out


def train_result(algo: Algorithm, elapsed: float, steps: int, learner_stats: dict[str, float]) -> ResultDict:
    """One iteration's results (evaluation added by the caller): counters, the episode metrics of the
    iteration (which starts the next iteration's window), timing, the runners' health, the learner
    statistics, RLlib's hist_stats and config, and the old names beside the new."""
    episode_metrics, hist = algo._episode_metrics()
    result = ResultDict(
        {
            "training_iteration": algo.iteration,
            **episode_metrics,
            "num_env_steps_sampled_this_iter": steps,
            "num_env_steps_sampled_lifetime": algo.num_env_steps_sampled_lifetime,
            "time_this_iter_s": elapsed,
            "time_total_s": algo.time_total_s,
            "env_steps_per_sec": steps / elapsed if elapsed > 0 else float("nan"),
            "num_torch_threads": algo.num_torch_threads,  # the learners' (num_torch_threads="auto" chooses)
            **algo._runner_health(),
            **learner_stats,
        }
    )
    result.update(with_aliases(result))
    result["hist_stats"] = hist  # RLlib's per-episode lists
    result["config"] = algo.config.to_dict()  # RLlib's results carry the config (tutorials `del` it)
    result.learner_stats = algo._learner_stats_by_policy(learner_stats)
    return result
