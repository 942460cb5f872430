"""Off-policy estimation (rlarena/offline/estimators.py): IS and WIS against numbers worked out by
hand, on-policy data estimating its own value, and the log-probabilities of logged actions under each
kind of stochastic policy against torch.distributions."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import Categorical, Normal, TransformedDistribution
from torch.distributions.transforms import AffineTransform, TanhTransform

from rlarena.algorithms.config import MODEL_DEFAULTS
from rlarena.errors import ConfigError, OfflineDataError
from rlarena.offline.estimators import (
    action_logp,
    estimate_off_policy,
    importance_sampling,
    weighted_importance_sampling,
)
from rlarena.policies.actor_q_policy import ActorQPolicy
from rlarena.policies.q_policy import QPolicy
from rlarena.policies.torch_policy import TorchPolicy

MODEL = {**MODEL_DEFAULTS, "fcnet_hiddens": [16], "fcnet_activation": "relu", "log_std_init": -0.5}
OBS = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)


def three_episodes() -> dict[str, np.ndarray]:
    """gamma 0.5; rows shuffled on purpose (the estimators sort by episode and t).

    episode 7: r = [1, 2], pi_b = [0.5, 0.5],  pi_e = [1.0, 0.25] -> ratios 2, 0.5: p = [2, 1]
    episode 3: r = [4],    pi_b = [0.5],       pi_e = [0.25]      -> p = [0.5]
    episode 5: r = [0, 1], pi_b = [0.25, 0.5], pi_e = [0.5, 0.5]  -> ratios 2, 1:   p = [2, 2]
    """
    rows = [  # (eps_id, t, reward, pi_b, pi_e)
        (5, 1, 1.0, 0.5, 0.5),
        (7, 0, 1.0, 0.5, 1.0),
        (3, 0, 4.0, 0.5, 0.25),
        (7, 1, 2.0, 0.5, 0.25),
        (5, 0, 0.0, 0.25, 0.5),
    ]
    eps, t, r, pb, pe = (np.array(c) for c in zip(*rows))
    return {"episode": eps, "t": t, "rewards": r, "behavior_logp": np.log(pb), "target_logp": np.log(pe)}


def test_importance_sampling_by_hand():
    d = three_episodes()
    out = importance_sampling(d["rewards"], d["behavior_logp"], d["target_logp"], d["episode"], d["t"], 0.5)
    # v_behavior per episode: 1 + .5*2 = 2;  4;  0 + .5*1 = 0.5
    # v_target:               2*1 + .5*1*2 = 3;  .5*4 = 2;  0 + .5*2*1 = 1
    assert out["v_behavior"] == pytest.approx(6.5 / 3)
    assert out["v_target"] == pytest.approx(2.0)
    assert out["v_target_std"] == pytest.approx(np.sqrt(2 / 3))  # population std of [3, 2, 1], as RLlib (np.std)
    assert out["v_behavior_std"] == pytest.approx(np.std([2.0, 4.0, 0.5]))
    assert out["v_gain"] == pytest.approx(2.0 / (6.5 / 3))
    assert out["v_delta"] == pytest.approx(2.0 - 6.5 / 3)


def test_weighted_importance_sampling_by_hand():
    d = three_episodes()
    out = weighted_importance_sampling(d["rewards"], d["behavior_logp"], d["target_logp"], d["episode"], d["t"], 0.5)
    # w_0 = mean(2, 0.5, 2) = 1.5;  w_1 = mean(1, 2) = 1.5 (only episodes 7 and 5 reach t = 1)
    # v_target: (2/1.5)*1 + .5*(1/1.5)*2 = 2;  (.5/1.5)*4 = 4/3;  .5*(2/1.5)*1 = 2/3
    assert out["v_target"] == pytest.approx((2 + 4 / 3 + 2 / 3) / 3)
    assert out["v_behavior"] == pytest.approx(6.5 / 3)
    assert out["v_delta"] == pytest.approx(4 / 3 - 6.5 / 3)


def test_a_step_where_every_ratio_is_zero_adds_nothing_to_wis():
    # the target never takes episode 1's second action nor episode 2's: p_1 = 0 everywhere, w_1 = 0
    out = weighted_importance_sampling(
        np.array([1.0, 5.0, 1.0, 5.0]),
        np.log([0.5, 0.5, 0.5, 0.5]),
        np.array([np.log(0.5), -np.inf, np.log(0.5), -np.inf]),
        np.array([1, 1, 2, 2]),
        np.array([0, 1, 0, 1]),
        0.9,
    )
    assert out["v_target"] == pytest.approx(1.0) and np.isfinite(out["v_target_std"])


@pytest.mark.parametrize("estimator", [importance_sampling, weighted_importance_sampling])
def test_on_policy_data_estimates_its_own_value(estimator):
    rng = np.random.default_rng(0)
    n = 40
    logp = np.log(rng.uniform(0.1, 1.0, n))
    episode, t = np.repeat(np.arange(8), 5), np.tile(np.arange(5), 8)
    out = estimator(rng.normal(size=n), logp, logp, episode, t, 0.9)
    assert out["v_target"] == pytest.approx(out["v_behavior"])
    assert out["v_delta"] == pytest.approx(0.0, abs=1e-12)


# -- log-probabilities of logged actions -------------------------------------------------------------
def test_torch_policy_discrete_logp_is_the_categorical():
    policy = TorchPolicy(OBS, gym.spaces.Discrete(4), MODEL, seed=0)
    torch.nn.init.normal_(policy.model.pi_head.weight)  # logits far from uniform
    x = np.random.default_rng(1).uniform(-1, 1, (6, 3)).astype(np.float32)
    actions = np.array([0, 1, 2, 3, 1, 2])
    with torch.no_grad():
        expected = Categorical(logits=policy.model.pi(torch.from_numpy(x))).log_prob(torch.from_numpy(actions))
    got = action_logp(policy, x, actions)
    assert got.dtype == np.float32 and got.shape == (6,)
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5)
    # a mask removes the illegal actions' mass: the legal ones renormalize
    mask = np.ones((6, 4), bool)
    mask[:, 3] = False
    legal = np.array([0, 1, 2, 2, 1, 0])
    masked = action_logp(policy, x, legal, mask)
    with torch.no_grad():
        expected = Categorical(logits=policy.model.pi(torch.from_numpy(x))[:, :3]).log_prob(torch.from_numpy(legal))
    np.testing.assert_allclose(masked, expected.numpy(), rtol=1e-5)


def test_torch_policy_box_logp_is_the_diagonal_gaussian():
    policy = TorchPolicy(OBS, gym.spaces.Box(-2.0, 2.0, (2,), np.float32), MODEL, seed=0)
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (5, 3)).astype(np.float32)
    actions = rng.uniform(-2, 2, (5, 2)).astype(np.float32)
    with torch.no_grad():
        mean = policy.model.pi(torch.from_numpy(x))
        expected = Normal(mean, policy.model.log_std.exp()).log_prob(torch.from_numpy(actions)).sum(-1)
    np.testing.assert_allclose(action_logp(policy, x, actions), expected.numpy(), rtol=1e-5)


def test_sac_box_logp_is_the_squashed_gaussian_of_the_env_action():
    space = gym.spaces.Box(np.array([0.0, -4.0], np.float32), np.array([2.0, 4.0], np.float32))
    policy = ActorQPolicy(OBS, space, MODEL, seed=0, kind="sac", initial_alpha=1.0)
    x = torch.from_numpy(np.random.default_rng(3).uniform(-1, 1, (64, 3)).astype(np.float32))
    torch.manual_seed(0)
    with torch.no_grad():
        unit, own_logp = policy.model.actor.sample(x)  # the policy's own sample and log-prob in [-1, 1] units
        mean, log_std = policy.model.actor(x)
    env_actions = policy.to_env_actions(unit.numpy())
    got = action_logp(policy, x.numpy(), env_actions)
    # the env action's density: the [-1, 1] density over the Jacobian of the linear map (scale 1 and 4)
    np.testing.assert_allclose(got, own_logp.numpy() - np.log(4.0), rtol=1e-4, atol=1e-3)
    # and by torch.distributions: tanh then the affine map, from N(mean, std)
    dist = TransformedDistribution(
        Normal(mean, log_std.exp()),
        [TanhTransform(), AffineTransform(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 4.0]))],
    )
    expected = dist.log_prob(torch.from_numpy(env_actions)).sum(-1)
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-3, atol=1e-3)


def test_discrete_sac_logp_is_the_categorical_of_the_actor():
    policy = ActorQPolicy(OBS, gym.spaces.Discrete(3), MODEL, seed=0, kind="sac", initial_alpha=1.0)
    x = np.random.default_rng(4).uniform(-1, 1, (4, 3)).astype(np.float32)
    actions = np.array([2, 0, 1, 2])
    with torch.no_grad():
        expected = Categorical(logits=policy.model.actor(torch.from_numpy(x))).log_prob(torch.from_numpy(actions))
    np.testing.assert_allclose(action_logp(policy, x, actions), expected.numpy(), rtol=1e-5)


def test_deterministic_policies_have_no_density():
    x, a = np.zeros((2, 3), np.float32), np.zeros(2, np.int64)
    with pytest.raises(ConfigError, match="needs a stochastic policy.*DQN"):
        action_logp(QPolicy(OBS, gym.spaces.Discrete(2), MODEL, seed=0), x, a)
    td3 = ActorQPolicy(OBS, gym.spaces.Box(-1.0, 1.0, (1,), np.float32), MODEL, seed=0, kind="td3")
    with pytest.raises(ConfigError, match="TD3's actor is deterministic"):
        action_logp(td3, x, np.zeros((2, 1), np.float32))


# -- estimate_off_policy: the evaluation's entry point -----------------------------------------------
def logged(policy, n_episodes=6, length=4, seed=0) -> dict[str, np.ndarray]:
    """Episodes as OfflineData.read_file returns them, acted by `policy` (its own log-probs recorded)."""
    rng = np.random.default_rng(seed)
    n = n_episodes * length
    obs = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
    actions = policy.sample(obs, explore=True)
    return {
        "obs": obs,
        "actions": actions,
        "rewards": rng.normal(size=n).astype(np.float32),
        "new_obs": obs,
        "terminateds": np.tile(np.arange(length) == length - 1, n_episodes),
        "truncateds": np.zeros(n, bool),
        "eps_id": np.repeat(np.arange(n_episodes) + 100, length),
        "t": np.tile(np.arange(length), n_episodes),
        "agent_id": None,
        "action_logp": action_logp(policy, obs, actions),
    }


def test_estimate_off_policy_reports_each_method_and_on_policy_matches():
    policy = TorchPolicy(OBS, gym.spaces.Discrete(3), MODEL, seed=0)
    out = estimate_off_policy(
        policy,
        logged(policy),
        0.99,
        {"is": {"type": "ImportanceSampling"}, "wis": {"type": "WeightedImportanceSampling"}},
    )
    for name in ("is", "wis"):
        for key in ("v_behavior", "v_behavior_std", "v_target", "v_target_std", "v_gain", "v_delta"):
            assert f"off_policy_estimation/{name}/{key}" in out
        assert out[f"off_policy_estimation/{name}/v_target"] == pytest.approx(
            out[f"off_policy_estimation/{name}/v_behavior"], rel=1e-5
        )
    # another policy: the estimates move (its ratios are not 1)
    other = TorchPolicy(OBS, gym.spaces.Discrete(3), MODEL, seed=1)
    torch.nn.init.normal_(other.model.pi_head.weight, std=3.0)
    moved = estimate_off_policy(other, logged(policy), 0.99, {"is": {"type": "ImportanceSampling"}})
    assert moved["off_policy_estimation/is/v_target"] != pytest.approx(out["off_policy_estimation/is/v_target"])


def test_estimate_off_policy_epsilon_greedy_mixes_in_the_uniform_policy():
    policy = TorchPolicy(OBS, gym.spaces.Discrete(3), MODEL, seed=0)
    data = logged(policy)
    data["action_logp"] = np.full(len(data["rewards"]), np.log(1 / 3), np.float32)  # a uniform behaviour policy
    out = estimate_off_policy(policy, data, 0.9, {"is": {"type": "ImportanceSampling", "epsilon_greedy": 1.0}})
    assert out["off_policy_estimation/is/v_target"] == pytest.approx(out["off_policy_estimation/is/v_behavior"])


def test_estimate_off_policy_errors_name_the_fix():
    policy = TorchPolicy(OBS, gym.spaces.Discrete(3), MODEL, seed=0)
    data = logged(policy)
    with pytest.raises(
        ConfigError, match="unknown estimator type 'DoublyRobust'.*ImportanceSampling, WeightedImportanceSampling"
    ):
        estimate_off_policy(policy, data, 0.9, {"dr": {"type": "DoublyRobust"}})
    with pytest.raises(ConfigError, match="Did you mean 'ImportanceSampling'"):
        estimate_off_policy(policy, data, 0.9, {"is": {"type": "ImportanceSamplng"}})
    del data["action_logp"]
    with pytest.raises(OfflineDataError, match="action_logp.*Record them with a policy that has log-probabilities"):
        estimate_off_policy(policy, data, 0.9, {"is": {"type": "ImportanceSampling"}})
    assert estimate_off_policy(policy, data, 0.9, {}) == {}
