"""Tests for spectral normalisation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from gan_video import SNConv, SNLinear, spectral_normalize


def _top_singular_value(kernel):
    return float(jnp.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0])


@pytest.mark.parametrize(
    "make",
    [
        lambda r: SNLinear(12, 7, rngs=r),
        lambda r: SNConv(5, 6, 3, rngs=r),
        lambda r: SNConv(4, 3, 3, rngs=r, ndim=3),
    ],
    ids=["dense", "conv2d", "conv3d"],
)
def test_power_iteration_bounds_top_singular_value(make):
    layer = make(nnx.Rngs(jax.random.key(0, impl="rbg")))
    # A random (non-orthogonal) kernel with a large top singular value.
    k = layer.kernel[...]
    layer.kernel[...] = 5.0 * jax.random.normal(jax.random.key(1, impl="rbg"), k.shape)
    assert _top_singular_value(layer.kernel[...]) > 3.0
    u0 = layer.u[...]
    for _ in range(30):  # persistent power iteration: one step per training call
        w = layer.normalized_kernel()
    assert not np.allclose(u0, layer.u[...])
    np.testing.assert_allclose(_top_singular_value(w), 1.0, atol=2e-2)
    # Evaluation view: u frozen.
    frozen = nnx.view(layer, update_spectral=False)
    u1 = layer.u[...]
    frozen.normalized_kernel()
    np.testing.assert_array_equal(u1, layer.u[...])


def test_spectral_normalize_gradient_and_value():
    k1, k2, k3, k4 = jax.random.split(jax.random.key(2, impl="rbg"), 4)
    # Random kernel plus a rank-one spike, so the top singular value is well separated.
    spike = jnp.outer(jax.random.normal(k3, (36,)), jax.random.normal(k4, (8,)))
    w = jax.random.normal(k1, (3, 3, 4, 8)) + spike.reshape(3, 3, 4, 8)
    u = jax.random.normal(k2, (8,))
    wn, u_new, sigma = spectral_normalize(w, u, num_iterations=50)
    true = _top_singular_value(w)
    np.testing.assert_allclose(float(sigma), true, rtol=1e-3)
    np.testing.assert_allclose(wn, w / true, rtol=2e-3, atol=1e-5)
    g = jax.grad(lambda w: jnp.sum(spectral_normalize(w, u_new)[0] ** 2))(w)
    assert np.all(np.isfinite(g)) and float(jnp.abs(g).sum()) > 0


def test_orthogonal_init_and_shape_errors():
    layer = SNLinear(16, 16, rngs=nnx.Rngs(jax.random.key(0, impl="rbg")))
    w = layer.kernel[...]
    np.testing.assert_allclose(w.T @ w, jnp.eye(16), atol=1e-5)
    with pytest.raises(ValueError, match="x last axis must be 16"):
        layer(jnp.ones((2, 5)))
    conv = SNConv(3, 4, 3, rngs=nnx.Rngs(jax.random.key(0, impl="rbg")))
    with pytest.raises(ValueError, match="x must be"):
        conv(jnp.ones((2, 8, 8, 5)))
    with pytest.raises(ValueError, match="u must have shape"):
        spectral_normalize(jnp.ones((3, 4)), jnp.ones((3,)))
