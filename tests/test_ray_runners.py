"""Remote env runners on Ray (rlarena.rollout.ray_runners): PPO samples on 2 actors and reports what a local
run reports; a seeded run repeats; each runner's envs know their worker index; stop() frees the actors;
fault tolerance (an env that raises, ends its process or hangs; a killed actor); evaluation runners;
the MeanStdFilter merged; multi-agent envs and the Connect Four league; DQN and SAC. One local Ray for
the module (conftest's local_ray: loopback only, 2 CPUs, no dashboard)."""

import os
import sys
import time

import gymnasium as gym
import numpy as np
import pytest

ray = pytest.importorskip("ray")

from rlarena import Callbacks, PolicySpec, PPOConfig
from rlarena.envs.registry import EnvContext, make_vector_env
from rlarena.errors import ConfigError, EnvError
from rlarena.rollout.groups import LocalEvaluation, LocalRunnerGroup
from rlarena.schedules import piecewise

# Ray's workers cannot import this test module: its classes travel by value, as a script's do
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

TINY = {"train_batch_size": 64, "minibatch_size": 32, "num_epochs": 1, "model": {"fcnet_hiddens": [16]}}


def remote_config(num_env_runners: int = 2, seed: int | None = 0, env="CartPole-v1"):
    return (
        PPOConfig()
        .environment(env)
        .env_runners(num_env_runners=num_env_runners, num_envs_per_env_runner=2)
        .training(**TINY)
        .debugging(seed=seed)
    )


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
    actors = list(algo.env_runner_group.remote.actors)
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
            return [
                (r["episode_return_mean"], r["policy_loss"], r["vf_loss"], r["num_episodes_lifetime"])
                for r in (algo.train() for _ in range(2))
            ]

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


def test_the_mean_std_filter_learns_from_every_runner_and_every_runner_uses_the_drivers(local_ray):
    with remote_config().env_runners(observation_filter="MeanStdFilter").build() as algo:
        obs_filter = algo.policy.obs_filter
        seen = []
        for _ in range(3):
            before = obs_filter.get_state()
            batch = algo.sample()["default_policy"]
            # every runner normalized its fragment with the driver's statistics from before the call
            expected = np.clip((batch.raw_obs[0] - before["mean"]) / np.sqrt(before["var"] + 1e-8), -10, 10)
            np.testing.assert_allclose(batch.obs[0], expected, rtol=1e-5, atol=1e-6)
            seen.append(batch.raw_obs[:-1][batch.valid])
        seen = np.concatenate(seen)
        assert obs_filter.count == pytest.approx(len(seen) + 1e-4)  # 2 runners x 2 envs x 16 steps x 3, valid ones
        np.testing.assert_allclose(obs_filter.mean, seen.mean(0), rtol=1e-6, atol=1e-6)


def test_gymnasium_ids_get_only_the_users_options():
    env = make_vector_env("Pendulum-v1", EnvContext({"g": 9.0}, worker_index=3, num_workers=4), 2, "sync")
    assert env.envs[1].unwrapped.g == 9.0
    env.close()


def test_an_env_class_that_asks_for_its_config_gets_the_context_even_without_options():
    class Where(gym.Env):
        observation_space, action_space = gym.spaces.Box(-1, 1, (1,), np.float32), gym.spaces.Discrete(2)

        def __init__(self, config):
            self.worker_index = config.worker_index

    env = make_vector_env(Where, EnvContext({}, worker_index=3, num_workers=4), 1, "sync")
    assert env.envs[0].unwrapped.worker_index == 3


def test_what_remote_runners_do_not_do_yet_is_refused_by_name():
    from rlarena import DQNConfig, LinUCBConfig

    with pytest.raises(ConfigError, match="num_env_runners=2: LinUCB samples in this process"):
        LinUCBConfig().environment("linear_bandit").env_runners(num_env_runners=2).build()
    with pytest.raises(ConfigError, match="fault_tolerance.*off-policy algorithm's replay buffer"):
        DQNConfig().environment("CartPole-v1").env_runners(num_env_runners=2).fault_tolerance(
            restart_failed_env_runners=True
        ).build()

    class EveryStep(Callbacks):
        def on_episode_step(self, **kwargs):
            pass

    with pytest.raises(ConfigError, match="EveryStep overrides on_episode_start or on_episode_step"):
        remote_config().callbacks(EveryStep).build()


# -- fault tolerance ------------------------------------------------------------------------------------
class FailOnce(gym.Env):
    """CartPole that fails once, on runner `worker` at its 5th step: it raises ('raise') or hangs
    ('hang'); a marker file makes the failure happen in one actor only (its replacement plays on)."""

    def __init__(self, config: EnvContext):
        self.env = gym.make("CartPole-v1")
        self.observation_space, self.action_space = self.env.observation_space, self.env.action_space
        self.fail = config.worker_index == config["worker"] and config.remote
        self.marker, self.how, self.t = config["marker"], config["how"], 0

    def reset(self, *, seed=None, options=None):
        return self.env.reset(seed=seed)

    def step(self, action):
        self.t += 1
        if self.fail and self.t == 5 and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            if self.how == "raise":
                raise RuntimeError("the env broke on purpose")
            if self.how == "exit":  # the runner's process ends at once: no exception, no cleanup
                os._exit(1)
            time.sleep(120)
        return self.env.step(action)


def failing_config(tmp_path, how="raise", worker=1, **fault_tolerance):
    env_config = {"marker": str(tmp_path / "failed"), "how": how, "worker": worker}
    return (
        remote_config(env=FailOnce)
        .environment(env_config=env_config)
        .fault_tolerance(delay_between_env_runner_restarts_s=0, **fault_tolerance)
    )


def until_both_runners_sample(algo, patience_s: float = 120) -> dict:
    """Train until a restarted runner has started (a new process importing torch) and samples again;
    the other runner does not wait for it. `patience_s` only keeps a broken restart from hanging."""
    deadline = time.monotonic() + patience_s
    while time.monotonic() < deadline:
        result = algo.train()
        if result["num_env_steps_sampled_this_iter"] == 64:
            assert result["num_healthy_env_runners"] == 2
            return result
        assert result["num_env_steps_sampled_this_iter"] == 32 and result["num_healthy_env_runners"] == 1
        time.sleep(0.1)
    raise AssertionError(f"the restarted runner did not sample within {patience_s} s")


def test_without_fault_tolerance_a_failed_runner_stops_training_naming_it_and_the_envs_error(local_ray, tmp_path):
    message = r"Remote env runner 1 of 2 .*RuntimeError.*the env broke on purpose.*fault_tolerance\("
    with failing_config(tmp_path).build() as algo, pytest.raises(EnvError, match=message):
        algo.train()


def test_a_failed_runner_is_restarted_with_its_worker_index_and_the_iteration_completes(local_ray, tmp_path):
    with failing_config(tmp_path, restart_failed_env_runners=True).build() as algo:
        first = algo.train()  # runner 1 fails: the iteration has runner 2's fragment only
        assert (first["num_env_steps_sampled_this_iter"], first["num_healthy_env_runners"]) == (32, 1)
        second = until_both_runners_sample(algo)  # runner 1 is back (the marker keeps its replacement healthy)
        assert second["num_env_runner_restarts"] == 1 and second["num_remote_worker_restarts"] == 1
        batch = algo.sample()["default_policy"]
        assert batch.obs.shape[1] == 4 and np.isfinite(batch.obs).all()


def test_an_env_that_ends_its_runners_process_gets_the_runner_restarted_or_one_clear_error(local_ray, tmp_path):
    with failing_config(tmp_path, how="exit", restart_failed_env_runners=True).build() as algo:
        first = algo.train()
        assert (first["num_env_steps_sampled_this_iter"], first["num_healthy_env_runners"]) == (32, 1)
        assert until_both_runners_sample(algo)["num_env_runner_restarts"] == 1
    (tmp_path / "failed").unlink()
    message = r"Remote env runner 1 of 2 \(env 'FailOnce'\) failed: ActorDiedError: .*fault_tolerance\("
    with failing_config(tmp_path, how="exit").build() as algo, pytest.raises(EnvError, match=message):
        algo.train()


def test_a_killed_runner_process_is_restarted_and_ignored_failures_go_on_without_it(local_ray, tmp_path):
    with (
        remote_config()
        .fault_tolerance(restart_failed_env_runners=True, delay_between_env_runner_restarts_s=0)
        .build() as algo
    ):
        algo.train()
        ray.kill(algo.env_runner_group.remote.actors[1])  # runner 2's process dies between iterations
        assert algo.train()["num_env_steps_sampled_this_iter"] == 32
        assert until_both_runners_sample(algo)["num_env_runner_restarts"] == 1
    with remote_config().fault_tolerance(ignore_env_runner_failures=True).build() as algo:
        ray.kill(algo.env_runner_group.remote.actors[0])
        for _ in range(2):
            result = algo.train()
            assert (result["num_env_steps_sampled_this_iter"], result["num_healthy_env_runners"]) == (32, 1)
        assert result["num_env_runner_restarts"] == 0
        ray.kill(algo.env_runner_group.remote.actors[0])
        with pytest.raises(EnvError, match="Every remote env runner of 2 .* has failed"):
            algo.train()


def test_a_hung_runner_is_caught_by_sample_timeout_s(local_ray, tmp_path):
    message = r"Remote env runner 2 of 2 .*returned nothing within sample_timeout_s=3"
    with (
        failing_config(tmp_path, how="hang", worker=2).env_runners(sample_timeout_s=3).build() as algo,
        pytest.raises(EnvError, match=message),
    ):
        algo.train()
    (tmp_path / "failed").unlink()
    config = failing_config(tmp_path, how="hang", worker=2, ignore_env_runner_failures=True)
    with config.env_runners(sample_timeout_s=3).build() as algo:
        assert algo.train()["num_healthy_env_runners"] == 1


def test_rllib_fault_tolerance_names_are_ours():
    config = PPOConfig().update_from_dict(
        {
            "recreate_failed_workers": True,
            "max_num_worker_restarts": 3,
            "delay_between_worker_restarts_s": 1.5,
            "ignore_worker_failures": True,
            "num_cpus_per_worker": 0.5,
        }
    )
    assert (
        config.restart_failed_env_runners,
        config.max_num_env_runner_restarts,
        config.delay_between_env_runner_restarts_s,
        config.ignore_env_runner_failures,
        config.num_cpus_per_env_runner,
    ) == (True, 3, 1.5, True, 0.5)


# -- evaluation runners ----------------------------------------------------------------------------------
def test_evaluation_on_its_own_runners_in_sequence_or_parallel_to_training(local_ray):
    def config(**evaluation):
        return (
            remote_config(num_env_runners=1)
            .env_runners(num_cpus_per_env_runner=0.5)
            .evaluation(evaluation_interval=1, evaluation_duration=5, evaluation_num_env_runners=2, **evaluation)
        )

    with config().build() as algo:
        assert len(algo.eval_env_runner_group.remote) == 2
        result = algo.train()
        assert result["evaluation/episodes"] == 5 and np.isfinite(result["evaluation/episode_return_mean"])
        assert algo.evaluate()["episodes"] == 5
    with config(evaluation_parallel_to_training=True).build() as algo:
        results = [algo.train() for _ in range(2)]
        assert [r["evaluation/episodes"] for r in results] == [5, 5]
        assert algo.num_evaluations == 2
    with pytest.raises(ConfigError, match="evaluation_parallel_to_training.*evaluation_num_env_runners"):
        PPOConfig().environment("CartPole-v1").evaluation(evaluation_parallel_to_training=True).build()


# -- multi-agent envs ------------------------------------------------------------------------------------
def test_the_connect_four_league_samples_on_remote_runners_and_grows_there(local_ray):
    from rlarena.games.connect_four.league import ConnectFourLeague
    from rlarena.games.connect_four.opponents import OPPONENTS
    from rlarena.multiagent.league import league_mapping_fn

    config = (
        PPOConfig()
        .environment("connect_four")
        .env_runners(num_env_runners=2, num_envs_per_env_runner=2)
        .training(train_batch_size=256, minibatch_size=128, num_epochs=1, model={"fcnet_hiddens": [16]})
        .multi_agent(
            policies={"learned": PolicySpec(), "random": PolicySpec(policy_class=OPPONENTS["random"])},
            policy_mapping_fn=league_mapping_fn,
            policies_to_train=["learned"],
        )
        .callbacks(ConnectFourLeague)
        .debugging(seed=0)
    )
    with config.build() as algo:
        first = algo.train()  # the league's on_episode_end saw the runners' games (scores per opponent)
        assert first["num_env_steps_sampled_this_iter"] == 256 and first["num_episodes_lifetime"] > 0
        assert first["league/score_vs/random"] >= 0 and first["league/size"] == 1
        algo.callbacks._grow(algo)  # negamax_1 joins: the runners get it before their next fragment
        seen = set()
        for _ in range(3):
            batch = algo.sample()["learned"]
            assert batch.action_mask is not None and batch.action_mask[:-1][batch.valid].any(1).all()
            seen |= set(batch.eps_ids.tolist())
        opponents = {pid for pid in algo.episode_stats.policy_window if pid != "learned"}
        assert opponents == {"random", "negamax_1"}
        # episode ids are unique across the runners: runner i numbers its episodes from i * 10**12
        assert {i // 10**12 for i in seen} == {1, 2}


def test_multi_agent_evaluation_on_its_own_runners(local_ray):
    config = (
        PPOConfig()
        .environment("multi_agent_arena")
        .env_runners(num_envs_per_env_runner=2)
        .training(**TINY)
        .evaluation(evaluation_interval=1, evaluation_duration=3, evaluation_num_env_runners=2)
        .env_runners(num_cpus_per_env_runner=0.5)
        .debugging(seed=0)
    )
    with config.build() as algo:
        result = algo.train()
        assert result["evaluation/episodes"] == 3  # 2 + 1 over the two runners
        assert {"evaluation/agent_return_mean/agent1", "evaluation/policy_reward_mean/default_policy"} <= set(result)
        assert np.isfinite(result["evaluation/episode_return_mean"])


def test_a_seeded_multi_agent_run_on_remote_runners_repeats(local_ray):
    def run() -> list:
        config = (
            PPOConfig()
            .environment("multi_agent_arena")
            .env_runners(num_env_runners=2, num_envs_per_env_runner=2)
            .training(**TINY)
            .debugging(seed=5)
        )
        with config.build() as algo:
            return [
                (r["learner/default_policy/policy_loss"], r["learner/default_policy/vf_loss"])
                for r in (algo.train() for _ in range(3))
            ]

    assert run() == run()


def test_a_checkpoint_trained_on_ray_is_played_without_ray(local_ray, tmp_path):
    from rlarena import Algorithm
    from rlarena.checkpoint.io import INFERENCE_OVERRIDES

    config = remote_config(num_env_runners=1).evaluation(evaluation_num_env_runners=1, evaluation_interval=1)
    with config.env_runners(num_cpus_per_env_runner=0.5).build() as algo:
        algo.train()
        path = algo.save(tmp_path / "ckpt")
    # what rlarena rollout / evaluate / play / export / package load: one env in this process
    with Algorithm.from_checkpoint(path, config_overrides=dict(INFERENCE_OVERRIDES)) as played:
        assert isinstance(played.env_runner_group, LocalRunnerGroup)
        assert isinstance(played.eval_env_runner_group, LocalEvaluation)
        assert played.evaluate()["episodes"] == 10
    with Algorithm.from_checkpoint(path) as resumed:  # a checkpoint does not choose how many processes run
        assert isinstance(resumed.env_runner_group, LocalRunnerGroup)
        assert isinstance(resumed.eval_env_runner_group, LocalEvaluation)
    runners = {"num_env_runners": 1, "evaluation_num_env_runners": 1, "num_cpus_per_env_runner": 0.5}
    with Algorithm.from_checkpoint(path, config_overrides=runners) as resumed:  # the caller's choice: they come back
        assert resumed.env_runner_group.num_remote_env_runners() == 1
        assert len(resumed.eval_env_runner_group.remote) == 1


# -- off-policy algorithms -------------------------------------------------------------------------------
def test_dqn_and_sac_sample_on_remote_runners_with_their_exploration(local_ray):
    from rlarena import DQNConfig, SACConfig

    config = (
        DQNConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=2, num_envs_per_env_runner=2)
        .training(
            num_steps_sampled_before_learning_starts=128,
            min_sample_timesteps_per_iteration=128,
            model={"fcnet_hiddens": [16]},
        )
        .debugging(seed=0)
    )
    with config.build() as algo:
        # 32 steps per env per call ("auto" with remote runners), one replay column per env of every runner
        assert algo.config.fragment_length == 32 and algo.learners["default_policy"].buffer.num_envs == 4
        results = [algo.train() for _ in range(2)]
        assert [r["replay_size"] for r in results] == [128, 256]
        # one update per vector step, as locally: 32 per fragment once more than 128 steps were sampled
        # (SB3's rule): the second fragment's
        assert results[-1]["num_gradient_steps_lifetime"] == 32
        # the runners explore from where the driver's schedule stood before the fragment, step by step
        remote = ray.get(
            [
                actor.__ray_call__.remote(lambda self: (self.runner.policy.explore_step, self.runner.policy.epsilon))
                for actor in algo.env_runner_group.remote.actors
            ]
        )
        start = algo.policy.explore_step  # the driver's: the env steps sampled before the last fragment
        assert start == 128 and 0 < algo.policy.epsilon < 1
        for step, epsilon in remote:  # 32 vector steps of 2 envs; its last read the schedule 2 steps before
            assert step == start + 64
            assert epsilon == pytest.approx(piecewise(algo.config.epsilon, step - 2))
    config = (
        SACConfig()
        .environment("Pendulum-v1")
        .env_runners(num_env_runners=2, num_envs_per_env_runner=1)
        .training(
            num_steps_sampled_before_learning_starts=64,
            min_sample_timesteps_per_iteration=64,
            model={"fcnet_hiddens": [16]},
        )
        .debugging(seed=0)
    )
    with config.build() as algo:
        first, second = algo.train(), algo.train()
        assert (first["random_actions"], second["random_actions"]) == (1.0, 0.0)  # the warm-up, then the actor
        assert second["num_gradient_steps_lifetime"] > 0 and np.isfinite(second["critic_loss"])
