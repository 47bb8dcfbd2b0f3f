"""The spatial and single-frame structures (section 4.1) train, score bits/dim and sample.

Tiny stand-ins keep each variant's defining structure: spatial subscaling `s = (1, 2, 2)` with
`k = s`, and single-frame `s = (T, 1, 1)` with a temporal context kernel larger than the stride
allows to centre (`k_t = 3`, negative encoder padding for later slices, like `k = (6, 1, 1)`).
"""

import dataclasses

import ar_video
import jax
import numpy as np
import pytest
from flax import nnx

VARIANTS = {
    "spatial": {"video_shape": (2, 8, 8), "subscale_factor": (1, 2, 2)},
    "single_frame": {"video_shape": (4, 4, 8), "subscale_factor": (4, 1, 1)},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_trains_scores_and_samples(variant, random_model_factory, log_probs_fn):
    config = ar_video.tiny_config(attention_implementation="xla", **VARIANTS[variant])
    if variant == "single_frame":
        config = dataclasses.replace(config, context_kernel=(3, 1, 1))
    model = random_model_factory(config, jax.random.key(11))

    # One RMSProp step on a batch of slices from different videos.
    optimizer = ar_video.make_optimizer(learning_rate=1e-3, initial_scale=0.0)
    graphdef, state = ar_video.init_train_state(model, optimizer)
    k_video, k_slice, k_sample = jax.random.split(jax.random.key(12), 3)
    batch = {
        "video": jax.random.randint(k_video, (4, *config.video_shape, 3), 0, 256).astype(np.uint8),
        "slice_index": jax.random.randint(k_slice, (4,), 0, config.num_slices),
    }
    step = jax.jit(ar_video.make_train_step(graphdef, optimizer, num_prime_frames=1))
    state, metrics = step(state, batch)
    assert np.isfinite(float(metrics["loss"])) and int(state["step"]) == 1
    assert 0.0 < float(metrics["bits_per_dim"]) < 16.0

    # Incremental sampling reproduces the parallel forward pass's log-probabilities.
    trained = nnx.merge(graphdef, state["params"])
    prime = ar_video.video_to_channels(batch["video"][:2])
    channels, log_probs = ar_video.sample_window(
        trained, k_sample, prime, num_prime_frames=1, temperature=0.9
    )
    np.testing.assert_array_equal(channels[:, :1], prime[:, :1])
    full = log_probs_fn(trained, ar_video.channels_to_video(channels), None)
    np.testing.assert_allclose(log_probs, full, atol=2e-5, rtol=1e-5)
    bits = ar_video.bits_per_dim(full, num_prime_frames=1)
    assert np.isfinite(float(bits))
