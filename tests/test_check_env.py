"""check_env: good envs pass quietly; each deliberately broken env is told what it does wrong."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

from rlarena.envs import checker
from rlarena.envs.checker import check_env
from rlarena.errors import EnvError


class GoodEnv(gymnasium.Env):
    """Box(4,) float32 observations, Discrete(2) actions, episodes of 10 steps."""

    def __init__(self) -> None:
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self.t = 0

    def _obs(self) -> np.ndarray:
        return self.np_random.uniform(-1, 1, size=4).astype(np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        return self._obs(), 1.0, self.t >= 10, False, {}


class WrongShapeEnv(GoodEnv):
    def _obs(self):
        return np.zeros(3, dtype=np.float32)


class WrongDtypeEnv(GoodEnv):
    def _obs(self):
        return np.zeros(4, dtype=np.float64)


class OutOfBoundsEnv(GoodEnv):
    def step(self, action):
        obs, *rest = super().step(action)
        obs[0] = 2.0
        return (obs, *rest)


class GridEnv(GoodEnv):
    """Discrete(4) observations, but reset starts in cell 7."""

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = spaces.Discrete(4)

    def _obs(self):
        return 7 if self.t == 0 else int(self.np_random.integers(4))


class OldResetEnv(GoodEnv):
    def reset(self, *, seed=None, options=None):
        return super().reset(seed=seed)[0]


class OldStepEnv(GoodEnv):
    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, terminated or truncated, info


class IntTerminatedEnv(GoodEnv):
    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, int(terminated), truncated, info


class NaNObsEnv(GoodEnv):
    def step(self, action):
        obs, *rest = super().step(action)
        obs[2] = np.nan
        return (obs, *rest)


class BadRewardEnv(GoodEnv):
    reward: object = None

    def step(self, action):
        obs, _, terminated, truncated, info = super().step(action)
        return obs, self.reward, terminated, truncated, info


class NoSeedResetEnv(GoodEnv):
    def reset(self):
        self.t = 0
        return self._obs(), {}


class UnseededEnv(GoodEnv):
    def _obs(self):
        return np.random.default_rng().uniform(-1, 1, size=4).astype(np.float32)


class StepRaisesEnv(GoodEnv):
    def step(self, action):
        raise ValueError("motor 3 overheated")


class Float64ObsEnv(GoodEnv):
    def __init__(self) -> None:
        super().__init__()
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float64)

    def _obs(self):
        return self.np_random.uniform(-1, 1, size=4)


class WideActionEnv(GoodEnv):
    def __init__(self) -> None:
        super().__init__()
        self.action_space = spaces.Box(-5.0, 5.0, shape=(2,), dtype=np.float32)


class MaskedEnv(GoodEnv):
    """Action-masking convention: only action 1 is legal, and an illegal one raises."""

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = spaces.Dict(
            {"observation": self.observation_space, "action_mask": spaces.MultiBinary(2)}
        )

    def _obs(self):
        return {"observation": super()._obs(), "action_mask": np.array([0, 1], dtype=np.int8)}

    def step(self, action):
        if action != 1:
            raise ValueError(f"illegal action {action}")
        return super().step(action)


class MultiDiscreteActionEnv(GoodEnv):
    def __init__(self) -> None:
        super().__init__()
        self.action_space = spaces.MultiDiscrete([2, 3])


class TextActionEnv(GoodEnv):
    def __init__(self) -> None:
        super().__init__()
        self.action_space = spaces.Text(8)


class NoSpacesEnv(GoodEnv):
    def __init__(self) -> None:
        self.t = 0


def passes_quietly(env) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env)


def problems_of(env) -> str:
    with pytest.raises(EnvError) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env)
    return str(info.value)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "FrozenLake-v1"])
def test_registered_ids_pass(env_id):
    passes_quietly(env_id)


def test_pendulum_passes_with_action_scale_warning():
    with pytest.warns(UserWarning, match=r"\[-1, 1\]"):
        check_env("Pendulum-v1")


def test_instance_and_class_pass():
    passes_quietly(gymnasium.make("CartPole-v1"))
    passes_quietly(GoodEnv())
    passes_quietly(GoodEnv)


def test_action_mask_dict_is_accepted_and_masked_actions_are_sampled():
    passes_quietly(MaskedEnv)


def test_wrong_obs_shape():
    message = problems_of(WrongShapeEnv)
    assert "expected shape (4,) float32, got shape (3,) float32" in message


def test_obs_dtype_outside_space():
    message = problems_of(WrongDtypeEnv)
    assert "expected shape (4,) float32, got shape (4,) float64" in message
    assert "astype(np.float32)" in message


def test_old_api_reset():
    message = problems_of(OldResetEnv)
    assert "reset must return (obs, info) — this looks like the old gym<0.26 API" in message


def test_old_api_step():
    assert "split done into terminated and truncated" in problems_of(OldStepEnv)


def test_obs_outside_bounds():
    assert "step's obs[0] = 2.0 is outside observation_space bounds [-1.0, 1.0]" in problems_of(OutOfBoundsEnv)


def test_discrete_obs_outside_space():
    assert "reset's obs is int 7, not in observation_space Discrete(4)" in problems_of(GridEnv)


def test_non_bool_terminated():
    assert "step's terminated is int 0, expected a bool" in problems_of(IntTerminatedEnv)


def test_nan_observation():
    assert "obs contains NaN/inf (obs[2] = nan)" in problems_of(NaNObsEnv)


@pytest.mark.parametrize("reward", [None, "1.0", np.array([1.0]), True])
def test_reward_not_a_number(reward):
    env = BadRewardEnv()
    env.reward = reward
    assert "expected a real number" in problems_of(env)


def test_nan_reward():
    env = BadRewardEnv()
    env.reward = float("nan")
    assert "expected a finite number" in problems_of(env)


def test_reset_without_seed_kwarg():
    message = problems_of(NoSeedResetEnv)
    assert "reset does not accept seed= and options=" in message
    assert "super().reset(seed=seed)" in message


def test_non_deterministic_seeding():
    message = problems_of(UnseededEnv)
    assert "reset(seed=123) does not make the env deterministic" in message
    assert "self.np_random" in message


def test_exception_in_step_names_env_call_and_original_message():
    with pytest.raises(EnvError) as info:
        check_env(StepRaisesEnv())
    message = str(info.value)
    assert "StepRaisesEnv" in message
    assert "step(" in message and "ValueError: motor 3 overheated" in message
    assert isinstance(info.value.__cause__, ValueError)


def test_every_problem_is_listed_and_numbered():
    class TwoProblemsEnv(WrongShapeEnv, IntTerminatedEnv):
        pass

    message = problems_of(TwoProblemsEnv)
    assert "3 problem(s)" in message  # the wrong shape is seen in reset and in step
    assert "\n  1. first reset: reset's obs does not match" in message
    assert "\n  2. step 0: step's obs does not match" in message
    assert "\n  3. step 0: step's terminated is int 0" in message


def test_missing_spaces():
    message = problems_of(NoSpacesEnv)
    assert "env.observation_space is missing" in message
    assert "env.action_space is missing" in message


def test_unknown_id_suggests_closest():
    with pytest.raises(EnvError, match="Did you mean 'CartPole-v1'"):
        check_env("CartPole-v2")


def test_not_an_env():
    with pytest.raises(EnvError, match="Expected one gymnasium.Env"):
        check_env(object())


def test_float64_obs_warns():
    with pytest.warns(UserWarning, match="float64"):
        check_env(Float64ObsEnv)


def test_unnormalized_box_action_warns():
    with pytest.warns(UserWarning, match=r"spans \[-5.0, 5.0\], not \[-1, 1\]"):
        check_env(WideActionEnv)


def test_unsupported_action_space_warns():
    with pytest.warns(UserWarning, match=r"Action space Text\(.*is not supported: use Discrete, Box, MultiDiscrete"):
        check_env(TextActionEnv)


def test_compound_action_spaces_pass_quietly():
    passes_quietly(MultiDiscreteActionEnv)


def test_warn_false_is_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(Float64ObsEnv, warn=False)
        check_env(WideActionEnv, warn=False)


def test_checker_does_not_import_torch():
    # statically: importing the module at run time also runs rlarena/__init__, which imports torch
    imported = []
    for node in ast.walk(ast.parse(Path(checker.__file__).read_text())):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            imported.append(node.module or "")
    assert "gymnasium" in imported
    assert [name for name in imported if name.split(".")[0] == "torch"] == []


# -- image and dict observations -------------------------------------------------------------------
class ImageEnv(GoodEnv):
    """uint8 frames, channels first; `shape`, `high` and `obs_dtype` break it."""

    shape = (3, 16, 16)
    high = 255
    obs_dtype = np.uint8

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = spaces.Box(0, self.high, shape=self.shape, dtype=np.uint8)

    def _obs(self):
        return self.np_random.integers(0, self.high + 1, size=self.shape).astype(self.obs_dtype)


class UnitImageEnv(ImageEnv):
    high = 1


class MiddleChannelsEnv(ImageEnv):
    shape = (16, 3, 16)


class FloatFrameEnv(ImageEnv):
    obs_dtype = np.float32


class DictEnv(GoodEnv):
    """A nested Dict observation: an image, a vector and a (lidar, flag) pair under 'sensors'."""

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = spaces.Dict(
            {
                "image": spaces.Box(0, 255, (3, 8, 8), np.uint8),
                "sensors": spaces.Dict({"lidar": spaces.Box(-1, 1, (3,), np.float32), "flag": spaces.MultiBinary(2)}),
                "pair": spaces.Tuple([spaces.Discrete(3), spaces.Box(-1, 1, (2,), np.float32)]),
            }
        )

    def _obs(self):
        return {
            "image": self.np_random.integers(0, 256, (3, 8, 8)).astype(np.uint8),
            "sensors": {
                "lidar": self.np_random.uniform(-1, 1, 3).astype(np.float32),
                "flag": self.np_random.integers(0, 2, 2).astype(np.int8),
            },
            "pair": (int(self.np_random.integers(3)), self.np_random.uniform(-1, 1, 2).astype(np.float32)),
        }


class LidarOutOfBoundsEnv(DictEnv):
    def step(self, action):
        obs, *rest = super().step(action)
        obs["sensors"]["lidar"][1] = 5.0
        return (obs, *rest)


class LidarFloat64Env(DictEnv):
    def _obs(self):
        obs = super()._obs()
        obs["sensors"]["lidar"] = obs["sensors"]["lidar"].astype(np.float64)
        return obs


class MissingKeyEnv(DictEnv):
    def step(self, action):
        obs, *rest = super().step(action)
        del obs["image"]
        return (obs, *rest)


class ShortTupleEnv(DictEnv):
    def step(self, action):
        obs, *rest = super().step(action)
        obs["pair"] = obs["pair"][:1]
        return (obs, *rest)


class KeyOrderEnv(DictEnv):
    """reset lists the keys as the space does; step lists them in reverse."""

    def step(self, action):
        obs, *rest = super().step(action)
        return ({key: obs[key] for key in reversed(obs)}, *rest)


class TextLeafEnv(GoodEnv):
    def __init__(self) -> None:
        super().__init__()
        self.observation_space = spaces.Dict({"x": spaces.Box(-1, 1, (4,), np.float32), "mission": spaces.Text(8)})

    def _obs(self):
        return {"x": super()._obs(), "mission": "go"}


def warnings_of(env) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    return [str(w.message) for w in caught]


def test_image_and_dict_envs_pass_quietly():
    passes_quietly(ImageEnv)
    passes_quietly(DictEnv)


def test_uint8_image_with_bounds_other_than_pixels_warns():
    (note,) = warnings_of(UnitImageEnv)
    assert "observation_space is a uint8 Box of shape (3, 16, 16) with bounds [0, 1], not [0, 255]" in note


def test_channels_in_the_middle_warn():
    (note,) = warnings_of(MiddleChannelsEnv)
    assert "shape (16, 3, 16): its smallest axis, likely the channels, is the middle one" in note


def test_float_frames_for_a_uint8_image_space():
    message = problems_of(FloatFrameEnv)
    assert "expected shape (3, 16, 16) uint8, got shape (3, 16, 16) float32, which uint8 cannot hold" in message


def test_dict_value_out_of_its_space_names_the_key_path():
    message = problems_of(LidarOutOfBoundsEnv)
    assert (
        "step 0: step's obs['sensors']['lidar'][1] = 5.0 is outside observation_space['sensors']['lidar'] "
        "bounds [-1.0, 1.0]"
    ) in message
    assert "1 problem(s)" in message  # reset's observation is in its space


def test_float64_value_for_a_float32_box():
    message = problems_of(LidarFloat64Env)
    assert (
        "reset's obs['sensors']['lidar'] does not match observation_space['sensors']['lidar']: expected shape "
        "(3,) float32, got shape (3,) float64, which float32 cannot hold (numpy computes in float64"
    ) in message
    assert "astype(np.float32)" in message


def test_missing_dict_key():
    message = problems_of(MissingKeyEnv)
    assert (
        "step's obs lacks ['image']; expected exactly the keys of observation_space: ['image', 'pair', 'sensors']"
        in (message)
    )


def test_tuple_of_the_wrong_length():
    assert "step's obs['pair'] is a tuple of 1, expected a tuple of 2 parts" in problems_of(ShortTupleEnv)


def test_key_order_that_changes_between_reset_and_step():
    message = problems_of(KeyOrderEnv)
    assert "1 problem(s)" in message
    assert (
        "step 0: step's obs lists its keys in the order ['pair', 'sensors', 'image'], the first reset's in the "
        "order ['image', 'sensors', 'pair']"
    ) in message


def test_unreadable_leaf_warns_with_its_path():
    (note,) = warnings_of(TextLeafEnv)
    assert note.startswith("TextLeafEnv: observation_space['mission'] is Text(") and "cannot read" in note


def test_float64_leaf_in_a_dict_warns_with_its_path():
    class Float64DictEnv(GoodEnv):
        def __init__(self) -> None:
            super().__init__()
            self.observation_space = spaces.Dict({"x": spaces.Box(-1, 1, (4,), np.float64)})

        def _obs(self):
            return {"x": self.np_random.uniform(-1, 1, size=4)}

    (note,) = warnings_of(Float64DictEnv)
    assert "observation_space['x'] is a float64 Box" in note
