"""Converts a `VideoSource` once into ArrayRecord shards of fixed-size uint8 clips."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from array_record.python.array_record_module import ArrayRecordWriter
from tqdm import tqdm

from video_training.data.preprocess import PreprocessName, spatial_preprocess
from video_training.data.records import encode_example

INFO_FILE = "dataset_info.json"


@dataclasses.dataclass(frozen=True)
class ClipSpec:
    """How videos become stored clips.

    Attributes:
      num_frames: stored clip length T (may exceed the training window; `RandomWindow` picks).
      size: stored frame height (and width for "vt"/"none").
      preprocess: "vt" (centre crop + Lanczos-3), "trivd" (smallest side -> size, width margin
        for the random crop) or "none" (frames must already be size x size).
      stride: frames between clip starts within a video (None: num_frames, non-overlapping).
      max_clips_per_video: cap per video (None: every window that fits).
      trivd_slack: stored width = round(size * trivd_slack) for "trivd".
    """

    num_frames: int = 16
    size: int = 64
    preprocess: PreprocessName = "vt"
    stride: int | None = None
    max_clips_per_video: int | None = None
    trivd_slack: float = 1.25

    def __post_init__(self):
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        if self.size < 1:
            raise ValueError(f"size must be >= 1, got {self.size}")
        if self.stride is not None and self.stride < 1:
            raise ValueError(f"stride must be >= 1 or None, got {self.stride}")
        if self.preprocess not in ("vt", "trivd", "none"):
            raise ValueError(f"preprocess must be 'vt', 'trivd' or 'none', got {self.preprocess!r}")


def video_to_clips(example: Mapping[str, Any], spec: ClipSpec) -> Iterator[dict[str, Any]]:
    """Cuts one source example into fixed-size clips.

    Args:
      example: `video: [T, H, W, 3]` uint8 plus label/metadata. Other arrays whose leading axis
        is T (per-frame: BAIR actions, trajectories) are cut with the clip; arrays with leading
        axis T - 1 (per-transition: `flow`) are cut to the clip's T - 1 transitions. Spatial
        per-frame arrays (flow) need `preprocess="none"` since they are not resized.
      spec: the clip layout.

    Yields:
      Examples with `video: [spec.num_frames, H', W', 3]` uint8, metadata copied, and
      `clip_start` (first frame index in the source video). Videos shorter than T yield nothing.
    """
    video = np.asarray(example["video"])
    if video.dtype != np.uint8:
        raise TypeError(f"example['video'] must be uint8, got {video.dtype}")
    length, t = video.shape[0], spec.num_frames
    stride = spec.stride or t
    starts = list(range(0, length - t + 1, stride))
    if spec.max_clips_per_video is not None:
        starts = starts[: spec.max_clips_per_video]
    for start in starts:
        out: dict[str, Any] = {}
        for k, v in example.items():
            if k == "video":
                clip = video[start : start + t]
                out[k] = spatial_preprocess(clip, spec.preprocess, spec.size, spec.trivd_slack)
            elif isinstance(v, np.ndarray) and v.ndim >= 1 and v.shape[0] in (length, length - 1):
                steps = t if v.shape[0] == length else t - 1
                if v.ndim >= 3 and spec.preprocess != "none":
                    raise ValueError(
                        f"spatial array {k!r} needs preprocess='none' (it is not resized)"
                    )
                out[k] = v[start : start + steps]
            else:
                out[k] = v
        out["clip_start"] = start
        yield out


class ShardedWriter:
    """Writes encoded examples round-robin into `num_shards` ArrayRecord files of one split."""

    def __init__(self, out_dir: str, split: str, num_shards: int):
        if num_shards < 1:
            raise ValueError(f"num_shards must be >= 1, got {num_shards}")
        os.makedirs(out_dir, exist_ok=True)
        self.files = [
            f"{split}-{i:05d}-of-{num_shards:05d}.array_record" for i in range(num_shards)
        ]
        # group_size:1 makes every record individually addressable (grain random access).
        self._writers = [
            ArrayRecordWriter(os.path.join(out_dir, f), "group_size:1") for f in self.files
        ]
        self.count = 0
        self.shapes: dict[str, list[int]] = {}
        self.dtypes: dict[str, str] = {}

    def write(self, example: Mapping[str, Any]) -> None:
        for k, v in example.items():
            if isinstance(v, np.ndarray):
                shape = list(v.shape)
                if self.shapes.setdefault(k, shape) != shape:
                    raise ValueError(
                        f"all clips must share a shape: {k!r} is {shape}, earlier {self.shapes[k]}"
                    )
                self.dtypes[k] = v.dtype.str
        self._writers[self.count % len(self._writers)].write(encode_example(example))
        self.count += 1

    def close(self) -> None:
        for w in self._writers:
            w.close()


def write_split(
    examples: Iterable[Mapping[str, Any]],
    out_dir: str,
    split: str,
    *,
    num_shards: int = 1,
    total: int | None = None,
    desc: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Writes already-clipped examples of one split; returns its `dataset_info` entry."""
    writer = ShardedWriter(out_dir, split, num_shards)
    try:
        for ex in tqdm(
            examples, total=total, desc=desc or split, unit="clip", disable=not progress
        ):
            writer.write(ex)
    finally:
        writer.close()
    return {
        "num_examples": writer.count,
        "files": writer.files,
        "shapes": writer.shapes,
        "dtypes": writer.dtypes,
    }


def prepare(
    source: Any,
    out_dir: str,
    *,
    spec: ClipSpec | None = None,
    splits: Sequence[str] | None = None,
    num_shards: int = 4,
    progress: bool = True,
) -> dict[str, Any]:
    """Decodes every video of `source` once and writes fixed-size clips.

    Args:
      source: a `VideoSource` (see `video_training.data.sources`).
      out_dir: output folder; gets `<split>-XXXXX-of-YYYYY.array_record` files and
        `dataset_info.json`.
      spec: clip layout; default is the source's own (`num_frames`, `size`, `preprocess`).
      splits: subset of `source.splits` (default all).
      num_shards: ArrayRecord files per split.
      progress: show a tqdm bar per split (counts source videos).

    Returns:
      The dataset info dict also written to `out_dir/dataset_info.json`.
    """
    spec = spec or ClipSpec(source.num_frames, source.size, source.preprocess)
    splits = tuple(splits or source.splits)
    info: dict[str, Any] = {
        "source": source.name,
        "clip_spec": dataclasses.asdict(spec),
        "splits": {},
    }
    for split in splits:
        total = source.num_examples(split)
        bar = tqdm(total=total, desc=f"{source.name}/{split}", unit="video", disable=not progress)

        def clips(split=split, bar=bar):
            for example in source.examples(split):
                yield from video_to_clips(example, spec)
                bar.update(1)

        try:
            info["splits"][split] = write_split(
                clips(), out_dir, split, num_shards=num_shards, progress=False
            )
        finally:
            bar.close()
        skipped = getattr(source, "skipped", None)
        if skipped:
            info["splits"][split]["skipped"] = [list(s) for s in skipped.get(split, [])]
    existing = load_info(out_dir) if os.path.exists(os.path.join(out_dir, INFO_FILE)) else None
    if existing and existing.get("source") == info["source"]:
        existing["splits"].update(info["splits"])
        existing["clip_spec"] = info["clip_spec"]
        info = existing
    with open(os.path.join(out_dir, INFO_FILE), "w") as f:
        json.dump(info, f, indent=1)
    return info


def load_info(data_dir: str) -> dict[str, Any]:
    """Reads `dataset_info.json` of a prepared dataset."""
    path = os.path.join(data_dir, INFO_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: run `prepare-video-data` for {data_dir} first")
    with open(path) as f:
        return json.load(f)


def split_paths(data_dir: str, split: str) -> list[str]:
    """Absolute ArrayRecord paths of `split` in a prepared dataset."""
    info = load_info(data_dir)
    if split not in info["splits"]:
        raise ValueError(
            f"split must be one of {sorted(info['splits'])} in {data_dir}, got {split!r}"
        )
    return [os.path.join(data_dir, f) for f in info["splits"][split]["files"]]
