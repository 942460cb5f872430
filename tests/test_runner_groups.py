"""Every runner group builds its runners as the local one is built, whatever the env is given as: a
name registered with register_env (its creator a lambda, as users write it), a creator passed
directly, an env class, a Gymnasium id. The groups: this process (num_env_runners=0), forked sampling
processes (sample_async=True, num_sampling_processes=2), Ray actors (num_env_runners=2, evaluation
runners too). A replacement after a crash still knows the registered name; a runner that cannot be
built is a failed runner: counted against max_num_env_runner_restarts, and reported as one EnvError
naming the runner and the env's own exception.

The Ray tests come last (one loopback Ray for the module, conftest's local_ray), after the tests that
fork this process."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.classic_control import CartPoleEnv

from rlarena import PPOConfig
from rlarena.envs import registry
from rlarena.errors import EnvError
from rlarena.rollout.groups import LocalRunnerGroup

TINY = {"train_batch_size": 64, "minibatch_size": 32, "num_epochs": 1, "model": {"fcnet_hiddens": [8]}}
ENV_KINDS = ["registered name", "creator", "class", "gymnasium id"]
SHORT = 10  # the episode length of the creators' envs: what shows their creator built the runner's envs


def the_env(kind: str, registered_env: Callable[[str, Callable], str]) -> object:
    """The env of each kind; the creators cut episodes at SHORT steps."""
    if kind == "registered name":
        return registered_env("short_cartpole", lambda cfg: gym.make("CartPole-v1", max_episode_steps=SHORT))
    if kind == "creator":
        return lambda cfg: gym.make("CartPole-v1", max_episode_steps=SHORT)
    return CartPoleEnv if kind == "class" else "CartPole-v1"


def config(env: object, **env_runners: object) -> PPOConfig:
    return (
        PPOConfig()
        .environment(env)
        .env_runners(num_envs_per_env_runner=2, **env_runners)
        .training(**TINY)
        .debugging(seed=0)
    )


def forked(env: object, **env_runners: object) -> PPOConfig:
    return config(env, sample_async=True, num_sampling_processes=2, **env_runners)


def fails_away_from_the_driver(cfg: registry.EnvContext) -> gym.Env:
    """A creator that raises in every runner built elsewhere (the driver's own env, worker 0, builds)."""
    if cfg.worker_index > 0:
        raise RuntimeError("the simulator is not installed here")
    return gym.make("CartPole-v1")


def always_fails(cfg: registry.EnvContext) -> gym.Env:
    raise RuntimeError("the simulator is not installed")


FAULT_TOLERANCE = {"off": {}, "restart": {"restart_failed_env_runners": True, "delay_between_env_runner_restarts_s": 0}}


def check_trains(algo, kind: str, steps: int = 64) -> None:
    for _ in range(2):
        result = algo.train()
        assert result["num_env_steps_sampled_this_iter"] >= steps and np.isfinite(result["policy_loss"])
    if kind in ("registered name", "creator"):  # the user's creator made the envs that sampled
        assert result["num_episodes_lifetime"] > 0 and result["episode_len_mean"] <= SHORT


# -- this process (num_env_runners=0) ---------------------------------------------------------------------
@pytest.mark.timeout(60)
@pytest.mark.parametrize("fault_tolerance", FAULT_TOLERANCE)
@pytest.mark.parametrize("kind", ENV_KINDS)
def test_the_local_runner_samples_every_kind_of_env(kind, fault_tolerance, registered_env):
    with config(the_env(kind, registered_env)).fault_tolerance(**FAULT_TOLERANCE[fault_tolerance]).build() as algo:
        check_trains(algo, kind)
        assert isinstance(algo.env_runner_group, LocalRunnerGroup)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["subproc", "async"])
def test_vector_envs_in_worker_processes_of_a_registered_name_here_and_in_sampling_processes(mode, registered_env):
    # the vector env's worker processes are forked (from this process, or from a sampling process,
    # which is daemonic) and get the creator the name resolved to
    name = registered_env("subproc_cartpole", lambda cfg: gym.make("CartPole-v1", max_episode_steps=SHORT))
    with config(name, vectorization_mode=mode, num_env_workers=2).build() as algo:
        assert not isinstance(algo.env, gym.vector.SyncVectorEnv)
        check_trains(algo, "registered name")
    with forked(name, vectorization_mode=mode, num_env_workers=2).build() as algo:
        check_trains(algo, "registered name")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fault_tolerance", FAULT_TOLERANCE)
def test_an_env_whose_creator_raises_fails_build_with_its_error(fault_tolerance, registered_env):
    name = registered_env("no_simulator", always_fails)
    message = r"Creating env 'no_simulator' failed: RuntimeError: the simulator is not installed"
    for group in (config, forked):
        with pytest.raises(EnvError, match=message):
            group(name).fault_tolerance(**FAULT_TOLERANCE[fault_tolerance]).build()


# -- forked sampling processes (sample_async=True) ---------------------------------------------------------
@pytest.mark.timeout(60)
@pytest.mark.parametrize("fault_tolerance", FAULT_TOLERANCE)
@pytest.mark.parametrize("kind", ENV_KINDS)
def test_forked_sampling_processes_sample_every_kind_of_env(kind, fault_tolerance, registered_env):
    with forked(the_env(kind, registered_env)).fault_tolerance(**FAULT_TOLERANCE[fault_tolerance]).build() as algo:
        check_trains(algo, kind)
        assert algo.env_runner_group.sampler.num_healthy == 2


def train_until_replaced(algo, patience_s: float = 60) -> dict:
    """Train until one restart is counted and both runners sample; `patience_s` only keeps a broken
    restart from looping (the test's timeout is the bound)."""
    deadline = time.monotonic() + patience_s
    while time.monotonic() < deadline:
        result = algo.train()
        if result["num_env_runner_restarts"] == 1 and result["num_healthy_env_runners"] == 2:
            return result
        time.sleep(0.05)
    raise AssertionError("the crashed runner was not replaced")


@pytest.mark.timeout(90)
def test_a_killed_sampling_process_is_replaced_by_one_that_knows_the_registered_name(registered_env):
    name = registered_env("replaced_cartpole", lambda cfg: gym.make("CartPole-v1", max_episode_steps=SHORT))
    # one restart allowed: a replacement that could not build its envs would stop training
    ft = {**FAULT_TOLERANCE["restart"], "max_num_env_runner_restarts": 1}
    with forked(name).fault_tolerance(**ft).build() as algo:
        algo.train()
        os.kill(algo.env_runner_group.sampler.workers[1].proc.pid, signal.SIGKILL)
        train_until_replaced(algo)
        check_trains(algo, "registered name")


HALF_INSTALLED = (
    r"building it raised EnvError: Creating env '{}' failed: RuntimeError: the simulator is not installed here"
)


@pytest.mark.timeout(60)
def test_sampling_processes_that_cannot_be_built_stop_training_with_one_clear_error(registered_env):
    name = registered_env("half_installed", fails_away_from_the_driver)
    why = HALF_INSTALLED.format(name)
    with (
        forked(name).build() as algo,
        pytest.raises(
            EnvError, match=rf"^Sampling process \d of 2 \(env '{name}'\) failed: {why}\. To go on .*fault_tolerance"
        ),
    ):
        algo.train()
    with (
        forked(name).fault_tolerance(ignore_env_runner_failures=True).build() as algo,
        pytest.raises(
            EnvError,
            match=rf"^Every sampling process of 2 \(env '{name}'\) has failed: nothing left to "
            rf"sample\. The last: Sampling process \d of 2 .* failed: {why}\.$",
        ),
    ):
        algo.train()


@pytest.mark.timeout(60)
def test_sampling_process_restarts_of_a_creator_that_always_raises_there_end_in_one_clear_error(registered_env):
    name = registered_env("half_installed", fails_away_from_the_driver)
    ft = {**FAULT_TOLERANCE["restart"], "max_num_env_runner_restarts": 2}
    with forked(name).fault_tolerance(**ft).build() as algo:
        with pytest.raises(
            EnvError,
            match=rf"^Sampling process \d of 2 .* failed: {HALF_INSTALLED.format(name)}\. "
            rf"Its restart cannot come: the max_num_env_runner_restarts=2 restarts are "
            rf"used up",
        ):
            algo.train()
        assert algo.env_runner_group.sampler.restarts == 2


# -- Ray actors (num_env_runners=2) --------------------------------------------------------------------------
try:  # without Ray, local_ray skips these tests
    import ray
except ImportError:
    ray = None
else:  # Ray's workers cannot import this test module: its functions travel by value, as a script's do
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def on_ray(env: object, **env_runners: object) -> PPOConfig:
    return config(env, num_env_runners=2, **env_runners)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("kind", ENV_KINDS)
def test_ray_runners_and_evaluation_runners_sample_every_kind_of_env(kind, registered_env, local_ray):
    # with subprocess vector envs in the actors: forked there, after the actor registered the name
    cfg = on_ray(the_env(kind, registered_env), num_cpus_per_env_runner=0.5, vectorization_mode="subproc").evaluation(
        evaluation_num_env_runners=1, evaluation_duration=2
    )
    with cfg.build() as algo:
        check_trains(algo, kind)
        assert algo.env_runner_group.remote.num_healthy == 2
        evaluation = algo.evaluate()
        assert evaluation["episodes"] == 2
        if kind in ("registered name", "creator"):
            assert evaluation["episode_len_mean"] <= SHORT


@pytest.mark.timeout(180)
def test_a_killed_ray_runner_is_replaced_by_one_that_knows_the_registered_name(registered_env, local_ray):
    name = registered_env("ray_replaced_cartpole", lambda cfg: gym.make("CartPole-v1", max_episode_steps=SHORT))
    ft = {**FAULT_TOLERANCE["restart"], "max_num_env_runner_restarts": 1}
    with on_ray(name).fault_tolerance(**ft).build() as algo:
        algo.train()
        ray.kill(algo.env_runner_group.remote.actors[1])
        train_until_replaced(algo, patience_s=120)
        replacement = algo.env_runner_group.remote.slots[1].actor
        assert name in ray.get(replacement.__ray_call__.remote(lambda actor: list(registry._REGISTRY)))
        check_trains(algo, "registered name")


@pytest.mark.timeout(180)
def test_a_registered_multi_agent_env_on_ray_runners_and_evaluation_runners(registered_env, local_ray):
    from rlarena.envs.arena import MultiAgentArena

    name = registered_env("my_arena", lambda cfg: MultiAgentArena(cfg))
    cfg = config(name, num_env_runners=1, num_cpus_per_env_runner=0.5).evaluation(
        evaluation_num_env_runners=1, evaluation_duration=2
    )
    with cfg.build() as algo:
        assert algo.train()["num_env_steps_sampled_this_iter"] == 64
        assert algo.evaluate()["episodes"] == 2


@pytest.mark.timeout(180)
def test_ray_runners_that_cannot_be_built_stop_training_with_one_clear_error(registered_env, local_ray):
    name = registered_env("half_installed_ray", fails_away_from_the_driver)
    runner = rf"Remote env runner \d of 2 \(env '{name}'\) failed: {HALF_INSTALLED.format(name)}"
    with on_ray(name).build() as algo, pytest.raises(EnvError, match=rf"^{runner}\. To go on .*fault_tolerance"):
        algo.train()
    with (
        on_ray(name).fault_tolerance(ignore_env_runner_failures=True).build() as algo,
        pytest.raises(
            EnvError,
            match=rf"^Every remote env runner of 2 \(env '{name}'\) has failed: nothing left to sample\. "
            rf"The last: {runner}\.$",
        ),
    ):
        algo.train()


@pytest.mark.timeout(120)
def test_ray_runner_restarts_of_a_creator_that_always_raises_there_end_in_one_clear_error(registered_env, local_ray):
    # each restart counts against max_num_env_runner_restarts: they end, and so does train()
    name = registered_env("half_installed_ray", fails_away_from_the_driver)
    ft = {**FAULT_TOLERANCE["restart"], "max_num_env_runner_restarts": 2}
    with on_ray(name).fault_tolerance(**ft).build() as algo:
        with pytest.raises(
            EnvError,
            match=rf"^Remote env runner \d of 2 \(env '{name}'\) failed: "
            rf"{HALF_INSTALLED.format(name)}\. Its restart cannot come: the "
            rf"max_num_env_runner_restarts=2 restarts are used up",
        ):
            algo.train()
        assert algo.env_runner_group.remote.restarts == 2


@pytest.mark.timeout(180)
def test_ignored_build_failures_leave_the_healthy_ray_runner_sampling(registered_env, local_ray):
    def second_runner_fails(cfg):
        if cfg.worker_index == 2:
            raise RuntimeError("no simulator on this node")
        return gym.make("CartPole-v1")

    name = registered_env("one_node_broken", second_runner_fails)
    with on_ray(name).fault_tolerance(ignore_env_runner_failures=True).build() as algo:
        for _ in range(2):
            result = algo.train()
            assert (result["num_env_steps_sampled_this_iter"], result["num_healthy_env_runners"]) == (32, 1)
