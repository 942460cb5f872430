"""Remote env runners on Ray (rlarena.distributed): PPO samples on 2 actors and reports what a local
run reports; a seeded run repeats; each runner's envs know their worker index; stop() frees the actors.
One local Ray for the module: loopback only, 2 CPUs, no dashboard."""

import time

import gymnasium as gym
import numpy as np
import pytest

ray = pytest.importorskip("ray")

from rlarena import PPOConfig
from rlarena.distributed import ray_init
from rlarena.envs.registry import EnvContext, make_vector_env
from rlarena.errors import ConfigError

TINY = {"train_batch_size": 64, "minibatch_size": 32, "num_epochs": 1, "model": {"fcnet_hiddens": [16]}}


@pytest.fixture(scope="module")
def local_ray():
    if ray.is_initialized():  # another module's Ray: ours must be the loopback one with 2 CPUs
        ray.shutdown()
    ray_init(num_cpus=2)
    yield
    ray.shutdown()


def remote_config(num_env_runners: int = 2, seed: int | None = 0, env="CartPole-v1"):
    return (PPOConfig().environment(env).env_runners(num_env_runners=num_env_runners, num_envs_per_env_runner=2)
            .training(**TINY).debugging(seed=seed))


def test_local_ray_listens_on_loopback_only(local_ray):
    assert {node["NodeManagerAddress"] for node in ray.nodes()} == {"127.0.0.1"}


def test_ppo_on_two_remote_runners_reports_the_local_metrics_and_stop_frees_the_actors(local_ray):
    local = remote_config(num_env_runners=0).build()
    local_result = local.train()
    local.stop()
    algo = remote_config().build()
    assert algo.workers.num_remote_env_runners() == 2
    for _ in range(3):
        result = algo.train()
    assert set(result) == set(local_result)
    assert result["num_env_steps_sampled_this_iter"] == 64  # 2 runners x 2 envs x 16 steps
    assert result["num_env_steps_sampled_lifetime"] == 3 * 64
    assert result["num_episodes_lifetime"] > 0 and np.isfinite(result["episode_return_mean"])
    actors = list(algo.remote_runners.actors)
    algo.stop()
    deadline = time.time() + 30
    for actor in actors:  # a killed actor soon answers no call (ray.kill is asynchronous)
        with pytest.raises(ray.exceptions.RayActorError):
            while time.time() < deadline:
                ray.get(actor.close.remote(), timeout=30)
                time.sleep(0.1)
    deadline = time.time() + 30  # and its CPU goes back to Ray
    while ray.available_resources().get("CPU", 0) < 2 and time.time() < deadline:
        time.sleep(0.1)
    assert ray.available_resources().get("CPU", 0) == 2


def test_a_seeded_run_on_remote_runners_repeats(local_ray):
    def run() -> list:
        with remote_config(seed=3).build() as algo:
            return [(r["episode_return_mean"], r["policy_loss"], r["vf_loss"], r["num_episodes_lifetime"])
                    for r in (algo.train() for _ in range(2))]

    assert run() == run()


def test_each_runner_envs_know_their_worker_and_vector_index(local_ray):
    class WhereAmI(gym.Env):
        """Observes (worker_index, num_workers, vector_index): where its EnvContext says it runs."""

        def __init__(self, config: EnvContext):
            self.where = np.array([config.worker_index, config.num_workers, config.vector_index], np.float32)
            self.observation_space = gym.spaces.Box(-10, 10, (3,), np.float32)
            self.action_space = gym.spaces.Discrete(2)
            assert config == {"size": 4}  # the user's options are the dict's keys; the context is not

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            return self.where, {}

        def step(self, action):
            return self.where, 1.0, False, False, {}

    config = remote_config(env=WhereAmI).environment(env_config={"size": 4})
    with config.build() as algo:
        assert algo.env.envs[0].unwrapped.where.tolist() == [0, 2, 0]  # the driver is worker 0
        batch = algo.sample()["default_policy"]
    # columns: runner 1's two envs, then runner 2's (the obs are the policy's input: not filtered here)
    assert batch.obs[0].tolist() == [[1, 2, 0], [1, 2, 1], [2, 2, 0], [2, 2, 1]]


def test_gymnasium_ids_get_only_the_users_options():
    env = make_vector_env("Pendulum-v1", EnvContext({"g": 9.0}, worker_index=3, num_workers=4), 2, "sync")
    assert env.envs[1].unwrapped.g == 9.0
    env.close()


def test_what_remote_runners_do_not_do_yet_is_refused_by_name():
    with pytest.raises(ConfigError, match="MeanStdFilter.*not available yet"):
        remote_config().env_runners(observation_filter="MeanStdFilter").build()
    from rlarena import DQNConfig
    with pytest.raises(ConfigError, match="num_env_runners=2: DQN samples in this process"):
        DQNConfig().environment("CartPole-v1").env_runners(num_env_runners=2).build()
    with pytest.raises(ConfigError, match="num_env_runners=2: 'multi_agent_arena' is a multi-agent env"):
        PPOConfig().environment("multi_agent_arena").env_runners(num_env_runners=2).build()
