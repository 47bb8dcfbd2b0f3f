"""Decoding video files to uint8 frames with PyAV."""

from __future__ import annotations

import os

import av
import numpy as np


class VideoDecodeError(RuntimeError):
    """A video file is missing, unreadable or has no decodable frames."""


def decode_video(path: str | os.PathLike[str], *, max_frames: int | None = None) -> np.ndarray:
    """Decodes a video file once into RGB frames.

    Args:
      path: any container/codec that FFmpeg (through PyAV) reads.
      max_frames: stop after this many frames (None: all).

    Returns:
      uint8 `[T, H, W, 3]`.

    Raises:
      VideoDecodeError: if the file is missing, corrupt or empty.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise VideoDecodeError(f"video file not found: {path}")
    frames = []
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise VideoDecodeError(f"no video stream in {path}")
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except VideoDecodeError:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as e:  # corrupt header/stream
        raise VideoDecodeError(f"cannot decode {path}: {e}") from e
    if not frames:
        raise VideoDecodeError(f"no decodable frames in {path}")
    return np.stack(frames)
