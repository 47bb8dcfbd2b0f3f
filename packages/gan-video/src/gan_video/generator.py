"""TrIVD-GAN-FP generator G with its conditioning-frame encoder E (appendix A)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from einshape import jax_einshape as einshape
from flax import nnx

from gan_video.batchnorm import ConditionalBatchNorm
from gan_video.blocks import GBlock, call_maybe_remat
from gan_video.config import WARPING_UNITS, ModelConfig
from gan_video.discriminator import DNetwork
from gan_video.recurrent import make_recurrent_unit
from gan_video.spectral_norm import SNConv, SNLinear

__all__ = ["Encoder", "Generator", "sample_latents"]

_NUM_STAGES = 3


def sample_latents(key: jax.Array, batch: int, z_dim: int, truncation: float | None = None):
    """Draws z ~ N(0, I) [batch, z_dim]; with the truncation trick when `truncation` is set.

    Args:
      key: PRNG key.
      batch: number of latents.
      z_dim: latent width.
      truncation: None for no truncation; t > 0 resamples components outside [-t, t]
        (a truncated normal); 0 gives the constant-zero latent.
    """
    if truncation is None:
        return jax.random.normal(key, (batch, z_dim))
    if truncation < 0:
        raise ValueError(f"truncation must be >= 0 or None, got {truncation}")
    if truncation == 0:
        return jnp.zeros((batch, z_dim))
    return jax.random.truncated_normal(key, -truncation, truncation, (batch, z_dim))


def _unit_kwargs(name: str, config: ModelConfig) -> dict[str, int]:
    if name not in WARPING_UNITS:
        return {}
    if name == "ptsru":
        return {"warp_size": config.warp_size}
    return {"warp_size": config.warp_size, "num_kernels": config.num_warp_kernels}


class Encoder(nnx.Module):
    """E: the per-frame D network on the conditioning frames + one 3x3 conv + ReLU per stage.

    Only the first three D blocks are built: their outputs (at H/2, H/4, H/8) are the
    features used for the recurrent units at resolutions H/8, H/4, H/2; the remaining D
    blocks would not feed anything.

    Args:
      config: model configuration.
      hidden_features: per-stage hidden widths of G's recurrent units (coarse to fine).
      rngs: flax random streams.
    """

    def __init__(self, config: ModelConfig, hidden_features: tuple[int, ...], *, rngs: nnx.Rngs):
        mults = config.d_channel_multipliers[:_NUM_STAGES]
        self.network = DNetwork(config.channels, config.d_ch, mults, rngs=rngs)
        t = config.num_cond_frames
        self.init_convs = nnx.List(
            [
                # Stage i (resolution H/2^(3-i)) reads D block 2-i.
                SNConv(t * mults[_NUM_STAGES - 1 - i] * config.d_ch, hidden, 3, rngs=rngs)
                for i, hidden in enumerate(hidden_features)
            ]
        )

    def __call__(self, frames: jax.Array) -> list[jax.Array]:
        """frames: [B, Tc, H, W, C] -> initial states, coarse to fine, [B, h_i, w_i, hidden_i]."""
        feats = self.network.block_features(frames)
        states = []
        for i, conv in enumerate(self.init_convs):
            f = einshape("bthwc->bhw(tc)", feats[_NUM_STAGES - 1 - i])  # time folded in C
            states.append(jax.nn.relu(conv(f)))
        return states


class Generator(nnx.Module):
    """G: latent + class -> 8x8 features -> 3 x (recurrent unit, conv, 2 G blocks) -> frames.

    Channel schedule: see `ModelConfig` (default 8ch -> 8ch -> 4ch -> 2ch -> RGB).

    Args:
      config: model configuration.
      rngs: flax random streams.
    """

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        self.config = config
        ch, m = config.g_ch, config.g_channel_multipliers
        widths = [mi * ch for mi in m]
        self.base = config.resolution // 8
        self.num_classes = max(config.num_classes, 1)
        tp, cond = config.num_pred_frames, config.cond_dim
        self.class_embed = SNLinear(self.num_classes, config.class_dim, rngs=rngs, use_bias=False)
        # The only layer without spectral normalisation (appendix A).
        self.embed = nnx.Linear(
            cond,
            self.base * self.base * widths[0],
            kernel_init=jax.nn.initializers.orthogonal(),
            rngs=rngs,
        )
        hidden = tuple(widths[:_NUM_STAGES])
        self.encoder = Encoder(config, hidden, rngs=rngs)
        self.units = nnx.List(
            [
                make_recurrent_unit(name, w, w, rngs=rngs, **_unit_kwargs(name, config))
                for name, w in zip(config.stage_units(), hidden, strict=True)
            ]
        )
        for unit in self.units:
            unit.remat = config.remat  # recompute each time step in the backward pass
        self.convs = nnx.List(
            [SNConv(widths[i], widths[i + 1], 3, rngs=rngs) for i in range(_NUM_STAGES)]
        )
        block = {"rngs": rngs, "axis_name": config.bn_axis_name}
        self.blocks = nnx.List(
            [
                nnx.List(
                    [
                        GBlock(widths[i + 1], widths[i + 1], tp, cond, upsample=False, **block),
                        GBlock(widths[i + 1], widths[i + 1], tp, cond, upsample=True, **block),
                    ]
                )
                for i in range(_NUM_STAGES)
            ]
        )
        self.final_bn = ConditionalBatchNorm(widths[-1], tp, None, **block)
        self.final_conv = SNConv(widths[-1], config.channels, 3, rngs=rngs)

    def __call__(
        self, cond_frames: jax.Array, z: jax.Array, labels: jax.Array | None = None
    ) -> tuple[jax.Array, dict[str, list[jax.Array]]]:
        """Predicts the future frames.

        Args:
          cond_frames: [B, Tc, H, W, C] conditioning frames in [-1, 1].
          z: [B, z_dim] latents.
          labels: [B] int classes, or None for the dummy zero class.

        Returns:
          frames [B, Tp, H, W, C] in [-1, 1], and aux with "warp_weights": for each
          warping stage (coarse to fine; stages below `min_warp_side` do not warp) the
          per-pixel kernels [B, Tp, h_i, w_i, k*k].
        """
        c = self.config
        b = cond_frames.shape[0]
        expected = (b, c.num_cond_frames, c.resolution, c.resolution, c.channels)
        if cond_frames.shape != expected:
            raise ValueError(f"cond_frames must have shape {expected}, got {cond_frames.shape}")
        if z.shape != (b, c.z_dim):
            raise ValueError(f"z must have shape {(b, c.z_dim)}, got {z.shape}")
        if labels is None:
            labels = jnp.zeros((b,), jnp.int32)
        dtype = jnp.dtype(c.dtype)  # activations; BN statistics and parameters stay f32
        y = self.class_embed(jax.nn.one_hot(labels, self.num_classes, dtype=z.dtype))
        cond = jnp.concatenate([z, y], axis=-1)  # [B, 256] conditions every G-block BN
        x = self.embed(cond).reshape(b, 1, self.base, self.base, -1).astype(dtype)
        x = jnp.repeat(x, c.num_pred_frames, axis=1)  # [B, Tp, 8, 8, 8ch]
        init_states = self.encoder(cond_frames.astype(dtype))
        warps = []
        for i in range(_NUM_STAGES):
            x, aux = self.units[i](x, init_states[i])
            if "warp_weights" in aux:
                warps.append(aux["warp_weights"])
            x = einshape("(bt)hwc->bthwc", self.convs[i](einshape("bthwc->(bt)hwc", x)), b=b)
            for block in self.blocks[i]:
                x = call_maybe_remat(block, x, cond, remat=c.remat)
        x = jax.nn.relu(self.final_bn(x))
        x = self.final_conv(einshape("bthwc->(bt)hwc", x))
        frames = jnp.tanh(einshape("(bt)hwc->bthwc", x, b=b).astype(jnp.float32))
        return frames, {"warp_weights": warps}
