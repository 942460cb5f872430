"""PPO solves tiny probe environments in seconds (SB3's identity envs, Andy Jones' probe envs).

Each test trains for real with a fixed seed and asserts a threshold only a working learner reaches:
a broken advantage sign, a log-prob/action mismatch, a detached value head, bootstrapping through a
termination, or not bootstrapping through a truncation each makes one of them fail.
"""

from __future__ import annotations

import numpy as np
import pytest
from probe_envs import ConstantTruncatedEnv, ContinuousIdentityEnv, DiscreteIdentityEnv, TwoStepValueEnv

from rlarena import PPOConfig

PROBE_TRAINING = {
    "train_batch_size": 256,
    "minibatch_size": 64,
    "num_epochs": 4,
    "lr": 3e-3,
    "model": {"fcnet_hiddens": [32]},
}


def probe_config(env, seed: int = 0, **training) -> PPOConfig:
    return (
        PPOConfig()
        .environment(env)
        .env_runners(num_envs_per_env_runner=8)
        .training(**{**PROBE_TRAINING, **training})
        .evaluation(evaluation_duration=100)
        .debugging(seed=seed)
    )


def train(build, config: PPOConfig, iterations: int):
    algo = build(config)
    for _ in range(iterations):
        result = algo.train()
    return algo, result


@pytest.mark.parametrize("seed", [0, 1])
def test_discrete_identity_is_solved(build, seed):
    # random policy: 1/4; greedy optimum: 1.0 (measured: 1.0 after 5 iterations on seeds 0-7)
    algo, result = train(build, probe_config(DiscreteIdentityEnv, seed), iterations=15)
    evaluation = algo.evaluate()
    assert evaluation["episodes"] == 100
    assert evaluation["episode_return_mean"] >= 0.95
    assert result["episode_return_mean"] >= 0.6  # the sampling policy has learned too, not only its argmax


def test_continuous_identity_is_solved(build):
    # zero action: E[-x^2] = -1/3; optimum 0 (measured: > -0.007 after 60 iterations on seeds 0-7)
    algo, _ = train(build, probe_config(ContinuousIdentityEnv), iterations=60)
    evaluation = algo.evaluate()
    assert evaluation["episode_return_mean"] >= -0.05
    # the greedy action tracks the observation across the whole range
    obs = np.linspace(-0.9, 0.9, 7, dtype=np.float32)[:, None]
    actions = algo.compute_actions(obs, explore=False)
    np.testing.assert_allclose(actions, obs, atol=0.25)


def test_value_probe_discounts_and_does_not_bootstrap_through_termination(build):
    # s0 --(r=0)--> s1 --(r=1, terminated; the returned obs is s0 again)--> end, gamma = 0.9:
    # V(s0) = 0 + 0.9 * 1 = 0.9 and V(s1) = 1. Bootstrapping through the termination would give
    # V(s1) = 1 + 0.9 * V(s0) = 1.81; ignoring discounting would give V(s0) = 1.
    gamma = 0.9
    algo, result = train(build, probe_config(TwoStepValueEnv, gamma=gamma), iterations=20)
    v0, v1 = algo.get_policy().compute_values(np.stack([TwoStepValueEnv.S0, TwoStepValueEnv.S1]))
    assert v0 == pytest.approx(gamma, abs=0.05)
    assert v1 == pytest.approx(1.0, abs=0.05)
    # the runner's episode bookkeeping on the same env: every episode is 2 steps with return 1
    assert result["episode_len_mean"] == 2.0
    assert result["episode_return_mean"] == 1.0


def test_truncation_bootstraps_toward_the_infinite_horizon_value(build):
    # Constant obs, reward 1 every step, truncated after k = 3 steps, gamma = 0.8.
    # Bootstrapping from V(final obs) at the time limit: V = 1 + 0.8 V  =>  V = 1 / (1 - 0.8) = 5.
    # Treating the truncation as a termination fits V to the mean finite return over the 3 positions:
    # mean(1 + 0.8 + 0.64, 1 + 0.8, 1) = mean(2.44, 1.8, 1) = 1.7467.
    gamma, k = 0.8, 3
    infinite, finite = 1 / (1 - gamma), ConstantTruncatedEnv.truncation_as_termination_value(gamma, k)
    assert infinite == pytest.approx(5.0) and finite == pytest.approx(1.7466667)
    algo, _ = train(build, probe_config(ConstantTruncatedEnv, gamma=gamma), iterations=30)
    (value,) = algo.get_policy().compute_values(ConstantTruncatedEnv.OBS[None])
    assert value == pytest.approx(infinite, abs=0.25)  # measured: 5.000 on seeds 0-3


def test_discrete_identity_with_observation_filter(build):
    # the MeanStdFilter path: observations are normalized, learning still works
    config = probe_config(DiscreteIdentityEnv).env_runners(observation_filter="MeanStdFilter")
    algo, _ = train(build, config, iterations=15)
    assert algo.evaluate()["episode_return_mean"] >= 0.95


def test_discrete_identity_with_shared_trunk_and_entropy_bonus(build):
    # vf_share_layers and a nonzero entropy_coeff take other branches of the model and the loss
    config = probe_config(
        DiscreteIdentityEnv,
        entropy_coeff=0.01,
        vf_clip_param=1.0,
        model={"fcnet_hiddens": [32], "vf_share_layers": True},
    )
    algo, _ = train(build, config, iterations=15)
    assert algo.evaluate()["episode_return_mean"] >= 0.95
