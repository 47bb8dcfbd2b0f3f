"""Tests for hinge losses, orthogonal regularisation and the EMA."""

import jax
import jax.numpy as jnp
import numpy as np
from gan_video import (
    discriminator_hinge_loss,
    ema_update,
    generator_hinge_loss,
    orthogonal_regularization,
)


def test_hinge_losses_known_values():
    real = jnp.array([[2.0, 0.5], [-1.0, 0.0]])
    fake = jnp.array([[-2.0, 0.0], [1.5, -0.5]])
    # relu(1 - real) = [0, .5, 2, 1] -> 0.875 ; relu(1 + fake) = [0, 1, 2.5, .5] -> 1.0
    np.testing.assert_allclose(discriminator_hinge_loss(real, fake), 1.875, rtol=1e-6)
    np.testing.assert_allclose(generator_hinge_loss(fake), 0.25, rtol=1e-6)


def test_orthogonal_regularization():
    q, _ = jnp.linalg.qr(jax.random.normal(jax.random.key(0, impl="rbg"), (6, 6)))
    params = {"w": q, "b": jnp.ones((6,)), "conv": 3.0 * q.reshape(1, 1, 6, 6)}
    np.testing.assert_allclose(orthogonal_regularization(params), 0.0, atol=1e-8)
    w = jnp.array([[1.0, 2.0], [0.0, 1.0]])  # W^T W = [[1, 2], [2, 5]]
    np.testing.assert_allclose(orthogonal_regularization({"w": w}), 8.0, rtol=1e-6)


def test_ema_copies_then_averages():
    k1, k2, k3 = jax.random.split(jax.random.key(0, impl="rbg"), 3)
    ema = {"a": jax.random.normal(k1, (4,))}
    p1 = {"a": jax.random.normal(k2, (4,))}
    p2 = {"a": jax.random.normal(k3, (4,))}
    # Before and at the start step the average is the current weights.
    out = ema_update(ema, p1, jnp.array(5), decay=0.9, start_step=10)
    np.testing.assert_allclose(out["a"], p1["a"])
    out = ema_update(ema, p1, jnp.array(10), decay=0.9, start_step=10)
    np.testing.assert_allclose(out["a"], p1["a"])
    # Afterwards: decay * ema + (1 - decay) * params.
    out2 = ema_update(out, p2, jnp.array(11), decay=0.9, start_step=10)
    np.testing.assert_allclose(out2["a"], 0.9 * p1["a"] + 0.1 * p2["a"], rtol=1e-6)
    jitted = jax.jit(ema_update, static_argnames=("decay", "start_step"))
    out3 = jitted(out, p2, jnp.array(11), decay=0.9, start_step=10)
    np.testing.assert_allclose(out3["a"], out2["a"], rtol=1e-6)
