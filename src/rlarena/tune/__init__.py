"""Ray Tune's local subset: the tune.run / tune.Tuner calls of RLlib tutorials, run by rlarena.run.

    from rlarena import tune                      # was: from ray import tune
    analysis = tune.run("PPO", config={"env": "CartPole-v1"}, stop={"episode_reward_mean": 400},
                        checkpoint_freq=2, checkpoint_at_end=True, metric="episode_reward_mean", mode="max")
    analysis.best_checkpoint, analysis.results_df, analysis.get_last_checkpoint()

Trials run one after another in this process, into rlarena.run's directories (params.json,
result.json, progress.csv, TensorBoard events, checkpoints/). Schedulers, search algorithms and
Tune callbacks are refused in one line; issue 13 brings real Tune on Ray.
"""

from rlarena.envs.registry import register_env
from rlarena.train.search import choice, grid_search, loguniform, uniform
from rlarena.tune.analysis import Checkpoint, ExperimentAnalysis, Result, ResultGrid
from rlarena.tune.experiment import CheckpointConfig, RunConfig, TuneConfig, Tuner, run

__all__ = ["Checkpoint", "CheckpointConfig", "ExperimentAnalysis", "Result", "ResultGrid", "RunConfig",
           "TuneConfig", "Tuner", "choice", "grid_search", "loguniform", "register_env", "run", "uniform"]
