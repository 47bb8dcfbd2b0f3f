"""Mosaic TPU Pallas kernels for block-local attention (forward and backward)."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu

from block_attention.bias import position_one_hot
from block_attention.block_sizes import BlockSizes
from block_attention.reference import MASK_VALUE

# Contract the last dims of both operands: a @ b^T.
TRANS_B = (((1,), (1,)), ((), ()))
# Contract the first dims of both operands: a^T @ b.
TRANS_A = (((0,), (0,)), ((), ()))


def _dense_bias(r, g):
    """`B = R G R^T` (Eq. 3) from the one-hot coordinates and the Toeplitz tables."""
    rg = jnp.dot(r, g, preferred_element_type=jnp.float32)  # [n, m]
    return lax.dot_general(rg, r, TRANS_B, preferred_element_type=jnp.float32)  # [n, n]


def _causal_visible(n):
    row = lax.broadcasted_iota(jnp.int32, (n, n), 0)
    col = lax.broadcasted_iota(jnp.int32, (n, n), 1)
    return col <= row  # [n, n]


def _probs(q, k, bias, *, scale, causal):
    """Softmax of one block's scores (Eq. 4), f32: the block is a single tile."""
    s = lax.dot_general(q, k, TRANS_B, preferred_element_type=jnp.float32) * scale  # [n, n]
    if bias is not None:
        s = s + bias
    if causal:
        s = jnp.where(_causal_visible(s.shape[0]), s, MASK_VALUE)
    m = jnp.max(s, axis=1, keepdims=True)  # [n, 1]
    p = jnp.exp(s - m)  # [n, n]
    return p / jnp.sum(p, axis=1, keepdims=True)


def _block_iter(block_shape, block_sizes):
    """Static (rows, cols) slices of the blocks one program owns."""
    _, h, w = block_shape
    for by in range(block_sizes.blocks_h):
        for bx in range(block_sizes.blocks_w):
            yield pl.ds(by * h, h), pl.ds(bx * w, w)


def _block_attention_fwd_kernel(
    *refs, block_shape, block_sizes, causal, scale, has_bias, matmul_dtype
):
    if has_bias:
        q_ref, k_ref, v_ref, r_ref, g_ref, o_ref = refs
    else:
        q_ref, k_ref, v_ref, o_ref = refs
    t, h, w = block_shape
    n = t * h * w
    d = q_ref.shape[-1]

    # Static loops: every ref index is a compile-time constant, the simplest case for Mosaic.
    for head in range(block_sizes.heads):
        # bias: [n, n], shared by every block of this head.
        bias = _dense_bias(r_ref[...], g_ref[head]) if has_bias else None
        for ys, xs in _block_iter(block_shape, block_sizes):
            idx = (slice(None), ys, xs, head, slice(None))
            # [n, d] each, in the dtype the matrix unit takes (f32 on TPU v2/v3).
            q, k, v = (x[idx].reshape(n, d).astype(matmul_dtype) for x in (q_ref, k_ref, v_ref))
            p = _probs(q, k, bias, scale=scale, causal=causal)  # [n, n]
            o = jnp.dot(p.astype(v.dtype), v, preferred_element_type=jnp.float32)  # [n, d]
            o_ref[idx] = o.reshape(t, h, w, d).astype(o_ref.dtype)


def _block_attention_bwd_kernel(
    *refs, block_shape, block_sizes, causal, scale, has_bias, matmul_dtype
):
    if has_bias:
        q_ref, k_ref, v_ref, do_ref, r_ref, g_ref, dq_ref, dk_ref, dv_ref, dg_ref = refs
    else:
        q_ref, k_ref, v_ref, do_ref, dq_ref, dk_ref, dv_ref = refs
    t, h, w = block_shape
    n = t * h * w
    d = q_ref.shape[-1]

    for head in range(block_sizes.heads):
        bias = _dense_bias(r_ref[...], g_ref[head]) if has_bias else None
        ds_sum = jnp.zeros((n, n), jnp.float32)
        for ys, xs in _block_iter(block_shape, block_sizes):
            idx = (slice(None), ys, xs, head, slice(None))
            # [n, d] each, in the dtype the matrix unit takes (f32 on TPU v2/v3).
            q, k, v, do = (
                x[idx].reshape(n, d).astype(matmul_dtype) for x in (q_ref, k_ref, v_ref, do_ref)
            )
            p = _probs(q, k, bias, scale=scale, causal=causal)  # [n, n]
            dp = lax.dot_general(do, v, TRANS_B, preferred_element_type=jnp.float32)  # [n, n]
            # rowsum(p * dp) == rowsum(do * o): no need to keep o from the forward.
            ds = p * (dp - jnp.sum(p * dp, axis=1, keepdims=True))  # d loss / d logits, [n, n]
            dv = lax.dot_general(
                p.astype(do.dtype), do, TRANS_A, preferred_element_type=jnp.float32
            )
            dq = jnp.dot(ds.astype(k.dtype), k, preferred_element_type=jnp.float32) * scale
            dk = lax.dot_general(ds.astype(q.dtype), q, TRANS_A, preferred_element_type=jnp.float32)
            dq_ref[idx] = dq.reshape(t, h, w, d).astype(dq_ref.dtype)
            dk_ref[idx] = (dk * scale).reshape(t, h, w, d).astype(dk_ref.dtype)
            dv_ref[idx] = dv.reshape(t, h, w, d).astype(dv_ref.dtype)
            if has_bias:
                ds_sum = ds_sum + ds
        if has_bias:
            # dG = R^T dS R (Eq. 3 transposed), summed over this program's blocks.
            r = r_ref[...]
            rds = lax.dot_general(r, ds_sum, TRANS_A, preferred_element_type=jnp.float32)  # [m, n]
            dg_ref[head] = jnp.dot(rds, r, preferred_element_type=jnp.float32)  # [m, m]


def _grid_and_specs(shape, block_shape, block_sizes):
    b, tt, hh, ww, heads, d = shape
    t, h, w = block_shape
    grid = (
        b,
        tt // t,
        hh // (h * block_sizes.blocks_h),
        ww // (w * block_sizes.blocks_w),
        heads // block_sizes.heads,
    )
    # Blocks come straight from the [B, T, H, W, heads, d] layout: no transpose in HBM.
    video_spec = pl.BlockSpec(
        (None, t, h * block_sizes.blocks_h, w * block_sizes.blocks_w, block_sizes.heads, d),
        lambda bi, ti, yi, xi, hi: (bi, ti, yi, xi, hi, 0),
    )
    m = sum(block_shape)
    r_spec = pl.BlockSpec((t * h * w, m), lambda *_: (0, 0))
    g_spec = pl.BlockSpec((block_sizes.heads, m, m), lambda bi, ti, yi, xi, hi: (hi, 0, 0))
    return grid, video_spec, r_spec, g_spec


def _compiler_params(vmem_limit_bytes):
    return pltpu.CompilerParams(
        dimension_semantics=("parallel",) * 5, vmem_limit_bytes=vmem_limit_bytes
    )


def _matmul_dtype(dtype, f32_matmul: bool):
    return jnp.float32 if f32_matmul else jnp.dtype(dtype)


_STATIC = ("block_shape", "causal", "block_sizes", "interpret", "vmem_limit_bytes", "f32_matmul")


@functools.partial(jax.jit, static_argnames=_STATIC)
def block_attention_fwd(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    g: jax.Array | None,
    *,
    block_shape: tuple[int, int, int],
    causal: bool,
    block_sizes: BlockSizes,
    interpret: Any = False,
    vmem_limit_bytes: int | None = None,
    f32_matmul: bool = False,
) -> jax.Array:
    """Forward kernel.

    Args:
      q: [B, T, H, W, heads, head_dim].
      k: [B, T, H, W, heads, head_dim].
      v: [B, T, H, W, heads, head_dim].
      g: None or f32 [heads, m, m], the block-diagonal Toeplitz bias tables (`ops.bias_matrix`).
      block_shape: (t, h, w).
      causal: raster-order causal mask inside a block.
      block_sizes: work per program.
      interpret: run in the Pallas interpreter.
      vmem_limit_bytes: scoped VMEM for Mosaic (None: its default).
      f32_matmul: upcast the matmul operands to f32 (TPU v2/v3 have no bf16 matmuls).

    Returns:
      o: [B, T, H, W, heads, head_dim], q's dtype.
    """
    grid, video_spec, r_spec, g_spec = _grid_and_specs(q.shape, block_shape, block_sizes)
    has_bias = g is not None
    kernel = functools.partial(
        _block_attention_fwd_kernel,
        block_shape=block_shape,
        block_sizes=block_sizes,
        causal=causal,
        scale=1.0 / float(np.sqrt(q.shape[-1])),
        has_bias=has_bias,
        matmul_dtype=_matmul_dtype(q.dtype, f32_matmul),
    )
    inputs = [q, k, v]
    in_specs = [video_spec] * 3
    if has_bias:
        inputs += [jnp.asarray(position_one_hot(block_shape)), g]
        in_specs += [r_spec, g_spec]
    return pl.pallas_call(
        kernel,
        grid=grid,
        in_specs=in_specs,
        out_specs=video_spec,
        out_shape=jax.ShapeDtypeStruct(q.shape, q.dtype),
        compiler_params=_compiler_params(vmem_limit_bytes),
        interpret=interpret,
        name="block_attention_fwd",
    )(*inputs)


@functools.partial(jax.jit, static_argnames=_STATIC)
def block_attention_bwd(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    g: jax.Array | None,
    do: jax.Array,
    *,
    block_shape: tuple[int, int, int],
    causal: bool,
    block_sizes: BlockSizes,
    interpret: Any = False,
    vmem_limit_bytes: int | None = None,
    f32_matmul: bool = False,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array | None]:
    """Backward kernel: recomputes each block's softmax and returns all input gradients.

    Args:
      q, k, v: [B, T, H, W, heads, head_dim] forward inputs.
      g: None or f32 [heads, m, m] bias tables in Toeplitz form.
      do: [B, T, H, W, heads, head_dim] output cotangent.
      block_shape, causal, block_sizes, interpret, vmem_limit_bytes, f32_matmul: as in
        `block_attention_fwd`.

    Returns:
      (dq, dk, dv) shaped like q, and dg (f32 [heads, m, m], or None without bias).
    """
    grid, video_spec, r_spec, g_spec = _grid_and_specs(q.shape, block_shape, block_sizes)
    has_bias = g is not None
    kernel = functools.partial(
        _block_attention_bwd_kernel,
        block_shape=block_shape,
        block_sizes=block_sizes,
        causal=causal,
        scale=1.0 / float(np.sqrt(q.shape[-1])),
        has_bias=has_bias,
        matmul_dtype=_matmul_dtype(q.dtype, f32_matmul),
    )
    inputs = [q, k, v, do]
    in_specs = [video_spec] * 4
    out_shape = [jax.ShapeDtypeStruct(x.shape, x.dtype) for x in (q, k, v)]
    out_specs = [video_spec] * 3
    if has_bias:
        inputs += [jnp.asarray(position_one_hot(block_shape)), g]
        in_specs += [r_spec, g_spec]
        # One partial dG per program; summed below (tiny: [.., heads, m, m]).
        m = g.shape[-1]
        out_shape.append(jax.ShapeDtypeStruct(grid[:4] + (q.shape[4], m, m), jnp.float32))
        out_specs.append(
            pl.BlockSpec(
                (None, None, None, None, block_sizes.heads, m, m),
                lambda bi, ti, yi, xi, hi: (bi, ti, yi, xi, hi, 0, 0),
            )
        )
    outs = pl.pallas_call(
        kernel,
        grid=grid,
        in_specs=in_specs,
        out_specs=out_specs,
        out_shape=out_shape,
        compiler_params=_compiler_params(vmem_limit_bytes),
        interpret=interpret,
        name="block_attention_bwd",
    )(*inputs)
    dq, dk, dv = outs[:3]
    dg = jnp.sum(outs[3], axis=(0, 1, 2, 3)) if has_bias else None
    return dq, dk, dv, dg
