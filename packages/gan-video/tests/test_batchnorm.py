"""Tests for per-time-step conditional batch norm and standing statistics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from gan_video import ConditionalBatchNorm, reset_standing_stats

B, T, H, W, C, D = 4, 3, 5, 5, 6, 7


def _x(seed, scale=1.0):
    k1, k2 = jax.random.split(jax.random.key(seed, impl="rbg"))
    # Different mean/scale per time step so per-t statistics matter.
    shift = jnp.arange(T, dtype=jnp.float32)[None, :, None, None, None] * 3.0
    return scale * jax.random.normal(k1, (B, T, H, W, C)) * (1 + shift) + shift, k2


def test_unconditional_normalises_each_time_step():
    bn = ConditionalBatchNorm(C, T, None, rngs=nnx.Rngs(jax.random.key(0, impl="rbg")))
    x, _ = _x(0)
    y = bn(x)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0.0, atol=1e-4)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1.0, atol=2e-3)
    # Statistics are per time step: rescaling frame 2 leaves frames 0-1 unchanged.
    y2 = bn(x.at[:, 2].multiply(10.0))
    np.testing.assert_allclose(y2[:, :2], y[:, :2], atol=1e-5)


def test_conditional_scale_and_offset_are_affine_in_cond():
    bn = nnx.view(
        ConditionalBatchNorm(C, T, D, rngs=nnx.Rngs(jax.random.key(0, impl="rbg"))),
        update_spectral=False,
    )
    x, k = _x(1)
    c1, c2 = jax.random.normal(k, (2, B, D))
    y1, y2, y12 = bn(x, c1), bn(x, c2), bn(x, 0.5 * (c1 + c2))
    np.testing.assert_allclose(y12, 0.5 * (y1 + y2), rtol=1e-4, atol=1e-4)
    assert not np.allclose(y1, y2)
    normalised = ConditionalBatchNorm(C, T, None, rngs=nnx.Rngs(jax.random.key(0, impl="rbg")))(x)
    gamma = 1.0 + bn.gain_proj(c1)
    beta = bn.bias_proj(c1)
    np.testing.assert_allclose(
        y1, normalised * gamma[:, None, None, None] + beta[:, None, None, None], atol=1e-4
    )
    with pytest.raises(ValueError, match="cond must be given"):
        bn(x)
    with pytest.raises(ValueError, match=r"x must be \[B, 3, H, W, 6\]"):
        bn(x[:, :2], c1)


def test_standing_statistics_average_many_batches():
    bn = ConditionalBatchNorm(C, T, None, rngs=nnx.Rngs(jax.random.key(0, impl="rbg")))
    acc = nnx.view(bn, bn_mode="accumulate")
    batches = [_x(s, scale=1.0 + s)[0] for s in range(3)]
    for xb in batches:
        acc(xb)
    assert float(bn.standing_count[...]) == 3.0
    mean = np.mean([xb.mean(axis=(0, 2, 3)) for xb in batches], axis=0)  # [T, C]
    sq = np.mean([(xb**2).mean(axis=(0, 2, 3)) for xb in batches], axis=0)
    var = sq - mean**2
    standing = nnx.view(bn, bn_mode="standing")
    xt, _ = _x(9)
    expected = (xt - mean[:, None, None]) / np.sqrt(var[:, None, None] + bn.eps)
    np.testing.assert_allclose(standing(xt), expected, rtol=1e-3, atol=1e-3)
    # Standing mode does not accumulate and does not depend on the batch.
    np.testing.assert_allclose(standing(xt[:1]), expected[:1], rtol=1e-3, atol=1e-3)
    assert float(bn.standing_count[...]) == 3.0
    reset_standing_stats(bn)
    assert float(bn.standing_count[...]) == 0.0
    assert float(jnp.abs(bn.standing_mean_sum[...]).sum()) == 0.0
    with pytest.raises(ValueError, match="bn_mode must be one of"):
        nnx.view(bn, bn_mode="eval")


def test_cross_replica_statistics_match_global_batch():
    bn = ConditionalBatchNorm(
        C, T, None, rngs=nnx.Rngs(jax.random.key(0, impl="rbg")), axis_name="data"
    )
    x, _ = _x(3)
    graphdef, state = nnx.split(bn)

    def apply(xs):
        return nnx.merge(graphdef, state)(xs)

    # Two "replicas" of B/2 samples each, statistics averaged over the mapped axis.
    per_replica = jax.vmap(apply, axis_name="data")(x.reshape(2, B // 2, T, H, W, C))
    plain = ConditionalBatchNorm(C, T, None, rngs=nnx.Rngs(jax.random.key(0, impl="rbg")))(x)
    np.testing.assert_allclose(per_replica.reshape(x.shape), plain, rtol=1e-4, atol=1e-4)
