"""Flax NNX block self-attention layer of the Video Transformer (Eqs. 2-5); needs `flax`."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from block_attention.block_sizes import BlockSizes
from block_attention.ops import Implementation, block_attention


class BlockSelfAttention(nnx.Module):
    """Pre-LayerNorm multi-head block-local self-attention with a residual connection.

    `z + [attention_1(z'); ...; attention_na(z')] W_p` with `z' = layernorm(z)`,
    `[q, k, v] = z' W_qkv` (Eq. 2), relative position bias from learned per-axis tables (Eq. 3),
    attention inside every `(t, h, w)` block (Eq. 4) and the output projection plus residual
    (Eq. 5).

    Attributes:
      norm: the pre-attention LayerNorm.
      qkv: the joint q/k/v projection `W_qkv` (Eq. 2).
      out: the output projection `W_p` (Eq. 5).
      bias_t, bias_h, bias_w: relative position bias tables [num_heads, 2*size - 1] (Eq. 3).
    """

    def __init__(
        self,
        in_features: int,
        *,
        num_heads: int,
        head_dim: int,
        block_shape: tuple[int, int, int],
        causal: bool = False,
        dtype: Any = jnp.float32,
        param_dtype: Any = jnp.float32,
        implementation: Implementation = "auto",
        interpret: Any = False,
        block_sizes: BlockSizes | None = None,
        rngs: nnx.Rngs,
    ):
        """Builds the layer.

        Args:
          in_features: channels `d` of the input `[B, T, H, W, d]`.
          num_heads: attention heads `n_a`.
          head_dim: features per head `d_a`.
          block_shape: (t, h, w) attention block.
          causal: raster-order causal mask inside blocks (decoder layers).
          dtype: computation dtype (e.g. jnp.bfloat16); parameters stay in `param_dtype`.
          param_dtype: parameter dtype.
          implementation: passed to `block_attention` ("auto" | "xla" | "pallas").
          interpret: passed to `block_attention` (run the Pallas kernel on CPU).
          block_sizes: passed to `block_attention`.
          rngs: flax random streams (uses `params`).
        """
        if len(tuple(block_shape)) != 3:
            raise ValueError(f"block_shape must be (t, h, w), got {block_shape!r}")
        for name, value in (
            ("in_features", in_features),
            ("num_heads", num_heads),
            ("head_dim", head_dim),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.block_shape = tuple(int(s) for s in block_shape)
        self.causal = causal
        self.dtype = dtype
        self.implementation = implementation
        self.interpret = interpret
        self.block_sizes = block_sizes
        self.norm = nnx.LayerNorm(in_features, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.qkv = nnx.Linear(
            in_features,
            3 * num_heads * head_dim,
            use_bias=False,
            dtype=dtype,
            param_dtype=param_dtype,
            rngs=rngs,
        )
        self.out = nnx.Linear(  # W_p of Eq. 5: no bias
            num_heads * head_dim,
            in_features,
            use_bias=False,
            dtype=dtype,
            param_dtype=param_dtype,
            rngs=rngs,
        )
        init = nnx.initializers.truncated_normal(stddev=0.02)
        t, h, w = self.block_shape
        self.bias_t = nnx.Param(init(rngs.params(), (num_heads, 2 * t - 1), param_dtype))
        self.bias_h = nnx.Param(init(rngs.params(), (num_heads, 2 * h - 1), param_dtype))
        self.bias_w = nnx.Param(init(rngs.params(), (num_heads, 2 * w - 1), param_dtype))

    def __call__(self, z: jax.Array) -> jax.Array:
        """Applies the layer.

        Args:
          z: [B, T, H, W, d] input; (T, H, W) must be divisible by block_shape.

        Returns:
          [B, T, H, W, d], `z` plus the projected attention output (Eq. 5).
        """
        if z.ndim != 5:
            raise ValueError(f"z must have shape [B, T, H, W, d], got {z.shape}")
        qkv = self.qkv(self.norm(z))  # Eq. 2, [B, T, H, W, 3 * heads * head_dim]
        qkv = qkv.reshape(*z.shape[:4], 3, self.num_heads, self.head_dim)
        q, k, v = (qkv[..., i, :, :].astype(self.dtype) for i in range(3))
        rel_bias = (self.bias_t[...], self.bias_h[...], self.bias_w[...])
        a = block_attention(
            q,
            k,
            v,
            self.block_shape,
            rel_bias=rel_bias,
            causal=self.causal,
            implementation=self.implementation,
            interpret=self.interpret,
            block_sizes=self.block_sizes,
        )  # Eqs. 3-4, [B, T, H, W, heads, head_dim]
        a = a.reshape(*z.shape[:4], self.num_heads * self.head_dim)
        return z + self.out(a).astype(z.dtype)  # Eq. 5
