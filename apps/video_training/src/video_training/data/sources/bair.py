"""BAIR robot pushing (tfds `bair_robot_pushing_small`) with the original and TrIVD balanced splits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import numpy as np

from video_training.data.sources.base import check_split

BAIR_TRAIN_SIZE = 43_264  # TrIVD appendix C.1
BAIR_TEST_SIZE = 256


def balanced_split_index(num_train: int, fraction: float = 0.7) -> int:
    """Index of the first original-train video that goes to the balanced eval split.

    TrIVD appendix C.1: train on the first 70% of the train set, evaluate on the remaining 30%
    plus the 256 test videos (13,235 real videos instead of 256 for FVD).
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    return round(num_train * fraction)


class BairSource:
    """BAIR robot pushing: 30 frames of 64x64 (`image_main`), robot actions kept as metadata.

    Args:
      split_scheme: "original" (train / test = 43,264 / 256) or "balanced" (TrIVD C.1:
        train = first 70% of train (30,285); test = last 30% of train + the 256 test videos
        (13,235), enough real videos for a large-sample FVD).
      data_dir: tfds data dir (None: tfds default).
      camera: "image_main" or "image_aux1".
      balanced_percent: percentage of the train set kept for training in the balanced split.
    """

    name = "bair_robot_pushing_small"
    splits = ("train", "test")
    preprocess = "none"
    num_frames = 30
    size = 64

    def __init__(
        self,
        split_scheme: Literal["original", "balanced"] = "original",
        data_dir: str | None = None,
        camera: str = "image_main",
        balanced_percent: int = 70,
    ):
        if split_scheme not in ("original", "balanced"):
            raise ValueError(f"split_scheme must be 'original' or 'balanced', got {split_scheme!r}")
        self.split_scheme, self.data_dir, self.camera = split_scheme, data_dir, camera
        if not 0 < balanced_percent < 100:
            raise ValueError(f"balanced_percent must be in (0, 100), got {balanced_percent}")
        self.balanced_percent = balanced_percent
        self.name = f"bair_robot_pushing_small/{split_scheme}"

    def _builder(self):
        import tensorflow_datasets as tfds  # optional `[tfds]` extra

        builder = tfds.builder("bair_robot_pushing_small", data_dir=self.data_dir)
        builder.download_and_prepare()
        return builder

    def _num_train(self, builder) -> int:
        try:
            return builder.info.splits["train"].num_examples
        except KeyError:  # split metadata unavailable (e.g. under tfds.testing.mock_data): count
            return sum(1 for _ in builder.as_dataset(split="train", shuffle_files=False))

    def _parts(self, split: str, builder) -> list[tuple[str, int, int | None]]:
        """`(tfds split, first index, end index)` pieces making up our split, in file order."""
        if self.split_scheme == "original":
            return [(split, 0, None)]
        cut = balanced_split_index(self._num_train(builder), self.balanced_percent / 100)
        return (
            [("train", 0, cut)] if split == "train" else [("train", cut, None), ("test", 0, None)]
        )

    def num_examples(self, split: str) -> int | None:
        check_split(self, split)
        builder = self._builder()
        try:
            sizes = {s: builder.info.splits[s].num_examples for s in ("train", "test")}
        except KeyError:
            return None
        return sum(
            (sizes[s] if end is None else end) - start
            for s, start, end in self._parts(split, builder)
        )

    def examples(self, split: str) -> Iterator[dict[str, Any]]:
        check_split(self, split)
        import tensorflow_datasets as tfds

        builder = self._builder()
        for tfds_split, start, end in self._parts(split, builder):
            # Index filtering in file order (not tfds slicing) so the cut is exact and testable.
            ds = builder.as_dataset(split=tfds_split, shuffle_files=False)
            for i, ex in enumerate(tfds.as_numpy(ds)):
                if i < start:
                    continue
                if end is not None and i >= end:
                    break
                yield {
                    "video": np.asarray(ex[self.camera], np.uint8),
                    "action": np.asarray(ex["action"], np.float32),
                    "endeffector_pos": np.asarray(ex["endeffector_pos"], np.float32),
                    "label": 0,
                    "origin": f"{tfds_split}#{i}",
                }
