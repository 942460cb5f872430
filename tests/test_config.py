"""The config builder: bad keys and values fail with a message naming the key and the closest valid
one; the config round-trips through JSON; every way of naming an env builds."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
from probe_envs import DiscreteIdentityEnv

from rlarena import ConfigError, EnvError, PPOConfig
from rlarena.learners import Learner, piecewise
from rlarena.refs import Trust


def cartpole(**training) -> PPOConfig:
    return PPOConfig().environment("CartPole-v1").training(train_batch_size=128, minibatch_size=64, **training)


# -- unknown keys: fail at once, name the key and the closest valid one -----------------------------


@pytest.mark.parametrize(
    ("method", "typo", "suggestion"),
    [
        ("training", "lamda_", "lambda_"),
        ("training", "minibatchsize", "minibatch_size"),
        ("training", "entropy_coef", "entropy_coeff"),
        ("env_runners", "num_envs_per_runner", "num_envs_per_env_runner"),
        ("evaluation", "evaluation_duraton", "evaluation_duration"),
    ],
)
def test_unknown_builder_key_names_it_and_the_closest_valid_one(method, typo, suggestion):
    with pytest.raises(ConfigError) as info:
        getattr(PPOConfig(), method)(**{typo: 1})
    message = str(info.value)
    assert repr(typo) in message
    assert f"Did you mean {suggestion!r}" in message
    assert f"{method}()" in message  # says which builder method was called


def test_an_option_given_to_the_wrong_builder_method_names_the_right_one():
    with pytest.raises(ConfigError, match=r"training\(\) has no option 'sample_async'\. It is an option of "
                       r"env_runners\(\): \.env_runners\(sample_async=\.\.\.\)"):  # fmt: skip
        PPOConfig().training(sample_async=True)


def test_unknown_key_in_from_dict_is_refused():
    data = cartpole().to_dict()
    data["lamda_"] = 0.9
    with pytest.raises(ConfigError, match="'lamda_'.*'lambda_'"):
        PPOConfig.from_dict(data)


def test_update_from_dict_sets_any_group_and_refuses_unknown_keys():
    config = PPOConfig().update_from_dict({"lr": 1e-3, "seed": 3, "num_envs_per_env_runner": 2})
    assert (config.lr, config.seed, config.num_envs_per_env_runner) == (1e-3, 3, 2)
    with pytest.raises(ConfigError, match="'gama'.*'gamma'"):
        config.update_from_dict({"gama": 0.9})


# -- bad values and combinations: fail in build() naming the key ------------------------------------


@pytest.mark.parametrize(
    ("training", "key"),
    [
        ({"lr": -1e-3}, "lr"),
        ({"lr": 0.0}, "lr"),
        ({"gamma": 1.5}, "gamma"),
        ({"gamma": 0.0}, "gamma"),
        ({"lambda_": 1.2}, "lambda_"),
        ({"clip_param": 0.0}, "clip_param"),
        ({"num_epochs": 0}, "num_epochs"),
        ({"grad_clip": -1.0}, "grad_clip"),
        ({"vf_clip_param": 0.0}, "vf_clip_param"),
        ({"target_kl": -0.01}, "target_kl"),
        ({"vf_loss_coeff": -0.5}, "vf_loss_coeff"),
        ({"lr_schedule": [[0, 1e-3, 5]]}, "lr_schedule"),
        ({"lr_schedule": [[0, -1e-3]]}, "lr_schedule"),
    ],
)
def test_out_of_range_value_names_the_key(training, key):
    config = cartpole(**training)
    with pytest.raises(ConfigError, match=f"Invalid {key}="):
        config.build()


def test_minibatch_larger_than_batch_names_both():
    config = cartpole().training(train_batch_size=64, minibatch_size=256)
    with pytest.raises(ConfigError) as info:
        config.build()
    message = str(info.value)
    assert "minibatch_size=256" in message and "train_batch_size=64" in message


def test_bad_observation_filter_suggests_the_valid_one():
    config = cartpole().env_runners(observation_filter="MeanStd")
    with pytest.raises(ConfigError) as info:
        config.build()
    message = str(info.value)
    assert "observation_filter='MeanStd'" in message
    assert "'MeanStdFilter'" in message and "NoFilter" in message


def test_bad_vectorization_mode_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="vectorization_mode='asynch'.*'async'"):
        cartpole().env_runners(vectorization_mode="asynch").build()


def test_unknown_model_key_suggests_the_closest():
    with pytest.raises(ConfigError) as info:
        cartpole(model={"fcnet_hidden": [32]}).build()
    message = str(info.value)
    assert "'fcnet_hidden'" in message and "Did you mean 'fcnet_hiddens'" in message


def test_bad_activation_suggests_the_closest():
    with pytest.raises(ConfigError, match="'tahn'.*'tanh'"):
        cartpole(model={"fcnet_activation": "tahn"}).build()


def test_a_negative_number_of_env_runners_is_refused_with_a_reason():
    with pytest.raises(ConfigError, match="num_env_runners=-1.*>= 0"):
        cartpole().env_runners(num_env_runners=-1).build()


def test_missing_env_says_how_to_set_one():
    with pytest.raises(ConfigError, match=r"\.environment\("):
        PPOConfig().build()


@pytest.mark.parametrize("typo", ["Cartpole-v1", "CartPole-v9", "CartPol-v1"])
def test_unknown_env_id_suggests_a_cartpole_id(typo):
    # (CartPole-v0 itself is a registered Gymnasium id, so it is not a typo)
    with pytest.raises(EnvError) as info:
        cartpole().environment(typo).build()
    message = str(info.value)
    assert repr(typo) in message
    assert "Did you mean 'CartPole-v" in message


def test_env_that_is_not_a_gymnasium_env_is_refused():
    class NotAnEnv:
        pass

    with pytest.raises(EnvError, match="NotAnEnv"):
        cartpole().environment(NotAnEnv).build()


# -- derived values are properties ------------------------------------------------------------------


def test_fragment_length_is_derived_from_batch_and_num_envs():
    config = PPOConfig().env_runners(num_envs_per_env_runner=8).training(train_batch_size=100)
    assert config.fragment_length == 13  # ceil(100 / 8)
    config.training(train_batch_size=256)
    assert config.fragment_length == 32  # follows later changes: it is computed, not stored
    config.env_runners(rollout_fragment_length=5)
    assert config.fragment_length == 5


def test_model_config_fills_defaults():
    config = PPOConfig().training(model={"fcnet_hiddens": [8]})
    assert config.model_config["fcnet_hiddens"] == [8]
    assert config.model_config["fcnet_activation"] == "tanh"


def test_lr_schedule_interpolates_over_env_steps():
    schedule = [[0, 1e-3], [10_000, 0.0]]
    assert piecewise(schedule, 0) == pytest.approx(1e-3)
    assert piecewise(schedule, 2_500) == pytest.approx(7.5e-4)  # 1e-3 * (1 - 2500/10000)
    assert piecewise(schedule, 50_000) == 0.0  # held at the last value
    own = Learner("p", None, PPOConfig().training(lr=3e-4, lr_schedule=schedule), "PPO")
    own.base_lrs["critic"] = 6e-4  # an optimizer with a learning rate of its own follows the ratio
    assert own.lr("critic", 2_500) == pytest.approx(7.5e-4 * 2)
    assert Learner("p", None, PPOConfig().training(lr=3e-4), "PPO").base_lrs == {}


def test_lr_schedule_sets_the_learning_rate_of_each_iteration(build):
    config = cartpole(lr_schedule=[[0, 1e-3], [10_000, 0.0]], num_epochs=1).debugging(seed=0)
    algo = build(config)
    result = algo.train()
    # after 128 sampled env steps: 1e-3 * (1 - 128/10000) = 9.872e-4
    assert result["cur_lr"] == pytest.approx(9.872e-4)
    # after 256: 1e-3 * (1 - 256/10000) = 9.744e-4
    assert algo.train()["cur_lr"] == pytest.approx(9.744e-4)


# -- serialization ----------------------------------------------------------------------------------


def full_config(env) -> PPOConfig:
    return (
        PPOConfig()
        .environment(env, env_config={"n": 4})
        .env_runners(num_envs_per_env_runner=3, observation_filter="MeanStdFilter")
        .training(
            lr=1e-3,
            gamma=0.9,
            lambda_=0.8,
            clip_param=0.1,
            train_batch_size=96,
            minibatch_size=32,
            num_epochs=3,
            entropy_coeff=0.01,
            vf_loss_coeff=0.25,
            grad_clip=1.0,
            model={"fcnet_hiddens": [8, 8], "vf_share_layers": True},
            lr_schedule=[[0, 1e-3], [1000, 1e-4]],
            vf_clip_param=10.0,
            target_kl=0.05,
        )
        .evaluation(evaluation_interval=2, evaluation_duration=7)
        .debugging(seed=11)
    )


@pytest.mark.parametrize("env", ["CartPole-v1", DiscreteIdentityEnv], ids=["gym-id", "env-class"])
def test_to_dict_from_dict_round_trip_through_json(env):
    config = full_config(env)
    text = json.dumps(config.to_dict())  # JSON-serializable as it is, no default= needed
    restored = PPOConfig.from_dict(json.loads(text), Trust.create(["probe_envs"]))
    assert restored == config
    assert restored.env == env  # a class of a trusted module comes back as the same class, imported by name
    assert restored.to_dict() == config.to_dict()


def test_lambda_env_config_still_serializes():
    # a lambda cannot be named; the config still writes JSON, and says so when read back
    config = PPOConfig().environment(lambda cfg: DiscreteIdentityEnv())
    text = json.dumps(config.to_dict())
    restored = PPOConfig.from_dict(json.loads(text))
    with pytest.raises(EnvError, match="from_checkpoint|register_env"):
        restored.build()


def test_registered_name_with_a_colon_round_trips(registered_env):
    # register_env accepts any string; names like "games:connect4" must come back as the same name,
    # not be mistaken for a "module:qualname" import path.
    name = registered_env("rlarena-test:counting", creator)
    restored = PPOConfig.from_dict(json.loads(json.dumps(PPOConfig().environment(name).to_dict())))
    assert restored.env == name


def test_from_dict_defaults_missing_keys():
    restored = PPOConfig.from_dict({"env": "CartPole-v1", "lr": 1e-3})
    assert restored.lr == 1e-3 and restored.gamma == PPOConfig().gamma


def test_build_copies_the_config(build):
    config = cartpole(num_epochs=1).debugging(seed=0)
    algo = build(config)
    config.training(lr=123.0)
    assert algo.config.lr == 3e-4  # changing the builder afterwards does not reach a built algorithm


# -- every way of naming an env builds --------------------------------------------------------------


class CountingEnv(gym.Env):
    """An env class taking its config as a dict (RLlib's convention)."""

    def __init__(self, config: dict | None = None):
        self.size = (config or {}).get("size", 3)
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (self.size,), np.float32)
        self.action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(self.size, np.float32), {}

    def step(self, action):
        return np.zeros(self.size, np.float32), 1.0, True, False, {}


class KwargsEnv(CountingEnv):
    """An env class taking keyword arguments (Gymnasium's convention)."""

    def __init__(self, size: int = 3):
        super().__init__({"size": size})


def creator(env_config: dict) -> gym.Env:
    return CountingEnv(env_config)


@pytest.mark.parametrize("how", ["class", "class-kwargs", "creator", "lambda", "registered", "gym-id"])
def test_env_can_be_given_every_way(how, build, registered_env):
    env = {
        "class": CountingEnv,
        "class-kwargs": KwargsEnv,
        "creator": creator,
        "lambda": lambda cfg: CountingEnv(cfg),
        "registered": registered_env("rlarena-test-counting", creator),
        "gym-id": "CartPole-v1",
    }[how]
    env_config = {} if how == "gym-id" else {"size": 5}
    config = (
        PPOConfig()
        .environment(env, env_config=env_config)
        .env_runners(num_envs_per_env_runner=2)
        .training(train_batch_size=16, minibatch_size=8, num_epochs=1, model={"fcnet_hiddens": [4]})
        .debugging(seed=0)
    )
    algo = build(config)
    result = algo.train()
    assert result["training_iteration"] == 1
    expected_dim = 4 if how == "gym-id" else 5  # env_config reached the env
    assert algo.get_policy().obs_dim == expected_dim
