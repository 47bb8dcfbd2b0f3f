"""The slice decoder: causal block-local layers over the current slice (section 3.2)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ar_video.config import NUM_CHANNELS, NUM_VALUES, LayerConfig, VideoTransformerConfig
from ar_video.layers import TransformerLayer, apply_layer


def causal_conv_mask() -> np.ndarray:
    """`[3, 3, 3]` mask of the 3x3x3 masked convolution.

    A tap `(dt, dy, dx)` (relative to the centre) is kept iff it precedes the centre in raster
    order, so every pixel is represented by its already generated neighbours only (the centre
    itself is excluded: its channels are what the heads predict).
    """
    offsets = np.stack(np.meshgrid(*(np.arange(-1, 2),) * 3, indexing="ij"), axis=-1)  # [3,3,3,3]
    flat = (offsets[..., 0] * 3 + offsets[..., 1]) * 3 + offsets[..., 2]
    return (flat < 0).astype(np.float32)


class SliceDecoder(nnx.Module):
    """Decodes the current slice given the encoder output `z_L` (or nothing for slice 0).

    sum of `Nc` channel embeddings (size `de`) -> 3x3x3 masked convolution to `d`
    -> + positional embeddings -> [+ linear(z_L)] -> `L` causal block-local layers -> `y_L`.
    """

    def __init__(
        self,
        config: VideoTransformerConfig,
        layers: tuple[LayerConfig, ...],
        *,
        conditioned: bool = True,
        rngs: nnx.Rngs,
    ):
        """Builds the decoder.

        Args:
          config: model hyper-parameters.
          layers: the decoder layers (`config.decoder_layers`, or the first-slice decoder's).
          conditioned: add a linear projection of the encoder output `z_L`.
          rngs: parameter initialisation keys.
        """
        self.config = config
        de, d = config.embedding_size, config.hidden_size
        self.dtype = dtype = jnp.dtype(config.dtype)
        t, h, w = config.slice_shape
        emb = nnx.initializers.normal(0.02)
        self.channel_embeddings = nnx.Param(emb(rngs.params(), (NUM_CHANNELS, NUM_VALUES, de)))
        conv_init = nnx.initializers.normal(1.0 / np.sqrt(13 * de))  # 13 unmasked taps
        self.conv_kernel = nnx.Param(conv_init(rngs.params(), (3, 3, 3, de, d)))  # DHWIO
        self.conv_bias = nnx.Param(jnp.zeros((d,)))
        self.position_t = nnx.Param(emb(rngs.params(), (t, d)))
        self.position_h = nnx.Param(emb(rngs.params(), (h, d)))
        self.position_w = nnx.Param(emb(rngs.params(), (w, d)))
        self.context_projection = nnx.Linear(d, d, dtype=dtype, rngs=rngs) if conditioned else None
        self.layers = nnx.List(
            [
                TransformerLayer(
                    d,
                    layer.num_heads,
                    config.head_dim,
                    layer.block_shape,
                    causal=True,
                    implementation=config.attention_implementation,
                    dtype=dtype,
                    rngs=rngs,
                )
                for layer in layers
            ]
        )

    def _masked_kernel(self) -> jax.Array:
        mask = jnp.asarray(causal_conv_mask())[..., None, None]
        return (self.conv_kernel[...] * mask).astype(self.dtype)  # [3, 3, 3, de, d]

    def embed_pixels(self, channels: jax.Array) -> jax.Array:
        """Sum of the `Nc` channel embeddings: `[..., Nc]` ints -> `[..., de]`."""
        table = self.channel_embeddings[...]  # [Nc, Nv, de]
        return sum(table[c][channels[..., c]] for c in range(NUM_CHANNELS)).astype(self.dtype)

    def project_context(self, z: jax.Array | None) -> jax.Array | None:
        """`linear(z_L)`, added to the initial decoder representation."""
        if self.context_projection is None:
            if z is not None:
                raise ValueError("this decoder is unconditioned (first slice); got a context z")
            return None
        if z is None:
            raise ValueError("this decoder is conditioned on the encoder; got context z=None")
        return self.context_projection(z)

    def initial(self, channels: jax.Array, context: jax.Array | None) -> jax.Array:
        """`y_0`: masked convolution of the pixel embeddings + positions [+ projected `z_L`].

        Args:
          channels: `[B, t, h, w, Nc]` integer channels of the current slice.
          context: `[B, t, h, w, d]` projected encoder output (`project_context`) or None.

        Returns:
          `[B, t, h, w, d]`.
        """
        expected = (*self.config.slice_shape, NUM_CHANNELS)
        if channels.ndim != 5 or tuple(channels.shape[1:]) != expected:
            raise ValueError(
                f"channels must be [B, {', '.join(map(str, expected))}], "
                f"got shape {tuple(channels.shape)}"
            )
        y = jax.lax.conv_general_dilated(
            self.embed_pixels(channels),
            self._masked_kernel(),
            window_strides=(1, 1, 1),
            padding=((1, 1),) * 3,
            dimension_numbers=("NDHWC", "DHWIO", "NDHWC"),
        )  # [B, t, h, w, d]
        y = (
            y
            + self.conv_bias[...]
            + self.position_t[...][:, None, None]
            + self.position_h[...][None, :, None]
            + self.position_w[...][None, None, :]
        )
        if context is not None:
            y = y + context
        return y.astype(self.dtype)

    def __call__(
        self, channels: jax.Array, context: jax.Array | None, *, return_cache: bool = False
    ):
        """Decodes a whole slice in parallel (teacher forcing).

        Args:
          channels: `[B, t, h, w, Nc]` integer channels of the current slice.
          context: `[B, t, h, w, d]` projected encoder output (`project_context`) or None.
          return_cache: also return every layer's keys and values for incremental decoding.

        Returns:
          `y_L: [B, t, h, w, d]`, and with `return_cache` a list of `(k, v)` per layer.
        """
        y = self.initial(channels, context)
        cache = []
        for layer in self.layers:
            if return_cache:
                y, kv = layer(y, return_kv=True)
                cache.append(kv)
            else:
                y = apply_layer(layer, y, remat=self.config.remat)
        return (y, cache) if return_cache else y

    def decode_step(
        self,
        embeddings: jax.Array,
        context: jax.Array | None,
        position: tuple[jax.Array, jax.Array, jax.Array],
        cache: list[tuple[jax.Array, jax.Array]],
    ) -> tuple[jax.Array, list[tuple[jax.Array, jax.Array]]]:
        """`y_L` at one position from cached keys/values of the preceding positions.

        Args:
          embeddings: `[B, t + 2, h + 2, w + 2, de]` pixel embeddings (`embed_pixels`) of the
            slice, zero-padded by one on each side, valid before `position`.
          context: `[B, t, h, w, d]` projected encoder output or None.
          position: `(t, y, x)` int32 scalars.
          cache: per layer `k, v: [B, t, h, w, na, da]`, valid before `position`.

        Returns:
          `[B, d]` and the updated cache.
        """
        t, yy, x = position
        batch, de = embeddings.shape[0], embeddings.shape[-1]
        window = jax.lax.dynamic_slice(embeddings, (0, t, yy, x, 0), (batch, 3, 3, 3, de))
        # Only the 13 taps that precede the centre contribute (the masked convolution).
        taps = np.flatnonzero(causal_conv_mask())
        window = window.reshape(batch, 27, de)[:, taps]  # [B, 13, de]
        kernel = self.conv_kernel[...].reshape(27, de, -1)[taps].astype(self.dtype)
        y = jnp.einsum("bsc,scd->bd", window, kernel)
        y = (
            y
            + self.conv_bias[...]
            + self.position_t[...][t]
            + self.position_h[...][yy]
            + self.position_w[...][x]
        )
        if context is not None:
            y = y + jax.lax.dynamic_slice(
                context, (0, t, yy, x, 0), (batch, 1, 1, 1, context.shape[-1])
            ).reshape(batch, -1)
        y = y.astype(self.dtype)
        new_cache = []
        for layer, kv in zip(self.layers, cache):
            y, kv = layer.decode_step(y, position, kv)
            new_cache.append(kv)
        return y, new_cache
