"""TensorFlow 1 `resize_bilinear` (align_corners=False, no half-pixel centres) in jnp."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def _legacy_interpolation(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower/upper source indices and weights of TF1's legacy (top-left aligned) scaler.

    The source coordinate of output index i is `i * in_size / out_size`, computed in float32
    as TF does; `jax.image.resize` and TF2 `tf.image.resize` use `(i + 0.5) * scale - 0.5`.
    """
    scale = np.float32(in_size) / np.float32(out_size)
    src = np.arange(out_size, dtype=np.float32) * scale  # [out_size]
    floor = np.floor(src)
    lower = np.maximum(floor.astype(np.int64), 0)
    upper = np.minimum(np.ceil(src).astype(np.int64), in_size - 1)
    return lower, upper, (src - floor).astype(np.float32)


def resize_bilinear_tf1(images: jax.Array, size: Sequence[int]) -> jax.Array:
    """Bilinear resize with TF1 `tf.image.resize_bilinear` semantics (the FVD reference's).

    Args:
      images: `[..., H, W, C]` real values (any leading batch axes).
      size: `(out_h, out_w)`.

    Returns:
      `[..., out_h, out_w, C]` float32. Down-scaling samples without anti-aliasing, exactly
      like TF1.
    """
    images = jnp.asarray(images)
    if images.ndim < 3:
        raise ValueError(f"images must be [..., H, W, C], got shape {images.shape}")
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be (out_h, out_w) with positive entries, got {size}")
    out_h, out_w = (int(s) for s in size)
    in_h, in_w = images.shape[-3], images.shape[-2]
    y0, y1, y_lerp = _legacy_interpolation(in_h, out_h)
    x0, x1, x_lerp = _legacy_interpolation(in_w, out_w)
    x_lerp = x_lerp[:, None]  # [out_w, 1] broadcasts over channels

    # Rows and columns are gathered in the input's dtype and cast to float32 after: the same
    # values as casting first, without a float copy of the full-size frames (uint8 720p clips
    # resize several times faster).
    def along_x(rows):  # rows: [..., out_h, W, C] -> [..., out_h, out_w, C]
        left = jnp.take(rows, x0, axis=-2).astype(jnp.float32)
        right = jnp.take(rows, x1, axis=-2).astype(jnp.float32)
        return left + (right - left) * x_lerp

    # Same operation order as TF's kernel: top/bottom lerps in x, then one lerp in y.
    top = along_x(jnp.take(images, y0, axis=-3))
    bottom = along_x(jnp.take(images, y1, axis=-3))
    return top + (bottom - top) * y_lerp[:, None, None]
