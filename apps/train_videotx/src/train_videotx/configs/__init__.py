"""Experiment configs of `train-videotx`: one `get_config(arg=None)` per file, shared defaults in `common`."""

from __future__ import annotations

import os

import ml_collections

CONFIG_DIR = os.path.dirname(os.path.abspath(__file__))

__all__ = ["CONFIG_DIR", "validate"]


def validate(config: ml_collections.ConfigDict) -> None:
    """Checks each field's type and range, before any data or model is built.

    Cross-field model checks (window divisible by the subscale factor, data.size equal to
    the model's frames) are left to `ar_video` and `train` where the model is configured.

    Raises:
      video_training.ConfigError: naming the first bad field, what it accepts and its value.
    """
    from ar_video.config import SIZES, VARIANTS
    from video_training import check_choice, check_field, check_int, check_number

    from train_videotx.data import SOURCES

    check_int(
        config,
        "batch_size",
        "num_microbatches",
        "num_steps",
        "log_every",
        "checkpoint_every",
        "keep_checkpoints",
        "data.num_frames",
        "data.size",
        "eval.batch_size",
        "sample.num_samples",
        "sample.num_frames",
        "fvd.num_videos",
        "fvd.batch_size",
        "fvd.window",
        "fvd.unroll_stride",
        "fvd.num_trials",
    )
    check_int(
        config,
        "num_prime_frames",
        "eval.num_prime_frames",
        "eval.every",
        "eval.num_batches",
        "eval.baseline_clips",
        "sample.every",
        "sample.window_stride",
        "fvd.every",
        "data.worker_count",
        min_value=0,
    )
    check_int(config, "model.hidden_size", "model.num_layers")
    check_field(
        config,
        "model.hidden_size",
        config.model.hidden_size % 16 == 0,
        "a positive multiple of 16",
    )
    check_field(
        config,
        "data.random_flip",
        isinstance(config.data.get("random_flip", False), bool),
        "True or False",
    )
    check_number(config, "optimizer.learning_rate", "optimizer.eps", above=0)
    check_number(config, "optimizer.decay", "optimizer.momentum", at_least=0, below=1)
    check_number(config, "optimizer.initial_scale", at_least=0)
    check_number(config, "sample.temperature", "sample.fps", above=0)
    check_choice(config, "data.source", SOURCES)
    check_choice(config, "model.variant", (*VARIANTS, "tiny"))
    check_choice(config, "model.size", SIZES)
    check_choice(config, "model.dtype", ("float32", "bfloat16"))
    if "remat" in config.model:
        check_field(config, "model.remat", isinstance(config.model.remat, bool), "True or False")
    check_choice(config, "model.attention_implementation", ("auto", "xla", "pallas"))
    check_choice(config, "metrics_backend", ("auto", "clu", "jsonl"))
    for field in ("model.video_shape", "model.subscale_factor"):
        value = config.model[field.split(".")[1]]
        ok = isinstance(value, tuple | list) and len(value) == 3
        ok = ok and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in value)
        check_field(config, field, ok, "3 positive integers (T, H, W)")
    check_field(
        config,
        "num_microbatches",
        config.batch_size % config.num_microbatches == 0,
        f"a divisor of batch_size={config.batch_size}",
    )
    formats = [f.strip() for f in config.sample.formats.split(",") if f.strip()]
    check_field(
        config,
        "sample.formats",
        bool(formats) and set(formats) <= {"gif", "mp4"},
        "a comma-separated list of gif, mp4",
    )
    check_field(
        config,
        "sample.num_frames",
        config.sample.num_frames <= config.data.num_frames,
        f"at most data.num_frames={config.data.num_frames} (samples continue stored clips)",
    )
    check_int(config, "eval.num_frames", min_value=0)
    if config.eval.num_frames:
        low, high = config.eval.num_prime_frames, config.data.num_frames
        check_field(
            config,
            "eval.num_frames",
            low < config.eval.num_frames <= high,
            f"0 (one model window) or an int in (eval.num_prime_frames={low}, "
            f"data.num_frames={high}]",
        )
    check_int(config, "model.conditioning_size", "data.conditioning_shift", min_value=0)
    key = config.data.conditioning_key
    check_field(config, "data.conditioning_key", isinstance(key, str), "a string ('' for none)")
    check_field(
        config,
        "data.conditioning_key",
        bool(key) == bool(config.model.conditioning_size),
        f"a stored per-frame array's name exactly when model.conditioning_size="
        f"{config.model.conditioning_size} > 0 ('' when it is 0)",
    )
    check_field(
        config,
        "data.conditioning_shift",
        config.data.conditioning_shift < config.data.num_frames,
        f"an int in [0, data.num_frames={config.data.num_frames})",
    )
    check_int(config, "sample.num_prime_frames", "fvd.num_prime_frames", min_value=1)
    for group in ("sample", "fvd"):
        primes = config[group].num_prime_frames
        check_field(
            config,
            "sample.num_frames",
            config.sample.num_frames > primes,
            f"more than {group}.num_prime_frames={primes}",
        )
