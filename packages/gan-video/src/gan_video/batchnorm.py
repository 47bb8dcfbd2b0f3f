"""Per-time-step (conditional) batch normalisation with cross-replica and standing statistics."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from gan_video.spectral_norm import SNLinear

__all__ = ["BN_MODES", "ConditionalBatchNorm", "reset_standing_stats"]

BN_MODES = ("train", "accumulate", "standing")


class ConditionalBatchNorm(nnx.Module):
    """Batch norm over `[B, T, H, W, C]` with statistics computed independently per time step.

    Scale and offset are affine functions of a conditioning vector (appendix E.2):
    `gamma = 1 + A_g c`, `beta = A_b c` with spectrally normalised `A`. With
    `cond_features=None` the layer is unconditional (learned per-channel scale and offset,
    used for G's final BatchNorm).

    Statistics are the mean/variance over (batch, height, width) for each time step. Under
    `jax.jit` with a data-sharded batch the mean over the batch axis is already the global
    (cross-replica) mean; inside `shard_map`/`pmap` pass `axis_name` to average across it.

    Modes (set with `nnx.view(model, bn_mode=...)`):
      * `"train"`: normalise with the batch statistics.
      * `"accumulate"`: as train, and also add the batch statistics to the standing sums.
      * `"standing"`: normalise with the standing statistics (the average of all
        accumulated batch statistics), the paper's "standing statistics" evaluation.

    Args:
      num_features: channels C.
      num_frames: time steps T the statistics are kept for.
      cond_features: width of the conditioning vector, or None for unconditional.
      rngs: flax random streams.
      axis_name: optional mapped axis name for cross-replica means.
      eps: variance floor.
    """

    def __init__(
        self,
        num_features: int,
        num_frames: int,
        cond_features: int | None = None,
        *,
        rngs: nnx.Rngs,
        axis_name: str | None = None,
        eps: float = 1e-4,
    ):
        self.num_features = num_features
        self.num_frames = num_frames
        self.cond_features = cond_features
        self.axis_name = axis_name
        self.eps = eps
        self.bn_mode = "train"
        if cond_features is None:
            self.scale = nnx.Param(jnp.ones((num_features,)))
            self.offset = nnx.Param(jnp.zeros((num_features,)))
            self.gain_proj = None
            self.bias_proj = None
        else:
            self.scale = None
            self.offset = None
            self.gain_proj = SNLinear(cond_features, num_features, rngs=rngs)
            self.bias_proj = SNLinear(cond_features, num_features, rngs=rngs)
        shape = (num_frames, num_features)
        self.standing_mean_sum = nnx.BatchStat(jnp.zeros(shape))
        self.standing_sq_sum = nnx.BatchStat(jnp.zeros(shape))
        self.standing_count = nnx.BatchStat(jnp.zeros((), jnp.float32))

    def set_view(self, bn_mode: str | None = None) -> None:
        """Selects the statistics mode.

        Args:
          bn_mode: "train" (batch statistics), "accumulate" (batch statistics, also
            summed into the standing statistics) or "standing" (accumulated averages).
        """
        if bn_mode is not None:
            if bn_mode not in BN_MODES:
                raise ValueError(f"bn_mode must be one of {BN_MODES}, got {bn_mode!r}")
            self.bn_mode = bn_mode

    def _mean(self, x: jax.Array) -> jax.Array:
        m = jnp.mean(x, axis=(0, 2, 3))  # [T, C]
        if self.axis_name is not None:
            m = jax.lax.pmean(m, self.axis_name)
        return m

    def __call__(self, x: jax.Array, cond: jax.Array | None = None) -> jax.Array:
        """Normalises x.

        Args:
          x: [B, T, H, W, C].
          cond: [B, cond_features], required iff the layer is conditional.

        Returns:
          [B, T, H, W, C].
        """
        if x.ndim != 5 or x.shape[1] != self.num_frames or x.shape[-1] != self.num_features:
            raise ValueError(
                f"x must be [B, {self.num_frames}, H, W, {self.num_features}], got {x.shape}"
            )
        if (cond is None) != (self.cond_features is None):
            raise ValueError(
                f"cond must be {'None' if self.cond_features is None else 'given'} "
                f"for this layer (cond_features={self.cond_features})"
            )
        xf = x.astype(jnp.float32)
        if self.bn_mode == "standing":
            count = jnp.maximum(self.standing_count[...], 1.0)
            mean = self.standing_mean_sum[...] / count
            var = self.standing_sq_sum[...] / count - jnp.square(mean)
        else:
            mean = self._mean(xf)  # [T, C]
            mean_sq = self._mean(jnp.square(xf))  # [T, C]
            var = mean_sq - jnp.square(mean)
            if self.bn_mode == "accumulate":
                # Sums of E[x] and E[x^2] so the standing variance is the pooled variance.
                self.standing_mean_sum[...] += jax.lax.stop_gradient(mean)
                self.standing_sq_sum[...] += jax.lax.stop_gradient(mean_sq)
                self.standing_count[...] += 1.0
        var = jnp.maximum(var, 0.0)
        y = (xf - mean[:, None, None, :]) * jax.lax.rsqrt(var + self.eps)[:, None, None, :]
        if self.cond_features is None:
            y = y * self.scale[...] + self.offset[...]
        else:
            if cond.shape != (x.shape[0], self.cond_features):
                raise ValueError(
                    f"cond must be [{x.shape[0]}, {self.cond_features}], got {cond.shape}"
                )
            gamma = 1.0 + self.gain_proj(cond)  # [B, C]
            beta = self.bias_proj(cond)  # [B, C]
            y = y * gamma[:, None, None, None, :] + beta[:, None, None, None, :]
        return y.astype(x.dtype)


def reset_standing_stats(model: nnx.Module) -> None:
    """Zeros the standing-statistics sums of every `ConditionalBatchNorm` in `model`."""
    for _, module in nnx.iter_modules(model):
        if isinstance(module, ConditionalBatchNorm):
            module.standing_mean_sum[...] = jnp.zeros_like(module.standing_mean_sum[...])
            module.standing_sq_sum[...] = jnp.zeros_like(module.standing_sq_sum[...])
            module.standing_count[...] = jnp.zeros_like(module.standing_count[...])
