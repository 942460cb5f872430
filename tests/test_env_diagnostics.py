"""An env that returns NaN/inf, or an observation of the wrong shape, is named as the culprit (which env
copy, which agent, at which step of its episode) instead of surfacing later as a diverging loss or a
Gymnasium batching error."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import all_finite, tiny_config

from rlarena import EnvError, PPOConfig, TrainingError
from rlarena.algorithms.config import MODEL_DEFAULTS
from rlarena.envs.multi_agent import MultiAgentEnv
from rlarena.policies.torch_policy import TorchPolicy
from rlarena.rollout.runner import EnvRunner, may_be_non_finite

SMALL = {"train_batch_size": 64, "minibatch_size": 32, "num_epochs": 1}
BOX = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)


class BadEnv(gym.Env):
    """Episodes of `length` steps. In episode `episode` (0: the first), step `at` returns `bad`: a NaN
    observation ("obs"), an inf reward ("reward") or an observation of shape (5,) ("shape").
    `bad_reset` makes that episode's reset() return a NaN observation instead."""

    def __init__(self, config: dict | None = None):
        config = config or {}
        self.at, self.episode, self.length = config.get("at", 17), config.get("episode", 0), config.get("length", 1000)
        self.bad, self.bad_reset = config.get("bad", "obs"), config.get("bad_reset", False)
        self.observation_space, self.action_space = BOX, gym.spaces.Discrete(2)
        self.episodes, self.t = -1, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episodes, self.t = self.episodes + 1, 0
        obs = np.zeros(4, np.float32)
        if self.bad_reset and self.episodes == self.episode:
            obs[1] = np.nan
        return obs, {}

    def step(self, action):
        self.t += 1
        hit = self.bad and self.t == self.at and self.episodes == self.episode
        obs = np.zeros(5 if hit and self.bad == "shape" else 4, np.float32)
        if hit and self.bad == "obs":
            obs[2] = np.nan
        reward = math.inf if hit and self.bad == "reward" else 1.0
        return obs, reward, self.t >= self.length, False, {}


def runner_for(configs: list[dict], fragment_length: int = 8) -> EnvRunner:
    """An EnvRunner over one BadEnv per config (env copy i gets configs[i])."""
    env = gym.vector.SyncVectorEnv(
        [lambda c=c: BadEnv(c) for c in configs], autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP
    )
    policy = TorchPolicy(BOX, gym.spaces.Discrete(2), dict(MODEL_DEFAULTS), seed=0)
    return EnvRunner(env, policy, fragment_length, seed=0, env_name="BadEnv")


def sample_until_error(runner: EnvRunner, fragments: int = 10) -> str:
    try:
        with pytest.raises(EnvError) as info:
            for _ in range(fragments):
                runner.sample()
    finally:
        runner.env.close()
    return str(info.value)


# -- NaN / inf --------------------------------------------------------------------------------------


def test_nan_observation_names_the_env_copy_and_the_step_of_its_episode():
    # copy 3 goes bad at step 4 of its third episode (episodes of 5 steps, each followed by the
    # autoreset step): fragment step 15, the last of the second 8-step fragment
    healthy = {"bad": None, "length": 5}
    runner = runner_for([healthy, healthy, healthy, {"length": 5, "episode": 2, "at": 4}])
    assert sample_until_error(runner) == (
        "Env 'BadEnv' returned a non-finite observation (nan) from step() in env copy 3 at step 4 of its episode: "
        "check the env's step(); rlarena cannot learn from NaN/inf."
    )


def test_step_count_continues_across_fragments():
    runner = runner_for([{"bad": None}, {"at": 21}], fragment_length=8)  # one long episode
    assert "in env copy 1 at step 21 of its episode" in sample_until_error(runner)


def test_inf_reward_stops_training_before_the_update(build):
    algo = build(tiny_config(BadEnv, **SMALL).environment(env_config={"bad": "reward", "at": 20}))
    algo.train()  # 4 envs x 16 steps: clean
    with pytest.raises(EnvError) as info:
        algo.train()
    assert str(info.value) == (
        "Env 'BadEnv' returned a non-finite reward (inf) from step() in env copy 0 at step 20 "
        "of its episode: check the env's step(); rlarena cannot learn from NaN/inf."
    )
    assert algo.iteration == 1 and all_finite(algo)  # no update was made from the bad fragment


def test_nan_observation_with_a_filter_leaves_the_filter_statistics_finite(build):
    config = (
        tiny_config(BadEnv, **SMALL).environment(env_config={"at": 3}).env_runners(observation_filter="MeanStdFilter")
    )
    algo = build(config)
    with pytest.raises(EnvError, match=r"non-finite observation \(nan\) from step\(\) in env copy 0 at step 3 "):
        algo.train()
    obs_filter = algo.get_policy().obs_filter
    assert np.isfinite(obs_filter.mean).all() and np.isfinite(obs_filter.var).all()


def test_nan_from_reset_names_reset(build):
    with pytest.raises(
        EnvError,
        match=r"non-finite observation \(nan\) from reset\(\) in env copy 0: check the "
        r"env's reset\(\)",
    ):
        build(tiny_config(BadEnv, **SMALL).environment(env_config={"bad_reset": True}))
    # and from the autoreset that starts a later episode, mid-fragment
    runner = runner_for([{"bad": None, "length": 3}, {"length": 3, "bad_reset": True, "episode": 1}])
    assert "from reset() in env copy 1: check the env's reset()" in sample_until_error(runner)


def test_a_diverging_update_is_still_called_one():
    config = tiny_config(lr=1e30, grad_clip=None, **SMALL)
    algo = config.build()
    try:
        with pytest.raises(TrainingError, match="its batch is finite, so the update diverged.*Lower lr"):
            for _ in range(10):
                algo.train()
    finally:
        algo.stop()


def test_integer_observations_skip_the_check():
    assert not may_be_non_finite(gym.spaces.Discrete(3))
    assert not may_be_non_finite(gym.spaces.MultiDiscrete([2, 3]))
    assert not may_be_non_finite(gym.spaces.Box(0, 1, (6, 7, 2), np.int8))
    mask = gym.spaces.Box(0, 1, (7,), np.int8)
    assert not may_be_non_finite(
        gym.spaces.Dict({"observation": gym.spaces.Box(0, 1, (3,), np.int8), "action_mask": mask})
    )
    assert may_be_non_finite(gym.spaces.Dict({"observation": BOX, "action_mask": mask}))
    assert may_be_non_finite(BOX)


# -- wrong shapes -----------------------------------------------------------------------------------

SHAPE_ERROR = (
    "Env 'BadEnv' returned an observation of shape (5,) from {call} in env copy {i}; its "
    "observation_space has shape (4,)."
)


def test_wrong_shape_mid_episode_names_the_shapes_and_the_copy():
    runner = runner_for([{"bad": None}, {"bad": None}, {"bad": "shape", "at": 11}])
    assert sample_until_error(runner) == SHAPE_ERROR.format(call="step()", i=2)


def test_wrong_shape_in_training_and_in_evaluation(build):
    algo = build(tiny_config(BadEnv, **SMALL).environment(env_config={"bad": "shape", "at": 5}))
    with pytest.raises(EnvError) as info:
        algo.train()
    assert str(info.value) == SHAPE_ERROR.format(call="step()", i=0)
    assert "Output array is the wrong shape" in str(info.value.__cause__)  # Gymnasium's error is kept
    other = build(tiny_config(BadEnv, **SMALL).environment(env_config={"bad": "shape", "at": 30}))
    with pytest.raises(EnvError) as info:
        other.evaluate()
    assert str(info.value) == SHAPE_ERROR.format(call="step()", i=0)


def test_an_env_raising_by_itself_is_not_called_a_shape_error():
    class Raises(BadEnv):
        def step(self, action):
            raise ValueError("Output array is the wrong shape")  # the env's own, with Gymnasium's words

    env = gym.vector.SyncVectorEnv([lambda: Raises()], autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP)
    policy = TorchPolicy(BOX, gym.spaces.Discrete(2), dict(MODEL_DEFAULTS), seed=0)
    runner = EnvRunner(env, policy, 4, seed=0, env_name="Raises")
    assert sample_until_error(runner) == "Env 'Raises' raised in step(): ValueError: Output array is the wrong shape"


# -- multi-agent ------------------------------------------------------------------------------------


class TwoAgents(MultiAgentEnv):
    """'a' and 'b' move together for 10 steps; at step `at`, 'b' gets the `bad` observation or reward."""

    def __init__(self, config: dict | None = None):
        config = config or {}
        self.at, self.bad = config.get("at", 7), config.get("bad", "obs")
        self.possible_agents = ["a", "b"]
        self.observation_spaces = {p: gym.spaces.Box(-1, 1, (3,), np.float32) for p in self.possible_agents}
        self.action_spaces = {p: gym.spaces.Discrete(2) for p in self.possible_agents}

    def reset(self, *, seed=None, options=None):
        self.t, self.agents = 0, list(self.possible_agents)
        return {p: np.zeros(3, np.float32) for p in self.agents}, {}

    def step(self, action_dict):
        self.t += 1
        obs, rewards = {p: np.zeros(3, np.float32) for p in self.agents}, {p: 1.0 for p in self.agents}
        if self.t == self.at:
            if self.bad == "obs":
                obs["b"][1] = np.nan
            elif self.bad == "reward":
                rewards["b"] = math.nan
            else:
                obs["b"] = np.zeros(2, np.float32)
        done = self.t >= 10
        return obs, rewards, {"a": done, "b": done, "__all__": done}, {"a": False, "b": False, "__all__": False}, {}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            "obs",
            (
                "Env 'TwoAgents' returned a non-finite observation (nan) from step() for agent 'b' in env copy 0 at "
                "step 7 of its episode: check the env's step(); rlarena cannot learn from NaN/inf."
            ),
        ),
        (
            "reward",
            (
                "Env 'TwoAgents' returned a non-finite reward (nan) from step() for agent 'b' in env copy 0 in the "
                "transition from its action at step 7 of its episode: check the env's step(); rlarena cannot learn "
                "from NaN/inf."
            ),
        ),
        (
            "shape",
            (
                "Env 'TwoAgents' returned an observation of shape (2,) for agent 'b' from step() in env copy 0; its "
                "observation space has shape (3,)."
            ),
        ),
    ],
)
def test_multi_agent(build, bad, message):
    config = (
        PPOConfig()
        .environment(TwoAgents, env_config={"bad": bad})
        .env_runners(num_envs_per_env_runner=2)
        .training(train_batch_size=16, minibatch_size=8, num_epochs=1, model={"fcnet_hiddens": [8]})
        .multi_agent(policies=["pa", "pb"], policy_mapping_fn=lambda agent_id, *args, **kw: f"p{agent_id}")
        .debugging(seed=0)
    )
    algo = build(config)
    with pytest.raises(EnvError) as info:
        for _ in range(3):
            algo.train()
    assert str(info.value) == message
    assert all(torch.isfinite(p).all() for pid in ("pa", "pb") for p in algo.get_policy(pid).model.parameters())
