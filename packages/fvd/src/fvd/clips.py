"""Which clips a video set contributes: the clip protocols papers use, read once, in parallel.

A *source* is one video: a video file, a folder of frame images (one folder per clip), or one
row `[T, H, W, 3]` of a `.npy`/`.npz` array. `ClipProtocol` says which sources are used
(`max_videos`, `sampling`) and which frames of each become clips (`num_frames`, `stride`,
`start`, `clips_per_video`, `seed`), and whether frames are centre-cropped and resized to a
dataset resolution before I3D's own 224x224 resize. The default protocol (first 16
frames of every video, no resize) is the reference FVD protocol.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from fvd.video_io import VIDEO_EXTENSIONS, read_video

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
STARTS = ("first", "random")
SAMPLINGS = ("random", "sorted")


@dataclasses.dataclass(frozen=True)
class ClipProtocol:
    """How clips are cut from a set of videos.

    Attributes:
      num_frames: frames per clip T (16 in the reference; >= 9 for I3D).
      stride: take every `stride`-th frame (a clip spans `(T - 1) * stride + 1` frames).
      start: "first" (clip k of a video starts at frame `k * span`: consecutive windows from
        the start) or "random" (each clip starts at a uniform random frame, seeded).
      clips_per_video: clips taken from each video.
      seed: seeds the random starts and the random choice of `max_videos` videos.
      max_videos: use at most this many videos (None: all).
      sampling: which `max_videos` videos: "random" (seeded, the default) or "sorted" (the
        first in sorted path order).
      resolution: centre-crop each frame to a square and resize it to this side (antialiased
        bilinear) before I3D's 224x224 resize, as papers that compare at 64x64; None: keep.
    """

    num_frames: int = 16
    stride: int = 1
    start: str = "first"
    clips_per_video: int = 1
    seed: int = 0
    max_videos: int | None = None
    sampling: str = "random"
    resolution: int | None = None

    def __post_init__(self):
        def positive(name, value, low=1):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")

        positive("num_frames", self.num_frames, 9)  # fvd.MIN_FRAMES
        positive("stride", self.stride)
        positive("clips_per_video", self.clips_per_video)
        positive("seed", self.seed, 0)
        if self.max_videos is not None:
            positive("max_videos", self.max_videos, 2)
        if self.resolution is not None:
            positive("resolution", self.resolution)
        if self.start not in STARTS:
            raise ValueError(f"start: expected one of {STARTS}, got {self.start!r}")
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"sampling: expected one of {SAMPLINGS}, got {self.sampling!r}")

    @property
    def span(self) -> int:
        """Frames of the source one clip covers."""
        return (self.num_frames - 1) * self.stride + 1

    @property
    def frames_needed(self) -> int | None:
        """Leading frames a source must have (None: random starts read the whole video)."""
        return self.clips_per_video * self.span if self.start == "first" else self.span

    def select(self, items: Sequence[Any]) -> list[Any]:
        """The `max_videos` items used (all when None or when there are no more)."""
        items = list(items)
        if self.max_videos is None or len(items) <= self.max_videos:
            return items
        if self.sampling == "sorted":
            return items[: self.max_videos]
        rng = np.random.default_rng([self.seed, 0x5E1EC7])
        keep = np.sort(rng.choice(len(items), self.max_videos, replace=False))
        return [items[i] for i in keep]

    def starts(self, length: int, index: int) -> list[int]:
        """First frames of the clips of source number `index` with `length` frames."""
        if self.start == "first":
            return [k * self.span for k in range(self.clips_per_video)]
        rng = np.random.default_rng([self.seed, index])
        return [int(s) for s in rng.integers(0, length - self.span + 1, self.clips_per_video)]

    def cut(self, frames: np.ndarray, index: int, name: str) -> list[np.ndarray]:
        """The clips `[T, H', W', 3]` of one source's frames `[L, H, W, 3]`."""
        needed = self.frames_needed
        if frames.shape[0] < needed:
            raise ValueError(
                f"{name}: has {frames.shape[0]} frames, fewer than the {needed} needed "
                f"({self.describe()})"
            )
        clips = [frames[s : s + self.span : self.stride] for s in self.starts(len(frames), index)]
        if self.resolution is not None:
            clips = [crop_resize(c, self.resolution) for c in clips]
        return clips

    def describe(self) -> str:
        """e.g. "16 frames, stride 1, first clip of each video"."""
        where = "first" if self.start == "first" else f"random (seed {self.seed})"
        per = (
            "clip" if self.clips_per_video == 1 else f"{self.clips_per_video} clips"
        ) + " of each video"
        return f"{self.num_frames} frames, stride {self.stride}, {where} {per}"

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@functools.cache
def _resize_fn(shape: tuple[int, ...], size: int, dtype: str):
    import jax
    import jax.numpy as jnp

    t, _, _, c = shape

    def fn(x):
        y = jax.image.resize(x.astype(jnp.float32), (t, size, size, c), "linear", antialias=True)
        if np.dtype(dtype) == np.uint8:
            y = jnp.clip(jnp.round(y), 0, 255).astype(jnp.uint8)
        return y

    return jax.jit(fn)


def crop_resize(clip: np.ndarray, size: int) -> np.ndarray:
    """Centre-crops `[T, H, W, C]` frames to `min(H, W)` squared, then resizes to `size`.

    Antialiased bilinear (`jax.image.resize`); uint8 stays uint8 (rounded), as a dataset
    stored at `size` would be.
    """
    _, h, w, _ = clip.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = np.ascontiguousarray(clip[:, top : top + side, left : left + side])
    if side == size:
        return square
    return np.asarray(_resize_fn(square.shape, size, str(clip.dtype))(square))


def _has(names: Sequence[str], extensions: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if n.lower().endswith(extensions))


def find_sources(path: str, *, recursive: bool = True) -> list[str]:
    """Video files and frame folders under `path`, in sorted path order.

    A folder holding image files and no video files is one clip (its images, sorted by name,
    are the frames). Other folders are searched for videos and frame folders below them
    (only one level when `recursive` is False).

    Raises:
      ValueError: `path` is not a folder, holds frame images itself (pass its parent), or
        holds no video files or frame folders.
    """
    if not os.path.isdir(path):
        raise ValueError(f"{path!r}: not a folder")
    names = os.listdir(path)
    if _has(names, IMAGE_EXTENSIONS) and not _has(names, VIDEO_EXTENSIONS):
        raise ValueError(
            f"{path!r} holds frame images itself: expected one folder of frames per clip "
            f"(e.g. {os.path.join(path, 'clip_0000', 'frame_00.png')}); pass the folder that "
            "holds those folders"
        )
    found = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        if root != path and _has(files, IMAGE_EXTENSIONS) and not _has(files, VIDEO_EXTENSIONS):
            found.append(root)  # a frame folder: one clip, nothing below it is read
            dirs.clear()
            continue
        found += [os.path.join(root, n) for n in _has(files, VIDEO_EXTENSIONS)]
        if not recursive and root != path:
            dirs.clear()
    if not found:
        where = "or below it" if recursive else "(not searched recursively)"
        raise ValueError(
            f"{path!r}: no video files ({', '.join(VIDEO_EXTENSIONS)}) or folders of frame "
            f"images ({', '.join(IMAGE_EXTENSIONS)}) in it {where}"
        )
    return sorted(found)


def _decode_image(path: str) -> np.ndarray:
    import av

    try:
        with av.open(path) as container:
            for frame in container.decode(video=0):
                return frame.to_ndarray(format="rgb24")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot decode ({type(e).__name__}: {e})") from e
    raise ValueError(f"{path}: no image decoded")


def frame_files(folder: str) -> list[str]:
    """The image files of a frame folder, sorted by name."""
    return [os.path.join(folder, n) for n in _has(os.listdir(folder), IMAGE_EXTENSIONS)]


def read_frames(source: str, max_frames: int | None = None) -> np.ndarray:
    """`[L, H, W, 3]` uint8 frames of a video file or frame folder (the first `max_frames`)."""
    if os.path.isdir(source):
        files = frame_files(source)[:max_frames]
        frames = [_decode_image(f) for f in files]
        if len({f.shape for f in frames}) > 1:
            raise ValueError(f"{source}: frame images of different sizes")
        if not frames:
            raise ValueError(f"{source}: no frame images")
        return np.stack(frames)
    return read_video(source, max_frames, check_length=False)


def probe(source: str, needed: int | None) -> str | None:
    """Why `source` cannot give its clips, from headers only (None: looks usable).

    Opens a video file's container (no decoding) and checks its video stream and, where the
    container states it, its frame count; for a frame folder, counts the images.
    """
    if os.path.isdir(source):
        count = len(frame_files(source))
        if needed is not None and count < needed:
            return f"has {count} frames, fewer than the {needed} needed"
        return None
    import av

    try:
        with av.open(source) as container:
            if not container.streams.video:
                return "no video stream"
            frames = container.streams.video[0].frames
    except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
        return f"cannot decode ({type(e).__name__}: {e})"
    if needed is not None and frames and frames < needed:
        return f"has {frames} frames, fewer than the {needed} needed"
    return None


def iter_clips(
    sources: Sequence[Any],
    protocol: ClipProtocol,
    *,
    read: Callable[[Any, int | None], np.ndarray] = read_frames,
    workers: int = 4,
    on_error: Callable[[Any, ValueError], None] | None = None,
) -> Iterator[tuple[int, list[np.ndarray], tuple[int, ...]]]:
    """Yields `(source index, clips, source frame shape [H, W, 3])` in source order, reading
    `workers` sources at a time.

    Each source is decoded once (PyAV and the resize release the GIL, so threads overlap
    decoding with each other and with the caller's network calls).

    Args:
      sources: what `read(source, max_frames)` turns into `[L, H, W, 3]` frames.
      protocol: the clip protocol.
      read: the reader (default: video files and frame folders).
      workers: sources read concurrently (>= 1).
      on_error: called with `(source, error)` for a source that cannot give its clips, which
        is then skipped; None raises the error.
    """
    if workers < 1:
        raise ValueError(f"workers: expected an integer >= 1, got {workers}")
    max_frames = protocol.frames_needed if protocol.start == "first" else None

    def load(index_source):
        index, source = index_source
        frames = read(source, max_frames)
        return protocol.cut(frames, index, str(source)), tuple(frames.shape[1:])

    queue: collections.deque = collections.deque()
    todo = iter(enumerate(sources))
    with ThreadPoolExecutor(workers) as pool:
        for item in todo:
            queue.append((item, pool.submit(load, item)))
            if len(queue) >= 2 * workers:
                break
        while queue:
            (index, source), future = queue.popleft()
            item = next(todo, None)
            if item is not None:
                queue.append((item, pool.submit(load, item)))
            try:
                clips, shape = future.result()
            except ValueError as e:
                if on_error is None:
                    raise
                on_error(source, e)
                continue
            yield index, clips, shape
