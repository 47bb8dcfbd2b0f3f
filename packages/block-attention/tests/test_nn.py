"""Tests of the Flax NNX BlockSelfAttention layer."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

nnx = pytest.importorskip("flax.nnx")

from block_attention.nn import BlockSelfAttention


def _layer(**kwargs):
    options = {
        "num_heads": 2,
        "head_dim": 8,
        "block_shape": (2, 2, 4),
        "causal": True,
        "implementation": "xla",
    }
    options.update(kwargs)
    return BlockSelfAttention(16, rngs=nnx.Rngs(0), **options)


def test_shapes_and_parameters():
    layer = _layer()
    z = jax.random.normal(jax.random.key(1), (2, 2, 4, 8, 16))
    out = layer(z)
    assert out.shape == z.shape and out.dtype == z.dtype
    assert layer.qkv.kernel.shape == (16, 3 * 2 * 8)
    assert layer.out.kernel.shape == (2 * 8, 16)
    assert layer.bias_t.shape == (2, 3)
    assert layer.bias_h.shape == (2, 3)
    assert layer.bias_w.shape == (2, 7)
    # Eqs. 2 and 5 have no additive biases: W_qkv and W_p are plain matrices.
    assert layer.qkv.bias is None and layer.out.bias is None
    params = jax.tree.leaves(nnx.state(layer, nnx.Param))
    assert sum(p.size for p in params) == 2 * 16 + 16 * 48 + 2 * (3 + 3 + 7) + 16 * 16


def test_bf16_compute():
    layer = _layer(dtype=jnp.bfloat16)
    z = jax.random.normal(jax.random.key(2), (1, 2, 4, 8, 16))
    out = layer(z)
    assert out.dtype == z.dtype
    np.testing.assert_allclose(np.asarray(out), np.asarray(_layer()(z)), atol=0.1)


def test_causal_layer_ignores_future_positions():
    layer = _layer(block_shape=(2, 4, 8))
    z = jax.random.normal(jax.random.key(3), (1, 2, 4, 8, 16))
    z2 = z.at[:, 1].set(jax.random.normal(jax.random.key(4), (1, 4, 8, 16)))
    # Frame 0 comes before frame 1 in raster order, so it must not see the change.
    np.testing.assert_allclose(np.asarray(layer(z)[:, 0]), np.asarray(layer(z2)[:, 0]), atol=1e-6)
    assert not np.allclose(np.asarray(layer(z)[:, 1]), np.asarray(layer(z2)[:, 1]))


def test_pallas_interpret_matches_xla():
    z = jax.random.normal(jax.random.key(5), (1, 2, 4, 8, 16))
    xla = _layer(implementation="xla")(z)
    pallas = _layer(implementation="pallas", interpret=True)(z)
    np.testing.assert_allclose(np.asarray(pallas), np.asarray(xla), atol=2e-5, rtol=2e-5)


def test_gradient_step_lowers_loss():
    layer = _layer()
    keys = jax.random.split(jax.random.key(6), 2)
    z = jax.random.normal(keys[0], (2, 2, 4, 8, 16))
    target = jax.random.normal(keys[1], z.shape)

    def loss_fn(layer):
        return jnp.mean(jnp.square(layer(z) - target))

    graphdef, params, rest = nnx.split(layer, nnx.Param, ...)

    @jax.jit
    def step(params):
        def loss_of(params):
            return loss_fn(nnx.merge(graphdef, params, rest))

        loss, grads = jax.value_and_grad(loss_of)(params)
        return loss, jax.tree.map(lambda p, g: p - 0.05 * g, params, grads)

    loss0, params = step(params)
    grads = jax.grad(lambda p: loss_fn(nnx.merge(graphdef, p, rest)))(params)
    # The relative-bias tables receive gradient (Eq. 3 is learned).
    assert float(jnp.abs(grads["bias_w"][...]).max()) > 0
    for _ in range(3):
        loss, params = step(params)
    assert float(loss) < float(loss0)


def test_rejects_bad_input_rank():
    with pytest.raises(ValueError, match=r"z must have shape \[B, T, H, W, d\]"):
        _layer()(jnp.ones((2, 4, 8, 16)))
