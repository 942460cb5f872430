"""PPO side by side with Stable-Baselines3 (issue 11): the same initial weights and the same rollout
fed to both, then the value targets, the loss terms and the weights after one full update (every
epoch, the same minibatch order) must agree to float tolerance.

The batch is written by hand: SB3's layout (same-step autoreset, the final observation in the info,
a truncation's bootstrap folded into its reward) and rlarena's (Gymnasium's next-step autoreset: the
final observation is the next row and the reset step is marked invalid) hold the same transitions.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("stable_baselines3")

from stable_baselines3 import PPO as SB3PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv

from rlarena import PPOConfig
from rlarena.algorithms.algorithm import DEFAULT_POLICY_ID
from rlarena.algorithms.on_policy import prepare_batch
from rlarena.algorithms.ppo import STAT_NAMES, ppo_loss
from rlarena.rollout.storage import Rollout

T, N = 16, 4  # SB3's n_steps and n_envs
HP = {
    "batch_size": 16,
    "n_epochs": 4,
    "learning_rate": 3e-3,
    "gamma": 0.98,
    "gae_lambda": 0.8,
    "clip_range": 0.2,
    "ent_coef": 0.01,
    "vf_coef": 0.5,
    "max_grad_norm": 0.5,
}
# two episode ends per env copy (so rlarena's fragment is T + 2 rows for every copy): (step, truncated?)
ENDS = {0: [(3, False), (9, True)], 1: [(5, True), (12, False)], 2: [(0, False), (14, True)], 3: [(7, True), (8, True)]}
# rlarena's parameter -> SB3's, in FlatParameters order
PARAMS = {
    "pi_layers.0": "mlp_extractor.policy_net.0",
    "pi_layers.1": "mlp_extractor.policy_net.2",
    "vf_layers.0": "mlp_extractor.value_net.0",
    "vf_layers.1": "mlp_extractor.value_net.2",
    "pi_head": "action_net",
    "vf_head": "value_net",
}


def make_sb3(**overrides):
    env = make_vec_env("CartPole-v1", n_envs=N, seed=0, vec_env_cls=DummyVecEnv, env_kwargs={"render_mode": None})
    hp = {**HP, **overrides}
    model = SB3PPO("MlpPolicy", env, n_steps=T, policy_kwargs={"net_arch": [64, 64]}, seed=0, device="cpu", **hp)
    model.set_logger(configure(None, []))
    return model


def make_rlarena(**overrides):
    hp = {**HP, **overrides}
    return (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_envs_per_env_runner=N)
        .training(
            lr=hp["learning_rate"],
            gamma=hp["gamma"],
            lambda_=hp["gae_lambda"],
            clip_param=hp["clip_range"],
            train_batch_size=T * N,
            minibatch_size=hp["batch_size"],
            num_epochs=hp["n_epochs"],
            entropy_coeff=hp["ent_coef"],
            vf_loss_coeff=hp["vf_coef"],
            grad_clip=hp["max_grad_norm"],
            target_kl=hp.get("target_kl"),
            model={"fcnet_hiddens": [64, 64], "fcnet_activation": "tanh"},
        )
        .debugging(seed=1)
        .build()
    )


def copy_weights(algo, sb3) -> None:
    """SB3's weights into rlarena's model (in place: they are views of the optimizer's flat buffer)."""
    theirs = dict(sb3.policy.named_parameters())
    with torch.no_grad():
        for name, p in algo.policy.model.named_parameters():
            layer, kind = name.rsplit(".", 1)
            p.copy_(theirs[f"{PARAMS[layer]}.{kind}"])


def flat_sb3(sb3) -> torch.Tensor:
    theirs = dict(sb3.policy.named_parameters())
    return torch.cat(
        [theirs[f"{PARAMS[layer]}.{kind}"].detach().reshape(-1) for layer in PARAMS for kind in ("weight", "bias")]
    )


def flat_rlarena(algo) -> torch.Tensor:
    mine = dict(algo.policy.model.named_parameters())
    return torch.cat([mine[f"{layer}.{kind}"].detach().reshape(-1) for layer in PARAMS for kind in ("weight", "bias")])


def episodes():
    """Per SB3 step: observations [T+1, N, 4] (row T: after the last step), actions, rewards, the
    flags, and the final observation of each ended episode {(t, n): obs}."""
    rng = np.random.default_rng(0)
    obs = rng.normal(0, 0.5, (T + 1, N, 4)).astype(np.float32)
    actions = rng.integers(0, 2, (T, N))
    rewards = rng.uniform(0, 2, (T, N)).astype(np.float32)
    terminated, truncated = np.zeros((T, N), bool), np.zeros((T, N), bool)
    final = {}
    for n, ends in ENDS.items():
        for t, trunc in ends:
            (truncated if trunc else terminated)[t, n] = True
            final[(t, n)] = rng.normal(0, 0.5, 4).astype(np.float32)
    return obs, actions, rewards, terminated, truncated, final


def fill_sb3(sb3, obs, actions, rewards, terminated, truncated, final) -> None:
    """SB3's collect_rollouts, with the steps given: same-step autoreset (obs[t+1] after an end is
    the reset observation) and a truncation bootstrapped by r + gamma * V(final obs)."""
    policy, buf, gamma = sb3.policy, sb3.rollout_buffer, sb3.gamma
    buf.reset()
    episode_starts = np.ones(N, np.float32)
    with torch.no_grad():
        for t in range(T):
            x, a = torch.from_numpy(obs[t]), torch.from_numpy(actions[t])
            values, log_prob, _ = policy.evaluate_actions(x, a)
            r = rewards[t].copy()
            for n in np.flatnonzero(truncated[t]):
                r[n] += gamma * policy.predict_values(torch.from_numpy(final[(t, n)])[None])[0, 0].item()
            buf.add(obs[t], actions[t], r, episode_starts, values, log_prob)
            episode_starts = (terminated[t] | truncated[t]).astype(np.float32)
        last_values = policy.predict_values(torch.from_numpy(obs[T]))
    buf.compute_returns_and_advantage(last_values=last_values, dones=episode_starts)


def rlarena_rollout(obs, actions, rewards, terminated, truncated, final) -> tuple[Rollout, np.ndarray]:
    """The same transitions in rlarena's next-step autoreset layout, and for each of its valid
    steps (row-major over [T', N]) the index SB3's flattened buffer gives it (env-major: n * T + t)."""
    rows = T + 2  # two episode ends, so two reset-only steps, per env copy
    ro = Rollout.allocate(rows, N, 4, (), np.dtype(np.int64), keep_raw_obs=False)
    sb3_index = np.full((rows, N), -1)
    for n in range(N):
        r = 0
        for t in range(T):
            ro.obs[r, n], ro.actions[r, n], ro.rewards[r, n] = obs[t, n], actions[t, n], rewards[t, n]
            ro.terminated[r, n], ro.truncated[r, n], ro.valid[r, n] = terminated[t, n], truncated[t, n], True
            sb3_index[r, n] = n * T + t
            r += 1
            if terminated[t, n] or truncated[t, n]:  # the reset-only step: it observes the final observation
                ro.obs[r, n], ro.valid[r, n] = final[(t, n)], False
                r += 1
        assert r == rows
        ro.obs[rows, n] = obs[T, n]
    return ro, sb3_index[ro.valid]


class Orders:
    """Stands in for the algorithm's rng: hands out the given permutations, one per epoch."""

    def __init__(self, orders: list[np.ndarray]):
        self.orders = list(orders)

    def permutation(self, n: int) -> np.ndarray:
        order = self.orders.pop(0)
        assert len(order) == n
        return order


@pytest.fixture
def pair(request):
    overrides = getattr(request, "param", {})
    sb3, algo = make_sb3(**overrides), make_rlarena(**overrides)
    copy_weights(algo, sb3)
    data = episodes()
    fill_sb3(sb3, *data)
    ro, sb3_index = rlarena_rollout(*data)
    yield sb3, algo, ro, sb3_index
    algo.stop()
    sb3.env.close()


def test_same_architecture_and_initialization():
    """Orthogonal init, gains sqrt(2) (hidden), 0.01 (policy head), 1 (value head), zero biases, as SB3."""
    sb3, algo = make_sb3(), make_rlarena()
    try:
        mine = dict(algo.policy.model.named_parameters())
        theirs = dict(sb3.policy.named_parameters())
        assert len(mine) == len(theirs)
        for layer, sb3_layer in PARAMS.items():
            w, w_sb3 = mine[f"{layer}.weight"].detach(), theirs[f"{sb3_layer}.weight"].detach()
            assert w.shape == w_sb3.shape
            torch.testing.assert_close(torch.linalg.svdvals(w), torch.linalg.svdvals(w_sb3), rtol=1e-4, atol=1e-6)
            assert not mine[f"{layer}.bias"].any() and not theirs[f"{sb3_layer}.bias"].any()
        gains = {"pi_layers.0": math.sqrt(2), "pi_head": 0.01, "vf_head": 1.0}
        for layer, gain in gains.items():
            assert torch.linalg.svdvals(mine[f"{layer}.weight"].detach()).max().item() == pytest.approx(gain, rel=1e-4)
        opt = algo.optimizers[(DEFAULT_POLICY_ID, "main")]
        assert opt.eps == sb3.policy.optimizer.defaults["eps"] == 1e-5
        assert opt.betas == sb3.policy.optimizer.defaults["betas"]
    finally:
        algo.stop()
        sb3.env.close()


def test_same_value_targets(pair):
    """GAE advantages and returns, old log-probs and values on the same transitions."""
    sb3, algo, ro, sb3_index = pair
    policy = algo.policy
    data = prepare_batch(policy.model, policy.dist, ro, algo.config.gamma, algo.config.lambda_, False)
    buf = sb3.rollout_buffer
    for mine, theirs in [
        (data.advantages, buf.advantages),
        (data.returns, buf.returns),
        (data.values_old, buf.values),
        (data.logp_old, buf.log_probs),
    ]:
        # SB3's [T, N] flattened env-major, as its minibatches index it, then in our valid-step order
        in_our_order = torch.from_numpy(theirs.swapaxes(0, 1).reshape(-1)[sb3_index])
        torch.testing.assert_close(mine, in_our_order, rtol=1e-5, atol=1e-6)
    assert len(data.advantages) == T * N


def test_same_greedy_actions(pair):
    """Evaluation's greedy action: argmax of the logits (SB3: of the probabilities, the same)."""
    sb3, algo, _, _ = pair
    obs = np.random.default_rng(1).normal(0, 2, (256, 4)).astype(np.float32)
    logits = sb3.policy.action_net(sb3.policy.mlp_extractor.policy_net(torch.from_numpy(obs)))
    assert (logits[:, 0] - logits[:, 1]).abs().min() > 1e-5  # no near-ties to decide differently
    greedy = algo.compute_actions(obs, explore=False)
    assert 0 < greedy.sum() < len(obs)
    np.testing.assert_array_equal(greedy, sb3.predict(obs, deterministic=True)[0])


# target_kl 0.005: SB3 stops at the first minibatch whose KL (before its step) passes 1.5 x target_kl
@pytest.mark.parametrize("pair", [{}, {"target_kl": 0.005}], indirect=True, ids=["full", "target_kl"])
def test_same_update(pair):
    """One full update (4 epochs x 4 minibatches, same order): the same weights after it; then the
    loss terms of both, at those weights, on the whole batch (SB3's own train() at lr 0)."""
    sb3, algo, ro, sb3_index = pair
    policy = algo.policy
    data = prepare_batch(policy.model, policy.dist, ro, algo.config.gamma, algo.config.lambda_, False)
    before = flat_rlarena(algo).clone()
    torch.testing.assert_close(before, flat_sb3(sb3))

    np.random.seed(123)  # SB3 draws its minibatch order from numpy's global rng
    sb3_orders = [np.random.permutation(T * N) for _ in range(HP["n_epochs"])]
    position = np.empty(T * N, np.int64)
    position[sb3_index] = np.arange(T * N)  # SB3's flat index -> our valid-step index
    algo.rng = Orders([position[order] for order in sb3_orders])
    np.random.seed(123)
    sb3.train()
    stats = algo.update_policy(DEFAULT_POLICY_ID, ro)

    after, after_sb3 = flat_rlarena(algo), flat_sb3(sb3)
    assert (after - before).abs().max() > 1e-3  # the update moved the weights
    torch.testing.assert_close(after, after_sb3, rtol=1e-4, atol=2e-6)
    assert stats["grad_norm"] > HP["max_grad_norm"]  # the gradient clipping acted
    if sb3.target_kl is not None:  # stopped early, at the same minibatch: the same number of steps
        assert (
            algo.optimizers[(DEFAULT_POLICY_ID, "main")].steps
            == sb3.policy.optimizer.state[next(iter(sb3.policy.parameters()))]["step"]
            < HP["n_epochs"] * T * N // HP["batch_size"]
        )
    assert stats["explained_variance"] == pytest.approx(sb3.logger.name_to_value["train/explained_variance"], rel=1e-4)

    # the loss terms at the updated weights, against the sampling-time log-probs: SB3's train() on
    # one minibatch of the whole batch with lr 0 logs them and changes nothing
    sb3.batch_size, sb3.n_epochs, sb3.lr_schedule = T * N, 1, lambda _: 0.0
    sb3.train()
    torch.testing.assert_close(flat_sb3(sb3), after_sb3, rtol=0, atol=0)
    # `data` was prepared before the update: its old log-probs, values and advantages are the sampling-time ones
    loss, terms = ppo_loss(policy.model, policy.dist, algo.config, *data.columns(), True)
    logged = sb3.logger.name_to_value
    got = dict(zip(STAT_NAMES, terms.tolist()))
    assert got["clip_fraction"] > 0  # the ratios moved: the clipped branch is exercised
    assert got["policy_loss"] == pytest.approx(logged["train/policy_gradient_loss"], rel=1e-4, abs=1e-6)
    assert got["vf_loss"] == pytest.approx(logged["train/value_loss"], rel=1e-4)
    assert -got["entropy"] == pytest.approx(logged["train/entropy_loss"], rel=1e-4)
    assert got["approx_kl"] == pytest.approx(logged["train/approx_kl"], rel=1e-3, abs=1e-7)
    assert got["clip_fraction"] == pytest.approx(logged["train/clip_fraction"], abs=1e-6)
    assert loss.item() == pytest.approx(logged["train/loss"], rel=1e-4, abs=1e-6)
