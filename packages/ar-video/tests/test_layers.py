"""The block-local layer against a dense reference of Eqs. 2-6, and its incremental step."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ar_video import TransformerLayer
from flax import nnx

SLICE = (2, 4, 4)
BLOCK = (2, 2, 4)


def _perturb(module, key, scale=0.1):
    """Random (never zero) values for every parameter, so biases and norms matter."""
    graphdef, state = nnx.split(module)
    leaves, treedef = jax.tree.flatten(state)
    keys = jax.random.split(key, len(leaves))
    leaves = [x + scale * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)]
    return nnx.merge(graphdef, jax.tree.unflatten(treedef, leaves))


def _dense_reference(layer, z, causal):
    """Eqs. 2-6 with a dense [N, N] attention restricted to same-block pairs."""
    b, t, h, w, d = z.shape
    pos = np.array(list(itertools.product(range(t), range(h), range(w))))  # [N, 3] raster
    block_id = pos // np.array(BLOCK)
    same = (block_id[:, None] == block_id[None]).all(-1)
    if causal:
        same &= np.tril(np.ones_like(same))
    diff = pos[:, None] - pos[None]  # [N, N, 3]
    tables = (layer.bias_t[...], layer.bias_h[...], layer.bias_w[...])
    bias = sum(tab[:, diff[..., a] + BLOCK[a] - 1] for a, tab in enumerate(tables))  # [n, N, N]

    def ln(x, norm):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / jnp.sqrt(var + 1e-6) * norm.scale[...] + norm.bias[...]

    zf = z.reshape(b, -1, d)
    qkv = ln(zf, layer.attention_norm) @ layer.qkv.kernel[...]
    q, k, v = jnp.split(qkv.reshape(b, -1, 3, layer.num_heads, layer.head_dim), 3, axis=2)
    q, k, v = q[:, :, 0], k[:, :, 0], v[:, :, 0]  # [B, N, n, da]
    logits = jnp.einsum("bind,bjnd->bnij", q, k) / np.sqrt(layer.head_dim) + bias
    logits = jnp.where(same, logits, -jnp.inf)
    att = jnp.einsum("bnij,bjnd->bind", jax.nn.softmax(logits, -1), v).reshape(b, -1, 2 * 8)
    zf = att @ layer.output.kernel[...] + zf
    hid = jax.nn.relu(ln(zf, layer.mlp_norm) @ layer.mlp_in.kernel[...])  # Eq. 6: no biases
    zf = hid @ layer.mlp_out.kernel[...] + zf
    return zf.reshape(z.shape)


@pytest.mark.parametrize("causal", [False, True])
def test_layer_matches_dense_reference_forward_and_vjp(causal):
    k_init, k_perturb, k_z, k_g = jax.random.split(jax.random.key(0), 4)
    layer = TransformerLayer(
        32, 2, 8, BLOCK, causal=causal, implementation="xla", rngs=nnx.Rngs(k_init)
    )
    layer = _perturb(layer, k_perturb)
    z = jax.random.normal(k_z, (2, *SLICE, 32))
    out, vjp = jax.vjp(layer, z)
    ref, ref_vjp = jax.vjp(lambda z: _dense_reference(layer, z, causal), z)
    chex.assert_trees_all_close(out, ref, atol=1e-4, rtol=1e-4)
    g = jax.random.normal(k_g, out.shape)
    chex.assert_trees_all_close(vjp(g), ref_vjp(g), atol=1e-4, rtol=1e-4)

    # Parameter gradients (relative bias tables included) against the reference too.
    graphdef, params = nnx.split(layer)

    def loss(params, fn):
        return jnp.sum(fn(nnx.merge(graphdef, params)) * g)

    grads = jax.grad(loss)(params, lambda m: m(z))
    ref_grads = jax.grad(loss)(params, lambda m: _dense_reference(m, z, causal))
    chex.assert_trees_all_close(grads, ref_grads, atol=2e-4, rtol=2e-4)


def test_decode_step_matches_full_forward():
    k_init, k_perturb, k_z = jax.random.split(jax.random.key(1), 3)
    layer = TransformerLayer(
        32, 2, 8, BLOCK, causal=True, implementation="xla", rngs=nnx.Rngs(k_init)
    )
    layer = _perturb(layer, k_perturb)
    z = jax.random.normal(k_z, (2, *SLICE, 32))
    full = layer(z)
    cache = tuple(jnp.zeros((2, *SLICE, 2, 8)) for _ in range(2))

    @jax.jit
    def step(zi, position, cache):
        return layer.decode_step(zi, position, cache)

    outs = []
    for t, y, x in itertools.product(*(range(n) for n in SLICE)):
        pos = tuple(jnp.int32(p) for p in (t, y, x))
        out, cache = step(z[:, t, y, x], pos, cache)
        outs.append(out)
    incremental = jnp.stack(outs, 1).reshape(full.shape)
    chex.assert_trees_all_close(incremental, full, atol=1e-4, rtol=1e-4)


def test_layer_rejects_bad_input():
    layer = TransformerLayer(32, 2, 8, BLOCK, causal=False, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="z must be"):
        layer(jnp.ones((2, *SLICE, 16)))
    with pytest.raises(ValueError, match="causal"):
        layer.decode_step(jnp.ones((2, 32)), (0, 0, 0), (None, None))
