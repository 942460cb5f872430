"""A2C: SB3's defaults, its loss against hand-computed numbers, probe envs and CartPole in about a
second, action masks, multi-agent, checkpoint round trip and the CLI."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import comparable, weights
from probe_envs import DiscreteIdentityEnv

from rlarena import A2CConfig, Algorithm, PolicySpec
from rlarena.algorithms.a2c import A2C, a2c_loss
from rlarena.algorithms.algorithm import _seed_for
from rlarena.envs.arena import MultiAgentArena
from rlarena.nn.flat import RMSprop


def a2c_config(env, seed: int = 0, num_envs: int = 8, **training) -> A2CConfig:
    return (
        A2CConfig()
        .environment(env)
        .env_runners(num_envs_per_env_runner=num_envs)
        .training(**training)
        .evaluation(evaluation_duration=20)
        .debugging(seed=seed)
    )


def test_defaults_are_sb3s():
    cfg = A2CConfig().environment("CartPole-v1")
    assert cfg.fragment_length == 5  # SB3's n_steps with the default 8 envs
    assert (cfg.lr, cfg.gamma, cfg.lambda_, cfg.entropy_coeff, cfg.vf_loss_coeff, cfg.grad_clip) == (
        7e-4,
        0.99,
        1.0,
        0.0,
        0.5,
        0.5,
    )
    assert not cfg.normalize_advantages and cfg.use_rms_prop and cfg.rms_prop_eps == 1e-5
    assert cfg.model_config["fcnet_hiddens"] == [64, 64] and cfg.model_config["fcnet_activation"] == "tanh"
    assert not cfg.model_config["vf_share_layers"]


def test_loss_matches_hand_computed_values():
    class Fixed(torch.nn.Module):  # logits and values that do not depend on the observation
        def forward(self, obs):
            logits = torch.log(torch.tensor([[0.25, 0.75]])).expand(len(obs), 2)
            return logits, torch.tensor([0.5, -1.0])

    from rlarena.nn.distributions import Categorical

    cfg = A2CConfig(entropy_coeff=0.1, vf_loss_coeff=0.5)
    loss, stats = a2c_loss(
        Fixed(),
        Categorical(),
        cfg,
        torch.zeros(2, 1),
        torch.tensor([0, 1]),
        torch.tensor([2.0, -1.0]),
        torch.tensor([1.5, 1.0]),
    )
    policy_loss = -(2.0 * np.log(0.25) - 1.0 * np.log(0.75)) / 2
    vf_loss = ((0.5 - 1.5) ** 2 + (-1.0 - 1.0) ** 2) / 2
    entropy = -(0.25 * np.log(0.25) + 0.75 * np.log(0.75))
    np.testing.assert_allclose(stats.numpy(), [policy_loss, vf_loss, entropy], rtol=1e-6)
    assert loss.item() == pytest.approx(policy_loss + 0.5 * vf_loss - 0.1 * entropy, rel=1e-6)


def test_rmsprop_matches_torch():
    from rlarena.nn.flat import FlatParameters

    torch.manual_seed(0)
    ours, theirs = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    theirs.load_state_dict(ours.state_dict())
    flat = FlatParameters(ours)
    opt = RMSprop(flat, lr=7e-4, alpha=0.99, eps=1e-5)
    ref = torch.optim.RMSprop(theirs.parameters(), lr=7e-4, alpha=0.99, eps=1e-5)
    for step in range(20):
        x = torch.randn(8, 3)
        flat.zero_grad()
        ours(x).pow(2).sum().backward()
        opt.step()
        ref.zero_grad()
        theirs(x).pow(2).sum().backward()
        ref.step()
    for a, b in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    state = opt.get_state()
    again = RMSprop(FlatParameters(torch.nn.Linear(3, 2)), lr=1.0)
    again.set_state(state)
    assert again.steps == 20 and again.lr == 7e-4
    np.testing.assert_array_equal(again.square_avg.numpy(), state["square_avg"])


def test_discrete_identity_is_solved(build):
    # random: 1/4; optimum 1.0 (measured: 1.0 after 50 iterations on seeds 0-3)
    algo = build(a2c_config(DiscreteIdentityEnv, lr=3e-3).evaluation(evaluation_duration=100))
    for _ in range(100):
        algo.train()
    assert algo.evaluate()["episode_return_mean"] >= 0.95


def test_cartpole_is_solved_in_a_second(build):
    # measured: greedy means 470-500 after 250 iterations (10k steps, ~0.5 s) on seeds 0-4
    algo = build(a2c_config("CartPole-v1"))
    for _ in range(250):
        result = algo.train()
    assert result["num_env_steps_sampled_lifetime"] == 250 * 40
    assert {"policy_loss", "vf_loss", "entropy", "grad_norm", "explained_variance", "cur_lr"} <= set(result)
    assert algo.evaluate()["episode_return_mean"] >= 195


def test_checkpoint_round_trip_continues_identically(build, track, tmp_path):
    algo = build(a2c_config("CartPole-v1", num_envs=4))
    for _ in range(3):
        algo.train()
    path = algo.save(tmp_path / "ckpt")
    restored = track(Algorithm.from_checkpoint(path))
    assert type(restored) is A2C and isinstance(restored.optimizers[("default_policy", "main")], RMSprop)
    algo.runner.reset(_seed_for(algo.config.seed, 2, algo.iteration))  # what a restore does to the envs
    for _ in range(3):
        assert comparable(restored.train()) == comparable(algo.train())
    for key, value in weights(algo).items():
        torch.testing.assert_close(weights(restored)[key], value, rtol=0, atol=0)


def test_same_seed_same_training(build):
    a, b = build(a2c_config("CartPole-v1", num_envs=4)), build(a2c_config("CartPole-v1", num_envs=4))
    for _ in range(5):
        assert comparable(a.train()) == comparable(b.train())


class RandomMask(gym.Env):
    """Discrete(6) actions, a random non-empty legal subset each step; an illegal action raises."""

    def __init__(self, config=None):
        self.observation_space = gym.spaces.Dict(
            {"observation": gym.spaces.Box(-1, 1, (3,), np.float32), "action_mask": gym.spaces.Box(0, 1, (6,), np.int8)}
        )
        self.action_space = gym.spaces.Discrete(6)

    def _obs(self):
        self.mask = (self.np_random.random(6) < 0.3).astype(np.int8)
        self.mask[self.np_random.integers(6)] = 1
        return {"observation": self.np_random.uniform(-1, 1, 3).astype(np.float32), "action_mask": self.mask}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        if not self.mask[action]:
            raise AssertionError(f"illegal action {action} under mask {self.mask}")
        self.t += 1
        return self._obs(), float(action == int(np.flatnonzero(self.mask)[-1])), False, self.t >= 20, {}


def test_masked_actions_are_never_illegal(build):
    algo = build(a2c_config(RandomMask, num_envs=4, entropy_coeff=0.01))
    for _ in range(50):
        algo.train()  # the env raises on any illegal action
    rng = np.random.default_rng(0)
    masks = rng.random((1000, 6)) < 0.3
    masks[np.arange(1000), rng.integers(0, 6, 1000)] = True
    obs = {"observation": rng.uniform(-1, 1, (1000, 3)).astype(np.float32), "action_mask": masks}
    for explore in (True, False):
        assert masks[np.arange(1000), algo.compute_actions(obs, explore=explore)].all()
    assert algo.evaluate()["episodes"] == 20


def test_multi_agent_trains_each_policy_and_round_trips(build, track, tmp_path):
    config = (
        A2CConfig()
        .environment(MultiAgentArena, env_config={"width": 5, "height": 5, "ts": 25})
        .env_runners(num_envs_per_env_runner=4)
        .multi_agent(
            policies={"policy1": PolicySpec(), "policy2": PolicySpec(config={"lr": 1e-3})},
            policy_mapping_fn=lambda agent_id, *a, **k: "policy1" if agent_id == "agent1" else "policy2",
        )
        .debugging(seed=0)
    )
    algo = build(config)
    for _ in range(3):
        result = algo.train()
    assert {"learner/policy1/policy_loss", "learner/policy2/vf_loss"} <= set(result)
    assert set(algo.optimizers) == {("policy1", "main"), ("policy2", "main")}
    assert algo.optimizers[("policy2", "main")].lr == 1e-3
    restored = track(
        Algorithm.from_checkpoint(
            algo.save(tmp_path / "ckpt"), config_overrides={"policy_mapping_fn": config.policy_mapping_fn}
        )
    )
    for key in algo.optimizers:
        state, again = algo.optimizers[key].get_state(), restored.optimizers[key].get_state()
        for name, value in state.items():
            np.testing.assert_array_equal(again[name], value)


def test_cli_trains_a2c(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlarena.cli.main",
            "train",
            "--algo",
            "A2C",
            "--env",
            "CartPole-v1",
            "--stop",
            '{"training_iteration": 2}',
            "--verbose",
            "0",
            "--no-tensorboard",
            "--no-plot",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    trials = list((tmp_path / "runs").glob("*/A2C_CartPole-v1_*"))
    assert len(trials) == 1
