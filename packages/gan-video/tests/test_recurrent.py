"""Tests for the recurrent units."""

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from gan_video import RECURRENT_UNITS, adaptive_max_pool, make_recurrent_unit
from gan_video.spectral_norm import (
    SNConv,
    SNLinear,
    SpectralState,
    prenormalize,
    spectral_normalize,
)

B, T, H, W, C = 2, 3, 6, 6, 4


def _inputs(seed=0):
    kx, kh = jax.random.split(jax.random.key(seed, impl="rbg"))
    x = jax.random.normal(kx, (B, T, H, W, C))
    h0 = jax.random.normal(kh, (B, H, W, C))
    return x, h0


@pytest.mark.parametrize("name", sorted(RECURRENT_UNITS))
def test_unit_shapes_over_time_and_finite_gradients(name):
    unit = make_recurrent_unit(name, C, C, rngs=nnx.Rngs(jax.random.key(0, impl="rbg")))
    graphdef, params, rest = nnx.split(unit, nnx.Param, ...)
    x, h0 = _inputs()

    @jax.jit
    def run(params, x, h0):
        def loss(params, x, h0):
            u = nnx.merge(graphdef, params, rest, copy=True)
            out, aux = u(x, h0)
            return jnp.sum(out**2), (out, aux)

        return jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(params, x, h0)

    (_, (out, aux)), grads = run(params, x, h0)
    assert out.shape == (B, T, H, W, C)
    assert np.all(np.isfinite(out))
    # Every step differs from the last: the unit evolves its state over time.
    assert not np.allclose(out[:, 0], out[:, 1])
    for g in jax.tree.leaves(grads):
        assert np.all(np.isfinite(g))
    assert float(jnp.abs(grads[1]).sum()) > 0 and float(jnp.abs(grads[2]).sum()) > 0
    if name in ("convgru", "convlstm"):
        assert aux == {}
    else:
        w = aux["warp_weights"]
        assert w.shape == (B, T, H, W, 9)
        np.testing.assert_allclose(jnp.sum(w, -1), 1.0, atol=1e-5)  # convex kernels


def _force_identity(unit, name):
    """Saturates the update gate (u = 1) and puts all warp mass on the centre tap."""
    big = 100.0
    unit.conv_u.bias[...] = jnp.full_like(unit.conv_u.bias[...], big)
    if name == "ptsru":
        b = jnp.zeros_like(unit.hypernet.conv_out.bias[...])
        unit.hypernet.conv_out.bias[...] = b.at[4].set(big)
    else:
        n = unit.hypernet.num_kernels
        b = jnp.zeros((9, n)).at[4].set(big)  # tap q = 4 is the (0, 0) offset, Eq. 11
        unit.hypernet.mlp_out.bias[...] = b.reshape(-1)


@pytest.mark.parametrize("name", ["tsru_c", "tsru_p", "tsru_s", "ptsru"])
def test_tsru_identity_case_returns_previous_state(name):
    unit = make_recurrent_unit(name, C, C, rngs=nnx.Rngs(jax.random.key(1, impl="rbg")))
    _force_identity(unit, name)
    x, h0 = _inputs(1)
    out, aux = nnx.jit(lambda u, x, h: u(x, h))(unit, x, h0)
    for t in range(T):  # h_t = u * warp(h_{t-1}) + (1 - u) c = h_{t-1} = h0
        np.testing.assert_allclose(out[:, t], h0, atol=1e-5)
    centre = np.zeros(9)
    centre[4] = 1.0
    np.testing.assert_allclose(
        aux["warp_weights"], np.broadcast_to(centre, (B, T, H, W, 9)), atol=1e-5
    )


def test_tsru_without_identity_is_not_identity():
    unit = make_recurrent_unit("tsru_p", C, C, rngs=nnx.Rngs(jax.random.key(1, impl="rbg")))
    x, h0 = _inputs(1)
    out, _ = nnx.jit(lambda u, x, h: u(x, h))(unit, x, h0)
    assert not np.allclose(out[:, 0], h0, atol=1e-2)


def test_convlstm_splits_state_halves():
    unit = make_recurrent_unit("convlstm", C, C, rngs=nnx.Rngs(jax.random.key(0, impl="rbg")))
    h, c = unit.initial_state(jnp.arange(C, dtype=jnp.float32) * jnp.ones((B, H, W, C)))
    np.testing.assert_array_equal(h[0, 0, 0], [0.0, 1.0])
    np.testing.assert_array_equal(c[0, 0, 0], [2.0, 3.0])


def test_adaptive_max_pool_matches_loops():
    x = jax.random.normal(jax.random.key(3, impl="rbg"), (2, 7, 10, 3))
    out = adaptive_max_pool(x, 4)
    assert out.shape == (2, 4, 4, 3)
    for i in range(4):
        for j in range(4):
            r0, r1 = (i * 7) // 4, -((-(i + 1) * 7) // 4)
            c0, c1 = (j * 10) // 4, -((-(j + 1) * 10) // 4)
            np.testing.assert_allclose(out[:, i, j], x[:, r0:r1, c0:c1].max(axis=(1, 2)))
    small = adaptive_max_pool(x[:, :2, :2], 4)  # upsampling case: cells overlap
    np.testing.assert_allclose(small[:, 0, 0], x[:, 0, 0])


def test_bad_inputs_raise():
    unit = make_recurrent_unit("convgru", C, C, rngs=nnx.Rngs(jax.random.key(0, impl="rbg")))
    x, h0 = _inputs()
    with pytest.raises(ValueError, match="x must have 4 channels"):
        unit(x[..., :3], h0)
    with pytest.raises(ValueError, match="h0 must have shape"):
        unit(x, h0[:, :3])
    with pytest.raises(ValueError, match="recurrent unit must be one of"):
        make_recurrent_unit("lstm", C, C, rngs=nnx.Rngs(jax.random.key(0, impl="rbg")))


def _spectral_layers(module):
    return [m for _, m in nnx.iter_modules(module) if isinstance(m, (SNConv, SNLinear))]


def _scan_output_shapes(jaxpr):
    """Shapes of every output of every scan in `jaxpr` (sub-jaxprs included)."""
    shapes = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "scan":
            shapes += [tuple(v.aval.shape) for v in eqn.outvars]
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            shapes += _scan_output_shapes(sub)
    return shapes


@pytest.mark.parametrize(
    ("name", "remat"), [("tsru_p", False), ("tsru_p", True), ("convgru", False)]
)
def test_spectral_norm_once_per_call_and_no_per_step_kernels(name, remat):
    """The power iteration runs once per call (not per step), the outputs and gradients equal
    a Python unroll of `step` over the normalised copy, and the scan keeps no [T, *kernel]
    residual for the backward pass (what made ch=120 overflow a TPU v3 core)."""
    unit = make_recurrent_unit(name, C, C, rngs=nnx.Rngs(jax.random.key(2, impl="rbg")))
    unit.remat = remat
    x, h0 = _inputs(2)
    layers = _spectral_layers(unit)
    keys = jax.random.split(jax.random.key(3, impl="rbg"), len(layers))
    for m, k in zip(layers, keys, strict=True):  # orthogonal kernels leave u unchanged
        m.kernel[...] = jax.random.normal(k, m.kernel[...].shape)
    expected_u = [spectral_normalize(m.kernel[...], m.u[...])[1] for m in layers]
    twice = [spectral_normalize(m.kernel[...], u)[1] for m, u in zip(layers, expected_u)]
    assert all(not np.allclose(a, b, atol=1e-3) for a, b in zip(expected_u, twice))
    graphdef, params, rest = nnx.split(unit, nnx.Param, ...)

    def scanned(params, x, h0):
        u = nnx.merge(graphdef, params, rest, copy=True)
        out, _ = u(x, h0)
        return jnp.sum(out * jnp.cos(out)), (out, nnx.state(u, SpectralState))

    def unrolled(params, x, h0):
        u = prenormalize(nnx.merge(graphdef, params, rest, copy=True))
        state, outs = u.initial_state(h0), []
        for t in range(T):
            state, out, _ = u.step(state, x[:, t])
            outs.append(out)
        out = jnp.stack(outs, 1)
        return jnp.sum(out * jnp.cos(out)), out

    grad = jax.grad(scanned, argnums=(0, 1, 2), has_aux=True)
    grads, (out, new_u) = jax.jit(grad)(params, x, h0)
    ref_grads, ref_out = jax.jit(jax.grad(unrolled, argnums=(0, 1, 2), has_aux=True))(params, x, h0)
    np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-5)
    for g, r in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads), strict=True):
        assert float(jnp.abs(r).max()) > 0
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5)
    updated = _spectral_layers(nnx.merge(graphdef, params, new_u))
    for layer, u in zip(updated, expected_u, strict=True):
        np.testing.assert_allclose(layer.u[...], u, rtol=1e-6, atol=1e-6)

    kernel_shapes = {tuple(m.kernel[...].shape) for m in layers}
    jaxpr = jax.make_jaxpr(grad)(params, x, h0).jaxpr
    stacked = [s for s in _scan_output_shapes(jaxpr) if s[:1] == (T,) and s[1:] in kernel_shapes]
    assert _scan_output_shapes(jaxpr), "no scan found: the check would be vacuous"
    assert not stacked, f"the scan keeps per-step kernels: {stacked}"
