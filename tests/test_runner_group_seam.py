"""The runner group seam (rlarena.rollout.groups): the factory picks one group per config, once; every
group meets RunnerGroup (sample, reset, broadcast, health, stats, stop) and its runner meets Runner;
evaluation in this process and on Ray (EvaluationGroup: start, finish, stop); the seeds a restore gives
the runners; what "auto" fragment length means per family.

The Ray test comes last (one loopback Ray, conftest's local_ray), after the tests that fork this process."""

from __future__ import annotations

import numpy as np
import pytest
from probe_envs import DiscreteIdentityEnv

from rlarena import APPOConfig, BCConfig, DQNConfig, MARWILConfig, PolicySpec, PPOConfig
from rlarena.envs.arena import MultiAgentArena
from rlarena.errors import ConfigError
from rlarena.rollout.factory import seed_for
from rlarena.rollout.groups import (
    AsyncRayRunnerGroup,
    EnvRunnerGroup,
    EvaluationGroup,
    ForkedRunnerGroup,
    LocalEvaluation,
    LocalRunnerGroup,
    OfflineRunner,
    OfflineSource,
    RayEvaluation,
    RayRunnerGroup,
    Runner,
    RunnerGroup,
)
from rlarena.rollout.runner import Sample

TINY = {"train_batch_size": 64, "minibatch_size": 32, "num_epochs": 1, "model": {"fcnet_hiddens": [8]}}
NOTHING = {"num_healthy_env_runners": 0, "num_env_runner_restarts": 0}


def by_agent(agent_id, episode, **kwargs):
    return "p1" if agent_id == "agent1" else "p2"


def ppo(**env_runners) -> PPOConfig:
    return (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_envs_per_env_runner=2, **env_runners)
        .training(**TINY)
        .debugging(seed=0)
    )


def arena(**env_runners) -> PPOConfig:
    return (
        PPOConfig()
        .environment(MultiAgentArena, env_config={"width": 4, "height": 4, "ts": 10})
        .env_runners(num_envs_per_env_runner=2, **env_runners)
        .training(**TINY)
        .multi_agent(policies={"p1": PolicySpec(), "p2": PolicySpec()}, policy_mapping_fn=by_agent)
        .debugging(seed=0)
    )


def bc(directory, env=None) -> BCConfig:
    """BC on a few one-step episodes of DiscreteIdentityEnv written to `directory`."""
    from rlarena.offline import OfflineWriter

    pytest.importorskip("pyarrow")
    probe = DiscreteIdentityEnv()
    targets = np.random.default_rng(0).integers(4, size=64)
    obs = np.eye(4, dtype=np.float32)[targets]
    writer = OfflineWriter(directory, probe.observation_space, probe.action_space)
    writer.add(
        {
            "eps_id": np.arange(64),
            "obs": obs,
            "new_obs": obs,
            "actions": targets,
            "rewards": np.ones(64, np.float32),
            "terminateds": np.ones(64, bool),
            "truncateds": np.zeros(64, bool),
        }
    )
    writer.close()
    config = BCConfig().offline_data(input_=str(directory)).training(train_batch_size=32, model={"fcnet_hiddens": [8]})
    return config.environment(env) if env is not None else config


class Asked(list):
    """A seed_for(worker index) that records the indices it is asked for (each gets 100 + its index)."""

    def __call__(self, worker_index: int) -> int:
        self.append(worker_index)
        return 100 + worker_index


# -- the factory ----------------------------------------------------------------------------------------
CONFIGS = {
    "this process": (lambda tmp: ppo(), LocalRunnerGroup),
    "forked processes": (lambda tmp: ppo(sample_async=True, num_sampling_processes=2), ForkedRunnerGroup),
    "multi-agent, this process": (lambda tmp: arena(), LocalRunnerGroup),
    "multi-agent, forked processes": (lambda tmp: arena(sample_async=True), ForkedRunnerGroup),
    "logged data": (lambda tmp: bc(tmp / "data", DiscreteIdentityEnv), OfflineSource),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", CONFIGS)
def test_the_factory_picks_the_group_the_config_asks_for_once(kind, tmp_path):
    config, expected = CONFIGS[kind]
    with config(tmp_path).build() as algo:
        group = algo.env_runner_group
        assert type(group) is expected and isinstance(group, RunnerGroup) and isinstance(group, EnvRunnerGroup)
        # this process's runner stays: it holds the algorithm's policies, whose state goes out
        assert group.runner is algo.runner and isinstance(algo.runner, Runner)
        assert algo.runner.policies == algo.policies
        assert algo.workers is group and group.local_env_runner() is algo.runner and group.local_worker() is algo.runner
        assert isinstance(algo.eval_env_runner_group, LocalEvaluation)
        assert isinstance(algo.eval_env_runner_group, EvaluationGroup)
        if expected is ForkedRunnerGroup:
            assert group.sampler is None and group.health == NOTHING  # nothing forked before the first sample


# -- every group meets RunnerGroup ------------------------------------------------------------------------
@pytest.mark.timeout(60)
@pytest.mark.parametrize("config", [ppo, arena], ids=["single-agent", "multi-agent"])
def test_this_process_samples_resets_and_stops(config):
    algo = config().build()
    group = algo.env_runner_group
    closed = []
    close = algo.runner.close
    algo.runner.close = lambda: (closed.append(True), close())  # type: ignore[method-assign]
    try:
        sample = group.sample()
        assert isinstance(sample, Sample) and sample.steps == algo.config.fragment_length * 2
        asked = Asked()
        group.reset(asked)
        assert asked == [0]  # this process's runner is worker 0
        group.broadcast()  # nothing elsewhere samples with older weights
        assert group.health == NOTHING and group.stats == {} and group.num_remote_env_runners() == 0
        if config is ppo:  # fresh episodes from the seed it was given
            starts = []
            for seed in (7, 7, 8):
                group.reset(lambda i, seed=seed: seed)
                starts.append(group.sample().batches["default_policy"].obs[0].copy())  # the storage is reused
            np.testing.assert_array_equal(starts[0], starts[1])
            assert not np.array_equal(starts[0], starts[2])
    finally:
        algo.stop()
    assert closed == [True]  # stop() closed this process's runner's envs


@pytest.mark.timeout(120)
def test_forked_processes_sample_take_broadcasts_start_again_on_reset_and_stop():
    with ppo(sample_async=True, num_sampling_processes=2).build() as algo:
        group = algo.env_runner_group
        sample = group.sample()
        assert isinstance(sample, Sample) and sample.steps >= algo.config.train_batch_size
        assert set(group.stats) == {"policy_lag", "num_fragments"} and group.stats["num_fragments"] >= 1
        assert group.health == {"num_healthy_env_runners": 2, "num_env_runner_restarts": 0}
        assert group.num_remote_env_runners() == 2
        version = group.sampler.version
        group.broadcast()
        algo.workers.sync_weights(policies=["default_policy"])  # RLlib's name: the weights go out now
        assert group.sampler.version == version + 2
        with pytest.raises(ConfigError, match="No policy 'nope'"):
            algo.workers.sync_weights(policies=["nope"])
        before = [worker.proc.pid for worker in group.sampler.workers]
        asked = Asked()
        group.reset(asked)
        assert asked == [0]  # the processes are forked again from this process as it is now
        assert [worker.proc.pid for worker in group.sampler.workers] != before
        assert group.sample().steps >= algo.config.train_batch_size
        sampler = group.sampler
    assert group.sampler is None and all(worker.proc is None for worker in sampler.workers)


@pytest.mark.timeout(60)
def test_an_offline_source_has_nothing_to_sample(tmp_path):
    with bc(tmp_path / "data").build() as algo:
        group = algo.env_runner_group
        assert type(group) is OfflineSource and isinstance(algo.runner, OfflineRunner)
        with pytest.raises(ConfigError, match="learns from logged data"):
            group.sample()
        with pytest.raises(ConfigError, match="learns from logged data"):
            algo.runner.sample()
        group.reset(Asked())
        group.broadcast()
        assert group.health == NOTHING and group.stats == {}
        algo.workers.sync_weights(policies=["default_policy"])
        assert algo.train()["training_iteration"] == 1  # from the files
        assert set(algo.evaluate()) == {"evaluation_time_s"}  # no env given: nothing to play


@pytest.mark.timeout(60)
def test_a_restore_starts_fresh_episodes_seeded_by_its_iteration(tmp_path, monkeypatch):
    with ppo().build() as algo:
        algo.train()
        algo.train()
        path = algo.save(tmp_path / "ckpt")
        group, reset = algo.env_runner_group, algo.env_runner_group.reset
        asked: dict[int, int | None] = {}

        def recorded(seed_of):
            asked.update({i: seed_of(i) for i in (0, 1, 2)})
            reset(seed_of)

        monkeypatch.setattr(group, "reset", recorded)
        algo.restore(path)
    # this process's runner from (seed, 2, iteration), runner i elsewhere from (seed, 2, iteration, i)
    assert asked == {0: seed_for(0, 2, 2), 1: seed_for(0, 2, 2, 1), 2: seed_for(0, 2, 2, 2)}


# -- evaluation in this process -------------------------------------------------------------------------
@pytest.mark.timeout(60)
@pytest.mark.parametrize("config", [ppo, arena], ids=["single-agent", "multi-agent"])
def test_evaluation_in_this_process(config):
    with config().evaluation(evaluation_duration=3).build() as algo:
        evaluation = algo.eval_env_runner_group
        assert isinstance(evaluation, LocalEvaluation)
        first = evaluation.finish(evaluation.start(11))
        assert first["episodes"] == 3 and np.isfinite(first["episode_return_mean"])
        assert evaluation.finish(evaluation.start(11)) == first  # greedy and seeded: the same episodes
        if config is arena:
            assert {"policy_reward_mean/p1", "policy_reward_mean/p2", "agent_return_mean/agent1"} <= set(first)
        result = algo.evaluate()
        assert result["episodes"] == 3 and result["episode_reward_mean"] == result["episode_return_mean"]
        assert algo.num_evaluations == 1
    assert evaluation.env is None and evaluation.runner is None  # closed by stop()


# -- "auto" fragment length --------------------------------------------------------------------------------
def test_auto_fragment_length_means_one_rule_per_family():
    on_policy = (
        PPOConfig().environment("CartPole-v1").env_runners(num_envs_per_env_runner=4).training(train_batch_size=256)
    )
    # on-policy: one fragment of every runner fills the train batch, whichever group samples
    assert on_policy.fragment_length == 64
    assert on_policy.copy().env_runners(sample_async=True, num_sampling_processes=2).fragment_length == 32
    assert on_policy.copy().env_runners(num_env_runners=2).fragment_length == 32
    assert on_policy.copy().env_runners(rollout_fragment_length=10).fragment_length == 10
    # off-policy: train_freq (else 1) steps per env between updates; on Ray, bursts of about 32
    off_policy = DQNConfig().environment("CartPole-v1")
    assert off_policy.fragment_length == 1
    assert off_policy.copy().training(train_freq=4).fragment_length == 4
    assert off_policy.copy().env_runners(num_env_runners=2).fragment_length == 32
    assert off_policy.copy().env_runners(num_env_runners=2).training(train_freq=4).fragment_length == 32
    assert MARWILConfig().fragment_length == 1


# -- Ray (last: after the tests that fork this process) ------------------------------------------------------
@pytest.mark.timeout(300)
def test_ray_groups_and_evaluation_on_ray(local_ray):
    config = ppo(num_env_runners=2, num_cpus_per_env_runner=0.5).evaluation(
        evaluation_duration=3, evaluation_num_env_runners=1
    )
    with config.build() as algo:
        group, evaluation = algo.env_runner_group, algo.eval_env_runner_group
        assert type(group) is RayRunnerGroup and isinstance(group, RunnerGroup)
        assert isinstance(evaluation, RayEvaluation) and isinstance(evaluation, EvaluationGroup)
        sample = group.sample()
        assert isinstance(sample, Sample) and sample.steps == 2 * 2 * algo.config.fragment_length
        assert group.health == {"num_healthy_env_runners": 2, "num_env_runner_restarts": 0} and group.stats == {}
        assert group.num_remote_env_runners() == 2
        group.broadcast()  # every call takes this process's state: nothing to send ahead
        asked = Asked()
        group.reset(asked)
        assert sorted(asked) == [0, 1, 2]  # this process's runner, then each actor
        started = evaluation.start(5)  # the evaluation runner plays while this process samples
        group.sample()
        played = evaluation.finish(started)
        assert played["episodes"] == 3 and np.isfinite(played["episode_return_mean"])
        assert evaluation.finish(evaluation.start(5)) == played  # greedy and seeded: the same episodes
    assert group.remote.actors == [] and evaluation.remote.actors == []
    config = (
        APPOConfig()
        .environment("CartPole-v1")
        .training(**TINY)
        .debugging(seed=0)
        .env_runners(num_env_runners=1, num_envs_per_env_runner=2, num_cpus_per_env_runner=0.5)
    )
    with config.build() as algo:
        group = algo.env_runner_group
        assert type(group) is AsyncRayRunnerGroup and isinstance(group, RunnerGroup)
        assert group.sample().steps >= algo.config.train_batch_size
        assert set(group.stats) == {"policy_lag", "num_fragments"}
        assert group.health == {"num_healthy_env_runners": 1, "num_env_runner_restarts": 0}
        version = group.sampler.version
        group.broadcast()
        assert group.sampler.version == version + 1
        asked = Asked()
        group.reset(asked)
        assert sorted(asked) == [0, 1]
        assert group.sample().steps >= algo.config.train_batch_size
    assert group.sampler is None and group.remote.actors == []
