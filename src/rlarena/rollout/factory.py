"""The env runners, built from the config: the same functions build this process's runner (worker 0)
and each remote runner (worker i of num_env_runners, rlarena.rollout.ray_runners), so every env copy gets its
EnvContext (worker_index, num_workers, vector_index) the same way wherever it runs.

Every runner keeps one contract (rlarena.rollout.runner.Runner): sample() -> Sample (the batches per
policy, the env steps, the finished episodes), get_state()/set_state() (weights, filter states and
exploration), reset(seed), close().

Seeds: every random stream of a seeded run is seed_for(config.seed, salt, ...), one salt per kind of
stream, so that no two streams of a run coincide:
    0  torch's global generator
    1  policy k's weights and actions: (1, k)
    2  the envs: this process's runner (2); runner i elsewhere (2, i), its r-th replacement (2, i, r);
       fresh episodes after a restore at iteration n: (2, n), runner i's (2, n, i)
    3  the algorithm's own generator (3); AlphaZero's self-play process i: (3, i, r)
    4  evaluation k: (4, k); evaluation runner i plays its share from seed_for(that seed, i)
    5  an off-policy learner k's replay buffer: (5, k); the bandits' envs: (5, 0), after a restore (5, n)
    6  runner i's actions elsewhere: (6, i), its r-th replacement (6, i, r)
    7  evaluation runner i's actions: (7, i), its r-th replacement (7, i, r)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from rlarena.envs.registry import EnvContext, make_env_creator, make_vector_env
from rlarena.multiagent.builder import as_multi_agent
from rlarena.policies.torch_policy import TrainablePolicy
from rlarena.rollout.multi_agent_runner import MultiAgentEnvRunner
from rlarena.rollout.runner import EnvRunner

if TYPE_CHECKING:
    from rlarena.algorithms.config import AlgorithmConfig
    from rlarena.policies.policy import Policy


# the salts above that runner groups use
SALT_ENVS, SALT_ACTIONS, SALT_EVAL_ACTIONS = 2, 6, 7


def seed_for(seed: int | None, *salt: int) -> int | None:
    """Independent, reproducible child seeds (None stays None: fresh entropy)."""
    if seed is None:
        return None
    return int(np.random.SeedSequence([seed, *salt]).generate_state(1)[0])


def worker_seed(seed: int | None, salt: int, worker_index: int, restarts: int) -> int | None:
    """Runner `worker_index`'s seed for `salt` (a runner elsewhere: a Ray actor, a sampling process);
    a replacement (restarts > 0, fault tolerance) gets another, so it does not replay its
    predecessor's episodes."""
    return seed_for(seed, salt, worker_index) if restarts == 0 else seed_for(seed, salt, worker_index, restarts)


def reseed_policies(policies: dict[str, Policy], action_seed: int | None) -> None:
    """Give each policy copy of a remote or async runner its own random stream for its actions."""
    for k, policy in enumerate(policies.values()):
        if hasattr(policy, "rng"):
            policy.rng = np.random.default_rng(None if action_seed is None else [action_seed, k])


def structure_signature(policies: dict[str, Policy], mapping_fn: Any, policies_to_train: Any) -> tuple:
    """What changes when a league grows or shrinks or the mapping is replaced: runners elsewhere then
    need the new policy set."""
    return tuple((pid, id(p)) for pid, p in policies.items()), id(mapping_fn), tuple(policies_to_train)


# remote or async runner i numbers its multi-agent episodes from i * EPISODE_ID_STRIDE: ids stay unique
# across runners (the league's seat and opponent choice reads them)
EPISODE_ID_STRIDE = 10**12


def make_env_runner(
    config: AlgorithmConfig,
    policy_for: Callable[[Any, Any], Policy],
    seed: int | None,
    env_name: str,
    worker_index: int = 0,
    num_envs: int | None = None,
    num_workers: int | None = None,
) -> EnvRunner:
    """A single-agent runner over a vector env of num_envs (default num_envs_per_env_runner) copies;
    its policy is policy_for(observation space, action space) of one copy. worker_index 0 is this
    process; a smaller num_envs than configured runs in this process (sync), without worker processes."""
    assert config.env is not None, "env runners sample an env (an offline run has none: rlarena.rollout.groups)"
    context = EnvContext(
        config.env_config, worker_index=worker_index, num_workers=config.num_env_runners, remote=worker_index > 0
    )
    mode = config.vectorization_mode
    if num_envs is not None and mode in ("subproc", "async"):
        mode = "sync"
    env = make_vector_env(
        config.env, context, num_envs or config.num_envs_per_env_runner, mode, num_workers=config.num_env_workers
    )
    policy = policy_for(env.single_observation_space, env.single_action_space)
    assert isinstance(policy, TrainablePolicy), "a single-agent runner samples with the algorithm's trainable policy"
    return EnvRunner(env, policy, config.fragment_length, seed, env_name)


def make_multi_agent_env_runner(
    config: AlgorithmConfig,
    policies: dict[str, Policy],
    mapping_fn: Callable[..., str],
    policies_to_train: list[str],
    seed: int | None,
    env_name: str,
    worker_index: int = 0,
    num_envs: int | None = None,
    first_env: Any = None,
    callbacks: Any = None,
    algorithm: Any = None,
    episode_ids: Iterator[int] | None = None,
    num_workers: int | None = None,
) -> MultiAgentEnvRunner:
    """A multi-agent runner over num_envs (default num_envs_per_env_runner) env copies, the first one
    `first_env` when given (the env the spaces were probed from). num_workers: the size of the
    runner's group (default num_env_runners; evaluation runners: evaluation_num_env_runners)."""
    assert config.env is not None, "env runners sample an env (an offline run has none: rlarena.rollout.groups)"
    creator = make_env_creator(config.env)
    envs = [] if first_env is None else [first_env]
    workers = config.num_env_runners if num_workers is None else num_workers
    envs += [
        as_multi_agent(
            creator(
                EnvContext(
                    config.env_config,
                    worker_index=worker_index,
                    num_workers=workers,
                    vector_index=k,
                    remote=worker_index > 0,
                )
            )
        )
        for k in range(len(envs), num_envs or config.num_envs_per_env_runner)
    ]
    return MultiAgentEnvRunner(
        envs,
        policies,
        mapping_fn,
        set(policies_to_train),
        config.fragment_length,
        seed,
        env_name,
        callbacks,
        algorithm,
        episode_ids,
    )
