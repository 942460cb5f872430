"""Replay buffers (rollout/replay.py) against numbers computed by hand (the arithmetic is in the comments).

Conventions under test: slot index = row * num_envs + env; an n-step sample of slot t returns
    rewards = sum_{j<k} gamma^j r_{t+j},  discounts = 0 if terminated in the window else gamma^k,
    next_obs = o_{t+k} or the episode's final observation,
with k = n, or fewer when the episode ends inside the window.
"""

from __future__ import annotations

import numpy as np
import pytest

from rlarena.rollout.replay import MinTree, PrioritizedReplayBuffer, ReplayBuffer, ReplaySample, SumTree

BUFFERS = [ReplayBuffer, PrioritizedReplayBuffer]


def add_step(buf, obs, rewards, term, trunc, final=None, valid=None, actions=None):
    obs = np.asarray(obs, np.float32).reshape(buf.num_envs, *buf.obs_shape)
    final = obs if final is None else np.asarray(final, np.float32).reshape(obs.shape)
    actions = np.zeros(buf.num_envs, np.int64) if actions is None else actions
    buf.add(
        obs,
        actions,
        np.asarray(rewards, np.float32),
        np.asarray(term, bool),
        np.asarray(trunc, bool),
        final,
        valid=valid,
    )


def by_slot(sample: ReplaySample) -> dict[int, tuple]:
    """{slot index: (obs, reward, discount, next_obs)} over a sample (repeats agree)."""
    out = {}
    for j, i in enumerate(sample.indices.tolist()):
        row = (
            float(sample.obs[j, 0]),
            float(sample.rewards[j]),
            float(sample.discounts[j]),
            float(sample.next_obs[j, 0]),
        )
        assert out.setdefault(i, row) == row
    return out


# ---------------------------------------------------------------- trees


def test_sum_tree_sums_search_and_updates():
    tree = SumTree(5)  # 8 leaves, 3 unused
    tree.update(np.arange(5), [1.0, 2.0, 3.0, 4.0, 5.0])
    assert tree.reduce() == 15.0
    # prefix sums 0 | 1 | 3 | 6 | 10 | 15: v falls in leaf i when prefix[i] <= v < prefix[i+1]
    v = np.array([0.0, 0.99, 1.0, 2.99, 3.0, 5.99, 6.0, 9.99, 10.0, 14.99])
    np.testing.assert_array_equal(tree.find_prefixsum(v), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    tree.update([2], [0.0])  # leaves 1 2 0 4 5: prefix 0 | 1 | 3 | 3 | 7 | 12
    assert tree.reduce() == 12.0
    np.testing.assert_array_equal(tree.find_prefixsum([2.99, 3.0, 6.99, 7.0, 11.99]), [1, 3, 3, 4, 4])
    np.testing.assert_array_equal(tree[[0, 1, 2, 3, 4]], [1, 2, 0, 4, 5])
    tree.update([0, 4, 0], [7.0, 1.0, 9.0])  # a repeated index: the last value wins -> 9 2 0 4 1
    assert tree.reduce() == 16.0
    assert tree.find_prefixsum([16 - 1e-12])[0] == 4  # rounding at the top never lands on an empty leaf


def test_min_tree_tracks_the_smallest_leaf():
    tree = MinTree(5)
    assert tree.reduce() == np.inf
    tree.update(np.arange(5), [3.0, 2.0, 5.0, 4.0, 6.0])
    assert tree.reduce() == 2.0
    tree.update([1], [np.inf])  # a slot leaving the buffer
    assert tree.reduce() == 3.0
    tree.rebuild(np.array([8.0, 7.0, 0.5, 9.0, 9.0]))
    assert tree.reduce() == 0.5


# ---------------------------------------------------------------- prioritized sampling


def prioritized_four(alpha=0.5):
    """One env, 5 steps, no episode end: slots 0..3 have successors, slot 4 (the newest) does not."""
    buf = PrioritizedReplayBuffer(capacity=8, num_envs=1, obs_shape=(1,), obs_dtype=np.float32, alpha=alpha, seed=0)
    for t in range(5):
        add_step(buf, [t], [0.0], [False], [False])
    buf.update_priorities(np.arange(4), np.array([1.0, 2.0, 3.0, 4.0]))
    return buf


def test_prioritized_frequencies_follow_p_to_the_alpha():
    buf = prioritized_four(alpha=0.5)
    # p^alpha = 1, sqrt2, sqrt3, 2 (sum 6.1463): P = 0.1627, 0.2301, 0.2818, 0.3254
    expected = np.sqrt([1.0, 2.0, 3.0, 4.0]) / np.sqrt([1.0, 2.0, 3.0, 4.0]).sum()
    np.testing.assert_allclose(expected, [0.1627, 0.2301, 0.2818, 0.3254], atol=1e-4)
    counts = np.zeros(8)
    for _ in range(100):  # 100k draws, fixed seed: a binomial sd of ~0.0015 against a tolerance of 0.01
        counts += np.bincount(buf.sample(1000, beta=0.4).indices, minlength=8)
    assert counts[4:].sum() == 0  # the newest slot has no successor yet
    np.testing.assert_allclose(counts[:4] / counts.sum(), expected, atol=0.01)


def test_importance_weights_and_new_transitions_get_max_priority():
    buf = prioritized_four(alpha=0.5)
    s = buf.sample(64, beta=0.4)
    # w_i = (N P(i))^-beta / max_j (N P(j))^-beta with N = 4: the smallest P(0) has weight 1, and
    # w_i = (p_i^a / p_0^a)^-beta = (1, 2^-0.2, 3^-0.2, 4^-0.2) = (1, 0.87055, 0.80274, 0.75786)
    P = np.sqrt([1.0, 2.0, 3.0, 4.0]) / np.sqrt([1.0, 2.0, 3.0, 4.0]).sum()
    w = (4 * P) ** -0.4 / ((4 * P) ** -0.4).max()
    np.testing.assert_allclose(w, [1.0, 0.87055, 0.80274, 0.75786], atol=1e-5)
    np.testing.assert_allclose(s.weights, w[s.indices], rtol=1e-6)
    assert s.weights.dtype == np.float32
    # slot 4 gets its successor: it enters with the largest priority seen (4), leaf 4^0.5 = 2
    add_step(buf, [5], [0.0], [False], [False])
    assert buf._sum[[4]][0] == 2.0
    with pytest.raises(ValueError, match="positive and finite"):
        buf.update_priorities([0], [0.0])


def test_uniform_weights_are_one():
    buf = ReplayBuffer(capacity=8, num_envs=1, obs_shape=(1,), obs_dtype=np.float32, seed=0)
    for t in range(5):
        add_step(buf, [t], [0.0], [False], [False])
    s = buf.sample(100)
    assert np.all(s.weights == 1.0) and set(s.indices.tolist()) == {0, 1, 2, 3}


# ---------------------------------------------------------------- n-step returns


@pytest.mark.parametrize("cls", BUFFERS)
def test_n_step_with_termination_and_truncation(cls):
    """n = 3, gamma = 0.5, two envs. Env 0 (obs 10t, final observations 100 + t):
         t   0  1  2     3  4      5   6   7    8
         r   1  2  4     8  16     32  64  128  -
         end       term     trunc
    Env 1 (obs 1000 + 10t): reward 1 every step, no end."""
    buf = cls(capacity=2 * 16, num_envs=2, obs_shape=(1,), obs_dtype=np.float32, n_step=3, gamma=0.5, seed=0)
    r0 = [1, 2, 4, 8, 16, 32, 64, 128, 256]
    for t in range(9):
        add_step(buf, [10 * t, 1000 + 10 * t], [r0[t], 1.0], [t == 2, False], [t == 4, False], final=[100 + t, 0.0])
    got = by_slot(buf.sample(4000, beta=1.0) if cls is PrioritizedReplayBuffer else buf.sample(4000))
    expected = {
        # env 0 (slot = 2t): slots 0-2 end in the termination at t=2: no bootstrap
        0: (0.0, 1 + 0.5 * 2 + 0.25 * 4, 0.0, 102.0),  # 3
        2: (10.0, 2 + 0.5 * 4, 0.0, 102.0),  # 4
        4: (20.0, 4.0, 0.0, 102.0),
        # the truncation at t=4 bootstraps from the final observation 104 after k = 2 and 1 steps
        6: (30.0, 8 + 0.5 * 16, 0.25, 104.0),  # 16
        8: (40.0, 16.0, 0.5, 104.0),
        10: (50.0, 32 + 0.5 * 64 + 0.25 * 128, 0.125, 80.0),  # 96, next obs o_8
        # env 1 (slot = 2t + 1): 1 + 0.5 + 0.25 = 1.75, gamma^3 = 0.125, o_{t+3}
        **{2 * t + 1: (1000 + 10 * t, 1.75, 0.125, 1000 + 10 * (t + 3)) for t in range(6)},
    }
    # slots of t = 6, 7, 8 wait for their third successor
    assert got == expected


@pytest.mark.parametrize("cls", BUFFERS)
def test_next_step_autoreset_step_is_never_sampled(cls):
    """n = 2, gamma = 0.5, one env under gymnasium's next-step autoreset: t=1 terminates (final obs 91),
    t=2 only resets (valid=False), the new episode starts at t=3."""
    buf = cls(capacity=16, num_envs=1, obs_shape=(1,), obs_dtype=np.float32, n_step=2, gamma=0.5, seed=0)
    steps = [
        (0, 1, False, True),
        (10, 2, True, True),
        (91, 0, False, False),
        (30, 4, False, True),
        (40, 8, False, True),
        (50, 16, False, True),
    ]
    for obs, r, term, valid in steps:
        add_step(buf, [obs], [r], [term], [False], final=[91], valid=np.array([valid]))
    got = by_slot(buf.sample(1000))
    assert got == {0: (0.0, 1 + 0.5 * 2, 0.0, 91.0), 1: (10.0, 2.0, 0.0, 91.0), 3: (30.0, 4 + 0.5 * 8, 0.25, 50.0)}
    with pytest.raises(ValueError, match="previous step did not end an episode"):
        add_step(buf, [60], [0], [False], [False], valid=np.array([False]))


# ---------------------------------------------------------------- ring overwrite


@pytest.mark.parametrize("cls", BUFFERS)
@pytest.mark.parametrize("n_step", [1, 2])
def test_ring_overwrite_never_pairs_a_stale_successor(cls, n_step):
    """4 rows of 2 envs, 11 steps written (o = 100 env + t): rows hold t = 7..10, and after the wrap the row
    after the newest (t=10) is the oldest (t=7); a slot's successor must be o_{t+n}, never an older one.
    Env 1 is truncated at t = 3 (overwritten) and t = 7 (final obs o + 0.5): the end at t = 7 sits in the row
    after the newest, which must not complete the newest slot's window."""
    buf = cls(capacity=8, num_envs=2, obs_shape=(1,), obs_dtype=np.float32, n_step=n_step, gamma=1.0, seed=1)
    for t in range(11):
        add_step(buf, [t, 100 + t], [1.0, 1.0], [False, False], [False, t in (3, 7)], final=[0, 100 + t + 0.5])
    s = buf.sample(2000)
    t, env = s.obs[:, 0] % 100, s.indices % 2
    assert set(t.tolist()) == set(range(7, 11 - n_step))  # the newest n rows wait for successors
    ended = (env == 1) & (t == 7)
    np.testing.assert_array_equal(s.next_obs[:, 0], np.where(ended, s.obs[:, 0] + 0.5, s.obs[:, 0] + n_step))
    np.testing.assert_array_equal(s.rewards, np.where(ended, 1, n_step))
    np.testing.assert_array_equal(s.discounts, 1.0)


@pytest.mark.parametrize("cls", BUFFERS)
def test_final_observations_leave_with_their_rows(cls):
    """Env 0 terminates every step (final obs = o + 0.5): the side store holds at most the 4 live rows' worth."""
    buf = cls(capacity=8, num_envs=2, obs_shape=(1,), obs_dtype=np.float32, n_step=2, gamma=0.5, seed=0)
    for t in range(200):
        add_step(buf, [t, 1000 + t], [1.0, 1.0], [True, False], [False, t % 7 == 6], final=[t + 0.5, 1000 + t + 0.5])
        assert buf._tail - buf._head <= 4 + 1
    assert len(buf._final_keys) <= 16
    s = buf.sample(500)
    env0 = s.indices % 2 == 0
    np.testing.assert_array_equal(s.next_obs[env0, 0], s.obs[env0, 0] + 0.5)
    np.testing.assert_array_equal(s.discounts[env0], 0.0)
    assert set(s.obs[env0, 0].tolist()) == {196.0, 197.0, 198.0, 199.0}


# ---------------------------------------------------------------- memory, dtypes, state


def test_each_observation_stored_once():
    """84x84 uint8 images, 4 envs, 10k transitions, an episode end every 100 steps: about half the bytes of a
    buffer holding obs and next_obs (+ int64 actions, float32 rewards, bool terminated and truncated)."""
    N, capacity = 4, 10_000
    buf = ReplayBuffer(capacity, N, (84, 84), np.uint8, seed=0)
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (N, 84, 84), dtype=np.uint8)
    for t in range(capacity // N):
        ended = np.full(N, t % 100 == 99)
        buf.add(frame, np.zeros(N, np.int64), np.ones(N, np.float32), ended, np.zeros(N, bool), frame)
    naive = capacity * (2 * 84 * 84 + 8 + 4 + 1 + 1)
    assert 0.49 < buf.nbytes / naive < 0.52
    s = buf.sample(32)
    assert s.obs.dtype == s.next_obs.dtype == np.uint8 and s.obs.shape == (32, 84, 84)
    assert s.actions.dtype == np.int64


@pytest.mark.parametrize("cls", BUFFERS)
@pytest.mark.parametrize("steps", [12, 45])  # part full, and wrapped
def test_state_round_trip_samples_identically(cls, steps):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")

    def make(seed):
        return cls(
            capacity=3 * 20,
            num_envs=3,
            obs_shape=(2,),
            obs_dtype=np.float32,
            action_shape=(1,),
            action_dtype=np.float32,
            n_step=3,
            gamma=0.9,
            seed=seed,
        )

    rng = np.random.default_rng(5)
    rows = [
        (
            rng.normal(size=(3, 2)).astype(np.float32),
            rng.normal(size=(3, 1)).astype(np.float32),
            rng.normal(size=3).astype(np.float32),
            rng.random(3) < 0.1,
            rng.random(3) < 0.1,
            rng.normal(size=(3, 2)).astype(np.float32),
        )
        for _ in range(steps + 10)
    ]
    a = make(0)
    for row in rows[:steps]:
        a.add(*row)
    kwargs = {"beta": 0.5} if cls is PrioritizedReplayBuffer else {}
    first = a.sample(16, **kwargs)
    if cls is PrioritizedReplayBuffer:
        a.update_priorities(first.indices, np.abs(first.rewards) + 0.1)
    state = safetensors_numpy.load(safetensors_numpy.save(a.state_dict()))
    b = make(123)
    b.load_state_dict(state)
    for phase in range(2):
        for _ in range(3):
            sa, sb = a.sample(16, **kwargs), b.sample(16, **kwargs)
            for field in ("obs", "actions", "rewards", "next_obs", "discounts", "weights", "indices"):
                np.testing.assert_array_equal(getattr(sa, field), getattr(sb, field), err_msg=field)
        if phase == 0:  # and they go on identically
            for row in rows[steps:]:
                a.add(*row)
                b.add(*row)
    with pytest.raises(ValueError, match="capacity, num_envs and n_step"):
        cls(
            capacity=30,
            num_envs=3,
            obs_shape=(2,),
            obs_dtype=np.float32,
            action_shape=(1,),
            action_dtype=np.float32,
            n_step=3,
        ).load_state_dict(state)


def test_errors_say_what_to_do():
    with pytest.raises(ValueError, match="raise capacity"):
        ReplayBuffer(capacity=4, num_envs=2, obs_shape=(1,), obs_dtype=np.float32, n_step=3)
    buf = ReplayBuffer(capacity=8, num_envs=1, obs_shape=(1,), obs_dtype=np.float32)
    with pytest.raises(ValueError, match="empty"):
        buf.sample(4)
    add_step(buf, [0], [0.0], [False], [False])
    with pytest.raises(ValueError, match="no transition is sampleable yet"):
        buf.sample(4)
    with pytest.raises(ValueError, match=r"expected \(1, 1\)"):
        buf.add(
            np.zeros((2, 1), np.float32),
            np.zeros(1, np.int64),
            np.zeros(1),
            np.zeros(1, bool),
            np.zeros(1, bool),
            np.zeros((1, 1), np.float32),
        )


def test_prioritized_trees_hold_exactly_the_sampleable_slots():
    """After a random stream (wraps, ends, autoreset steps, priority updates) a leaf is positive exactly where the
    slot is sampleable, and every inner node is the sum (min) of its children."""
    buf = PrioritizedReplayBuffer(capacity=3 * 10, num_envs=3, obs_shape=(1,), obs_dtype=np.float32, n_step=3, seed=0)
    rng = np.random.default_rng(3)
    prev_ended = np.zeros(3, bool)
    for t in range(47):
        term, trunc = rng.random(3) < 0.15, rng.random(3) < 0.1
        valid = ~(prev_ended & (rng.random(3) < 0.5))
        add_step(buf, rng.normal(size=3), rng.normal(size=3), term, trunc, valid=valid)
        prev_ended = (term | trunc) & valid
        if t > 5:
            s = buf.sample(8, beta=0.5)
            buf.update_priorities(s.indices, rng.random(8) + 0.1)
    slots = np.arange(len(buf))
    np.testing.assert_array_equal(buf._sum[slots] > 0, buf._sampleable(slots // 3, slots % 3))
    np.testing.assert_array_equal(buf._min[slots] < np.inf, buf._sum[slots] > 0)
    for tree in (buf._sum, buf._min):
        before = tree.tree.copy()
        tree.rebuild(before[tree._leaf0 : tree._leaf0 + tree.capacity])
        np.testing.assert_allclose(tree.tree, before, rtol=1e-12)


# -- frame stacks stored a frame per slot -----------------------------------------------------------------


def _frame_stream(seed: int, num_envs: int, steps: int, k: int = 4, size: int = 6):
    """What a vector env of frame-stacked episodes gives a buffer, as the off-policy algorithms feed it
    (next-step autoreset): stacks [N, k * size] of uint8 frames (reset padding repeats the first frame),
    episodes of random length, some truncated, a few all-zero frames (stacks that repeat by chance)."""
    rng = np.random.default_rng(seed)
    stacks = [None] * num_envs
    pending = np.zeros(num_envs, bool)
    for _ in range(steps):
        obs = np.zeros((num_envs, k * size), np.uint8)
        for e in range(num_envs):
            if stacks[e] is None or pending[e]:
                first = (
                    rng.integers(0, 3, size, dtype=np.uint8)
                    if rng.random() < 0.3
                    else rng.integers(0, 255, size, dtype=np.uint8)
                )
                stacks[e] = [first] * k
            obs[e] = np.concatenate(stacks[e])
        ended = rng.random(num_envs) < 0.08
        terminated = ended & (rng.random(num_envs) < 0.5)
        truncated = ended & ~terminated
        valid = ~pending
        # the next frame: usually fresh, sometimes the same frame again (a still screen)
        finals = np.zeros_like(obs)
        for e in range(num_envs):
            frame = stacks[e][-1] if rng.random() < 0.1 else rng.integers(0, 255, size, dtype=np.uint8)
            stacks[e] = [*stacks[e][1:], frame]
            finals[e] = np.concatenate(stacks[e])
        yield (
            obs,
            rng.integers(0, 3, num_envs),
            rng.random(num_envs).astype(np.float32),
            terminated,
            truncated,
            finals,
            valid,
        )
        pending = ended & valid


@pytest.mark.parametrize("kind", [ReplayBuffer, PrioritizedReplayBuffer])
@pytest.mark.parametrize("capacity", [30, 400])
def test_a_frame_stack_buffer_gives_what_a_full_one_gives_at_a_quarter_of_the_bytes(kind, capacity):
    k, size, N = 4, 6, 3
    full = kind(capacity, N, (k * size,), np.uint8, n_step=3, seed=5)
    framed = kind(capacity, N, (k * size,), np.uint8, n_step=3, seed=5, frames=(k, size))
    assert framed.frames == (k, size)
    for step, (obs, actions, rewards, term, trunc, finals, valid) in enumerate(_frame_stream(1, N, 700)):
        for buffer in (full, framed):
            buffer.add(obs, actions, rewards, term, trunc, finals, valid)
        if step > 10 and step % 7 == 0:
            a, b = full.sample(64), framed.sample(64)
            np.testing.assert_array_equal(a.indices, b.indices)
            np.testing.assert_array_equal(a.obs, b.obs)
            np.testing.assert_array_equal(a.next_obs, b.next_obs)
    assert framed._obs.nbytes * 4 == full._obs.nbytes
    # a checkpoint's state round trips: the same samples from a buffer loaded from it
    restored = kind(capacity, N, (k * size,), np.uint8, n_step=3, seed=0, frames=(k, size))
    restored.load_state_dict({key: np.array(v) for key, v in framed.state_dict().items()})
    a, b = framed.sample(64), restored.sample(64)
    np.testing.assert_array_equal(a.obs, b.obs)
    np.testing.assert_array_equal(a.next_obs, b.next_obs)


def test_dqn_on_a_frame_stack_stores_a_frame_per_slot():
    import gymnasium as gym

    from rlarena.algorithms.dqn import DQNConfig

    class Frames(gym.Env):
        observation_space = gym.spaces.Box(0, 255, (4, 10, 10), np.uint8)
        action_space = gym.spaces.Discrete(2)

        def reset(self, seed=None, options=None):
            super().reset(seed=seed)
            self.t, self.stack = 0, np.repeat(self.np_random.integers(0, 255, (1, 10, 10), dtype=np.uint8), 4, 0)
            return self.stack.copy(), {}

        def step(self, action):
            self.t += 1
            self.stack = np.concatenate([self.stack[1:], self.np_random.integers(0, 255, (1, 10, 10), dtype=np.uint8)])
            return self.stack.copy(), 1.0, False, self.t >= 20, {}

    algo = (
        DQNConfig()
        .environment(Frames)
        .training(
            replay_buffer_config={"capacity": 1000}, num_steps_sampled_before_learning_starts=64, train_batch_size=16
        )
        .debugging(seed=0)
        .build()
    )
    algo.train()
    buffer = algo.learners["default_policy"].buffer
    assert buffer.frames == (4, 100) and buffer._obs.shape[-1] == 100
    sample = buffer.sample(16)
    stacks = sample.obs.reshape(16, 4, 100)
    # a stack's frames are the env's: consecutive frames of one episode (the padded start repeats one)
    assert sample.obs.dtype == np.uint8 and stacks.shape == (16, 4, 100)
    algo.stop()
