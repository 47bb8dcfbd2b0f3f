"""Spatiotemporal subscaling: a video as an ordered sequence of strided slices (VT section 3.2)."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence

import einshape
import jax
import jax.numpy as jnp
import numpy as np

Factor = tuple[int, int, int]


def _check_factor(factor: Sequence[int], name: str = "factor") -> Factor:
    """Returns `factor` as a tuple of three positive ints, or raises."""
    try:
        values = tuple(int(f) for f in factor)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of three ints (st, sh, sw), got {factor!r}")
    if len(values) != 3 or any(v != f for v, f in zip(values, factor)):
        raise ValueError(f"{name} must be three ints (st, sh, sw), got {factor!r}")
    if any(v < 1 for v in values):
        raise ValueError(f"{name} entries must be >= 1, got {factor!r}")
    return values  # type: ignore[return-value]


def _check_video(x, factor: Factor, name: str = "x") -> None:
    """Raises unless `x` is `[B, T, H, W, C]` with `(T, H, W)` divisible by `factor`."""
    if x.ndim != 5:
        raise ValueError(f"{name} must have rank 5 [B, T, H, W, C], got shape {tuple(x.shape)}")
    thw = tuple(x.shape[1:4])
    if any(d % f for d, f in zip(thw, factor)):
        raise ValueError(
            f"factor={factor} must divide the video's (T, H, W)={thw} of {name} "
            f"with shape {tuple(x.shape)}"
        )


def num_slices(factor: Sequence[int]) -> int:
    """`S = st * sh * sw`, the number of slices a subscale factor produces."""
    st, sh, sw = _check_factor(factor)
    return st * sh * sw


def slice_order(factor: Sequence[int]) -> list[Factor]:
    """The generation order of slice offsets: raster order `(0,0,0), (0,0,1), ...`.

    Args:
      factor: the subscale factor `(st, sh, sw)`.

    Returns:
      `S` offsets `(a, b, c)`; slice `(a, b, c)` is `x[:, a::st, b::sh, c::sw]`.
    """
    st, sh, sw = _check_factor(factor)
    return list(itertools.product(range(st), range(sh), range(sw)))


def slice_index(offset: Sequence[int], factor: Sequence[int]) -> int:
    """The generation index of slice `offset = (a, b, c)`; inverse of `slice_order`."""
    st, sh, sw = _check_factor(factor)
    a, b, c = _check_offset(offset, (st, sh, sw))
    return (a * sh + b) * sw + c


def _check_offset(offset: Sequence[int], factor: Factor) -> Factor:
    try:
        values = tuple(int(o) for o in offset)
    except TypeError:
        raise TypeError(f"offset must be three ints (a, b, c), got {offset!r}")
    if len(values) != 3:
        raise ValueError(f"offset must be three ints (a, b, c), got {offset!r}")
    if any(not 0 <= o < f for o, f in zip(values, factor)):
        raise ValueError(
            f"offset={values} out of range: each entry must satisfy 0 <= offset_i < factor_i "
            f"with factor={factor}"
        )
    return values  # type: ignore[return-value]


@functools.partial(jax.jit, static_argnames="factor")
def _to_slices(x, factor):
    st, sh, sw = factor
    # T = (T/st) * st with the offset `a` fastest, so x[:, a::st] is the `p = a` row.
    return einshape.jax_einshape("n(tp)(hq)(wr)c->n(pqr)thwc", x, p=st, q=sh, r=sw)


@functools.partial(jax.jit, static_argnames="factor")
def _from_slices(slices, factor):
    st, sh, sw = factor
    return einshape.jax_einshape("n(pqr)thwc->n(tp)(hq)(wr)c", slices, p=st, q=sh, r=sw)


def to_slices(x: jax.Array, factor: Sequence[int]) -> jax.Array:
    """Splits a video into its subscale slices, in generation order.

    Args:
      x: `[B, T, H, W, C]` video, any dtype.
      factor: `(st, sh, sw)` dividing `(T, H, W)` (static under jit).

    Returns:
      `[B, S, T/st, H/sh, W/sw, C]`; entry `s` is `x[:, a::st, b::sh, c::sw]` for
      `(a, b, c) = slice_order(factor)[s]`.
    """
    factor = _check_factor(factor)
    _check_video(x, factor)
    return _to_slices(x, factor)


def from_slices(slices: jax.Array, factor: Sequence[int]) -> jax.Array:
    """Reassembles a video from its slices; the exact inverse of `to_slices`.

    Args:
      slices: `[B, S, T/st, H/sh, W/sw, C]` in generation order.
      factor: `(st, sh, sw)` with `S = st * sh * sw`.

    Returns:
      `[B, T, H, W, C]`.
    """
    factor = _check_factor(factor)
    if slices.ndim != 6:
        raise ValueError(
            f"slices must have rank 6 [B, S, T/st, H/sh, W/sw, C], got shape {tuple(slices.shape)}"
        )
    s = num_slices(factor)
    if slices.shape[1] != s:
        raise ValueError(
            f"slices.shape[1] must equal S = st*sh*sw = {s} for factor={factor}, "
            f"got {slices.shape[1]} (shape {tuple(slices.shape)})"
        )
    return _from_slices(slices, factor)


def slice_index_map(shape_thw: Sequence[int], factor: Sequence[int]) -> np.ndarray:
    """`[T, H, W]` int32 map: the generation index of the slice each pixel belongs to."""
    st, sh, sw = _check_factor(factor)
    t, h, w = (np.arange(n) for n in shape_thw)
    return (
        ((t[:, None, None] % st) * sh + (h[None, :, None] % sh)) * sw + (w[None, None, :] % sw)
    ).astype(np.int32)


def mask_preceding(
    x: jax.Array, factor: Sequence[int], index: int | jax.Array
) -> tuple[jax.Array, jax.Array]:
    """The slice encoder's partially masked video: only slices before `index` stay visible.

    Args:
      x: `[B, T, H, W, C]` video.
      factor: `(st, sh, sw)` dividing `(T, H, W)` (static).
      index: generation index of the current slice, `0 <= index < S`. A Python int is
        validated; a traced int array (a scalar, or `[B]` for one slice per batch element, as
        when training on slices shuffled across videos) is used as given.

    Returns:
      `(masked_x, visible)`: `x` with every pixel of slice `>= index` zeroed, and the
      `[B, T, H, W, 1]` boolean visibility mask.
    """
    factor = _check_factor(factor)
    _check_video(x, factor)
    s = num_slices(factor)
    if isinstance(index, (int, np.integer)):
        if not 0 <= int(index) < s:
            raise ValueError(f"index must satisfy 0 <= index < S={s} for {factor=}, got {index}")
        index = jnp.asarray(int(index), jnp.int32)
    else:
        index = jnp.asarray(index)
        if not jnp.issubdtype(index.dtype, jnp.integer):
            raise TypeError(f"index must be an integer, got dtype {index.dtype}")
        if index.ndim > 1 or (index.ndim == 1 and index.shape[0] != x.shape[0]):
            raise ValueError(
                f"index must be a scalar or have shape [B]=[{x.shape[0]}], got {index.shape}"
            )
    order = jnp.asarray(slice_index_map(x.shape[1:4], factor))  # [T, H, W]
    index = jnp.reshape(index, (-1, 1, 1, 1))  # [B or 1, 1, 1, 1]
    visible = jnp.broadcast_to((order[None] < index)[..., None], (*x.shape[:4], 1))
    return jnp.where(visible, x, jnp.zeros((), x.dtype)), visible


def encoder_padding(
    kernel: Sequence[int], factor: Sequence[int], offset: Sequence[int]
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """Padding of the slice encoder's strided 3D context convolution for slice `offset`.

    The convolution has kernel `k` and stride `s = factor`. Output position `p` of an axis reads
    input positions `p*s - lo + [0, k)`; putting the kernel's centre tap `floor(k/2)` on the
    current slice's pixel `p*s + a` gives (paper section 3.2)

        lo = floor(k / 2) - a

    and asking for exactly `N/s` outputs on an axis of length `N`,
    `(N + lo + hi - k) / s + 1 = N/s`, gives

        hi = k - s - lo

    independent of `N`. Either may be negative (the input is then cropped), which
    `lax.conv_general_dilated` accepts.

    Args:
      kernel: `(kt, kh, kw)` context kernel size.
      factor: `(st, sh, sw)` subscale factor, also the convolution stride.
      offset: `(a, b, c)` the current slice, `0 <= offset_i < factor_i`.

    Returns:
      `((lo_t, hi_t), (lo_h, hi_h), (lo_w, hi_w))`.
    """
    kernel = _check_factor(kernel, "kernel")
    factor = _check_factor(factor)
    offset = _check_offset(offset, factor)
    pads = []
    for k, s, a in zip(kernel, factor, offset):
        lo = k // 2 - a
        pads.append((lo, k - s - lo))
    return tuple(pads)  # type: ignore[return-value]
