"""The RLlib tutorial's MultiAgentArena, ported: two agents on a 10x10 grid for 100 steps.
agent1 earns +1 for every new cell it covers (-0.5 otherwise) and loses 1 when bumped; agent2
earns +1 for bumping into agent1 (-0.1 otherwise).

1. the environment loop with random actions and the text render;
2. PPO with two policies, policy1 for agent1 and policy2 for agent2, printing per-policy returns
   until the combined mean return passes 10 (the tutorial's bar).

    python examples/multi_agent_arena.py [--max-iters N]
"""

import argparse
import time

import rlarena
from rlarena import PolicySpec, PPOConfig
from rlarena.envs.arena import MultiAgentArena

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--max-iters", type=int, default=100)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

# 1. The environment loop: observations, rewards and dones are dicts keyed by agent id.
env = MultiAgentArena({"render_mode": "ansi"})
rlarena.check_env(env)
obs, infos = env.reset(seed=args.seed)
print("observations:", obs)  # each agent sees (its own cell, the other's cell) as cell indices
returns = {agent: 0.0 for agent in env.possible_agents}
while True:
    actions = {agent: env.get_action_space(agent).sample() for agent in obs}
    obs, rewards, terminateds, truncateds, infos = env.step(actions)
    for agent, reward in rewards.items():
        returns[agent] += reward
    if terminateds["__all__"] or truncateds["__all__"]:
        break
print(env.render())
print("random actions:", {agent: round(r, 1) for agent, r in returns.items()},
      "combined", round(sum(returns.values()), 1))


# 2. Two policies; the mapping function says which agent each one plays.
def policy_mapping_fn(agent_id, episode, **kwargs):
    return "policy1" if agent_id == "agent1" else "policy2"


config = (
    PPOConfig()
    .environment("multi_agent_arena")  # the built-in name; MultiAgentArena (the class) works too
    .env_runners(num_envs_per_env_runner=8)
    .training(train_batch_size=4000, minibatch_size=500, num_epochs=10, lr=3e-4)
    .multi_agent(policies={"policy1": PolicySpec(), "policy2": PolicySpec()},
                 policy_mapping_fn=policy_mapping_fn)
    .debugging(seed=args.seed)
)
algo = config.build()
start = time.perf_counter()
for _ in range(args.max_iters):
    result = algo.train()
    per_policy = result["policy_reward_mean"]  # the tutorial's nested access works
    print(f"iter {result['training_iteration']:3d}  env steps {result['num_env_steps_sampled_lifetime']:7d}  "
          f"combined {result['episode_return_mean']:6.2f}  policy1 {per_policy['policy1']:6.2f}  "
          f"policy2 {per_policy['policy2']:6.2f}")
    if result["episode_return_mean"] >= 10:
        print(f"combined mean return >= 10 after {result['num_env_steps_sampled_lifetime']} env steps, "
              f"{time.perf_counter() - start:.1f} s")
        break
algo.stop()
