"""Relative position bias (VT Eq. 3) in the factored form the kernels use: B = R G R^T."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from block_attention.reference import RelBias


def position_one_hot(block_shape: tuple[int, int, int]) -> np.ndarray:
    """One-hot coordinates `R` of the positions of a block.

    Args:
      block_shape: (t, h, w).

    Returns:
      f32 [n, t + h + w]; row i is one-hot(t_i) ++ one-hot(y_i) ++ one-hot(x_i) (raster order).
    """
    t, h, w = block_shape
    n = t * h * w
    i = np.arange(n)
    r = np.zeros((n, t + h + w), np.float32)
    r[i, i // (h * w)] = 1.0
    r[i, t + (i // w) % h] = 1.0
    r[i, t + h + i % w] = 1.0
    return r


def bias_matrix(rel_bias: RelBias, block_shape: tuple[int, int, int]) -> jax.Array:
    """Block-diagonal Toeplitz form `G` of the three bias tables.

    With `R = position_one_hot(block_shape)`, the dense bias of Eq. 3 is `B = R G R^T`, so the
    kernels rebuild `B` from this small `[m, m]` matrix (m = t + h + w) and return `dG = R^T dS R`;
    the table gradients follow from autodiff of this gather.

    Args:
      rel_bias: (bias_t [heads, 2t-1], bias_h [heads, 2h-1], bias_w [heads, 2w-1]).
      block_shape: (t, h, w).

    Returns:
      f32 [heads, m, m] with `G[:, a, b] = table[:, a - b + size - 1]` on each diagonal block.
    """
    parts = []
    for table, size in zip(rel_bias, block_shape, strict=True):
        c = np.arange(size)
        parts.append(table.astype(jnp.float32)[:, c[:, None] - c[None, :] + size - 1])
    heads = parts[0].shape[0]
    m = sum(block_shape)
    g = jnp.zeros((heads, m, m), jnp.float32)
    offset = 0
    for part, size in zip(parts, block_shape, strict=True):
        g = g.at[:, offset : offset + size, offset : offset + size].set(part)
        offset += size
    return g
