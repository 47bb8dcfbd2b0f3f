"""The `VideoSource` protocol that every dataset source implements."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

from video_training.data.preprocess import PreprocessName


@runtime_checkable
class VideoSource(Protocol):
    """A dataset of whole videos, read once by `prepare`.

    Attributes:
      name: short identifier written into `dataset_info.json`.
      splits: the split names `examples` accepts.
      preprocess: default spatial preprocessing ("vt", "trivd" or "none" when frames are already
        at the target size).
      num_frames: default stored clip length T.
      size: default stored frame size.
    """

    name: str
    splits: tuple[str, ...]
    preprocess: PreprocessName
    num_frames: int
    size: int

    def examples(self, split: str) -> Iterator[dict[str, Any]]:
        """Yields dicts with `video: [T, H, W, 3]` uint8, `label: int` and optional metadata."""
        ...

    def num_examples(self, split: str) -> int | None:
        """Number of videos in `split` if known (for the progress bar)."""
        ...


def check_split(source: Any, split: str) -> None:
    """Raises ValueError if `split` is not one of `source.splits`."""
    if split not in source.splits:
        raise ValueError(f"split must be one of {source.splits} for {source.name}, got {split!r}")
