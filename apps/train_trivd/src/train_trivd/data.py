"""Training and evaluation clips for a config: the embedded camera-motion set or prepared ArrayRecords."""

from __future__ import annotations

import os
from typing import Any

import ml_collections
import numpy as np
from video_training.data import build_embedded, load_info, make_loader, trivd_transforms

__all__ = ["data_dir", "eval_clips", "standing_batches", "train_loader"]

DATA_KINDS = ("camera_motion", "prepared")


def data_dir(config: ml_collections.ConfigDict, *, progress: bool = False) -> str:
    """The prepared-data folder of `config.data`, rendering the embedded set on first use.

    The camera-motion set is rendered at `model.resolution` with clips of exactly
    `num_cond_frames + num_pred_frames` frames, so its stored flow is in frame pixels.

    Raises:
      ValueError: unknown `data.kind` or a "prepared" config without `data.data_dir`.
    """
    d, m = config.data, config.model
    if d.kind not in DATA_KINDS:
        raise ValueError(f"config.data.kind must be one of {DATA_KINDS}, got {d.kind!r}")
    if d.kind == "prepared":
        if not d.data_dir:
            raise ValueError(
                "config.data.data_dir is empty: prepare clips with `prepare-video-data` and pass "
                "--config.data.data_dir=/path (see the config file's docstring)"
            )
        return d.data_dir
    frames = m.num_cond_frames + m.num_pred_frames
    zoom = tuple(float(z) for z in d.camera_zoom_range)
    name = (
        f"camera_motion_{m.resolution}px_{frames}f_{d.num_train}_{d.num_test}"
        f"_photo{d.camera_base_side}_zoom{zoom[0]:g}-{zoom[1]:g}"
    )
    trajectory = d.get("camera_trajectory", "smooth")  # runs saved before the field: smooth
    if trajectory != "smooth":  # the smooth sets keep the folder names they were rendered to
        name += f"_{trajectory}"
    pool = d.get("camera_photo_pool", "photos")  # runs saved before the field: photos
    if pool != "photos":
        name += "_" + pool.replace("+", "_")
    return build_embedded(
        os.path.join(d.root, name),
        which=("camera_motion",),
        progress=progress,
        num_frames=frames,
        size=m.resolution,
        num_train=d.num_train,
        num_test=d.num_test,
        base_side=d.camera_base_side,
        zoom_range=zoom,
        trajectory=trajectory,
        photo_pool=pool,
    )["camera_motion"]


def _keys(config: ml_collections.ConfigDict, directory: str, split: str, extra=()) -> tuple:
    stored = load_info(directory)["splits"][split]["shapes"]
    keys = ["video"]
    if config.data.use_labels:
        keys.append("label")
    keys += [k for k in extra if k in stored]
    return tuple(keys)


def train_loader(config: ml_collections.ConfigDict, directory: str) -> Any:
    """A checkpointable grain loader of `[B, T, H, W, 3]` float clips in [-1, 1] (random crops);
    `[d_steps, B, T, H, W, 3]` (a fresh batch per D update) with `data.fresh_real_batches`."""
    from train_trivd.configs import real_batches_per_step

    m = config.model
    frames = m.num_cond_frames + m.num_pred_frames
    return make_loader(
        directory,
        config.data.train_split,
        global_batch_size=config.data.batch_size,
        seed=config.seed,
        transforms=trivd_transforms(
            frames, m.resolution, train=True, augment=config.data.get("augment", False)
        ),
        keys=_keys(config, directory, config.data.train_split),
        worker_count=config.data.worker_count,
        batch_groups=real_batches_per_step(config),
    )


def eval_clips(
    config: ml_collections.ConfigDict, directory: str, num_clips: int
) -> list[dict[str, np.ndarray]]:
    """The first `num_clips` evaluation clips (centre crops), in batches of `eval.batch_size`.

    Returns:
      Batches with `video: [b, T, H, W, 3]` float32 in [-1, 1] and, when stored (camera
      motion), `flow: [b, T - 1, H, W, 2]` float32 `(dx, dy)`; the last batch may be smaller.

    Raises:
      ValueError: if the split has fewer than `num_clips` clips.
    """
    m, split = config.model, config.data.eval_split
    frames = m.num_cond_frames + m.num_pred_frames
    available = load_info(directory)["splits"][split]["num_examples"]
    if available < num_clips:
        raise ValueError(
            f"eval needs {num_clips} clips but split {split!r} of {directory} has {available}"
        )
    loader = make_loader(
        directory,
        split,
        global_batch_size=1,
        seed=config.eval.seed,
        shuffle=False,
        num_epochs=1,
        transforms=trivd_transforms(frames, m.resolution, train=False),
        keys=_keys(config, directory, split, extra=("flow",)),
        process_index=0,
        process_count=1,
    )
    clips = []
    for ex in loader:
        clips.append({k: np.asarray(v[0]) for k, v in ex.items()})
        if len(clips) == num_clips:
            break
    batches, size = [], config.eval.batch_size
    for start in range(0, num_clips, size):
        part = clips[start : start + size]
        batch = {k: np.stack([c[k] for c in part]) for k in part[0]}
        if "flow" in batch:
            batch["flow"] = batch["flow"].astype(np.float32)
        batches.append(batch)
    return batches


def standing_batches(config: ml_collections.ConfigDict, directory: str) -> Any:
    """Training clips for G's standing statistics: `(conditioning frames, labels or None)`.

    An endless, shuffled stream over the training split (seeded by `eval.seed`, so every
    evaluation accumulates over the same clips), `eval.batch_size` clips a batch, as
    `Predictor.standing_rest` takes it. Draw `eval.standing_batches` of them.
    """
    m = config.model
    frames = m.num_cond_frames + m.num_pred_frames
    loader = make_loader(
        directory,
        config.data.train_split,
        global_batch_size=config.eval.batch_size,
        seed=config.eval.seed,
        transforms=trivd_transforms(frames, m.resolution, train=False),
        keys=_keys(config, directory, config.data.train_split),
        process_index=0,
        process_count=1,
    )
    return ((b["video"][:, : m.num_cond_frames], b.get("label")) for b in loader)
