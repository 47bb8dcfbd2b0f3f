"""The block-local self-attention layer of the Video Transformer (Eqs. 2-6)."""

from __future__ import annotations

import block_attention
import einshape
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

Shape3 = tuple[int, int, int]

# Finite stand-in for -inf: masked keys get exactly zero weight without NaNs.
_MASK_VALUE = -0.7 * float(np.finfo(np.float32).max)


def _block_positions(block_shape: Shape3) -> np.ndarray:
    """`[n, 3]` raster-order `(t, y, x)` coordinates inside one block."""
    grid = np.meshgrid(*(np.arange(b) for b in block_shape), indexing="ij")
    return np.stack([g.reshape(-1) for g in grid], axis=-1).astype(np.int32)


class TransformerLayer(nnx.Module):
    """Pre-LN block-local multi-head self-attention and a ReLU MLP, both residual.

    `z = [attention_1(z); ...; attention_na(z)] W_p + z` (Eqs. 2-5) with
    `softmax(q k^T / sqrt(da) + B) v` inside every `(t, h, w)` block, where `B` is the sum of
    learned per-axis relative-distance biases; then `z = relu(LN(z) T1) T2 + z` (Eq. 6).
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        head_dim: int,
        block_shape: Shape3,
        *,
        causal: bool,
        implementation: str = "auto",
        dtype=jnp.float32,
        rngs: nnx.Rngs,
    ):
        """Builds the layer.

        Args:
          hidden_size: `d`.
          num_heads: `na`.
          head_dim: `da`.
          block_shape: `(t, h, w)` attention blocks.
          causal: if True a position only attends to positions at or before it in raster order
            within its block (the slice decoder).
          implementation: `block_attention` implementation (`"auto"`, `"xla"`, `"pallas"`).
          dtype: activation dtype.
          rngs: parameter initialisation keys.
        """
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.block_shape = tuple(int(b) for b in block_shape)
        self.causal = causal
        self.implementation = implementation
        self.dtype = dtype
        d, inner = hidden_size, num_heads * head_dim
        self.attention_norm = nnx.LayerNorm(d, dtype=dtype, rngs=rngs)
        self.qkv = nnx.Linear(d, 3 * inner, use_bias=False, dtype=dtype, rngs=rngs)  # Eq. 2
        init = nnx.initializers.normal(0.02)
        # Eq. 3 relative biases, one table per axis: index (i - j) + extent - 1.
        self.bias_t = nnx.Param(init(rngs.params(), (num_heads, 2 * self.block_shape[0] - 1)))
        self.bias_h = nnx.Param(init(rngs.params(), (num_heads, 2 * self.block_shape[1] - 1)))
        self.bias_w = nnx.Param(init(rngs.params(), (num_heads, 2 * self.block_shape[2] - 1)))
        self.output = nnx.Linear(inner, d, use_bias=False, dtype=dtype, rngs=rngs)  # W_p, Eq. 5
        self.mlp_norm = nnx.LayerNorm(d, dtype=dtype, rngs=rngs)
        self.mlp_in = nnx.Linear(d, d, use_bias=False, dtype=dtype, rngs=rngs)  # T1, Eq. 6
        self.mlp_out = nnx.Linear(d, d, use_bias=False, dtype=dtype, rngs=rngs)  # T2, Eq. 6

    def _split_heads(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """`[..., 3 * na * da]` -> three `[..., na, da]`."""
        qkv = x.reshape(*x.shape[:-1], 3, self.num_heads, self.head_dim)
        return qkv[..., 0, :, :], qkv[..., 1, :, :], qkv[..., 2, :, :]

    def _mlp(self, z: jax.Array) -> jax.Array:
        """Eq. 6: `relu(LN(z) T1) T2 + z`."""
        return self.mlp_out(jax.nn.relu(self.mlp_in(self.mlp_norm(z)))) + z

    def __call__(
        self, z: jax.Array, *, return_kv: bool = False
    ) -> jax.Array | tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        """Applies the layer to a whole slice.

        Args:
          z: `[B, T, H, W, d]`; `(T, H, W)` divisible by `block_shape`.
          return_kv: also return the keys and values (to seed an incremental-decoding cache).

        Returns:
          `[B, T, H, W, d]`, and with `return_kv` the pair `k, v: [B, T, H, W, na, da]`.
        """
        if z.ndim != 5 or z.shape[-1] != self.hidden_size:
            raise ValueError(
                f"z must be [B, T, H, W, {self.hidden_size}], got shape {tuple(z.shape)}"
            )
        q, k, v = self._split_heads(self.qkv(self.attention_norm(z)))  # [B, T, H, W, na, da]
        rel_bias = (self.bias_t[...], self.bias_h[...], self.bias_w[...])
        attended = block_attention.block_attention(
            q,
            k,
            v,
            self.block_shape,
            rel_bias=rel_bias,
            causal=self.causal,
            implementation=self.implementation,
        )  # [B, T, H, W, na, da], Eqs. 3-4
        attended = einshape.jax_einshape("...nd->...(nd)", attended)
        z = self.output(attended) + z  # Eq. 5
        z = self._mlp(z)
        if return_kv:
            return z, (k, v)
        return z

    def decode_step(
        self,
        z: jax.Array,
        position: tuple[jax.Array, jax.Array, jax.Array],
        cache: tuple[jax.Array, jax.Array],
    ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        """Applies the (causal) layer to one new position, reusing cached keys and values.

        Under causal masking earlier positions never see later ones, so their keys and values
        are final once computed. The new position's key and value are written into the cache
        and its query attends to the cached keys of its own block up to itself.

        Args:
          z: `[B, d]`, the layer input at `position`.
          position: `(t, y, x)` int32 scalars, the position inside the slice.
          cache: `k, v: [B, T, H, W, na, da]`, valid at every position before `position`.

        Returns:
          `[B, d]`, the layer output at `position`, and the updated cache.
        """
        if not self.causal:
            raise ValueError("decode_step needs a causal layer (the slice decoder's)")
        cache_k, cache_v = cache
        batch = z.shape[0]
        q, k, v = self._split_heads(self.qkv(self.attention_norm(z)))  # [B, na, da]
        t, y, x = position
        start = (0, t, y, x, 0, 0)
        cache_k = jax.lax.dynamic_update_slice(
            cache_k, k[:, None, None, None].astype(cache_k.dtype), start
        )
        cache_v = jax.lax.dynamic_update_slice(
            cache_v, v[:, None, None, None].astype(cache_v.dtype), start
        )
        bt, bh, bw = self.block_shape
        origin = (t // bt * bt, y // bh * bh, x // bw * bw)
        local = (t - origin[0], y - origin[1], x - origin[2])
        size = (batch, bt, bh, bw, self.num_heads, self.head_dim)
        block_k = jax.lax.dynamic_slice(cache_k, (0, *origin, 0, 0), size)
        block_v = jax.lax.dynamic_slice(cache_v, (0, *origin, 0, 0), size)
        block_k = einshape.jax_einshape("bthwnd->b(thw)nd", block_k)  # [B, n, na, da]
        block_v = einshape.jax_einshape("bthwnd->b(thw)nd", block_v)
        scale = 1.0 / np.sqrt(self.head_dim)
        logits = jnp.einsum(
            "bnd,bjnd->bnj",
            (q * scale).astype(jnp.float32),
            block_k.astype(jnp.float32),
        )  # [B, na, n]
        pos = _block_positions(self.block_shape)  # [n, 3]
        bias = sum(
            table[...].astype(jnp.float32)[:, loc - pos[:, a] + ext - 1]
            for a, (table, loc, ext) in enumerate(
                zip((self.bias_t, self.bias_h, self.bias_w), local, self.block_shape)
            )
        )  # [na, n], Eq. 3
        logits = logits + bias[None]
        query_index = (local[0] * bh + local[1]) * bw + local[2]
        visible = jnp.arange(pos.shape[0]) <= query_index  # [n]
        logits = jnp.where(visible, logits, _MASK_VALUE)
        probs = jax.nn.softmax(logits, axis=-1)  # Eq. 4
        attended = jnp.einsum("bnj,bjnd->bnd", probs, block_v.astype(jnp.float32))
        attended = attended.reshape(batch, -1).astype(z.dtype)
        z = self.output(attended) + z  # Eq. 5
        return self._mlp(z), (cache_k, cache_v)


def apply_layer(layer: nnx.Module, z: jax.Array, *, remat: bool) -> jax.Array:
    """`layer(z)`; with `remat` its activations are recomputed in the backward pass."""
    if not remat:
        return layer(z)
    return nnx.remat(lambda m, x: m(x))(layer, z)
