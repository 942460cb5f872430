"""TQC (algorithms/tqc.py): the truncation and the quantile Huber loss against hand-computed numbers,
the critic target and actor loss through stub networks, a probe env it solves in seconds, the
checkpoint round trip, ONNX export, multi-agent, the registry and CLI, and its refusals. Learning
Pendulum to a threshold takes longer than a test may (benchmarks/ is the place for it)."""

from __future__ import annotations

import json
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import assert_same_arrays
from probe_envs import ContinuousIdentityEnv
from test_learners_off_policy import TwoAgents

from rlarena import Algorithm, ConfigError, TQCConfig
from rlarena.algorithms import get_algorithm_class
from rlarena.algorithms.off_policy import ReplayBatch
from rlarena.algorithms.tqc import TQC, quantile_huber_loss, tqc_actor_loss, tqc_critic_loss, truncated_atoms
from rlarena.cli.main import main
from rlarena.multiagent import PolicySpec
from rlarena.nn.actor_q import ActorQ

FAST = {
    "train_batch_size": 64,
    "num_steps_sampled_before_learning_starts": 64,
    "min_sample_timesteps_per_iteration": 200,
    "lr": 3e-3,
    "n_quantiles": 5,
    "top_quantiles_to_drop_per_net": 1,
    "model": {"fcnet_hiddens": [32, 32]},
}


def probe_config(env, **training):
    return TQCConfig().environment(env).training(**{**FAST, **training}).debugging(seed=0)


# -- math ------------------------------------------------------------------------------------------
def test_truncation_pools_sorts_and_drops_exactly_the_top_atoms():
    # 2 critics x 3 quantiles, 2 rows; drop 1 per critic: the 2 highest of each row's 6 atoms go
    z = torch.tensor([[[5.0, 1.0, 3.0], [0.0, 2.0, 9.0]], [[4.0, 0.5, 6.0], [7.0, 1.0, 8.0]]])
    atoms = truncated_atoms(z, drop_per_net=1)
    assert atoms.tolist() == [[0.5, 1.0, 3.0, 4.0], [0.0, 1.0, 2.0, 7.0]]
    # at scale: k*n = 5 * 2 kept of 25 * 2, and every kept atom is at most every dropped one
    torch.manual_seed(0)
    z = torch.randn(2, 7, 25)
    atoms = truncated_atoms(z, drop_per_net=2)
    pooled = z.permute(1, 0, 2).reshape(7, 50)
    assert atoms.shape == (7, 46)
    torch.testing.assert_close(atoms, pooled.sort(-1).values[:, :46])
    assert (pooled.sort(-1).values[:, 46:].min(-1).values >= atoms.max(-1).values).all()
    assert truncated_atoms(z, drop_per_net=0).shape == (7, 50)


def test_quantile_huber_loss_by_hand():
    # one critic, quantiles (0, 1) at tau = (1/4, 3/4); target atoms (0.5, 3); u = atom - quantile
    z = torch.tensor([[[0.0, 1.0]]])
    y = torch.tensor([[0.5, 3.0]])
    # tau 1/4: u = 0.5 -> 1/4 * 0.125;        u = 3 -> 1/4 * (3 - 0.5)
    # tau 3/4: u = -0.5 -> |3/4 - 1| * 0.125; u = 2 -> 3/4 * (2 - 0.5)
    expected = (0.25 * 0.125 + 0.25 * 2.5 + 0.25 * 0.125 + 0.75 * 1.5) / 4
    assert quantile_huber_loss(z, y).item() == pytest.approx(expected)
    # a quantile above all atoms is pulled down by 1 - tau, below them up by tau (the asymmetry)
    low, high = torch.tensor([[[-10.0]]]), torch.tensor([[[10.0]]])
    atom = torch.tensor([[0.0]])
    assert quantile_huber_loss(low, atom).item() == pytest.approx(0.5 * 9.5)
    assert quantile_huber_loss(high, atom).item() == pytest.approx(0.5 * 9.5)


class Fixed(torch.nn.Module):
    """A critic whose output for any (obs, action) is `values` [N, B, M]."""

    def __init__(self, values):
        super().__init__()
        self.values = torch.tensor(values)
        self.num_q = self.values.shape[0]

    def forward(self, obs, action=None):
        return self.values


def _model(critic: Fixed, quantiles: int) -> ActorQ:
    model = ActorQ(1, 1, "gaussian", [4], "relu", num_q=critic.num_q, initial_alpha=1.0, quantiles=quantiles)
    model.critic = critic
    return model


def test_critic_target_is_reward_plus_discounted_truncated_atoms():
    online = Fixed([[[1.0, 2.0]], [[0.0, 4.0]]])  # Z_n(s, a): 2 critics x 2 quantiles, one row
    target = Fixed([[[3.0, 10.0]], [[5.0, 1.0]]])  # Z'_n(s', a'): pooled 1, 3, 5, 10; drop 1 per net
    batch = ReplayBatch(
        obs=torch.zeros(1, 1),
        actions=torch.zeros(1, 1),
        rewards=torch.tensor([0.5]),
        discounts=torch.tensor([0.9]),
        next_obs=torch.zeros(1, 1),
        next_mask=None,
        weights=torch.ones(1),
    )
    loss, td = tqc_critic_loss(_model(online, 2), target, batch, torch.tensor(0.0), drop_per_net=1)
    y = torch.tensor([[0.5 + 0.9 * 1.0, 0.5 + 0.9 * 3.0]])  # alpha 0: no entropy term
    assert loss.item() == pytest.approx(quantile_huber_loss(online.values, y).item())
    assert td.item() == pytest.approx(1.5 - y.mean().item())  # the first critic's mean minus the targets'
    # the entropy term shifts every atom by -discount * alpha * log pi(a'|s')
    torch.manual_seed(0)
    _, td_alpha = tqc_critic_loss(_model(online, 2), target, batch, torch.tensor(0.1), drop_per_net=1)
    assert td_alpha.item() != pytest.approx(td.item())


def test_actor_maximizes_the_mean_of_all_quantiles():
    critic = Fixed([[[1.0, 2.0], [3.0, 6.0]], [[0.0, 4.0], [8.0, 8.0]]])  # 2 critics, 2 rows, 2 quantiles
    batch = ReplayBatch(
        obs=torch.zeros(2, 1),
        actions=torch.zeros(2, 1),
        rewards=torch.zeros(2),
        discounts=torch.zeros(2),
        next_obs=torch.zeros(2, 1),
        next_mask=None,
        weights=torch.ones(2),
    )
    loss, _, q = tqc_actor_loss(_model(critic, 2), batch, torch.tensor(0.0))
    assert q.tolist() == [7 / 4, 25 / 4]  # not the min over critics: TQC's truncation already curbs the bias
    assert loss.item() == pytest.approx(-(7 / 4 + 25 / 4) / 2)
    # one quantile per critic (their output squeezed to [N, B]): still the mean over the critics
    _, _, q = tqc_actor_loss(_model(Fixed([[1.0, 3.0], [5.0, 7.0]]), 1), batch, torch.tensor(0.0))
    assert q.tolist() == [3.0, 5.0]


# -- learning, checkpoints, export -------------------------------------------------------------------
def test_solves_continuous_identity():
    algo = probe_config(ContinuousIdentityEnv).build()
    try:
        for _ in range(6):
            result = algo.train()
        assert algo.evaluate()["episode_return_mean"] > -0.02  # zero action: -1/3
        assert np.isfinite(result["critic_loss"]) and result["alpha_value"] < 0.5
        # the critics estimate Q(x, a) = -(a - x)^2, about 0 at the learned action
        obs = np.linspace(-0.9, 0.9, 7, dtype=np.float32)[:, None]
        assert np.abs(algo.policy.compute_values(obs)).max() < 0.1
    finally:
        algo.stop()


def test_checkpoint_round_trip_keeps_greedy_actions_and_continues_identically(tmp_path):
    algo = probe_config("Pendulum-v1").build()
    try:
        algo.train()
        path = algo.save(tmp_path / "ck")
        obs = np.random.default_rng(0).uniform(-1, 1, (8, 3)).astype(np.float32)
        restored = Algorithm.from_checkpoint(path)
        try:
            assert type(restored) is TQC and restored.policy.model.critic.weights[-1].shape == (2, 32, 5)
            np.testing.assert_array_equal(
                restored.compute_actions(obs, explore=False), algo.compute_actions(obs, explore=False)
            )
            restored.train()
            algo.restore(path)
            algo.train()
            assert_same_arrays(algo, restored)
        finally:
            restored.stop()
    finally:
        algo.stop()


def test_onnx_export_serves_the_greedy_action_and_the_mean_quantile(tmp_path):
    pytest.importorskip("onnxscript")
    from rlarena.export.onnx import OnnxPolicy

    algo = probe_config("Pendulum-v1").build()
    try:
        served = OnnxPolicy(algo.export_onnx(tmp_path / "p.onnx"))
        obs = np.random.default_rng(0).uniform(-1, 1, (6, 3)).astype(np.float32)
        np.testing.assert_allclose(
            served.compute_actions(obs, explore=False), algo.compute_actions(obs, explore=False), rtol=1e-4, atol=1e-5
        )
        np.testing.assert_allclose(served.compute_values(obs), algo.policy.compute_values(obs), rtol=1e-4, atol=1e-5)
    finally:
        algo.stop()


def test_trains_two_policies_in_a_multi_agent_env(build):
    algo = build(
        probe_config(TwoAgents)
        .env_runners(num_envs_per_env_runner=2, rollout_fragment_length=4)
        .training(
            train_batch_size=16, num_steps_sampled_before_learning_starts=32, min_sample_timesteps_per_iteration=64
        )
        .multi_agent(policies={"p0": PolicySpec(), "p1": PolicySpec()}, policy_mapping_fn=_by_agent)
    )
    result = algo.train()
    assert all(np.isfinite(result[f"learner/{p}/critic_loss"]) for p in ("p0", "p1"))


def _by_agent(agent_id, *args, **kwargs):
    return "p0" if agent_id == "a" else "p1"


def test_registered_by_name_and_trains_from_the_cli(tmp_path):
    assert get_algorithm_class("TQC") is TQC
    config = {
        "min_sample_timesteps_per_iteration": 100,
        "num_steps_sampled_before_learning_starts": 50,
        "train_batch_size": 16,
        "n_quantiles": 5,
    }
    argv = ["train", "--algo", "TQC", "--env", "Pendulum-v1", "--config", json.dumps(config)]
    stop = ["--stop", json.dumps({"training_iteration": 1}), "--storage-path", str(tmp_path)]
    assert main([*argv, *stop, "--verbose", "0", "--no-tensorboard", "--no-plot"]) == 0
    result = json.loads(next(tmp_path.rglob("result.json")).read_text().splitlines()[-1])
    assert result["num_env_steps_sampled_lifetime"] == 100 and math.isfinite(result["critic_loss"])


# -- refusals --------------------------------------------------------------------------------------
def test_refusals_are_one_clear_line():
    with pytest.raises(ConfigError, match=r"TQC needs Box actions; this env has Discrete\(2\)\. Use SAC") as info:
        TQCConfig().environment("CartPole-v1").build()
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match=r"Invalid top_quantiles_to_drop_per_net=5: must be in \[0, n_quantiles\)"):
        TQCConfig().environment("Pendulum-v1").training(n_quantiles=5, top_quantiles_to_drop_per_net=5).validate()
    with pytest.raises(ConfigError, match="twin_q=False: does not apply to TQC"):
        TQCConfig().environment("Pendulum-v1").training(twin_q=False).validate()
    cfg = TQCConfig()
    assert (cfg.n_quantiles, cfg.n_critics, cfg.top_quantiles_to_drop_per_net, cfg.lr) == (25, 2, 2, 3e-4)
    assert TQCConfig().training(ent_coef="auto_0.1", learning_starts=10).initial_alpha == 0.1  # SB3's names


def test_the_policy_builds_n_critics_of_m_quantiles():
    space = gym.spaces.Box(-2.0, 2.0, (2, 1), np.float32)
    from rlarena.policies.actor_q_policy import ActorQPolicy

    policy = ActorQPolicy(
        gym.spaces.Box(-1, 1, (3,)),
        space,
        {"fcnet_hiddens": [8], "fcnet_activation": "relu"},
        seed=0,
        kind="tqc",
        algorithm="TQC",
        num_q=3,
        quantiles=4,
        initial_alpha=1.0,
    )
    obs = np.zeros((5, 3), np.float32)
    assert policy.compute_actions(obs, explore=False).shape == (5, 2, 1)
    assert policy.model.critic(torch.zeros(5, 3), torch.zeros(5, 2)).shape == (3, 5, 4)
    assert policy.compute_values(obs).shape == (5,)


def test_a_file_cannot_ask_for_unbounded_quantiles():
    """The loss holds (n_critics * n_quantiles)^2 numbers per replayed row: a file's values are bounded
    (rlarena.limits.MAX_QUANTILES), the caller's own are not."""
    from rlarena.errors import ConfigError

    config = TQCConfig().training(n_quantiles=400, n_critics=5)
    with pytest.raises(ConfigError, match=r"n_quantiles.all_critics=2000 .*limits.MAX_QUANTILES") as info:
        config.check_sizes("a checkpoint")
    assert "\n" not in str(info.value)
    config.check_sizes("a checkpoint", caller=["n_quantiles"])  # passed by the caller: theirs to choose
    TQCConfig().check_sizes("a checkpoint")  # the defaults pass
