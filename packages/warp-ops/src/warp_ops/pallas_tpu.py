"""Mosaic TPU kernels for pixelwise and factorized warping (forward and backward).

Layout: h is [B, H, W, C] with C on lanes and W on sublanes. One kernel program handles one
sample and a band of `block_h` rows plus an r = (k-1)/2 row halo above and below, and all
k*k taps. The halos are separate r-row blocks of the same array (block index clamped at the
image edge, then zeroed in-kernel), so the zero padding of Eq. 11 costs no padded HBM copy:
HBM traffic is h's bytes times (block_h + 2r) / block_h. Column shifts use a sublane rotate
(`pltpu.roll`) and a mask; row shifts are free slices of the leading (untiled) axis. Taps are
pulled out of the [.., W, k*k] weights by a masked lane reduction, giving [.., W, 1] columns
that broadcast over the C lanes. Nothing of size k*k*C per pixel is ever formed, and the
factorized kernels form each tap W_q = S . w_q (Eq. 12) in VMEM, so the [B, H, W, k*k]
tensor never reaches HBM in either direction.

Backward (Eq. 11 transposed): dh[y, x] = sum_q W_q[y - dy_q, x - dx_q] g[y - dy_q, x - dx_q]
(a gather with flipped offsets), dW_q[y, x] = sum_c g[y, x, c] h[y + dy_q, x + dx_q, c].
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu

# Largest f32 band (lane-padded) a program keeps live per operand; ~10 such values in the
# backward stay well inside the default scoped VMEM (16 MiB on v5e).
_BAND_BYTES = 512 * 1024


def pick_block_h(height: int, width: int, channels: int, kernel_size: int) -> int:
    """Largest row band dividing H whose f32 tile fits `_BAND_BYTES` (halos need r | block_h)."""
    r = (kernel_size - 1) // 2
    lanes = -(-max(channels, kernel_size * kernel_size) // 128) * 128
    row_bytes = max(width, 8) * lanes * 4
    candidates = [
        d for d in range(1, height + 1) if height % d == 0 and (r == 0 or d % r == 0 or d == height)
    ]
    fitting = [d for d in candidates if d * row_bytes <= _BAND_BYTES]
    return max(fitting) if fitting else min(candidates)


def _check_block_h(height: int, block_h: int, r: int) -> None:
    if height % block_h:
        raise ValueError(f"block_h={block_h} must divide H={height}")
    if block_h != height and r and block_h % r:
        raise ValueError(f"block_h={block_h} must be a multiple of r={r} (or equal H={height})")


# ----------------------------------------------------------------------------- in-kernel parts


def _padded_band(top_ref, mid_ref, bot_ref, *, r: int, num_bands: int) -> jax.Array:
    """[block_h + 2r, W, X] f32 band with its halo rows; rows outside the image are zero."""
    mid = mid_ref[...].astype(jnp.float32)
    if r == 0:
        return mid
    t = pl.program_id(1)
    top = top_ref[...].astype(jnp.float32) * (t > 0).astype(jnp.float32)
    bot = bot_ref[...].astype(jnp.float32) * (t < num_bands - 1).astype(jnp.float32)
    return jnp.concatenate([top, mid, bot], axis=0)


def _shift_cols(x: jax.Array, dx: int) -> jax.Array:
    """y[:, j] = x[:, j + dx] where 0 <= j + dx < W, else 0.  x: [rows, W, X]."""
    if dx == 0:
        return x
    width = x.shape[1]
    rolled = pltpu.roll(x, (-dx) % width, 1)
    col = lax.broadcasted_iota(jnp.int32, x.shape, 1) + dx
    return jnp.where((col >= 0) & (col < width), rolled, 0.0)


def _pixel_tap(w: jax.Array, q: int) -> jax.Array:
    """Tap q of per-pixel weights as a column to broadcast over lanes: [rows, W, k*k] -> [.., 1]."""
    lane = lax.broadcasted_iota(jnp.int32, w.shape, 2)
    return jnp.sum(jnp.where(lane == q, w, 0.0), axis=2, keepdims=True)


def _basis_tap(s: jax.Array, kernels_ref, q: int) -> jax.Array:
    """Eq. 12 for one tap: W_q = sum_l S[.., l] w[q, l].  s: [rows, W, N] -> [rows, W, 1]."""
    w_q = kernels_ref[q].astype(jnp.float32)  # [1, N]
    return jnp.sum(s * w_q[None], axis=2, keepdims=True)


def _split_halo_refs(refs, r: int):
    """(top, mid, bottom) triples for the banded operands; (None, mid, None) when r == 0."""
    if r == 0:
        return (None, refs[0], None), refs[1:]
    return tuple(refs[:3]), refs[3:]


# ----------------------------------------------------------------------------- kernels


def _warp_fwd_kernel(*refs, kernel_size: int, num_bands: int, factorized: bool):
    r = (kernel_size - 1) // 2
    h_refs, rest = _split_halo_refs(refs, r)
    if factorized:
        s_ref, kernels_ref, o_ref = rest
        s = s_ref[...].astype(jnp.float32)  # [block_h, W, N]
        tap = functools.partial(_basis_tap, s, kernels_ref)
    else:
        w_ref, o_ref = rest
        w = w_ref[...].astype(jnp.float32)  # [block_h, W, k*k]
        tap = functools.partial(_pixel_tap, w)
    block_h = o_ref.shape[0]
    x = _padded_band(*h_refs, r=r, num_bands=num_bands)  # [block_h + 2r, W, C]
    acc = jnp.zeros(o_ref.shape, jnp.float32)  # [block_h, W, C]
    for n in range(kernel_size):
        xs = _shift_cols(x, n - r)
        for m in range(kernel_size):
            acc += tap(m * kernel_size + n) * xs[m : m + block_h]  # Eq. 11
    o_ref[...] = acc.astype(o_ref.dtype)


def _warp_bwd_kernel(*refs, kernel_size: int, num_bands: int, factorized: bool):
    r = (kernel_size - 1) // 2
    h_refs, rest = _split_halo_refs(refs, r)
    g_refs, rest = _split_halo_refs(rest, r)
    p_refs, rest = _split_halo_refs(rest, r)  # weights, or the selection map
    x = _padded_band(*h_refs, r=r, num_bands=num_bands)  # [block_h + 2r, W, C]
    gp = _padded_band(*g_refs, r=r, num_bands=num_bands)  # [block_h + 2r, W, C]
    pp = _padded_band(*p_refs, r=r, num_bands=num_bands)  # [block_h + 2r, W, k*k or N]
    if factorized:
        kernels_ref, dh_ref, ds_ref, dk_ref = rest
        tap = functools.partial(_basis_tap, pp, kernels_ref)
    else:
        dh_ref, dw_ref = rest
        tap = functools.partial(_pixel_tap, pp)
    block_h = dh_ref.shape[0]
    g = gp[r : r + block_h]  # [block_h, W, C]
    p_mid = pp[r : r + block_h]  # [block_h, W, k*k or N]
    dh = jnp.zeros(dh_ref.shape, jnp.float32)  # [block_h, W, C]
    dp = jnp.zeros(p_mid.shape, jnp.float32)  # [block_h, W, k*k or N]
    lane = lax.broadcasted_iota(jnp.int32, p_mid.shape, 2)
    for n in range(kernel_size):
        xs = _shift_cols(x, n - r)
        col_sum = jnp.zeros(dh.shape, jnp.float32)  # taps of column n, before the x shift
        for m in range(kernel_size):
            q = m * kernel_size + n
            dw_q = jnp.sum(g * xs[m : m + block_h], axis=2, keepdims=True)  # [block_h, W, 1]
            if factorized:
                w_q = kernels_ref[q].astype(jnp.float32)  # [1, N]
                dp += dw_q * w_q[None]  # dS = sum_q dW_q w_q
                dk_ref[q] = jnp.sum(jnp.sum(dw_q * p_mid, axis=0), axis=0, keepdims=True)
            else:
                dp = jnp.where(lane == q, dw_q, dp)
            # Row y reads row y - dy of W_q * g, i.e. padded row y + 2r - m.
            lo = 2 * r - m
            col_sum += tap(q)[lo : lo + block_h] * gp[lo : lo + block_h]
        dh += _shift_cols(col_sum, r - n)
    dh_ref[...] = dh.astype(dh_ref.dtype)
    if factorized:
        ds_ref[...] = dp.astype(ds_ref.dtype)
    else:
        dw_ref[...] = dp.astype(dw_ref.dtype)


# ----------------------------------------------------------------------------- builders


def _band_specs(shape, block_h: int, r: int, num_bands: int) -> list[pl.BlockSpec]:
    """Specs for a [B, H, W, X] operand: [top halo,] band[, bottom halo]."""
    _, height, width, depth = shape
    mid = pl.BlockSpec((None, block_h, width, depth), lambda b, t: (b, t, 0, 0))
    if r == 0:
        return [mid]
    if num_bands == 1:
        top = bot = pl.BlockSpec((None, r, width, depth), lambda b, t: (b, 0, 0, 0))
        return [top, mid, bot]
    last = height // r - 1
    top = pl.BlockSpec(
        (None, r, width, depth),
        lambda b, t: (b, jnp.maximum(t * (block_h // r) - 1, 0), 0, 0),
    )
    bot = pl.BlockSpec(
        (None, r, width, depth),
        lambda b, t: (b, jnp.minimum((t + 1) * (block_h // r), last), 0, 0),
    )
    return [top, mid, bot]


def _band_args(x, r: int) -> list[jax.Array]:
    return [x] if r == 0 else [x, x, x]


def _kernels_spec(kernels_shape) -> pl.BlockSpec:
    _, taps, _, n = kernels_shape
    return pl.BlockSpec((None, taps, 1, n), lambda b, t: (b, 0, 0, 0))


def _compiler_params():
    return pltpu.CompilerParams(dimension_semantics=("parallel", "parallel"))


def warp_fwd(
    h: jax.Array,
    weights: jax.Array | None = None,
    kernels: jax.Array | None = None,
    selection: jax.Array | None = None,
    *,
    kernel_size: int,
    block_h: int | None = None,
    interpret: bool = False,
) -> jax.Array:
    """Forward warp; pass `weights` (pixelwise) or `kernels` and `selection` (factorized).

    Args:
      h: [B, H, W, C] features.
      weights: [B, H, W, k*k] per-pixel kernels (pixelwise form).
      kernels: [B, k*k, N] basis (factorized form).
      selection: [B, H, W, N] coefficients (factorized form).
      kernel_size: odd k.
      block_h: rows per program; default from `pick_block_h`.
      interpret: run through the Pallas interpreter.

    Returns:
      [B, H, W, C] in h.dtype.
    """
    batch, height, width, channels = h.shape
    r = (kernel_size - 1) // 2
    block_h = block_h or pick_block_h(height, width, channels, kernel_size)
    _check_block_h(height, block_h, r)
    num_bands = height // block_h
    factorized = weights is None
    in_specs = _band_specs(h.shape, block_h, r, num_bands)
    args = _band_args(h, r)
    if factorized:
        kernels4 = kernels.reshape(batch, kernels.shape[1], 1, kernels.shape[2])
        in_specs += _band_specs(selection.shape, block_h, 0, num_bands)
        in_specs.append(_kernels_spec(kernels4.shape))
        args += [selection, kernels4]
    else:
        in_specs += _band_specs(weights.shape, block_h, 0, num_bands)
        args.append(weights)
    taps = kernel_size * kernel_size
    kernel = functools.partial(
        _warp_fwd_kernel, kernel_size=kernel_size, num_bands=num_bands, factorized=factorized
    )
    return pl.pallas_call(
        kernel,
        grid=(batch, num_bands),
        in_specs=in_specs,
        out_specs=pl.BlockSpec((None, block_h, width, channels), lambda b, t: (b, t, 0, 0)),
        out_shape=jax.ShapeDtypeStruct(h.shape, h.dtype),
        compiler_params=_compiler_params(),
        cost_estimate=pl.CostEstimate(
            flops=2 * taps * h.size,
            transcendentals=0,
            bytes_accessed=2 * h.nbytes + sum(a.nbytes for a in args[(1 if r == 0 else 3) :]),
        ),
        interpret=interpret,
        name="factorized_warp_fwd" if factorized else "pixelwise_warp_fwd",
    )(*args)


def warp_bwd(
    h: jax.Array,
    g: jax.Array,
    weights: jax.Array | None = None,
    kernels: jax.Array | None = None,
    selection: jax.Array | None = None,
    *,
    kernel_size: int,
    block_h: int | None = None,
    interpret: bool = False,
):
    """Backward warp in one pass over h, g and the weights (or selection map).

    Args:
      h: [B, H, W, C] features.
      g: [B, H, W, C] output cotangent.
      weights: [B, H, W, k*k] (pixelwise form).
      kernels: [B, k*k, N] and selection: [B, H, W, N] (factorized form).
      kernel_size: odd k.
      block_h: rows per program; default from `pick_block_h`.
      interpret: run through the Pallas interpreter.

    Returns:
      (dh, dweights) for the pixelwise form, (dh, dkernels, dselection) for the factorized one,
      each in its primal's dtype.
    """
    batch, height, width, channels = h.shape
    r = (kernel_size - 1) // 2
    block_h = block_h or pick_block_h(height, width, channels, kernel_size)
    _check_block_h(height, block_h, r)
    num_bands = height // block_h
    factorized = weights is None
    p = selection if factorized else weights
    in_specs, args = [], []
    for x in (h, g, p):
        in_specs += _band_specs(x.shape, block_h, r, num_bands)
        args += _band_args(x, r)
    band = lambda depth: pl.BlockSpec((None, block_h, width, depth), lambda b, t: (b, t, 0, 0))
    out_specs = [band(channels), band(p.shape[-1])]
    out_shape = [jax.ShapeDtypeStruct(h.shape, h.dtype), jax.ShapeDtypeStruct(p.shape, p.dtype)]
    if factorized:
        taps, n = kernels.shape[1:]
        kernels4 = kernels.reshape(batch, taps, 1, n)
        in_specs.append(_kernels_spec(kernels4.shape))
        args.append(kernels4)
        # Per-band partial sums of dkernels, reduced below (tiny: [B, bands, k*k, 1, N]).
        out_specs.append(pl.BlockSpec((None, None, taps, 1, n), lambda b, t: (b, t, 0, 0, 0)))
        out_shape.append(jax.ShapeDtypeStruct((batch, num_bands, taps, 1, n), jnp.float32))
    kernel = functools.partial(
        _warp_bwd_kernel, kernel_size=kernel_size, num_bands=num_bands, factorized=factorized
    )
    outs = pl.pallas_call(
        kernel,
        grid=(batch, num_bands),
        in_specs=in_specs,
        out_specs=out_specs,
        out_shape=out_shape,
        compiler_params=_compiler_params(),
        cost_estimate=pl.CostEstimate(
            flops=4 * kernel_size * kernel_size * h.size,
            transcendentals=0,
            bytes_accessed=4 * h.nbytes + 2 * p.nbytes,
        ),
        interpret=interpret,
        name="factorized_warp_bwd" if factorized else "pixelwise_warp_bwd",
    )(*args)
    if factorized:
        dh, ds, dk = outs
        dk = jnp.sum(dk, axis=1)[:, :, 0, :].astype(kernels.dtype)  # [B, k*k, N]
        return dh, dk, ds
    return tuple(outs)
