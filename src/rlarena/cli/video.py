"""Episode videos for `rlarena rollout --video DIR`: MP4 through imageio-ffmpeg when installed,
else an animated GIF through Pillow. Frames are written (MP4) or palettized (GIF) as they come, so
a long episode does not hold full RGB frames in memory. (A later issue refines video.)"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from rlarena.errors import ConfigError

GIF_MAX_WIDTH = 400  # GIFs are downscaled to this width: a 600x400 CartPole GIF of 500 frames is ~20 MB


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
    return requested


class VideoWriter:
    def __init__(self, path: Path, fmt: str, fps: int = 30):
        self.path, self.fmt, self.fps = path, fmt, fps
        self._frames: list[Any] = []
        self._writer: Any = None
        if fmt == "mp4":
            import imageio
            self._writer = imageio.get_writer(str(path), fps=fps, macro_block_size=1)

    def append(self, frame: np.ndarray | None) -> None:
        if frame is None:
            return
        frame = np.asarray(frame, dtype=np.uint8)
        if self._writer is not None:
            self._writer.append_data(frame)
            return
        from PIL import Image
        image = Image.fromarray(frame)
        if image.width > GIF_MAX_WIDTH:
            image = image.resize((GIF_MAX_WIDTH, round(image.height * GIF_MAX_WIDTH / image.width)))
        self._frames.append(image.quantize(colors=256))

    def close(self) -> Path | None:
        if self._writer is not None:
            self._writer.close()
            return self.path
        if not self._frames:
            return None
        first, *rest = self._frames
        first.save(self.path, save_all=True, append_images=rest, duration=round(1000 / self.fps), loop=0)
        self._frames = []
        return self.path
