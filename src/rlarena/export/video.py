"""Episode videos on disk: MP4 through imageio-ffmpeg when installed, else an animated GIF through Pillow.

Frames are written (MP4) or palettized (GIF) as they come, so a long episode does not hold full RGB
frames in memory. A video is written under a temporary name in its directory and renamed into place
when it is complete (rlarena.checkpoint.io.atomic_write): a link at its name is never written through.

This module knows frames and files only; the episodes that feed it are played by
rlarena.rollout.episodes (record_video), and `rlarena rollout --video DIR` writes one per episode.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from rlarena.checkpoint.io import atomic_write
from rlarena.errors import ConfigError, EnvError

GIF_MAX_WIDTH = 400  # GIFs are downscaled to this width: a 600x400 CartPole GIF of 500 frames is ~20 MB
DEFAULT_FPS = 30  # for envs whose metadata has no render_fps
HOLD_LAST_S = 1.0  # the final frame stays on screen this long: short episodes (a Connect Four win) end readably


def available_format(requested: str = "auto") -> str:
    """The video format to write: `requested` ("mp4" or "gif") when its package is installed; "auto":
    MP4 when imageio-ffmpeg is installed, else GIF. ConfigError naming what to install otherwise."""
    has_mp4 = importlib.util.find_spec("imageio") is not None and importlib.util.find_spec("imageio_ffmpeg") is not None
    has_gif = importlib.util.find_spec("PIL") is not None
    if requested == "mp4" and not has_mp4:
        raise ConfigError(
            "MP4 video needs imageio and imageio-ffmpeg: pip install imageio imageio-ffmpeg "
            "(or choose the GIF format, which needs Pillow: --video-format gif)."
        )
    if requested == "gif" and not has_gif:
        raise ConfigError("GIF video needs Pillow: pip install Pillow.")
    if requested == "auto":
        if has_mp4:
            return "mp4"
        if has_gif:
            return "gif"
        raise ConfigError("Recording a video needs Pillow (GIF) or imageio-ffmpeg (MP4): pip install Pillow.")
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

    def __init__(
        self,
        path: Path,
        fmt: str,
        fps: int = DEFAULT_FPS,
        hold_last_s: float = HOLD_LAST_S,
        *,
        replace_link: bool = False,
    ):
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
            raise EnvError(
                f"render() returned an array of shape {frame.shape}; a video frame is an "
                f"(height, width, 3) RGB array (render_mode='rgb_array')."
            )
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
                first.save(
                    self._out.file,
                    format="GIF",
                    save_all=True,
                    append_images=rest,
                    duration=round(1000 / self.fps),
                    loop=0,
                )
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
