"""Configurations of section 4.1 build; bits/dim of a uniform model is exactly 8."""

import dataclasses

import ar_video
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import subscale
from ar_video.config import VARIANTS
from flax import nnx


def _num_params(model):
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


@pytest.mark.parametrize("variant", VARIANTS)
def test_paper_configurations_build_without_allocating(variant):
    counts = {}
    for size in ("base", "large"):
        config = ar_video.paper_config(variant, size)
        model = nnx.eval_shape(
            lambda config=config: ar_video.VideoTransformer(config, rngs=nnx.Rngs(0))
        )
        counts[size] = _num_params(model)
        assert all(isinstance(x, jax.ShapeDtypeStruct) for x in jax.tree.leaves(nnx.state(model)))
    # Section 4.1: 46M parameters (base) and 373M (large); spatiotemporal within 0.1%.
    tolerance = 1e-3 if variant == "spatiotemporal" else 3e-3
    assert abs(counts["base"] / 46e6 - 1) < tolerance, counts
    assert abs(counts["large"] / 373e6 - 1) < tolerance, counts
    # The forward pass composes at the paper's shapes (abstractly): a batch of slices.
    config = dataclasses.replace(
        ar_video.paper_config(variant, "base"), attention_implementation="xla"
    )
    model = nnx.eval_shape(lambda: ar_video.VideoTransformer(config, rngs=nnx.Rngs(0)))
    graphdef, state = nnx.split(model)
    channels = jax.ShapeDtypeStruct((2, *config.video_shape, 6), jnp.int32)
    index = jax.ShapeDtypeStruct((2,), jnp.int32)
    out = jax.eval_shape(
        lambda s, c, n: nnx.merge(graphdef, s).slice_log_probs(c, n), state, channels, index
    )
    assert out.shape == (2, *config.slice_shape, 6)


def _layer_params_by_equation(layer):
    """Eqs. 2-6 of one layer: two layer norms (scale, offset), W_qkv, the three relative-bias
    tables, W_p and T1, T2, all without biases."""
    d, na, da = layer.hidden_size, layer.num_heads, layer.head_dim
    tables = na * sum(2 * b - 1 for b in layer.block_shape)
    return 2 * 2 * d + d * 3 * na * da + tables + na * da * d + 2 * d * d


@pytest.mark.parametrize("size", ["base", "large"])
def test_every_layer_has_exactly_the_equations_parameters(size):
    config = ar_video.paper_config("spatiotemporal", size, first_slice_decoder=True)
    model = nnx.eval_shape(lambda: ar_video.VideoTransformer(config, rngs=nnx.Rngs(0)))
    modules = (m for _, m in nnx.iter_modules(model))
    layers = [m for m in modules if isinstance(m, ar_video.TransformerLayer)]
    expected = 8 + 8 + 16  # encoder, decoder, first-slice decoder
    assert len(layers) == expected
    for layer in layers:
        assert _num_params(layer) == _layer_params_by_equation(layer)
        assert layer.output.bias is None and layer.mlp_in.bias is None
        assert layer.mlp_out.bias is None


def test_paper_schedules_and_kinetics_variant():
    config = ar_video.paper_config("spatiotemporal", "large", first_slice_decoder=True)
    assert config.slice_shape == (4, 32, 32) and config.num_slices == 16
    blocks = [layer.block_shape for layer in config.encoder_layers]
    assert blocks == [(4, 8, 4), (4, 4, 8), (1, 32, 4), (1, 4, 32)] + [
        (1, 4, 32),
        (1, 32, 4),
        (4, 4, 8),
        (4, 8, 4),
    ]
    assert [layer.num_heads for layer in config.decoder_layers] == [8] * 4 + [16] * 4
    assert len(config.first_slice_decoder_layers) == 16
    single = ar_video.paper_config("single_frame")
    assert single.slice_shape == (1, 64, 64) and single.context_kernel == (6, 1, 1)
    assert single.encoder_layers[2].block_shape == (1, 2, 64)
    spatial = ar_video.paper_config("spatial")
    assert spatial.video_shape == (4, 64, 64) and spatial.slice_shape == (4, 32, 32)
    model = nnx.eval_shape(lambda: ar_video.VideoTransformer(config, rngs=nnx.Rngs(0)))
    assert model.first_slice_decoder is not None and len(model.first_slice_decoder.layers) == 16


def test_config_validation():
    with pytest.raises(ValueError, match="variant"):
        ar_video.paper_config("temporal")
    with pytest.raises(ValueError, match="block_shape"):
        dataclasses.replace(
            ar_video.tiny_config(), encoder_layers=(ar_video.LayerConfig((3, 4, 4), 2),)
        )
    with pytest.raises(ValueError, match="subscale_factor"):
        dataclasses.replace(ar_video.tiny_config(), subscale_factor=(3, 2, 2))


def test_uniform_model_scores_exactly_8_bits_per_dim(tiny_kinetics_model, log_probs_fn):
    graphdef, state = nnx.split(tiny_kinetics_model)
    uniform = nnx.merge(graphdef, jax.tree.map(jnp.copy, state))  # leave the fixture intact
    for heads in (uniform.heads, uniform.first_slice_heads):
        heads.logits_projection.kernel[...] = jnp.zeros_like(heads.logits_projection.kernel[...])
    config = uniform.config
    k_video, k_cond = jax.random.split(jax.random.key(10))
    video = jax.random.randint(k_video, (2, *config.video_shape, 3), 0, 256).astype(jnp.uint8)
    cond = jax.random.normal(k_cond, (2, config.video_shape[0], config.conditioning_size))
    log_probs = log_probs_fn(uniform, video, cond)
    for prime in (0, 1, 3):
        np.testing.assert_allclose(ar_video.bits_per_dim(log_probs, prime), 8.0, rtol=1e-6)
    # The trained model is not uniform: the metric is not a constant.
    trained = ar_video.bits_per_dim(log_probs_fn(tiny_kinetics_model, video, cond), 1)
    assert abs(float(trained) - 8.0) > 1e-3
    # Excluding primed frames: a model that is perfect on frame 0 still scores 8 with prime 1.
    perfect_first = log_probs.at[:, 0].set(0.0)
    np.testing.assert_allclose(ar_video.bits_per_dim(perfect_first, 1), 8.0, rtol=1e-6)
    assert float(ar_video.bits_per_dim(perfect_first, 0)) < 8.0
    with pytest.raises(ValueError, match="num_prime_frames"):
        ar_video.bits_per_dim(log_probs, config.video_shape[0])


def test_batch_of_mixed_slices_matches_whole_video(tiny_kinetics_model, log_probs_fn):
    """Training batches mix slice 0 (first-slice decoder) with later slices (encoder path)."""
    model = tiny_kinetics_model
    config = model.config
    k_video, k_cond = jax.random.split(jax.random.key(15))
    video = jax.random.randint(k_video, (2, *config.video_shape, 3), 0, 256).astype(jnp.uint8)
    cond = jax.random.normal(k_cond, (2, config.video_shape[0], config.conditioning_size))
    index = jnp.array([0, 5])
    mixed = nnx.jit(lambda m, c, n, x: m.slice_log_probs(c, n, x))(
        model, ar_video.video_to_channels(video), index, cond
    )
    full = subscale.to_slices(log_probs_fn(model, video, cond), config.subscale_factor)
    np.testing.assert_allclose(mixed[0], full[0, 0], atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(mixed[1], full[1, 5], atol=1e-5, rtol=1e-5)
