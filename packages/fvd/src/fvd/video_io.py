"""Reading videos for FVD: `.npy`/`.npz` arrays and folders of video files (PyAV)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".gif")


class BadVideoError(ValueError):
    """One or more video files could not be used; `.bad` lists `(path, reason)` pairs."""

    def __init__(self, bad: list[tuple[str, str]]):
        self.bad = bad
        lines = "\n".join(f"  {path}: {reason}" for path, reason in bad)
        super().__init__(
            f"{len(bad)} unreadable or unusable video file(s) (use --skip-bad to continue "
            f"without them):\n{lines}"
        )


def read_video(
    path: str, num_frames: int | None = None, *, check_length: bool = True
) -> np.ndarray:
    """Decodes the first `num_frames` frames (all if None) of a video file.

    Args:
      path: a file PyAV/FFmpeg can decode.
      num_frames: frames to keep.
      check_length: raise when the video has fewer than `num_frames` frames (False: return
        what there is).

    Returns:
      `[T, H, W, 3]` uint8 RGB.

    Raises:
      ValueError: the file cannot be decoded, has no video stream, or has fewer frames.
    """
    import av  # imported lazily: only folders of videos need FFmpeg

    frames = []
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise ValueError(f"{path}: no video stream")
            container.streams.video[0].thread_type = "AUTO"  # FFmpeg's frame/slice threads
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                if num_frames is not None and len(frames) == num_frames:
                    break
    except (av.FFmpegError, OSError, UnicodeDecodeError) as e:  # corrupt, truncated, not a video
        raise ValueError(f"{path}: cannot decode ({type(e).__name__}: {e})") from e
    if not frames:
        raise ValueError(f"{path}: no frames decoded (empty video)")
    if check_length and num_frames is not None and len(frames) < num_frames:
        raise ValueError(f"{path}: has {len(frames)} frames, fewer than --num-frames={num_frames}")
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise ValueError(f"{path}: frame size changes within the video {sorted(shapes)}")
    return np.stack(frames)


def list_videos(folder: str) -> list[str]:
    """Sorted paths of the files in `folder` with a video extension (non-recursive)."""
    if not os.path.isdir(folder):
        raise ValueError(f"{folder!r} is not a folder")
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(VIDEO_EXTENSIONS))
    return [os.path.join(folder, n) for n in names]


def probe_videos(paths: list[str], num_frames: int) -> tuple[list[str], list[tuple[str, str]]]:
    """Splits `paths` into usable files and `(path, reason)` for unusable ones."""
    good, bad = [], []
    for path in paths:
        try:
            read_video(path, num_frames)
        except ValueError as e:
            bad.append((path, str(e).removeprefix(f"{path}: ")))
        else:
            good.append(path)
    return good, bad


def iter_video_batches(paths: list[str], num_frames: int, batch_size: int) -> Iterator[np.ndarray]:
    """Yields `[B, num_frames, H, W, 3]` uint8 batches; a batch ends where the frame size changes."""
    batch: list[np.ndarray] = []
    for path in paths:
        video = read_video(path, num_frames)
        if batch and (video.shape != batch[0].shape or len(batch) == batch_size):
            yield np.stack(batch)
            batch = []
        batch.append(video)
    if batch:
        yield np.stack(batch)


def load_array(path: str) -> np.ndarray:
    """Loads videos `[N, T, H, W, 3]` from `.npy`, or from `.npz` (its only array, or `videos`)."""
    if path.endswith(".npy"):
        return np.load(path, mmap_mode="r", allow_pickle=False)
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as data:
            keys = list(data.keys())
            if len(keys) == 1:
                return data[keys[0]]
            if "videos" in keys:
                return data["videos"]
            raise ValueError(f"{path}: expected one array or a 'videos' array, found {keys}")
    raise ValueError(f"{path!r} must be a .npy or .npz file or a folder of videos")
