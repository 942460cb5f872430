"""ray.air's configs for Tuner (Ray Tune's local subset, see rlarena.tune; Tune itself: rlarena.tune.trainable).

from rlarena import air, tune                 # was: from ray import air, tune
tune.Tuner("PPO", param_space=config, run_config=air.RunConfig(stop={"training_iteration": 20},
           checkpoint_config=air.CheckpointConfig(checkpoint_frequency=10, checkpoint_at_end=True))).fit()
"""

from rlarena.tune.analysis import Checkpoint, Result
from rlarena.tune.tuner import CheckpointConfig, RunConfig

__all__ = ["Checkpoint", "CheckpointConfig", "Result", "RunConfig"]
