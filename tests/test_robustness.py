"""Failures a user causes are reported as rlarena errors that say what happened, and leave the
algorithm in a sane state (finite weights) rather than silently training on garbage."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from conftest import all_finite, tiny_config
from probe_envs import BoomEnv, NaNRewardEnv

from rlarena import EnvError, RLArenaError, TrainingError

SMALL = {"train_batch_size": 64, "minibatch_size": 32}


# -- numerical blow-ups -----------------------------------------------------------------------------


def test_nan_reward_stops_training_with_finite_weights(build):
    # NaNRewardEnv turns NaN after 20 steps per env: the first iteration (4 envs x 16 steps) is clean
    algo = build(tiny_config(NaNRewardEnv, **SMALL))
    algo.train()
    with pytest.raises(EnvError) as info:  # the env's fault, not a learning rate's (tests/test_env_diagnostics.py)
        for _ in range(5):
            algo.train()
    message = str(info.value)
    assert "NaNRewardEnv" in message and "non-finite reward (nan)" in message
    assert all_finite(algo)
    assert algo.iteration == 1  # the failed iteration is not counted


def test_huge_learning_rate_stops_training_with_finite_weights(build):
    algo = build(tiny_config(lr=1e30, grad_clip=None, **SMALL))
    with pytest.raises(TrainingError):
        for _ in range(10):
            algo.train()
    assert all_finite(algo)
    # the policy is still usable for inference after the error
    obs = np.zeros((3, 4), np.float32)
    assert algo.compute_actions(obs, explore=False).shape == (3,)


def test_training_error_is_an_rlarena_error():
    assert issubclass(TrainingError, RLArenaError)


# -- envs that raise --------------------------------------------------------------------------------


def test_env_raising_mid_episode_is_an_env_error_naming_the_env(build):
    algo = build(tiny_config(BoomEnv, **SMALL))  # raises at its 7th step, inside the first fragment
    with pytest.raises(EnvError) as info:
        algo.train()
    message = str(info.value)
    assert "boom" in message
    assert "BoomEnv" in message
    assert "RuntimeError" in message
    assert isinstance(info.value.__cause__, RuntimeError)  # the original traceback is kept


def test_registered_env_raising_is_named_by_its_registered_name(build, registered_env):
    name = registered_env("rlarena-test-boom", lambda cfg: BoomEnv(**cfg))
    algo = build(tiny_config(name, **SMALL))
    with pytest.raises(EnvError, match="rlarena-test-boom.*boom"):
        algo.train()


def test_env_raising_during_evaluation_is_an_env_error(build):
    algo = build(tiny_config(BoomEnv, **SMALL))
    with pytest.raises(EnvError, match="BoomEnv.*boom"):
        algo.evaluate()


class ResetBoomEnv(BoomEnv):
    def reset(self, *, seed=None, options=None):
        raise RuntimeError("reset boom")


def test_env_raising_in_reset_is_an_env_error(make_config):
    with pytest.raises(EnvError, match="ResetBoomEnv.*reset boom"):
        make_config(ResetBoomEnv, **SMALL).build()


def failing_creator(env_config: dict) -> gym.Env:
    raise ValueError("missing map file")


def test_env_constructor_raising_is_an_env_error(make_config):
    with pytest.raises(EnvError, match="failing_creator.*missing map file"):
        make_config(failing_creator, **SMALL).build()


def test_unsupported_action_space_says_what_is_supported(make_config):
    class TupleActionEnv(BoomEnv):
        def __init__(self):
            super().__init__()
            self.action_space = gym.spaces.Sequence(gym.spaces.Discrete(2))  # Tuple/Dict/MultiDiscrete are supported

    with pytest.raises(RLArenaError, match="Discrete, Box, MultiDiscrete, MultiBinary, or a Tuple or Dict"):
        make_config(TupleActionEnv, **SMALL).build()
