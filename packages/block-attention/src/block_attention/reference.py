"""Pure-jnp reference for 3D block-local multi-head self-attention (VT Eqs. 2-4)."""

from __future__ import annotations

import functools

import einshape
import jax
import jax.numpy as jnp
import numpy as np

RelBias = tuple[jax.Array, jax.Array, jax.Array]

# Finite stand-in for -inf so fully masked rows never produce NaNs.
MASK_VALUE = -0.7 * float(np.finfo(np.float32).max)


def block_positions(block_shape: tuple[int, int, int]) -> np.ndarray:
    """Raster-order (t, y, x) coordinates of the positions inside one block.

    Args:
      block_shape: (t, h, w), the block's extent along (T, H, W).

    Returns:
      int32 array [n, 3] with n = t * h * w; row i holds (t_i, y_i, x_i).
    """
    t, h, w = block_shape
    grid = np.meshgrid(np.arange(t), np.arange(h), np.arange(w), indexing="ij")
    return np.stack([g.reshape(-1) for g in grid], axis=-1).astype(np.int32)


def relative_bias_indices(block_shape: tuple[int, int, int]) -> tuple[np.ndarray, ...]:
    """Indices into (bias_t, bias_h, bias_w) for every (query, key) pair of a block.

    Args:
      block_shape: (t, h, w).

    Returns:
      Three int32 arrays [n, n]: `(t_i - t_j) + t - 1`, `(y_i - y_j) + h - 1`,
      `(x_i - x_j) + w - 1` (Eq. 3).
    """
    pos = block_positions(block_shape)  # [n, 3]
    diff = pos[:, None, :] - pos[None, :, :]  # [n, n, 3]
    return tuple(diff[..., a] + block_shape[a] - 1 for a in range(3))


def relative_bias(rel_bias: RelBias, block_shape: tuple[int, int, int]) -> jax.Array:
    """Dense relative position bias of one block (Eq. 3), for the reference only.

    Args:
      rel_bias: (bias_t [heads, 2t-1], bias_h [heads, 2h-1], bias_w [heads, 2w-1]).
      block_shape: (t, h, w).

    Returns:
      f32 [heads, n, n]: `B[h, i, j] = bias_t[h, dt] + bias_h[h, dy] + bias_w[h, dx]`.
    """
    idx = relative_bias_indices(block_shape)
    return sum(table.astype(jnp.float32)[:, i] for table, i in zip(rel_bias, idx, strict=True))


def blocks_from_video(x: jax.Array, block_shape: tuple[int, int, int]) -> jax.Array:
    """[B, T, H, W, heads, d] -> [B, num_blocks, n, heads, d] (blocks in raster order)."""
    t, h, w = block_shape
    return einshape.jax_einshape("b(ti)(hj)(wk)nd->b(thw)(ijk)nd", x, i=t, j=h, k=w)


def video_from_blocks(
    x: jax.Array, block_shape: tuple[int, int, int], video_shape: tuple[int, int, int]
) -> jax.Array:
    """Inverse of `blocks_from_video`: [B, num_blocks, n, heads, d] -> [B, T, H, W, heads, d]."""
    t, h, w = block_shape
    nt, nh, nw = (s // b for s, b in zip(video_shape, block_shape, strict=True))
    return einshape.jax_einshape(
        "b(thw)(ijk)nd->b(ti)(hj)(wk)nd", x, t=nt, h=nh, w=nw, i=t, j=h, k=w
    )


@functools.partial(jax.jit, static_argnames=("block_shape", "causal"))
def block_attention_reference(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    block_shape: tuple[int, int, int],
    *,
    rel_bias: RelBias | None = None,
    causal: bool = False,
) -> jax.Array:
    """Block-local attention with plain einsums (the source of truth).

    Splits the (T, H, W) volume into non-overlapping (t, h, w) blocks and runs
    `softmax(q k^T / sqrt(head_dim) + B) v` inside every block and head (Eqs. 2-4),
    accumulating in f32. Gradients come from autodiff.

    Args:
      q: [B, T, H, W, heads, head_dim] queries.
      k: [B, T, H, W, heads, head_dim] keys.
      v: [B, T, H, W, heads, head_dim] values.
      block_shape: (t, h, w); must divide (T, H, W).
      rel_bias: None or (bias_t [heads, 2t-1], bias_h [heads, 2h-1], bias_w [heads, 2w-1]).
      causal: if True, query i only sees keys j <= i in raster order over (t, y, x).

    Returns:
      [B, T, H, W, heads, head_dim], dtype of q.
    """
    block_shape = tuple(block_shape)
    video_shape = q.shape[1:4]
    qb, kb, vb = (blocks_from_video(x.astype(jnp.float32), block_shape) for x in (q, k, v))
    scale = 1.0 / np.sqrt(q.shape[-1])
    logits = jnp.einsum("bsind,bsjnd->bsnij", qb * scale, kb)  # [B, S, heads, n, n]
    if rel_bias is not None:
        logits = logits + relative_bias(rel_bias, block_shape)  # Eq. 3
    if causal:
        n = logits.shape[-1]
        visible = np.tril(np.ones((n, n), dtype=bool))
        logits = jnp.where(visible, logits, MASK_VALUE)
    probs = jax.nn.softmax(logits, axis=-1)  # Eq. 4
    out = jnp.einsum("bsnij,bsjnd->bsind", probs, vb)  # [B, S, n, heads, d]
    return video_from_blocks(out, block_shape, video_shape).astype(q.dtype)
