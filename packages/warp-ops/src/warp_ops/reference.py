"""Pure-jnp references for pixelwise and factorized kernel-based warping (TrIVD-GAN-FP app. B)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from warp_ops import validation


def tap_offsets(kernel_size: int) -> list[tuple[int, int]]:
    """Returns the (dy, dx) offset of each tap q = m * k + n: (m - (k-1)/2, n - (k-1)/2)."""
    r = (kernel_size - 1) // 2
    return [(m - r, n - r) for m in range(kernel_size) for n in range(kernel_size)]


def shifted_sum(h: jax.Array, tap_weight, kernel_size: int) -> jax.Array:
    """Eq. 11 as a fused sum of k*k shifted views of zero-padded `h`, accumulated in f32.

    Args:
      h: [B, H, W, C] features.
      tap_weight: callable q -> [B, H, W, 1] f32 weight of tap q.
      kernel_size: odd k.

    Returns:
      [B, H, W, C] float32.
    """
    _, height, width, _ = h.shape
    r = (kernel_size - 1) // 2
    # The padded copy is h's size plus a border of r pixels; XLA fuses the slices below into
    # one loop, so no [B, H, W, k*k, C] unfold is ever materialised.
    h_pad = jnp.pad(h.astype(jnp.float32), ((0, 0), (r, r), (r, r), (0, 0)))
    out = None
    for q, (dy, dx) in enumerate(tap_offsets(kernel_size)):
        view = h_pad[:, r + dy : r + dy + height, r + dx : r + dx + width, :]
        term = tap_weight(q) * view
        out = term if out is None else out + term
    return out


def combine_kernels(kernels: jax.Array, selection: jax.Array) -> jax.Array:
    """Eq. 12: W[b, i, j, q] = sum_l S[b, i, j, l] * w[b, q, l], in f32.

    Args:
      kernels: [B, k*k, N] basis.
      selection: [B, H, W, N] coefficients.

    Returns:
      [B, H, W, k*k] float32 per-pixel weights.
    """
    return jnp.einsum(
        "bhwl,bql->bhwq",
        selection.astype(jnp.float32),
        kernels.astype(jnp.float32),
        precision=jax.lax.Precision.HIGHEST,
    )


@jax.jit
def pixelwise_warp_reference(h: jax.Array, weights: jax.Array) -> jax.Array:
    """Pixelwise kernel-based warping (Eq. 11) with zero padding.

    out[b, i, j, c] = sum_{m, n} W[b, i, j, m*k + n] * h[b, i + m - (k-1)/2, j + n - (k-1)/2, c]

    Args:
      h: [B, H, W, C] float32 or bfloat16 features.
      weights: [B, H, W, k*k] per-pixel kernels, k odd (tap q = m * k + n).

    Returns:
      [B, H, W, C] in h.dtype (accumulated in float32).
    """
    k = validation.check_pixelwise(h, weights)
    w = weights.astype(jnp.float32)
    return shifted_sum(h, lambda q: w[..., q : q + 1], k).astype(h.dtype)


@jax.jit
def factorized_warp_reference(h: jax.Array, kernels: jax.Array, selection: jax.Array) -> jax.Array:
    """Factorized kernel-based warping: Eq. 12 combines the basis, then Eq. 11 warps.

    Args:
      h: [B, H, W, C] float32 or bfloat16 features.
      kernels: [B, k*k, N] per-sample basis of N kernels, k odd.
      selection: [B, H, W, N] per-pixel coefficients (probabilities) over the basis.

    Returns:
      [B, H, W, C] in h.dtype (accumulated in float32).
    """
    k = validation.check_factorized(h, kernels, selection)
    w = combine_kernels(kernels, selection)  # [B, H, W, k*k]
    return shifted_sum(h, lambda q: w[..., q : q + 1], k).astype(h.dtype)
