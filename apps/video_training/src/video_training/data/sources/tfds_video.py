"""Generic tensorflow-datasets video source, with UCF-101 and Moving MNIST presets."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from video_training.data.preprocess import PreprocessName
from video_training.data.sources.base import check_split


def parse_percent_slice(spec: str) -> tuple[str, int | None, int | None]:
    """ "test[10%:90%]" -> ("test", 10, 90); "train" -> ("train", None, None)."""
    m = re.fullmatch(r"(\w+)(?:\[(?:(\d+)%)?:(?:(\d+)%)?\])?", spec)
    if m is None:
        raise ValueError(f"split must look like 'name' or 'name[a%:b%]', got {spec!r}")
    name, a, b = m.groups()
    return name, None if a is None else int(a), None if b is None else int(b)


class TfdsVideoSource:
    """Any tfds dataset with a video feature (needs the optional `[tfds]` extra: TensorFlow).

    Args:
      dataset: tfds name, e.g. "ucf101" or "moving_mnist".
      split_map: our split name -> tfds split string (slices allowed: "test[:90%]").
      video_key: feature holding `[T, H, W, C]` uint8 frames (C = 1 is repeated to 3).
      label_key: integer label feature, or None (label 0).
      preprocess, num_frames, size: default clip layout for `prepare`.
      data_dir: tfds data dir.
    """

    def __init__(
        self,
        dataset: str,
        split_map: Mapping[str, str],
        *,
        video_key: str = "video",
        label_key: str | None = "label",
        preprocess: PreprocessName = "trivd",
        num_frames: int = 16,
        size: int = 64,
        data_dir: str | None = None,
        name: str | None = None,
    ):
        self.dataset, self.split_map = dataset, dict(split_map)
        self.splits = tuple(self.split_map)
        self.video_key, self.label_key = video_key, label_key
        self.preprocess, self.num_frames, self.size = preprocess, num_frames, size
        self.data_dir = data_dir
        self.name = name or dataset

    def _builder(self):
        import tensorflow_datasets as tfds  # optional `[tfds]` extra

        builder = tfds.builder(self.dataset, data_dir=self.data_dir)
        builder.download_and_prepare()
        return builder

    def _range(self, split: str, builder) -> tuple[str, int, int | None]:
        """`(tfds split, first index, end index)` from e.g. "test[90%:]" (percent slices only)."""
        name, start_pct, end_pct = parse_percent_slice(self.split_map[split])
        if start_pct is None and end_pct is None:
            return name, 0, None
        try:
            n = builder.info.splits[name].num_examples
        except KeyError:  # split metadata unavailable (e.g. under tfds.testing.mock_data): count
            n = sum(1 for _ in builder.as_dataset(split=name, shuffle_files=False))
        start = round(n * (start_pct or 0) / 100)
        end = None if end_pct is None else round(n * end_pct / 100)
        return name, start, end

    def num_examples(self, split: str) -> int | None:
        check_split(self, split)
        builder = self._builder()
        try:
            name, start, end = self._range(split, builder)
            return (builder.info.splits[name].num_examples if end is None else end) - start
        except KeyError:
            return None

    def examples(self, split: str) -> Iterator[dict[str, Any]]:
        check_split(self, split)
        import tensorflow_datasets as tfds

        builder = self._builder()
        name, start, end = self._range(split, builder)
        # Index filtering in file order rather than tfds slicing, so the split is exact and testable.
        ds = builder.as_dataset(split=name, shuffle_files=False)
        for i, ex in enumerate(tfds.as_numpy(ds)):
            if i < start:
                continue
            if end is not None and i >= end:
                break
            video = np.asarray(ex[self.video_key], np.uint8)
            if video.ndim == 4 and video.shape[-1] == 1:  # grayscale -> RGB
                video = np.repeat(video, 3, axis=-1)
            label = int(ex[self.label_key]) if self.label_key else 0
            yield {"video": video, "label": label}


def ucf101_source(
    data_dir: str | None = None, *, preprocess: PreprocessName = "trivd"
) -> TfdsVideoSource:
    """UCF-101 (tfds `ucf101`, 101 action classes, 256x256 frames); TrIVD preprocessing."""
    return TfdsVideoSource(
        "ucf101", {"train": "train", "test": "test"}, preprocess=preprocess, data_dir=data_dir
    )


def moving_mnist_source(
    data_dir: str | None = None, *, train_fraction: int = 90
) -> TfdsVideoSource:
    """Moving MNIST (tfds `moving_mnist`: 10k sequences of 20 64x64 grayscale frames).

    tfds ships one split ("test"); the first `train_fraction` percent become our "train" and
    the rest our "test". Frames are already 64x64, so they are stored as-is (20 frames).
    """
    if not 0 < train_fraction < 100:
        raise ValueError(f"train_fraction must be a percentage in (0, 100), got {train_fraction}")
    return TfdsVideoSource(
        "moving_mnist",
        {"train": f"test[:{train_fraction}%]", "test": f"test[{train_fraction}%:]"},
        video_key="image_sequence",
        label_key=None,
        preprocess="none",
        num_frames=20,
        size=64,
        data_dir=data_dir,
    )
