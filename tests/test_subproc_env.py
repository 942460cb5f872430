"""The batched subprocess vector env steps exactly like an in-process SyncVectorEnv."""

import numpy as np
import pytest

from rlarena import EnvError, PPOConfig
from rlarena.envs.registry import make_vector_env


def test_subproc_matches_sync_including_autoreset():
    n = 5
    sync = make_vector_env("CartPole-v1", {}, n, "sync")
    sub = make_vector_env("CartPole-v1", {}, n, "subproc", num_workers=2)
    try:
        np.testing.assert_array_equal(sync.reset(seed=7)[0], sub.reset(seed=7)[0])
        actions = np.random.default_rng(0).integers(0, 2, (300, n))
        ended = 0
        for a in actions:
            expected, got = sync.step(a), sub.step(a)
            for x, y in zip(expected[:4], got[:4]):
                np.testing.assert_array_equal(x, y)
            ended += int(got[2].sum() + got[3].sum())
        assert ended > 0, "the comparison must cover next-step autoresets"
    finally:
        sync.close()
        sub.close()


class _Boom:
    def __new__(cls, cfg):
        import gymnasium as gym

        class Exploding(gym.Wrapper):
            def step(self, action):
                raise RuntimeError("boom in worker")

        return Exploding(gym.make("CartPole-v1"))


def test_subproc_worker_error_surfaces_with_env_name():
    algo = (
        PPOConfig()
        .environment(lambda cfg: _Boom(cfg))
        .env_runners(num_envs_per_env_runner=2, vectorization_mode="subproc", num_env_workers=2)
        .training(train_batch_size=8, minibatch_size=8)
        .build()
    )
    try:
        with pytest.raises(EnvError, match="boom in worker"):
            algo.train()
    finally:
        algo.stop()


def test_the_calling_process_steps_the_first_share_and_workers_the_rest():
    """num_workers shares: this process steps the first, num_workers - 1 worker processes the others
    (each env is stepped once per step: a nondeterministic env would disagree with itself otherwise)."""
    sub = make_vector_env("CartPole-v1", {}, 6, "subproc", num_workers=3)
    try:
        assert len(sub._procs) == 2 and sub._local.num_envs == 2
    finally:
        sub.close()


_PARENT = {}


def _fails_in_workers(cfg):
    """Builds in the process that made the vector env, raises in its worker processes."""
    import os

    import gymnasium as gym

    if os.getpid() != _PARENT["pid"]:
        raise RuntimeError("cannot build here")
    return gym.make("CartPole-v1")


@pytest.mark.timeout(60)
def test_a_worker_that_cannot_build_its_env_reports_why():
    import os

    _PARENT["pid"] = os.getpid()
    sub = make_vector_env(_fails_in_workers, {}, 4, "subproc", num_workers=2)
    try:
        with pytest.raises(RuntimeError, match="cannot build here"):  # the runner names the env (test above)
            sub.reset(seed=0)
    finally:
        sub.close()
