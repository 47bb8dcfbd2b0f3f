"""BigGAN generator and discriminator residual blocks (2D, and 3D for spatio-temporal D)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from einshape import jax_einshape as einshape
from flax import nnx

from gan_video.batchnorm import ConditionalBatchNorm
from gan_video.spectral_norm import SNConv

__all__ = ["DBlock", "GBlock", "avg_pool_spatial", "upsample_nearest"]


def upsample_nearest(x: jax.Array, factor: int = 2) -> jax.Array:
    """Nearest-neighbour upsampling of the two spatial axes: [..., H, W, C] -> [..., fH, fW, C]."""
    return jnp.repeat(jnp.repeat(x, factor, axis=-3), factor, axis=-2)


def avg_pool_spatial(x: jax.Array, factor: int = 2) -> jax.Array:
    """Average pooling of the two spatial axes: [..., H, W, C] -> [..., H/f, W/f, C]."""
    *lead, h, w, c = x.shape
    if h % factor or w % factor:
        raise ValueError(f"spatial size {(h, w)} must be divisible by {factor=}")
    x = x.reshape(*lead, h // factor, factor, w // factor, factor, c)
    return jnp.mean(x, axis=(-4, -2))


def call_maybe_remat(module: nnx.Module, *args, remat: bool = False):
    """`module(*args)`; with `remat`, its activations are recomputed in the backward pass."""
    if not remat:
        return module(*args)
    return nnx.remat(lambda m, *a: m(*a))(module, *args)


class GBlock(nnx.Module):
    """BigGAN G residual block applied per frame, with per-time-step conditional BN.

    `BN(c) -> ReLU -> [up x2] -> conv3x3 -> BN(c) -> ReLU -> conv3x3`, plus a shortcut
    `[up x2] -> conv1x1` (identity when neither channels nor size change).

    Args:
      in_features: input channels.
      out_features: output channels.
      num_frames: T (for per-time-step batch statistics).
      cond_features: width of the conditioning vector of the BNs.
      upsample: whether to upsample x2 (nearest).
      rngs: flax random streams.
      axis_name: optional mapped axis for cross-replica BN statistics.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_frames: int,
        cond_features: int,
        *,
        upsample: bool,
        rngs: nnx.Rngs,
        axis_name: str | None = None,
    ):
        self.upsample = upsample
        bn = {"rngs": rngs, "axis_name": axis_name}
        self.bn1 = ConditionalBatchNorm(in_features, num_frames, cond_features, **bn)
        self.conv1 = SNConv(in_features, out_features, 3, rngs=rngs)
        self.bn2 = ConditionalBatchNorm(out_features, num_frames, cond_features, **bn)
        self.conv2 = SNConv(out_features, out_features, 3, rngs=rngs)
        self.shortcut = (
            SNConv(in_features, out_features, 1, rngs=rngs)
            if upsample or in_features != out_features
            else None
        )

    def _per_frame(self, conv: SNConv, x: jax.Array) -> jax.Array:
        b = x.shape[0]
        y = conv(einshape("bthwc->(bt)hwc", x))
        return einshape("(bt)hwc->bthwc", y, b=b)

    def __call__(self, x: jax.Array, cond: jax.Array) -> jax.Array:
        """x: [B, T, H, W, Cin], cond: [B, cond] -> [B, T, H', W', Cout]."""
        h = jax.nn.relu(self.bn1(x, cond))
        if self.upsample:
            h = upsample_nearest(h)
            x = upsample_nearest(x)
        h = self._per_frame(self.conv1, h)
        h = jax.nn.relu(self.bn2(h, cond))
        h = self._per_frame(self.conv2, h)
        if self.shortcut is not None:
            x = self._per_frame(self.shortcut, x)
        return h + x


class DBlock(nnx.Module):
    """BigGAN D residual block, 2D (per frame) or 3D (spatio-temporal).

    `[ReLU] -> conv3 -> ReLU -> conv3 -> [avgpool x2]` plus a shortcut
    `conv1x1 -> [avgpool]` (pool first for the first, non-pre-activated block). 3D blocks
    use 3x3x3 convolutions and pool only spatially, keeping the time axis. Pooling is
    skipped once the spatial size is below 2 (tiny test configurations only).

    Args:
      in_features: input channels.
      out_features: output channels.
      rngs: flax random streams.
      downsample: average-pool x2 spatially.
      preactivation: apply ReLU to the input (False for the first block).
      ndim: 2 (input [N, H, W, C]) or 3 (input [N, T, H, W, C]).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        rngs: nnx.Rngs,
        downsample: bool = True,
        preactivation: bool = True,
        ndim: int = 2,
    ):
        if ndim not in (2, 3):
            raise ValueError(f"ndim must be 2 or 3, got {ndim}")
        self.ndim = ndim
        self.downsample = downsample
        self.preactivation = preactivation
        self.conv1 = SNConv(in_features, out_features, 3, rngs=rngs, ndim=ndim)
        self.conv2 = SNConv(out_features, out_features, 3, rngs=rngs, ndim=ndim)
        self.shortcut = (
            SNConv(in_features, out_features, 1, rngs=rngs, ndim=ndim)
            if downsample or in_features != out_features
            else None
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        """x: [N, (T,) H, W, Cin] -> [N, (T,) H/2, W/2, Cout]."""
        if x.ndim != self.ndim + 2:
            raise ValueError(
                f"x must have {self.ndim + 2} dims for a {self.ndim}D block, got {x.shape}"
            )
        pool = self.downsample and min(x.shape[-3], x.shape[-2]) >= 2
        h = jax.nn.relu(x) if self.preactivation else x
        h = self.conv2(jax.nn.relu(self.conv1(h)))
        if pool:
            h = avg_pool_spatial(h)
        if self.shortcut is not None:
            if self.preactivation:
                x = self.shortcut(x)
                x = avg_pool_spatial(x) if pool else x
            else:
                x = avg_pool_spatial(x) if pool else x
                x = self.shortcut(x)
        return h + x
