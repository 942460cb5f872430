"""V-trace (issue 15's first piece): against numbers worked out by hand, and equal to n-step returns
when the data is on-policy."""

import numpy as np
import pytest

from rlarena.algorithms.vtrace import vtrace


def test_two_steps_by_hand():
    # rho_0 = e^{ln 2} = 2 (clipped to 1), rho_1 = 0.5; gamma 0.9; V = [1, 2], V(x_2) = 3; r = [1, 0]
    out = vtrace(
        behaviour_logp=np.log([0.25, 0.5]),
        target_logp=np.log([0.5, 0.25]),
        rewards=np.array([1.0, 0.0]),
        values=np.array([1.0, 2.0]),
        bootstrap_value=np.array(3.0),
        discounts=np.array([0.9, 0.9]),
    )
    # delta_1 = 0.5 * (0 + 0.9 * 3 - 2) = 0.35           v_1 = 2 + 0.35 = 2.35
    # delta_0 = 1 * (1 + 0.9 * 2 - 1) = 1.8; c_0 = 1      v_0 = 1 + 1.8 + 0.9 * 1 * 0.35 = 3.115
    np.testing.assert_allclose(out.vs, [3.115, 2.35], rtol=1e-6)
    # advantages: min(1, rho) * (r_t + gamma * v_{t+1} - V(x_t)), v_2 = V(x_2) = 3
    np.testing.assert_allclose(out.pg_advantages, [1 * (1 + 0.9 * 2.35 - 1), 0.5 * (0 + 0.9 * 3 - 2)], rtol=1e-6)


def test_the_recursion_stops_at_an_episode_end_and_thresholds_can_be_lifted():
    logp = np.log([[0.5], [0.5], [0.5]])
    target = np.log([[1.0], [1.0], [1.0]])  # rho = 2 everywhere
    args = {
        "rewards": np.ones((3, 1)),
        "values": np.zeros((3, 1)),
        "bootstrap_value": np.full(1, 10.0),
        "discounts": np.array([[1.0], [0.0], [1.0]]),
    }  # step 1 ends an episode
    clipped = vtrace(logp, target, **args)
    np.testing.assert_allclose(clipped.vs[:, 0], [2.0, 1.0, 11.0])  # nothing from after the end reaches step 1
    unclipped = vtrace(logp, target, clip_rho_threshold=None, clip_pg_rho_threshold=None, clip_c_threshold=None, **args)
    np.testing.assert_allclose(unclipped.vs[:, 0], [2 + 1 * 2 * 2, 2.0, 22.0])  # delta = 2 * (1 + ...)


@pytest.mark.parametrize("seed", [0, 1])
def test_on_policy_vtrace_is_the_n_step_return(seed):
    rng = np.random.default_rng(seed)
    T, N, gamma = 7, 3, 0.95
    logp = np.log(rng.uniform(0.1, 1.0, (T, N)))
    rewards, values, bootstrap = rng.normal(size=(T, N)), rng.normal(size=(T, N)), rng.normal(size=N)
    discounts = gamma * (rng.random((T, N)) > 0.2)  # some episode ends
    out = vtrace(logp, logp, rewards, values, bootstrap, discounts)
    returns, acc = np.zeros((T, N)), bootstrap.copy()
    for t in range(T - 1, -1, -1):
        acc = rewards[t] + discounts[t] * acc
        returns[t] = acc
    np.testing.assert_allclose(out.vs, returns, rtol=1e-5, atol=1e-5)
    next_returns = np.concatenate([returns[1:], bootstrap[None]])
    np.testing.assert_allclose(out.pg_advantages, rewards + discounts * next_returns - values, rtol=1e-5, atol=1e-5)
