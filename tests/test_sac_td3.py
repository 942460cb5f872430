"""SAC (Box and Discrete), TD3 and DDPG (algorithms/sac.py, td3.py): the losses against hand-computed
numbers, probe envs each solves in seconds, masks (discrete SAC on Connect Four: tests/test_dqn.py), the checkpoint round trip, config errors, the CLI
and ONNX export. Learning Pendulum to a threshold belongs in benchmarks/ (sac_td3_pendulum.py)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import all_arrays, assert_same_arrays
from probe_envs import ContinuousIdentityEnv, DiscreteIdentityEnv, TwoStepValueEnv

from rlarena import Algorithm, DDPGConfig, SACConfig, TD3Config
from rlarena.algorithms.off_policy import ReplayBatch
from rlarena.algorithms.sac import actor_loss, critic_loss
from rlarena.algorithms.td3 import td3_critic_loss
from rlarena.errors import ConfigError
from rlarena.nn.actor_q import ActorQ, GaussianActor, QEnsemble
from rlarena.policies.actor_q_policy import ActorQPolicy

FAST = {
    "train_batch_size": 64,
    "num_steps_sampled_before_learning_starts": 64,
    "min_sample_timesteps_per_iteration": 200,
    "lr": 3e-3,
    "model": {"fcnet_hiddens": [32, 32]},
}
CONFIGS = {"SAC": SACConfig, "TD3": TD3Config, "DDPG": DDPGConfig}


def probe_config(cls, env, **training):
    return cls().environment(env).training(**{**FAST, **training}).debugging(seed=0)


def batch_of(obs, actions, rewards, discounts, next_obs, next_mask=None, mask=None) -> ReplayBatch:
    t = torch.tensor
    return ReplayBatch(
        obs=t(obs),
        actions=t(actions),
        rewards=t(rewards),
        discounts=t(discounts),
        next_obs=t(next_obs),
        next_mask=next_mask,
        weights=torch.ones(len(rewards)),
        mask=mask,
    )


# -- math ------------------------------------------------------------------------------------------
def test_squashed_gaussian_log_prob_matches_the_change_of_variables():
    torch.manual_seed(0)
    actor = GaussianActor(3, 2, [16], "relu")
    obs = torch.randn(500, 3)
    action, logp = actor.sample(obs)
    mean, log_std = actor(obs)
    u = torch.atanh(action.clamp(-1 + 1e-6, 1 - 1e-6))
    normal = torch.distributions.Normal(mean, log_std.exp())
    expected = (normal.log_prob(u) - torch.log(1 - action.pow(2))).sum(-1)  # Haarnoja et al. 2018, eq. 21
    ok = action.abs().max(-1).values < 0.999  # atanh is ill-conditioned at the edges
    torch.testing.assert_close(logp[ok], expected[ok], rtol=1e-3, atol=1e-3)
    assert action.abs().max() <= 1


def test_ensemble_critics_are_independent_mlps():
    torch.manual_seed(0)
    q = QEnsemble(4, [8, 8], 1, "relu", num_q=2)
    x, a = torch.randn(5, 3), torch.randn(5, 1)
    out = q(x, a)
    assert out.shape == (2, 5)
    for k in range(2):  # each slice is an ordinary MLP on [obs, action]
        h = torch.cat([x, a], -1)
        for i, (w, b) in enumerate(zip(q.weights, q.biases)):
            h = h @ w[k] + b[k]
            h = torch.relu(h) if i < 2 else h
        torch.testing.assert_close(out[k], h.squeeze(-1))


class Table(torch.nn.Module):
    """Discrete critics/actor as a lookup: the output for obs row i is fixed[i]."""

    def __init__(self, values, num_q=None):
        super().__init__()
        self.values, self.num_q = torch.tensor(values), num_q

    def forward(self, obs, action=None):
        return self.values[..., obs[:, 0].long(), :]


def test_discrete_sac_critic_target_by_hand():
    model = ActorQ(1, 2, "categorical", [4], "relu", num_q=2)
    # actor logits: s0 -> (0, 0) (uniform), s1 -> (0, ln 3) (pi = 1/4, 3/4)
    model.actor = Table([[0.0, 0.0], [0.0, math.log(3.0)]])
    model.critic = Table([[[1.0, 2.0], [0.0, 0.0]], [[3.0, 1.0], [0.0, 0.0]]], num_q=2)  # Q_k(s0, .)
    target = Table([[[0.0, 0.0], [4.0, 8.0]], [[0.0, 0.0], [6.0, 2.0]]])  # Q'_k(s1, .): min (4, 2)
    batch = batch_of([[0.0]], [1], [0.5], [0.9], [[1.0]])
    alpha = torch.tensor(0.1)
    loss, td = critic_loss(model, target, batch, alpha)
    # V(s1) = 1/4 (4 - 0.1 ln 1/4) + 3/4 (2 - 0.1 ln 3/4); y = 0.5 + 0.9 V; Q_1(s0, 1) = 2, Q_2 = 1
    v = 0.25 * (4 - 0.1 * math.log(0.25)) + 0.75 * (2 - 0.1 * math.log(0.75))
    y = 0.5 + 0.9 * v
    assert td.item() == pytest.approx(2 - y, rel=1e-5)
    assert loss.item() == pytest.approx(0.5 * ((2 - y) ** 2 + (1 - y) ** 2), rel=1e-5)
    # masked: action 0 illegal in s1, so pi(s1) = (0, 1) and V = 2 - 0.1 ln 1 = 2
    _, td = critic_loss(
        model, target, batch_of([[0.0]], [1], [0.5], [0.9], [[1.0]], torch.tensor([[False, True]])), alpha
    )
    assert td.item() == pytest.approx(2 - (0.5 + 0.9 * 2.0), rel=1e-5)
    # the actor's loss: sum_a pi (alpha log pi - min_k Q(s0, a)) = 1/2 (0.1 ln 1/2 - 1) * 2
    loss_pi, entropy, _ = actor_loss(model, batch, alpha)
    assert loss_pi.item() == pytest.approx(0.5 * (0.1 * math.log(0.5) - 1) + 0.5 * (0.1 * math.log(0.5) - 1))
    assert entropy.item() == pytest.approx(math.log(2))


def test_td3_target_takes_the_min_and_smoothing_is_clipped():
    class Const(torch.nn.Module):  # actor: mu(s) = atanh(0.5), so tanh(mu) = 0.5
        def forward(self, obs):
            return torch.full((len(obs), 1), math.atanh(0.5))

    class Critic(torch.nn.Module):  # Q_1 = 10 a, Q_2 = 4 + 2 a
        num_q = 2

        def forward(self, obs, action):
            return torch.stack([10 * action[:, 0], 4 + 2 * action[:, 0]])

    pair = ActorQ(1, 1, "deterministic", [4], "relu")
    pair.actor, pair.critic = Const(), Critic()
    batch = batch_of([[0.0]], [[0.2]], [1.0], [0.5], [[0.0]])
    loss, td, q_mean = td3_critic_loss(pair, pair, batch, smooth=False, noise=0.0, noise_clip=0.0)
    # a' = 0.5: min(5, 5) = 5, y = 1 + 0.5 * 5 = 3.5; Q(s, 0.2) = (2, 4.4)
    assert td.item() == pytest.approx(2 - 3.5)
    assert loss.item() == pytest.approx((2 - 3.5) ** 2 + (4.4 - 3.5) ** 2, rel=1e-6)
    assert q_mean.item() == pytest.approx(2.0)
    # noise of std 10 clipped at 0.1: a' in [0.4, 0.6], min_k Q_k(a') in [min(4, 4.8), min(6, 5.2)],
    # y in [3.0, 3.6]; without the clip, a' would reach the bounds -1 and 1 (y down to -4)
    torch.manual_seed(0)
    tds = [td3_critic_loss(pair, pair, batch, smooth=True, noise=10.0, noise_clip=0.1)[1].item() for _ in range(50)]
    assert 2 - 3.6 - 1e-5 <= min(tds) < max(tds) <= 2 - 3.0 + 1e-5


# -- probe envs ------------------------------------------------------------------------------------
@pytest.mark.parametrize("algo_name", ["SAC", "TD3", "DDPG"])
def test_solves_continuous_identity(algo_name):
    algo = probe_config(CONFIGS[algo_name], ContinuousIdentityEnv).build()
    try:
        for _ in range(6):
            result = algo.train()
        assert algo.evaluate()["episode_return_mean"] > -0.02  # zero action: -1/3
        assert np.isfinite(result["critic_loss"])
    finally:
        algo.stop()


def test_discrete_sac_solves_identity_and_learns_values():
    algo = probe_config(SACConfig, DiscreteIdentityEnv).build()
    try:
        for _ in range(6):
            algo.train()
        assert algo.evaluate()["episode_return_mean"] == 1.0
    finally:
        algo.stop()
    gamma = 0.9  # soft values: V(s1) = 1 + alpha H, so with alpha fixed near 0 they are the plain ones
    algo = probe_config(SACConfig, TwoStepValueEnv, gamma=gamma, ent_coef=1e-4).build()
    try:
        for _ in range(6):
            algo.train()
        values = algo.policy.compute_values(np.stack([TwoStepValueEnv.S0, TwoStepValueEnv.S1]))
        np.testing.assert_allclose(values, [gamma, 1.0], atol=0.05)
    finally:
        algo.stop()


def test_box_actions_are_scaled_to_the_bounds_and_warmup_is_uniform():
    space = gym.spaces.Box(np.array([0.0, -4.0], np.float32), np.array([2.0, 4.0], np.float32))
    policy = ActorQPolicy(
        gym.spaces.Box(-1, 1, (3,)), space, {"fcnet_hiddens": [8], "fcnet_activation": "relu"}, seed=0, kind="td3"
    )
    obs = np.random.default_rng(0).uniform(-1, 1, (2000, 3)).astype(np.float32)
    policy.random_actions = True
    actions = policy.compute_actions(obs)
    assert space.contains(actions[0]) and (actions >= space.low).all() and (actions <= space.high).all()
    assert actions.min(0) == pytest.approx(space.low, abs=0.05) and actions.max(0) == pytest.approx(
        space.high, abs=0.05
    )
    policy.random_actions, policy.exploration_noise = False, 0.0
    greedy = policy.compute_actions(obs, explore=False)
    mu = torch.tanh(policy.model.actor(torch.from_numpy(obs))).detach().numpy()
    np.testing.assert_allclose(greedy, mu * [1.0, 4.0] + [1.0, 0.0], rtol=1e-5, atol=1e-5)


# -- checkpoints -----------------------------------------------------------------------------------
@pytest.mark.parametrize("algo_name", ["SAC", "TD3"])
def test_checkpoint_round_trip_continues_identically(tmp_path, algo_name):
    algo = probe_config(CONFIGS[algo_name], "Pendulum-v1").build()
    try:
        for _ in range(2):
            algo.train()
        path = algo.save(tmp_path / "ck")
        saved = all_arrays(algo)
        names = {"SAC": ["critic"], "TD3": ["actor", "critic"]}[algo_name]
        assert all(("target.default_policy", n) in saved for n in names)
        assert ("replay.default_policy", "obs") in saved
        assert {k[1] for k in saved if k[0].startswith("optimizer.")} >= {"exp_avg"}
        restored = Algorithm.from_checkpoint(path)
        try:
            assert type(restored).__name__ == algo_name
            # the new one, and the original restored in place, go on alike (one after the other: both
            # draw their noise from torch's global generator, which a restore sets)
            restored.train()
            algo.restore(path)
            algo.train()
            assert_same_arrays(algo, restored)
        finally:
            restored.stop()
    finally:
        algo.stop()


def test_sac_step_gradients_are_each_loss_on_its_own_network():
    """One SAC gradient step (actor and temperature in one backward pass, the actor's Q read through critics
    that take no gradient from it) leaves in each network's buffer exactly its own loss's gradient,
    computed here by plain autograd on a copy with every parameter live."""
    import copy

    from rlarena.algorithms.sac import temperature_loss

    algo = probe_config(SACConfig, "Pendulum-v1", policy_delay=1, grad_clip=None).build()
    try:
        algo.train()
        learner = algo.learners["default_policy"]
        model = learner.policy.model
        batch, indices = algo.replay("default_policy")
        algo.replay = lambda policy_id: (batch, indices)  # the step below replays this batch
        reference, target = copy.deepcopy(model), copy.deepcopy(learner.targets["critic"].module)
        alpha = model.temperature.alpha
        torch.manual_seed(7)
        loss_pi, entropy, _ = actor_loss(reference, batch, alpha)
        loss_alpha = temperature_loss(reference, entropy, -1.0)
        loss_q, _ = critic_loss(reference, target, batch, alpha)
        expected = {}
        for name, loss, net in (
            ("actor", loss_pi, reference.actor),
            ("alpha", loss_alpha, reference.temperature),
            ("critic", loss_q, reference.critic),
        ):
            grads = torch.autograd.grad(loss, list(net.parameters()), retain_graph=True)
            expected[name] = torch.cat([g.reshape(-1) for g in grads])
        torch.manual_seed(7)
        algo.update_policy("default_policy")
        for name, want in expected.items():
            got = learner.flats[name].grad
            assert torch.allclose(got, want, rtol=1e-4, atol=1e-6), name
    finally:
        algo.stop()


# -- config, CLI, export ---------------------------------------------------------------------------
def test_algorithm_and_space_mismatches_get_clear_errors():
    with pytest.raises(ConfigError, match="SAC needs Box or Discrete actions; this env has MultiDiscrete"):
        SACConfig().environment(lambda cfg: _Spaces(gym.spaces.MultiDiscrete([2, 3]))).build()
    with pytest.raises(ConfigError, match="TD3 needs Box actions; this env has Discrete"):
        TD3Config().environment("CartPole-v1").build()
    with pytest.raises(ConfigError, match="DDPG needs Box actions"):
        DDPGConfig().environment("CartPole-v1").build()
    with pytest.raises(ConfigError, match="needs a bounded Box"):
        SACConfig().environment(lambda cfg: _Spaces(gym.spaces.Box(-np.inf, np.inf, (2,)))).build()
    with pytest.raises(ConfigError, match="Invalid target_entropy"):
        SACConfig().environment("Pendulum-v1").training(target_entropy="high").validate()
    cfg = SACConfig().training(
        ent_coef="auto_0.1", optimization_config={"actor_learning_rate": 1e-4}, learning_starts=10
    )  # SB3's and RLlib's older names
    assert (cfg.initial_alpha, cfg.target_entropy, cfg.actor_lr) == (0.1, "auto", 1e-4)
    assert cfg.num_steps_sampled_before_learning_starts == 10
    assert SACConfig().training(ent_coef=0.05).target_entropy is None
    assert TD3Config().training(target_policy_noise=0.3).target_noise == 0.3
    ddpg = DDPGConfig()
    assert (ddpg.twin_q, ddpg.policy_delay, ddpg.smooth_target_policy) == (False, 1, False)


class _Spaces(gym.Env):
    def __init__(self, action_space):
        self.observation_space, self.action_space = gym.spaces.Box(-1, 1, (2,), np.float32), action_space

    def reset(self, *, seed=None, options=None):
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), 0.0, True, False, {}


@pytest.mark.parametrize("algo_name", ["SAC", "TD3"])
def test_cli_trains(tmp_path, algo_name):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlarena.cli.main",
            "train",
            "--algo",
            algo_name,
            "--env",
            "Pendulum-v1",
            "--config",
            json.dumps({"min_sample_timesteps_per_iteration": 200, "train_batch_size": 32}),
            "--stop",
            json.dumps({"training_iteration": 2}),
            "--storage-path",
            str(tmp_path),
            "--no-tensorboard",
            "--no-plot",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in next(tmp_path.rglob("result.json")).read_text().splitlines()]
    assert [r["training_iteration"] for r in lines] == [1, 2] and lines[-1]["num_env_steps_sampled_lifetime"] == 400


@pytest.mark.parametrize("algo_name", ["SAC", "TD3"])
def test_onnx_export_serves_the_greedy_action(tmp_path, algo_name):
    pytest.importorskip("onnxscript")
    from rlarena.export.onnx import OnnxPolicy

    algo = probe_config(CONFIGS[algo_name], "Pendulum-v1").build()
    try:
        served = OnnxPolicy(algo.export_onnx(tmp_path / "p.onnx"))
        obs = np.random.default_rng(0).uniform(-1, 1, (6, 3)).astype(np.float32)
        np.testing.assert_allclose(
            served.compute_actions(obs, explore=False), algo.compute_actions(obs, explore=False), rtol=1e-4, atol=1e-5
        )
        np.testing.assert_allclose(served.compute_values(obs), algo.policy.compute_values(obs), rtol=1e-4, atol=1e-5)
        assert np.abs(served.compute_actions(obs, explore=True)).max() <= 2.0  # Pendulum's bounds
    finally:
        algo.stop()
