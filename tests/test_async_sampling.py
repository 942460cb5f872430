"""Sampling while the learner learns (rlarena.rollout.async_sampling), IMPALA and APPO: probe envs and
CartPole learned, a slowed learner with bounded queues, killed and raising runners, checkpoints,
multi-agent with action masks and a growing league, the CLI, and async sampling on Ray actors."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
import torch
from probe_envs import BoomEnv, ConstantTruncatedEnv, ContinuousIdentityEnv, DiscreteIdentityEnv, TwoStepValueEnv

from rlarena import APPO, APPOConfig, IMPALAConfig, PPOConfig
from rlarena.algorithms.dqn import DQNConfig
from rlarena.errors import ConfigError, EnvError
from rlarena.multiagent.policy_spec import PolicySpec


def small(config, **training):
    return (
        config.env_runners(num_envs_per_env_runner=4)
        .training(**{"model": {"fcnet_hiddens": [32]}, **training})
        .debugging(seed=0)
    )


def greedy_mean(algo, episodes=50) -> float:
    algo.config.evaluation_duration = episodes
    return algo.evaluate()["episode_return_mean"]


@pytest.mark.parametrize("config_class", [IMPALAConfig, APPOConfig])
def test_discrete_and_continuous_identity_are_solved(config_class):
    with small(config_class().environment(DiscreteIdentityEnv), lr=3e-3, train_batch_size=64).build() as algo:
        for _ in range(60):
            algo.train()
        assert greedy_mean(algo) >= 0.95
    with small(
        config_class().environment(ContinuousIdentityEnv),
        lr=3e-3,
        train_batch_size=256,
        num_epochs=4,
        minibatch_size=64,
        entropy_coeff=0.0,
    ).build() as algo:
        for _ in range(100):
            algo.train()
        assert greedy_mean(algo) >= -0.05  # the zero action gets -1/3


@pytest.mark.parametrize("config_class", [IMPALAConfig, APPOConfig])
def test_values_stop_at_terminations_and_bootstrap_through_truncations(config_class):
    gamma = 0.9
    with small(config_class().environment(TwoStepValueEnv), gamma=gamma, lr=3e-3, train_batch_size=64).build() as algo:
        for _ in range(150):
            algo.train()
        _, values = algo.get_policy().model(torch.from_numpy(np.stack([TwoStepValueEnv.S0, TwoStepValueEnv.S1])))
        np.testing.assert_allclose(values.detach().numpy(), [gamma, 1.0], atol=0.1)
    with small(
        config_class().environment(ConstantTruncatedEnv), gamma=gamma, lr=3e-3, train_batch_size=64, vf_loss_coeff=1.0
    ).build() as algo:
        for _ in range(300):
            algo.train()
        _, value = algo.get_policy().model(torch.from_numpy(ConstantTruncatedEnv.OBS[None]))
        assert value.item() == pytest.approx(1 / (1 - gamma), rel=0.15)  # truncation-as-termination: ~2.7


@pytest.mark.parametrize("config_class", [IMPALAConfig, APPOConfig])
def test_cartpole_is_learned_with_one_fragment_of_policy_lag(config_class):
    with config_class().environment("CartPole-v1").debugging(seed=0).build() as algo:
        for _ in range(300):
            result = algo.train()
            if result["episode_return_mean"] >= 150:
                break
        assert result["episode_return_mean"] >= 150, result["num_env_steps_sampled_lifetime"]
        # a fragment is sampled with the weights there when its runner starts it: one update behind,
        # or none when the update was done first (timing decides, hence <=)
        assert result["policy_lag"] <= 1.0 and result["num_healthy_env_runners"] == 1
        assert 0.5 < result["mean_rho"] < 1.5


class SlowLearnerPPO(PPOConfig.algo_class):
    def update_policy(self, policy_id, batch):
        time.sleep(0.3)  # the runners could sample many fragments meanwhile
        return super().update_policy(policy_id, batch)


def test_ppo_overlapped_samples_the_next_fragment_while_it_learns():
    config = small(PPOConfig().environment("CartPole-v1"), train_batch_size=256, minibatch_size=64, num_epochs=2)
    algo = SlowLearnerPPO(config.env_runners(sample_async=True))
    try:
        first = algo.train()
        assert first["policy_lag"] == 0.0  # the first fragment: the weights the learner has
        for _ in range(3):
            # sampled while the learner updated on the one before (it takes 0.3 s here): one version behind
            result = algo.train()
            assert result["policy_lag"] == 1.0 and result["num_env_steps_sampled_this_iter"] == 256
        assert algo.env_runner_group.sampler.num_healthy == 1
    finally:
        algo.stop()


def test_a_slowed_learner_still_trains_and_the_queue_stays_bounded():
    config = small(PPOConfig().environment("CartPole-v1"), train_batch_size=64, minibatch_size=32, num_epochs=1)
    config.env_runners(sample_async=True, num_sampling_processes=2, max_requests_in_flight_per_env_runner=2)
    algo = SlowLearnerPPO(config)
    try:
        for _ in range(8):
            result = algo.train()
            # at most 2 fragments per runner exist at any time: what a poll finds is bounded by that
            assert result["num_fragments"] <= 4
            assert algo.env_runner_group.sampler.out.qsize() <= 4
        assert result["num_env_steps_sampled_lifetime"] >= 8 * 64
        assert result["policy_lag"] <= 3
        assert np.isfinite(result["policy_loss"])
    finally:
        algo.stop()


def train_until_replaced(algo, seconds: float) -> dict:
    """Train until one restart is counted and both runners are healthy (or `seconds` pass); the last result."""
    deadline = time.monotonic() + seconds
    while True:
        result = algo.train()
        done = result["num_env_runner_restarts"] == 1 and result["num_healthy_env_runners"] == 2
        if done or time.monotonic() > deadline:
            return result


def test_a_killed_sampling_process_is_replaced_and_without_fault_tolerance_stops_training_with_its_name():
    config = small(APPOConfig().environment("CartPole-v1"), train_batch_size=64)
    config.env_runners(num_sampling_processes=2).fault_tolerance(
        restart_failed_env_runners=True, delay_between_env_runner_restarts_s=0
    )
    with config.build() as algo:
        algo.train()
        os.kill(algo.env_runner_group.sampler.workers[1].proc.pid, signal.SIGKILL)
        result = train_until_replaced(algo, seconds=30)
        assert (result["num_env_runner_restarts"], result["num_healthy_env_runners"]) == (1, 2)
        for _ in range(3):  # the replacement samples
            assert algo.train()["num_env_steps_sampled_this_iter"] >= 64
    config = small(APPOConfig().environment("CartPole-v1"), train_batch_size=64).env_runners(num_sampling_processes=2)
    with (
        config.build() as algo,
        pytest.raises(
            EnvError,
            match=r"Sampling process 2 of 2 \(env 'CartPole-v1'\) "
            r"failed: its process ended .*fault_tolerance\(",
        ),
    ):
        algo.train()
        os.kill(algo.env_runner_group.sampler.workers[1].proc.pid, signal.SIGKILL)
        for _ in range(100):
            algo.train()


def test_an_env_that_raises_in_a_sampling_process_is_reported_with_its_error():
    config = small(IMPALAConfig().environment(BoomEnv), train_batch_size=64)
    with (
        config.build() as algo,
        pytest.raises(
            EnvError,
            match=r"Sampling process 1 of 1 \(env 'BoomEnv'\) failed: "
            r"EnvError: Env 'BoomEnv' raised in step\(\): "
            r"RuntimeError: boom",
        ),
    ):
        algo.train()


def test_checkpoint_round_trip_keeps_the_target_network_and_resume_continues(tmp_path):
    config = small(
        APPOConfig().environment("CartPole-v1"), train_batch_size=128, target_network_update_freq=3, use_kl_loss=True
    )
    with config.build() as algo:
        for _ in range(4):
            algo.train()
        path = algo.save(tmp_path / "ckpt")
        target = {k: v.clone() for k, v in algo.learners["default_policy"].target.state_dict().items()}
        weights = algo.get_policy().get_state()
        kl_coeff = algo.learners["default_policy"].kl_coeff
    restored = APPO.from_checkpoint(path)
    try:
        for k, v in restored.learners["default_policy"].target.state_dict().items():
            torch.testing.assert_close(v, target[k])
        for k, v in restored.get_policy().get_state().items():
            np.testing.assert_array_equal(v, weights[k])
        assert restored.learners["default_policy"].kl_coeff == kl_coeff and restored.iteration == 4
        result = restored.train()
        assert result["training_iteration"] == 5 and result["policy_lag"] == 0.0  # runners started from the checkpoint
        # the target lags the learner by up to target_network_update_freq updates (update 5: not a copy)
        changed = any(
            not torch.equal(v, target[k]) for k, v in restored.learners["default_policy"].target.state_dict().items()
        )
        assert not changed
        assert restored.compute_single_action(np.zeros(4, np.float32), explore=False) in (0, 1)
    finally:
        restored.stop()


def test_multi_agent_with_action_masks_and_a_growing_league():
    from rlarena.games.connect_four.league import ConnectFourLeague
    from rlarena.games.connect_four.opponents import OPPONENTS
    from rlarena.multiagent.league import league_mapping_fn

    config = (
        APPOConfig()
        .environment("connect_four")
        .env_runners(num_envs_per_env_runner=2, num_sampling_processes=2)
        .training(train_batch_size=256, model={"fcnet_hiddens": [16]})
        .multi_agent(
            policies={"learned": PolicySpec(), "random": PolicySpec(policy_class=OPPONENTS["random"])},
            policy_mapping_fn=league_mapping_fn,
            policies_to_train=["learned"],
        )
        .callbacks(ConnectFourLeague)
        .debugging(seed=0)
    )
    with config.build() as algo:
        first = algo.train()  # the league's on_episode_end ran here with the processes' episodes
        assert first["num_env_steps_sampled_this_iter"] >= 256 and first["num_episodes_lifetime"] > 0
        assert first["league/size"] == 1
        algo.callbacks._grow(algo)  # negamax_1 joins: the processes start again with it
        seen = set()
        for _ in range(4):
            batch = algo.sample()["learned"]
            assert batch.behaviour_logp is not None and np.isfinite(batch.behaviour_logp[batch.valid]).all()
            assert batch.action_mask[:-1][batch.valid].any(1).all()
            # a legal action was always taken: its behaviour log-prob is far above the masked logit's
            assert (batch.behaviour_logp[batch.valid] > -50).all()
            seen |= set(batch.eps_ids.tolist())
        assert {pid for pid in algo.episode_stats.policy_window if pid != "learned"} == {"random", "negamax_1"}
        assert {i // 10**12 for i in seen} == {1, 2}  # episode ids unique across the processes


def test_sample_async_is_refused_where_it_does_not_apply():
    with pytest.raises(ConfigError, match="Invalid sample_async=True: DQN samples and learns in turn"):
        DQNConfig().environment("CartPole-v1").env_runners(sample_async=True).build()
    with pytest.raises(ConfigError, match="Invalid vtrace=False: is always on in rlarena's IMPALA and APPO"):
        APPOConfig().environment("CartPole-v1").training(vtrace=False).build()
    assert APPOConfig().update_from_dict({"vtrace": True}).vtrace  # RLlib's APPO files set it
    with pytest.raises(ConfigError, match="max_requests_in_flight_per_env_runner"):
        APPOConfig().environment("CartPole-v1").env_runners(max_requests_in_flight_per_env_runner=0).build()


def test_rlarena_train_algo_appo(tmp_path):
    from rlarena.cli.main import main

    code = main(
        [
            "train",
            "--algo",
            "APPO",
            "--env",
            "CartPole-v1",
            "--stop",
            '{"training_iteration": 3}',
            "--seed",
            "0",
            "--local-dir",
            str(tmp_path),
            "--no-tensorboard",
            "--no-plot",
            "--verbose",
            "0",
        ]
    )
    assert code == 0
    checkpoints = list(tmp_path.rglob("checkpoint_000003"))
    assert checkpoints
    assert main(["evaluate", str(checkpoints[0]), "--episodes", "2"]) == 0


def test_appo_samples_async_on_ray_actors_and_a_killed_actor_is_replaced(local_ray):
    import ray

    config = small(APPOConfig().environment("CartPole-v1"), train_batch_size=64)
    config.env_runners(num_env_runners=2).fault_tolerance(
        restart_failed_env_runners=True, delay_between_env_runner_restarts_s=0
    )
    with config.build() as algo:
        result = algo.train()
        assert result["num_env_steps_sampled_this_iter"] >= 64 and result["num_healthy_env_runners"] == 2
        ray.kill(algo.env_runner_group.remote.actors[1])
        result = train_until_replaced(algo, seconds=60)
        assert (result["num_env_runner_restarts"], result["num_healthy_env_runners"]) == (1, 2)
        assert result["policy_lag"] >= 0


class HangEnv(BoomEnv):
    """Hangs in step() at its 7th step (an env stuck on a lock or a socket)."""

    def step(self, action):
        self._steps += 1
        if self._steps >= self.boom_at:
            time.sleep(3600)
        return np.zeros(2, np.float32), 1.0, False, False, {}


def test_a_hung_sampling_process_is_caught_by_sample_timeout_s():
    config = small(APPOConfig().environment(HangEnv), train_batch_size=64).env_runners(sample_timeout_s=1.0)
    start = time.monotonic()
    with (
        config.build() as algo,
        pytest.raises(
            EnvError,
            match=r"Sampling process 1 of 1 \(env 'HangEnv'\) failed: "
            r"sampled one fragment for longer than sample_timeout_s",
        ),
    ):
        algo.train()
    assert time.monotonic() - start < 60


def test_the_mean_std_filter_learns_from_every_process_and_they_normalize_with_the_learners():
    config = small(PPOConfig().environment("CartPole-v1"), train_batch_size=128, minibatch_size=64, num_epochs=1)
    config.env_runners(sample_async=True, num_sampling_processes=2, observation_filter="MeanStdFilter")
    with config.build() as algo:
        obs_filter = algo.policy.obs_filter
        sent = [obs_filter.get_state()]  # what the processes were forked with
        seen, batches = [], []
        for _ in range(4):
            batch = algo.sample()["default_policy"]
            seen.append(batch.raw_obs[:-1][batch.valid])
            batches.append((batch.raw_obs[0].copy(), batch.obs[0].copy()))
            algo.env_runner_group.broadcast()  # the filter state goes out with the weights
            sent.append(obs_filter.get_state())
        seen = np.concatenate(seen)
        assert obs_filter.count == pytest.approx(len(seen) + 1e-4)
        np.testing.assert_allclose(obs_filter.mean, seen.mean(0), rtol=1e-6, atol=1e-6)

        def normalized(raw, state):
            return np.clip((raw - state["mean"]) / np.sqrt(state["var"] + 1e-8), -10, 10)

        # every env column of every fragment was normalized with statistics the learner sent (a process's
        # own filter, which learns from its observations too, would give other numbers after the first)
        for raw, obs in batches[1:]:
            for column in range(raw.shape[0]):
                assert any(
                    np.allclose(obs[column], normalized(raw[column], state), rtol=1e-5, atol=1e-6) for state in sent
                ), column


def test_a_sampling_process_memory_stays_flat_over_many_fragments():
    pytest.importorskip("Box2D")  # LunarLander's allocations are what grew glibc's heap (limit_heap_growth)

    def rss_mib(pid: int) -> float:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024

    config = PPOConfig().environment("LunarLander-v3").env_runners(num_envs_per_env_runner=16, sample_async=True)
    with config.training(train_batch_size=2048).debugging(seed=0).build() as algo:
        for _ in range(10):
            algo.sample()
        pid = algo.env_runner_group.sampler.workers[0].proc.pid
        before = rss_mib(pid)
        for _ in range(40):  # without the fix: ~3.5 MiB more per fragment, ~140 MiB over these 40
            algo.sample()
        assert rss_mib(pid) - before < 60
