"""DQN side by side with Stable-Baselines3 (issue 28), as tests/test_ppo_parity.py does for PPO.

The update: the same initial weights and the same replayed batches fed to both (SB3's replay buffer
answers with them), then the losses and the weights after each gradient step must agree to float
tolerance: the TD targets (max over the target network, 1 - done), the Huber loss's reduction, the
gradient clipping and Adam.

The loop: with RL-Zoo's rhythm (train_freq, gradient_steps, learning_starts, target_update_interval)
both libraries take the same gradient steps at the same env steps, copy the target network before
the same updates, and explore with the same epsilon at each update.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("stable_baselines3")

from stable_baselines3 import DQN as SB3DQN
from stable_baselines3.common.logger import configure
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from rlarena import DQNConfig
from rlarena.algorithms.off_policy import ReplayBatch

B, STEPS, GAMMA = 64, 6, 0.99
HIDDENS = [256, 256]
# rlarena's QNetwork parameter -> SB3's q_net (nn.Sequential: Linear, ReLU, Linear, ReLU, Linear)
PARAMS = {"layers.0": "q_net.0", "layers.1": "q_net.2", "q_head": "q_net.4"}


def make_rlarena(**training):
    hp = {
        "lr": 2.3e-3,
        "gamma": GAMMA,
        "train_batch_size": B,
        "grad_clip": 10.0,
        "double_q": False,
        "dueling": False,
        "n_step": 1,
        "replay_buffer_config": {"type": "ReplayBuffer", "capacity": 10_000},
        "model": {"fcnet_hiddens": HIDDENS, "fcnet_activation": "relu"},
        **training,
    }
    return (
        DQNConfig()
        .environment("CartPole-v1")
        .env_runners(num_envs_per_env_runner=1)
        .training(**hp)
        .debugging(seed=0)
        .build()
    )


def make_sb3(**overrides):
    hp = {
        "learning_rate": 2.3e-3,
        "gamma": GAMMA,
        "batch_size": B,
        "max_grad_norm": 10.0,
        "learning_starts": 0,
        "policy_kwargs": {"net_arch": HIDDENS},
        **overrides,
    }
    model = SB3DQN("MlpPolicy", "CartPole-v1", seed=0, device="cpu", **hp)
    model.set_logger(configure(None, []))
    return model


def copy_weights(algo, sb3) -> None:
    """rlarena's Q-network (and so its target, a copy) into SB3's q_net and q_net_target."""
    mine = dict(algo.get_policy().model.named_parameters())
    with torch.no_grad():
        for net in (sb3.q_net, sb3.q_net_target):
            theirs = dict(net.named_parameters())
            for layer, their_layer in PARAMS.items():
                for kind in ("weight", "bias"):
                    theirs[f"{their_layer}.{kind}"].copy_(mine[f"{layer}.{kind}"])


def flat(named: dict[str, torch.Tensor], layers: list[str]) -> torch.Tensor:
    return torch.cat([named[f"{layer}.{kind}"].detach().reshape(-1) for layer in layers for kind in ("weight", "bias")])


MINE, THEIRS = list(PARAMS), list(PARAMS.values())


def batches(seed: int = 0) -> list[dict[str, np.ndarray]]:
    """STEPS random CartPole-shaped transitions of B rows; about one in eight ends its episode, and
    large rewards push some TD errors past the Huber loss's bend."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(STEPS):
        out.append(
            {
                "obs": rng.normal(0, 1, (B, 4)).astype(np.float32),
                "actions": rng.integers(0, 2, B),
                "rewards": rng.choice([1.0, 1.0, 5.0, -3.0], B).astype(np.float32),
                "dones": (rng.random(B) < 0.125).astype(np.float32),
                "next_obs": rng.normal(0, 1, (B, 4)).astype(np.float32),
            }
        )
    return out


def test_targets_loss_clipping_and_adam_step_as_sb3s():
    # a clip of 1 (RL-Zoo's CartPole: 10) so that these batches' gradients are clipped
    algo, sb3 = make_rlarena(grad_clip=1.0), make_sb3(max_grad_norm=1.0)
    try:
        copy_weights(algo, sb3)
        data = batches()
        # rlarena: its update reads the batch its replay() returns
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
        # SB3: its replay buffer answers with the same rows
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

        theirs = dict(sb3.q_net.named_parameters())
        mine = dict(algo.get_policy().model.named_parameters())
        norms = []
        for step in range(STEPS):
            stats = algo.update_policy("default_policy")
            sb3.train(gradient_steps=1, batch_size=B)
            loss_sb3 = sb3.logger.name_to_value["train/loss"]
            assert float(stats[0]) == pytest.approx(loss_sb3, rel=1e-5), f"step {step}"
            norms.append(float(stats[3]))
            torch.testing.assert_close(flat(mine, MINE), flat(theirs, THEIRS), rtol=1e-4, atol=1e-6)
        assert max(norms) > 1.0  # the clip was exercised
        # neither moved its target network inside the updates
        target = dict(algo.learners["default_policy"].targets["q"].module.named_parameters())
        torch.testing.assert_close(flat(target, MINE), flat(dict(sb3.q_net_target.named_parameters()), THEIRS))
    finally:
        algo.stop()


# -- the loop: when each library updates, against which target, with which epsilon ---------------------------
RHYTHM = {"train_freq": 16, "gradient_steps": 4, "learning_starts": 48, "target_update_interval": 24}
TOTAL, EPS_END, EPS_STEPS = 400, 0.05, 200


def sb3_rhythm() -> tuple[list, dict[int, float]]:
    """SB3's learn(): [(env step, gradient steps, the updates its target network has seen)] per train()
    call, and the epsilon of each epsilon-greedy action by env step."""
    sb3 = make_sb3(
        policy_kwargs={"net_arch": [8]},
        exploration_initial_eps=1.0,
        exploration_final_eps=EPS_END,
        exploration_fraction=EPS_STEPS / TOTAL,
        **RHYTHM,
    )
    calls, epsilons, target = [], {}, [0]
    train, on_step, predict = sb3.train, sb3._on_step, sb3.predict

    def record_train(gradient_steps, batch_size=100):
        calls.append((sb3.num_timesteps, gradient_steps, target[0]))
        train(gradient_steps=gradient_steps, batch_size=batch_size)

    def record_on_step():
        if (sb3._n_calls + 1) % max(sb3.target_update_interval // sb3.n_envs, 1) == 0:
            target[0] = sb3._n_updates  # the copy this call makes
        on_step()

    def record_predict(observation, state=None, episode_start=None, deterministic=False):
        epsilons[sb3.num_timesteps] = sb3.exploration_rate
        return predict(observation, state, episode_start, deterministic)

    sb3.train, sb3._on_step, sb3.predict = record_train, record_on_step, record_predict
    sb3.learn(total_timesteps=TOTAL)
    return calls, epsilons


def rlarena_rhythm() -> tuple[list, dict[int, float]]:
    """The same from rlarena's training_step, with SB3's option names."""
    algo = make_rlarena(
        model={"fcnet_hiddens": [8], "fcnet_activation": "relu"},
        epsilon=[[0, 1.0], [EPS_STEPS, EPS_END]],
        min_sample_timesteps_per_iteration=RHYTHM["train_freq"],
        **RHYTHM,
    )
    calls, epsilons, target = [], {}, [0]
    policy = algo.get_policy()
    update, update_targets, greedy = algo.update_policy, algo.update_targets, policy.epsilon_greedy

    def record_update(policy_id):
        step = algo.num_env_steps_sampled_lifetime
        if calls and calls[-1][0] == step:
            calls[-1] = (step, calls[-1][1] + 1, calls[-1][2])
        else:
            calls.append((step, 1, target[0]))
        return update(policy_id)

    def record_targets():
        target[0] = algo.num_gradient_steps
        update_targets()

    def record_greedy(q, explore, mask):
        step = int(policy.explore_step)
        out = greedy(q, explore, mask)
        if explore:
            epsilons[step] = policy.epsilon
        return out

    algo.update_policy, algo.update_targets, policy.epsilon_greedy = record_update, record_targets, record_greedy
    try:
        while algo.num_env_steps_sampled_lifetime < TOTAL:
            algo.train()
    finally:
        algo.stop()
    return calls, epsilons


def test_the_loop_updates_when_sb3_does_against_the_same_target_with_the_same_epsilon():
    sb3_calls, sb3_eps = sb3_rhythm()
    calls, eps = rlarena_rhythm()
    # learning starts after more than learning_starts steps: at 64, then every train_freq steps
    assert [c[0] for c in sb3_calls] == list(range(64, TOTAL + 1, 16))
    assert calls == sb3_calls  # (env step, gradient steps, the updates the target network has seen)
    assert {c[2] for c in calls} != {0}  # the target moved
    # SB3 acts uniformly at random before learning_starts; from there epsilon-greedy, step by step
    shared = sorted(set(sb3_eps) & set(eps))
    assert shared == list(range(RHYTHM["learning_starts"], TOTAL))
    np.testing.assert_allclose([eps[k] for k in shared], [sb3_eps[k] for k in shared], rtol=1e-6)
    assert eps[EPS_STEPS + 10] == pytest.approx(EPS_END)
