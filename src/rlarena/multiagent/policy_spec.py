"""PolicySpec: what `.multi_agent(policies={policy_id: PolicySpec(...)})` asks to build for a policy id.

It is configuration, not a policy: the config stores it (its class as a saved reference, its
overrides as JSON) and the builder (rlarena.multiagent.builder.build_policy) turns it into a Policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from rlarena.policies.policy import Policy


@dataclass
class PolicySpec:
    """RLlib's PolicySpec. policy_class None: the algorithm's trainable policy. Spaces None: taken
    from the env's agents mapped to this policy. config: per-policy overrides of training options
    (e.g. {"lr": 1e-4})."""

    policy_class: type[Policy] | None = None
    observation_space: gym.Space | None = None
    action_space: gym.Space | None = None
    config: dict[str, Any] = field(default_factory=dict)
