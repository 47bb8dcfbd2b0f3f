"""Tests for hinge losses, orthogonal regularisation and the EMA."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
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


def _dense_orthogonal_regularization(params) -> np.ndarray:
    """The `[out, out]` Gram formula in float64: `sum_W ||W^T W * (1 - I)||_F^2`."""
    total = 0.0
    for leaf in jax.tree.leaves(params):
        if leaf.ndim < 2:
            continue
        w = np.asarray(leaf, np.float64).reshape(-1, leaf.shape[-1])  # [fan_in, out]
        gram = w.T @ w  # [out, out]
        total += np.sum(np.square(gram * (1.0 - np.eye(gram.shape[0]))))
    return np.asarray(total)


@pytest.mark.parametrize(
    "shape",
    [
        (6, 40),  # out > in: through the [in, in] Gram
        (40, 6),  # in > out: the [out, out] Gram itself
        (9, 9),
        (3, 3, 2, 32),  # a conv kernel, fan_in 18 < out 32
        (3, 3, 8, 5),
    ],
)
def test_orthogonal_regularization_matches_the_dense_gram(shape):
    k1, k2 = jax.random.split(jax.random.key(1, impl="rbg"))
    params = {"w": jax.random.normal(k1, shape), "b": jax.random.normal(k2, shape[-1:])}
    np.testing.assert_allclose(
        orthogonal_regularization(params), _dense_orthogonal_regularization(params), rtol=1e-5
    )

    def dense(p):  # f32 autodiff reference
        w = p["w"].reshape(-1, shape[-1])
        gram = jnp.matmul(w.T, w, precision=jax.lax.Precision.HIGHEST)
        return jnp.sum(jnp.square(gram * (1.0 - jnp.eye(shape[-1]))))

    grads = jax.grad(orthogonal_regularization)(params)
    np.testing.assert_allclose(grads["w"], jax.grad(dense)(params)["w"], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(grads["b"], 0.0)


def test_orthogonal_regularization_of_orthonormal_rows():
    # G's first layer at init: orthonormal rows, so W^T W is a rank-16 projection whose
    # off-diagonal mass is 16 - sum(diag^2); the small-side difference must not cancel it away.
    w = jax.nn.initializers.orthogonal()(jax.random.key(2, impl="rbg"), (16, 512))
    np.testing.assert_allclose(
        orthogonal_regularization({"w": w}), _dense_orthogonal_regularization({"w": w}), rtol=1e-5
    )


def test_orthogonal_regularization_never_forms_the_large_gram():
    # G's first linear layer at ch=120: 256 -> 8*8*8*120. The [out, out] Gram alone would be
    # 61440^2 * 4 B = 14 GiB; the [256, 256] one is 256 KiB.
    abstract = {"w": jax.ShapeDtypeStruct((256, 8 * 8 * 8 * 120), jnp.float32)}
    for fn in (orthogonal_regularization, jax.grad(orthogonal_regularization)):
        memory = jax.jit(fn).lower(abstract).compile().memory_analysis()
        assert memory.temp_size_in_bytes < 64 * 2**20, memory


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
