"""Helpers shared by the train-videotx tests."""

from __future__ import annotations

import os


def gif_frames(path: str):
    """Frames of a GIF as `[T, H, W, 3]` uint8."""
    import numpy as np
    from PIL import Image, ImageSequence

    assert os.path.exists(path), path
    with Image.open(path) as im:
        return np.stack([np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)])


# The smallest model the pipeline accepts: 4x8x8 windows (8 slices of 2x4x4), clips of 11 frames
# so that the FVD windows of 9 frames (I3D's minimum) unroll over 3 positions.
TINY_OVERRIDES = (
    "--config.model.video_shape=(4, 8, 8)",
    "--config.model.subscale_factor=(2, 2, 2)",
    "--config.model.hidden_size=32",
    "--config.model.num_layers=2",
    "--config.data.random_flip=False",
    "--config.data.size=8",
    "--config.data.num_frames=11",
    "--config.batch_size=4",
    "--config.log_every=1",
    "--config.checkpoint_every=1",
    "--config.eval.every=2",
    "--config.eval.batch_size=2",
    "--config.eval.num_batches=1",
    "--config.eval.num_frames=0",
    "--config.sample.every=2",
    "--config.sample.num_samples=2",
    "--config.sample.num_frames=11",
    "--config.sample.formats=gif,mp4",
)


def tiny_args(data_dir: str, workdir: str, num_steps: int, *extra: str) -> list[str]:
    """Command-line arguments of a tiny run on the embedded data."""
    return [
        "--config=default.py:tiny",
        *TINY_OVERRIDES,
        f"--config.data.dir={data_dir}",
        f"--config.workdir={workdir}",
        f"--config.num_steps={num_steps}",
        *extra,
    ]
