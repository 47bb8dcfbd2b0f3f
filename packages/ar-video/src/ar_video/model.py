"""The subscale Video Transformer: log-likelihoods, the loss of Eq. 9 and bits per dimension."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import subscale
from flax import nnx

from ar_video.channel_heads import ChannelHeads, log_likelihood
from ar_video.config import NUM_CHANNELS, VideoTransformerConfig
from ar_video.slice_decoder import SliceDecoder
from ar_video.slice_encoder import SliceEncoder


def video_to_channels(video: jax.Array) -> jax.Array:
    """`[B, T, H, W, 3]` uint8 RGB -> `[B, T, H, W, Nc]` int32 4-bit channels (section 3.3)."""
    return subscale.split_bits(video).astype(jnp.int32)


def channels_to_video(channels: jax.Array) -> jax.Array:
    """`[B, T, H, W, Nc]` 4-bit channels -> `[B, T, H, W, 3]` uint8 RGB."""
    return subscale.merge_bits(channels.astype(jnp.int32))


class VideoTransformer(nnx.Module):
    """`p(x) = prod_i prod_k p(x_i^k | x_<i, x_i^<k)` (Eq. 1) in subscale-then-raster order."""

    def __init__(self, config: VideoTransformerConfig, *, rngs: nnx.Rngs):
        if not isinstance(config, VideoTransformerConfig):
            raise TypeError(f"config must be a VideoTransformerConfig, got {type(config)}")
        self.config = config
        dtype = jnp.dtype(config.dtype)
        self.encoder = SliceEncoder(config, rngs=rngs)
        self.decoder = SliceDecoder(config, config.decoder_layers, conditioned=True, rngs=rngs)
        self.heads = ChannelHeads(config.hidden_size, dtype=dtype, rngs=rngs)
        if config.first_slice_decoder_layers is not None:
            self.first_slice_decoder = SliceDecoder(
                config, config.first_slice_decoder_layers, conditioned=False, rngs=rngs
            )
            self.first_slice_heads = ChannelHeads(config.hidden_size, dtype=dtype, rngs=rngs)
        else:
            self.first_slice_decoder = None
            self.first_slice_heads = None

    def current_slice(self, channels: jax.Array, slice_index: jax.Array | int) -> jax.Array:
        """`[B, T, H, W, Nc]`, index `[B]` or int -> `[B, T/st, H/sh, W/sw, Nc]`."""
        slices = subscale.to_slices(channels, self.config.subscale_factor)  # [B, S, t, h, w, Nc]
        if isinstance(slice_index, (int, np.integer)):
            return slices[:, int(slice_index)]
        index = jnp.broadcast_to(jnp.asarray(slice_index, jnp.int32), (channels.shape[0],))
        return jnp.take_along_axis(slices, index[:, None, None, None, None, None], axis=1)[:, 0]

    def slice_logits(
        self,
        channels: jax.Array,
        slice_index: jax.Array | int,
        conditioning: jax.Array | None = None,
    ) -> jax.Array:
        """Logits of every channel of the current slice, all positions in parallel.

        Args:
          channels: `[B, T, H, W, Nc]` integer 4-bit channels of the video window (only the
            current slice and those before it influence the result).
          slice_index: int or `[B]` int32 generation index of each example's current slice
            (training shuffles slices across videos).
          conditioning: `[B, T, C]` per-frame auxiliary features, or None.

        Returns:
          `[B, T/st, H/sh, W/sw, Nc, Nv]` float32 logits.
        """
        current = self.current_slice(channels, slice_index)
        static = isinstance(slice_index, (int, np.integer))
        if self.first_slice_decoder is not None and static and int(slice_index) == 0:
            return self._first_slice_logits(current)
        logits = self._subscale_logits(channels, current, slice_index, conditioning)
        if self.first_slice_decoder is not None and not static:
            # A batch may mix first slices with later ones: both paths run, one is kept (batch
            # first slices separately, with a static index, to avoid the extra work).
            is_first = (jnp.asarray(slice_index) == 0).reshape(-1, 1, 1, 1, 1, 1)
            logits = jnp.where(is_first, self._first_slice_logits(current), logits)
        return logits

    def _first_slice_logits(self, current: jax.Array) -> jax.Array:
        """Kinetics variant: slice `(0, 0, 0)` from its own unconditioned decoder and heads."""
        return self.first_slice_heads(self.first_slice_decoder(current, None), current)

    def _subscale_logits(self, channels, current, slice_index, conditioning) -> jax.Array:
        """Encoder on the preceding slices, decoder and heads on the current slice."""
        z = self.encoder(channels, slice_index, conditioning)
        y = self.decoder(current, self.decoder.project_context(z))
        return self.heads(y, current)

    def slice_log_probs(
        self,
        channels: jax.Array,
        slice_index: jax.Array | int,
        conditioning: jax.Array | None = None,
    ) -> jax.Array:
        """`ln p` of the true channel values of the current slice: `[B, t, h, w, Nc]`."""
        logits = self.slice_logits(channels, slice_index, conditioning)
        return log_likelihood(logits, self.current_slice(channels, slice_index))

    def log_probs(self, video: jax.Array, conditioning: jax.Array | None = None) -> jax.Array:
        """`ln p` of every 4-bit channel of every pixel of a video (all `S` slices).

        Args:
          video: `[B, T, H, W, 3]` uint8 with `(T, H, W) = config.video_shape`.
          conditioning: `[B, T, C]` per-frame auxiliary features, or None.

        Returns:
          `[B, T, H, W, Nc]` float32.
        """
        expected = (*self.config.video_shape, 3)
        if video.ndim != 5 or tuple(video.shape[1:]) != expected:
            raise ValueError(f"video must be [B, {expected}], got shape {tuple(video.shape)}")
        channels = video_to_channels(video)
        batch = channels.shape[0]
        first = 1 if self.first_slice_decoder is not None else 0

        def one_slice(n):
            index = jnp.full((batch,), n, jnp.int32)
            current = self.current_slice(channels, index)
            logits = self._subscale_logits(channels, current, index, conditioning)
            return log_likelihood(logits, current)  # [B, t, h, w, Nc]

        # One compiled slice computation, mapped over the (dynamic) slice index.
        per_slice = jax.lax.map(one_slice, jnp.arange(first, self.config.num_slices))
        per_slice = jnp.moveaxis(per_slice, 0, 1)  # [B, S - first, t, h, w, Nc]
        if first:
            first_slice = self.slice_log_probs(channels, 0, conditioning)[:, None]
            per_slice = jnp.concatenate([first_slice, per_slice], axis=1)
        return subscale.from_slices(per_slice, self.config.subscale_factor)


def slice_loss_mask(
    config: VideoTransformerConfig, slice_index: jax.Array, num_prime_frames: int
) -> jax.Array:
    """`[B, T/st, 1, 1]` float32: 1 where a slice frame is not a primed video frame.

    Slice frame `j` of a slice with temporal offset `a` is video frame `j * st + a`; the loss
    of the first `num_prime_frames` video frames is masked (section 4.1).
    """
    st = config.subscale_factor[0]
    offsets_t = jnp.asarray([o[0] for o in config.slice_offsets], jnp.int32)
    a = offsets_t[jnp.asarray(slice_index, jnp.int32).reshape(-1)]  # [B]
    frames = jnp.arange(config.slice_shape[0])[None] * st + a[:, None]  # [B, t]
    return (frames >= num_prime_frames).astype(jnp.float32)[:, :, None, None]


def negative_log_likelihood(log_probs: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """Eq. 9 per example: `-sum ln p` over pixels and channels (where `mask` is 1).

    Args:
      log_probs: `[B, ..., Nc]`.
      mask: broadcastable to `log_probs[..., 0]`, or None.

    Returns:
      `[B]` float32 NLL in nats.
    """
    nll = -log_probs.astype(jnp.float32).sum(-1)
    if mask is not None:
        nll = nll * mask
    return nll.reshape(nll.shape[0], -1).sum(-1)


def bits_per_dim(
    log_probs: jax.Array, num_prime_frames: int = 0, mask: jax.Array | None = None
) -> jax.Array:
    """Average `-log2 p` per 8-bit RGB channel, excluding primed frames (section 4.1).

    Each RGB channel is two 4-bit channels, so its bits are the sum over its coarse and fine
    halves: a uniform model scores exactly 8.

    Args:
      log_probs: `[B, T, H, W, Nc]` natural-log probabilities (`VideoTransformer.log_probs`).
      num_prime_frames: leading frames excluded from the average.
      mask: optional `[B, T, H, W]`-broadcastable weights used instead of `num_prime_frames`
        (e.g. `slice_loss_mask` for log-probabilities of single slices).

    Returns:
      Scalar float32.
    """
    if log_probs.shape[-1] != NUM_CHANNELS:
        raise ValueError(f"log_probs must end in Nc={NUM_CHANNELS}, got {log_probs.shape}")
    if mask is None:
        if not 0 <= num_prime_frames < log_probs.shape[1]:
            raise ValueError(
                f"num_prime_frames must be in [0, T={log_probs.shape[1]}), got {num_prime_frames}"
            )
        frames = jnp.arange(log_probs.shape[1]) >= num_prime_frames
        mask = frames.astype(jnp.float32)[None, :, None, None]
    mask = jnp.broadcast_to(mask, log_probs.shape[:-1]).astype(jnp.float32)
    total_bits = negative_log_likelihood(log_probs, mask).sum() / np.log(2.0)
    return total_bits / (3.0 * mask.sum())
