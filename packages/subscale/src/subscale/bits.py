"""4-bit coarse/fine channel split of 8-bit RGB (VT section 3.3: Nc = 6, Nv = 16)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

NUM_CHANNELS = 6  # Nc: coarse R, G, B then fine R, G, B.
NUM_VALUES = 16  # Nv: each channel holds 4 bits.


def split_bits(x: jax.Array) -> jax.Array:
    """Splits uint8 RGB into six 4-bit channels.

    Args:
      x: `[..., 3]` uint8 RGB.

    Returns:
      `[..., 6]` uint8 `(R>>4, G>>4, B>>4, R&15, G&15, B&15)`: the coarse bits of all three
      colours first, then the fine bits, each in `[0, 16)`.
    """
    x = jnp.asarray(x)
    if x.dtype != jnp.uint8:
        raise TypeError(f"split_bits expects x of dtype uint8, got {x.dtype}")
    if x.ndim < 1 or x.shape[-1] != 3:
        raise ValueError(f"x must have a last axis of 3 (RGB), got shape {tuple(x.shape)}")
    return jnp.concatenate([x >> 4, x & 15], axis=-1)


def merge_bits(channels: jax.Array) -> jax.Array:
    """Inverse of `split_bits`.

    Args:
      channels: `[..., 6]` integer values in `[0, 16)`: coarse R, G, B then fine R, G, B.

    Returns:
      `[..., 3]` uint8 RGB.
    """
    channels = jnp.asarray(channels)
    if not jnp.issubdtype(channels.dtype, jnp.integer):
        raise TypeError(f"merge_bits expects an integer dtype, got {channels.dtype}")
    if channels.ndim < 1 or channels.shape[-1] != NUM_CHANNELS:
        raise ValueError(
            f"channels must have a last axis of {NUM_CHANNELS}, got shape {tuple(channels.shape)}"
        )
    c = channels.astype(jnp.uint8)
    return (c[..., :3] << 4) | (c[..., 3:] & 15)
