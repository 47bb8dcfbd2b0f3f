"""Mosaic GPU (Hopper, sm_90a) kernels for block-local attention (forward and backward).

Work split. A block of `n = t*h*w` positions is one tile (n = 128 at the Video Transformer's
shapes). One CTA owns one head and `tiles_per_program` consecutive blocks; a producer warpgroup
streams them in with TMA and `n / 64` compute warpgroups each own 64 query rows (the wgmma M).
Buffers are released one by one as the compute side is done with them (k after QK^T, v after PV,
...), so the next block's loads overlap the current block's softmax and matmuls even with one
buffer per operand; `num_stages = 2` double-buffers where shared memory allows. Every matmul is a
`plgpu.wgmma` with both operands in shared memory into a scoped `plgpu.ACC`: P and dS are written
to shared memory (then `commit_smem`) because the register-LHS wgmma does not run in GPU interpret
mode, and the kernel we test must be the kernel we ship. A row's n scores fit in the 64-row
accumulator (n/2 f32 registers per thread), so there is no online softmax. The backward
recomputes the softmax (its only residuals are q, k, v, g), and its two compute warpgroups meet at
a barrier four times per block: P complete (then dV = P^T dO), P and do read (then dS overwrites
P), dS complete (then dQ = dS K, dK = dS^T Q), q / k / dS read (then dK is staged in k). Outputs
are staged in consumed operand buffers (o in q; dV, then dQ, in v; dK in k) and leave by TMA.
Compute warpgroups run with 240 registers, the producer with 24 (ptxas at the eight VT block
shapes, bf16, causal, with bias: no spills in the forward; 0 to 36 bytes in the backward).

Layout (decided here). In the native `[B, T, H, W, heads, head_dim]` layout a block is `t*h`
runs of only `w` consecutive positions (w = 2 or 4 at several VT shapes). WGMMA operands live in
8-row tiled, 128-byte swizzled shared memory and a TMA fills such a buffer in whole 8-row tiles,
so one TMA per `(w, head_dim)` row group cannot write into it (the Triton module's docstring
records the alternative: untiled staging plus a register relayout per block, more code and
shared-memory traffic in every kernel). Instead XLA relayouts q, k, v (and do) once to
`[B * blocks, heads, n, head_dim]` (one einshape transpose, which XLA can fuse with the producing
projection, and for f32 inputs with the cast to bf16), so every (block, head) is one contiguous
`[n, head_dim]` tile that one TMA per 64-row half copies into swizzled shared memory; outputs go
back through the inverse einshape. The price is that extra pass over q, k, v (and do, dq, dk, dv).

Relative bias. `B = R G R^T` (Eq. 3) is accumulated into the scores by wgmma,
`S = Q K^T + (R G / scale) R^T`, with `R G` ([n, m] per head, from XLA) split into 16-bit high
and low parts (two wgmmas, ~2^-16 relative error of B) when shared memory allows, else the high
part only (~2^-8 relative error of B, same in forward and backward): that is the case for
m = t+h+w > 64, i.e. blocks (1, 2, 64) and (1, 64, 2), whose backward needs 224 KiB already.
m is padded to a multiple of 64 (one swizzle tile). The backward accumulates `dS R` in a wgmma
accumulator over its blocks from 16-bit high and low parts of dS (so ~f32 accurate: dG sums dS
over whole blocks, and along a size-1 axis that sum is exactly 0) and writes one f32 [n, m]
partial per CTA; XLA finishes `dG = R^T (sum dS R)`.

dtypes. wgmma multiplies bf16/f16 (or tf32, which would need f32 operands in shared memory:
twice the bytes, no room). bf16 and f16 inputs run natively. f32 inputs are rounded to bf16 in
the relayout; accumulation and softmax stay f32 and outputs are cast back to f32, so f32 results
have bf16 accuracy, not f32 accuracy: in the interpret-mode tests max |error| / max |reference| of
o, dq, dk, dv is <= 7.1e-3 for f32 inputs, 6.3e-3 for bf16 and 8.2e-4 for f16 inputs.
f16 inputs also carry the bias as f16 `R G / scale`, so |B| must stay below ~65504 * scale.

Limits (`kernel_supports`): n in {64, 128} (one or two compute warpgroups), head_dim in
{64, 128}, m <= 128, and shared memory within 227 KiB per block. Anything else runs the XLA path
inside `block_attention_fwd`/`block_attention_bwd`. `Tuning` and the `*_tuned` entry points
expose the launch configuration (a too-deep `num_stages` is the compile-time negative control).

Verification (jax 0.11.2, no GPU): numerics in GPU interpret mode, which runs wgmma in exact f32
and ignores `approx_math`, and does not feed wgmma operand reads to its race detector; in
interpret mode the kernels therefore also read each wgmma operand with a plain load (then
`commit_smem`) right before the wgmma, so cross-warpgroup races on those buffers are caught.
What interpret mode cannot check: a missing `commit_smem`, and a missing `wgmma_wait` (its
wgmma is synchronous). sm_90a compiles are deviceless (`compile_targets`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import einshape
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import mosaic_gpu as plgpu

from block_attention.bias import position_one_hot
from block_attention.block_sizes import BlockSizes
from block_attention.reference import MASK_VALUE

ROWS = 64  # Query rows per compute warpgroup (the wgmma M).
SWIZZLE = 128  # Bytes; every operand's minor dimension is a multiple of 64 16-bit elements.
SMEM_LIMIT = 232448  # Opt-in shared memory per block on sm_90 (227 KiB).
SMEM_RESERVED = 2560  # Barriers and Mosaic's reduction scratch (measured ~2.2 KiB).
NUM_SMS = 132
LOG2E = float(np.log2(np.e))
KERNEL_DTYPES = (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16), jnp.dtype(jnp.float32))


@dataclasses.dataclass(frozen=True)
class Tuning:
    """Static launch configuration of the Mosaic GPU kernels.

    Attributes:
      tiles_per_program: consecutive blocks one CTA handles (for one head); must divide the
        number of blocks. More amortises the bias operands and shrinks the backward's dG partials.
      num_stages: buffers per streamed operand (q, k, v[, do]); 2 overlaps a whole block's loads
        with compute when shared memory allows.
      bias_parts: 2 (bf16 high + low parts of `R G`) or 1 (high part only).
    """

    tiles_per_program: int = 1
    num_stages: int = 1
    bias_parts: int = 2

    def __post_init__(self):
        for name in ("tiles_per_program", "num_stages"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"Tuning.{name} must be a positive int, got {value!r}")
        if self.bias_parts not in (1, 2):
            raise ValueError(f"Tuning.bias_parts must be 1 or 2, got {self.bias_parts!r}")


def _compute_dtype(dtype) -> jnp.dtype:
    dtype = jnp.dtype(dtype)
    return jnp.dtype(jnp.bfloat16) if dtype == jnp.float32 else dtype


def _padded_bias_width(block_shape) -> int:
    return -(-sum(block_shape) // 64) * 64


def smem_bytes(n: int, head_dim: int, mp: int | None, tuning: Tuning, *, backward: bool) -> int:
    """Shared memory the kernel allocates (16-bit operands), without barriers.

    Args:
      n: positions per block.
      head_dim: features per head.
      mp: padded bias width, or None without bias.
      tuning: the launch configuration.
      backward: the backward kernel (streams q, k, v, do) instead of the forward (q, k, v).
    """
    streams = 4 if backward else 3
    total = tuning.num_stages * streams * n * head_dim + n * n  # operands + the P / dS tile
    if mp is not None:
        total += tuning.bias_parts * n * mp + mp * n  # R G parts and R^T
    return 2 * total


def _fits(n, head_dim, mp, tuning, *, backward) -> bool:
    return smem_bytes(n, head_dim, mp, tuning, backward=backward) + SMEM_RESERVED <= SMEM_LIMIT


def default_tuning(shape, block_shape, has_bias: bool, *, backward: bool) -> Tuning:
    """A configuration that fits: bias precision first, then double buffering.

    Args:
      shape: [B, T, H, W, heads, head_dim].
      block_shape: (t, h, w).
      has_bias: whether a relative bias is applied.
      backward: configuration for the backward kernel.
    """
    b, tt, hh, ww, heads, head_dim = shape
    t, h, w = block_shape
    n = t * h * w
    num_blocks = b * (tt // t) * (hh // h) * (ww // w)
    mp = _padded_bias_width(block_shape) if has_bias else None
    # The forward and the backward must agree on the bias parts (the softmax they compute).
    parts = 2 if _fits(n, head_dim, mp, Tuning(bias_parts=2), backward=True) else 1
    stages = 2 if _fits(n, head_dim, mp, Tuning(2, 2, parts), backward=backward) else 1
    # Keep at least two waves of CTAs; beyond that, longer programs pipeline better.
    tiles = 1
    for cand in range(2, 17):
        if num_blocks % cand == 0 and heads * num_blocks // cand >= 2 * NUM_SMS:
            tiles = cand
    return Tuning(tiles_per_program=tiles, num_stages=stages, bias_parts=parts)


def kernel_supports(shape, dtype, block_shape) -> bool:
    """Whether the Mosaic GPU kernels take this problem (else the XLA path runs).

    Needs n = t*h*w in {64, 128} (64 query rows per compute warpgroup, the scores of a row in
    registers), head_dim in {64, 128} (one 128-byte swizzle tile per 64 elements, registers),
    m = t+h+w <= 128, and a configuration (with bias, the tighter case) within shared memory.
    """
    n = int(np.prod(block_shape))
    head_dim = shape[-1]
    if jnp.dtype(dtype) not in KERNEL_DTYPES or n not in (64, 128) or head_dim not in (64, 128):
        return False
    mp = _padded_bias_width(block_shape)
    return mp <= 128 and _fits(n, head_dim, mp, Tuning(bias_parts=1), backward=True)


def _tiles_from_video(x, block_shape, dtype):
    """[B, T, H, W, heads, d] -> [B * blocks, heads, n, d]: one contiguous tile per block."""
    t, h, w = block_shape
    x = einshape.jax_einshape("b(ti)(hj)(wk)nd->(bthw)n(ijk)d", x, i=t, j=h, k=w)
    return x.astype(dtype)


def _video_from_tiles(x, block_shape, video_shape, dtype):
    t, h, w = block_shape
    nt, nh, nw = (s // b for s, b in zip(video_shape, block_shape, strict=True))
    x = einshape.jax_einshape("(bthw)n(ijk)d->b(ti)(hj)(wk)nd", x, t=nt, h=nh, w=nw, i=t, j=h, k=w)
    return x.astype(dtype)


def _bias_operands(g, block_shape, head_dim, dtype, parts):
    """`R G / scale` split into `parts` 16-bit terms ([heads, parts, n, mp]) and `R^T` ([mp, n])."""
    m, mp = sum(block_shape), _padded_bias_width(block_shape)
    r = np.zeros((int(np.prod(block_shape)), mp), np.float32)
    r[:, :m] = position_one_hot(block_shape)
    # The kernel scales the whole accumulator by 1/sqrt(d), so the bias enters pre-multiplied.
    rg = jnp.einsum("ia,hab->hib", r[:, :m], g.astype(jnp.float32)) * np.sqrt(head_dim)
    rg = jnp.pad(rg, ((0, 0), (0, 0), (0, mp - m)))  # [heads, n, mp]
    terms = []
    for _ in range(parts):
        term = rg.astype(dtype)
        terms.append(term)
        rg = rg - term.astype(jnp.float32)
    return jnp.stack(terms, axis=1), jnp.asarray(r.T, dtype), r


def _tiled(dtype):
    elems = SWIZZLE // jnp.dtype(dtype).itemsize
    return (plgpu.TilingTransform((8, elems)), plgpu.SwizzleTransform(SWIZZLE))


def _wgmma(acc_ref, a, b, shadow):
    if shadow:
        # GPU interpret mode (jax 0.11.2) does not feed wgmma operand reads to its race
        # detector; plain reads of the same windows at the same point make it check them.
        # wgmma reads through the async proxy (like TMA): the fence puts the plain reads there.
        a[...], b[...]
        plgpu.commit_smem()
    plgpu.wgmma(acc_ref, a, b)


def _scores(q_s, k_s, rg_s, rt_s, rows, *, n, parts, shadow):
    """`Q K^T + (R G / scale) R^T` for 64 query rows, f32 [64, n] (awaited)."""

    def body(acc_ref):
        _wgmma(acc_ref, q_s.at[rows], k_s.T, shadow)
        for part in range(parts if rg_s is not None else 0):
            _wgmma(acc_ref, rg_s.at[part, rows], rt_s, shadow)  # Eq. 3
        return acc_ref[...]

    return pl.run_scoped(body, plgpu.ACC((ROWS, n), jnp.float32))


def _matmul(a, b, shape, shadow):
    """`a @ b` of two shared-memory operands, f32 (awaited)."""

    def body(acc_ref):
        _wgmma(acc_ref, a, b, shadow)
        return acc_ref[...]

    return pl.run_scoped(body, plgpu.ACC(shape, jnp.float32))


def _softmax_numerator(s, row0, *, scale, causal):
    """exp(scale * s - max) in base 2, f32 [64, n], and the row sums [64]."""
    s = s * (scale * LOG2E)
    if causal:
        shape = s.shape
        row = plgpu.broadcasted_iota(jnp.int32, shape, 0, layout=plgpu.Layout.WGMMA) + row0
        col = plgpu.broadcasted_iota(jnp.int32, shape, 1, layout=plgpu.Layout.WGMMA)
        s = jnp.where(col <= row, s, -jnp.inf)  # The diagonal keeps every row finite.
    p = jnp.exp2(s - lax.broadcast_in_dim(s.max(axis=1), s.shape, [0]))  # Eq. 4
    return p, p.sum(axis=1)


def _row_scale(x, r):
    return x * lax.broadcast_in_dim(r, x.shape, [0])


def _block_attention_fwd_kernel(*refs, n, causal, scale, has_bias, tuning, shadow):
    """q, k, v, o: [blocks, heads, n, d] refs; rg: [heads, parts, n, mp]; rt: [mp, n]."""
    if has_bias:
        q_ref, k_ref, v_ref, rg_ref, rt_ref, o_ref, *scratch = refs
    else:
        (q_ref, k_ref, v_ref, o_ref, *scratch), rg_ref, rt_ref = refs, None, None
    (q_s, k_s, v_s, p_s, rg_s, rt_s, q_rdy, k_rdy, v_rdy, bias_rdy, q_free, k_free, v_free) = (
        scratch
    )
    tiles, stages, parts = tuning.tiles_per_program, tuning.num_stages, tuning.bias_parts
    cwg = n // ROWS
    head, prog, wg = lax.axis_index("head"), lax.axis_index("prog"), lax.axis_index("wg")

    @pl.when(wg == cwg)
    def _producer():
        if cwg > 1:
            plgpu.set_max_registers(24, action="decrease")
        if has_bias:
            for part in range(parts):  # One copy per part: TMA boxes have at most 5 dims.
                plgpu.copy_gmem_to_smem(rg_ref.at[head, part], rg_s.at[part], bias_rdy)
            plgpu.copy_gmem_to_smem(rt_ref, rt_s, bias_rdy)

        @pl.loop(0, tiles)
        def _(i):
            slot, blk, refill = lax.rem(i, stages), prog * tiles + i, i >= stages
            # In the order the compute side releases them: k after QK^T, v after PV, q last.
            pl.when(refill)(lambda: plgpu.barrier_wait(k_free.at[slot]))
            plgpu.copy_gmem_to_smem(k_ref.at[blk, head], k_s.at[slot], k_rdy.at[slot])
            pl.when(refill)(lambda: plgpu.barrier_wait(v_free.at[slot]))
            plgpu.copy_gmem_to_smem(v_ref.at[blk, head], v_s.at[slot], v_rdy.at[slot])
            for w in range(cwg):
                rows = pl.ds(w * ROWS, ROWS)
                pl.when(refill)(functools.partial(plgpu.barrier_wait, q_free.at[slot, w]))
                dst = q_s.at[slot, rows]
                plgpu.copy_gmem_to_smem(q_ref.at[blk, head, rows], dst, q_rdy.at[slot, w])

    def compute(w):
        if cwg > 1:
            plgpu.set_max_registers(240, action="increase")
        rows = pl.ds(w * ROWS, ROWS)
        if has_bias:
            plgpu.barrier_wait(bias_rdy)

        @pl.loop(0, tiles)
        def _(i):
            slot, blk, reuse = lax.rem(i, stages), prog * tiles + i, i + stages < tiles
            plgpu.barrier_wait(q_rdy.at[slot, w])
            plgpu.barrier_wait(k_rdy.at[slot])
            s = _scores(
                q_s.at[slot], k_s.at[slot], rg_s, rt_s, rows, n=n, parts=parts, shadow=shadow
            )
            plgpu.barrier_arrive(k_free.at[slot], predicate=reuse)
            p, l = _softmax_numerator(s, w * ROWS, scale=scale, causal=causal)  # [64, n]
            p_s.at[rows][...] = p.astype(p_s.dtype)
            plgpu.commit_smem()
            plgpu.barrier_wait(v_rdy.at[slot])
            o = _matmul(p_s.at[rows], v_s.at[slot], (ROWS, v_s.shape[-1]), shadow)  # [64, d]
            plgpu.barrier_arrive(v_free.at[slot], predicate=reuse)
            # This warpgroup's q rows are consumed: stage o there.
            q_s.at[slot, rows][...] = _row_scale(o, 1.0 / l).astype(q_s.dtype)
            plgpu.commit_smem()
            plgpu.copy_smem_to_gmem(q_s.at[slot, rows], o_ref.at[blk, head, rows])
            plgpu.wait_smem_to_gmem(0, wait_read_only=True)
            plgpu.barrier_arrive(q_free.at[slot, w], predicate=reuse)

        plgpu.wait_smem_to_gmem(0)

    for w in range(cwg):
        pl.when(wg == w)(functools.partial(compute, w))


def _block_attention_bwd_kernel(*refs, n, causal, scale, has_bias, tuning, shadow):
    """As the forward, plus do in, dq / dk / dv out and dS R partials [heads, programs, n, m8]."""
    if has_bias:
        q_ref, k_ref, v_ref, do_ref, rg_ref, rt_ref, dq_ref, dk_ref, dv_ref, dsr_ref, *scratch = (
            refs
        )
    else:
        q_ref, k_ref, v_ref, do_ref, dq_ref, dk_ref, dv_ref, *scratch = refs
        rg_ref = rt_ref = dsr_ref = None
    (q_s, k_s, v_s, do_s, p_s, rg_s, rt_s, rdy, bias_rdy, free, sync_bar) = scratch
    q_rdy, k_rdy, v_rdy, do_rdy = rdy
    q_free, k_free, v_free, do_free = free
    tiles, stages, parts = tuning.tiles_per_program, tuning.num_stages, tuning.bias_parts
    cwg = n // ROWS
    head, prog, wg = lax.axis_index("head"), lax.axis_index("prog"), lax.axis_index("wg")

    @pl.when(wg == cwg)
    def _producer():
        if cwg > 1:
            plgpu.set_max_registers(24, action="decrease")
        if has_bias:
            for part in range(parts):  # One copy per part: TMA boxes have at most 5 dims.
                plgpu.copy_gmem_to_smem(rg_ref.at[head, part], rg_s.at[part], bias_rdy)
            plgpu.copy_gmem_to_smem(rt_ref, rt_s, bias_rdy)

        @pl.loop(0, tiles)
        def _(i):
            slot, blk, refill = lax.rem(i, stages), prog * tiles + i, i >= stages
            # In the order the compute side releases them: do after dV, q after dK, v and k
            # after the dQ and dK stores.
            for src, dst, ready, freed in (
                (do_ref, do_s, do_rdy, do_free),
                (q_ref, q_s, q_rdy, q_free),
                (k_ref, k_s, k_rdy, k_free),
                (v_ref, v_s, v_rdy, v_free),
            ):
                pl.when(refill)(functools.partial(plgpu.barrier_wait, freed.at[slot]))
                plgpu.copy_gmem_to_smem(src.at[blk, head], dst.at[slot], ready.at[slot])

    def sync():
        """All compute warpgroups reach this point (their shared-memory writes committed)."""
        if cwg > 1:
            plgpu.barrier_arrive(sync_bar)
            plgpu.barrier_wait(sync_bar)

    def tiles_loop(w, dsr_acc):
        rows = pl.ds(w * ROWS, ROWS)  # Query rows, and the key rows of dK / dV, of this wg.
        head_dim = q_s.shape[-1]
        # dS R only needs R's m (rounded up to 8) real columns: a narrower accumulator.
        r_cols = None if dsr_acc is None else rt_s.at[pl.ds(0, dsr_ref.shape[-1])].T

        @pl.loop(0, tiles)
        def _(i):
            slot, blk, reuse = lax.rem(i, stages), prog * tiles + i, i + stages < tiles
            q, k, v, do = (x.at[slot] for x in (q_s, k_s, v_s, do_s))
            plgpu.barrier_wait(q_rdy.at[slot])
            plgpu.barrier_wait(k_rdy.at[slot])
            s = _scores(q, k, rg_s, rt_s, rows, n=n, parts=parts, shadow=shadow)
            p, l = _softmax_numerator(s, w * ROWS, scale=scale, causal=causal)
            p = _row_scale(p, 1.0 / l)  # [64, n] f32
            plgpu.barrier_wait(do_rdy.at[slot])
            plgpu.barrier_wait(v_rdy.at[slot])
            dp = _matmul(do.at[rows], v.T, (ROWS, n), shadow)  # [64, n]
            # d loss / d logits; rowsum(p * dp) == rowsum(do * o), so o is not needed.
            ds = p * (dp - lax.broadcast_in_dim((p * dp).sum(axis=1), dp.shape, [0]))
            p_s.at[rows][...] = p.astype(p_s.dtype)
            plgpu.commit_smem()
            sync()  # P complete; every dP done, so v is free for staging dV.
            dv = _matmul(p_s.at[:, rows].T, do, (ROWS, head_dim), shadow)  # dV = P^T dO
            v.at[rows][...] = dv.astype(v.dtype)
            plgpu.commit_smem()
            plgpu.copy_smem_to_gmem(v.at[rows], dv_ref.at[blk, head, rows])
            sync()  # Every read of P and do is done.
            plgpu.barrier_arrive(do_free.at[slot], predicate=reuse)
            ds_hi = ds.astype(p_s.dtype)
            if dsr_acc is not None:
                # dG sums dS over whole blocks (exactly 0 along a size-1 axis), so it takes dS
                # at ~f32 precision: the 16-bit low part first, through the same rows.
                p_s.at[rows][...] = (ds - ds_hi.astype(jnp.float32)).astype(p_s.dtype)
                plgpu.commit_smem()
                _wgmma(dsr_acc, p_s.at[rows], r_cols, shadow)  # += dS_lo R
                plgpu.wgmma_wait(0)  # Its operand rows are overwritten next.
            p_s.at[rows][...] = ds_hi
            plgpu.commit_smem()
            if dsr_acc is not None:
                _wgmma(dsr_acc, p_s.at[rows], r_cols, shadow)  # += dS_hi R, awaited with dQ
            sync()  # dS complete.
            dq = _matmul(p_s.at[rows], k, (ROWS, head_dim), shadow)  # dQ = dS K
            # v is nobody's operand any more: once dV's store has read these rows, dQ goes
            # there (so dQ and dK never hold registers at the same time).
            plgpu.wait_smem_to_gmem(0, wait_read_only=True)
            v.at[rows][...] = (dq * scale).astype(v.dtype)
            plgpu.commit_smem()
            plgpu.copy_smem_to_gmem(v.at[rows], dq_ref.at[blk, head, rows])
            dk = _matmul(p_s.at[:, rows].T, q, (ROWS, head_dim), shadow)  # dK = dS^T Q
            sync()  # Every read of q, k and dS is done: stage dK in k.
            plgpu.barrier_arrive(q_free.at[slot], predicate=reuse)
            k.at[rows][...] = (dk * scale).astype(k.dtype)
            plgpu.commit_smem()
            plgpu.copy_smem_to_gmem(k.at[rows], dk_ref.at[blk, head, rows])
            plgpu.wait_smem_to_gmem(0, wait_read_only=True)
            for freed in (v_free, k_free):
                plgpu.barrier_arrive(freed.at[slot], predicate=reuse)

    def compute(w):
        if cwg > 1:
            plgpu.set_max_registers(240, action="increase")
        if has_bias:
            plgpu.barrier_wait(bias_rdy)

            def with_acc(dsr_acc):
                tiles_loop(w, dsr_acc)
                return dsr_acc[...]

            dsr = pl.run_scoped(with_acc, plgpu.ACC((ROWS, dsr_ref.shape[-1]), jnp.float32))
            dsr_ref.at[head, prog, pl.ds(w * ROWS, ROWS)][...] = dsr
        else:
            tiles_loop(w, None)
        plgpu.wait_smem_to_gmem(0)

    for w in range(cwg):
        pl.when(wg == w)(functools.partial(compute, w))


def _check_tuning(num_blocks, tuning):
    if num_blocks % tuning.tiles_per_program:
        raise ValueError(
            f"tuning.tiles_per_program={tuning.tiles_per_program} must divide the number of "
            f"blocks {num_blocks}"
        )


def _interpret_params(interpret):
    if interpret is True:
        return plgpu.InterpretGPUParams()
    return interpret or None  # None defers to `plgpu.force_gpu_interpret_mode`.


def _interpreting(interpret) -> bool:
    """Whether the kernel will run in GPU interpret mode (argument or forced by context)."""
    from jax._src import config  # The forced mode has no public accessor in jax 0.11.2.

    return bool(interpret) or config.pallas_tpu_interpret_mode_context_manager.value is not None


def _fwd_call(q, k, v, rg, rt, *, causal, tuning, interpret):
    num_blocks, heads, n, head_dim = q.shape
    _check_tuning(num_blocks, tuning)
    dtype, cwg, stages = q.dtype, n // ROWS, tuning.num_stages
    has_bias = rg is not None
    tiled = _tiled(dtype)
    scratch = [
        plgpu.SMEM((stages, n, head_dim), dtype, transforms=tiled),  # q, then o
        plgpu.SMEM((stages, n, head_dim), dtype, transforms=tiled),  # k
        plgpu.SMEM((stages, n, head_dim), dtype, transforms=tiled),  # v
        plgpu.SMEM((n, n), dtype, transforms=tiled),  # P
        plgpu.SMEM(rg.shape[1:], dtype, transforms=tiled) if has_bias else None,
        plgpu.SMEM(rt.shape, dtype, transforms=tiled) if has_bias else None,
        plgpu.Barrier(num_barriers=(stages, cwg)),
        plgpu.Barrier(num_barriers=stages),
        plgpu.Barrier(num_barriers=stages),
        plgpu.Barrier(num_arrivals=tuning.bias_parts + 1) if has_bias else None,
        plgpu.Barrier(num_barriers=(stages, cwg)),
        plgpu.Barrier(num_arrivals=cwg, num_barriers=stages),
        plgpu.Barrier(num_arrivals=cwg, num_barriers=stages),
    ]
    kernel = functools.partial(
        _block_attention_fwd_kernel,
        n=n,
        causal=causal,
        scale=1.0 / float(np.sqrt(head_dim)),
        has_bias=has_bias,
        tuning=tuning,
        shadow=_interpreting(interpret),
    )
    inputs = (q, k, v, rg, rt) if has_bias else (q, k, v)
    return plgpu.kernel(
        kernel,
        out_type=jax.ShapeDtypeStruct(q.shape, dtype),
        scratch_types=scratch,
        grid=(heads, num_blocks // tuning.tiles_per_program),
        grid_names=("head", "prog"),
        num_threads=cwg + 1,
        thread_name="wg",
        kernel_name="block_attention_fwd",
        compiler_params=plgpu.CompilerParams(approx_math=True),
        interpret=_interpret_params(interpret),
    )(*inputs)


def _bwd_call(q, k, v, do, rg, rt, *, m, causal, tuning, interpret):
    num_blocks, heads, n, head_dim = q.shape
    _check_tuning(num_blocks, tuning)
    dtype, cwg, stages = q.dtype, n // ROWS, tuning.num_stages
    programs = num_blocks // tuning.tiles_per_program
    has_bias = rg is not None
    tiled = _tiled(dtype)
    operand = plgpu.SMEM((stages, n, head_dim), dtype, transforms=tiled)
    scratch = [
        operand,  # q
        operand,  # k, then dk
        operand,  # v, then dv, then dq
        operand,  # do
        plgpu.SMEM((n, n), dtype, transforms=tiled),  # P, then dS
        plgpu.SMEM(rg.shape[1:], dtype, transforms=tiled) if has_bias else None,
        plgpu.SMEM(rt.shape, dtype, transforms=tiled) if has_bias else None,
        [plgpu.Barrier(num_barriers=stages)] * 4,
        plgpu.Barrier(num_arrivals=tuning.bias_parts + 1) if has_bias else None,
        [plgpu.Barrier(num_arrivals=cwg, num_barriers=stages)] * 4,
        plgpu.Barrier(num_arrivals=cwg) if cwg > 1 else None,
    ]
    out_type = [jax.ShapeDtypeStruct(q.shape, dtype)] * 3
    if has_bias:
        m8 = -(-m // 8) * 8
        out_type.append(jax.ShapeDtypeStruct((heads, programs, n, m8), jnp.float32))
    kernel = functools.partial(
        _block_attention_bwd_kernel,
        n=n,
        causal=causal,
        scale=1.0 / float(np.sqrt(head_dim)),
        has_bias=has_bias,
        tuning=tuning,
        shadow=_interpreting(interpret),
    )
    inputs = (q, k, v, do, rg, rt) if has_bias else (q, k, v, do)
    return plgpu.kernel(
        kernel,
        out_type=out_type,
        scratch_types=scratch,
        grid=(heads, programs),
        grid_names=("head", "prog"),
        num_threads=cwg + 1,
        thread_name="wg",
        kernel_name="block_attention_bwd",
        compiler_params=plgpu.CompilerParams(approx_math=True),
        interpret=_interpret_params(interpret),
    )(*inputs)


def _xla_attention(q, k, v, g, *, block_shape, causal):
    """XLA path for problems the kernels do not take, with `B = R G R^T`, f32 inside."""
    video_shape = q.shape[1:4]
    qt, kt, vt = (_tiles_from_video(x, block_shape, jnp.float32) for x in (q, k, v))
    s = jnp.einsum("bnid,bnjd->bnij", qt / np.sqrt(q.shape[-1]), kt)  # [blocks, heads, n, n]
    if g is not None:
        r = jnp.asarray(position_one_hot(block_shape))
        s = s + jnp.einsum("ia,nab,jb->nij", r, g.astype(jnp.float32), r)
    if causal:
        n = s.shape[-1]
        s = jnp.where(np.tril(np.ones((n, n), bool)), s, MASK_VALUE)
    o = jnp.einsum("bnij,bnjd->bnid", jax.nn.softmax(s, axis=-1), vt)
    return _video_from_tiles(o, block_shape, video_shape, q.dtype)


@functools.partial(jax.jit, static_argnames=("block_shape", "causal", "tuning", "interpret"))
def block_attention_fwd_tuned(q, k, v, g, *, block_shape, causal, tuning, interpret=False):
    """`block_attention_fwd` with an explicit `Tuning` (no fallback: the kernel must take it)."""
    block_shape = tuple(block_shape)
    cdt = _compute_dtype(q.dtype)
    qt, kt, vt = (_tiles_from_video(x, block_shape, cdt) for x in (q, k, v))
    rg = rt = None
    if g is not None:
        rg, rt, _ = _bias_operands(g, block_shape, q.shape[-1], cdt, tuning.bias_parts)
    o = _fwd_call(qt, kt, vt, rg, rt, causal=causal, tuning=tuning, interpret=interpret)
    return _video_from_tiles(o, block_shape, q.shape[1:4], q.dtype)


@functools.partial(jax.jit, static_argnames=("block_shape", "causal", "tuning", "interpret"))
def block_attention_bwd_tuned(q, k, v, g, do, *, block_shape, causal, tuning, interpret=False):
    """`block_attention_bwd` with an explicit `Tuning` (no fallback: the kernel must take it)."""
    block_shape = tuple(block_shape)
    video_shape, cdt = q.shape[1:4], _compute_dtype(q.dtype)
    tiles = [_tiles_from_video(x, block_shape, cdt) for x in (q, k, v, do)]
    rg = rt = r = None
    if g is not None:
        rg, rt, r = _bias_operands(g, block_shape, q.shape[-1], cdt, tuning.bias_parts)
    outs = _bwd_call(
        *tiles, rg, rt, m=sum(block_shape), causal=causal, tuning=tuning, interpret=interpret
    )
    dq, dk, dv = (_video_from_tiles(x, block_shape, video_shape, q.dtype) for x in outs[:3])
    dg = None
    if g is not None:
        m = sum(block_shape)
        dsr = jnp.sum(outs[3], axis=1)  # [heads, n, m8]: sum over programs of dS R
        dg = jnp.einsum("ia,hib->hab", r[:, :m], dsr[:, :, :m])  # dG = R^T dS R
    return dq, dk, dv, dg


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
    """Forward kernel: one CTA per (head, run of blocks), 64 query rows per warpgroup.

    Args:
      q: [B, T, H, W, heads, head_dim].
      k: [B, T, H, W, heads, head_dim].
      v: [B, T, H, W, heads, head_dim].
      g: None or f32 [heads, m, m] Toeplitz bias tables (`bias.bias_matrix`).
      block_shape: (t, h, w).
      causal: raster-order causal mask.
      block_sizes: unused (the launch configuration comes from `default_tuning`).
      interpret: True or a `plgpu.InterpretGPUParams` runs the kernel in GPU interpret mode.

    Returns:
      o: [B, T, H, W, heads, head_dim], q's dtype.
    """
    del block_sizes
    block_shape = tuple(block_shape)
    if not kernel_supports(q.shape, q.dtype, block_shape):
        return _xla_attention(q, k, v, g, block_shape=block_shape, causal=causal)
    tuning = default_tuning(q.shape, block_shape, g is not None, backward=False)
    return block_attention_fwd_tuned(
        q, k, v, g, block_shape=block_shape, causal=causal, tuning=tuning, interpret=interpret
    )


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
    """Backward kernel: recomputes each block's softmax, no residuals beyond q, k, v, g.

    Args:
      q, k, v: [B, T, H, W, heads, head_dim] forward inputs.
      g: None or f32 [heads, m, m].
      do: [B, T, H, W, heads, head_dim] output cotangent.
      block_shape, causal, block_sizes, interpret: as in `block_attention_fwd`.

    Returns:
      (dq, dk, dv) like q, and dg (f32 [heads, m, m], or None without bias).
    """
    del block_sizes
    block_shape = tuple(block_shape)
    if not kernel_supports(q.shape, q.dtype, block_shape):
        fn = functools.partial(_xla_attention, block_shape=block_shape, causal=causal)
        if g is None:
            _, vjp = jax.vjp(lambda q, k, v: fn(q, k, v, None), q, k, v)
            return (*vjp(do), None)
        _, vjp = jax.vjp(fn, q, k, v, g)
        return vjp(do)
    tuning = default_tuning(q.shape, block_shape, g is not None, backward=True)
    return block_attention_bwd_tuned(
        q, k, v, g, do, block_shape=block_shape, causal=causal, tuning=tuning, interpret=interpret
    )
