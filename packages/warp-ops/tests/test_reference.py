"""Tests of the XLA references, the one-hot shift property and argument validation."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import warp_ops


def _naive_pixelwise(h, weights):
    """Eq. 11 with explicit loops over pixels and taps (numpy, float64)."""
    h, weights = np.asarray(h, np.float64), np.asarray(weights, np.float64)
    b, height, width, c = h.shape
    k = math.isqrt(weights.shape[-1])
    r = (k - 1) // 2
    out = np.zeros((b, height, width, c))
    for i in range(height):
        for j in range(width):
            for m in range(k):
                for n in range(k):
                    y, x = i + m - r, j + n - r
                    if 0 <= y < height and 0 <= x < width:
                        out[:, i, j] += weights[:, i, j, m * k + n, None] * h[:, y, x]
    return out


@pytest.mark.parametrize("shape,k", [((2, 4, 5, 3), 3), ((1, 5, 4, 2), 5), ((1, 3, 3, 2), 1)])
def test_pixelwise_reference_matches_loops(shape, k):
    kh, kw = jax.random.split(jax.random.key(0))
    h = jax.random.normal(kh, shape)
    weights = jax.random.normal(kw, shape[:3] + (k * k,))
    out = warp_ops.pixelwise_warp_reference(h, weights)
    np.testing.assert_allclose(out, _naive_pixelwise(h, weights), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("k,n", [(3, 9), (5, 4)])
def test_factorized_equals_pixelwise_of_combined_weights(k, n):
    kh, kk, ks = jax.random.split(jax.random.key(1), 3)
    h = jax.random.normal(kh, (2, 6, 5, 3))
    kernels = jax.nn.softmax(jax.random.normal(kk, (2, k * k, n)), axis=1)
    selection = jax.nn.softmax(jax.random.normal(ks, (2, 6, 5, n)), axis=-1)
    combined = jnp.einsum("bhwl,bql->bhwq", selection, kernels, precision="highest")  # Eq. 12
    chex.assert_trees_all_close(
        warp_ops.factorized_warp_reference(h, kernels, selection),
        warp_ops.pixelwise_warp_reference(h, combined),
        atol=1e-5,
        rtol=1e-5,
    )


@pytest.mark.parametrize(
    "dy,dx,interpret", [(1, -1, False), (-2, 0, False), (0, 2, False), (2, -1, True)]
)
def test_one_hot_shift_reproduces_roll_inside_image(dy, dx, interpret):
    k, r = 5, 2
    h = jax.random.normal(jax.random.key(2), (2, 9, 8, 3))
    q = (dy + r) * k + (dx + r)
    weights = jnp.broadcast_to(jax.nn.one_hot(q, k * k), (2, 9, 8, k * k))
    implementation = "pallas" if interpret else "xla"
    out = warp_ops.pixelwise_warp(h, weights, implementation=implementation, interpret=interpret)
    rolled = jnp.roll(h, shift=(-dy, -dx), axis=(1, 2))  # out[i, j] = h[i + dy, j + dx]
    inside = (slice(None), slice(max(0, -dy), 9 - max(0, dy)), slice(max(0, -dx), 8 - max(0, dx)))
    np.testing.assert_array_equal(out[inside], rolled[inside])
    # Outside the image the zero padding leaves nothing: a full border band is zero.
    if dy > 0:
        np.testing.assert_array_equal(out[:, -dy:], 0.0)
    if dx < 0:
        np.testing.assert_array_equal(out[:, :, :-dx], 0.0)


def test_xla_output_dtype_and_gradient_finite():
    kh, kw = jax.random.split(jax.random.key(3))
    h = jax.random.normal(kh, (1, 4, 4, 3), jnp.bfloat16)
    weights = jax.random.normal(kw, (1, 4, 4, 9), jnp.float32)
    out, vjp = jax.vjp(lambda h, w: warp_ops.pixelwise_warp(h, w, implementation="xla"), h, weights)
    assert out.dtype == jnp.bfloat16
    dh, dw = vjp(jnp.ones_like(out))
    assert dh.dtype == jnp.bfloat16 and dw.dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(dw)))


_H = jnp.ones((2, 4, 4, 3))


@pytest.mark.parametrize(
    "fn,args,exc,pattern",
    [
        (warp_ops.pixelwise_warp, (_H, jnp.ones((2, 4, 4, 4))), ValueError, "k=2"),
        (warp_ops.pixelwise_warp, (_H, jnp.ones((2, 4, 4, 8))), ValueError, "8 taps"),
        (warp_ops.pixelwise_warp, (_H, jnp.ones((2, 4, 5, 9))), ValueError, r"\(2, 4, 5\)"),
        (warp_ops.pixelwise_warp, (_H[0], jnp.ones((4, 4, 9))), ValueError, "rank 4"),
        (
            warp_ops.pixelwise_warp,
            (_H.astype(jnp.float16), jnp.ones((2, 4, 4, 9))),
            ValueError,
            "h.dtype=float16",
        ),
        (
            warp_ops.pixelwise_warp,
            (_H, jnp.ones((2, 4, 4, 9), jnp.int32)),
            ValueError,
            "weights.dtype=int32",
        ),
        (
            warp_ops.factorized_warp,
            (_H, jnp.ones((2, 9, 9)), jnp.ones((2, 4, 4, 8))),
            ValueError,
            "N.*9.*8",
        ),
        (
            warp_ops.factorized_warp,
            (_H, jnp.ones((2, 4, 9)), jnp.ones((2, 4, 4, 9))),
            ValueError,
            "k=2",
        ),
        (
            warp_ops.factorized_warp,
            (_H, jnp.ones((3, 9, 9)), jnp.ones((2, 4, 4, 9))),
            ValueError,
            "batch",
        ),
        (
            warp_ops.factorized_warp,
            (_H, jnp.ones((2, 9, 9)), jnp.ones((2, 4, 3, 9))),
            ValueError,
            "selection",
        ),
        (
            warp_ops.factorized_warp_reference,
            (_H, jnp.ones((2, 9, 9), jnp.float16), jnp.ones((2, 4, 4, 9))),
            ValueError,
            "kernels.dtype=float16",
        ),
        (warp_ops.pixelwise_warp_reference, (_H, jnp.ones((2, 4, 4, 25, 1))), ValueError, "rank"),
    ],
)
def test_validation_errors(fn, args, exc, pattern):
    with pytest.raises(exc, match=pattern):
        fn(*args)


def test_bad_implementation_arguments():
    weights = jnp.ones((2, 4, 4, 9))
    with pytest.raises(ValueError, match="implementation must be one of .*, got 'mosaic'"):
        warp_ops.pixelwise_warp(_H, weights, implementation="mosaic")
    with pytest.raises(TypeError, match="interpret"):
        warp_ops.pixelwise_warp(_H, weights, interpret="yes")
