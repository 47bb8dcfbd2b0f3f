"""The slice encoder: the partially masked video as context for the current slice (section 3.2)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import subscale
from flax import nnx

from ar_video.config import NUM_CHANNELS, NUM_VALUES, VideoTransformerConfig
from ar_video.layers import TransformerLayer, apply_layer


def _window_table(config: VideoTransformerConfig) -> tuple[np.ndarray, tuple[tuple[int, int], ...]]:
    """Per-slice crop starts reproducing `subscale.encoder_padding` with one shared padding.

    The padding `(lo, hi)` of the strided context convolution depends on the slice offset.
    To batch slices with different offsets, the video is padded once by the largest `lo`
    (and enough at the end) and every slice crops the window its own padding would give:
    start `max_lo - lo` and length `N + lo + hi` (the same for every offset).

    Returns:
      `starts: [S, 3]` int32 (in generation order) and the shared `((lo, hi),) * 3` padding.
    """
    pads = np.array(
        [
            subscale.encoder_padding(config.context_kernel, config.subscale_factor, offset)
            for offset in config.slice_offsets
        ]
    )  # [S, 3, 2]
    lo, hi = pads[..., 0], pads[..., 1]
    max_lo = np.maximum(lo.max(axis=0), 0)  # [3]
    starts = max_lo[None] - lo  # [S, 3]
    length = np.asarray(config.video_shape) + lo[0] + hi[0]  # [3], offset independent
    end_pad = np.maximum((starts + length[None]).max(axis=0) - max_lo - config.video_shape, 0)
    shared = tuple((int(a), int(b)) for a, b in zip(max_lo, end_pad))
    return starts.astype(np.int32), shared


class SliceEncoder(nnx.Module):
    """Encodes the preceding slices of a video for the slice with generation index `n`.

    masked video -> one-hot of the `Nc` 4-bit channels -> strided 3D convolution (kernel `k`,
    stride `s`, padding centred on the current slice) -> + per-axis positional embeddings
    + slice-index embedding -> [per-frame conditioning] -> linear to `d` -> `L` layers.
    """

    def __init__(self, config: VideoTransformerConfig, *, rngs: nnx.Rngs):
        self.config = config
        de, d = config.embedding_size, config.hidden_size
        dtype = jnp.dtype(config.dtype)
        self.dtype = dtype
        t, h, w = config.slice_shape
        in_features = NUM_CHANNELS * NUM_VALUES
        fan_in = in_features * int(np.prod(config.context_kernel))
        init = nnx.initializers.normal(1.0 / np.sqrt(fan_in))
        self.context_kernel = nnx.Param(
            init(rngs.params(), (*config.context_kernel, in_features, de))
        )  # DHWIO
        self.context_bias = nnx.Param(jnp.zeros((de,)))
        emb = nnx.initializers.normal(0.02)
        self.position_t = nnx.Param(emb(rngs.params(), (t, de)))
        self.position_h = nnx.Param(emb(rngs.params(), (h, de)))
        self.position_w = nnx.Param(emb(rngs.params(), (w, de)))
        self.slice_embedding = nnx.Param(emb(rngs.params(), (config.num_slices, de)))
        self.input_projection = nnx.Linear(de + config.conditioning_size, d, dtype=dtype, rngs=rngs)
        self.layers = nnx.List(
            [
                TransformerLayer(
                    d,
                    layer.num_heads,
                    config.head_dim,
                    layer.block_shape,
                    causal=False,
                    implementation=config.attention_implementation,
                    dtype=dtype,
                    rngs=rngs,
                )
                for layer in config.encoder_layers
            ]
        )

    def embed(
        self,
        channels: jax.Array,
        slice_index: jax.Array,
        conditioning: jax.Array | None = None,
    ) -> jax.Array:
        """The initial encoder representation projected to `d` (before the layers).

        Args:
          channels: `[B, T, H, W, Nc]` integer 4-bit channels of the whole video window; only
            pixels of slices before `slice_index` are read.
          slice_index: `[B]` int32 generation index of each example's current slice.
          conditioning: `[B, T, C]` per-frame auxiliary features, or None.

        Returns:
          `[B, T/st, H/sh, W/sw, d]`.
        """
        config = self.config
        batch = channels.shape[0]
        if channels.ndim != 5 or tuple(channels.shape[1:]) != (*config.video_shape, NUM_CHANNELS):
            raise ValueError(
                f"channels must be [B, {', '.join(map(str, config.video_shape))}, "
                f"{NUM_CHANNELS}], got shape {tuple(channels.shape)}"
            )
        slice_index = jnp.broadcast_to(jnp.asarray(slice_index, jnp.int32), (batch,))
        # Only preceding slices are visible; masked pixels get an all-zero one-hot.
        _, visible = subscale.mask_preceding(channels, config.subscale_factor, slice_index)
        onehot = jax.nn.one_hot(channels, NUM_VALUES, dtype=self.dtype)  # [B, T, H, W, Nc, Nv]
        onehot = onehot.reshape(*channels.shape[:4], -1) * visible.astype(self.dtype)
        starts_table, shared_pad = _window_table(config)
        padded = jnp.pad(onehot, ((0, 0), *shared_pad, (0, 0)))
        length = tuple(
            n + lo + hi
            for n, (lo, hi) in zip(
                config.video_shape,
                subscale.encoder_padding(
                    config.context_kernel, config.subscale_factor, config.slice_offsets[0]
                ),
            )
        )
        starts = jnp.asarray(starts_table)[slice_index]  # [B, 3]

        def crop(video, start):
            return jax.lax.dynamic_slice(
                video, (start[0], start[1], start[2], 0), (*length, video.shape[-1])
            )

        window = jax.vmap(crop)(padded, starts)  # [B, T + lo + hi, ..., Nc * Nv]
        z = jax.lax.conv_general_dilated(
            window,
            self.context_kernel[...].astype(self.dtype),
            window_strides=config.subscale_factor,
            padding="VALID",
            dimension_numbers=("NDHWC", "DHWIO", "NDHWC"),
        )  # [B, T/st, H/sh, W/sw, de]
        z = z + self.context_bias[...].astype(self.dtype)
        z = (
            z
            + self.position_t[...][:, None, None]
            + self.position_h[...][None, :, None]
            + self.position_w[...][None, None, :]
            + self.slice_embedding[...][slice_index][:, None, None, None]
        ).astype(self.dtype)
        if config.conditioning_size:
            if conditioning is None:
                raise ValueError(
                    f"conditioning of shape [B, T, {config.conditioning_size}] is required by "
                    "this config (conditioning_size > 0), got None"
                )
            expected = (batch, config.video_shape[0], config.conditioning_size)
            if tuple(conditioning.shape) != expected:
                raise ValueError(
                    f"conditioning must have shape {expected}, got {tuple(conditioning.shape)}"
                )
            # Slice frame j of offset (a, b, c) is video frame j * st + a.
            st = config.subscale_factor[0]
            offsets_t = jnp.asarray([o[0] for o in config.slice_offsets])[slice_index]  # [B]
            frames = jnp.arange(config.slice_shape[0])[None] * st + offsets_t[:, None]
            per_frame = jnp.take_along_axis(conditioning, frames[..., None], axis=1)
            per_frame = jnp.broadcast_to(
                per_frame[:, :, None, None], (*z.shape[:4], config.conditioning_size)
            )
            z = jnp.concatenate([z, per_frame.astype(self.dtype)], axis=-1)
        elif conditioning is not None:
            raise ValueError("conditioning was given but config.conditioning_size is 0")
        return self.input_projection(z)

    def __call__(
        self,
        channels: jax.Array,
        slice_index: jax.Array,
        conditioning: jax.Array | None = None,
    ) -> jax.Array:
        """Encodes the visible context of the current slices.

        Args:
          channels: `[B, T, H, W, Nc]` integer 4-bit channels of the whole video window.
          slice_index: `[B]` (or scalar) int32 generation index of the current slice.
          conditioning: `[B, T, C]` per-frame auxiliary features, or None.

        Returns:
          `z_L: [B, T/st, H/sh, W/sw, d]`.
        """
        z = self.embed(channels, slice_index, conditioning)
        for layer in self.layers:
            z = apply_layer(layer, z, remat=self.config.remat)
        return z
