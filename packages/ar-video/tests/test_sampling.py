"""Incremental sampling agrees with the parallel forward pass; priming and sliding windows."""

import ar_video
import jax
import jax.numpy as jnp
import numpy as np
import pytest


@pytest.mark.parametrize("model_name", ["tiny_model", "tiny_kinetics_model"])
def test_incremental_log_probs_match_full_forward(model_name, request, log_probs_fn):
    model = request.getfixturevalue(model_name)
    config = model.config
    k_prime, k_sample, k_cond = jax.random.split(jax.random.key(5), 3)
    prime = jax.random.randint(k_prime, (2, *config.video_shape, 6), 0, 16)
    conditioning = None
    if config.conditioning_size:
        conditioning = jax.random.normal(
            k_cond, (2, config.video_shape[0], config.conditioning_size)
        )
    channels, log_probs = ar_video.sample_window(
        model, k_sample, prime, num_prime_frames=1, temperature=0.9, conditioning=conditioning
    )
    np.testing.assert_array_equal(channels[:, :1], prime[:, :1])  # primed pixels kept
    assert (channels >= 0).all() and (channels < 16).all()
    assert not np.array_equal(channels[:, 1:], prime[:, 1:])
    full = log_probs_fn(model, ar_video.channels_to_video(channels), conditioning)
    np.testing.assert_allclose(log_probs, full, atol=2e-5, rtol=1e-5)


def test_sampling_is_deterministic_and_temperature_sharpens(tiny_model):
    config = tiny_model.config
    prime = jax.random.randint(jax.random.key(6), (2, *config.video_shape, 6), 0, 16)
    key = jax.random.key(7)
    a, lp_a = ar_video.sample_window(tiny_model, key, prime, num_prime_frames=2, temperature=1.0)
    b, _ = ar_video.sample_window(tiny_model, key, prime, num_prime_frames=2, temperature=1.0)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[:, :2], prime[:, :2])
    _, lp_cold = ar_video.sample_window(
        tiny_model, key, prime, num_prime_frames=2, temperature=0.05
    )
    # A near-greedy sampler picks likelier values than temperature 1.
    assert lp_cold[:, 2:].mean() > lp_a[:, 2:].mean()


def test_sliding_window_extends_beyond_the_model_window(tiny_model):
    config = tiny_model.config
    t, h, w = config.video_shape
    prime = jax.random.randint(jax.random.key(8), (2, 1, h, w, 3), 0, 256).astype(jnp.uint8)
    video = ar_video.sample(tiny_model, jax.random.key(9), prime, num_frames=t + 2)
    assert video.shape == (2, t + 2, h, w, 3) and video.dtype == jnp.uint8
    np.testing.assert_array_equal(video[:, :1], prime)
    # Later frames are actually generated (random values, not left empty).
    assert len(np.unique(np.asarray(video[:, t:]))) > 4


def test_sampling_rejects_bad_arguments(tiny_model):
    t, h, w = tiny_model.config.video_shape
    prime = jnp.zeros((1, 1, h, w, 3), jnp.uint8)
    with pytest.raises(ValueError, match="num_frames"):
        ar_video.sample(tiny_model, jax.random.key(0), prime, num_frames=t - 1)
    with pytest.raises(TypeError, match="uint8"):
        ar_video.sample(tiny_model, jax.random.key(0), prime.astype(jnp.int32))
    with pytest.raises(ValueError, match="temperature"):
        ar_video.sample_window(
            tiny_model,
            jax.random.key(0),
            jnp.zeros((1, t, h, w, 6), jnp.int32),
            num_prime_frames=1,
            temperature=0.0,
        )
