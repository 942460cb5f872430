"""CQL (algorithms/cql.py): the penalty against a hand computation, offline-only config errors, a
probe data set it learns from in seconds, and the checkpoint round trip."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import all_arrays, assert_same_arrays
from probe_envs import ContinuousIdentityEnv

from rlarena import Algorithm
from rlarena.algorithms.cql import CQLConfig, cql_penalty
from rlarena.errors import CheckpointError, ConfigError
from rlarena.offline import OfflineWriter

OBS = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
FAST = {
    "train_batch_size": 64,
    "num_actions": 4,
    "model": {"fcnet_hiddens": [32, 32]},
    "min_train_timesteps_per_iteration": 64 * 50,
}


def identity_data(directory, n=2000, seed=0, action_space=None) -> None:
    """ContinuousIdentityEnv's one-step episodes: obs x ~ U[-1, 1], actions uniform over the bounds (a
    behaviour policy with no idea of the target), reward -(a - x)^2."""
    space = action_space or gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
    a = rng.uniform(space.low, space.high, (n, 1)).astype(np.float32)
    with OfflineWriter(directory, OBS, space) as writer:
        writer.add(
            {
                "eps_id": np.arange(n),
                "obs": x,
                "actions": a,
                "rewards": -((a - x) ** 2)[:, 0],
                "new_obs": x,
                "terminateds": np.ones(n, bool),
                "truncateds": np.zeros(n, bool),
                "t": np.zeros(n, np.int64),
                "action_logp": np.full(n, -math.log(2), np.float32),
            }
        )


def test_penalty_by_hand():
    # one critic, one state, N = 1 action of each kind, d = 1: log mu = -log 2
    q_data = torch.tensor([[1.0]])
    q_rand, q_curr, q_next = torch.tensor([[[2.0]]]), torch.tensor([[[3.0]]]), torch.tensor([[[0.5]]])
    logp_curr, logp_next = torch.tensor([[0.2]]), torch.tensor([[-0.1]])
    c = [2.0 + math.log(2), 3.0 - 0.2, 0.5 + 0.1]
    for temperature, weight in [(1.0, 5.0), (0.5, 2.0)]:
        expected = weight * (temperature * math.log(sum(math.exp(v / temperature) for v in c)) - 1.0)
        got = cql_penalty(q_data, q_rand, q_curr, q_next, logp_curr, logp_next, 1, temperature, weight)
        assert got.shape == (1,) and got.item() == pytest.approx(expected, rel=1e-6)


def test_penalty_is_per_critic_and_averaged_over_states():
    torch.manual_seed(0)
    K, B, N = 2, 3, 4
    q_data, q = torch.randn(K, B), [torch.randn(K, B, N) for _ in range(3)]
    logps = [torch.randn(B, N) for _ in range(2)]
    got = cql_penalty(q_data, *q, *logps, 2, 1.0, 1.0)
    for k in range(K):
        per_state = [
            torch.logsumexp(
                torch.cat([q[0][k, i] + 2 * math.log(2), q[1][k, i] - logps[0][i], q[2][k, i] - logps[1][i]]), 0
            )
            for i in range(B)
        ]
        assert got[k].item() == pytest.approx((sum(per_state) / B - q_data[k].mean()).item(), rel=1e-5)


def test_cql_is_offline_only_and_box_only(tmp_path):
    with pytest.raises(ConfigError, match=r"CQL learns from logged data: set \.offline_data\(input_=DIR\)"):
        CQLConfig().environment("Pendulum-v1").build()
    with pytest.raises(ConfigError, match="num_actions"):
        CQLConfig().offline_data(input_=str(tmp_path)).training(num_actions=0).build()
    data = tmp_path / "discrete"
    with OfflineWriter(data, OBS, gym.spaces.Discrete(2)) as writer:
        writer.add(
            {
                "eps_id": np.zeros(2, np.int64),
                "obs": np.zeros((2, 1), np.float32),
                "actions": np.array([0, 1]),
                "rewards": np.zeros(2, np.float32),
                "new_obs": np.zeros((2, 1), np.float32),
                "terminateds": np.array([False, True]),
                "truncateds": np.zeros(2, bool),
            }
        )
    with pytest.raises(ConfigError, match="CQL needs Box actions.*BC or MARWIL"):
        CQLConfig().offline_data(input_=str(data)).build()


def test_learns_the_best_logged_action_from_data_alone(tmp_path):
    """Uniform behaviour (behaviour cloning learns ~0 everywhere, return -1/3): CQL's critic finds
    a = x and its actor follows, evaluated in the env it never trained in."""
    identity_data(tmp_path / "data")
    config = (
        CQLConfig()
        .offline_data(input_=str(tmp_path / "data"))
        .environment(ContinuousIdentityEnv)
        # rewards here are ~0.1: RLlib's min_q_weight 5 (tuned for MuJoCo's scale) holds Q down too hard
        .training(**FAST, bc_iters=50, min_q_weight=1.0, lr=3e-3, actor_lr=3e-3, critic_lr=3e-3, alpha_lr=3e-3)
        .evaluation(evaluation_duration=50)
        .debugging(seed=0)
    )
    algo = config.build()
    try:
        for _ in range(16):
            result = algo.train()
        assert result["num_gradient_steps_lifetime"] == 800 and algo.num_env_steps_sampled_lifetime == 0
        assert result["num_env_steps_trained_lifetime"] == 800 * 64
        x = np.linspace(-1, 1, 21, dtype=np.float32)[:, None]
        greedy = algo.compute_actions(x, explore=False)
        assert np.abs(greedy - x).mean() < 0.12, greedy.ravel()  # measured 0.06; behaviour cloning: 0.5
        assert algo.evaluate()["episode_return_mean"] > -0.03  # the zero action: -1/3
    finally:
        algo.stop()


def test_lagrangian_learns_alpha_prime_and_actions_map_from_the_bounds(tmp_path):
    space = gym.spaces.Box(0.0, 4.0, (1,), np.float32)  # env actions in [0, 4]: the actor's [-1, 1] is 2 + 2a
    identity_data(tmp_path / "data", n=256, action_space=space)
    config = (
        CQLConfig()
        .offline_data(input_=str(tmp_path / "data"))
        .training(**{**FAST, "min_train_timesteps_per_iteration": 64 * 5}, lagrangian=True, bc_iters=2)
        .debugging(seed=0)
    )
    algo = config.build()
    try:
        batch = algo._batch(next(algo.offline_data.batches(8, np.random.default_rng(0))))
        assert batch.actions.min() >= -1 and batch.actions.max() <= 1 and batch.actions.std() > 0.3
        result = algo.train()
        assert result["alpha_prime_value"] != 1.0 and np.isfinite(result["alpha_prime_loss"])
        assert "alpha_prime.log_alpha" in algo.policy.model.state_dict()  # saved with the weights
        assert space.contains(algo.compute_single_action(np.zeros(1, np.float32), explore=False))
    finally:
        algo.stop()


def test_checkpoint_round_trip_continues_identically(tmp_path):
    identity_data(tmp_path / "data", n=512)
    config = (
        CQLConfig()
        .offline_data(input_=str(tmp_path / "data"))
        .training(**{**FAST, "min_train_timesteps_per_iteration": 64 * 3}, bc_iters=4, lagrangian=True)
        .debugging(seed=0)
    )
    algo = config.build()
    try:
        algo.train()
        path = algo.save(tmp_path / "ck")
        saved = all_arrays(algo)
        assert ("target.default_policy", "critic") in saved and ("cql", "env_steps_trained") in saved
        assert not any(g.startswith("replay.") for g, _ in saved)
        with pytest.raises(CheckpointError, match="does not choose what is read"):
            Algorithm.from_checkpoint(path)  # its data is not read from where the checkpoint says
        restored = Algorithm.from_checkpoint(path, config_overrides={"input_": str(tmp_path / "data")})
        try:
            assert type(restored).__name__ == "CQL" and restored.num_gradient_steps == 3
            assert restored.num_env_steps_trained == 3 * 64
            # both go on alike (one after the other: both draw from torch's global generator, which a restore sets)
            restored.train()
            algo.restore(path)
            result = algo.train()
            assert result["num_gradient_steps_lifetime"] == 6 and result["bc_phase"] == 0.0
            assert_same_arrays(algo, restored)
        finally:
            restored.stop()
    finally:
        algo.stop()
