"""Tests for spectral normalisation."""

import gan_video
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


def test_refresh_spectral_vectors_estimates_the_new_weights_norm():
    # A module whose kernels were replaced (as by the EMA) after its u converged on others.
    rngs = nnx.Rngs(jax.random.key(0, impl="rbg"))
    model = nnx.List([SNLinear(12, 7, rngs=rngs), SNConv(5, 6, 3, rngs=rngs)])
    for i, layer in enumerate(model):
        for _ in range(30):  # converge u on the initial kernels
            layer.normalized_kernel()
        key = jax.random.key(10 + i, impl="rbg")
        layer.kernel[...] = 3.0 * jax.random.normal(key, layer.kernel[...].shape)
    stale = [float(spectral_normalize(m.kernel[...], m.u[...], num_iterations=0)[2]) for m in model]
    truth = [_top_singular_value(m.kernel[...]) for m in model]
    assert all(abs(s / t - 1) > 0.03 for s, t in zip(stale, truth)), (stale, truth)
    assert gan_video.refresh_spectral_vectors(model, 50) is model
    fresh = [float(spectral_normalize(m.kernel[...], m.u[...], num_iterations=0)[2]) for m in model]
    np.testing.assert_allclose(fresh, truth, rtol=1e-3)
    # Frozen evaluation views now divide by the new weights' own norm.
    for m in model:
        m.set_view(update_spectral=False)
        assert abs(_top_singular_value(m.normalized_kernel()) - 1) < 1e-3


@pytest.mark.parametrize(("value", "error"), [(0, ValueError), (2.0, TypeError), (True, TypeError)])
def test_refresh_spectral_vectors_rejects_bad_iterations(value, error):
    layer = SNLinear(3, 2, rngs=nnx.Rngs(jax.random.key(0, impl="rbg")))
    with pytest.raises(error, match="num_iterations: expected an int >= 1"):
        gan_video.refresh_spectral_vectors(layer, value)
