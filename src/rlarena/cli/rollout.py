"""`rlarena rollout` and `rlarena evaluate`: play a checkpoint. The algorithm, env and config all
come from the checkpoint; a run or trial directory stands for its latest checkpoint."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from rlarena.algorithms import Algorithm
from rlarena.checkpoint.io import METADATA_FILE
from rlarena.cli.spec import resolve_env
from rlarena.envs.registry import make_env_creator
from rlarena.errors import CheckpointError, EnvError
from rlarena.multiagent.builder import as_multi_agent
from rlarena.multiagent.episode import Episode


def resolve_checkpoint(path: str) -> str:
    """A checkpoint directory, or the latest checkpoint of a trial directory (or of a run's only trial)."""
    root = Path(path)
    if not root.exists() or (root / METADATA_FILE).exists() or not root.is_dir():
        return path  # read_checkpoint says what is wrong with it
    found = sorted(root.glob(f"checkpoints/checkpoint_*/{METADATA_FILE}")) or \
        sorted(root.glob(f"*/checkpoints/checkpoint_*/{METADATA_FILE}"))
    trials = {p.parent.parent.parent for p in found}
    if len(trials) > 1:
        raise CheckpointError(f"{path!r} holds several trials ({', '.join(sorted(t.name for t in trials))}); "
                              f"pass one trial directory or a checkpoint directory.")
    if not found:
        return path
    latest = str(max(found, key=lambda p: p.parent.name).parent)
    print(f"using the latest checkpoint: {latest}", file=sys.stderr)
    return latest


# Inference needs no batch of training envs (nor worker processes): one in-process env suffices.
INFERENCE_OVERRIDES = {"num_envs_per_env_runner": 1, "vectorization_mode": "sync"}


def load(args: argparse.Namespace, **overrides: object) -> tuple[Algorithm, str]:
    env = resolve_env(args.env) if args.env else None
    path = resolve_checkpoint(args.checkpoint)
    return Algorithm.from_checkpoint(path, env=env, config_overrides={**INFERENCE_OVERRIDES, **overrides}), path


def rollout(args: argparse.Namespace) -> int:
    algo, _ = load(args)
    try:
        video_fmt = None
        if args.video:
            from rlarena.cli.video import available_format
            video_fmt = available_format(args.video_format)
            Path(args.video).mkdir(parents=True, exist_ok=True)
        render_mode = "rgb_array" if args.video else ("human" if args.render else None)
        if render_mode == "rgb_array":  # frames off screen: pygame-drawn envs need no display (and say so)
            os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        assert algo.config.env is not None  # a checkpoint's config always names its env
        try:
            env = make_env_creator(algo.config.env, render_mode)(dict(algo.config.env_config))
            if algo.is_multi_agent:
                env = as_multi_agent(env)
        except EnvError:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. pygame missing or no display for --render
            raise EnvError(f"Creating env {algo.env_name!r} with render_mode={render_mode!r} failed: "
                           f"{type(exc).__name__}: {exc}") from exc
        mode = "sampled actions (--explore)" if args.explore else "greedy actions"
        episodes = f"{args.episodes} episode{'s' if args.episodes != 1 else ''}"
        print(f"{type(algo).__name__} on {algo.env_name}, {episodes}, {mode}")
        returns = []
        try:
            for episode in range(args.episodes):
                seed = None if args.seed is None else args.seed + episode
                ret, length, video = _episode(algo, env, seed, args, video_fmt, episode)
                returns.append(ret)
                print(f"episode {episode + 1}: return {ret:.2f}, length {length}"
                      + (f", video {video}" if video else ""))
        finally:
            env.close()
        print(f"mean return over {episodes}: {np.mean(returns):.2f} ± {np.std(returns):.2f}")
    finally:
        algo.stop()
    return 0


def _episode(algo: Algorithm, env: Any, seed: int | None, args: argparse.Namespace, video_fmt: str | None,
             index: int) -> tuple[float, int, Path | None]:
    writer = None
    if video_fmt:
        from rlarena.cli.video import VideoWriter
        writer = VideoWriter(Path(args.video) / f"episode_{index:03d}.{video_fmt}", video_fmt, args.fps)
    try:
        obs, _ = env.reset(seed=seed)
        if writer:
            writer.append(env.render())
        total, length, done = 0.0, 0, False
        episode = Episode(env_index=0)  # multi-agent: maps each agent to its policy, once per episode
        while not done:
            if algo.is_multi_agent:  # obs holds exactly the agents to act; the reward is the agents' sum
                actions = {agent: algo.compute_single_action(o, explore=args.explore,
                                                             policy_id=episode.policy_for(agent, algo.mapping_fn))
                           for agent, o in obs.items()}
                obs, rewards, terminateds, truncateds, _ = env.step(actions)
                reward, terminated, truncated = sum(rewards.values()), terminateds["__all__"], truncateds["__all__"]
            else:
                action = algo.compute_single_action(obs, explore=args.explore)
                obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            length += 1
            done = terminated or truncated or (args.max_steps is not None and length >= args.max_steps)
            if writer:
                writer.append(env.render())
    except Exception as exc:  # noqa: BLE001 - the env's own error (or the renderer's), with its name
        raise EnvError(f"Env {algo.env_name!r} failed during the rollout: {type(exc).__name__}: {exc}") from exc
    return total, length, writer.close() if writer else None


def evaluate(args: argparse.Namespace) -> int:
    seed = {} if args.seed is None else {"seed": args.seed}
    algo, path = load(args, evaluation_duration=args.episodes, evaluation_explore=args.explore, **seed)
    try:
        out = algo.evaluate()
    finally:
        algo.stop()
    mode = "explore" if args.explore else "greedy"
    if args.json:
        print(json.dumps({"checkpoint": str(Path(path).resolve()),
                          "algorithm": type(algo).__name__, "env": algo.env_name, "explore": args.explore,
                          **out}))
    else:
        print(f"{type(algo).__name__} on {algo.env_name}, {out['episodes']} episodes ({mode}): "
              f"return {out['episode_return_mean']:.2f} ± {out['episode_return_std']:.2f}  "
              f"min {out['episode_return_min']:.2f}  max {out['episode_return_max']:.2f}  "
              f"length {out['episode_len_mean']:.1f}")
    return 0

