"""GPU (Pallas Triton) kernels for pixelwise and factorized warping (forward and backward).

One program handles one image row of one sample: all W columns (padded to a power of two
and masked) times a block of channels. Every tap is a masked load of a shifted [W, C] window
straight from the ref (out-of-image positions read as zero, so no padded copy of h exists);
the per-pixel tap weights are loaded as [W] columns and broadcast over the channels. The
factorized kernels form W_q = S . w_q (Eq. 12) in registers from the selection row, so the
[B, H, W, k*k] tensor is never written to HBM. Accumulation is in float32.

Backward: dh[y, x] = sum_q W_q[y - dy_q, x - dx_q] g[y - dy_q, x - dx_q] (a gather with
flipped offsets), dW_q[y, x] = sum_c g[y, x, c] h[y + dy_q, x + dx_q, c]; dkernels is summed
from per-row partials [B, H, k*k, N].
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plt

from warp_ops.reference import tap_offsets

# Elements of one [W, C] register tile per program (per operand).
_TILE_ELEMENTS = 8192


def _tile_sizes(width: int, channels: int, tile_elements: int) -> tuple[int, int]:
    width_p = pl.next_power_of_2(width)
    block_c = min(pl.next_power_of_2(channels), max(16, tile_elements // width_p))
    return width_p, block_c


def _window(ref, b, row, cols, lanes, *, height, width, depth):
    """Masked load of ref[b, row, cols, lanes] as f32, zero outside the image.

    cols: [Wp] column indices (may leave [0, W)); lanes: [L] last-axis indices.
    Returns [Wp, L].
    """
    row_ok = (row >= 0) & (row < height)
    mask = row_ok & ((cols >= 0) & (cols < width))[:, None] & (lanes < depth)[None, :]
    x = plt.load(ref.at[b, row, cols[:, None], lanes[None, :]], mask=mask, other=0.0)
    return x.astype(jnp.float32)


def _pixel_tap(w_ref, b, row, cols, q, *, height, width):
    """W_q at (row, cols) from [B, H, W, k*k] weights: [Wp], zero outside the image."""
    row_ok = (row >= 0) & (row < height)
    mask = row_ok & (cols >= 0) & (cols < width)
    return plt.load(w_ref.at[b, row, cols, q], mask=mask, other=0.0).astype(jnp.float32)


def _basis_rows(kernels_ref, b, lanes, taps: int, n: int) -> list[jax.Array]:
    """The basis rows w[b, q, :] as f32 [Np] vectors (zero past N)."""
    return [
        plt.load(kernels_ref.at[b, q, lanes], mask=lanes < n, other=0.0).astype(jnp.float32)
        for q in range(taps)
    ]


# ----------------------------------------------------------------------------- kernels


def _warp_fwd_kernel(h_ref, p_ref, *rest, kernel_size: int, width_p: int, block_c: int):
    factorized = len(rest) == 2
    if factorized:
        kernels_ref, o_ref = rest
    else:
        (o_ref,) = rest
    _, height, width, channels = h_ref.shape
    b, i, cb = pl.program_id(0), pl.program_id(1), pl.program_id(2)
    cols = jnp.arange(width_p)
    lanes = cb * block_c + jnp.arange(block_c)
    window = functools.partial(_window, h_ref, b, height=height, width=width, depth=channels)
    if factorized:
        n = p_ref.shape[-1]
        basis_lanes = jnp.arange(pl.next_power_of_2(n))
        s = _window(p_ref, b, i, cols, basis_lanes, height=height, width=width, depth=n)
        rows = _basis_rows(kernels_ref, b, basis_lanes, kernel_size * kernel_size, n)
    acc = jnp.zeros((width_p, block_c), jnp.float32)
    for q, (dy, dx) in enumerate(tap_offsets(kernel_size)):
        if factorized:
            w_q = jnp.sum(s * rows[q][None, :], axis=1)  # Eq. 12, [Wp]
        else:
            w_q = _pixel_tap(p_ref, b, i, cols, q, height=height, width=width)
        acc += w_q[:, None] * window(i + dy, cols + dx, lanes)  # Eq. 11
    mask = (cols < width)[:, None] & (lanes < channels)[None, :]
    plt.store(o_ref.at[b, i, cols[:, None], lanes[None, :]], acc.astype(o_ref.dtype), mask=mask)


def _warp_bwd_kernel(h_ref, g_ref, p_ref, *rest, kernel_size: int, width_p: int, block_c: int):
    factorized = len(rest) == 4
    if factorized:
        kernels_ref, dh_ref, dp_ref, dk_ref = rest
    else:
        dh_ref, dp_ref = rest
    _, height, width, channels = h_ref.shape
    b, i = pl.program_id(0), pl.program_id(1)
    cols = jnp.arange(width_p)
    col_mask = cols < width
    offsets = tap_offsets(kernel_size)
    taps = len(offsets)
    dims = {"height": height, "width": width}
    if factorized:
        n = p_ref.shape[-1]
        basis_lanes = jnp.arange(pl.next_power_of_2(n))
        rows = _basis_rows(kernels_ref, b, basis_lanes, taps, n)

        def shifted_tap(q, row, c):
            s = _window(p_ref, b, row, c, basis_lanes, depth=n, **dims)
            return jnp.sum(s * rows[q][None, :], axis=1)
    else:

        def shifted_tap(q, row, c):
            return _pixel_tap(p_ref, b, row, c, q, **dims)

    # W_q at the flipped offsets (y - dy, x - dx), shared by every channel block.
    flipped = [shifted_tap(q, i - dy, cols - dx) for q, (dy, dx) in enumerate(offsets)]
    dw = [jnp.zeros((width_p,), jnp.float32) for _ in range(taps)]
    for c0 in range(0, channels, block_c):
        lanes = c0 + jnp.arange(block_c)
        window = functools.partial(_window, depth=channels, **dims)
        g = window(g_ref, b, i, cols, lanes)  # [Wp, block_c]
        dh = jnp.zeros((width_p, block_c), jnp.float32)
        for q, (dy, dx) in enumerate(offsets):
            dw[q] += jnp.sum(g * window(h_ref, b, i + dy, cols + dx, lanes), axis=1)
            dh += flipped[q][:, None] * window(g_ref, b, i - dy, cols - dx, lanes)
        mask = col_mask[:, None] & (lanes < channels)[None, :]
        plt.store(
            dh_ref.at[b, i, cols[:, None], lanes[None, :]], dh.astype(dh_ref.dtype), mask=mask
        )
    if factorized:
        s_mid = _window(p_ref, b, i, cols, basis_lanes, depth=n, **dims)  # [Wp, Np]
        ds = jnp.zeros(s_mid.shape, jnp.float32)
        lane_mask = basis_lanes < n
        for q in range(taps):
            ds += dw[q][:, None] * rows[q][None, :]  # dS = sum_q dW_q w_q
            dk_row = jnp.sum(dw[q][:, None] * s_mid, axis=0)  # [Np], this row's part
            plt.store(dk_ref.at[b, i, q, basis_lanes], dk_row, mask=lane_mask)
        mask = col_mask[:, None] & lane_mask[None, :]
        plt.store(
            dp_ref.at[b, i, cols[:, None], basis_lanes[None, :]], ds.astype(dp_ref.dtype), mask=mask
        )
    else:
        for q in range(taps):
            plt.store(dp_ref.at[b, i, cols, q], dw[q].astype(dp_ref.dtype), mask=col_mask)


# ----------------------------------------------------------------------------- builders


def warp_fwd(
    h: jax.Array,
    weights: jax.Array | None = None,
    kernels: jax.Array | None = None,
    selection: jax.Array | None = None,
    *,
    kernel_size: int,
    interpret: bool = False,
) -> jax.Array:
    """Forward warp; pass `weights` (pixelwise) or `kernels` and `selection` (factorized).

    Args:
      h: [B, H, W, C] features.
      weights: [B, H, W, k*k] per-pixel kernels (pixelwise form).
      kernels: [B, k*k, N] basis and selection: [B, H, W, N] (factorized form).
      kernel_size: odd k.
      interpret: run through the Pallas interpreter.

    Returns:
      [B, H, W, C] in h.dtype.
    """
    batch, height, width, channels = h.shape
    width_p, block_c = _tile_sizes(width, channels, _TILE_ELEMENTS)
    factorized = weights is None
    args = (h, selection, kernels) if factorized else (h, weights)
    kernel = functools.partial(
        _warp_fwd_kernel, kernel_size=kernel_size, width_p=width_p, block_c=block_c
    )
    return pl.pallas_call(
        kernel,
        grid=(batch, height, pl.cdiv(channels, block_c)),
        out_shape=jax.ShapeDtypeStruct(h.shape, h.dtype),
        compiler_params=plt.CompilerParams(num_warps=4, num_stages=1),
        interpret=interpret,
        name="factorized_warp_fwd_gpu" if factorized else "pixelwise_warp_fwd_gpu",
    )(*args)


def warp_bwd(
    h: jax.Array,
    g: jax.Array,
    weights: jax.Array | None = None,
    kernels: jax.Array | None = None,
    selection: jax.Array | None = None,
    *,
    kernel_size: int,
    interpret: bool = False,
):
    """Backward warp in one pass; same arguments as `pallas_tpu.warp_bwd`.

    Returns:
      (dh, dweights) for the pixelwise form, (dh, dkernels, dselection) for the factorized one,
      each in its primal's dtype.
    """
    batch, height, width, channels = h.shape
    width_p, block_c = _tile_sizes(width, channels, _TILE_ELEMENTS // 2)
    factorized = weights is None
    p = selection if factorized else weights
    args = (h, g, p, kernels) if factorized else (h, g, p)
    out_shape = [jax.ShapeDtypeStruct(h.shape, h.dtype), jax.ShapeDtypeStruct(p.shape, p.dtype)]
    if factorized:
        taps, n = kernels.shape[1:]
        out_shape.append(jax.ShapeDtypeStruct((batch, height, taps, n), jnp.float32))
    kernel = functools.partial(
        _warp_bwd_kernel, kernel_size=kernel_size, width_p=width_p, block_c=block_c
    )
    outs = pl.pallas_call(
        kernel,
        grid=(batch, height),
        out_shape=out_shape,
        compiler_params=plt.CompilerParams(num_warps=4, num_stages=1),
        interpret=interpret,
        name="factorized_warp_bwd_gpu" if factorized else "pixelwise_warp_bwd_gpu",
    )(*args)
    if factorized:
        dh, ds, dk = outs
        return dh, jnp.sum(dk, axis=1).astype(kernels.dtype), ds
    return tuple(outs)
