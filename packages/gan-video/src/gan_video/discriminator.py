"""BigGAN-style per-frame and spatio-temporal discriminators with a mixed projection head."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from einshape import jax_einshape as einshape
from flax import nnx

from gan_video.blocks import DBlock, call_maybe_remat
from gan_video.config import DECOMPOSITIONS, ModelConfig
from gan_video.decompositions import FRAME_INPUTS, sub_discriminator_input
from gan_video.spectral_norm import SNLinear

__all__ = ["DNetwork", "Discriminator", "MixedProjectionHead", "mixed_projection"]


class DNetwork(nnx.Module):
    """BigGAN D trunk: five residual blocks, the first four average-pool x2.

    With `num_3d_blocks = 2` the first two blocks use 3D convolutions (spatio-temporal D);
    otherwise every frame is processed independently (per-frame D, also the encoder E).

    Args:
      in_features: image channels.
      ch: channel multiplier.
      multipliers: per-block output multipliers (len = number of blocks).
      rngs: flax random streams.
      num_3d_blocks: leading blocks with 3x3x3 convolutions.
    """

    def __init__(
        self,
        in_features: int,
        ch: int,
        multipliers: tuple[int, ...],
        *,
        rngs: nnx.Rngs,
        num_3d_blocks: int = 0,
    ):
        self.num_3d_blocks = num_3d_blocks
        widths = [in_features] + [m * ch for m in multipliers]
        self.out_features = widths[-1]
        self.blocks = nnx.List(
            [
                DBlock(
                    widths[j],
                    widths[j + 1],
                    rngs=rngs,
                    downsample=j < 4,
                    preactivation=j > 0,
                    ndim=3 if j < num_3d_blocks else 2,
                )
                for j in range(len(multipliers))
            ]
        )

    def block_features(self, x: jax.Array) -> list[jax.Array]:
        """x: [B, T, H, W, C] -> the output of every block, each [B, T, h_j, w_j, c_j]."""
        if x.ndim != 5:
            raise ValueError(f"x must be [B, T, H, W, C], got shape {x.shape}")
        b = x.shape[0]
        feats = []
        for j, block in enumerate(self.blocks):
            if j < self.num_3d_blocks:
                x = block(x)
            else:
                x = einshape("(bt)hwc->bthwc", block(einshape("bthwc->(bt)hwc", x)), b=b)
            feats.append(x)
        return feats

    def __call__(self, x: jax.Array) -> jax.Array:
        """x: [B, T, H, W, C] -> features [B, T, C_out] (final ReLU, sum over space)."""
        return jnp.sum(jax.nn.relu(self.block_features(x)[-1]), axis=(2, 3))


def mixed_projection(r_x: jax.Array, r_xy: jax.Array) -> jax.Array:
    """Eq. 15: `o[b, b', t] = r_x[b, t] + sum_t' r_xy[b', t']`.

    Args:
      r_x: [B, T] per-sample, per-time scalars depending on the video only.
      r_xy: [B, T] per-sample, per-time scalars depending on video and class.

    Returns:
      [B, B, T] discriminator outputs.
    """
    if r_x.ndim != 2 or r_x.shape != r_xy.shape:
        raise ValueError(f"r_x and r_xy must both be [B, T], got {r_x.shape} and {r_xy.shape}")
    return r_x[:, None, :] + jnp.sum(r_xy, axis=1)[None, :, None]


class MixedProjectionHead(nnx.Module):
    """Projection head giving `r_x = <w, h> + b` and `r_xy = <embed(y), h>` per (b, t).

    Args:
      in_features: width of the D features.
      num_classes: number of classes (>= 1; one dummy class when unconditional).
      rngs: flax random streams.
    """

    def __init__(self, in_features: int, num_classes: int, *, rngs: nnx.Rngs):
        self.num_classes = num_classes
        self.linear = SNLinear(in_features, 1, rngs=rngs)
        self.embed = SNLinear(num_classes, in_features, rngs=rngs, use_bias=False)

    def __call__(self, h: jax.Array, labels: jax.Array) -> jax.Array:
        """h: [B, T, C], labels: [B] int -> o [B, B, T] (Eq. 15)."""
        r_x = self.linear(h)[..., 0]  # [B, T]
        e = self.embed(jax.nn.one_hot(labels, self.num_classes, dtype=h.dtype))  # [B, C]
        r_xy = jnp.einsum("btc,bc->bt", h, e)  # [B, T]
        return mixed_projection(r_x, r_xy)


class Discriminator(nnx.Module):
    """The decomposed discriminator: one sub-D (trunk + mixed projection) per input kind.

    Args:
      config: model configuration (decomposition, d_ch, K, s, ...).
      rngs: flax random streams.
    """

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        self.kinds = DECOMPOSITIONS[config.decomposition]
        self.dtype = config.dtype
        self.remat = config.remat
        self.num_sampled_frames = config.num_sampled_frames
        self.first_sampled_frame = config.first_sampled_frame
        self.downsample_factor = config.downsample_factor
        num_classes = max(config.num_classes, 1)
        trunks, heads = {}, {}
        for kind in self.kinds:
            trunks[kind] = DNetwork(
                config.channels,
                config.d_ch,
                config.d_channel_multipliers,
                rngs=rngs,
                num_3d_blocks=0 if kind in FRAME_INPUTS else 2,
            )
            heads[kind] = MixedProjectionHead(trunks[kind].out_features, num_classes, rngs=rngs)
        self.trunks = nnx.Dict(trunks)
        self.heads = nnx.Dict(heads)

    def inputs(self, video: jax.Array, key: jax.Array) -> dict[str, jax.Array]:
        """The inputs each sub-D judges: video [B, T, H, W, C] -> {kind: [B, T', H', W', C]}."""
        keys = jax.random.split(key, len(self.kinds))
        return {
            kind: sub_discriminator_input(
                video,
                kind,
                k,
                num_sampled_frames=self.num_sampled_frames,
                downsample_factor=self.downsample_factor,
                first_sampled_frame=self.first_sampled_frame,
            )
            for kind, k in zip(self.kinds, keys)
        }

    def __call__(
        self, video: jax.Array, labels: jax.Array, key: jax.Array, *, num_groups: int = 1
    ) -> dict[str, jax.Array]:
        """Scores a batch of clips.

        Args:
          video: [B, T, H, W, C] clips in [-1, 1] (conditioning + predicted frames).
          labels: [B] int class labels (zeros when unconditional).
          key: randomness for frame sampling and crops.
          num_groups: split the batch into this many groups (e.g. 2 for `[real; fake]`)
            before the mixed projection, so Eq. 15 never mixes samples across groups.

        Returns:
          {kind: o [num_groups, B/num_groups, B/num_groups, T_kind]} (num_groups axis
          dropped when 1).
        """
        if video.shape[0] % num_groups:
            raise ValueError(f"batch {video.shape[0]} must be divisible by {num_groups=}")
        out = {}
        video = video.astype(self.dtype)
        for kind, x in self.inputs(video, key).items():
            # One sub-D's activations at a time live in the backward pass under remat.
            h = call_maybe_remat(self.trunks[kind], x, remat=self.remat)  # [B, T', C]
            h = h.astype(jnp.float32)
            hg = h.reshape(num_groups, -1, *h.shape[1:])
            yg = labels.reshape(num_groups, -1)
            o = jnp.stack([self.heads[kind](hg[i], yg[i]) for i in range(num_groups)])
            out[kind] = o[0] if num_groups == 1 else o
        return out
