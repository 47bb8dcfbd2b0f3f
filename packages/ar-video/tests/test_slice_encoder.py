"""The batched per-slice crop of the encoder equals a convolution padded by `encoder_padding`."""

import dataclasses

import ar_video
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import subscale
from flax import nnx


def _direct_embed(encoder, channels, n):
    """Reference: mask, one-hot, conv with `subscale.encoder_padding` of slice n, embeddings."""
    config = encoder.config
    masked_visible = subscale.mask_preceding(channels, config.subscale_factor, n)[1]
    onehot = jax.nn.one_hot(channels, 16).reshape(*channels.shape[:4], 96) * masked_visible
    padding = subscale.encoder_padding(
        config.context_kernel, config.subscale_factor, config.slice_offsets[n]
    )
    z = jax.lax.conv_general_dilated(
        onehot,
        encoder.context_kernel[...],
        window_strides=config.subscale_factor,
        padding=padding,
        dimension_numbers=("NDHWC", "DHWIO", "NDHWC"),
    )
    z = (
        z
        + encoder.context_bias[...]
        + encoder.position_t[...][:, None, None]
        + encoder.position_h[...][None, :, None]
        + encoder.position_w[...][None, None, :]
        + encoder.slice_embedding[...][n]
    )
    return encoder.input_projection(z)


@pytest.mark.parametrize(
    "video_shape, factor, kernel",
    [
        ((4, 8, 8), (2, 2, 2), (2, 2, 2)),  # k = s, like the spatiotemporal model
        ((4, 4, 4), (4, 1, 1), (3, 1, 1)),  # k < s with negative padding, like single frame
    ],
)
def test_batched_crop_matches_encoder_padding(video_shape, factor, kernel, random_model_factory):
    config = ar_video.tiny_config(
        attention_implementation="xla", video_shape=video_shape, subscale_factor=factor
    )
    config = dataclasses.replace(config, context_kernel=kernel)
    encoder = random_model_factory(config, jax.random.key(13)).encoder
    channels = jax.random.randint(jax.random.key(14), (config.num_slices, *video_shape, 6), 0, 16)
    slices = jnp.arange(config.num_slices)  # example b encodes slice b

    @nnx.jit
    def both(encoder, channels):
        batched = encoder.embed(channels, slices)
        direct = jnp.concatenate(
            [_direct_embed(encoder, channels[n : n + 1], n) for n in range(config.num_slices)]
        )
        return batched, direct

    batched, direct = both(encoder, channels)
    np.testing.assert_allclose(batched, direct, atol=1e-5, rtol=1e-5)
