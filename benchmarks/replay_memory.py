"""Replay memory (issue 11): bytes per stored transition, rlarena's buffer vs Stable-Baselines3's ReplayBuffer
at the same capacity and number of envs. Target: rlarena <= 0.6x SB3 on both observations.

- CartPole-v1 (4 float32, Discrete(2) stored as int64 by both): rlarena's buffer is filled from a real
  vector env with random actions (gymnasium's same-step autoreset, final observations from
  `infos["final_obs"]`). Random play ends an episode every ~22 steps, the worst case for the side store
  of final observations (a trained agent's episodes run to 500 steps).
- 84x84 uint8 images (Discrete(4) as int64): synthetic frames, an episode end every --image-episode
  steps per env.
SB3's footprint is the nbytes of the arrays its ReplayBuffer allocates (observations, next_observations,
actions, rewards, dones, timeouts); its optimize_memory_usage=True mode (no next_observations; it cannot be
combined with timeout handling, so it mistreats truncations) is printed for reference. rlarena's is the
buffer's `nbytes` once full (side store at its allocated size). The prioritized buffer adds its sum and
min trees (2 x 2 float64 per slot, rounded up to a power of two).

    python benchmarks/replay_memory.py
    python benchmarks/replay_memory.py --capacity 100000 --image-capacity 100000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import header

from rlarena.rollout.replay import PrioritizedReplayBuffer, ReplayBuffer


def sb3_bytes(capacity: int, num_envs: int, obs_space, action_space, optimize: bool) -> int:
    from stable_baselines3.common.buffers import ReplayBuffer as SB3ReplayBuffer
    buf = SB3ReplayBuffer(capacity, obs_space, action_space, device="cpu", n_envs=num_envs,
                          optimize_memory_usage=optimize, handle_timeout_termination=not optimize)
    arrays = [buf.observations, buf.actions, buf.rewards, buf.dones, buf.timeouts]
    if not optimize:
        arrays.append(buf.next_observations)
    return sum(a.nbytes for a in arrays)


def fill_cartpole(buf: ReplayBuffer, num_envs: int, seed: int) -> int:
    import gymnasium as gym
    env = gym.make_vec("CartPole-v1", num_envs=num_envs, vectorization_mode="sync",
                       vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP})
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    episodes = 0
    for _ in range(buf.rows):
        actions = env.action_space.sample()
        next_obs, rewards, term, trunc, infos = env.step(actions)
        ended = term | trunc
        final = next_obs.copy()
        if ended.any():
            final[ended] = np.stack(infos["final_obs"][ended])
            episodes += int(ended.sum())
        buf.add(obs, actions, rewards, term, trunc, final)
        obs = next_obs
    env.close()
    return episodes


def fill_images(buf: ReplayBuffer, num_envs: int, episode: int, seed: int) -> int:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (num_envs, 84, 84), dtype=np.uint8)
    actions = np.zeros(num_envs, np.int64)
    rewards = np.zeros(num_envs, np.float32)
    no = np.zeros(num_envs, bool)
    episodes = 0
    for t in range(buf.rows):
        ended = (t + np.arange(num_envs) * (episode // num_envs)) % episode == episode - 1  # staggered ends
        episodes += int(ended.sum())
        buf.add(frames, actions, rewards, ended, no, frames)
    return episodes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--capacity", type=int, default=100_000, help="CartPole capacity (RL-Zoo's DQN CartPole: 100k)")
    p.add_argument("--image-capacity", type=int, default=20_000, help="84x84 capacity (filling it writes "
                   "capacity x 7 KB; the bytes per transition do not depend on it)")
    p.add_argument("--image-episode", type=int, default=500, help="steps per episode in the image fill")
    p.add_argument("--num-envs", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    header("Replay memory: bytes per stored transition, rlarena vs SB3 ReplayBuffer (same capacity)")
    import gymnasium as gym
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        raise SystemExit("needs Stable-Baselines3: pip install -c constraints.txt stable-baselines3") from None

    N = args.num_envs
    cases = [
        ("CartPole-v1 (4 float32)", args.capacity, gym.spaces.Box(-np.inf, np.inf, (4,), np.float32),
         gym.spaces.Discrete(2), lambda b: fill_cartpole(b, N, args.seed)),
        ("84x84 uint8 image", args.image_capacity, gym.spaces.Box(0, 255, (84, 84), np.uint8),
         gym.spaces.Discrete(4), lambda b: fill_images(b, N, args.image_episode, args.seed)),
    ]
    for name, capacity, obs_space, action_space, fill in cases:
        sb3 = sb3_bytes(capacity, N, obs_space, action_space, optimize=False) / capacity
        sb3_opt = sb3_bytes(capacity, N, obs_space, action_space, optimize=True) / capacity
        ours = {}
        for cls in (ReplayBuffer, PrioritizedReplayBuffer):
            buf = cls(capacity, N, obs_space.shape, obs_space.dtype, action_dtype=np.dtype(action_space.dtype),
                      seed=args.seed)
            episodes = fill(buf)
            ours[cls.__name__] = buf.nbytes / len(buf)
            del buf
        print(f"\n{name}: capacity {capacity}, {N} envs, {episodes} episode ends in the fill "
              f"(a final observation each, while their rows are held)")
        print(f"  SB3 ReplayBuffer                         {sb3:9.1f} B/transition")
        print(f"  SB3 ReplayBuffer optimize_memory_usage   {sb3_opt:9.1f} B/transition  (reference)")
        for cls_name, value in ours.items():
            print(f"  rlarena {cls_name:<32} {value:9.1f} B/transition  = {value / sb3:.3f}x SB3")


if __name__ == "__main__":
    main()
