"""Anyscale's "Introduction to RLlib", its Python parts: tune.run(PPOTrainer, ...) and a sample batch.

The lesson's command lines run as they are with `rlarena` in place of `rllib`:

    rlarena train --run PPO --env CartPole-v1 --stop='{"training_iteration": 20}' --checkpoint-freq 10 --checkpoint-at-end
    rlarena rollout runs/<experiment>/<trial>/checkpoints/checkpoint_000020 --run PPO --episodes 5 --no-render

This file is the lesson's Python form of that training run (imports changed), then the sample
batch the lesson describes, taken from a PPOTrainer.

    python examples/rllib_intro_tune.py                # 20 iterations, ~10 s
    RLARENA_EXAMPLE_QUICK=1 python examples/...        # the test suite's smoke run: 2 iterations
"""

import os

import numpy as np

# The test suite runs this file with RLARENA_EXAMPLE_QUICK=1: 2 iterations instead of 20.
QUICK = os.environ.get("RLARENA_EXAMPLE_QUICK") == "1"

# -- "You can execute the same training logic using the following Python code" -------------------
from rlarena import tune  # noqa: I001 - was: from ray import tune (the lesson's order)
from rlarena import PPOTrainer  # was: from ray.rllib.agents.ppo import PPOTrainer

tune.run(PPOTrainer,
    config={"env": "CartPole-v1"},
    stop={"training_iteration": 2 if QUICK else 20},
    checkpoint_at_end=True,
    verbose=2            # 2 for INFO; change to 1 or 0 to reduce the output.
    )
# (results go to runs/ rather than Ray's ~/ray_results: `tensorboard --logdir runs`)

# -- "Sample Batches" ----------------------------------------------------------------------------
# The lesson shows a summarized batch of 200 steps from one rollout worker. rlarena's batch of a
# fragment is a Rollout of [T, N, ...] arrays: T steps of N vectorized envs, observations [T+1, N, ...]
# (the last one bootstraps the value), terminated and truncated instead of RLlib's single `dones`, and
# `valid`, False on the step where an env only reset after an episode's end (its reward is 0).
trainer = PPOTrainer(config={"env": "CartPole-v1", "train_batch_size": 200, "num_envs_per_worker": 1})
batch = trainer.sample()["default_policy"]


def summarize(value: np.ndarray) -> str:
    """RLlib's summarize(): an array as its shape, dtype and range."""
    return (f"np.ndarray({value.shape}, dtype={value.dtype}, min={value.min():.3g}, "
            f"max={value.max():.3g}, mean={value.mean():.3g})")


print("{", ",\n  ".join(f"{name!r}: {summarize(getattr(batch, name))}"
                        for name in ("actions", "obs", "rewards", "terminated", "truncated", "valid")), "}")
trainer.stop()
