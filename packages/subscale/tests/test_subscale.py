"""Tests for subscale: slicing round-trips, masking, encoder padding and bit splitting."""

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import subscale
from hypothesis import given, settings
from hypothesis import strategies as st

FACTORS = [(1, 1, 1), (4, 2, 2), (1, 2, 2), (16, 1, 1), (2, 3, 1)]


@st.composite
def videos_and_factors(draw):
    factor = tuple(draw(st.integers(1, 3)) for _ in range(3))
    mult = tuple(draw(st.integers(1, 3)) for _ in range(3))
    shape = (
        draw(st.integers(1, 2)),
        *(f * m for f, m in zip(factor, mult)),
        draw(st.integers(1, 3)),
    )
    x = draw(hnp.arrays(np.int32, shape, elements=st.integers(-1000, 1000)))
    return x, factor


@settings(max_examples=30, deadline=None)
@given(videos_and_factors())
def test_from_slices_inverts_to_slices(xf):
    x, factor = xf
    slices = subscale.to_slices(x, factor)
    np.testing.assert_array_equal(subscale.from_slices(slices, factor), x)


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.uint8, hnp.array_shapes(min_dims=1, max_dims=4).map(lambda s: (*s, 3))))
def test_merge_bits_inverts_split_bits(x):
    np.testing.assert_array_equal(subscale.merge_bits(subscale.split_bits(x)), x)


@pytest.mark.parametrize("factor", FACTORS)
def test_slices_match_strided_indexing(factor):
    st_, sh, sw = factor
    shape = (2, 2 * st_, 2 * sh, 3 * sw, 3)
    x = jax.random.randint(jax.random.key(0), shape, 0, 256)
    slices = subscale.to_slices(x, factor)
    order = subscale.slice_order(factor)
    assert slices.shape == (2, st_ * sh * sw, 2, 2, 3, 3)
    assert len(order) == st_ * sh * sw
    for s, (a, b, c) in enumerate(order):
        np.testing.assert_array_equal(slices[:, s], x[:, a::st_, b::sh, c::sw])
        assert subscale.slice_index((a, b, c), factor) == s


def test_slice_order_is_raster():
    assert subscale.slice_order((2, 1, 2)) == [(0, 0, 0), (0, 0, 1), (1, 0, 0), (1, 0, 1)]
    assert subscale.slice_order((4, 2, 2))[:3] == [(0, 0, 0), (0, 0, 1), (0, 1, 0)]
    assert subscale.slice_order((4, 2, 2))[-1] == (3, 1, 1)


@pytest.mark.parametrize("factor", [(4, 2, 2), (2, 1, 3)])
def test_mask_preceding_visibility(factor):
    shape = (2, 2 * factor[0], 2 * factor[1], 2 * factor[2], 3)
    x = jax.random.randint(jax.random.key(1), shape, 1, 256)  # never zero, so zeros mean masked
    per_slice = 8  # pixels per slice per batch element
    slices = subscale.to_slices(x, factor)
    for index in range(subscale.num_slices(factor)):
        masked, visible = subscale.mask_preceding(x, factor, index)
        assert visible.shape == (*shape[:4], 1) and visible.dtype == jnp.bool_
        assert int(visible.sum()) == 2 * index * per_slice
        masked_slices = subscale.to_slices(masked, factor)
        np.testing.assert_array_equal(masked_slices[:, :index], slices[:, :index])
        assert not masked_slices[:, index:].any()


def test_mask_preceding_traced_per_example_index():
    factor = (2, 2, 2)
    x = jax.random.randint(jax.random.key(2), (3, 4, 4, 4, 2), 1, 256)
    index = jnp.array([0, 3, 8])
    masked, visible = jax.jit(subscale.mask_preceding, static_argnums=1)(x, factor, index)
    for b, i in enumerate([0, 3, 8]):
        want, want_vis = subscale.mask_preceding(x[b : b + 1], factor, min(i, 7))
        if i == 8:  # everything visible
            np.testing.assert_array_equal(masked[b], x[b])
        else:
            np.testing.assert_array_equal(masked[b], want[0])
            np.testing.assert_array_equal(visible[b], want_vis[0])


@pytest.mark.parametrize(
    "kernel,factor,thw",
    [
        ((4, 2, 2), (4, 2, 2), (16, 8, 8)),
        ((6, 1, 1), (16, 1, 1), (16, 4, 4)),
        ((3, 3, 3), (1, 2, 2), (4, 8, 6)),
        ((5, 2, 3), (2, 2, 2), (6, 4, 4)),
    ],
)
def test_encoder_padding_shapes_and_centering(kernel, factor, thw):
    """A real strided conv with the padding has T/st x H/sh x W/sw outputs for every offset,
    and a kernel whose only non-zero tap is the centre tap floor(k/2) reproduces the slice."""
    x = jax.random.normal(jax.random.key(3), (2, *thw, 1))
    w = jnp.zeros((*kernel, 1, 1)).at[kernel[0] // 2, kernel[1] // 2, kernel[2] // 2].set(1.0)
    slices = subscale.to_slices(x, factor)
    for s, offset in enumerate(subscale.slice_order(factor)):
        pad = subscale.encoder_padding(kernel, factor, offset)
        assert pad[0][0] == kernel[0] // 2 - offset[0]
        y = jax.lax.conv_general_dilated(
            x,
            w,
            window_strides=factor,
            padding=pad,
            dimension_numbers=("NTHWC", "THWIO", "NTHWC"),
        )
        assert y.shape == (2, *(n // f for n, f in zip(thw, factor)), 1)
        np.testing.assert_allclose(y, slices[:, s], atol=1e-6)


def test_split_bits_channel_layout():
    x = jnp.array([[0xAB, 0x12, 0xF0]], jnp.uint8)
    np.testing.assert_array_equal(subscale.split_bits(x), [[0xA, 0x1, 0xF, 0xB, 0x2, 0x0]])
    assert subscale.split_bits(x).dtype == jnp.uint8


def test_functions_jit():
    x = jax.random.randint(jax.random.key(4), (1, 4, 4, 4, 3), 0, 256).astype(jnp.uint8)
    f = jax.jit(lambda v: subscale.from_slices(subscale.to_slices(v, (2, 2, 2)), (2, 2, 2)))
    np.testing.assert_array_equal(f(x), x)
    g = jax.jit(lambda v: subscale.mask_preceding(v, (2, 2, 2), 3)[0])
    assert g(x).shape == x.shape
    np.testing.assert_array_equal(jax.jit(subscale.split_bits)(x), subscale.split_bits(x))
    np.testing.assert_array_equal(jax.jit(subscale.merge_bits)(subscale.split_bits(x)), x)


@pytest.mark.parametrize(
    "call,match",
    [
        (
            lambda: subscale.to_slices(jnp.zeros((1, 5, 4, 4, 3)), (2, 2, 2)),
            r"factor=\(2, 2, 2\) must divide",
        ),
        (lambda: subscale.to_slices(jnp.zeros((5, 4, 4, 3)), (1, 2, 2)), "rank 5"),
        (lambda: subscale.to_slices(jnp.zeros((1, 4, 4, 4, 3)), (0, 2, 2)), ">= 1"),
        (
            lambda: subscale.from_slices(jnp.zeros((1, 3, 2, 2, 2, 3)), (2, 2, 2)),
            "S = st\\*sh\\*sw = 8",
        ),
        (
            lambda: subscale.mask_preceding(jnp.zeros((1, 4, 4, 4, 3)), (2, 2, 2), 8),
            "0 <= index < S=8",
        ),
        (lambda: subscale.mask_preceding(jnp.zeros((1, 4, 4, 4, 3)), (2, 2, 2), -1), "got -1"),
        (
            lambda: subscale.encoder_padding((4, 2, 2), (4, 2, 2), (4, 0, 0)),
            "offset=.*out of range",
        ),
        (lambda: subscale.encoder_padding((4, 2), (4, 2, 2), (0, 0, 0)), "kernel must be three"),
        (lambda: subscale.split_bits(jnp.zeros((2, 3), jnp.float32)), "uint8, got float32"),
        (lambda: subscale.split_bits(jnp.zeros((2, 4), jnp.uint8)), "last axis of 3"),
        (lambda: subscale.merge_bits(jnp.zeros((2, 5), jnp.uint8)), "last axis of 6"),
    ],
)
def test_bad_input_errors(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
