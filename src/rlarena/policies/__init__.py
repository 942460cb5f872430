"""Policies: what turns a batch of observations into actions.

- policy.py: `Policy`, the seam every runner, match and page talks to, and the capabilities a caller
  may ask of one (ActionLogProbs, ExportOutputs, SearchAgent, Exploration); the board feature-layer
  registry. Torch-free.
- random_policy.py: `RandomPolicy`, uniformly random legal actions. Torch-free.
- torch_policy.py: `TrainablePolicy`, the contract of a policy an algorithm trains, and `TorchPolicy`,
  the actor-critic one; q_policy.py: `QPolicy` (DQN); actor_q_policy.py: `ActorQPolicy` (SAC, TD3, CQL, TQC, CrossQ).

Importing this package never imports torch (the Connect Four page and the heuristics run without it):
the trainable policies load on first use, `rlarena.policies.TorchPolicy`, or from their own modules.
"""

from typing import Any

from rlarena.policies.policy import (
    DEFAULT_POLICY_ID,
    MASKED_LOGIT,
    ActionLogProbs,
    Exploration,
    ExportOutputs,
    Policy,
    SearchAgent,
    is_masked_space,
    policy_actions,
    register_feature_layer,
)
from rlarena.policies.random_policy import RandomPolicy

# the trainable policies import torch: loaded when first asked for
_LAZY = {
    "TrainablePolicy": "rlarena.policies.torch_policy",
    "TorchPolicy": "rlarena.policies.torch_policy",
    "QPolicy": "rlarena.policies.q_policy",
    "ActorQPolicy": "rlarena.policies.actor_q_policy",
}

__all__ = [
    "DEFAULT_POLICY_ID",
    "MASKED_LOGIT",
    "ActionLogProbs",
    "ActorQPolicy",
    "Exploration",
    "ExportOutputs",
    "Policy",
    "QPolicy",
    "RandomPolicy",
    "SearchAgent",
    "TorchPolicy",
    "TrainablePolicy",
    "is_masked_space",
    "policy_actions",
    "register_feature_layer",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'rlarena.policies' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)
