"""Rollouts keep a frame stack a frame per step (rlarena.rollout.frames): what is read back is exactly
what the env returned, at about a quarter of the bytes for 4 frames; the algorithms train on it."""

from __future__ import annotations

from typing import ClassVar

import gymnasium as gym
import numpy as np
import pytest

from rlarena import PPOConfig
from rlarena.algorithms.dqn import DQNConfig
from rlarena.algorithms.impala import IMPALAConfig
from rlarena.rollout.frames import FrameStacks
from rlarena.rollout.storage import Rollout, concat_rollouts


def stream(T: int, N: int, k: int, F: int, seed: int) -> np.ndarray:
    """[T+1, N, k*F] stacks of a random frame stream per env, restarted at random: padded with the first
    frame (gymnasium's FrameStackObservation), with zeros, or with unrelated frames."""
    rng = np.random.default_rng(seed)
    stacks = [list(rng.integers(0, 255, (k, F), dtype=np.uint8)) for _ in range(N)]
    out = np.zeros((T + 1, N, k * F), np.uint8)
    for t in range(T + 1):
        for n in range(N):
            frame, r = rng.integers(0, 255, F, dtype=np.uint8), rng.random()
            if t and r < 0.1:
                stacks[n] = [frame] * k
            elif t and r < 0.15:
                stacks[n] = [np.zeros(F, np.uint8)] * (k - 1) + [frame]
            elif t and r < 0.2:
                stacks[n] = list(rng.integers(0, 255, (k, F), dtype=np.uint8))
            elif t:
                stacks[n] = stacks[n][1:] + [frame]
            out[t, n] = np.concatenate(stacks[n])
    return out


@pytest.mark.parametrize("k", [2, 4])
def test_stacks_read_back_what_was_written_over_two_fragments(k):
    T, N, F = 30, 3, 7
    stacks = FrameStacks(T, N, k, F, np.uint8)
    for seed in (0, 1):  # the storage is reused by the next fragment
        full = stream(T, N, k, F, seed)
        for t in range(T + 1):
            stacks[t] = full[t]
        np.testing.assert_array_equal(np.asarray(stacks), full)
        np.testing.assert_array_equal(stacks[:T], full[:T])
        np.testing.assert_array_equal(stacks[-1], full[-1])
        np.testing.assert_array_equal(stacks[np.array([3, 0, 9]), np.array([2, 0, 1])], full[[3, 0, 9], [2, 0, 1]])
        assert stacks.shape == full.shape and stacks.dtype == np.uint8 and len(stacks) == T + 1


def test_continuing_stacks_cost_a_frame_per_step():
    T, N, k, F = 128, 8, 4, 84 * 84
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (T + k, N, F), dtype=np.uint8)
    stacks = FrameStacks(T, N, k, F, np.uint8)
    for t in range(T + 1):
        stacks[t] = frames[t : t + k].transpose(1, 0, 2).reshape(N, k * F)
    full_bytes = (T + 1) * N * k * F
    assert stacks.nbytes < 0.27 * full_bytes
    assert len(stacks.side) == 0


def test_a_pickled_copy_reads_the_same_and_carries_no_cache():
    import pickle

    T, N, k, F = 10, 2, 4, 6
    full = stream(T, N, k, F, 3)
    stacks = FrameStacks(T, N, k, F, np.uint8)
    for t in range(T + 1):
        stacks[t] = full[t]
    np.asarray(stacks)  # fills the read cache
    data = pickle.dumps(stacks)
    assert len(data) < stacks.nbytes + 2000  # not the cache, nor the last row written
    np.testing.assert_array_equal(np.asarray(pickle.loads(data)), full)


def test_rows_are_written_in_order():
    stacks = FrameStacks(4, 1, 2, 3, np.uint8)
    stacks[0] = np.zeros((1, 6), np.uint8)
    with pytest.raises(IndexError, match="in order: row 2 after row 0"):
        stacks[2] = np.zeros((1, 6), np.uint8)


def test_concat_side_by_side_equals_the_arrays_side_by_side():
    T, k, F = 12, 4, 5
    parts, fulls = [], []
    for seed, N in ((0, 2), (1, 3)):
        full = stream(T, N, k, F, seed)
        ro = Rollout.allocate(
            T, N, k * F, (), np.dtype(np.int64), keep_raw_obs=False, obs_dtype=np.uint8, frames=(k, F)
        )
        assert isinstance(ro.obs, FrameStacks)
        for t in range(T + 1):
            ro.obs[t] = full[t]
        parts.append(ro)
        fulls.append(full)
    both = concat_rollouts(parts)
    assert isinstance(both.obs, FrameStacks)
    np.testing.assert_array_equal(np.asarray(both.obs), np.concatenate(fulls, axis=1))


class StackedFrames(gym.Env):
    """Channels-first stacks of 4 random 6x6 frames, episodes of 5 to 12 steps; reward 1 for action 1."""

    observation_space = gym.spaces.Box(0, 255, (4, 6, 6), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.length = 0, int(self.np_random.integers(5, 13))
        self.stack = np.repeat(self.np_random.integers(0, 255, (1, 6, 6), dtype=np.uint8), 4, 0)
        return self.stack.copy(), {}

    def step(self, action):
        self.t += 1
        frame = self.np_random.integers(0, 255, (1, 6, 6), dtype=np.uint8)
        self.stack = np.concatenate([self.stack[1:], frame])
        return self.stack.copy(), float(action), self.t >= self.length, False, {}


class Recorded(gym.Wrapper):
    """Keeps every observation the env returned (a list shared by the copies of one test)."""

    seen: ClassVar[list] = []

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.seen.append(obs.copy())
        return obs, info

    def step(self, action):
        out = self.env.step(action)
        self.seen.append(out[0].copy())
        return out


def test_the_runner_stores_a_frame_per_step_and_reads_back_what_the_env_returned():
    Recorded.seen = []
    algo = (
        PPOConfig()
        .environment(lambda cfg: Recorded(StackedFrames()))
        .env_runners(num_envs_per_env_runner=1)
        .training(train_batch_size=40, minibatch_size=20, num_epochs=1)
        .debugging(seed=0)
        .build()
    )
    try:
        for _ in range(2):
            batch = algo.runner.sample().batches["default_policy"]
            assert isinstance(batch.obs, FrameStacks)
            stored = np.asarray(batch.obs).reshape(-1, 4, 6, 6)
            # one env: the fragment's 41 observations are the last 41 it returned (row 0: the previous
            # fragment's last)
            np.testing.assert_array_equal(stored, np.stack(Recorded.seen[-41:]))
            assert batch.obs.nbytes < 0.5 * stored.nbytes
    finally:
        algo.stop()


@pytest.mark.parametrize("config", [PPOConfig, IMPALAConfig, DQNConfig])
def test_algorithms_train_on_stored_frame_stacks(config):
    cfg = config().environment(StackedFrames).env_runners(num_envs_per_env_runner=2).debugging(seed=0)
    if config is DQNConfig:
        cfg = cfg.training(
            replay_buffer_config={"capacity": 500},
            num_steps_sampled_before_learning_starts=32,
            train_batch_size=16,
            min_sample_timesteps_per_iteration=32,
        )
    else:
        cfg = cfg.training(train_batch_size=64)
    algo = cfg.build()
    try:
        for _ in range(3):
            result = algo.train()
        assert result["num_env_steps_sampled_lifetime"] >= 64
        assert np.isfinite(algo.evaluate()["env_runners"]["episode_return_mean"])
    finally:
        algo.stop()


@pytest.mark.parametrize("sample_async", [False, True], ids=["sync", "async"])
def test_an_env_registered_by_name_stores_frame_stacks_and_trains(registered_env, sample_async):
    """The path users take: register_env("name", creator), then .environment("name")."""
    name = registered_env("stacked_frames_test", lambda cfg: StackedFrames())
    algo = (
        PPOConfig()
        .environment(name)
        .env_runners(num_envs_per_env_runner=2, sample_async=sample_async)
        .training(train_batch_size=64, minibatch_size=32, num_epochs=1)
        .debugging(seed=0)
        .build()
    )
    try:
        if not sample_async:
            assert isinstance(algo.runner.sample().batches["default_policy"].obs, FrameStacks)
        for _ in range(2):
            result = algo.train()
        assert result["num_env_steps_sampled_lifetime"] >= 64 and np.isfinite(result["policy_loss"])
    finally:
        algo.stop()
