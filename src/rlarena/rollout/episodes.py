"""Playing one episode of a trained algorithm, and recording it: the replay of `rlarena package`
(rlarena.hub) and of `record_video` in scripts and notebooks.

`play_episode` is the one greedy/sampled episode loop for single- and multi-agent algorithms (an
optional rlarena.export.video.VideoWriter records it); `make_env` builds one env of the algorithm's
config; `record_video` opens an rgb_array env and records one episode. The algorithm is used through
its public surface only (config, compute_single_action, the multi-agent mapping).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlarena.errors import ConfigError, EnvError
from rlarena.export.video import VideoWriter, available_format, video_fps


@dataclass
class EpisodeResult:
    episode_return: float  # single-agent: the env's return; multi-agent: the rewards of the agents of `policy_id`
    length: int  # env steps
    seed: int | None
    policies: dict[str, str] = field(default_factory=dict)  # multi-agent: agent id -> policy id


def make_env(algo: Any, render_mode: str | None = None) -> Any:
    """One env of the algorithm's config (a MultiAgentEnv for multi-agent algorithms)."""
    from rlarena.envs.registry import make_env_creator
    from rlarena.multiagent.builder import as_multi_agent

    if render_mode == "rgb_array":  # frames off screen: pygame-drawn envs need no display
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    try:
        env = make_env_creator(algo.config.env, render_mode)(dict(algo.config.env_config))
        return as_multi_agent(env) if algo.is_multi_agent else env
    except EnvError:
        raise
    except Exception as exc:  # e.g. an env without this render mode, pygame missing
        raise EnvError(
            f"Creating env {algo.env_name!r} with render_mode={render_mode!r} failed: {type(exc).__name__}: {exc}"
        ) from exc


def play_episode(
    algo: Any,
    env: Any,
    *,
    policy_id: str | None = None,
    seed: int | None = None,
    explore: bool = False,
    writer: VideoWriter | None = None,
    max_steps: int | None = None,
    mapping_fn: Callable[..., str] | None = None,
    worker: Any = None,
) -> EpisodeResult:
    """Play one episode of `algo` on `env` (from make_env), recording frames into `writer`.

    Multi-agent: each agent's policy comes from `mapping_fn(agent_id, episode, worker=worker)`
    (default: the algorithm's mapping); the return is that of the agents mapped to `policy_id`
    (None: the sum over all agents).
    """
    from rlarena.multiagent.builder import DEFAULT_POLICY_ID
    from rlarena.rollout.multi_agent_episode import Episode

    total, length, done = 0.0, 0, False
    episode = Episode(env_index=0)
    try:
        obs, _ = env.reset(seed=seed)
        if writer is not None:
            writer.append(env.render())
        while not done:
            if algo.is_multi_agent:  # obs holds exactly the agents to act
                fn = mapping_fn or algo.mapping_fn
                actions = {
                    agent: algo.compute_single_action(
                        o, explore=explore, policy_id=episode.policy_for(agent, fn, worker)
                    )
                    for agent, o in obs.items()
                }
                obs, rewards, terminateds, truncateds, _ = env.step(actions)
                for agent, r in rewards.items():
                    if policy_id is None or episode.policy_for_agent.get(agent) == policy_id:
                        total += float(r)
                terminated, truncated = terminateds["__all__"], truncateds["__all__"]
            else:
                action = algo.compute_single_action(obs, explore=explore, policy_id=policy_id or DEFAULT_POLICY_ID)
                obs, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
            length += 1
            done = terminated or truncated or (max_steps is not None and length >= max_steps)
            if writer is not None:
                writer.append(env.render())
    except (EnvError, ConfigError):
        raise
    except Exception as exc:  # the env's own error (or the renderer's), with its name
        raise EnvError(f"Env {algo.env_name!r} failed during the episode: {type(exc).__name__}: {exc}") from exc
    return EpisodeResult(total, length, seed, {str(a): p for a, p in episode.policy_for_agent.items()})


def record_video(
    algo: Any,
    path: str | os.PathLike,
    *,
    fmt: str = "auto",
    fps: int | None = None,
    policy_id: str | None = None,
    seed: int | None = None,
    explore: bool = False,
    max_steps: int | None = None,
    mapping_fn: Callable[..., str] | None = None,
    worker: Any = None,
) -> tuple[Path, EpisodeResult]:
    """Record one episode of `algo` (see play_episode) to `path` with the suffix of the format
    chosen (MP4, else GIF). EnvError when the env cannot render rgb_array frames."""
    fmt = available_format(fmt)
    env = make_env(algo, "rgb_array")
    try:
        target = Path(path).with_suffix(f".{fmt}")
        writer = VideoWriter(target, fmt, video_fps(env, fps))
        try:
            result = play_episode(
                algo,
                env,
                policy_id=policy_id,
                seed=seed,
                explore=explore,
                writer=writer,
                max_steps=max_steps,
                mapping_fn=mapping_fn,
                worker=worker,
            )
        except BaseException:
            writer.discard()
            raise
        written = writer.close()
    finally:
        env.close()
    if written is None:  # nothing was written: a file already at `target` is kept
        raise EnvError(
            f"Env {algo.env_name!r} rendered no frames with render_mode='rgb_array' (render() "
            f"returned None): it cannot be recorded."
        )
    return written, result
