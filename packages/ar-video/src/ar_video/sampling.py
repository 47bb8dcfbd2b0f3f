"""Sampling slice by slice, pixel by pixel, channel by channel with cached decoder keys/values."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import subscale
from flax import nnx

from ar_video.channel_heads import log_likelihood
from ar_video.config import NUM_CHANNELS
from ar_video.model import VideoTransformer, channels_to_video, video_to_channels


def _sample_slice(model, key, channels, conditioning, temperature, n, num_prime_frames, first):
    """Generates slice `n` of `channels`; returns the slice and its log-probabilities.

    Args:
      model: the `VideoTransformer`.
      key: PRNG key.
      channels: `[B, T, H, W, Nc]` int32, final before slice `n` and on primed frames.
      conditioning: `[B, T, C]` or None.
      temperature: scalar.
      n: int32 scalar (traced) generation index of the slice.
      num_prime_frames: int32 scalar, number of primed video frames.
      first: static; use the separate first-slice decoder (then `n` must be 0).

    Returns:
      `[B, t, h, w, Nc]` int32 slice values and `[B, t, h, w, Nc]` log-probabilities.
    """
    config = model.config
    st = config.subscale_factor[0]
    t, h, w = config.slice_shape
    decoder = model.first_slice_decoder if first else model.decoder
    heads = model.first_slice_heads if first else model.heads
    index = jnp.full((channels.shape[0],), n, jnp.int32)
    context = (
        None if first else decoder.project_context(model.encoder(channels, index, conditioning))
    )
    current = model.current_slice(channels, index)  # [B, t, h, w, Nc]; primed prefix is final
    # Prefill: primed pixels form a raster-order prefix of the slice, so one parallel pass
    # gives their log-probabilities and every layer's keys/values (later entries get
    # overwritten before any query can see them).
    y, cache = decoder(current, context, return_cache=True)
    log_probs = log_likelihood(heads(y, current), current)  # [B, t, h, w, Nc]
    embeddings = jnp.pad(decoder.embed_pixels(current), ((0, 0), (1, 1), (1, 1), (1, 1), (0, 0)))
    # Slice frame j of temporal offset a is video frame j * st + a: primed iff < P.
    a = jnp.asarray([o[0] for o in config.slice_offsets], jnp.int32)[n]
    primed_frames = jnp.clip(-((a - num_prime_frames) // st), 0, t)
    slice_key = jax.random.fold_in(key, n)

    def generate_pixel(i, carry):
        current, embeddings, cache, log_probs = carry
        position = (i // (h * w), (i // w) % h, i % w)
        y, cache = decoder.decode_step(embeddings, context, position, cache)  # [B, d]
        values, pixel_log_probs = heads.sample(
            y, jax.random.fold_in(slice_key, i), temperature=temperature
        )  # [B, Nc]
        corner = (0, *position, 0)
        current = jax.lax.dynamic_update_slice(
            current, values[:, None, None, None].astype(current.dtype), corner
        )
        embedded = decoder.embed_pixels(values)[:, None, None, None]  # [B, 1, 1, 1, de]
        embeddings = jax.lax.dynamic_update_slice(
            embeddings,
            embedded.astype(embeddings.dtype),
            (0, position[0] + 1, position[1] + 1, position[2] + 1, 0),
        )
        log_probs = jax.lax.dynamic_update_slice(
            log_probs, pixel_log_probs[:, None, None, None], corner
        )
        return current, embeddings, cache, log_probs

    current, _, _, log_probs = jax.lax.fori_loop(
        primed_frames * h * w, t * h * w, generate_pixel, (current, embeddings, cache, log_probs)
    )
    return current, log_probs


@functools.partial(jax.jit, static_argnames=("graphdef",))
def _sample_window(graphdef, state, key, channels, conditioning, temperature, num_prime_frames):
    model = nnx.merge(graphdef, state)
    factor = model.config.subscale_factor
    log_probs = subscale.to_slices(jnp.zeros(channels.shape, jnp.float32), factor)

    def generate_slice(n, carry, first=False):
        channels, log_probs = carry
        current, slice_log_probs = _sample_slice(
            model, key, channels, conditioning, temperature, n, num_prime_frames, first
        )
        slices = jax.lax.dynamic_update_index_in_dim(
            subscale.to_slices(channels, factor), current, n, axis=1
        )
        log_probs = jax.lax.dynamic_update_index_in_dim(log_probs, slice_log_probs, n, axis=1)
        return subscale.from_slices(slices, factor), log_probs

    carry = (channels, log_probs)
    start = 0
    if model.first_slice_decoder is not None:
        carry, start = generate_slice(0, carry, first=True), 1
    # One compiled slice step for all (remaining) slices, in generation order.
    channels, log_probs = jax.lax.fori_loop(start, model.config.num_slices, generate_slice, carry)
    return channels, subscale.from_slices(log_probs, factor)


def sample_window(
    model: VideoTransformer,
    key: jax.Array,
    channels: jax.Array,
    *,
    num_prime_frames: int,
    temperature: float = 0.9,
    conditioning: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Samples one model window, keeping its first `num_prime_frames` frames fixed.

    Slices are generated in subscale order; inside a slice, pixels in raster order and the
    `Nc` channels of a pixel one after another. The encoder runs once per slice, the decoder
    once in parallel over the primed prefix, then one position at a time inside a
    `lax.fori_loop`, reading every layer's earlier keys and values from a cache.

    Args:
      model: a `VideoTransformer`.
      key: PRNG key.
      channels: `[B, T, H, W, Nc]` int32 4-bit channels; frames `< num_prime_frames` are the
        priming frames, the rest is ignored.
      num_prime_frames: number of leading frames that are given (traced: windows with
        different priming share one compilation).
      temperature: sampling temperature (section 4.1: 0.9).
      conditioning: `[B, T, C]` per-frame auxiliary features, or None.

    Returns:
      `channels: [B, T, H, W, Nc]` int32 with every non-primed pixel sampled, and
      `log_probs: [B, T, H, W, Nc]`, the model's (temperature 1) log-probability of every
      value, computed incrementally.
    """
    config = model.config
    expected = (*config.video_shape, NUM_CHANNELS)
    if channels.ndim != 5 or tuple(channels.shape[1:]) != expected:
        raise ValueError(f"channels must be [B, {expected}], got shape {tuple(channels.shape)}")
    if not 0 <= num_prime_frames <= config.video_shape[0]:
        raise ValueError(
            f"num_prime_frames must be in [0, T={config.video_shape[0]}], got {num_prime_frames}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    graphdef, state = nnx.split(model)
    return _sample_window(
        graphdef,
        state,
        key,
        jnp.asarray(channels, jnp.int32),
        conditioning,
        jnp.asarray(temperature, jnp.float32),
        jnp.asarray(num_prime_frames, jnp.int32),
    )


def sample(
    model: VideoTransformer,
    key: jax.Array,
    prime: jax.Array,
    *,
    num_frames: int | None = None,
    temperature: float = 0.9,
    conditioning: jax.Array | None = None,
    window_stride: int | None = None,
) -> jax.Array:
    """Continues videos from priming frames, sliding the model window for longer videos.

    The first window holds the priming frames and generates the rest. Each further window
    moves by `window_stride` frames (the last one ends exactly at `num_frames`) and is primed
    on the frames generated so far that it contains.

    Args:
      model: a `VideoTransformer` with window `(T, H, W) = model.config.video_shape`.
      key: PRNG key.
      prime: `[B, P, H, W, 3]` uint8 priming frames, `P < T` (`P` may be 0).
      num_frames: total frames to return, `>= T` or `None` for `T` (e.g. 30 for BAIR).
      temperature: sampling temperature.
      conditioning: `[B, num_frames, C]` per-frame auxiliary features, or None.
      window_stride: frames the window moves per step, `1 <= stride <= T - P`; default `T//2`.

    Returns:
      `[B, num_frames, H, W, 3]` uint8 whose first `P` frames are `prime`.
    """
    config = model.config
    window, height, width = config.video_shape
    if prime.ndim != 5 or tuple(prime.shape[2:]) != (height, width, 3):
        raise ValueError(
            f"prime must be [B, P, {height}, {width}, 3] uint8, got shape {tuple(prime.shape)}"
        )
    if prime.dtype != jnp.uint8:
        raise TypeError(f"prime must be uint8, got {prime.dtype}")
    num_prime = prime.shape[1]
    num_frames = window if num_frames is None else int(num_frames)
    if num_frames < window or not 0 <= num_prime < window:
        raise ValueError(
            f"need 0 <= P < T <= num_frames; got P={num_prime}, T={window}, {num_frames=}"
        )
    stride = window // 2 if window_stride is None else int(window_stride)
    if not 1 <= stride <= window - num_prime:
        raise ValueError(f"window_stride must be in [1, T - P={window - num_prime}], got {stride}")
    if conditioning is not None and conditioning.shape[:2] != (prime.shape[0], num_frames):
        raise ValueError(
            f"conditioning must be [B, num_frames={num_frames}, C], got {conditioning.shape}"
        )
    batch = prime.shape[0]
    video = jnp.zeros((batch, num_frames, height, width, NUM_CHANNELS), jnp.int32)
    video = video.at[:, :num_prime].set(video_to_channels(prime))
    start, generated, step = 0, num_prime, 0
    while generated < num_frames:
        start = min(start, num_frames - window)
        cond = None if conditioning is None else conditioning[:, start : start + window]
        out, _ = sample_window(
            model,
            jax.random.fold_in(key, step),
            video[:, start : start + window],
            num_prime_frames=generated - start,
            temperature=temperature,
            conditioning=cond,
        )
        video = video.at[:, start : start + window].set(out)
        generated = start + window
        start, step = start + stride, step + 1
    return channels_to_video(video)
