"""compute_gae against numbers computed by hand (the arithmetic is in the comments).

Conventions under test (rollout/gae.py):
    delta_t = r_t + gamma * (1 - terminated_t) * next_values_t - values_t
    A_t     = delta_t + gamma * lam * (1 - done_t) * A_{t+1},   done = terminated | truncated
    returns = A + values
next_values[t] is V of the observation the env returned at step t; at a truncation that is the
episode's final observation, so a time limit bootstraps from it, and a termination does not.

Every case uses T = 3 steps and N = 2 envs; arrays are [T, N], so column j is env j.
"""

from __future__ import annotations

import numpy as np
import pytest

from rlarena.rollout.gae import compute_gae

F, T_ = False, True


def cols(*columns: list) -> np.ndarray:
    """Stack per-env columns into a [T, N] array (column j = env j)."""
    return np.array(columns, dtype=np.float32).T.copy()


def flags(*columns: list) -> np.ndarray:
    return np.array(columns, dtype=bool).T.copy()


def gae(rewards, values, terminated, truncated, next_values, gamma, lam):
    adv, ret = compute_gae(rewards, values, terminated, truncated, next_values, gamma, lam)
    assert adv.shape == ret.shape == rewards.shape
    assert adv.dtype == np.float32
    np.testing.assert_allclose(ret, adv + values, rtol=0, atol=1e-6)  # value targets are A + V
    return adv, ret


# Env 0 throughout: one episode running through the whole fragment.
#   rewards r = [1, 2, 3], V(s_t) = [0.5, 1.0, 1.5], V(s_{t+1}) = [1.0, 1.5, 2.0]
R0, V0, NV0 = [1, 2, 3], [0.5, 1.0, 1.5], [1.0, 1.5, 2.0]


def test_plain_continuation_and_termination():
    gamma, lam = 0.5, 0.5  # gamma * lam = 0.25
    # env 1: terminates at t=1 (V of the terminal obs, 99, must be ignored); t=2 starts a new episode
    rewards = cols(R0, [1, 1, 1])
    values = cols(V0, [2.0, 1.0, 0.5])
    next_values = cols(NV0, [1.0, 99.0, 0.25])
    terminated = flags([F, F, F], [F, T_, F])
    truncated = flags([F, F, F], [F, F, F])
    adv, ret = gae(rewards, values, terminated, truncated, next_values, gamma, lam)

    # env 0: delta_0 = 1 + 0.5*1.0 - 0.5 = 1.0
    #        delta_1 = 2 + 0.5*1.5 - 1.0 = 1.75
    #        delta_2 = 3 + 0.5*2.0 - 1.5 = 2.5
    #        A_2 = 2.5;  A_1 = 1.75 + 0.25*2.5 = 2.375;  A_0 = 1.0 + 0.25*2.375 = 1.59375
    #        returns = A + V = [2.09375, 3.375, 4.0]
    np.testing.assert_allclose(adv[:, 0], [1.59375, 2.375, 2.5], rtol=1e-6)
    np.testing.assert_allclose(ret[:, 0], [2.09375, 3.375, 4.0], rtol=1e-6)
    # env 1: delta_0 = 1 + 0.5*1.0 - 2.0 = -0.5
    #        delta_1 = 1 + 0 (terminated: no bootstrap, the 99 is ignored) - 1.0 = 0.0
    #        delta_2 = 1 + 0.5*0.25 - 0.5 = 0.625
    #        A_2 = 0.625;  A_1 = 0.0 + 0 (episode ended: A_2 belongs to the next one) = 0.0
    #        A_0 = -0.5 + 0.25*0.0 = -0.5
    #        returns = [1.5, 1.0, 1.125]
    np.testing.assert_allclose(adv[:, 1], [-0.5, 0.0, 0.625], rtol=1e-6)
    np.testing.assert_allclose(ret[:, 1], [1.5, 1.0, 1.125], rtol=1e-6)


def test_truncation_bootstraps_from_the_final_observation():
    gamma, lam = 0.5, 0.5
    # env 1: the same numbers as the termination case above, but the episode is *truncated* at
    # t=1, and V(final obs) = 4.0 is what it must bootstrap from (not V of the reset obs, 0.5)
    rewards = cols(R0, [1, 1, 1])
    values = cols(V0, [2.0, 1.0, 0.5])
    next_values = cols(NV0, [1.0, 4.0, 0.25])
    terminated = flags([F, F, F], [F, F, F])
    truncated = flags([F, F, F], [F, T_, F])
    adv, ret = gae(rewards, values, terminated, truncated, next_values, gamma, lam)

    # env 1: delta_0 = 1 + 0.5*1.0 - 2.0 = -0.5
    #        delta_1 = 1 + 0.5*4.0 (bootstrap from V(final obs)) - 1.0 = 2.0
    #        delta_2 = 1 + 0.5*0.25 - 0.5 = 0.625
    #        A_2 = 0.625;  A_1 = 2.0 + 0 (the episode ended: the chain is cut) = 2.0
    #        A_0 = -0.5 + 0.25*2.0 = 0.0
    #        returns = [2.0, 3.0, 1.125]
    np.testing.assert_allclose(adv[:, 1], [0.0, 2.0, 0.625], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ret[:, 1], [2.0, 3.0, 1.125], rtol=1e-6)
    # env 0 is unaffected by env 1's episode end
    np.testing.assert_allclose(adv[:, 0], [1.59375, 2.375, 2.5], rtol=1e-6)


def test_terminated_and_truncated_at_once_is_a_termination():
    # Gymnasium allows both flags on one step; the episode really ended, so no bootstrap
    gamma, lam = 0.5, 0.5
    rewards = cols(R0, [1, 1, 1])
    values = cols(V0, [2.0, 1.0, 0.5])
    next_values = cols(NV0, [1.0, 4.0, 0.25])
    both = flags([F, F, F], [F, T_, F])
    adv, _ = gae(rewards, values, both, both, next_values, gamma, lam)
    # env 1 is the termination case: A = [-0.5, 0.0, 0.625]
    np.testing.assert_allclose(adv[:, 1], [-0.5, 0.0, 0.625], rtol=1e-6)


def test_lambda_zero_gives_one_step_td_errors():
    gamma = 0.5
    rewards = cols(R0, [1, 1, 1])
    values = cols(V0, [2.0, 1.0, 0.5])
    next_values = cols(NV0, [1.0, 4.0, 0.25])
    none = flags([F, F, F], [F, F, F])
    adv, ret = gae(rewards, values, none, none, next_values, gamma, lam=0.0)
    # A_t = delta_t = r_t + gamma * V(s_{t+1}) - V(s_t)
    # env 0: [1 + 0.5*1.0 - 0.5, 2 + 0.5*1.5 - 1.0, 3 + 0.5*2.0 - 1.5] = [1.0, 1.75, 2.5]
    # env 1: [1 + 0.5*1.0 - 2.0, 1 + 0.5*4.0 - 1.0, 1 + 0.5*0.25 - 0.5] = [-0.5, 2.0, 0.625]
    np.testing.assert_allclose(adv[:, 0], [1.0, 1.75, 2.5], rtol=1e-6)
    np.testing.assert_allclose(adv[:, 1], [-0.5, 2.0, 0.625], rtol=1e-6)
    # the value target is then the one-step TD target r_t + gamma * V(s_{t+1})
    np.testing.assert_allclose(ret[:, 0], [1.5, 2.75, 4.0], rtol=1e-6)


def test_lambda_one_gives_discounted_returns_minus_values():
    gamma = 0.5
    rewards = cols(R0, [1, 1, 1])
    values = cols(V0, [2.0, 1.0, 0.5])
    next_values = cols(NV0, [1.0, 4.0, 0.25])
    none = flags([F, F, F], [F, F, F])
    adv, ret = gae(rewards, values, none, none, next_values, gamma, lam=1.0)
    # env 0: the bootstrapped discounted return G_t = r_t + gamma * G_{t+1}, G_3 = V(s_3) = 2.0
    #        G_2 = 3 + 0.5*2.0 = 4.0;  G_1 = 2 + 0.5*4.0 = 4.0;  G_0 = 1 + 0.5*4.0 = 3.0
    #        A = G - V = [3.0 - 0.5, 4.0 - 1.0, 4.0 - 1.5] = [2.5, 3.0, 2.5]
    np.testing.assert_allclose(ret[:, 0], [3.0, 4.0, 4.0], rtol=1e-6)
    np.testing.assert_allclose(adv[:, 0], [2.5, 3.0, 2.5], rtol=1e-6)
    # env 1: its next_values are not a single chain (next_values[1] = 4.0 != values[2] = 0.5), so
    # the sum does not telescope to G - V; by the recursion with delta = [-0.5, 2.0, 0.625]:
    #        A_2 = 0.625;  A_1 = 2.0 + 0.5*0.625 = 2.3125;  A_0 = -0.5 + 0.5*2.3125 = 0.65625
    np.testing.assert_allclose(adv[:, 1], [0.65625, 2.3125, 0.625], rtol=1e-6)


def test_lambda_one_gamma_one_termination_gives_reward_to_go():
    # Monte Carlo: with gamma = lam = 1 and the episode terminating at the last step, the value
    # target is the undiscounted reward-to-go whatever the values are.
    rewards = cols([1, 2, 3], [5, 0, 1])
    values = cols([10.0, -3.0, 7.0], [0.0, 2.0, -1.0])
    next_values = cols([-3.0, 7.0, 123.0], [2.0, -1.0, 55.0])
    terminated = flags([F, F, T_], [F, F, T_])
    none = flags([F, F, F], [F, F, F])
    _, ret = gae(rewards, values, terminated, none, next_values, gamma=1.0, lam=1.0)
    # env 0: [1+2+3, 2+3, 3] = [6, 5, 3];  env 1: [5+0+1, 0+1, 1] = [6, 1, 1]
    np.testing.assert_allclose(ret[:, 0], [6, 5, 3], rtol=1e-6)
    np.testing.assert_allclose(ret[:, 1], [6, 1, 1], rtol=1e-6)


def test_four_steps_with_episode_end_mid_fragment():
    # T = 4, gamma = 0.9, lam = 0.8 (gamma*lam = 0.72); env 0 truncates at t=1, env 1 terminates at t=2
    gamma, lam = 0.9, 0.8
    rewards = cols([1, 1, 1, 1], [0, 0, 1, 0])
    values = cols([1.0, 2.0, 0.0, 1.0], [0.5, 0.5, 0.5, 0.0])
    next_values = cols([2.0, 3.0, 1.0, 1.0], [0.5, 0.5, 9.0, 0.0])
    terminated = flags([F, F, F, F], [F, F, T_, F])
    truncated = flags([F, T_, F, F], [F, F, F, F])
    adv, _ = gae(rewards, values, terminated, truncated, next_values, gamma, lam)
    # env 0: delta = [1 + 0.9*2 - 1, 1 + 0.9*3 - 2, 1 + 0.9*1 - 0, 1 + 0.9*1 - 1] = [1.8, 1.7, 1.9, 0.9]
    #        A_3 = 0.9;  A_2 = 1.9 + 0.72*0.9 = 2.548
    #        A_1 = 1.7 (truncated at t=1: chain cut, but delta_1 bootstrapped from 3.0)
    #        A_0 = 1.8 + 0.72*1.7 = 3.024
    np.testing.assert_allclose(adv[:, 0], [3.024, 1.7, 2.548, 0.9], rtol=1e-6)
    # env 1: delta = [0 + 0.9*0.5 - 0.5, 0 + 0.9*0.5 - 0.5, 1 + 0 (terminated) - 0.5, 0 + 0 - 0]
    #              = [-0.05, -0.05, 0.5, 0.0]
    #        A_3 = 0.0;  A_2 = 0.5 (chain cut);  A_1 = -0.05 + 0.72*0.5 = 0.31
    #        A_0 = -0.05 + 0.72*0.31 = 0.1732
    np.testing.assert_allclose(adv[:, 1], [0.1732, 0.31, 0.5, 0.0], rtol=1e-5, atol=1e-7)


def test_inputs_are_not_modified():
    rewards = cols(R0, [1, 1, 1])
    values = cols(V0, [2.0, 1.0, 0.5])
    next_values = cols(NV0, [1.0, 4.0, 0.25])
    terminated = flags([F, F, F], [F, T_, F])
    truncated = flags([F, F, T_], [F, F, F])
    before = [a.copy() for a in (rewards, values, terminated, truncated, next_values)]
    compute_gae(rewards, values, terminated, truncated, next_values, 0.99, 0.95)
    for a, b in zip((rewards, values, terminated, truncated, next_values), before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
def test_single_step_fragment_is_the_td_error(lam):
    # With T = 1 there is nothing to accumulate: A_0 = delta_0 for any lambda.
    rewards = np.array([[1.0, -1.0]], np.float32)
    values = np.array([[0.5, 0.5]], np.float32)
    next_values = np.array([[2.0, 2.0]], np.float32)
    terminated = np.array([[False, True]])
    truncated = np.array([[False, False]])
    adv, _ = gae(rewards, values, terminated, truncated, next_values, 0.5, lam)
    # env 0: 1 + 0.5*2 - 0.5 = 1.5;  env 1 (terminated): -1 - 0.5 = -1.5
    np.testing.assert_allclose(adv, [[1.5, -1.5]], rtol=1e-6)


# -- the rollout layer's other estimator: the running mean/std behind observation_filter ------------


def test_running_mean_std_matches_the_pooled_statistics():
    from rlarena.nn.normalize import RunningMeanStd

    rms = RunningMeanStd((2,))
    rms.update(np.array([[1.0, 10.0], [3.0, 10.0]]))
    rms.update(np.array([[5.0, 40.0]]))
    # pooled over the three rows: column 0 = {1, 3, 5}: mean 3, var ((-2)^2 + 0 + 2^2) / 3 = 8/3
    #                             column 1 = {10, 10, 40}: mean 20, var (100 + 100 + 400) / 3 = 200
    # (the prior, count 1e-4 at mean 0 / var 1, shifts these by ~1e-4 relative)
    np.testing.assert_allclose(rms.mean, [3.0, 20.0], rtol=1e-3)
    np.testing.assert_allclose(rms.var, [8 / 3, 200.0], rtol=1e-3)
    assert rms.count == pytest.approx(3.0, abs=1e-3)
    # normalizing: (x - mean) / sqrt(var); x = [3 + sqrt(8/3), 20 - sqrt(200)] -> [1, -1]
    x = np.array([[3 + np.sqrt(8 / 3), 20 - np.sqrt(200)]], np.float32)
    np.testing.assert_allclose(rms(x), [[1.0, -1.0]], rtol=2e-3)
    # far outliers are clipped to +-10
    np.testing.assert_array_equal(rms(np.array([[1e6, -1e6]], np.float32)), [[10.0, -10.0]])


def test_running_mean_std_state_round_trips():
    from rlarena.nn.normalize import RunningMeanStd

    a, b = RunningMeanStd((3,)), RunningMeanStd((3,))
    a.update(np.random.default_rng(0).normal(2.0, 3.0, (50, 3)))
    b.set_state(a.get_state())
    np.testing.assert_array_equal(b.mean, a.mean)
    np.testing.assert_array_equal(b.var, a.var)
    assert b.count == a.count
