"""Tests for the generator, its encoder and standing-statistics sampling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from gan_video import Generator, get_preset, reset_standing_stats, sample_latents


def _key(seed):
    return jax.random.key(seed, impl="rbg")


def _cond(cfg, b=2, seed=1):
    shape = (b, cfg.num_cond_frames, cfg.resolution, cfg.resolution, cfg.channels)
    return jax.random.uniform(_key(seed), shape, minval=-1.0, maxval=1.0)


def test_generator_shapes_motion_and_encoder_channels():
    cfg = get_preset("tiny", num_classes=3)
    g = Generator(cfg, rngs=nnx.Rngs(_key(0)))
    cond = _cond(cfg)
    z = jax.random.normal(_key(2), (2, cfg.z_dim))
    run = nnx.jit(lambda g, c, z, y: g(c, z, y))
    frames, aux = run(g, cond, z, jnp.array([0, 2]))
    assert frames.shape == (2, cfg.num_pred_frames, 16, 16, 3)
    # One motion field per warping stage, at 2x2, 4x4, 8x8 (resolution / 8, / 4, / 2).
    assert [w.shape for w in aux["warp_weights"]] == [
        (2, cfg.num_pred_frames, r, r, 9) for r in (2, 4, 8)
    ]
    # The encoder initial states have each stage's hidden width.
    frozen_encoder = nnx.view(g.encoder, update_spectral=False)
    states = jax.eval_shape(frozen_encoder, cond)
    widths = [m * cfg.g_ch for m in cfg.g_channel_multipliers[:3]]
    assert [s.shape for s in states] == [(2, r, r, w) for r, w in zip((2, 4, 8), widths)]
    # Conditioning frames, latents and labels all change the prediction.
    other_cond = run(g, _cond(cfg, seed=5), z, jnp.array([0, 2]))[0]
    other_z = run(g, cond, z + 1.0, jnp.array([0, 2]))[0]
    other_y = run(g, cond, z, jnp.array([1, 1]))[0]
    for other in (other_cond, other_z, other_y):
        assert not np.allclose(frames, other, atol=1e-4)
    with pytest.raises(ValueError, match="cond_frames must have shape"):
        g(cond[:, :1], z)
    with pytest.raises(ValueError, match="z must have shape"):
        g(cond, z[:, :3])


def test_min_warp_side_gives_the_smaller_maps_a_convgru():
    cfg = get_preset("tiny", min_warp_side=4)  # 16 px: stages at 2x2, 4x4, 8x8
    assert cfg.stage_units() == ("convgru", "tsru_p", "tsru_p")
    g = nnx.eval_shape(lambda: Generator(cfg, rngs=nnx.Rngs(_key(0))))  # shapes only
    assert [type(u).__name__ for u in g.units] == ["ConvGRU", "TSRU", "TSRU"]
    z = jax.random.normal(_key(2), (2, cfg.z_dim))
    _, aux = nnx.eval_shape(lambda g, c, z: g(c, z), g, _cond(cfg), z)
    # Only the warping stages report kernels, still coarse to fine.
    assert [w.shape[2] for w in aux["warp_weights"]] == [4, 8]
    # A unit that does not warp ignores the field; 0 (the default) warps on every stage.
    assert (
        get_preset("tiny", recurrent_unit="convgru", min_warp_side=16).stage_units()
        == ("convgru",) * 3
    )
    assert get_preset("tiny").stage_units() == ("tsru_p",) * 3
    with pytest.raises(ValueError, match=r"min_warp_side must be <= 8 .* got 16"):
        get_preset("tiny", min_warp_side=16)
    with pytest.raises(ValueError, match="min_warp_side must be an int >= 0, got -1"):
        get_preset("tiny", min_warp_side=-1)
    with pytest.raises(TypeError, match="min_warp_side must be an int >= 0, got 8.0"):
        get_preset("tiny", min_warp_side=8.0)


def test_standing_statistics_make_sampling_batch_independent():
    cfg = get_preset("tiny", recurrent_unit="convgru")
    g = Generator(cfg, rngs=nnx.Rngs(_key(0)))
    acc = nnx.view(g, bn_mode="accumulate", update_spectral=False)
    step = nnx.jit(lambda m, c, z: m(c, z)[0])
    for i in range(3):
        step(acc, _cond(cfg, b=4, seed=10 + i), jax.random.normal(_key(20 + i), (4, cfg.z_dim)))
    assert float(g.final_bn.standing_count[...]) == 3.0
    standing = nnx.view(g, bn_mode="standing", update_spectral=False)
    cond, z = _cond(cfg, b=4), jax.random.normal(_key(3), (4, cfg.z_dim))
    # Same first two samples, different other two (same shapes: no recompilation).
    cond2 = cond.at[2:].set(_cond(cfg, b=2, seed=30))
    z2 = z.at[2:].set(jax.random.normal(_key(31), (2, cfg.z_dim)))
    # With standing statistics a sample does not depend on the rest of its batch ...
    np.testing.assert_allclose(
        step(standing, cond2, z2)[:2], step(standing, cond, z)[:2], atol=1e-5
    )
    # ... whereas with batch statistics it does.
    train = nnx.view(g, update_spectral=False)
    assert not np.allclose(step(train, cond2, z2)[:2], step(train, cond, z)[:2], atol=1e-4)
    reset_standing_stats(g)
    assert float(g.final_bn.standing_count[...]) == 0.0


def test_sample_latents_truncation():
    z = sample_latents(_key(0), 64, 16, truncation=0.5)
    assert z.shape == (64, 16) and float(jnp.abs(z).max()) <= 0.5
    assert float(jnp.std(z)) > 0.1
    np.testing.assert_array_equal(sample_latents(_key(0), 3, 4, truncation=0.0), 0.0)
    assert float(jnp.abs(sample_latents(_key(0), 64, 16)).max()) > 1.0
    with pytest.raises(ValueError, match="truncation must be"):
        sample_latents(_key(0), 3, 4, truncation=-1.0)
