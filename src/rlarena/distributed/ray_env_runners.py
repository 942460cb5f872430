"""Remote env runners on Ray: each actor steps its own vector env with its own copy of the policy and
returns fragments; the driver concatenates them along the env axis, so an on-policy update reads one
[T, N * num_env_runners] Rollout exactly as it reads the local runner's.

Importing this module imports ray (the algorithm imports it only when num_env_runners > 0).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import ray
import torch

from rlarena.distributed import cpus_needed, ray_init
from rlarena.envs.registry import EnvContext, make_vector_env
from rlarena.errors import EnvError
from rlarena.rollout.runner import EnvRunner, EpisodeStats
from rlarena.rollout.storage import Rollout

if TYPE_CHECKING:  # the algorithm layer imports this module, not the other way round
    from rlarena.algorithms.config import AlgorithmConfig
    from rlarena.torch_policy import TrainablePolicy


class RemoteEnvRunner:
    """The body of one Ray actor: the local EnvRunner over a vector env of its own, its envs told
    worker_index (1..N) and num_workers (N) through their EnvContext."""

    def __init__(self, config: AlgorithmConfig, policy: TrainablePolicy, worker_index: int, env_seed: int | None,
                 env_name: str):
        torch.set_num_threads(config.num_torch_threads)
        context = EnvContext(config.env_config, worker_index=worker_index, num_workers=config.num_env_runners,
                             remote=True)
        env = make_vector_env(config.env, context, config.num_envs_per_env_runner, config.vectorization_mode,
                              num_workers=config.num_env_workers)
        self.runner = EnvRunner(env, policy, config.fragment_length, env_seed, env_name)

    def sample(self, weights: dict[str, np.ndarray]) -> tuple[Rollout, np.ndarray, np.ndarray]:
        """Take the driver's weights, sample one fragment; (the fragment, the returns and lengths of
        the episodes it completed). Ray resolves the weights' ObjectRef before the call."""
        self.runner.policy.set_state(weights)
        batch = self.runner.sample()
        stats = self.runner.stats
        returns = np.array([r for r, _ in stats.iter_episodes], np.float64)
        lengths = np.array([n for _, n in stats.iter_episodes], np.int64)
        self.runner.stats = EpisodeStats()  # the driver's stats count them; nothing piles up here
        return batch, returns, lengths

    def close(self) -> None:
        self.runner.env.close()


def concat_rollouts(parts: list[Rollout]) -> Rollout:
    """Fragments of equal length side by side: [T, N1] + [T, N2] -> [T, N1 + N2] (axis 1, the env
    axis; raw_obs and action masks too), the runners in worker-index order."""
    def cat(name: str) -> np.ndarray | None:
        arrays = [getattr(p, name) for p in parts]
        return None if arrays[0] is None else np.concatenate(arrays, axis=1)

    return Rollout(obs=cat("obs"), actions=cat("actions"), rewards=cat("rewards"), terminated=cat("terminated"),
                   truncated=cat("truncated"), valid=cat("valid"), raw_obs=cat("raw_obs"),
                   action_mask=cat("action_mask"))


class RemoteEnvRunnerGroup:
    """One RemoteEnvRunner actor per policy copy in `policies` (worker indices 1..N, in order) for one
    single-agent algorithm; runner i resets its envs with env_seeds[i - 1]. Each runner's fragment and
    episodes are taken in worker-index order, so a seeded run repeats whatever order the actors finish in."""

    def __init__(self, config: AlgorithmConfig, policies: list[TrainablePolicy], env_seeds: list[int | None],
                 env_name: str):
        ray_init(config.ray_address, cpus_needed(len(policies), config.num_cpus_per_env_runner))
        actor_class = ray.remote(RemoteEnvRunner).options(num_cpus=config.num_cpus_per_env_runner)
        self.actors = [actor_class.remote(config, policy, i, seed, env_name)
                       for i, (policy, seed) in enumerate(zip(policies, env_seeds), start=1)]
        self.env_name = env_name

    def __len__(self) -> int:
        return len(self.actors)

    def sample(self, weights: dict[str, np.ndarray], stats: EpisodeStats) -> Rollout:
        """Send the weights once (one ray.put every runner reads), gather every runner's fragment and
        add its completed episodes to `stats` in worker-index order."""
        ref = ray.put(weights)
        pending = [actor.sample.remote(ref) for actor in self.actors]
        parts = []
        for i, task in enumerate(pending, start=1):
            try:
                batch, returns, lengths = ray.get(task)
            except ray.exceptions.RayError as exc:
                raise self._failed(i, exc) from exc
            parts.append(batch)
            if len(returns):
                stats.add(returns, lengths)
        return concat_rollouts(parts)

    def _failed(self, worker_index: int, exc: Exception) -> EnvError:
        cause = getattr(exc, "cause", None) or exc
        detail = " ".join(str(cause).split())
        return EnvError(f"Remote env runner {worker_index} of {len(self.actors)} (env {self.env_name!r}) failed: "
                        f"{type(cause).__name__}: {detail}")

    def stop(self) -> None:
        """Close every runner's envs (their worker processes, with vectorization_mode="subproc"), then
        kill the actors. The Ray instance stays up for the next algorithm, as with RLlib."""
        try:
            ray.get([actor.close.remote() for actor in self.actors], timeout=10)
        except ray.exceptions.RayError:  # a dead or stuck runner: killed below all the same
            pass
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
