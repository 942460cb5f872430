"""Multi-agent: a mapping-and-batching layer over the single-agent machinery (DESIGN.md).

Agents are mapped to policies per episode; each policy's agent trajectories are packed into the
same [T+1, N] Rollout layout the single-agent runner produces, so every algorithm updates each
policy with its ordinary single-agent code.
"""

from rlarena.multiagent.episode import Episode
from rlarena.multiagent.policies import PolicySpec, RandomPolicy

__all__ = ["Episode", "PolicySpec", "RandomPolicy"]
