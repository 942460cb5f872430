"""DroQ and REDQ, SAC's options (algorithms/sac.py, droq_redq.py): DroQ's critics (dropout, then layer
norm, after each hidden linear layer) against a hand-written forward pass, their dropout on in training
and off for values; REDQ's target, the min over M of N critics drawn anew each step; the actor's mean over the
critics; policy_delay; a probe env DroQ solves in seconds; the checkpoint round trip; the refusals.
Learning curves against SAC belong in benchmarks/."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import assert_same_arrays
from probe_envs import ContinuousIdentityEnv

from rlarena import Algorithm, ConfigError, CrossQConfig, DroQConfig, REDQConfig, SACConfig, TQCConfig
from rlarena.algorithms import get_algorithm_class
from rlarena.algorithms.droq_redq import REDQ, DroQ
from rlarena.algorithms.off_policy import ReplayBatch
from rlarena.algorithms.sac import actor_loss, critic_loss, target_min
from rlarena.checkpoint.io import read_checkpoint, write_checkpoint
from rlarena.nn.actor_q import ActorQ, QEnsemble, without_dropout

FAST = {
    "train_batch_size": 64,
    "num_steps_sampled_before_learning_starts": 64,
    "min_sample_timesteps_per_iteration": 200,
    "lr": 3e-3,
    "model": {"fcnet_hiddens": [32, 32]},
}
# a SAC model's parameters by name, as they were before these options: checkpoints keep loading
SAC_KEYS = [
    *(f"actor.net.layers.{i}.{p}" for i in range(3) for p in ("weight", "bias")),
    *(f"critic.{p}.{i}" for p in ("weights", "biases") for i in range(3)),
    "temperature.log_alpha",
]


def batch_of(n: int) -> ReplayBatch:
    return ReplayBatch(
        obs=torch.zeros(n, 1),
        actions=torch.zeros(n, 1),
        rewards=torch.full((n,), 0.5),
        discounts=torch.full((n,), 0.9),
        next_obs=torch.zeros(n, 1),
        next_mask=None,
        weights=torch.ones(n),
    )


class Fixed(torch.nn.Module):
    """A critic whose output for any (obs, action) is `values` [N, B]."""

    def __init__(self, values):
        super().__init__()
        self.values = torch.tensor(values)
        self.num_q = self.values.shape[0]

    def forward(self, obs, action=None):
        return self.values


def _model(critic: Fixed) -> ActorQ:
    model = ActorQ(1, 1, "gaussian", [4], "relu", num_q=critic.num_q, initial_alpha=1.0)
    model.critic = critic
    return model


# -- DroQ's critics ----------------------------------------------------------------------------------
def test_droq_critics_are_linear_dropout_layer_norm_relu():
    torch.manual_seed(0)
    q = QEnsemble(3, [8, 8], 1, "relu", num_q=2, dropout=0.2, layer_norm=True)
    with torch.no_grad():  # gains and biases of their own per member, not the initial ones and zeros
        for norm in q.layer_norms:
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
    x, a = torch.randn(5, 2), torch.randn(5, 1)
    torch.manual_seed(1)
    out = q(x, a)
    torch.manual_seed(1)  # the same dropout masks, drawn in the same order
    h = torch.cat([x, a], -1).expand(2, 5, 3)
    for i in range(2):
        h = F.dropout(h @ q.weights[i] + q.biases[i], 0.2)
        mean, var = h.mean(-1, keepdim=True), h.var(-1, keepdim=True, unbiased=False)
        h = torch.relu((h - mean) / torch.sqrt(var + 1e-5) * q.layer_norms[i].weight + q.layer_norms[i].bias)
    torch.testing.assert_close(out, (h @ q.weights[2] + q.biases[2]).squeeze(-1))
    # dropout is on in training passes and off inside without_dropout (values, export), then on again
    assert not torch.equal(q(x, a), q(x, a))
    with without_dropout(q):
        assert torch.equal(q(x, a), q(x, a))
    assert q.stochastic


def test_by_default_the_critics_have_neither_and_a_sac_model_keeps_its_parameter_names():
    algo = SACConfig().environment("Pendulum-v1").training(**FAST).debugging(seed=0).build()
    try:
        model = algo.policy.model
        assert list(model.state_dict()) == SAC_KEYS
        assert model.critic.layer_norms is None and model.critic.dropout == 0.0 and model.critic.num_q == 2
    finally:
        algo.stop()
    droq = DroQConfig().environment("Pendulum-v1").training(**FAST).debugging(seed=0).build()
    try:
        critic = droq.policy.model.critic
        assert critic.dropout == 0.01 and len(critic.layer_norms) == 2
        assert critic.layer_norms[0].weight.shape == (2, 1, 32)
        obs = np.random.default_rng(0).uniform(-1, 1, (6, 3)).astype(np.float32)
        np.testing.assert_array_equal(droq.policy.compute_values(obs), droq.policy.compute_values(obs))
        target = droq.learners["default_policy"].targets["critic"].module
        assert target.stochastic  # the targets are computed with dropout, as DroQ's code and SBX
    finally:
        droq.stop()


# -- REDQ's target and the actor's mean --------------------------------------------------------------
def test_target_min_takes_the_min_over_exactly_m_random_critics():
    q = torch.tensor([[1.0, 7.0], [2.0, 6.0], [3.0, 5.0], [4.0, 8.0]])  # 4 critics, 2 rows
    assert target_min(q).tolist() == [1.0, 5.0]
    assert target_min(q, 4).tolist() == [1.0, 5.0]
    torch.manual_seed(0)
    seen = Counter(tuple(target_min(q, 2).tolist()) for _ in range(1200))
    # one subset for the whole batch: a pair of the 4 critics, each of the 6 pairs as likely
    pairs = Counter(tuple(q[[i, j]].min(0).values.tolist()) for i in range(4) for j in range(i + 1, 4))
    assert set(seen) == set(pairs)
    for value, count in pairs.items():
        assert seen[value] / 1200 == pytest.approx(count / 6, abs=0.05)
    assert {target_min(q, 1)[0].item() for _ in range(200)} == {1.0, 2.0, 3.0, 4.0}


def test_redq_critic_target_is_reward_plus_discounted_min_of_a_subset():
    online = Fixed([[0.0], [0.0], [0.0]])
    target = Fixed([[3.0], [1.0], [2.0]])
    batch = batch_of(1)
    alpha = torch.tensor(0.0)  # no entropy term
    _, td = critic_loss(_model(online), target, batch, alpha)
    assert td.item() == pytest.approx(-(0.5 + 0.9 * 1.0))  # all critics: SAC's min
    torch.manual_seed(0)
    ys = {round(-critic_loss(_model(online), target, batch, alpha, subset=2)[1].item(), 5) for _ in range(100)}
    assert ys == {round(0.5 + 0.9 * 1.0, 5), round(0.5 + 0.9 * 2.0, 5)}  # min of {3, 1}, {1, 2} or {3, 2}


def test_actor_reads_min_or_mean_of_the_critics():
    critic = Fixed([[1.0, 4.0], [3.0, 0.0], [5.0, 2.0]])  # 3 critics, 2 rows
    batch = batch_of(2)
    _, _, q_min = actor_loss(_model(critic), batch, torch.tensor(0.0))
    loss, _, q_mean = actor_loss(_model(critic), batch, torch.tensor(0.0), "mean")
    assert q_min.tolist() == [1.0, 0.0] and q_mean.tolist() == [3.0, 2.0]
    assert loss.item() == pytest.approx(-2.5)


# -- the update --------------------------------------------------------------------------------------
def test_policy_delay_steps_the_actor_every_kth_critic_step():
    algo = SACConfig().environment("Pendulum-v1").training(**FAST, policy_delay=2).debugging(seed=0).build()
    try:
        algo.train()
        learner = algo.learners["default_policy"]
        assert learner.critic_steps == algo.num_gradient_steps > 0
        learner.critic_steps = 0
        changed = []
        for _ in range(4):
            actor = [p.detach().clone() for p in learner.policy.model.actor.parameters()]
            critic = [p.detach().clone() for p in learner.policy.model.critic.parameters()]
            stats = algo.update_policy("default_policy")
            changed.append(not all(torch.equal(a, p) for a, p in zip(actor, learner.policy.model.actor.parameters())))
            assert not all(torch.equal(c, p) for c, p in zip(critic, learner.policy.model.critic.parameters()))
            assert torch.isfinite(stats).all()
        assert changed == [False, True, False, True]
    finally:
        algo.stop()


def test_droq_solves_continuous_identity():
    # two critic steps per env step, the actor once (DroQ's rhythm at a tenth of its 20)
    config = DroQConfig().environment(ContinuousIdentityEnv).training(**FAST, gradient_steps=2, policy_delay=2)
    algo = config.debugging(seed=0).build()
    try:
        for _ in range(3):
            result = algo.train()
        assert algo.evaluate()["episode_return_mean"] > -0.02  # zero action: -1/3
        assert np.isfinite(result["critic_loss"]) and result["num_gradient_steps_lifetime"] == 2 * (600 - 64)
        obs = np.linspace(-0.9, 0.9, 7, dtype=np.float32)[:, None]
        assert np.abs(algo.policy.compute_values(obs)).max() < 0.1  # Q(x, a) = -(a - x)^2, about 0
    finally:
        algo.stop()


# -- checkpoints -------------------------------------------------------------------------------------
def test_checkpoint_round_trip_keeps_dropout_critics_and_continues_identically(tmp_path):
    training = {**FAST, "n_critics": 3, "target_critics_subset": 2, "gradient_steps": 2, "policy_delay": 2}
    training["min_sample_timesteps_per_iteration"] = 100
    algo = DroQConfig().environment("Pendulum-v1").training(**training).debugging(seed=0).build()
    try:
        algo.train()
        path = algo.save(tmp_path / "ck")
        obs = np.random.default_rng(0).uniform(-1, 1, (8, 3)).astype(np.float32)
        restored = Algorithm.from_checkpoint(path)
        try:
            assert type(restored) is DroQ and restored.config.target_critics_subset == 2
            assert restored.policy.model.critic.layer_norms[1].weight.shape == (3, 1, 32)
            assert restored.learners["default_policy"].critic_steps == algo.learners["default_policy"].critic_steps
            np.testing.assert_array_equal(
                restored.compute_actions(obs, explore=False), algo.compute_actions(obs, explore=False)
            )
            np.testing.assert_array_equal(restored.policy.compute_values(obs), algo.policy.compute_values(obs))
            restored.train()
            algo.restore(path)
            algo.train()
            assert_same_arrays(algo, restored)
        finally:
            restored.stop()
    finally:
        algo.stop()


def test_a_sac_checkpoint_without_the_critic_step_counter_still_restores(tmp_path):
    algo = SACConfig().environment("Pendulum-v1").training(**FAST).debugging(seed=0).build()
    try:
        algo.train()
        meta, arrays = read_checkpoint(algo.save(tmp_path / "new"))
        del arrays["learner.default_policy"]
        old = write_checkpoint(
            tmp_path / "old", {k: v for k, v in meta.items() if k not in ("files", "format_version")}, arrays
        )
        restored = Algorithm.from_checkpoint(old)
        try:
            assert restored.learners["default_policy"].critic_steps == 0
            assert np.isfinite(restored.train()["critic_loss"])
        finally:
            restored.stop()
    finally:
        algo.stop()


# -- names, recipes, refusals ------------------------------------------------------------------------
def test_registered_with_the_papers_settings():
    assert get_algorithm_class("DroQ") is DroQ and get_algorithm_class("REDQ") is REDQ
    droq, redq, sac = DroQConfig(), REDQConfig(), SACConfig()
    keys = ("n_critics", "critic_dropout", "critic_layer_norm", "target_critics_subset", "gradient_steps")
    assert [getattr(droq, k) for k in keys] == [2, 0.01, True, None, 20]
    assert [getattr(redq, k) for k in keys] == [10, 0.0, False, 2, 20]
    assert [getattr(sac, k) for k in keys] == [2, 0.0, False, None, None]
    assert (droq.policy_delay, redq.policy_delay, sac.policy_delay) == (20, 20, 1)
    assert (droq.actor_q_reduction, redq.actor_q_reduction, sac.actor_q_reduction) == ("mean", "mean", "min")
    assert (droq.lr, redq.train_batch_size, redq.tau) == (sac.lr, sac.train_batch_size, sac.tau)  # else SAC's


def test_refusals_are_one_clear_line():
    cases = [
        (SACConfig().training(target_critics_subset=3), r"Invalid target_critics_subset=3: must be None .* \[1, 2\]"),
        (REDQConfig().training(n_critics=4, target_critics_subset=5), r"target_critics_subset=5: .* \[1, 4\]"),
        (SACConfig().training(critic_dropout=1.0), r"Invalid critic_dropout=1.0: must be in \[0, 1\)"),
        (SACConfig().training(critic_dropout=-0.1), r"Invalid critic_dropout=-0.1: must be in \[0, 1\)"),
        (SACConfig().training(n_critics=0), r"Invalid n_critics=0: must be >= 1"),
        (SACConfig().training(n_critics=10, twin_q=False), r"Invalid twin_q=False: means one critic"),
        (SACConfig().training(policy_delay=0), r"Invalid policy_delay=0: must be >= 1"),
        (TQCConfig().training(target_critics_subset=1), r"target_critics_subset=1: does not apply to TQC"),
        (CrossQConfig().training(actor_q_reduction="mean"), r"actor_q_reduction='mean': does not apply to CrossQ"),
    ]
    for config, message in cases:
        with pytest.raises(ConfigError, match=message) as info:
            config.environment("Pendulum-v1").validate()
        assert "\n" not in str(info.value)
    assert SACConfig().training(n_critics=1).environment("Pendulum-v1").num_critics == 1
    assert SACConfig().training(twin_q=False).num_critics == 1  # RLlib's single critic


def test_a_file_cannot_ask_for_unbounded_critics():
    config = REDQConfig().training(n_critics=1000, target_critics_subset=500)
    with pytest.raises(ConfigError, match=r"n_critics=1000 .*limits.MAX_CRITICS") as info:
        config.check_sizes("a checkpoint")
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match=r"target_critics_subset=500 .*limits.MAX_CRITICS"):
        config.check_sizes("a checkpoint", caller=["n_critics"])
    config.check_sizes("a checkpoint", caller=["n_critics", "target_critics_subset"])  # the caller's to choose
    REDQConfig().check_sizes("a checkpoint")  # the defaults pass
