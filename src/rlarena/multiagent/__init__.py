"""Multi-agent: a mapping-and-batching layer over the single-agent machinery.

Agents are mapped to policies per episode; each policy's agent trajectories are packed into the
same [T+1, N] Rollout layout the single-agent runner produces, so every algorithm updates each
policy with its ordinary single-agent code. The runner that does it lives with the other runners
(rlarena.rollout.multi_agent_runner, its Episode in rlarena.rollout.multi_agent_episode); here:

- policy_spec.py: `PolicySpec`, what `.multi_agent(policies=...)` asks to build for a policy id;
- builder.py: is an env multi-agent (and its adapter), which spaces a policy takes, building it;
- league.py: a self-play league for two-player games (callbacks and a mapping function);
- matches.py: matches between two policies from many openings, with a confidence interval.
"""

from rlarena.multiagent.policy_spec import PolicySpec

__all__ = ["PolicySpec"]
