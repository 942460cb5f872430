"""The env runner's episode returns/lengths (computed per fragment, vectorized) equal a plain
per-step count, across fragment boundaries, terminations, truncations and autoreset steps."""

import numpy as np

from rlarena.rollout.runner import EnvRunner, EpisodeStats
from rlarena.rollout.storage import Rollout


class _Bookkeeping(EnvRunner):
    def __init__(self, num_envs: int):  # only the episode bookkeeping, no env or policy
        self.num_envs, self._finished = num_envs, []
        self._ep_return, self._ep_len = np.zeros(num_envs), np.zeros(num_envs, np.int64)


def test_vectorized_episode_stats_match_a_per_step_count():
    rng = np.random.default_rng(0)
    N, T = 6, 9
    runner = _Bookkeeping(N)
    ret, length, expected = np.zeros(N), np.zeros(N, np.int64), []
    pending = np.zeros(N, bool)  # next-step autoreset: the step after an end only resets
    for _ in range(30):
        buf = Rollout.allocate(T, N, 1, (), np.dtype(np.int64), keep_raw_obs=False)
        for t in range(T):
            buf.valid[t] = ~pending
            buf.rewards[t] = np.where(pending, 0.0, rng.normal(size=N))
            buf.terminated[t] = (rng.random(N) < 0.2) & ~pending
            buf.truncated[t] = (rng.random(N) < 0.1) & ~pending & ~buf.terminated[t]
            ret += buf.rewards[t]
            length += buf.valid[t]
            pending = buf.terminated[t] | buf.truncated[t]
            for i in np.flatnonzero(pending):
                expected.append((ret[i], length[i]))
                ret[i], length[i] = 0, 0
        runner._record_episodes(buf)
    stats = EpisodeStats()
    stats.merge(runner._finished)  # what its next Sample would hand over
    assert stats.lifetime == len(expected) > 100
    got = list(stats.window)
    np.testing.assert_allclose([r for r, _ in got], [r for r, _ in expected[-100:]], rtol=1e-5)
    assert [n for _, n in got] == [int(n) for _, n in expected[-100:]]
