"""Pallas GPU (Triton) kernels for block-local attention (forward and backward).

Triton is deprecated in jax 0.11.2; the GPU default is the Mosaic GPU kernels in
`pallas_mgpu.py`, and these run with `implementation="triton"` (or for problems Mosaic GPU does
not take). Triton loads the `(t, h, w, head_dim)` block with pointer arithmetic straight from
the native `[B, T, H, W, heads, head_dim]` layout, and its kernels run in the Pallas interpreter
on CPU.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as pltriton

from block_attention.bias import position_one_hot
from block_attention.block_sizes import BlockSizes
from block_attention.reference import MASK_VALUE, blocks_from_video, video_from_blocks

TRANS_B = (((1,), (1,)), ((), ()))  # a @ b^T
TRANS_A = (((0,), (0,)), ((), ()))  # a^T @ b
MAX_BLOCK_POSITIONS = 256


def _is_pow2(x: int) -> bool:
    return x > 0 and x & (x - 1) == 0


def _padded_bias_width(block_shape) -> int:
    """`m = t + h + w` rounded up to a power of two >= 16 (Triton tile and dot rules)."""
    return max(16, 1 << (sum(block_shape) - 1).bit_length())


def kernel_supports(shape, dtype, block_shape) -> bool:
    """Whether the Triton kernel handles this problem (else the GPU path runs XLA).

    Triton tiles need power-of-two sizes and dots need every dimension >= 16. In f32, bias
    tables padded to 128 (t + h + w > 64, e.g. blocks (1, 2, 64)) take the backward past the
    H100's 227 KiB of shared memory (measured: 256 KiB requested), so those run XLA.
    """
    n = int(np.prod(block_shape))
    head_dim = shape[-1]
    if jnp.dtype(dtype).itemsize == 4 and _padded_bias_width(block_shape) > 64:
        return False
    return (
        all(_is_pow2(s) for s in block_shape)
        and _is_pow2(head_dim)
        and 16 <= n <= MAX_BLOCK_POSITIONS
        and 16 <= head_dim <= 256
        and jnp.dtype(dtype)
        in (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16), jnp.dtype(jnp.float32))
    )


def _scores(q, k, r, g, *, scale, causal):
    """Logits of one block and head, f32 [n, n]: `q k^T / sqrt(d) + R G R^T` (Eq. 3)."""
    s = lax.dot_general(q, k, TRANS_B, preferred_element_type=jnp.float32) * scale
    if g is not None:
        rg = jnp.dot(r, g, preferred_element_type=jnp.float32)  # [n, mp]
        s = s + lax.dot_general(rg, r, TRANS_B, preferred_element_type=jnp.float32)
    if causal:
        n = s.shape[0]
        row = lax.broadcasted_iota(jnp.int32, (n, n), 0)
        col = lax.broadcasted_iota(jnp.int32, (n, n), 1)
        s = jnp.where(col <= row, s, MASK_VALUE)
    return s


def _softmax(s):
    p = jnp.exp(s - jnp.max(s, axis=1, keepdims=True))
    return p / jnp.sum(p, axis=1, keepdims=True)


def _block_attention_fwd_kernel(*refs, causal, scale, has_bias):
    if has_bias:
        q_ref, k_ref, v_ref, r_ref, g_ref, o_ref = refs
    else:
        (q_ref, k_ref, v_ref, o_ref), r_ref, g_ref = refs, None, None
    t, h, w, d = q_ref.shape
    n = t * h * w
    q = q_ref[...].reshape(n, d)  # [n, d]
    k = k_ref[...].reshape(n, d)
    v = v_ref[...].reshape(n, d)
    r = r_ref[...] if has_bias else None  # [n, mp]
    g = g_ref[...] if has_bias else None  # [mp, mp]
    p = _softmax(_scores(q, k, r, g, scale=scale, causal=causal))  # Eq. 4, [n, n]
    o = jnp.dot(p.astype(v.dtype), v, preferred_element_type=jnp.float32)  # [n, d]
    o_ref[...] = o.reshape(t, h, w, d).astype(o_ref.dtype)


def _block_attention_bwd_kernel(*refs, causal, scale, has_bias):
    if has_bias:
        q_ref, k_ref, v_ref, do_ref, r_ref, g_ref, dq_ref, dk_ref, dv_ref, dg_ref = refs
    else:
        q_ref, k_ref, v_ref, do_ref, dq_ref, dk_ref, dv_ref = refs
    t, h, w, d = q_ref.shape
    n = t * h * w
    q = q_ref[...].reshape(n, d)  # [n, d]
    k = k_ref[...].reshape(n, d)
    v = v_ref[...].reshape(n, d)
    do = do_ref[...].reshape(n, d)
    r = r_ref[...] if has_bias else None
    g = g_ref[...] if has_bias else None
    p = _softmax(_scores(q, k, r, g, scale=scale, causal=causal))  # [n, n]
    dp = lax.dot_general(do, v, TRANS_B, preferred_element_type=jnp.float32)  # [n, n]
    # rowsum(p * dp) == rowsum(do * o), so o is not needed.
    ds = p * (dp - jnp.sum(p * dp, axis=1, keepdims=True))  # d loss / d logits
    dv = lax.dot_general(p.astype(do.dtype), do, TRANS_A, preferred_element_type=jnp.float32)
    dq = jnp.dot(ds.astype(k.dtype), k, preferred_element_type=jnp.float32) * scale
    dk = lax.dot_general(ds.astype(q.dtype), q, TRANS_A, preferred_element_type=jnp.float32)
    dq_ref[...] = dq.reshape(t, h, w, d).astype(dq_ref.dtype)
    dk_ref[...] = (dk * scale).reshape(t, h, w, d).astype(dk_ref.dtype)
    dv_ref[...] = dv.reshape(t, h, w, d).astype(dv_ref.dtype)
    if has_bias:
        rds = lax.dot_general(r, ds, TRANS_A, preferred_element_type=jnp.float32)  # [mp, n]
        dg_ref[...] = jnp.dot(rds, r, preferred_element_type=jnp.float32)  # dG = R^T dS R


def _specs(shape, block_shape):
    b, tt, hh, ww, heads, d = shape
    t, h, w = block_shape
    grid_t, grid_h, grid_w = tt // t, hh // h, ww // w
    # Triton grids have at most 3 axes: (batch x T-blocks, H-blocks x W-blocks, heads).
    grid = (b * grid_t, grid_h * grid_w, heads)
    video_spec = pl.BlockSpec(
        (None, t, h, w, None, d),
        lambda i, j, n: (i // grid_t, i % grid_t, j // grid_w, j % grid_w, n, 0),
    )
    return grid, video_spec


def _bias_inputs(g, block_shape):
    """R and G zero-padded to a power-of-two width `mp`."""
    m, mp = sum(block_shape), _padded_bias_width(block_shape)
    r = np.zeros((int(np.prod(block_shape)), mp), np.float32)
    r[:, :m] = position_one_hot(block_shape)
    g = jnp.pad(g, ((0, 0), (0, mp - m), (0, mp - m)))
    return jnp.asarray(r), g


def _compiler_params(n):
    return pltriton.CompilerParams(num_warps=8 if n >= 128 else 4, num_stages=1)


def _xla_attention(q, k, v, g, *, block_shape, causal):
    """XLA fallback for shapes the kernel does not take, with `B = R G R^T`."""
    video_shape = q.shape[1:4]
    qb, kb, vb = (blocks_from_video(x.astype(jnp.float32), block_shape) for x in (q, k, v))
    s = jnp.einsum("bsind,bsjnd->bsnij", qb / np.sqrt(q.shape[-1]), kb)  # [B, S, heads, n, n]
    if g is not None:
        r = jnp.asarray(position_one_hot(block_shape))
        s = s + jnp.einsum("ia,nab,jb->nij", r, g, r)
    if causal:
        n = s.shape[-1]
        s = jnp.where(np.tril(np.ones((n, n), bool)), s, MASK_VALUE)
    o = jnp.einsum("bsnij,bsjnd->bsind", jax.nn.softmax(s, axis=-1), vb)
    return video_from_blocks(o, block_shape, video_shape).astype(q.dtype)


@functools.partial(jax.jit, static_argnames=("block_shape", "causal", "block_sizes", "interpret"))
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
) -> jax.Array:
    """Forward kernel: one program per (slice, block, head).

    Args:
      q: [B, T, H, W, heads, head_dim].
      k: [B, T, H, W, heads, head_dim].
      v: [B, T, H, W, heads, head_dim].
      g: None or f32 [heads, m, m] Toeplitz bias tables (`bias.bias_matrix`).
      block_shape: (t, h, w).
      causal: raster-order causal mask.
      block_sizes: unused on GPU (one block and head per program).
      interpret: run in the Pallas interpreter.

    Returns:
      o: [B, T, H, W, heads, head_dim], q's dtype.
    """
    del block_sizes
    if not kernel_supports(q.shape, q.dtype, block_shape):
        return _xla_attention(q, k, v, g, block_shape=block_shape, causal=causal)
    grid, video_spec = _specs(q.shape, block_shape)
    n = int(np.prod(block_shape))
    has_bias = g is not None
    inputs, in_specs = [q, k, v], [video_spec] * 3
    if has_bias:
        r, g = _bias_inputs(g, block_shape)
        mp = r.shape[1]
        inputs += [r, g]
        in_specs += [
            pl.BlockSpec((n, mp), lambda i, j, hd: (0, 0)),
            pl.BlockSpec((None, mp, mp), lambda i, j, hd: (hd, 0, 0)),
        ]
    kernel = functools.partial(
        _block_attention_fwd_kernel,
        causal=causal,
        scale=1.0 / float(np.sqrt(q.shape[-1])),
        has_bias=has_bias,
    )
    return pl.pallas_call(
        kernel,
        grid=grid,
        in_specs=in_specs,
        out_specs=video_spec,
        out_shape=jax.ShapeDtypeStruct(q.shape, q.dtype),
        compiler_params=_compiler_params(n),
        interpret=interpret,
        name="block_attention_fwd",
    )(*inputs)


@functools.partial(jax.jit, static_argnames=("block_shape", "causal", "block_sizes", "interpret"))
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
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array | None]:
    """Backward kernel: recomputes the softmax of each block and head.

    Args:
      q, k, v: [B, T, H, W, heads, head_dim] forward inputs.
      g: None or f32 [heads, m, m].
      do: [B, T, H, W, heads, head_dim] output cotangent.
      block_shape, causal, block_sizes, interpret: as in `block_attention_fwd`.

    Returns:
      (dq, dk, dv) like q, and dg (f32 [heads, m, m], or None without bias).
    """
    del block_sizes
    if not kernel_supports(q.shape, q.dtype, block_shape):
        fn = functools.partial(_xla_attention, block_shape=block_shape, causal=causal)
        if g is None:
            _, vjp = jax.vjp(lambda q, k, v: fn(q, k, v, None), q, k, v)
            return (*vjp(do), None)
        _, vjp = jax.vjp(fn, q, k, v, g)
        return vjp(do)
    grid, video_spec = _specs(q.shape, block_shape)
    n = int(np.prod(block_shape))
    has_bias = g is not None
    inputs, in_specs = [q, k, v, do], [video_spec] * 4
    out_shape = [jax.ShapeDtypeStruct(x.shape, x.dtype) for x in (q, k, v)]
    out_specs = [video_spec] * 3
    if has_bias:
        m = g.shape[-1]
        r, g_padded = _bias_inputs(g, block_shape)
        mp = r.shape[1]
        inputs += [r, g_padded]
        in_specs += [
            pl.BlockSpec((n, mp), lambda i, j, hd: (0, 0)),
            pl.BlockSpec((None, mp, mp), lambda i, j, hd: (hd, 0, 0)),
        ]
        # One partial dG per program, summed below: [grid..., mp, mp] is tiny next to q.
        out_shape.append(jax.ShapeDtypeStruct((*grid, mp, mp), jnp.float32))
        out_specs.append(
            pl.BlockSpec((None, None, None, mp, mp), lambda i, j, hd: (i, j, hd, 0, 0))
        )
    kernel = functools.partial(
        _block_attention_bwd_kernel,
        causal=causal,
        scale=1.0 / float(np.sqrt(q.shape[-1])),
        has_bias=has_bias,
    )
    outs = pl.pallas_call(
        kernel,
        grid=grid,
        in_specs=in_specs,
        out_specs=out_specs,
        out_shape=out_shape,
        compiler_params=_compiler_params(n),
        interpret=interpret,
        name="block_attention_bwd",
    )(*inputs)
    dq, dk, dv = outs[:3]
    dg = jnp.sum(outs[3], axis=(0, 1))[:, :m, :m] if has_bias else None
    return dq, dk, dv, dg
