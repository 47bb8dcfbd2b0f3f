"""Experiment configs: `get_config(arg=None)` in each file returns an ml_collections ConfigDict."""

from __future__ import annotations

import os

import ml_collections

CONFIG_DIR = os.path.dirname(os.path.abspath(__file__))

__all__ = ["CONFIG_DIR", "batch_axis", "real_batches_per_step", "validate"]


def real_batches_per_step(config: ml_collections.ConfigDict) -> int:
    """Real batches a train step reads: `train.d_steps` with `data.fresh_real_batches`, else 1
    (also for runs saved before the field existed, so they resume as they were trained)."""
    return int(config.train.d_steps) if config.data.get("fresh_real_batches", False) else 1


def batch_axis(config: ml_collections.ConfigDict) -> int:
    """The axis of the examples in a train batch: 1 for `[d_steps, B, ...]`, else 0."""
    return 1 if real_batches_per_step(config) > 1 else 0


def validate(config: ml_collections.ConfigDict, *, needs_data: bool = True) -> None:
    """Checks each field's type and range, before any data or model is built.

    Ends by building `gan_video.ModelConfig`/`TrainConfig` (plain dataclasses) so that their
    cross-field checks (resolution divisible by 8 * downsample_factor, ...) run here too.
    `needs_data=False` (`--compile_only`) skips the check that prepared data exists.

    Raises:
      video_training.ConfigError: naming the first bad field, what it accepts and its value.
    """
    import gan_video
    from video_training import ConfigError, check_choice, check_field, check_int, check_number
    from video_training.data.embedded import PHOTO_POOLS, TRAJECTORIES, camera_motion_splits

    from train_trivd.data import DATA_KINDS

    check_int(
        config,
        "num_steps",
        "log_every",
        "checkpoint_every",
        "keep_checkpoints",
        "model.resolution",
        "model.num_cond_frames",
        "model.num_pred_frames",
        "model.g_ch",
        "model.d_ch",
        "model.z_dim",
        "model.class_dim",
        "model.warp_size",
        "model.num_warp_kernels",
        "model.num_sampled_frames",
        "model.downsample_factor",
        "train.d_steps",
        "data.batch_size",
        "data.num_train",
        "data.num_test",
        "data.camera_base_side",
        "eval.batch_size",
        "eval.num_clips",
        "eval.num_samples",
        "eval.fvd_batch_size",
        "eval.is_splits",
    )
    check_int(
        config,
        "model.num_classes",
        "train.ema_start",
        "data.worker_count",
        "eval.every",
        "eval.standing_batches",
        "eval.spectral_iterations",
        "eval.motion_levels",
        "eval.fvd_num_clips",
        min_value=0,
    )
    if "min_warp_side" in config.model:  # configs saved before the field: 0
        check_int(config, "model.min_warp_side", min_value=0)
    check_number(config, "train.g_lr", "train.d_lr", above=0)
    check_number(config, "train.b1", "train.b2", at_least=0, below=1)
    check_number(config, "train.ortho_weight", at_least=0)
    if "recon_weight" in config.train:  # configs saved before the field: 0
        check_number(config, "train.recon_weight", at_least=0)
    check_number(config, "train.ema_decay", at_least=0)
    check_field(config, "train.ema_decay", config.train.ema_decay <= 1, "a number in [0, 1]")
    check_choice(config, "model.recurrent_unit", gan_video.RECURRENT_UNIT_NAMES)
    check_choice(config, "model.decomposition", tuple(gan_video.DECOMPOSITIONS))
    check_choice(config, "model.frame_sampling", gan_video.FRAME_SAMPLING)
    check_choice(config, "data.kind", DATA_KINDS)
    check_choice(config, "data.camera_trajectory", TRAJECTORIES)
    if "camera_photo_pool" in config.data:  # configs saved before the field: "photos"
        check_choice(config, "data.camera_photo_pool", PHOTO_POOLS)
    check_field(
        config,
        "data.fresh_real_batches",
        isinstance(config.data.get("fresh_real_batches", False), bool),
        "True or False",
    )
    check_field(
        config, "data.augment", isinstance(config.data.get("augment", False), bool), "True or False"
    )
    if config.data.kind == "camera_motion":
        splits = camera_motion_splits(config.data.get("camera_photo_pool", "photos"))
        check_field(
            config,
            "data.eval_split",
            config.data.eval_split in splits,
            f"one of {splits} (test_stills: with data.camera_photo_pool=photos+video_frames)",
        )
        groups = real_batches_per_step(config)
        check_field(
            config,
            "data.num_train",
            config.data.num_train >= groups * config.data.batch_size,
            f">= {groups} x data.batch_size = {groups * config.data.batch_size} clips (one batch"
            " per D update with data.fresh_real_batches)",
        )
    check_choice(config, "metrics_backend", ("auto", "clu", "jsonl"))
    if config.data.kind == "prepared" and needs_data:
        check_field(
            config,
            "data.data_dir",
            bool(config.data.data_dir),
            "the folder written by `prepare-video-data` (data.kind='prepared'; see the config "
            "file's docstring)",
        )
        if "://" not in config.data.data_dir:
            check_field(
                config,
                "data.data_dir",
                os.path.isdir(config.data.data_dir),
                "an existing folder written by `prepare-video-data`",
            )
    from train_trivd.train import model_config, train_config

    for group, build in (("model", model_config), ("train", train_config)):
        try:
            build(config)
        except (ValueError, TypeError) as e:  # the dataclass names the field and its values
            raise ConfigError(f"--config.{group}: {e}") from None
