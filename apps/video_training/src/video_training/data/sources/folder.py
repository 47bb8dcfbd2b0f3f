"""A folder of video files listed in a CSV (`path,label,split`), as Kinetics is distributed."""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterator
from typing import Any

from video_training.data.decode import VideoDecodeError, decode_video
from video_training.data.preprocess import PreprocessName
from video_training.data.sources.base import check_split

log = logging.getLogger(__name__)


class FolderSource:
    """Videos under `root` listed in `csv_path` with columns `path,label,split`.

    `path` is relative to `root` (or absolute); `label` is a class name or an integer; label
    names are mapped to integers in sorted order (`label_names`). Files that are missing or fail
    to decode are logged, recorded in `skipped[split]` as `(path, reason)` and skipped.
    Default preprocessing is the Video Transformer's (Kinetics-600, section 4.3).
    """

    def __init__(
        self,
        root: str,
        csv_path: str,
        *,
        name: str = "folder",
        preprocess: PreprocessName = "vt",
        num_frames: int = 16,
        size: int = 64,
        max_frames: int | None = None,
    ):
        self.root, self.name = root, name
        self.preprocess, self.num_frames, self.size = preprocess, num_frames, size
        self.max_frames = max_frames
        with open(csv_path, newline="") as f:
            reader = csv.DictReader(f)
            missing = {"path", "label", "split"} - set(reader.fieldnames or ())
            if missing:
                raise ValueError(
                    f"csv_path {csv_path} must have columns path,label,split; missing {sorted(missing)}"
                )
            self.rows = [(r["path"], r["label"].strip(), r["split"].strip()) for r in reader]
        self.splits = tuple(sorted({s for _, _, s in self.rows}))
        labels = sorted({lab for _, lab, _ in self.rows})
        if all(lab.lstrip("-").isdigit() for lab in labels):
            self.label_names: list[str] = []
            self._label = {lab: int(lab) for lab in labels}
        else:
            self.label_names = labels
            self._label = {lab: i for i, lab in enumerate(labels)}
        self.skipped: dict[str, list[tuple[str, str]]] = {}

    def num_examples(self, split: str) -> int:
        return sum(1 for _, _, s in self.rows if s == split)

    def examples(self, split: str) -> Iterator[dict[str, Any]]:
        check_split(self, split)
        self.skipped[split] = []
        for rel, label, s in self.rows:
            if s != split:
                continue
            path = rel if os.path.isabs(rel) else os.path.join(self.root, rel)
            try:
                video = decode_video(path, max_frames=self.max_frames)
            except VideoDecodeError as e:
                log.warning("skipping %s: %s", rel, e)
                self.skipped[split].append((rel, str(e)))
                continue
            yield {"video": video, "label": self._label[label], "path": rel}
