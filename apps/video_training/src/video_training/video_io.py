"""Sample grids as GIF/MP4, conditioning frames framed in one colour and predictions in another."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import av
import numpy as np
from PIL import Image

COND_COLOR = (40, 200, 40)  # green frame: frames the model was given
PRED_COLOR = (220, 40, 40)  # red frame: frames the model predicted


def to_uint8(video: np.ndarray) -> np.ndarray:
    """float in [-1, 1] or uint8 -> uint8 (clipped)."""
    video = np.asarray(video)
    if video.dtype == np.uint8:
        return video
    return np.clip(np.round((video.astype(np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


# Frames of sample grids are enlarged (nearest) to at least this many pixels by the apps.
GRID_MIN_SIZE = 64


def sample_grid(
    videos: np.ndarray,
    num_cond: int,
    *,
    columns: int | None = None,
    border: int = 2,
    cond_color: Sequence[int] = COND_COLOR,
    pred_color: Sequence[int] = PRED_COLOR,
    min_size: int = 0,
) -> np.ndarray:
    """Tiles videos into one video, each frame outlined by whether it was given or predicted.

    Args:
      videos: `[N, T, H, W, 3]` uint8 or float in [-1, 1].
      num_cond: frames `t < num_cond` are conditioning frames (`cond_color` border), the rest
        predictions (`pred_color`).
      columns: grid columns (default ceil(sqrt(N))).
      border: border width in pixels.
      min_size: frames whose shorter side is below this are first enlarged by the smallest
        integer factor reaching it, nearest neighbour (16x16 frames become 64x64: pixels stay
        pixels); 0 keeps the frames as they are.

    Returns:
      `[T, rows * (H' + 2 * border), columns * (W' + 2 * border), 3]` uint8, `H', W'` the
      (enlarged) frame size.
    """
    videos = to_uint8(videos)
    if videos.ndim != 5 or videos.shape[-1] != 3:
        raise ValueError(f"videos must be [N, T, H, W, 3], got {videos.shape}")
    n, t, h, w, _ = videos.shape
    if not 0 <= num_cond <= t:
        raise ValueError(f"num_cond must be in [0, {t}], got {num_cond}")
    if min_size < 0:
        raise ValueError(f"min_size: expected an integer >= 0, got {min_size}")
    if min_size and min(h, w) < min_size:
        scale = -(-min_size // min(h, w))
        videos = videos.repeat(scale, axis=2).repeat(scale, axis=3)
        h, w = h * scale, w * scale
    columns = columns or int(np.ceil(np.sqrt(n)))
    rows = -(-n // columns)
    bh, bw = h + 2 * border, w + 2 * border
    grid = np.zeros((t, rows * bh, columns * bw, 3), np.uint8)
    colors = np.array([cond_color if i < num_cond else pred_color for i in range(t)], np.uint8)
    for i in range(n):
        r, c = divmod(i, columns)
        tile = grid[:, r * bh : (r + 1) * bh, c * bw : (c + 1) * bw]
        tile[:] = colors[:, None, None, :]
        tile[:, border : border + h, border : border + w] = videos[i]
    return grid


def flow_grid(
    flows: np.ndarray, flow_to_rgb: Callable[[np.ndarray], np.ndarray], **grid_kwargs
) -> np.ndarray:
    """Visualises flow fields with a caller-supplied colouring (e.g. warp-ops' flow->RGB).

    Args:
      flows: `[N, T, H, W, 2]` flow fields.
      flow_to_rgb: maps `[..., H, W, 2]` flow to `[..., H, W, 3]` uint8 (or float in [-1, 1]).
      **grid_kwargs: forwarded to `sample_grid` (num_cond defaults to 0).

    Returns:
      A grid video as from `sample_grid`.
    """
    rgb = np.asarray(flow_to_rgb(np.asarray(flows)))
    if rgb.shape[:-1] != flows.shape[:-1] or rgb.shape[-1] != 3:
        raise ValueError(f"flow_to_rgb must map {flows.shape} to [..., 3], got {rgb.shape}")
    grid_kwargs.setdefault("num_cond", 0)
    return sample_grid(rgb, **grid_kwargs)


def write_gif(path: str, video: np.ndarray, fps: float = 8.0) -> str:
    """Writes `[T, H, W, 3]` uint8 as a looping GIF; returns the path."""
    video = to_uint8(video)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    frames = [Image.fromarray(f) for f in video]
    frames[0].save(
        path, save_all=True, append_images=frames[1:], duration=round(1000 / fps), loop=0
    )
    return path


def write_mp4(path: str, video: np.ndarray, fps: float = 8.0) -> str:
    """Writes `[T, H, W, 3]` uint8 as H.264 MP4 with PyAV (sides padded to even); returns the path."""
    video = to_uint8(video)
    _t, h, w, _ = video.shape
    video = np.pad(video, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with av.open(path, mode="w") as container:
        stream = container.add_stream("libx264", rate=round(fps))
        stream.width, stream.height, stream.pix_fmt = video.shape[2], video.shape[1], "yuv420p"
        stream.options = {"crf": "18"}
        for frame in video:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
