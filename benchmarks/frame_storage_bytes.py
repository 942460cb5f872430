"""Bytes per stored transition of 84x84x4 uint8 Atari observations: rlarena's PPO rollout storage and
its DQN replay buffer against Stable-Baselines3's RolloutBuffer and ReplayBuffer. Bar: rlarena <= 0.3x
SB3, which needs each frame stored once (a stacked observation shares 3 of its 4 frames with the one
before: stored as whole stacks, each frame is held 4 times).

- rlarena PPO: `algo.runner.storage` (rlarena.rollout.storage.Rollout) of PPO on the ALE id with
  RL-Zoo's Atari settings (8 envs x 128 steps), after one training iteration: the nbytes of every
  array it allocates (obs [T+1, N, 4*84*84] uint8, actions, rewards, flags; no raw_obs without an
  observation filter) over the T x N transitions it holds.
- SB3 PPO: `RolloutBuffer(128, (4, 84, 84) uint8, Discrete(4), n_envs=8)` as PPO("CnnPolicy") allocates
  it (observations keep the space's dtype; actions, rewards, returns, episode starts, values, log-probs
  and advantages as float32 per step).
- rlarena DQN: `algo.learners["default_policy"].buffer.nbytes / capacity` of DQN on the ALE id (one
  packed stack o_t per slot; o_t+1 is the next slot's, final observations of episode ends in a side
  store), filled by --fill env steps of training (no gradient step: learning starts later).
- SB3 DQN: `ReplayBuffer(capacity, (4, 84, 84) uint8, Discrete(4))`, default (observations and
  next_observations) and optimize_memory_usage=True (next observations are the next slot's; no timeout
  handling): the nbytes of the arrays it allocates.

    python benchmarks/frame_storage_bytes.py           # ~30 s
    python benchmarks/frame_storage_bytes.py --quick   # no replay fill, smaller capacity, ~10 s
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import header

FRAME = 84 * 84  # bytes of one grey frame


def rollout_bytes(storage) -> tuple[int, dict[str, int]]:
    parts = {name: getattr(storage, name).nbytes for name in ("obs", "actions", "rewards", "terminated",
                                                              "truncated", "valid", "raw_obs", "action_mask",
                                                              "state_in", "behaviour_logp")
             if getattr(storage, name, None) is not None}
    return sum(parts.values()), parts


def rlarena_rollout(env_id: str) -> tuple[float, dict[str, int], int]:
    from rlarena import PPOConfig
    algo = (PPOConfig().environment(env_id).env_runners(num_envs_per_env_runner=8)
            .training(train_batch_size=1024, minibatch_size=256, num_epochs=1,
                      model={"fcnet_hiddens": [], "post_fcnet_hiddens": [], "vf_share_layers": True})
            .debugging(seed=0).build())
    try:
        algo.train()
        storage = algo.runner.storage
        T, N = storage.rewards.shape
        total, parts = rollout_bytes(storage)
        return total / (T * N), parts, T * N
    finally:
        algo.stop()


def rlarena_replay(env_id: str, capacity: int, fill: int) -> tuple[float, int, int]:
    from rlarena import DQNConfig
    algo = (DQNConfig().environment(env_id).env_runners(num_envs_per_env_runner=1)
            .training(replay_buffer_config={"type": "ReplayBuffer", "capacity": capacity},
                      num_steps_sampled_before_learning_starts=10 ** 9)
            .debugging(seed=0).build())
    try:
        while algo.num_env_steps_sampled_lifetime < fill:
            algo.train()
        buf = algo.learners["default_policy"].buffer
        return buf.nbytes / capacity, len(buf), buf._obs.shape[-1]
    finally:
        algo.stop()


def sb3_rollout(obs_space, action_space) -> tuple[float, dict[str, int]]:
    from stable_baselines3.common.buffers import RolloutBuffer
    buf = RolloutBuffer(128, obs_space, action_space, device="cpu", n_envs=8)
    names = ("observations", "actions", "rewards", "returns", "episode_starts", "values", "log_probs", "advantages")
    parts = {name: getattr(buf, name).nbytes for name in names}
    return sum(parts.values()) / (128 * 8), parts


def sb3_replay(capacity: int, obs_space, action_space, optimize: bool) -> float:
    from stable_baselines3.common.buffers import ReplayBuffer
    buf = ReplayBuffer(capacity, obs_space, action_space, device="cpu", n_envs=1,
                       optimize_memory_usage=optimize, handle_timeout_termination=not optimize)
    arrays = [buf.observations, buf.actions, buf.rewards, buf.dones, buf.timeouts]
    if not optimize:
        arrays.append(buf.next_observations)
    return sum(a.nbytes for a in arrays) / capacity


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="ALE/Breakout-v5")
    p.add_argument("--capacity", type=int, default=20_000, help="replay capacity for both (bytes per transition "
                   "do not depend on it beyond the side store's few slots)")
    p.add_argument("--fill", type=int, default=2_000, help="env steps the rlarena DQN samples into its buffer")
    p.add_argument("--quick", action="store_true", help="capacity 2,000, one fragment of replay fill")
    args = p.parse_args(argv)
    if args.quick:
        args.capacity, args.fill = 2_000, 1
    header("Bytes per stored Atari transition (4x84x84 uint8), rlarena vs SB3")
    import gymnasium as gym
    obs_space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    action_space = gym.spaces.Discrete(4)
    stack = int(np.prod(obs_space.shape))
    print(f"# one frame {FRAME} B, one stacked observation {stack} B; 'frames stored once' would be ~{FRAME} B "
          f"per transition plus the small columns")

    ours_ro, ro_parts, ro_n = rlarena_rollout(args.env)
    sb3_ro, sb3_parts = sb3_rollout(obs_space, action_space)
    print(f"\nOn-policy rollout storage (8 envs x 128 steps = {ro_n} transitions per iteration)")
    print(f"  SB3 RolloutBuffer            {sb3_ro:9.1f} B/transition  ({', '.join(f'{k} {v:,}' for k, v in sb3_parts.items())})")
    print(f"  rlarena runner.storage       {ours_ro:9.1f} B/transition  ({', '.join(f'{k} {v:,}' for k, v in ro_parts.items())})"
          f"  = {ours_ro / sb3_ro:.3f}x SB3; {ours_ro / FRAME:.2f} frames per transition")

    ours_rb, held, width = rlarena_replay(args.env, args.capacity, args.fill)
    sb3_rb = sb3_replay(args.capacity, obs_space, action_space, optimize=False)
    sb3_rb_opt = sb3_replay(args.capacity, obs_space, action_space, optimize=True)
    print(f"\nReplay buffer, capacity {args.capacity} (rlarena DQN's held {held} transitions after the fill; "
          f"slot width {width} B)")
    print(f"  SB3 ReplayBuffer                          {sb3_rb:9.1f} B/transition")
    print(f"  SB3 ReplayBuffer optimize_memory_usage    {sb3_rb_opt:9.1f} B/transition")
    print(f"  rlarena DQN buffer (uniform)              {ours_rb:9.1f} B/transition  = {ours_rb / sb3_rb:.3f}x SB3 "
          f"default, {ours_rb / sb3_rb_opt:.3f}x SB3 optimize_memory_usage; {ours_rb / FRAME:.2f} frames per transition")
    print(f"\nRATIO rollout  rlarena / SB3 = {ours_ro / sb3_ro:.3f}x  (bar <= 0.3x: "
          f"{'met' if ours_ro / sb3_ro <= 0.3 else 'MISSED'})")
    print(f"RATIO replay   rlarena / SB3 = {ours_rb / sb3_rb:.3f}x default, {ours_rb / sb3_rb_opt:.3f}x "
          f"optimize_memory_usage  (bar <= 0.3x: {'met' if ours_rb / sb3_rb <= 0.3 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
