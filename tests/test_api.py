"""The public surface an RLlib user reaches for: inference, evaluation, results, lifetime, the CLI."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import tiny_config, weights
from probe_envs import ContinuousIdentityEnv, DiscreteIdentityEnv

import rlarena
from rlarena import (
    Algorithm,
    CheckpointError,
    ConfigError,
    EnvError,
    PPOConfig,
    RLArenaError,
    TrainingError,
    register_env,
)

RESULT_KEYS = (
    "episode_return_mean",
    "episode_return_min",
    "episode_return_max",
    "episode_len_mean",
    "episodes_this_iter",
    "num_env_steps_sampled_lifetime",
    "training_iteration",
    "time_this_iter_s",
    "env_steps_per_sec",
    "policy_loss",
    "vf_loss",
    "entropy",
    "approx_kl",
    "clip_fraction",
    "explained_variance",
    "episode_reward_mean",
    "timesteps_total",
)


def test_public_names():
    assert callable(register_env) and issubclass(PPOConfig, rlarena.AlgorithmConfig)
    assert issubclass(rlarena.PPO, Algorithm)
    for error in (ConfigError, CheckpointError, EnvError, TrainingError):
        assert issubclass(error, RLArenaError)
    assert issubclass(ConfigError, ValueError)  # a bad value is still a ValueError to generic code
    assert isinstance(rlarena.__version__, str) and rlarena.__version__


# -- results ----------------------------------------------------------------------------------------


def test_result_has_the_documented_numeric_keys(build):
    algo = build(tiny_config(train_batch_size=256))
    algo.train()
    result = algo.train()
    for key in RESULT_KEYS:
        assert key in result, key
        value = result[key]
        assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
    for key in ("policy_loss", "vf_loss", "entropy", "approx_kl", "clip_fraction", "episode_return_mean"):
        assert math.isfinite(result[key]), key
    assert result["training_iteration"] == 2
    assert result["num_env_steps_sampled_lifetime"] == 512
    assert result["episodes_this_iter"] >= 1
    assert result["episode_return_min"] <= result["episode_return_mean"] <= result["episode_return_max"]
    # the old names answer the same values
    assert result["episode_reward_mean"] == result["episode_return_mean"]
    assert result["timesteps_total"] == result["num_env_steps_sampled_lifetime"]
    assert 0.0 <= result["clip_fraction"] <= 1.0
    assert result["entropy"] <= math.log(2) + 1e-6  # two actions


def test_steps_per_iteration_follow_the_derived_fragment_length(build):
    # train_batch_size=100 over 8 envs: ceil(100 / 8) = 13 steps each, 104 in all
    algo = build(tiny_config(num_envs=8, train_batch_size=100, minibatch_size=32))
    assert algo.train()["num_env_steps_sampled_lifetime"] == 104


def test_evaluation_every_n_iterations(build):
    algo = build(tiny_config().evaluation(evaluation_interval=2, evaluation_duration=4))
    first, second = algo.train(), algo.train()
    assert not any(k.startswith("evaluation/") for k in first)
    assert second["evaluation/episodes"] == 4
    assert math.isfinite(second["evaluation/episode_return_mean"])


@pytest.mark.parametrize(("duration", "num_envs"), [(20, 0), (7, 3), (3, 5)])
def test_evaluate_runs_exactly_evaluation_duration_episodes(build, duration, num_envs):
    config = tiny_config().evaluation(evaluation_duration=duration, evaluation_num_envs=num_envs)
    algo = build(config)
    out = algo.evaluate()
    for key in (
        "episode_return_mean",
        "episode_return_std",
        "episode_return_min",
        "episode_return_max",
        "episode_len_mean",
    ):
        assert isinstance(out[key], float) and math.isfinite(out[key]), key
    assert out["episodes"] == duration
    assert out["episode_return_min"] <= out["episode_return_mean"] <= out["episode_return_max"]
    assert out["episode_return_std"] >= 0
    assert out["episode_len_mean"] == out["episode_return_mean"]  # CartPole: +1 per step


def test_evaluate_is_greedy_unless_evaluation_explore(build):
    # ContinuousIdentityEnv, untrained, with a wide std (e^2 = 7.4): the greedy action is the mean,
    # near 0, for a return near E[-x^2] = -1/3; sampled actions are mostly clipped to +-1, for a
    # return near -(1 + 1/3) = -1.33
    config = tiny_config(ContinuousIdentityEnv, model={"fcnet_hiddens": [8], "log_std_init": 2.0})
    greedy = build(config.evaluation(evaluation_duration=50)).evaluate()
    explore = build(config.copy().evaluation(evaluation_duration=50, evaluation_explore=True)).evaluate()
    assert greedy["episodes"] == explore["episodes"] == 50
    assert greedy["episode_len_mean"] == 1.0
    assert greedy["episode_return_mean"] > -0.6
    assert explore["episode_return_mean"] < -0.8


# -- inference --------------------------------------------------------------------------------------


@pytest.fixture
def cartpole(build) -> Algorithm:
    algo = build(tiny_config())
    algo.train()
    return algo


def test_compute_single_action_discrete(cartpole):
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=0)
    action = cartpole.compute_single_action(obs, explore=False)
    assert isinstance(action, int)
    assert env.action_space.contains(action)
    # greedy is deterministic: same obs, same action, every time
    assert {cartpole.compute_single_action(obs, explore=False) for _ in range(20)} == {action}
    for _ in range(5):  # and playing an episode with it works
        obs, _, terminated, truncated, _ = env.step(cartpole.compute_single_action(obs, explore=False))
        if terminated or truncated:
            break
    env.close()


def test_compute_actions_batch(cartpole):
    obs = np.random.default_rng(0).uniform(-0.05, 0.05, (16, 4)).astype(np.float32)
    greedy = cartpole.compute_actions(obs, explore=False)
    assert greedy.shape == (16,) and np.issubdtype(greedy.dtype, np.integer)
    assert set(greedy.tolist()) <= {0, 1}
    np.testing.assert_array_equal(cartpole.compute_actions(obs, explore=False), greedy)
    # per-row: the batch answer is the single answer
    assert [cartpole.compute_single_action(o, explore=False) for o in obs] == greedy.tolist()
    # explore (the default) samples: an almost uniform untrained policy gives both actions
    sampled = cartpole.compute_actions(np.repeat(obs[:1], 200, axis=0))
    assert set(sampled.tolist()) == {0, 1}
    # a list of float64 observations works too
    assert cartpole.compute_actions(obs.astype(np.float64).tolist(), explore=False).tolist() == greedy.tolist()


def test_box_actions_stay_within_bounds(build):
    # a wide initial std makes most raw Gaussian samples fall outside Pendulum's [-2, 2]
    config = tiny_config(
        "Pendulum-v1", train_batch_size=64, minibatch_size=32, model={"fcnet_hiddens": [16], "log_std_init": 2.0}
    )
    algo = build(config)
    algo.train()
    space = gym.make("Pendulum-v1").action_space
    obs = np.random.default_rng(0).uniform(-1, 1, (256, 3)).astype(np.float32)
    for explore in (True, False):
        actions = algo.compute_actions(obs, explore=explore)
        assert actions.shape == (256, 1) and actions.dtype == np.float32
        assert np.all(actions >= space.low) and np.all(actions <= space.high)
    assert np.any(np.abs(algo.compute_actions(obs, explore=True)) == 2.0)  # the clipping did happen
    single = algo.compute_single_action(obs[0], explore=False)
    assert isinstance(single, np.ndarray) and single.shape == (1,) and space.contains(single)


def test_discrete_observations_frozenlake(build):
    algo = build(tiny_config("FrozenLake-v1", train_batch_size=64, minibatch_size=32))
    result = algo.train()
    assert result["training_iteration"] == 1
    assert algo.get_policy().obs_dim == 16  # one-hot of Discrete(16)
    env = gym.make("FrozenLake-v1")
    obs, _ = env.reset(seed=0)
    action = algo.compute_single_action(obs, explore=False)
    assert isinstance(action, int) and env.action_space.contains(action)
    assert algo.compute_actions(np.arange(16), explore=False).shape == (16,)
    assert algo.evaluate()["episodes"] == 10
    env.close()


# -- policy and lifetime ----------------------------------------------------------------------------


def test_get_policy_model_is_a_plain_module(cartpole):
    policy = cartpole.get_policy()
    assert isinstance(policy, rlarena.TorchPolicy)
    assert isinstance(policy.model, torch.nn.Module)
    logits = policy.model.pi(torch.zeros(2, 4))
    assert logits.shape == (2, 2)
    with pytest.raises(ConfigError, match="default_policy"):
        cartpole.get_policy("other")


def test_policy_state_moves_weights_between_algorithms(build, cartpole):
    other = build(tiny_config(seed=123))
    obs = np.random.default_rng(1).uniform(-0.2, 0.2, (64, 4)).astype(np.float32)
    other.get_policy().set_state(cartpole.get_policy().get_state())
    for key, value in weights(cartpole).items():
        torch.testing.assert_close(weights(other)[key], value, rtol=0, atol=0)
    np.testing.assert_array_equal(
        other.compute_actions(obs, explore=False), cartpole.compute_actions(obs, explore=False)
    )
    state = cartpole.get_policy().get_state()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    frozen = {k: v.copy() for k, v in state.items()}
    cartpole.train()  # get_state is a snapshot: training afterwards does not change it
    for key, value in frozen.items():
        np.testing.assert_array_equal(state[key], value, err_msg=key)
    assert any(not np.array_equal(frozen[k], v) for k, v in cartpole.get_policy().get_state().items())


def test_context_manager_stops_the_algorithm():
    config = tiny_config(DiscreteIdentityEnv, train_batch_size=32, minibatch_size=16)
    with config.build() as algo:
        assert algo.train()["training_iteration"] == 1
        algo.evaluate()
        env, eval_env = algo.env, algo.eval_env_runner_group.env
    assert env.closed and eval_env.closed


def test_build_algo_alias_and_repr(build):
    algo = tiny_config().build_algo()
    try:
        assert "PPO" in repr(algo) and "CartPole-v1" in repr(algo)
    finally:
        algo.stop()


# -- the command line -------------------------------------------------------------------------------


def test_console_script_prints_the_version():
    exe = shutil.which("rlarena")
    if exe is None:
        pytest.skip("the rlarena console script is not installed (pip install -e .)")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"rlarena {rlarena.__version__}"


def test_cli_module_prints_the_version():
    out = subprocess.run(
        [sys.executable, "-m", "rlarena.cli.main", "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert rlarena.__version__ in out.stdout
