"""ES and ARS: the estimators against hand-computed numbers and a known gradient, a probe each
algorithm solves, determinism across worker counts, checkpoints, config errors."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest
from probe_envs import ContinuousIdentityEnv

from rlarena.algorithms.es import (
    ARS,
    ES,
    ARSConfig,
    ESConfig,
    ars_step,
    ars_top_directions,
    centered_ranks,
    es_gradient,
)
from rlarena.errors import ConfigError


def test_centered_ranks_by_hand():
    x = np.array([[3.0, -1.0], [10.0, 0.5]])
    # sorted: -1 (rank 0), 0.5 (1), 3 (2), 10 (3); rank / 3 - 0.5
    np.testing.assert_allclose(centered_ranks(x), [[2 / 3 - 0.5, -0.5], [0.5, 1 / 3 - 0.5]], atol=1e-7)
    assert centered_ranks(np.array([5.0, 5.0, 5.0])).tolist() == [-0.5, 0.0, 0.5]  # ties keep their order


def test_es_gradient_by_hand():
    noise = np.array([[1.0, 0.0], [0.0, 2.0]], np.float32)
    # ((3 - 1) [1, 0] + (0 - 4) [0, 2]) / (2 * 2 * 0.5)
    np.testing.assert_allclose(es_gradient(np.array([3.0, 0.0]), np.array([1.0, 4.0]), noise, 0.5), [1.0, -4.0])


@pytest.mark.parametrize("ranked", [False, True])
def test_es_gradient_points_along_the_true_gradient(ranked):
    rng = np.random.default_rng(0)
    dim, n, sigma = 20, 2000, 0.05
    target = rng.standard_normal(dim)
    theta = np.zeros(dim)

    def fitness(x):  # F(x) = -|x - target|^2, grad F(theta) = 2 (target - theta)
        return -((x - target) ** 2).sum(-1)

    noise = rng.standard_normal((n, dim)).astype(np.float32)
    f_pos, f_neg = fitness(theta + sigma * noise), fitness(theta - sigma * noise)
    if ranked:
        ranks = centered_ranks(np.stack([f_pos, f_neg], axis=1))
        f_pos, f_neg = ranks[:, 0], ranks[:, 1]
    g = es_gradient(f_pos, f_neg, noise, sigma)
    true = 2 * (target - theta)
    cosine = g @ true / (np.linalg.norm(g) * np.linalg.norm(true))
    assert cosine > 0.9
    if not ranked:  # mirrored sampling is unbiased for a quadratic: the scale matches too
        np.testing.assert_allclose(np.linalg.norm(g), np.linalg.norm(true), rtol=0.1)


def test_ars_step_by_hand():
    r_pos, r_neg = np.array([1.0, 5.0, 2.0]), np.array([0.0, 3.0, 4.0])
    assert ars_top_directions(r_pos, r_neg, 2).tolist() == [1, 2]  # max: 1, 5, 4
    noise = np.eye(3, dtype=np.float32)
    used = np.array([5.0, 2.0, 3.0, 4.0])  # r+ and r- of directions 1 and 2
    expected = 0.1 / (2 * used.std()) * np.array([0.0, 5.0 - 3.0, 2.0 - 4.0])
    np.testing.assert_allclose(ars_step(r_pos, r_neg, noise, 2, 0.1), expected, rtol=1e-6)


def _ars_probe(**env_runners) -> ARS:
    return (
        ARSConfig()
        .environment(ContinuousIdentityEnv)
        .training(num_rollouts=8, rollouts_used=4, sgd_stepsize=0.05, noise_stdev=0.05)
        .env_runners(**env_runners)
        .evaluation(evaluation_duration=50)
        .debugging(seed=0)
        .build()
    )


def test_ars_solves_continuous_identity():
    algo = _ars_probe()
    try:
        before = algo.evaluate()["episode_return_mean"]
        for _ in range(60):
            result = algo.train()
        after = algo.evaluate()["episode_return_mean"]
    finally:
        algo.stop()
    assert before < -0.2  # the linear policy starts near a = 0: E[-x^2] = -1/3
    assert after > -0.02, after
    assert result["num_env_steps_sampled_lifetime"] == 60 * 8 * 2
    assert result["episodes_this_iter"] == 16


def test_es_learns_cartpole_a_little():
    algo = (
        ESConfig()
        .environment("CartPole-v1")
        .training(episodes_per_batch=40, model={"fcnet_hiddens": [16]})
        .debugging(seed=0)
        .build()
    )
    try:
        first = algo.train()["perturbed_return_mean"]
        for _ in range(12):
            result = algo.train()
        greedy = algo.evaluate()["episode_return_mean"]
    finally:
        algo.stop()
    assert result["perturbed_return_mean"] > 2 * first, (first, result["perturbed_return_mean"])
    assert greedy > 100, greedy
    assert result["update_ratio"] > 0


def _weights(algo) -> np.ndarray:
    return algo.flat.param.numpy().copy()


@pytest.mark.parametrize(
    "make",
    [
        lambda w: _ars_probe(num_es_workers=w),
        lambda w: (
            ESConfig()
            .environment("CartPole-v1")
            .training(episodes_per_batch=12, model={"fcnet_hiddens": [8]})
            .env_runners(num_es_workers=w)
            .debugging(seed=1)
            .build()
        ),
        lambda w: (
            ARSConfig()
            .environment("Pendulum-v1")
            .training(num_rollouts=4, rollouts_used=2)
            .env_runners(num_es_workers=w, observation_filter="MeanStdFilter")
            .debugging(seed=2)
            .build()
        ),
    ],
    ids=["ars", "es", "ars-filter"],
)
def test_two_workers_give_the_same_updates_as_one(make):
    """The same weights, episodes and (with MeanStdFilter) observation statistics for 1 and 2 workers."""
    runs = []
    for workers in (1, 2):
        algo = make(workers)
        try:
            results = [algo.train() for _ in range(3)]
            state = algo.policy.get_state()
            runs.append(
                (
                    _weights(algo),
                    [r["episode_return_mean"] for r in results],
                    results[-1]["num_env_steps_sampled_lifetime"],
                    {k: v.tolist() for k, v in state.items() if k.startswith("obs_filter.")},
                )
            )
            if workers == 2:
                assert len(mp.active_children()) == 1  # and this process plays too
        finally:
            algo.stop()
    assert mp.active_children() == []  # stop() ended the workers
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1:] == runs[1][1:]
    assert not np.array_equal(runs[0][0], np.zeros_like(runs[0][0]))
    if runs[0][3]:  # the filter learned the observations' scale: Pendulum's angular velocity spreads widest
        var = np.array(runs[0][3]["obs_filter.var"])
        assert round(runs[0][3]["obs_filter.count"][0]) == runs[0][2] and var[2] > var[0] and var[2] > var[1]


@pytest.mark.parametrize(
    "config",
    [
        ESConfig().training(episodes_per_batch=8, model={"fcnet_hiddens": [8]}),
        ARSConfig().training(num_rollouts=4, rollouts_used=2),
    ],
    ids=["es", "ars"],
)
def test_checkpoint_round_trip_continues_identically(config, tmp_path):
    config = config.environment("CartPole-v1").debugging(seed=3)
    algo = config.build()
    try:
        algo.train()
        path = algo.save(tmp_path / "ckpt")
        algo.train()
        expected = _weights(algo)
    finally:
        algo.stop()
    # restore() into a fresh build: Algorithm.from_checkpoint() finds ES and ARS once they are registered
    restored = config.build()
    try:
        restored.restore(path)
        assert isinstance(restored, ES | ARS)
        assert restored.iteration == 1
        restored.train()
        np.testing.assert_array_equal(_weights(restored), expected)  # weights, Adam state and RNG came back
    finally:
        restored.stop()


@pytest.mark.timeout(120)
def test_ars_checkpoint_without_an_optimizer_restores(tmp_path):
    """ARS stepped in place before its step went through the learner's SGD: a checkpoint of then holds
    no optimizer, and continues as one of now (SGD keeps no state but its step count)."""
    import json

    config = ARSConfig().training(num_rollouts=4, rollouts_used=2).environment("CartPole-v1").debugging(seed=3)
    algo = config.build()
    try:
        algo.train()
        path = tmp_path / "ckpt"
        algo.save(path)
        algo.train()
        expected = _weights(algo)
    finally:
        algo.stop()
    (path / "optimizer.default_policy.main.safetensors").unlink()
    meta = json.loads((path / "rlarena_checkpoint.json").read_text())
    del meta["files"]["optimizer.default_policy.main.safetensors"]
    (path / "rlarena_checkpoint.json").write_text(json.dumps(meta))
    restored = config.build()
    try:
        restored.restore(path)
        restored.train()
        np.testing.assert_array_equal(_weights(restored), expected)
    finally:
        restored.stop()


@pytest.mark.parametrize(
    "config, key",
    [
        (ESConfig().training(noise_stdev=0.0), "noise_stdev"),
        (ESConfig().training(episodes_per_batch=1), "episodes_per_batch"),
        (ESConfig().env_runners(num_es_workers=0), "num_es_workers"),
        (ARSConfig().training(num_rollouts=4, rollouts_used=5), "rollouts_used"),
        (ARSConfig().training(noise_size=10, model={"fcnet_hiddens": [16]}), "noise_size"),
    ],
)
def test_config_errors_name_the_key(config, key):
    with pytest.raises(ConfigError, match=key):
        config.environment("CartPole-v1").build().stop()


def test_unknown_option_names_the_closest():
    with pytest.raises(ConfigError, match="rollouts_used"):
        ARSConfig().training(rollout_used=3)


def test_an_env_workers_cannot_receive_is_a_config_error():
    import gymnasium as gym

    config = ARSConfig().environment(lambda cfg: gym.make("CartPole-v1")).env_runners(num_es_workers=2)
    with pytest.raises(ConfigError, match="num_es_workers"):
        config.build()
    assert mp.active_children() == []
