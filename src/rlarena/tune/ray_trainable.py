"""rlarena algorithms as Ray Tune trainables (the class API), for sweeps with Tune's schedulers,
search algorithms and callbacks:

    from ray import tune
    import rlarena
    config = PPOConfig().environment("CartPole-v1").training(lr=tune.grid_search([1e-4, 3e-4]))
    tuner = tune.Tuner(rlarena.tune.trainable("PPO"), param_space=config.to_dict(),
                       run_config=tune.RunConfig(stop={"episode_return_mean": 450},
                                                 checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True)))
    best = tuner.fit().get_best_result("episode_return_mean", "max")
    algo = Algorithm.from_checkpoint(best.checkpoint.path)

- setup: the trial's config dict (Tune's resolved param_space: option names, RLlib's old names, or
  config.to_dict()'s saved form) becomes the algorithm's config, as in tune.run("PPO", config={...}).
- step: one algo.train(); the result as plain JSON values ("config" is left to Tune, which adds its own).
- save_checkpoint / load_checkpoint: rlarena's own checkpoint format (JSON + safetensors) in Tune's
  checkpoint directory, so `Algorithm.from_checkpoint(result.checkpoint.path)` opens it. Loading reads
  the weights, optimizer state and counters into the trial's algorithm (Algorithm.restore): nothing the
  checkpoint names is imported, and a checkpoint holding Tune's pickled-dict file is refused before Tune
  would unpickle it.
- resources: 1 CPU for the trial's learner plus a bundle of num_cpus_per_env_runner for each remote env
  runner (training and evaluation), placed together (Tune schedules a trial's child actors in its group).

Ray must be connected before Tune starts it its own way (Tune's ray.init() would join whatever cluster
is recorded in /tmp/ray): make_trainable calls rlarena.rollout.ray_cluster.ray_init (the `ray_address` given,
RAY_ADDRESS, or a local Ray private to this process, bound to 127.0.0.1). Envs registered with
rlarena.register_env before make_trainable is called are registered again in each trial's process.
Importing this module imports ray.tune.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, ClassVar

from ray import tune

from rlarena.algorithms.algorithm import Algorithm
from rlarena.envs.registry import register_creators, registered_creators
from rlarena.errors import CheckpointError
from rlarena.rollout.ray_cluster import ray_init
from rlarena.train.loggers import json_default
from rlarena.tune.tuner import algorithm_class, config_from_dict

# Tune unpickles this file of a class trainable's checkpoint (its dict form) before load_checkpoint sees it.
_PICKLED_CHECKPOINT = "_dict_checkpoint.pkl"


@dataclass(frozen=True)
class TrainableSpec:
    """What a trainable class runs. One object rather than class attributes: Ray fingerprints an actor
    class by disassembling the classes among its attributes, recursively, and an algorithm class leads
    to its config class and back, without end."""

    algo_class: type[Algorithm]
    envs: dict[str, Any]  # register_env names of the process that made the class -> their creators


class AlgorithmTrainable(tune.Trainable):
    """A Tune trial of one rlarena algorithm; make_trainable makes the subclass for each algorithm."""

    spec: ClassVar[TrainableSpec]

    def setup(self, config: dict[str, Any]) -> None:
        register_creators(self.spec.envs)
        self.algo = config_from_dict(self.spec.algo_class, config).build()

    def step(self) -> dict[str, Any]:
        result = self.algo.train()
        plain = {k: v for k, v in result.items() if k != "config"}
        return json.loads(json.dumps(plain, default=json_default))  # numpy scalars -> numbers, for Tune's loggers

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        """Into the directory Tune gives (returning None tells Tune the checkpoint is that directory)."""
        self.algo.save(checkpoint_dir)

    def load_checkpoint(self, checkpoint: Any) -> None:
        if not isinstance(checkpoint, str):  # Tune passes the directory, or the dict it unpickled
            raise CheckpointError(
                f"{type(self).__name__} loads rlarena checkpoint directories, not {type(checkpoint).__name__}."
            )
        self.algo.restore(checkpoint)

    def restore(self, checkpoint_path: Any) -> None:
        """Tune's restore, after refusing a checkpoint that holds a pickled dict (Tune would unpickle
        it, which can run any code; rlarena never writes one)."""
        checkpoint = getattr(checkpoint_path, "checkpoint", checkpoint_path)  # a _TrainingResult holds one
        if not isinstance(checkpoint, tune.Checkpoint):  # (a Checkpoint has an __fspath__ that raises)
            checkpoint = tune.Checkpoint.from_directory(os.fspath(checkpoint))
        pickled = os.path.join(checkpoint.path, _PICKLED_CHECKPOINT)
        from pyarrow.fs import FileType  # ray.tune's storage layer: the checkpoint may be on any filesystem

        if checkpoint.filesystem.get_file_info(pickled).type != FileType.NotFound:
            raise CheckpointError(
                f"Refusing to restore {checkpoint.path!r}: it holds {_PICKLED_CHECKPOINT}, which "
                f"Ray Tune would unpickle (running whatever code it names). rlarena's trainables "
                f"write rlarena checkpoints (JSON + safetensors) only; this one came from elsewhere."
            )
        super().restore(checkpoint_path)

    def cleanup(self) -> None:
        self.algo.stop()

    @classmethod
    def default_resource_request(cls, config: dict[str, Any]) -> tune.PlacementGroupFactory:
        cfg = config_from_dict(cls.spec.algo_class, config)
        runners = cfg.num_env_runners + cfg.evaluation_num_env_runners
        per_runner = cfg.num_cpus_per_env_runner
        bundles = [{"CPU": 1.0}] + ([{"CPU": per_runner}] * runners if per_runner > 0 else [])
        return tune.PlacementGroupFactory(bundles)


def make_trainable(algorithm: Any, *, ray_address: str | None = None) -> type[AlgorithmTrainable]:
    """The trainable of `algorithm` ("PPO", PPO, PPOTrainer), named after it (Tune names trials
    <name>_<id>), connecting to Ray first (see the module's docstring)."""
    algo_cls = algorithm_class(algorithm)
    ray_init(ray_address)
    envs = registered_creators()
    return type(
        algo_cls.__name__,
        (AlgorithmTrainable,),
        {
            "spec": TrainableSpec(algo_cls, envs),
            "__module__": __name__,
            "__doc__": f"{algo_cls.__name__} as a Ray Tune trainable.",
        },
    )
