"""Ray Tune's local subset: the tune.run / tune.Tuner calls of RLlib tutorials, run by rlarena.run.

    from rlarena import tune                      # was: from ray import tune
    analysis = tune.run("PPO", config={"env": "CartPole-v1"}, stop={"episode_reward_mean": 400},
                        checkpoint_freq=2, checkpoint_at_end=True, metric="episode_reward_mean", mode="max")
    analysis.best_checkpoint, analysis.results_df, analysis.get_last_checkpoint()

Trials run one after another in this process, into rlarena.run's directories (params.json,
result.json, progress.csv, TensorBoard events, checkpoints/). Schedulers, search algorithms and
Tune callbacks are refused in one line: for them, run Ray Tune itself with rlarena's trainables,

    from ray import tune
    tuner = tune.Tuner(rlarena.tune.trainable("PPO"), param_space=config.to_dict(), run_config=...)

(`trainable` imports ray only when called: rlarena.tune.ray_trainable).
"""

from typing import Any

from rlarena.envs.registry import register_env
from rlarena.errors import ConfigError
from rlarena.train.search import choice, grid_search, loguniform, uniform
from rlarena.tune.analysis import Checkpoint, ExperimentAnalysis, Result, ResultGrid
from rlarena.tune.tuner import CheckpointConfig, RunConfig, TuneConfig, Tuner, run


def trainable(algorithm: Any, *, ray_address: str | None = None) -> Any:
    """The Ray Tune trainable (a ray.tune.Trainable subclass) of an rlarena algorithm: "PPO", PPO or
    PPOTrainer. Connects to Ray first (rlarena.rollout.ray_cluster.ray_init: `ray_address`, else RAY_ADDRESS,
    else a new local Ray private to this process, on 127.0.0.1). See rlarena.tune.ray_trainable."""
    try:
        from rlarena.tune.ray_trainable import make_trainable
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] not in ("ray", "pandas", "pyarrow", "fsspec"):
            raise
        raise ConfigError(
            f"rlarena.tune.trainable runs rlarena algorithms on Ray Tune, which is not installed "
            f"(no module {exc.name!r}): pip install 'rlarena[ray]'."
        ) from None
    return make_trainable(algorithm, ray_address=ray_address)


__all__ = [
    "Checkpoint",
    "CheckpointConfig",
    "ExperimentAnalysis",
    "Result",
    "ResultGrid",
    "RunConfig",
    "TuneConfig",
    "Tuner",
    "choice",
    "grid_search",
    "loguniform",
    "register_env",
    "run",
    "trainable",
    "uniform",
]
