"""Per-pixel channel heads: one MLP per 4-bit channel given the earlier ones (Eqs. 7-9)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ar_video.config import NUM_CHANNELS, NUM_VALUES


class ChannelHeads(nnx.Module):
    """`u_k = [LN(y_L); onehot(x_1); ...; onehot(x_{k-1})] U_k` (Eq. 7) and
    `p(x_k | x_<k, x_<i) = softmax(relu(u_k) P)` (Eq. 8) with `U_k: [d + (k-1) Nv, d]` and a
    shared `P: [d, Nv]`.
    """

    def __init__(self, hidden_size: int, *, dtype=jnp.float32, rngs: nnx.Rngs):
        self.hidden_size = d = hidden_size
        self.dtype = dtype
        self.norm = nnx.LayerNorm(d, dtype=dtype, rngs=rngs)
        self.channel_projections = nnx.List(
            [
                nnx.Linear(d + k * NUM_VALUES, d, use_bias=False, dtype=dtype, rngs=rngs)
                for k in range(NUM_CHANNELS)
            ]
        )  # U_k, Eq. 7
        self.logits_projection = nnx.Linear(d, NUM_VALUES, use_bias=False, dtype=dtype, rngs=rngs)

    def _channel_logits(self, normed: jax.Array, previous: list[jax.Array], k: int) -> jax.Array:
        """Eqs. 7-8 logits of channel `k` from `LN(y)` and the one-hots of channels `< k`."""
        u = self.channel_projections[k](jnp.concatenate([normed, *previous], axis=-1))
        return self.logits_projection(jax.nn.relu(u)).astype(jnp.float32)  # [..., Nv]

    def __call__(self, y: jax.Array, channels: jax.Array) -> jax.Array:
        """Logits of every channel given the true preceding channels (teacher forcing).

        Args:
          y: `[..., d]` final decoder state `y_L`.
          channels: `[..., Nc]` integer 4-bit channel values.

        Returns:
          `[..., Nc, Nv]` float32 logits; channel `k` depends on `y` and `channels[..., :k]` only.
        """
        if y.shape[-1] != self.hidden_size:
            raise ValueError(f"y must end in d={self.hidden_size}, got shape {tuple(y.shape)}")
        if tuple(channels.shape) != (*y.shape[:-1], NUM_CHANNELS):
            raise ValueError(
                f"channels must have shape {(*y.shape[:-1], NUM_CHANNELS)}, "
                f"got {tuple(channels.shape)}"
            )
        normed = self.norm(y)
        onehots = [
            jax.nn.one_hot(channels[..., k], NUM_VALUES, dtype=normed.dtype)
            for k in range(NUM_CHANNELS)
        ]
        return jnp.stack(
            [self._channel_logits(normed, onehots[:k], k) for k in range(NUM_CHANNELS)], axis=-2
        )

    def sample(
        self,
        y: jax.Array,
        key: jax.Array,
        *,
        temperature: float | jax.Array = 0.9,
    ) -> tuple[jax.Array, jax.Array]:
        """Samples the `Nc` channels of pixels one channel after another.

        Args:
          y: `[B, d]` final decoder state of the pixels.
          key: PRNG key.
          temperature: the logits are divided by it before sampling (section 4.1 uses 0.9).

        Returns:
          `channels: [B, Nc]` int32 and `log_probs: [B, Nc]`, the model's (temperature 1)
          log-probability of each chosen value.
        """
        normed = self.norm(y)
        previous, values, log_probs = [], [], []
        for k, key_k in enumerate(jax.random.split(key, NUM_CHANNELS)):
            logits = self._channel_logits(normed, previous, k)  # [B, Nv]
            value = jax.random.categorical(key_k, logits / temperature, axis=-1).astype(jnp.int32)
            log_probs.append(
                jnp.take_along_axis(jax.nn.log_softmax(logits), value[:, None], axis=-1)[:, 0]
            )
            values.append(value)
            previous.append(jax.nn.one_hot(value, NUM_VALUES, dtype=normed.dtype))
        return jnp.stack(values, axis=-1), jnp.stack(log_probs, axis=-1)


def log_likelihood(logits: jax.Array, channels: jax.Array) -> jax.Array:
    """`ln p(x_k | ...)` of the true values: `[..., Nc, Nv]`, `[..., Nc]` -> `[..., Nc]`."""
    log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return jnp.take_along_axis(log_p, channels[..., None].astype(np.int32), axis=-1)[..., 0]
