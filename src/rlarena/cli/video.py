"""Episode videos: `rlarena rollout --video DIR` and the replay of `rlarena package`.

MP4 through imageio-ffmpeg when installed, else an animated GIF through Pillow. Frames are written
(MP4) or palettized (GIF) as they come, so a long episode does not hold full RGB frames in memory.
A video is written under a temporary name in its directory and renamed into place when it is
complete (rlarena.checkpoint.io.atomic_write): a link at its name is never written through.

`play_episode` is the one greedy/sampled episode loop for single- and multi-agent algorithms (an
optional VideoWriter records it); `record_video` opens an rgb_array env and records one episode.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlarena.checkpoint.io import atomic_write
from rlarena.errors import ConfigError, EnvError

GIF_MAX_WIDTH = 400  # GIFs are downscaled to this width: a 600x400 CartPole GIF of 500 frames is ~20 MB
DEFAULT_FPS = 30  # for envs whose metadata has no render_fps
HOLD_LAST_S = 1.0  # the final frame stays on screen this long: short episodes (a Connect Four win) end readably


def available_format(requested: str = "auto") -> str:
    has_mp4 = importlib.util.find_spec("imageio") is not None and importlib.util.find_spec("imageio_ffmpeg") is not None
    has_gif = importlib.util.find_spec("PIL") is not None
    if requested == "mp4" and not has_mp4:
        raise ConfigError("MP4 video needs imageio and imageio-ffmpeg: pip install imageio imageio-ffmpeg "
                          "(or use --video-format gif with Pillow).")
    if requested == "gif" and not has_gif:
        raise ConfigError("GIF video needs Pillow: pip install Pillow.")
    if requested == "auto":
        if has_mp4:
            return "mp4"
        if has_gif:
            return "gif"
        raise ConfigError("--video needs Pillow (GIF) or imageio-ffmpeg (MP4): pip install Pillow.")
    if requested not in ("mp4", "gif"):
        raise ConfigError(f"Unknown video format {requested!r}: use 'auto', 'mp4' or 'gif'.")
    return requested


def video_fps(env: Any, fps: int | None = None) -> int:
    """`fps` when given, else the env's own render_fps (CartPole 50, LunarLander 50), else 30."""
    if fps is not None:
        return fps
    metadata = getattr(env, "metadata", None) or {}
    value = metadata.get("render_fps")
    return int(value) if isinstance(value, int | float) and value > 0 else DEFAULT_FPS


class VideoWriter:
    """One episode's video at `path`, complete or not at all. `replace_link`: `path` is a name rlarena
    picks in a directory (`rollout --video DIR`), where a planted link is replaced; otherwise a path
    the caller named, which is refused when it is a link."""

    def __init__(self, path: Path, fmt: str, fps: int = DEFAULT_FPS, hold_last_s: float = HOLD_LAST_S, *,
                 replace_link: bool = False):
        self.path, self.fmt, self.fps, self.hold_last_s = path, fmt, fps, hold_last_s
        self.num_frames = 0
        self._frames: list[Any] = []
        self._last: np.ndarray | None = None
        self._writer: Any = None
        self._out = atomic_write(path, "the video", replace_link=replace_link, error=ConfigError)
        if fmt == "mp4":
            import imageio
            try:  # ffmpeg writes the file by name: the temporary one, which has the same suffix
                self._writer = imageio.get_writer(str(self._out.tmp), fps=fps, macro_block_size=1)
            except BaseException:
                self._out.discard()
                raise

    def append(self, frame: np.ndarray | None) -> None:
        if frame is None:
            return
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] not in (3, 4):
            raise EnvError(f"render() returned an array of shape {frame.shape}; a video frame is an "
                           f"(height, width, 3) RGB array (render_mode='rgb_array').")
        frame = frame[:, :, :3].astype(np.uint8, copy=False)
        self._last = frame
        self.num_frames += 1
        self._write(frame)

    def _write(self, frame: np.ndarray) -> None:
        if self._writer is not None:
            self._writer.append_data(frame)
            return
        from PIL import Image
        image = Image.fromarray(frame)
        if image.width > GIF_MAX_WIDTH:
            image = image.resize((GIF_MAX_WIDTH, round(image.height * GIF_MAX_WIDTH / image.width)))
        self._frames.append(image.quantize(colors=256))

    def close(self) -> Path | None:
        """Finish the file, rename it into place and return its path (None when no frame came: then
        nothing is written, and a file already at `path` is left as it was)."""
        try:
            if self._last is not None:
                for _ in range(round(self.hold_last_s * self.fps)):
                    self._write(self._last)
                self._last = None
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            elif self._frames:
                first, *rest = self._frames
                first.save(self._out.file, format="GIF", save_all=True, append_images=rest,
                           duration=round(1000 / self.fps), loop=0)
                self._frames = []
            if not self.num_frames:
                self._out.discard()
                return None
            self._out.commit()
        except BaseException:
            self.discard()
            raise
        return self.path

    def discard(self) -> None:
        """Drop the video (the episode failed): nothing is written, a file already at `path` is kept."""
        writer, self._writer, self._frames = self._writer, None, []
        try:
            if writer is not None:
                writer.close()
        finally:
            self._out.discard()


# -- episodes ---------------------------------------------------------------------------------------
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
        raise EnvError(f"Creating env {algo.env_name!r} with render_mode={render_mode!r} failed: "
                       f"{type(exc).__name__}: {exc}") from exc


def play_episode(algo: Any, env: Any, *, policy_id: str | None = None, seed: int | None = None,
                 explore: bool = False, writer: VideoWriter | None = None, max_steps: int | None = None,
                 mapping_fn: Callable[..., str] | None = None, worker: Any = None) -> EpisodeResult:
    """Play one episode of `algo` on `env` (from make_env), recording frames into `writer`.

    Multi-agent: each agent's policy comes from `mapping_fn(agent_id, episode, worker=worker)`
    (default: the algorithm's mapping); the return is that of the agents mapped to `policy_id`
    (None: the sum over all agents).
    """
    from rlarena.multiagent.builder import DEFAULT_POLICY_ID
    from rlarena.multiagent.episode import Episode
    total, length, done = 0.0, 0, False
    episode = Episode(env_index=0)
    try:
        obs, _ = env.reset(seed=seed)
        if writer is not None:
            writer.append(env.render())
        while not done:
            if algo.is_multi_agent:  # obs holds exactly the agents to act
                fn = mapping_fn or algo.mapping_fn
                actions = {agent: algo.compute_single_action(o, explore=explore,
                                                             policy_id=episode.policy_for(agent, fn, worker))
                           for agent, o in obs.items()}
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


def record_video(algo: Any, path: str | os.PathLike, *, fmt: str = "auto", fps: int | None = None,
                 policy_id: str | None = None, seed: int | None = None, explore: bool = False,
                 max_steps: int | None = None, mapping_fn: Callable[..., str] | None = None,
                 worker: Any = None) -> tuple[Path, EpisodeResult]:
    """Record one episode of `algo` (see play_episode) to `path` with the suffix of the format
    chosen (MP4, else GIF). EnvError when the env cannot render rgb_array frames."""
    fmt = available_format(fmt)
    env = make_env(algo, "rgb_array")
    try:
        target = Path(path).with_suffix(f".{fmt}")
        writer = VideoWriter(target, fmt, video_fps(env, fps))
        try:
            result = play_episode(algo, env, policy_id=policy_id, seed=seed, explore=explore, writer=writer,
                                  max_steps=max_steps, mapping_fn=mapping_fn, worker=worker)
        except BaseException:
            writer.discard()
            raise
        written = writer.close()
    finally:
        env.close()
    if written is None:  # nothing was written: a file already at `target` is kept
        raise EnvError(f"Env {algo.env_name!r} rendered no frames with render_mode='rgb_array' (render() "
                       f"returned None): it cannot be recorded.")
    return written, result
