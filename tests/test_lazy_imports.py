"""`import rlarena` and building/training a PPO stay light: heavy optional libraries (and
torch._dynamo, which torch.optim pulls in at ~1.6 s) are not imported on that path."""

import subprocess
import sys

HEAVY = [
    "ray",
    "gradio",
    "onnx",
    "onnxruntime",
    "pandas",
    "matplotlib",
    "tensorboard",
    "torch._dynamo",
    "stable_baselines3",
    "pettingzoo",
]


def test_import_and_train_do_not_load_heavy_modules():
    code = (
        "import sys, rlarena; algo = rlarena.PPOConfig().environment('CartPole-v1')"
        ".training(train_batch_size=64, minibatch_size=64, num_epochs=1).build(); algo.train(); "
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.check_output([sys.executable, "-c", code], text=True).strip().splitlines()[-1]
    assert out == "[]", f"imported eagerly: {out}"


def test_policies_specs_episodes_and_the_ray_helpers_import_no_torch():
    """What heuristics, the Connect Four page and a policy_mapping_fn's module import stays torch-free;
    the trainable policies load on first use."""
    code = (
        "import sys, rlarena.policies, rlarena.multiagent, rlarena.rollout.multi_agent_episode, "
        "rlarena.rollout.ray_cluster; from rlarena import Episode, Policy, PolicySpec, RandomPolicy; "
        "print([m for m in ('torch', 'ray') if m in sys.modules])"
    )
    out = subprocess.check_output([sys.executable, "-c", code], text=True).strip().splitlines()[-1]
    assert out == "[]", f"imported eagerly: {out}"
