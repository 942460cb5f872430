"""Each trained policy's Learner owns its optimizers, and the lr schedule reaches every one of them:
PPO, A2C, IMPALA and APPO (the on-policy family). The off-policy and other algorithms have theirs in
tests/test_learners.py."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
import torch

from rlarena import A2CConfig, Algorithm, APPOConfig, IMPALAConfig, PolicySpec, PPOConfig
from rlarena.envs.arena import MultiAgentArena

pytestmark = pytest.mark.timeout(300)

CONFIGS = {
    "PPO": lambda: PPOConfig().training(train_batch_size=128, minibatch_size=64, num_epochs=2),
    "A2C": lambda: A2CConfig(),
    "IMPALA": lambda: IMPALAConfig().env_runners(sample_async=False).training(train_batch_size=128),
    "APPO": lambda: APPOConfig().env_runners(sample_async=False).training(train_batch_size=128),
}


def weights(algo: Algorithm) -> dict[str, np.ndarray]:
    return {k: v.copy() for k, v in algo.get_policy().get_state().items()}


@pytest.mark.parametrize("name", CONFIGS)
def test_lr_schedule_sets_the_learning_rate_the_optimizer_steps_with(name, build):
    """A schedule at zero: the weights do not move (while they do without it); a schedule falling to
    zero at 1,000 env steps: the optimizer's lr after an update is the schedule at that step."""

    def make(schedule):
        return build(
            CONFIGS[name]()
            .environment("CartPole-v1")
            .env_runners(num_envs_per_env_runner=4)
            .training(lr_schedule=schedule, model={"fcnet_hiddens": [8]})
            .debugging(seed=0)
        )

    frozen = make([[0, 0.0], [10**9, 0.0]])
    before = weights(frozen)
    frozen.train()
    assert all(np.array_equal(before[k], v) for k, v in weights(frozen).items())

    moving = make(None)
    before = weights(moving)
    moving.train()
    assert any(not np.array_equal(before[k], v) for k, v in weights(moving).items())

    falling = make([[0, 1e-3], [1000, 0.0]])
    while falling.num_env_steps_sampled_lifetime < 400:
        result = falling.train()
    step = falling.num_env_steps_sampled_lifetime
    optimizer = falling.learners["default_policy"].optimizers["main"]
    assert optimizer.lr == pytest.approx(1e-3 * max(0.0, 1 - step / 1000))
    assert result["cur_lr"] == pytest.approx(optimizer.lr)


def _multi_agent(config_fn, build):
    mapping = lambda agent_id, *a, **k: "p1" if agent_id == "agent1" else "p2"
    return build(
        config_fn()
        .environment(MultiAgentArena, env_config={"width": 4, "height": 4, "ts": 16})
        .env_runners(num_envs_per_env_runner=2)
        .training(model={"fcnet_hiddens": [8]})
        .multi_agent(policies={"p1": PolicySpec(), "p2": PolicySpec()}, policy_mapping_fn=mapping)
        .debugging(seed=0)
    ), mapping


@pytest.mark.parametrize("name", CONFIGS)
def test_remove_policy_then_save_then_restore(name, build, track, tmp_path):
    algo, _ = _multi_agent(CONFIGS[name], build)
    algo.train()
    learner = weakref.ref(algo.learners["p2"])
    flat = weakref.ref(algo.learners["p2"].flats["main"])
    only_p1 = lambda agent_id, *a, **k: "p1"
    algo.remove_policy("p2", policy_mapping_fn=only_p1)
    gc.collect()
    assert learner() is None and flat() is None, "the removed policy's learner is still referenced"
    algo.train()
    restored = track(
        Algorithm.from_checkpoint(algo.save(tmp_path / "ckpt"), config_overrides={"policy_mapping_fn": only_p1})
    )
    assert set(restored.learners) == {"p1"} and restored.iteration == algo.iteration
    for key, value in algo.learners["p1"].optimizers["main"].get_state().items():
        np.testing.assert_array_equal(restored.learners["p1"].optimizers["main"].get_state()[key], value)
    assert restored.train()["training_iteration"] == algo.iteration + 1


def test_appo_checkpoint_of_format_1_keeps_its_kl_coefficients(build, track, tmp_path):
    """Format 1 kept APPO's KL coefficients in its "appo" group, ordered by policy id: still read."""
    from rlarena.checkpoint.io import read_checkpoint, write_checkpoint

    algo, mapping = _multi_agent(CONFIGS["APPO"], build)
    algo.train()
    algo.learners["p1"].kl_coeff, algo.learners["p2"].kl_coeff = 0.3, 0.7
    path = algo.save(tmp_path / "new")
    meta, arrays = read_checkpoint(path)
    arrays["appo"]["kl_coeffs"] = np.array([0.3, 0.7])  # as format 1 wrote them
    for pid in ("p1", "p2"):
        del arrays[f"learner.{pid}"]
    old = write_checkpoint(
        tmp_path / "old", {k: v for k, v in meta.items() if k not in ("files", "format_version")}, arrays
    )
    restored = track(Algorithm.from_checkpoint(old, config_overrides={"policy_mapping_fn": mapping}))
    assert (restored.learners["p1"].kl_coeff, restored.learners["p2"].kl_coeff) == (0.3, 0.7)
    assert torch.equal(
        next(iter(restored.learners["p1"].target.parameters())), next(iter(algo.learners["p1"].target.parameters()))
    )
