"""QR-DQN (algorithms/qrdqn.py): the quantile loss and its target against hand-computed numbers, masks,
the network's mean and its numpy twin, side by side with sb3-contrib's QRDQN (same weights, same
batches: the same losses and weights step after step), CartPole to a greedy mean of 195, a probe env,
the checkpoint round trip, ONNX export of the mean Q, the registry and CLI, and its refusals."""

from __future__ import annotations

import inspect
import json
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import assert_same_arrays
from probe_envs import TwoStepValueEnv

from rlarena import Algorithm, ConfigError, QRDQNConfig
from rlarena.algorithms import get_algorithm_class
from rlarena.algorithms.off_policy import ReplayBatch
from rlarena.algorithms.qrdqn import QRDQN, qrdqn_loss
from rlarena.cli.main import main
from rlarena.games.connect_four.rules import ConnectFourMultiAgent
from rlarena.multiagent import PolicySpec
from rlarena.nn.q_network import QNetwork
from rlarena.policies.q_policy import QPolicy

FAST = {
    "lr": 1e-2,
    "adam_epsilon": 1e-8,
    "n_quantiles": 8,
    "train_batch_size": 32,
    "num_steps_sampled_before_learning_starts": 64,
    "target_network_update_freq": 32,
    "min_sample_timesteps_per_iteration": 256,
    "epsilon": [[0, 1.0], [1000, 0.05]],
    "replay_buffer_config": {"capacity": 4096},
    "model": {"fcnet_hiddens": [32]},
}


def probe_config(env, **training) -> QRDQNConfig:
    return (
        QRDQNConfig()
        .environment(env)
        .env_runners(num_envs_per_env_runner=4)
        .training(**{**FAST, **training})
        .debugging(seed=0)
    )


# -- math ------------------------------------------------------------------------------------------
class Fixed(torch.nn.Module):
    """Quantiles Z(s) = s read as [n actions, M quantiles]: the observation is the table of quantiles."""

    def __init__(self, n: int = 2):
        super().__init__()
        self.n = n

    def forward(self, obs):
        return obs.reshape(len(obs), self.n, -1)


def batch_of(obs, actions, rewards, discounts, next_obs, weights, next_mask=None) -> ReplayBatch:
    return ReplayBatch(
        obs=torch.tensor(obs),
        actions=torch.tensor(actions),
        rewards=torch.tensor(rewards),
        discounts=torch.tensor(discounts),
        next_obs=torch.tensor(next_obs),
        next_mask=next_mask,
        weights=torch.tensor(weights),
    )


def test_loss_by_hand():
    # two actions of two quantiles each, at tau = (1/4, 3/4). Row 0: Z(s, 0) = (0, 1); at s' action 0 has
    # (2, 4) (mean 3) and action 1 (-1, 9) (mean 4): greedy by the mean is 1 (by the lower quantile, 0).
    # Row 1: terminated, Z(s, 1) = (5, 5), reward 7.
    batch = batch_of(
        obs=[[0.0, 1.0, 3.0, 3.0], [0.0, 0.0, 5.0, 5.0]],
        actions=[0, 1],
        rewards=[1.0, 7.0],
        discounts=[0.5, 0.0],
        next_obs=[[2.0, 4.0, -1.0, 9.0], [0.0, 0.0, 0.0, 0.0]],
        weights=[1.0, 2.0],
    )
    loss, td, _ = qrdqn_loss(Fixed(), Fixed(), batch, double_q=False)
    # row 0: y = 1 + 0.5 * (-1, 9) = (0.5, 5.5); u = y_j - z_m, rho = |tau - 1[u < 0]| * Huber_1(u)
    #   m = 0 (tau 1/4): u = 0.5 -> 1/4 * 0.125;   u = 5.5 -> 1/4 * 5.0;  mean over j: 0.640625
    #   m = 1 (tau 3/4): u = -0.5 -> 1/4 * 0.125;  u = 4.5 -> 3/4 * 4.0;  mean over j: 1.515625
    #   summed over m: 2.15625
    # row 1: y = (7, 7), u = 2 everywhere, Huber 1.5: m = 0 gives 1/4 * 1.5, m = 1 3/4 * 1.5; sum 1.5
    assert loss.item() == pytest.approx((1.0 * 2.15625 + 2.0 * 1.5) / 2)
    # the TD error for priorities: mean_m z - mean_j y
    np.testing.assert_allclose(td.numpy(), [0.5 - 3.0, 5.0 - 7.0], rtol=1e-6)
    # masked: action 1 illegal at s'0, so the target is action 0's quantiles: y = 1 + 0.5 * (2, 4) = (2, 3)
    batch.next_mask = torch.tensor([[True, False], [False, False]])
    _, td, _ = qrdqn_loss(Fixed(), Fixed(), batch, double_q=False)
    np.testing.assert_allclose(td.numpy(), [0.5 - 2.5, 5.0 - 7.0], rtol=1e-6)


def test_target_takes_the_target_networks_quantiles_at_the_greedy_action_by_the_mean():
    class Swapped(Fixed):
        """The target network: the online table with the two actions swapped."""

        def forward(self, obs):
            return super().forward(obs).flip(1)

    batch = batch_of(
        obs=[[0.0, 0.0, 0.0, 0.0]],
        actions=[0],
        rewards=[0.0],
        discounts=[1.0],
        next_obs=[[0.0, 6.0, 1.0, 1.0]],  # online: action 0 (0, 6) mean 3, action 1 (1, 1) mean 1
        weights=[1.0],
    )
    # the target's own greedy action: its action 1 (= online's 0, mean 3), so y = (0, 6)
    _, td, _ = qrdqn_loss(Fixed(), Swapped(), batch, double_q=False)
    assert td.item() == pytest.approx(-3.0)
    # double Q: the online network picks action 0, the target evaluates it: its action 0 is (1, 1)
    _, td, _ = qrdqn_loss(Fixed(), Swapped(), batch, double_q=True)
    assert td.item() == pytest.approx(-1.0)


@pytest.mark.parametrize("dueling", [False, True])
def test_the_network_outputs_quantiles_and_acts_on_their_mean(dueling):
    net = QNetwork(3, 4, (8,), "relu", dueling=dueling, quantiles=5)
    x = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    z = net(torch.from_numpy(x)).detach()
    assert z.shape == (6, 4, 5)
    np.testing.assert_allclose(net.mean_q(torch.from_numpy(x)).detach().numpy(), z.mean(-1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(net.numpy_q()(x), z.mean(-1).numpy(), rtol=1e-5, atol=1e-6)
    if dueling:  # V + A - mean_a A, per quantile
        h = torch.relu(net.layers[0](torch.from_numpy(x)))
        a, v = net.q_head(h).reshape(6, 4, 5), net.v_head(h)[:, None, :]
        torch.testing.assert_close(z, (v + a - a.mean(1, keepdim=True)).detach())


# -- masks -----------------------------------------------------------------------------------------
def test_greedy_and_exploring_actions_are_legal_only():
    space = gym.spaces.Dict({"observation": gym.spaces.Box(-1, 1, (3,)), "action_mask": gym.spaces.MultiBinary(5)})
    model = {"fcnet_hiddens": [16], "fcnet_activation": "relu"}
    policy = QPolicy(space, gym.spaces.Discrete(5), model, seed=0, quantiles=7)
    rng = np.random.default_rng(0)
    masks = rng.random((2000, 5)) < 0.4
    masks[np.arange(2000), rng.integers(0, 5, 2000)] = True  # at least one legal action
    obs = {"observation": rng.uniform(-1, 1, (2000, 3)).astype(np.float32), "action_mask": masks}
    for epsilon in (0.0, 0.5, 1.0):
        policy.epsilon = epsilon
        for explore in (True, False):
            actions = policy.compute_actions(obs, explore=explore)
            assert masks[np.arange(2000), actions].all(), (epsilon, explore)
    # greedy is the masked argmax of the quantiles' mean
    z = policy.model(torch.from_numpy(obs["observation"])).detach().mean(-1).numpy()
    np.testing.assert_array_equal(policy.compute_actions(obs, explore=False), np.where(masks, z, -1e9).argmax(-1))


# -- side by side with sb3-contrib ----------------------------------------------------------------
B, STEPS, GAMMA, M = 64, 6, 0.99, 11
HIDDENS = [64, 64]
# rlarena's QNetwork parameter -> sb3-contrib's quantile_net (nn.Sequential: Linear, ReLU, Linear, ReLU, Linear)
PARAMS = {"layers.0": "quantile_net.0", "layers.1": "quantile_net.2", "q_head": "quantile_net.4"}


def head_as_theirs(t: torch.Tensor, n: int) -> torch.Tensor:
    """rlarena's head rows are action-major (a * M + m: [B, n, M]); sb3-contrib's quantile-major
    (m * n + a: it views its output as [B, M, n])."""
    return t.reshape(n, M, *t.shape[1:]).transpose(0, 1).reshape(t.shape)


def flat_mine(model, n: int) -> torch.Tensor:
    named = dict(model.named_parameters())
    parts = []
    for layer in PARAMS:
        for kind in ("weight", "bias"):
            p = named[f"{layer}.{kind}"].detach()
            parts.append((head_as_theirs(p, n) if layer == "q_head" else p).reshape(-1))
    return torch.cat(parts)


def flat_theirs(net) -> torch.Tensor:
    named = dict(net.named_parameters())
    return torch.cat(
        [named[f"{layer}.{kind}"].detach().reshape(-1) for layer in PARAMS.values() for kind in ("weight", "bias")]
    )


def test_loss_clipping_and_adam_steps_as_sb3_contribs():
    """The same weights and batches into both: the same targets (the target network's quantiles at its
    greedy action by the mean, 1 - done), the loss (summed over quantiles, mean over target atoms and
    rows), gradient clipping and Adam (epsilon 0.01 / batch_size, as sb3-contrib sets it)."""
    pytest.importorskip("sb3_contrib")
    from sb3_contrib import QRDQN as SB3QRDQN
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.type_aliases import ReplayBufferSamples

    algo = (
        QRDQNConfig()
        .environment("CartPole-v1")
        .env_runners(num_envs_per_env_runner=1)
        .training(
            lr=2.3e-3,
            gamma=GAMMA,
            train_batch_size=B,
            adam_epsilon=0.01 / B,
            grad_clip=1.0,  # low enough that these batches' gradients are clipped
            n_quantiles=M,
            model={"fcnet_hiddens": HIDDENS, "fcnet_activation": "relu"},
        )
        .debugging(seed=0)
        .build()
    )
    sb3 = SB3QRDQN(
        "MlpPolicy",
        "CartPole-v1",
        learning_rate=2.3e-3,
        gamma=GAMMA,
        batch_size=B,
        max_grad_norm=1.0,
        learning_starts=0,
        policy_kwargs={"net_arch": HIDDENS, "n_quantiles": M},
        seed=0,
        device="cpu",
    )
    sb3.set_logger(configure(None, []))
    try:
        model, n = algo.get_policy().model, 2
        with torch.no_grad():  # rlarena's weights (and so its target's, a copy) into both of sb3-contrib's
            mine = dict(model.named_parameters())
            for net in (sb3.quantile_net, sb3.quantile_net_target):
                theirs = dict(net.named_parameters())
                for layer, their_layer in PARAMS.items():
                    for kind in ("weight", "bias"):
                        p = mine[f"{layer}.{kind}"]
                        theirs[f"{their_layer}.{kind}"].copy_(head_as_theirs(p, n) if layer == "q_head" else p)
        rng = np.random.default_rng(0)
        data = [
            {
                "obs": rng.normal(0, 1, (B, 4)).astype(np.float32),
                "actions": rng.integers(0, 2, B),
                "rewards": rng.choice([1.0, 1.0, 5.0, -3.0], B).astype(np.float32),  # some |u| past the bend
                "dones": (rng.random(B) < 0.125).astype(np.float32),
                "next_obs": rng.normal(0, 1, (B, 4)).astype(np.float32),
            }
            for _ in range(STEPS)
        ]
        feed = iter(
            ReplayBatch(
                obs=torch.from_numpy(d["obs"]),
                actions=torch.from_numpy(d["actions"]),
                rewards=torch.from_numpy(d["rewards"]),
                discounts=torch.from_numpy(GAMMA * (1 - d["dones"])).float(),
                next_obs=torch.from_numpy(d["next_obs"]),
                next_mask=None,
                weights=torch.ones(B),
            )
            for d in data
        )
        algo.replay = lambda policy_id: (next(feed), np.arange(B))
        answers = iter(
            ReplayBufferSamples(
                torch.from_numpy(d["obs"]),
                torch.from_numpy(d["actions"][:, None]),
                torch.from_numpy(d["next_obs"]),
                torch.from_numpy(d["dones"][:, None]),
                torch.from_numpy(d["rewards"][:, None]),
                None,
            )
            for d in data
        )
        sb3.replay_buffer.sample = lambda batch_size, env=None: next(answers)
        norms = []
        for step in range(STEPS):
            stats = algo.update_policy("default_policy")
            sb3.train(gradient_steps=1, batch_size=B)
            assert float(stats[0]) == pytest.approx(sb3.logger.name_to_value["train/loss"], rel=1e-5), f"step {step}"
            norms.append(float(stats[3]))
            torch.testing.assert_close(flat_mine(model, n), flat_theirs(sb3.quantile_net), rtol=1e-4, atol=1e-6)
        assert max(norms) > 1.0  # the clip was exercised
        target = algo.learners["default_policy"].targets["q"].module
        torch.testing.assert_close(flat_mine(target, n), flat_theirs(sb3.quantile_net_target))  # neither moved
    finally:
        algo.stop()


def test_defaults_are_sb3_contribs():
    pytest.importorskip("sb3_contrib")
    from sb3_contrib import QRDQN as SB3QRDQN
    from sb3_contrib.qrdqn.policies import QuantileNetwork

    theirs = {k: p.default for k, p in inspect.signature(SB3QRDQN.__init__).parameters.items()}
    cfg = QRDQNConfig()
    assert cfg.n_quantiles == inspect.signature(QuantileNetwork.__init__).parameters["n_quantiles"].default == 200
    assert (cfg.lr, cfg.train_batch_size, cfg.gamma, cfg.tau) == (
        theirs["learning_rate"],
        theirs["batch_size"],
        theirs["gamma"],
        theirs["tau"],
    )
    assert cfg.adam_epsilon == 0.01 / theirs["batch_size"]
    assert cfg.grad_clip is theirs["max_grad_norm"] is None
    assert cfg.target_network_update_freq == theirs["target_update_interval"]
    assert cfg.num_steps_sampled_before_learning_starts == theirs["learning_starts"]
    assert (
        cfg.epsilon[0][1] == theirs["exploration_initial_eps"] and cfg.epsilon[-1][1] == theirs["exploration_final_eps"]
    )
    assert cfg.replay_config["type"] == "ReplayBuffer" and cfg.replay_config["capacity"] == theirs["buffer_size"]
    assert cfg.n_step == theirs["n_steps"] and not cfg.double_q and not cfg.dueling


# -- learning --------------------------------------------------------------------------------------
def test_solves_cartpole():
    """RL-Zoo's DQN CartPole rhythm (as tests/test_dqn.py) with 10 quantiles on a [64, 64] net, 4 envs: a
    greedy 20-episode mean >= 195. Seeds 0-3 measured: 2-5k env steps, 1-5 s."""
    algo = (
        QRDQNConfig()
        .environment("CartPole-v1")
        .env_runners(num_envs_per_env_runner=4, rollout_fragment_length=16)
        .training(
            lr=2.3e-3,
            train_batch_size=64,
            adam_epsilon=0.01 / 64,
            gradient_steps=32,
            target_network_update_freq=10,
            epsilon=[[0, 1.0], [8000, 0.04]],
            num_steps_sampled_before_learning_starts=1000,
            n_quantiles=10,
            grad_clip=10.0,
        )
        .evaluation(evaluation_duration=20)
        .debugging(seed=0)
        .build()
    )
    try:
        for _ in range(10):
            algo.train()
            score = algo.evaluate()["episode_return_mean"]
            if score >= 195:
                break
        assert score >= 195
    finally:
        algo.stop()


@pytest.mark.parametrize(("n_step", "buffer"), [(1, "ReplayBuffer"), (2, "PrioritizedReplayBuffer")])
def test_learns_values_and_does_not_bootstrap_through_a_termination(n_step, buffer):
    gamma = 0.9
    algo = probe_config(
        TwoStepValueEnv, gamma=gamma, n_step=n_step, replay_buffer_config={"type": buffer, "capacity": 4096}
    ).build()
    try:
        for _ in range(8):
            algo.train()
        q = algo.policy.compute_q_values(np.stack([TwoStepValueEnv.S0, TwoStepValueEnv.S1]))
        np.testing.assert_allclose(q, [[gamma, gamma], [1.0, 1.0]], atol=0.05)
    finally:
        algo.stop()


# -- checkpoints, export, registry -----------------------------------------------------------------
def test_checkpoint_round_trip_keeps_greedy_actions_and_continues_identically(tmp_path):
    algo = probe_config("CartPole-v1").build()
    try:
        algo.train()
        path = algo.save(tmp_path / "ck")
        obs = np.random.default_rng(0).normal(0, 1, (16, 4)).astype(np.float32)
        restored = Algorithm.from_checkpoint(path)
        try:
            assert type(restored) is QRDQN and restored.policy.model.q_head.out_features == 2 * FAST["n_quantiles"]
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


def test_onnx_export_serves_the_masked_mean_q(tmp_path):
    pytest.importorskip("onnxscript")
    from rlarena.export.onnx import OnnxPolicy, export_onnx

    space = gym.spaces.Dict(
        {"observation": gym.spaces.Box(-1, 1, (3,)), "action_mask": gym.spaces.Box(0, 1, (4,), np.int8)}
    )
    model = {"fcnet_hiddens": [8], "fcnet_activation": "relu"}
    policy = QPolicy(space, gym.spaces.Discrete(4), model, seed=0, quantiles=6)
    served = OnnxPolicy(export_onnx({"q": policy}, tmp_path / "q.onnx", "q"))
    rng = np.random.default_rng(0)
    obs = {
        "observation": rng.uniform(-1, 1, (6, 3)).astype(np.float32),
        "action_mask": np.array([[1, 0, 1, 0]] * 3 + [[0, 0, 0, 1]] * 3, np.int8),
    }
    q, value = served.compute_outputs(obs)
    mean = policy.model(torch.from_numpy(obs["observation"])).detach().mean(-1).numpy()
    np.testing.assert_allclose(q, np.where(obs["action_mask"] == 1, mean, -1e9), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(q, policy.compute_q_values(obs), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(value, q.max(-1), rtol=1e-6)
    np.testing.assert_array_equal(served.compute_actions(obs, explore=False), policy.compute_actions(obs, False))


def test_registered_by_name_and_trains_from_the_cli(tmp_path):
    assert get_algorithm_class("QRDQN") is QRDQN
    config = {**FAST, "min_sample_timesteps_per_iteration": 128}
    argv = ["train", "--algo", "QRDQN", "--env", "CartPole-v1", "--config", json.dumps(config)]
    stop = ["--stop", json.dumps({"training_iteration": 1}), "--storage-path", str(tmp_path)]
    assert main([*argv, *stop, "--verbose", "0", "--no-tensorboard", "--no-plot"]) == 0
    result = json.loads(next(tmp_path.rglob("result.json")).read_text().splitlines()[-1])
    assert math.isfinite(result["qf_loss"])


# -- refusals --------------------------------------------------------------------------------------
def test_refusals_are_one_clear_line():
    with pytest.raises(ConfigError, match=r"QR-DQN needs Discrete actions; this env has Box\(") as info:
        QRDQNConfig().environment("Pendulum-v1").build()
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="Invalid n_quantiles=0: must be >= 1"):
        QRDQNConfig().environment("CartPole-v1").training(n_quantiles=0).validate()
    with pytest.raises(ConfigError, match="model.use_lstm=True: QRDQN does not train recurrent models"):
        QRDQNConfig().environment("CartPole-v1").training(model={"use_lstm": True}).build()
    # a plain QPolicy (one Q per action) named in a PolicySpec: not a quantile network
    with pytest.raises(ConfigError, match="QRDQN trains its own quantile Q-network policies") as info:
        QRDQNConfig().environment(ConnectFourMultiAgent).multi_agent(
            policies={"p": PolicySpec(policy_class=QPolicy)}, policy_mapping_fn=lambda agent_id, *a, **k: "p"
        ).build()
    assert "\n" not in str(info.value)
