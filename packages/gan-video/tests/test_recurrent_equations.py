"""Each recurrent unit's step against its paper equations, written out in numpy.

ConvGRU (Eqs. 1-5), K-TrajGRU (Eqs. 16-22) and TSRU_c / TSRU_p / TSRU_s (Eqs. 6-10 and the
section 3.2.2 replacements of Eqs. 8 and 9), on small random tensors with random, never-zero
weights and biases. The hyper-network f (Eq. 6/16) is the module's; everything it feeds (the
warp of Eq. 7/17 with Eq. 12's combined kernels, the gates and the mixing) is numpy here.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from flax import nnx
from gan_video.recurrent import make_recurrent_unit
from gan_video.spectral_norm import SNConv, prenormalize

B, H, W, CX, CH = 2, 5, 6, 3, 4


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _relu(x):
    return np.maximum(x, 0.0)


def _conv(layer: SNConv, x: np.ndarray) -> np.ndarray:
    """'SAME' cross-correlation with the layer's (already normalised) kernel, plus its bias."""
    k = np.asarray(layer.kernel[...], np.float64)  # [kh, kw, in, out]
    kh, kw = k.shape[:2]
    pad = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    out = sum(
        pad[:, i : i + x.shape[1], j : j + x.shape[2]] @ k[i, j]
        for i in range(kh)
        for j in range(kw)
    )
    return out + np.asarray(layer.bias[...], np.float64)


def _warp(h: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Eq. 11: out[i, j] = sum_{m, n} w[i, j, m k + n] h[i + m - (k-1)/2, j + n - (k-1)/2]."""
    k = round(weights.shape[-1] ** 0.5)
    r = (k - 1) // 2
    pad = np.pad(h, ((0, 0), (r, r), (r, r), (0, 0)))
    return sum(
        weights[..., m * k + n, None] * pad[:, m : m + h.shape[1], n : n + h.shape[2]]
        for m in range(k)
        for n in range(k)
    )


def _unit(name: str):
    unit = make_recurrent_unit(name, CX, CH, rngs=nnx.Rngs(jax.random.key(0, impl="rbg")))
    # Random kernels and never-zero biases (the initial biases are zeros).
    params = nnx.state(unit, nnx.Param)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(1), len(leaves))
    leaves = [
        0.5 + jax.random.uniform(k, x.shape, minval=-0.3, maxval=0.3)
        if x.ndim == 1
        else jax.random.normal(k, x.shape)
        for k, x in zip(keys, leaves)
    ]
    nnx.update(unit, jax.tree.unflatten(tree, leaves))
    return prenormalize(unit)  # fixed W / sigma: the kernels the step uses


def _inputs():
    kh, kx = jax.random.split(jax.random.key(2))
    h = np.asarray(jax.random.normal(kh, (B, H, W, CH)), np.float64)
    x = np.asarray(jax.random.normal(kx, (B, H, W, CX)), np.float64)
    return h, x


def _step(unit, h, x):
    h_new, out, weights = unit.step(
        jax.numpy.asarray(h, np.float32), jax.numpy.asarray(x, np.float32)
    )
    np.testing.assert_array_equal(np.asarray(out), np.asarray(h_new))  # output is the state
    return np.asarray(h_new, np.float64), None if weights is None else np.asarray(weights)


def _theta(unit, h, x):
    """Eq. 6/16 (the module's f), and Eq. 12: per-pixel kernels from the basis and S."""
    hx = jax.numpy.asarray(np.concatenate([h, x], -1), np.float32)
    kernels, selection = unit.hypernet(hx)
    kernels, selection = np.asarray(kernels, np.float64), np.asarray(selection, np.float64)
    np.testing.assert_allclose(kernels.sum(1), 1.0, rtol=1e-5)  # softmax over the k*k taps
    np.testing.assert_allclose(selection.sum(-1), 1.0, rtol=1e-5)  # softmax over N kernels
    return np.einsum("bhwn,bqn->bhwq", selection, kernels)


def test_convgru_is_eqs_1_to_5():
    unit = _unit("convgru")
    h, x = _inputs()
    hx = np.concatenate([h, x], -1)
    r = _sigmoid(_conv(unit.conv_r, hx))  # Eq. 1
    h_reset = r * h  # Eq. 2
    c = _relu(_conv(unit.conv_c, np.concatenate([h_reset, x], -1)))  # Eq. 3 (rho = ReLU)
    u = _sigmoid(_conv(unit.conv_u, hx))  # Eq. 4
    expected = u * h + (1 - u) * c  # Eq. 5
    got, weights = _step(unit, h, x)
    assert weights is None
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_k_trajgru_is_eqs_16_to_22():
    unit = _unit("k_trajgru")
    h, x = _inputs()
    weights = _theta(unit, h, x)  # Eq. 16
    h_warp = _warp(h, weights)  # Eq. 17
    r = _sigmoid(_conv(unit.conv_r, np.concatenate([h_warp, x], -1)))  # Eq. 18
    h_reset = r * h_warp  # Eq. 19
    c = np.tanh(_conv(unit.conv_c, np.concatenate([h_reset, x], -1)))  # Eq. 20 (rho = tanh)
    u = _sigmoid(_conv(unit.conv_u, np.concatenate([h_warp, x], -1)))  # Eq. 21
    expected = u * h + (1 - u) * c  # Eq. 22: the unwarped h_{t-1}
    got, got_weights = _step(unit, h, x)
    np.testing.assert_allclose(got_weights, weights, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def _tsru_expected(unit, flow, h, x):
    weights = _theta(unit, h, x)  # Eq. 6
    h_warp = _warp(h, weights)  # Eq. 7
    hx = np.concatenate([h, x], -1)
    c_in = hx if flow == "p" else np.concatenate([h_warp, x], -1)
    c = _relu(_conv(unit.conv_c, c_in))  # Eq. 8; TSRU_p: [h_{t-1}; x_t]
    u_in = np.concatenate([h_warp, c], -1) if flow == "s" else hx
    u = _sigmoid(_conv(unit.conv_u, u_in))  # Eq. 9; TSRU_s: [h~_{t-1}; c]
    return u * h_warp + (1 - u) * c, weights  # Eq. 10: the warped h~_{t-1}


@pytest.mark.parametrize("flow", ["c", "p", "s"])
def test_tsru_variant_is_eqs_6_to_10(flow):
    unit = _unit(f"tsru_{flow}")
    h, x = _inputs()
    expected, weights = _tsru_expected(unit, flow, h, x)
    got, got_weights = _step(unit, h, x)
    np.testing.assert_allclose(got_weights, weights, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    # The variants differ where the paper says: with this unit's weights, the other two
    # information flows give other states (so the equations above are not interchangeable).
    for other in {"c", "p", "s"} - {flow}:
        if (other == "s") != (flow == "s"):  # conv_u's input width differs: not comparable
            continue
        alternative, _ = _tsru_expected(unit, other, h, x)
        assert np.abs(alternative - got).max() > 1e-3, (flow, other)


def test_ptsru_warps_with_its_per_pixel_kernels_and_follows_tsru_s():
    unit = _unit("ptsru")
    h, x = _inputs()
    weights = np.asarray(
        unit.hypernet(jax.numpy.asarray(np.concatenate([h, x], -1), np.float32)), np.float64
    )
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
    h_warp = _warp(h, weights)
    c = _relu(_conv(unit.conv_c, np.concatenate([h_warp, x], -1)))
    u = _sigmoid(_conv(unit.conv_u, np.concatenate([h_warp, c], -1)))
    got, got_weights = _step(unit, h, x)
    np.testing.assert_allclose(got_weights, weights, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got, u * h_warp + (1 - u) * c, rtol=1e-4, atol=1e-5)
