"""LinUCB and LinTS: the Sherman-Morrison posterior against a direct solve, regret on the example envs
(sublinear and far below a uniform-random policy's), checkpoints, the CLI, config errors."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

from rlarena import Algorithm, LinTSConfig, LinUCBConfig
from rlarena.algorithms.bandits import LinearBanditPolicy
from rlarena.cli.main import main
from rlarena.envs.bandits import LinearDiscreteEnv, RecommenderEnv, WheelBanditEnv, uniform_random_regret
from rlarena.errors import ConfigError, EnvError

QUIET = ["--verbose", "0", "--no-tensorboard", "--no-plot"]


# -- the posterior ---------------------------------------------------------------------------------
@pytest.mark.parametrize("shared", [False, True])
def test_sherman_morrison_equals_a_direct_solve(shared):
    k, d, lam = 4, 5, 0.7
    shape = (k, d) if shared else (d,)
    policy = LinearBanditPolicy(gym.spaces.Box(-np.inf, np.inf, shape, np.float32), gym.spaces.Discrete(k), lambda_=lam)
    rng = np.random.default_rng(0)
    models = 1 if shared else k
    a, b = np.stack([lam * np.eye(d)] * models), np.zeros((models, d))
    for _ in range(60):  # batches of 8 rows, the same arm often several times in one batch
        x = rng.normal(size=(8, k * d if shared else d)).astype(np.float32)
        arms, rewards = rng.integers(k, size=8), rng.normal(size=8)
        policy.update(x, arms, rewards)
        for row, arm, r in zip(x.astype(np.float64), arms, rewards):
            f = row.reshape(k, d)[arm] if shared else row
            m = 0 if shared else arm
            a[m] += np.outer(f, f)
            b[m] += r * f
    assert policy.model.counts.sum() == 480
    for m in range(models):
        np.testing.assert_allclose(policy.model.a_inv[m].numpy(), np.linalg.inv(a[m]), rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(policy.model.theta[m].numpy(), np.linalg.solve(a[m], b[m]), rtol=1e-6, atol=1e-12)


def test_ucb_thompson_and_greedy_scores_and_masks():
    d, k = 3, 4
    space = gym.spaces.Box(-1, 1, (d,), np.float32)
    ucb = LinearBanditPolicy(space, gym.spaces.Discrete(k), alpha=2.0, lambda_=1.0)
    rng = np.random.default_rng(1)
    ucb.update(rng.normal(size=(40, d)), rng.integers(k, size=40), rng.normal(size=40))
    x = rng.normal(size=(5, d))
    mean = x @ ucb.model.theta.numpy().T
    width = np.sqrt(np.einsum("bd,kde,be->bk", x, ucb.model.a_inv.numpy(), x))
    np.testing.assert_allclose(ucb.scores(x, explore=False), mean)
    np.testing.assert_allclose(ucb.scores(x, explore=True), mean + 2.0 * width)
    # Thompson: samples centred on the mean with the posterior's spread (v^2 x^T A^-1 x)
    ts = LinearBanditPolicy(space, gym.spaces.Discrete(k), exploration="thompson", posterior_scale=0.5, seed=0)
    ts.set_state(ucb.get_state())
    draws = np.stack([ts.scores(x, explore=True) for _ in range(4000)])
    np.testing.assert_allclose(draws.mean(0), mean, atol=0.05)
    np.testing.assert_allclose(draws.std(0), 0.5 * width, rtol=0.1)
    masked = gym.spaces.Dict({"observation": space, "action_mask": gym.spaces.MultiBinary(k)})
    policy = LinearBanditPolicy(masked, gym.spaces.Discrete(k), seed=0)
    mask = np.zeros((5, k), np.int8)
    mask[:, 2] = 1
    mask[0, 3] = 1
    actions = policy.compute_actions({"observation": x.astype(np.float32), "action_mask": mask})
    assert actions[1:].tolist() == [2, 2, 2, 2] and actions[0] in (2, 3)


# -- regret on the example envs ---------------------------------------------------------------------
def regret_curve(config, steps: int = 10_000) -> np.ndarray:
    algo = config.debugging(seed=0).build()
    curve = [algo.train()["cumulative_regret"] for _ in range(steps // algo.config.min_sample_timesteps_per_iteration)]
    algo.stop()
    return np.array(curve)


@pytest.mark.parametrize("env", ["linear_bandit", "wheel_bandit"])
@pytest.mark.parametrize("config_class", [LinUCBConfig, LinTSConfig])
def test_regret_is_sublinear_and_far_below_random(env, config_class):
    config = config_class().environment(env)
    if env == "wheel_bandit" and config_class is LinUCBConfig:
        config.training(alpha=10.0)  # the bound's width must match the rewards' scale (mu_3 = 50)
    curve = regret_curve(config)
    first, second = curve[49], curve[99] - curve[49]  # regret over steps 1-5000 and 5001-10000
    random = uniform_random_regret(
        {"linear_bandit": LinearDiscreteEnv, "wheel_bandit": WheelBanditEnv}[env](), 10_000, 0
    )
    assert second < 0.5 * first, (first, second)
    assert curve[-1] < random[-1] / 5, (curve[-1], random[-1])


def test_recommender_slate_shared_posterior():
    curve = regret_curve(LinUCBConfig().environment("recommender_bandit", env_config={"slate_size": 4}), 3000)
    random = uniform_random_regret(RecommenderEnv({"slate_size": 4}), 3000, 0)
    assert curve[-1] < random[-1] / 10
    assert curve[-1] - curve[14] < curve[14]  # steps 1501-3000 cost less than steps 1-1500


def test_regret_counts_only_real_steps_with_several_envs():
    """Four env copies: every step is a decision (reset() instead of a wasted autoreset step), and the
    regret summed is each env's own."""
    algo = LinUCBConfig().environment("wheel_bandit").env_runners(num_envs_per_env_runner=4).debugging(seed=0).build()
    result = algo.train()
    assert result["num_env_steps_sampled_this_iter"] == 100 and result["num_updates"] == 100
    assert result["episodes_this_iter"] == 100 and result["episode_len_mean"] == 1
    assert result["regret_per_step_this_iter"] == pytest.approx(result["regret_this_iter"] / 100)
    # longer episodes (any Gymnasium env): a copy's autoreset step is no decision and teaches nothing
    algo = LinUCBConfig().environment("CartPole-v1").env_runners(num_envs_per_env_runner=4).debugging(seed=0).build()
    results = [algo.train() for _ in range(5)]
    ended = sum(r["episodes_this_iter"] for r in results)
    updates = sum(r["num_updates"] for r in results)
    assert ended >= 1 and 500 - ended <= updates < 500 and "cumulative_regret" not in results[-1]


# -- checkpoints, inference, CLI --------------------------------------------------------------------
@pytest.mark.parametrize("config_class", [LinUCBConfig, LinTSConfig])
def test_checkpoint_round_trip_continues_identically(tmp_path, config_class):
    algo = config_class().environment("linear_bandit").env_runners(num_envs_per_env_runner=2).debugging(seed=3).build()
    for _ in range(3):
        algo.train()
    path = algo.save(tmp_path / "ckpt")
    for _ in range(2):
        algo.train()  # moves on, then goes back to the checkpoint
    algo.restore(path)
    other = Algorithm.from_checkpoint(path)
    assert type(other) is type(algo) and other.cumulative_regret == algo.cumulative_regret
    for _ in range(3):
        a, b = algo.train(), other.train()
        assert a["cumulative_regret"] == b["cumulative_regret"] and a["training_iteration"] == b["training_iteration"]
    for key, value in algo.policy.get_state().items():
        np.testing.assert_array_equal(value, other.policy.get_state()[key])
    context = np.full(8, 0.2, np.float32)
    assert algo.compute_single_action(context, explore=False) == other.compute_single_action(context, explore=False)
    assert 0 <= other.compute_single_action(context) < 4
    assert "episode_return_mean" in algo.evaluate()


def test_greedy_actions_after_training_pick_the_best_arm():
    algo = LinUCBConfig().environment("linear_bandit").debugging(seed=0).build()
    for _ in range(20):
        algo.train()
    env = LinearDiscreteEnv()
    x = np.random.default_rng(0).normal(0, 1 / 3, (200, 8)).astype(np.float32)
    best = (x @ env.thetas.T).argmax(1)
    assert (algo.compute_actions(x, explore=False) == best).mean() > 0.95


def test_onnx_export_matches_greedy_expected_rewards(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    algo = LinUCBConfig().environment("recommender_bandit").debugging(seed=0).build()
    algo.train()
    path = algo.export_onnx(tmp_path / "bandit.onnx")
    obs = RecommenderEnv().reset(seed=1)[0][None]
    expected, value = ort.InferenceSession(str(path)).run(None, {"observation": obs})
    np.testing.assert_allclose(expected, algo.policy.scores(obs.reshape(1, -1), explore=False), rtol=1e-5, atol=1e-6)
    assert value[0] == pytest.approx(expected.max())


def test_cli_trains_and_evaluates(tmp_path, capsys):
    storage = str(tmp_path / "runs")
    code = main(
        [
            "train",
            "--algo",
            "LinUCB",
            "--env",
            "wheel_bandit",
            "--config",
            json.dumps({"alpha": 10.0}),
            "--stop",
            '{"training_iteration": 3}',
            "--checkpoint-at-end",
            "--name",
            "bandit",
            "--seed",
            "0",
            "--storage-path",
            storage,
            *QUIET,
        ]
    )
    assert code == 0
    trial = tmp_path / "runs" / "bandit" / "LinUCB_wheel_bandit_00000"
    assert "cumulative_regret" in (trial / "progress.csv").read_text().splitlines()[0]
    checkpoint = trial / "checkpoints" / "checkpoint_000003"
    capsys.readouterr()
    assert main(["evaluate", str(checkpoint), "--episodes", "20", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["algorithm"] == "LinUCB" and report["episodes"] == 20


def test_rllib_style_yaml_with_rllib_names(tmp_path):
    """RLlib's registry name (BanditLinUCB) and env class name (WheelBanditEnv) in its YAML format."""
    (tmp_path / "wheel.yaml").write_text(
        "wheel-linucb:\n  env: WheelBanditEnv\n  run: BanditLinUCB\n"
        "  stop:\n    training_iteration: 2\n"
        "  config:\n    framework: torch\n    alpha: 10.0\n"
    )
    assert (
        main(
            [
                "train",
                "-f",
                str(tmp_path / "wheel.yaml"),
                "--storage-path",
                str(tmp_path / "runs"),
                "--name",
                "wheel",
                *QUIET,
            ]
        )
        == 0
    )
    header = (tmp_path / "runs" / "wheel" / "LinUCB_WheelBanditEnv_00000" / "progress.csv").read_text().splitlines()
    assert len(header) == 3 and "cumulative_regret" in header[0]


# -- mistakes ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("config", "key"),
    [
        (LinUCBConfig().training(alpha=-1.0), "alpha"),
        (LinTSConfig().training(posterior_scale=-0.1), "posterior_scale"),
        (LinUCBConfig().training(lambda_=0.0), "lambda_"),
        (LinTSConfig().training(min_sample_timesteps_per_iteration=0), "min_sample_timesteps_per_iteration"),
        (LinUCBConfig().env_runners(observation_filter="MeanStdFilter"), "observation_filter"),
    ],
)
def test_config_errors_name_the_key(config, key):
    with pytest.raises(ConfigError, match=f"Invalid {key}="):
        config.environment("linear_bandit").build()


def test_unknown_option_and_unsuitable_envs_are_explained():
    with pytest.raises(ConfigError, match="alpha"):
        LinUCBConfig().training(alhpa=1.0)
    with pytest.raises(ConfigError, match="Discrete"):
        LinUCBConfig().environment("Pendulum-v1").build()
    with pytest.raises(ConfigError, match=r"\[d\]"):
        LinTSConfig().environment("FrozenLake-v1").build()
    with pytest.raises(EnvError, match="linear_bandit"):
        LinUCBConfig().environment("linear_bandt").build()
    algo = LinUCBConfig().environment("linear_bandit", env_config={"reward_noise_std": float("nan")}).build()
    with pytest.raises(EnvError, match="non-finite"):
        algo.train()
