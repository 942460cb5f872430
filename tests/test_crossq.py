"""CrossQ (algorithms/crossq.py) and batch renormalization (nn/batch_renorm.py): the layer against
batch norm and hand-computed corrections, the joint forward pass, the policy acting on the running
statistics (numpy twin, ONNX, checkpoints), a probe env it solves in seconds, multi-agent, the
registry and CLI, and its refusals. Learning Pendulum to a threshold takes longer than a test may
(benchmarks/ is the place for it)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import assert_same_arrays
from probe_envs import ContinuousIdentityEnv
from test_learners_off_policy import TwoAgents

from rlarena import Algorithm, ConfigError, CrossQConfig
from rlarena.algorithms import get_algorithm_class
from rlarena.algorithms.crossq import CrossQ, joint_q
from rlarena.cli.main import main
from rlarena.multiagent import PolicySpec
from rlarena.nn.actor_q import MLP, QEnsemble
from rlarena.nn.batch_renorm import BatchRenorm, RenormSpec, batch_statistics

FAST = {
    "train_batch_size": 64,
    "num_steps_sampled_before_learning_starts": 64,
    "min_sample_timesteps_per_iteration": 200,
    "lr": 3e-3,
    "critic_hiddens": [64, 64],
    "model": {"fcnet_hiddens": [32, 32]},
}


def probe_config(env, **training):
    return CrossQConfig().environment(env).training(**{**FAST, **training}).debugging(seed=0)


# -- batch renormalization -------------------------------------------------------------------------
def _layer(features=3, **spec) -> BatchRenorm:
    torch.manual_seed(0)
    layer = BatchRenorm(features, RenormSpec(**spec))
    with torch.no_grad():
        layer.weight.uniform_(0.5, 2.0)
        layer.bias.uniform_(-1.0, 1.0)
    return layer


def test_batch_renorm_is_batch_norm_during_its_warmup():
    layer = _layer(momentum=0.1, eps=1e-3, warmup_steps=2)
    running_mean, running_var = torch.zeros(3), torch.ones(3)
    for _ in range(2):
        x = torch.randn(16, 3) * 3 + 1
        with batch_statistics(layer):
            y = layer(x)
        expected = F.batch_norm(x, None, None, layer.weight[0], layer.bias[0], training=True, eps=1e-3)
        torch.testing.assert_close(y, expected)
        running_mean = 0.9 * running_mean + 0.1 * x.mean(0)
        running_var = 0.9 * running_var + 0.1 * x.var(0, correction=0)  # biased, as SBX (torch's BN: unbiased)
    torch.testing.assert_close(layer.running_mean[0], running_mean)
    torch.testing.assert_close(layer.running_var[0], running_var)
    assert int(layer.steps) == 2 and not layer.training  # back to the running statistics afterwards


def test_batch_renorm_after_its_warmup_corrects_by_clipped_r_and_d():
    layer = _layer(features=2, momentum=0.5, eps=0.0, warmup_steps=0, r_max=2.0, d_max=1.0)
    with torch.no_grad():
        layer.running_mean.copy_(torch.tensor([[0.0, 10.0]]))
        layer.running_var.copy_(torch.tensor([[4.0, 1.0]]))
    x = torch.tensor([[1.0, 0.0], [3.0, 2.0]])  # batch mean (2, 1), std (1, 1)
    with batch_statistics(layer):
        y = layer(x)
    # feature 0: r = 1/2, d = (2 - 0)/2 = 1;  feature 1: r = 1/1, d = (1 - 10)/1 = -9, clipped to -1
    x_hat = torch.tensor([[-1.0 * 0.5 + 1.0, -1.0 - 1.0], [1.0 * 0.5 + 1.0, 1.0 - 1.0]])
    torch.testing.assert_close(y, x_hat * layer.weight + layer.bias)
    torch.testing.assert_close(layer.running_mean, torch.tensor([[1.0, 5.5]]))  # halfway to the batch's (2, 1)
    torch.testing.assert_close(layer.running_var, torch.tensor([[2.5, 1.0]]))
    # r and d carry no gradient: the gradient through x_hat is that of batch norm times r
    x.requires_grad_(True)
    with batch_statistics(layer):
        layer(x)[:, 0].sum().backward()
    assert x.grad is not None and torch.allclose(x.grad[:, 0], torch.zeros(2), atol=1e-6)


@pytest.mark.parametrize("members", [0, 2])
@pytest.mark.parametrize("warmup_steps", [10, 0])
def test_batch_renorm_gradients_are_those_of_its_formula_written_out(members, warmup_steps):
    """The layer runs torch's fused batch norm (r and d folded into its affine); its output, running
    statistics and gradients (input, weight, bias) are the module docstring's formula's, op by op."""
    torch.manual_seed(0)
    spec = RenormSpec(momentum=0.3, eps=1e-3, warmup_steps=warmup_steps, r_max=1.5, d_max=0.5)
    layer = BatchRenorm(4, spec, members)
    with torch.no_grad():
        layer.weight.uniform_(0.5, 2.0)
        layer.bias.uniform_(-1.0, 1.0)
        layer.running_mean.uniform_(-1.0, 1.0)
        layer.running_var.uniform_(0.2, 3.0)
    shape = (members, 16, 4) if members else (16, 4)
    x = (torch.randn(shape) * 2 + 0.5).requires_grad_(True)
    weight, bias = layer.weight.detach().clone().requires_grad_(True), layer.bias.detach().clone().requires_grad_(True)
    var, mean = torch.var_mean(x, -2, keepdim=True, correction=0)
    sigma = torch.sqrt(var + spec.eps)
    x_hat = (x - mean) / sigma
    if warmup_steps == 0:
        sigma_run = torch.sqrt(layer.running_var + spec.eps)
        r = (sigma / sigma_run).clamp(1 / spec.r_max, spec.r_max).detach()
        d = ((mean - layer.running_mean) / sigma_run).clamp(-spec.d_max, spec.d_max).detach()
        x_hat = x_hat * r + d
    expected = x_hat * weight + bias
    running = (layer.running_mean.lerp(mean.detach(), 0.3), layer.running_var.lerp(var.detach(), 0.3))
    upstream = torch.randn(shape)
    grads = torch.autograd.grad(expected, (x, weight, bias), upstream)
    with batch_statistics(layer):
        y = layer(x)
    torch.testing.assert_close(y, expected)
    torch.testing.assert_close((layer.running_mean, layer.running_var), running)
    got = torch.autograd.grad(y, (x, layer.weight, layer.bias), upstream)
    for name, g, want in zip(("input", "weight", "bias"), got, grads):
        torch.testing.assert_close(g, want, rtol=1e-4, atol=1e-5, msg=name)


def test_batch_renorm_outside_training_uses_and_keeps_the_running_statistics():
    layer = _layer(eps=1e-3)
    with torch.no_grad():
        layer.running_mean.copy_(torch.tensor([[1.0, -2.0, 0.5]]))
        layer.running_var.copy_(torch.tensor([[4.0, 0.25, 1.0]]))
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    x = torch.randn(5, 3)
    expected = (x - layer.running_mean) / torch.sqrt(layer.running_var + 1e-3) * layer.weight + layer.bias
    torch.testing.assert_close(layer(x), expected)
    torch.testing.assert_close(layer(x[:1]), expected[:1])  # each row alone: no batch statistics
    assert all(torch.equal(before[k], v) for k, v in layer.state_dict().items())
    np.testing.assert_allclose(layer.numpy()(x.numpy()), expected.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_ensemble_critics_keep_statistics_per_member():
    torch.manual_seed(0)
    q = QEnsemble(3, [8], 1, "relu", num_q=2, renorm=RenormSpec(momentum=1.0))
    obs, action = torch.randn(32, 2), torch.randn(32, 1)
    with batch_statistics(q):
        q(obs, action)
    hidden = q.norms[1]
    assert hidden.running_mean.shape == (2, 1, 8)
    for k in range(2):  # momentum 1: each member's statistics are its own batch's
        first = q.norms[0]
        x0 = torch.cat([obs, action], -1)
        x0 = (x0 - x0.mean(0)) / torch.sqrt(x0.var(0, correction=0) + 1e-3) * first.weight[k] + first.bias[k]
        h = torch.relu(x0 @ q.weights[0][k] + q.biases[0][k])
        torch.testing.assert_close(hidden.running_mean[k, 0], h.mean(0))
    assert not torch.allclose(hidden.running_mean[0], hidden.running_mean[1])


def test_joint_forward_equals_separate_forwards_on_running_statistics_and_shares_batch_statistics():
    torch.manual_seed(0)
    q = QEnsemble(3, [16, 16], 1, "relu", num_q=2, renorm=RenormSpec())
    obs, actions, next_obs, next_actions = torch.randn(8, 2), torch.rand(8, 1), torch.randn(8, 2), torch.rand(8, 1)
    with batch_statistics(q):  # move the running statistics off their initial values
        q(torch.randn(64, 2) * 2 + 1, torch.rand(64, 1))
    q_now, q_next = joint_q(q, obs, actions, next_obs, next_actions)
    torch.testing.assert_close(q_now, q(obs, actions))
    torch.testing.assert_close(q_next, q(next_obs, next_actions))  # so the target is the separate passes'
    # with batch statistics, Q(s', a') depends on the (s, a) half: the two halves are normalized together
    with batch_statistics(q):
        _, shared = joint_q(q, obs, actions, next_obs, next_actions)
        _, moved = joint_q(q, obs + 5.0, actions, next_obs, next_actions)
        alone = q(next_obs, next_actions)
    assert not torch.allclose(shared, moved) and not torch.allclose(shared, alone)
    with batch_statistics(q):
        together = q(torch.cat([obs, next_obs]), torch.cat([actions, next_actions]))[:, 8:]
    torch.testing.assert_close(shared, together)


def test_numpy_actor_twin_applies_the_running_statistics():
    torch.manual_seed(0)
    net = MLP(3, [16, 16], 2, "relu", RenormSpec(momentum=0.5))
    twin = net.numpy()  # views: later updates of the statistics show through
    with batch_statistics(net):
        net(torch.randn(64, 3) * 3 - 1)
    x = torch.randn(5, 3)
    np.testing.assert_allclose(twin(x.numpy()), net(x).detach().numpy(), rtol=1e-5, atol=1e-5)


# -- the algorithm ---------------------------------------------------------------------------------
def test_solves_continuous_identity():
    # the actor and temperature step with every critic step here (policy_delay 1), from alpha 0.1:
    # solved in half the steps the defaults (policy_delay 3, alpha from 1) take
    algo = probe_config(ContinuousIdentityEnv, ent_coef="auto_0.1", policy_delay=1).build()
    try:
        for _ in range(4):
            result = algo.train()
        assert algo.evaluate()["episode_return_mean"] > -0.02  # zero action: -1/3
        assert np.isfinite(result["critic_loss"]) and np.isfinite(result["actor_loss"])
        assert not algo.learners["default_policy"].targets
    finally:
        algo.stop()


def test_policy_acts_on_the_running_statistics_and_checkpoints_keep_them(tmp_path):
    algo = probe_config("Pendulum-v1").build()
    try:
        algo.train()
        policy = algo.policy
        obs = np.random.default_rng(0).uniform(-1, 1, (8, 3)).astype(np.float32)
        with torch.no_grad():
            greedy = torch.tanh(policy.model.actor(torch.from_numpy(obs))[0]).numpy() * 2.0  # Pendulum: [-2, 2]
        np.testing.assert_allclose(policy.compute_actions(obs, explore=False), greedy, rtol=1e-5, atol=1e-5)
        state = policy.get_state()
        assert not np.allclose(state["model.actor.net.norms.1.running_mean"], 0.0)
        # one joint pass of the critics per critic step; the actor's, every policy_delay (3) of them
        critic_steps = algo.learners["default_policy"].critic_steps
        assert critic_steps == algo.num_gradient_steps > 0
        steps = [int(m.steps) for m in policy.model.modules() if isinstance(m, BatchRenorm)]
        assert steps == [critic_steps // 3] * 3 + [critic_steps] * 3  # actor's 3 layers, then the critics'
        path = algo.save(tmp_path / "ck")
        restored = Algorithm.from_checkpoint(path)
        try:
            assert type(restored) is CrossQ
            np.testing.assert_array_equal(
                restored.compute_actions(obs, explore=False), algo.compute_actions(obs, explore=False)
            )
            assert restored.learners["default_policy"].critic_steps == algo.learners["default_policy"].critic_steps
            restored.train()
            algo.restore(path)
            algo.train()
            assert_same_arrays(algo, restored)
        finally:
            restored.stop()
    finally:
        algo.stop()


def test_onnx_export_serves_the_greedy_action_on_the_running_statistics(tmp_path):
    pytest.importorskip("onnxscript")
    from rlarena.export.onnx import OnnxPolicy

    algo = probe_config("Pendulum-v1", min_sample_timesteps_per_iteration=100).build()
    try:
        algo.train()  # the running statistics move off zero mean, unit variance
        served = OnnxPolicy(algo.export_onnx(tmp_path / "p.onnx"))
        obs = np.random.default_rng(0).uniform(-1, 1, (6, 3)).astype(np.float32)
        np.testing.assert_allclose(
            served.compute_actions(obs, explore=False), algo.compute_actions(obs, explore=False), rtol=1e-4, atol=1e-5
        )
        np.testing.assert_allclose(served.compute_values(obs), algo.policy.compute_values(obs), rtol=1e-4, atol=1e-4)
        assert not any(m.training for m in algo.policy.model.modules() if isinstance(m, BatchRenorm))
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
    assert get_algorithm_class("CrossQ") is CrossQ
    config = {
        "min_sample_timesteps_per_iteration": 100,
        "num_steps_sampled_before_learning_starts": 50,
        "train_batch_size": 16,
        "critic_hiddens": [32],
    }
    argv = ["train", "--algo", "CrossQ", "--env", "Pendulum-v1", "--config", json.dumps(config)]
    stop = ["--stop", json.dumps({"training_iteration": 1}), "--storage-path", str(tmp_path)]
    assert main([*argv, *stop, "--verbose", "0", "--no-tensorboard", "--no-plot"]) == 0
    result = json.loads(next(tmp_path.rglob("result.json")).read_text().splitlines()[-1])
    assert result["num_env_steps_sampled_lifetime"] == 100 and math.isfinite(result["critic_loss"])


# -- defaults and refusals -------------------------------------------------------------------------
def test_defaults_and_refusals():
    cfg = CrossQConfig()
    assert (cfg.lr, cfg.adam_beta1, cfg.policy_delay, cfg.critic_hiddens, cfg.model_config["fcnet_hiddens"]) == (
        1e-3,
        0.5,
        3,
        [2048, 2048],
        [256, 256],
    )
    assert (cfg.batch_norm_momentum, cfg.batch_norm_eps, cfg.renorm_warmup_steps) == (0.01, 1e-3, 100_000)
    assert cfg.num_steps_sampled_before_learning_starts == 5000
    with pytest.raises(ConfigError, match=r"CrossQ needs Box actions; this env has Discrete\(2\)\. Use SAC") as info:
        CrossQConfig().environment("CartPole-v1").training(critic_hiddens=[8]).build()
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match=r"Invalid tau=0.005: CrossQ has no target networks"):
        CrossQConfig().environment("Pendulum-v1").training(tau=0.005).validate()
    with pytest.raises(ConfigError, match=r"Invalid target_network_update_freq=100: CrossQ has no target"):
        CrossQConfig().environment("Pendulum-v1").training(target_update_interval=100).validate()  # SB3's name
    with pytest.raises(ConfigError, match=r"Invalid train_batch_size=1: must be >= 2"):
        CrossQConfig().environment("Pendulum-v1").training(train_batch_size=1).validate()
