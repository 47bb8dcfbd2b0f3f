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
