"""Mosaic GPU (Hopper, sm_90a) kernels for pixelwise and factorized warping, forward and backward.

Layout. `h` [B, H, W, C] is viewed as [B, H*W, C] (a free reshape): a band of `block_h` rows is
a contiguous run of P = block_h * W pixels, and tap (dy, dx) of Eq. 11 is that run shifted by
dy * W + dx pixels. One CTA (one warpgroup) takes one sample and one band. TMA copies the band
plus `seg` pixels above and below it (the r halo rows and a little slack) into a
[seg + P + seg, block_c] SMEM buffer; every tap is then a [P, block_c] window read from SMEM at
a static offset into registers (WGMMA layout: pixels on rows, channels on columns), scaled by
its per-pixel weight (a [P] row vector broadcast over the channels) and accumulated in f32;
the result goes back by TMA. At the image edge the halo copy is clamped to real rows, and the
taps that leave the image (rows above or below, or the wrap-around from one row to the next
that the flattening introduces) get weight zero, so Eq. 11's zero padding costs no padded copy
of h. (A non-finite h value next to a border can therefore leak in as 0 * inf = NaN.)

The per-pixel weights are used pixel-minor: the wrappers transpose `weights` (or `selection`)
to [B, k*k (or N), H*W] float32, zero-padded by `seg` pixels at both ends for the backward.
That small XLA op adds 2-12% to the forward's HBM traffic at the real shapes, and is needed
because Mosaic GPU cannot load a strided column of a [P, k*k] SMEM tile: `pl.ds(q, P,
stride=k*k)` fails with "Strided slices not implemented" and `ref.reshape(P, k*k).at[:, q]`
with "We cannot apply swizzle to non-contiguous refs". The factorized kernels form
W_q = sum_l S_l w[q, l] (Eq. 12) in registers from N such rows and the k*k*N basis scalars
(read from HBM), so the [B, H, W, k*k] tensor never reaches HBM.

Backward: a CTA per sample, band and channel group loops over the group's channel blocks with
double-buffered TMA: dh[p] = sum_q W_q[p - o_q] g[p - o_q] (shifted weight rows, shifted g
windows) and dW_q[p] = sum_c g[p, c] h[p + o_q, c] (a row reduction, summed over channel blocks
in registers). The factorized form then gives dS_l = sum_q dW_q w[q, l] and per-band partial
sums dk[q, l] = sum_p dW_q[p] S_l[p]. XLA adds the channel groups' and bands' partial sums.
Tile sizes are untuned: no GPU was at hand to time them.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import mosaic_gpu as plgpu

from warp_ops.reference import tap_offsets

# Opt-in shared memory per block on sm_90 is 227 KiB; leave room for Mosaic GPU's own scratch
# (reductions) and barriers.
_SMEM_BUDGET = 200 * 1024
# Elements of the [P, block_c] f32 accumulator of one warpgroup (128 threads): 8192 is 64
# registers per thread. The backward keeps two such tiles and 2 k*k row vectors live, and bf16
# windows cost ptxas more registers (a bf16 forward at 8192 used 255 and spilled 4-48 bytes),
# so both take 4096.
_FWD_TILE_ELEMENTS = 8192
_BWD_TILE_ELEMENTS = 4096
# Pixels per band: rows of the WGMMA register layout come in multiples of 64, and TMA boxes
# hold at most 256 rows.
_ROW_TILE = 64
_NUM_SMS = 132  # H100 / H200
_MAX_PIXELS = 256
_TMA_ROWS = 256
_ROW = plgpu.Layout.WGMMA.reduce(1)  # a [P] vector, one value per pixel row of a WGMMA tile
_TILE = plgpu.Layout.WGMMA


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Band and channel tiling of one warp call.

    Attributes:
      height, width, channels: H, W, C of h.
      kernel_size: odd k.
      block_h: rows per band (P = block_h * W pixels, a multiple of 64).
      block_c: channels per tile (a multiple of 8 dividing C).
      channel_groups: backward only: CTAs that split a band's channel blocks between them
        (each loops over its share and writes partial dweights / dselection / dkernels).
    """

    height: int
    width: int
    channels: int
    kernel_size: int
    block_h: int
    block_c: int
    channel_groups: int = 1

    @property
    def r(self) -> int:
        return (self.kernel_size - 1) // 2

    @property
    def taps(self) -> int:
        return self.kernel_size * self.kernel_size

    @property
    def pixels(self) -> int:
        return self.block_h * self.width

    @property
    def num_bands(self) -> int:
        return self.height // self.block_h

    @property
    def num_cblocks(self) -> int:
        return self.channels // self.block_c

    @property
    def blocks_per_group(self) -> int:
        return self.num_cblocks // self.channel_groups

    @property
    def seg(self) -> int:
        """Pixels copied above and below a band: r rows + r of slack, rounded up to 16.

        16 keeps every TMA transfer a multiple of 128 bytes and every SMEM offset aligned.
        """
        return -(-(self.r * self.width + self.r) // 16) * 16

    @property
    def length(self) -> int:
        return self.pixels + 2 * self.seg

    def smem_bytes(self, itemsize: int, n_rows: int, backward: bool) -> int:
        """SMEM the kernel asks for (without Mosaic GPU's own scratch)."""
        tile = self.pixels * self.block_c * itemsize
        band = self.length * self.block_c * itemsize
        if backward:  # h, g double-buffered; dh staging; rows and W_q with halo; dW rows; dk
            rows = (n_rows + self.taps) * (self.length + self.pixels)
            return 4 * band + tile + rows * 4 + 512
        return band + tile + n_rows * self.pixels * 4

    def check(self) -> None:
        """Raises ValueError unless the kernels can run this geometry."""
        h, w, c, p = self.height, self.width, self.channels, self.pixels
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size={self.kernel_size} must be odd")
        if h % self.block_h:
            raise ValueError(f"block_h={self.block_h} must divide H={h}")
        if p % _ROW_TILE or p > _MAX_PIXELS:
            raise ValueError(
                f"block_h * W = {p} pixels per band must be a multiple of {_ROW_TILE} and at "
                f"most {_MAX_PIXELS}"
            )
        if c % self.block_c or self.block_c % 8:
            raise ValueError(f"block_c={self.block_c} must be a multiple of 8 dividing C={c}")
        if self.num_cblocks % self.channel_groups:
            raise ValueError(
                f"channel_groups={self.channel_groups} must divide the {self.num_cblocks} "
                "channel blocks"
            )
        if h * w < self.seg or (self.num_bands > 1 and p < self.seg):
            raise ValueError(
                f"a band of {p} pixels in an image of {h * w} cannot hold the {self.seg}-pixel "
                "halo segment its neighbours copy"
            )


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def pick_geometry(
    h_shape, dtype, kernel_size: int, *, backward: bool, n_rows: int | None = None
) -> Geometry | None:
    """The default tiling (untuned: chosen without a GPU to time it).

    About 128 pixels per band and the widest channel block (of at least 64 bytes per pixel)
    that still gives every SM a CTA. The backward then splits a band's channel blocks between
    as few CTAs as fill the SMs (each loops over its share).

    Args:
      h_shape: [B, H, W, C].
      dtype: h's dtype.
      kernel_size: odd k.
      backward: tile for the backward kernel (smaller register and larger SMEM footprint).
      n_rows: pixel-minor rows the kernel copies (k*k, or N for the factorized form).

    Returns:
      A valid `Geometry`, or None when no tiling fits.
    """
    batch, height, width, channels = h_shape
    itemsize = jnp.dtype(dtype).itemsize
    n_rows = kernel_size * kernel_size if n_rows is None else n_rows
    limit = _BWD_TILE_ELEMENTS if backward or itemsize < 4 else _FWD_TILE_ELEMENTS
    bands = [d for d in _divisors(height) if (d * width) % _ROW_TILE == 0]
    bands = [d for d in bands if d * width <= _MAX_PIXELS]
    # Prefer 128 pixels (halo overhead (P + 2 seg) / P), then fewer pixels over more.
    bands.sort(key=lambda d: (abs(d * width - 128), d))
    for block_h in bands:
        fitting = []
        for block_c in sorted(_divisors(channels), reverse=True):
            geo = Geometry(height, width, channels, kernel_size, block_h, block_c)
            try:
                geo.check()
            except ValueError:
                continue
            if geo.pixels * block_c > limit:
                continue
            if geo.smem_bytes(itemsize, n_rows, backward) <= _SMEM_BUDGET:
                fitting.append(geo)
        if not fitting:
            continue
        wide = [g for g in fitting if g.block_c * itemsize >= 64] or fitting
        full = [g for g in wide if batch * g.num_bands * g.num_cblocks >= _NUM_SMS]
        geo = full[0] if full else wide[-1]
        if backward:  # as few CTAs per band as fill the SMs: less partial-sum traffic
            ctas = batch * geo.num_bands
            groups = [g for g in _divisors(geo.num_cblocks) if ctas * g >= _NUM_SMS]
            geo = dataclasses.replace(geo, channel_groups=min(groups, default=geo.num_cblocks))
        return geo
    return None


def kernel_supports(h_shape, dtype, kernel_size: int) -> bool:
    """Whether the Mosaic GPU kernels take h of this shape and dtype (forward and backward)."""
    if jnp.dtype(dtype) not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16)):
        return False
    if len(h_shape) != 4 or kernel_size % 2 == 0 or kernel_size < 1:
        return False
    return all(
        pick_geometry(h_shape, dtype, kernel_size, backward=bwd) is not None
        for bwd in (False, True)
    )


def _interpret_params(interpret):
    """`interpret=True` means GPU interpret mode (the generic Pallas interpreter has no MGPU)."""
    if interpret is True:
        return plgpu.InterpretGPUParams()
    return interpret or None


def _pixel_minor(x: jax.Array, pad: int) -> jax.Array:
    """[B, H, W, X] -> [B, X, pad + H*W + pad] float32 (zero padding)."""
    b, height, width, depth = x.shape
    xt = jnp.swapaxes(x.reshape(b, height * width, depth), 1, 2).astype(jnp.float32)
    return jnp.pad(xt, ((0, 0), (0, 0), (pad, pad))) if pad else xt


# ----------------------------------------------------------------------------- in-kernel parts


def _copy_rows(src, dst, barrier, start, n: int) -> None:
    """TMA of `n` rows of src (from `start`) into dst[:n], in boxes of at most 256 rows."""
    for off in range(0, n, _TMA_ROWS):
        m = min(_TMA_ROWS, n - off)
        plgpu.copy_gmem_to_smem(src.at[pl.ds(start + off, m)], dst.at[pl.ds(off, m)], barrier)


def _copy_band(x_ref, dst, barrier, b, t, c, geo: Geometry) -> None:
    """Copies a band of x [B, H*W, C] and its halo segments into dst [seg + P + seg, block_c].

    At the image edge a segment comes from the nearest real rows (masked by the caller).
    Issues `_band_copies(geo)` TMA copies on `barrier`.
    """
    seg, p, hw = geo.seg, geo.pixels, geo.height * geo.width
    src = x_ref.at[b, :, pl.ds(c * geo.block_c, geo.block_c)]
    top = jnp.where(t == 0, 0, t * p - seg)
    bottom = jnp.where(t == geo.num_bands - 1, hw - seg, (t + 1) * p)
    _copy_rows(src, dst, barrier, top, seg)
    _copy_rows(src, dst.at[pl.ds(seg, p)], barrier, t * p, p)
    _copy_rows(src, dst.at[pl.ds(seg + p, seg)], barrier, bottom, seg)


def _band_copies(geo: Geometry) -> int:
    return 2 * pl.cdiv(geo.seg, _TMA_ROWS) + pl.cdiv(geo.pixels, _TMA_ROWS)


def _tap_masks(t, geo: Geometry, sign: int) -> list[jax.Array]:
    """[P] f32 masks: 1 where pixel p + sign * (dy, dx) lies inside the image, per tap."""
    p = plgpu.broadcasted_iota(jnp.int32, (geo.pixels,), 0, layout=_ROW)
    row = t * geo.block_h + p // geo.width
    col = p % geo.width
    masks = []
    for dy, dx in tap_offsets(geo.kernel_size):
        dy, dx = sign * dy, sign * dx
        ok = None
        for cond, needed in (
            (row + dy >= 0, dy < 0),
            (row + dy < geo.height, dy > 0),
            (col + dx >= 0, dx < 0),
            (col + dx < geo.width, dx > 0),
        ):
            if needed:
                ok = cond if ok is None else ok & cond
        ones = jnp.ones((geo.pixels,), jnp.float32)
        masks.append(ones if ok is None else jnp.where(ok, ones, 0.0))
    return masks


def _row(x_smem, i, start, geo: Geometry) -> jax.Array:
    """Pixels [start, start + P) of row i of a pixel-minor SMEM buffer: [P] f32."""
    return plgpu.load(x_smem.at[i, pl.ds(start, geo.pixels)], layout=_ROW)


def _combine_basis(s_rows, kernels_ref, b, q) -> jax.Array:
    """Eq. 12 for tap q (static or traced): sum_l S_l w[b, q, l] over [P] rows S_l."""
    acc = s_rows[0] * kernels_ref[b, q, 0].astype(jnp.float32)
    for l in range(1, len(s_rows)):
        acc = acc + s_rows[l] * kernels_ref[b, q, l].astype(jnp.float32)
    return acc


def _combine_into(w_smem, start: int, s_rows, kernels_ref, b, geo: Geometry) -> None:
    """w_smem[q, start:start + P] = W_q for every tap q (a loop, not unrolled)."""

    @pl.loop(0, geo.taps)
    def _tap(q):
        w_smem[q, pl.ds(start, geo.pixels)] = _combine_basis(s_rows, kernels_ref, b, q)


def _window(x_smem, start: int, geo: Geometry) -> jax.Array:
    """[P, block_c] f32 window of a band buffer, from row `start`."""
    return plgpu.load(x_smem.at[pl.ds(start, geo.pixels)], layout=_TILE).astype(jnp.float32)


def _bcast(v: jax.Array, geo: Geometry) -> jax.Array:
    return lax.broadcast_in_dim(v, (geo.pixels, geo.block_c), (0,))


# ----------------------------------------------------------------------------- kernels


def _warp_fwd_kernel(h_ref, p_ref, *refs, geo: Geometry, factorized: bool):
    if factorized:
        kernels_ref, o_ref, h_smem, p_smem, o_smem, h_barrier, p_barrier = refs
    else:
        o_ref, h_smem, p_smem, o_smem, h_barrier, p_barrier = refs
    b, t, c = lax.axis_index("b"), lax.axis_index("t"), lax.axis_index("c")
    p, seg, width = geo.pixels, geo.seg, geo.width
    _copy_band(h_ref, h_smem, h_barrier, b, t, c, geo)
    for i in range(p_smem.shape[0]):
        plgpu.copy_gmem_to_smem(p_ref.at[b, i, pl.ds(t * p, p)], p_smem.at[i], p_barrier)
    masks = _tap_masks(t, geo, sign=1)
    plgpu.barrier_wait(p_barrier)
    rows = [_row(p_smem, i, 0, geo) for i in range(p_smem.shape[0])]
    if factorized:
        rows = [_combine_basis(rows, kernels_ref, b, q) for q in range(geo.taps)]
    plgpu.barrier_wait(h_barrier)
    acc = plgpu.layout_cast(jnp.zeros((p, geo.block_c), jnp.float32), _TILE)
    for q, (dy, dx) in enumerate(tap_offsets(geo.kernel_size)):
        x = _window(h_smem, seg + dy * width + dx, geo)
        acc = acc + _bcast(rows[q] * masks[q], geo) * x  # Eq. 11
    o_smem[...] = acc.astype(o_smem.dtype)
    plgpu.commit_smem()
    plgpu.copy_smem_to_gmem(
        o_smem, o_ref.at[b, pl.ds(t * p, p), pl.ds(c * geo.block_c, geo.block_c)]
    )
    plgpu.wait_smem_to_gmem(0)


def _warp_bwd_kernel(h_ref, g_ref, p_ref, *refs, geo: Geometry, factorized: bool):
    if factorized:
        kernels_ref, dh_ref, dp_ref, dk_ref, *scratch = refs
    else:
        dh_ref, dp_ref, *scratch = refs
    h_smem, g_smem, dh_smem, p_smem, dp_smem, *extra, in_barrier, p_barrier = scratch
    b, t, group = lax.axis_index("b"), lax.axis_index("t"), lax.axis_index("g")
    p, seg, width, bc = geo.pixels, geo.seg, geo.width, geo.block_c
    first = group * geo.blocks_per_group  # this CTA's channel blocks
    offsets = tap_offsets(geo.kernel_size)
    n_rows = p_smem.shape[0]

    def fetch(c, slot):
        _copy_band(h_ref, h_smem.at[slot], in_barrier.at[slot], b, t, c, geo)
        _copy_band(g_ref, g_smem.at[slot], in_barrier.at[slot], b, t, c, geo)

    # Rows of the padded [B, X, seg + H*W + seg] operand: pixel t*P + i sits at seg + i.
    for i in range(n_rows):
        plgpu.copy_gmem_to_smem(p_ref.at[b, i, pl.ds(t * p, geo.length)], p_smem.at[i], p_barrier)
    fetch(first, 0)
    source_masks = _tap_masks(t, geo, sign=-1)
    plgpu.barrier_wait(p_barrier)
    if factorized:
        # Eq. 12 once over the band and its halo, into SMEM: [k*k, seg + P + seg] f32, in
        # P-pixel pieces (the last one overlapping), so every shifted read below is one load.
        # Loops over taps and basis kernels, not unrolled: unrolled, Mosaic GPU's layout
        # inference took 6-12 s to lower this kernel (now ~2 s).
        w_smem, dw_smem, dk_smem = extra
        for start in sorted({*range(0, geo.length - p, p), geo.length - p}):
            s_rows = [_row(p_smem, l, start, geo) for l in range(n_rows)]
            _combine_into(w_smem, start, s_rows, kernels_ref, b, geo)
    else:
        w_smem = p_smem
    # W_q at the source pixel p - o_q of each tap, zero where that pixel leaves the image.
    shifted = [
        _row(w_smem, q, seg - dy * width - dx, geo) * source_masks[q]
        for q, (dy, dx) in enumerate(offsets)
    ]

    def channel_block(i, dw):
        c, slot = first + i, i % 2

        @pl.when(i + 1 < geo.blocks_per_group)
        def _prefetch():
            fetch(c + 1, 1 - slot)

        plgpu.barrier_wait(in_barrier.at[slot])
        h_buf, g_buf = h_smem.at[slot], g_smem.at[slot]
        g_mid = _window(g_buf, seg, geo)
        dh = plgpu.layout_cast(jnp.zeros((p, bc), jnp.float32), _TILE)
        dw = list(dw)
        for q, (dy, dx) in enumerate(offsets):
            dw[q] = dw[q] + jnp.sum(g_mid * _window(h_buf, seg + dy * width + dx, geo), axis=1)
            dh = dh + _bcast(shifted[q], geo) * _window(g_buf, seg - dy * width - dx, geo)
        plgpu.wait_smem_to_gmem(0, wait_read_only=True)  # the previous block's dh has left
        dh_smem[...] = dh.astype(dh_smem.dtype)
        plgpu.commit_smem()
        plgpu.copy_smem_to_gmem(dh_smem, dh_ref.at[b, pl.ds(t * p, p), pl.ds(c * bc, bc)])
        return tuple(dw)

    zero = plgpu.layout_cast(jnp.zeros((p,), jnp.float32), _ROW)
    dw = lax.fori_loop(0, geo.blocks_per_group, channel_block, (zero,) * geo.taps)
    target_masks = _tap_masks(t, geo, sign=1)
    dw = [d * m for d, m in zip(dw, target_masks, strict=True)]  # taps leaving the image
    if factorized:
        for q in range(geo.taps):
            dw_smem[q] = dw[q]

        @pl.loop(0, n_rows)
        def _selection_and_basis_grads(l):
            dw_rows = [_row(dw_smem, q, 0, geo) for q in range(geo.taps)]
            w_l = [kernels_ref[b, q, l].astype(jnp.float32) for q in range(geo.taps)]
            dp_smem[l] = sum(d * w for d, w in zip(dw_rows[1:], w_l[1:])) + dw_rows[0] * w_l[0]
            s_l = _row(p_smem, l, seg, geo)
            for q in range(geo.taps):
                dk_smem[q * n_rows + l] = jnp.sum(dw_rows[q] * s_l)  # this band's part of dk

        for i in range(geo.taps * n_rows, dk_smem.shape[0]):
            dk_smem[i] = jnp.float32(0.0)
    else:
        for q in range(geo.taps):
            dp_smem[q] = dw[q]
    plgpu.commit_smem()
    for i in range(n_rows):
        plgpu.copy_smem_to_gmem(dp_smem.at[i], dp_ref.at[b, group, i, pl.ds(t * p, p)])
    if factorized:
        plgpu.copy_smem_to_gmem(dk_smem, dk_ref.at[b, group, t])
    plgpu.wait_smem_to_gmem(0)


# ----------------------------------------------------------------------------- builders


def _geometry(h, n_rows, kernel_size, block_h, block_c, channel_groups, backward) -> Geometry:
    _, height, width, channels = h.shape
    default = pick_geometry(h.shape, h.dtype, kernel_size, backward=backward, n_rows=n_rows)
    if default is None and (block_h is None or block_c is None):
        raise ValueError(
            f"no Mosaic GPU tiling for h.shape={h.shape} ({h.dtype}), k={kernel_size}: see "
            "kernel_supports"
        )
    block_h = block_h or default.block_h
    block_c = block_c or default.block_c
    if channel_groups is None:
        same = default is not None and (block_h, block_c) == (default.block_h, default.block_c)
        channel_groups = default.channel_groups if same else 1
    geo = Geometry(height, width, channels, kernel_size, block_h, block_c, channel_groups)
    geo.check()
    return geo


def warp_fwd(
    h: jax.Array,
    weights: jax.Array | None = None,
    kernels: jax.Array | None = None,
    selection: jax.Array | None = None,
    *,
    kernel_size: int,
    interpret=False,
    block_h: int | None = None,
    block_c: int | None = None,
) -> jax.Array:
    """Forward warp; pass `weights` (pixelwise) or `kernels` and `selection` (factorized).

    Args:
      h: [B, H, W, C] features.
      weights: [B, H, W, k*k] per-pixel kernels (pixelwise form).
      kernels: [B, k*k, N] basis and selection: [B, H, W, N] (factorized form).
      kernel_size: odd k.
      interpret: True (or `plgpu.InterpretGPUParams`) runs GPU interpret mode.
      block_h: rows per band; block_c: channels per CTA (default from `pick_geometry`).

    Returns:
      [B, H, W, C] in h.dtype.
    """
    batch, height, width, channels = h.shape
    factorized = weights is None
    p = selection if factorized else weights
    n_rows = p.shape[-1]
    geo = _geometry(h, n_rows, kernel_size, block_h, block_c, None, backward=False)
    args = [h.reshape(batch, height * width, channels), _pixel_minor(p, 0)]
    if factorized:
        args.append(kernels)
    kernel = functools.partial(_warp_fwd_kernel, geo=geo, factorized=factorized)
    out = plgpu.kernel(
        kernel,
        out_type=jax.ShapeDtypeStruct(args[0].shape, h.dtype),
        grid=(geo.num_cblocks, geo.num_bands, batch),
        grid_names=("c", "t", "b"),
        scratch_types=[
            plgpu.SMEM((geo.length, geo.block_c), h.dtype),
            plgpu.SMEM((n_rows, geo.pixels), jnp.float32),
            plgpu.SMEM((geo.pixels, geo.block_c), h.dtype),
            plgpu.Barrier(num_arrivals=_band_copies(geo)),
            plgpu.Barrier(num_arrivals=n_rows),
        ],
        interpret=_interpret_params(interpret),
        kernel_name="factorized_warp_fwd_mgpu" if factorized else "pixelwise_warp_fwd_mgpu",
    )(*args)
    return out.reshape(h.shape)


def warp_bwd(
    h: jax.Array,
    g: jax.Array,
    weights: jax.Array | None = None,
    kernels: jax.Array | None = None,
    selection: jax.Array | None = None,
    *,
    kernel_size: int,
    interpret=False,
    block_h: int | None = None,
    block_c: int | None = None,
    channel_groups: int | None = None,
):
    """Backward warp in one pass over h and g per band; same arguments as `warp_fwd` plus g.

    `channel_groups` CTAs share each band's channel blocks (default from `pick_geometry`).

    Returns:
      (dh, dweights) for the pixelwise form, (dh, dkernels, dselection) for the factorized one,
      each in its primal's dtype.
    """
    batch, height, width, channels = h.shape
    factorized = weights is None
    p = selection if factorized else weights
    n_rows = p.shape[-1]
    geo = _geometry(h, n_rows, kernel_size, block_h, block_c, channel_groups, backward=True)
    flat = (batch, height * width, channels)
    args = [h.reshape(flat), g.reshape(flat), _pixel_minor(p, geo.seg)]
    out_type = [
        jax.ShapeDtypeStruct(flat, h.dtype),
        jax.ShapeDtypeStruct((batch, geo.channel_groups, n_rows, height * width), jnp.float32),
    ]
    band = plgpu.SMEM((2, geo.length, geo.block_c), h.dtype)
    scratch = [
        band,
        band,
        plgpu.SMEM((geo.pixels, geo.block_c), h.dtype),
        plgpu.SMEM((n_rows, geo.length), jnp.float32),
        plgpu.SMEM((n_rows, geo.pixels), jnp.float32),
    ]
    if factorized:
        args.append(kernels)
        dk_len = -(-geo.taps * n_rows // 32) * 32  # TMA moves multiples of 128 bytes
        dk_shape = (batch, geo.channel_groups, geo.num_bands, dk_len)
        out_type.append(jax.ShapeDtypeStruct(dk_shape, jnp.float32))
        scratch.append(plgpu.SMEM((geo.taps, geo.length), jnp.float32))
        scratch.append(plgpu.SMEM((geo.taps, geo.pixels), jnp.float32))
        scratch.append(plgpu.SMEM((dk_len,), jnp.float32))
    scratch += [
        plgpu.Barrier(num_arrivals=2 * _band_copies(geo), num_barriers=2),
        plgpu.Barrier(num_arrivals=n_rows),
    ]
    kernel = functools.partial(_warp_bwd_kernel, geo=geo, factorized=factorized)
    outs = plgpu.kernel(
        kernel,
        out_type=out_type,
        grid=(geo.channel_groups, geo.num_bands, batch),
        grid_names=("g", "t", "b"),
        scratch_types=scratch,
        interpret=_interpret_params(interpret),
        kernel_name="factorized_warp_bwd_mgpu" if factorized else "pixelwise_warp_bwd_mgpu",
    )(*args)
    dh = outs[0].reshape(h.shape)
    dp = jnp.swapaxes(jnp.sum(outs[1], axis=1), 1, 2).reshape(p.shape).astype(p.dtype)
    if factorized:
        taps = kernels.shape[1]
        dk = jnp.sum(outs[2], axis=(1, 2))[:, : taps * n_rows].reshape(kernels.shape)
        return dh, dk.astype(kernels.dtype), dp
    return dh, dp
