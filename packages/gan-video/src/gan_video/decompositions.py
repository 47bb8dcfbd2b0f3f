"""Sub-discriminator inputs F, dF, clV, dV, crV (Table 1) sampled from a video clip."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gan_video.blocks import avg_pool_spatial

__all__ = ["FRAME_INPUTS", "SUB_DISCRIMINATOR_KINDS", "sub_discriminator_input"]

SUB_DISCRIMINATOR_KINDS = ("F", "dF", "clV", "dV", "crV")
# Kinds judged frame by frame (spatial D); the others go to a spatio-temporal D.
FRAME_INPUTS = ("F", "dF")


def _downsample(video: jax.Array, factor: int) -> jax.Array:
    return avg_pool_spatial(video, factor) if factor > 1 else video


def _sample_frames(video: jax.Array, key: jax.Array, num_frames: int, first: int) -> jax.Array:
    b, t = video.shape[:2]
    # K distinct frames per sample among frames first..T-1, in temporal order.
    idx = first + jax.vmap(lambda k: jnp.sort(jax.random.permutation(k, t - first)[:num_frames]))(
        jax.random.split(key, b)
    )  # [B, K]
    return jnp.take_along_axis(video, idx[:, :, None, None, None], axis=1)


def _random_crop(video: jax.Array, key: jax.Array, factor: int) -> jax.Array:
    b, t, h, w, c = video.shape
    ch, cw = h // factor, w // factor
    ky, kx = jax.random.split(key)
    ys = jax.random.randint(ky, (b,), 0, h - ch + 1)
    xs = jax.random.randint(kx, (b,), 0, w - cw + 1)

    def crop(v, y, x):
        return jax.lax.dynamic_slice(v, (0, y, x, 0), (t, ch, cw, c))

    return jax.vmap(crop)(video, ys, xs)


def sub_discriminator_input(
    video: jax.Array,
    kind: str,
    key: jax.Array,
    *,
    num_sampled_frames: int = 8,
    downsample_factor: int = 2,
    first_sampled_frame: int = 0,
) -> jax.Array:
    """Builds one sub-discriminator's input from a clip (section 3.1).

    Args:
      video: [B, T, H, W, C], conditioning and predicted frames concatenated in time.
      kind: "F" (K random full-resolution frames), "dF" (K random frames downsampled by s),
        "clV" (the whole clip), "dV" (the clip downsampled by s) or "crV" (a random
        `T x H/s x W/s` crop; one crop position per sample).
      key: randomness for frame sampling and crops.
      num_sampled_frames: K.
      downsample_factor: s (average pooling).
      first_sampled_frame: F and dF sample their K frames among frames `first_sampled_frame`
        to `T - 1` (the number of conditioning frames: only predicted frames, so no real
        conditioning frame is ever labelled fake; 0: among all frames).

    Returns:
      F: [B, K, H, W, C]; dF: [B, K, H/s, W/s, C]; clV: [B, T, H, W, C];
      dV and crV: [B, T, H/s, W/s, C].
    """
    if video.ndim != 5:
        raise ValueError(f"video must be [B, T, H, W, C], got shape {video.shape}")
    s = downsample_factor
    if video.shape[2] % s or video.shape[3] % s:
        raise ValueError(f"H, W {video.shape[2:4]} must be divisible by downsample_factor={s}")
    if kind in FRAME_INPUTS:
        if not 0 <= first_sampled_frame < video.shape[1]:
            raise ValueError(
                f"first_sampled_frame must be in [0, {video.shape[1] - 1}], "
                f"got {first_sampled_frame}"
            )
        available = video.shape[1] - first_sampled_frame
        if not 1 <= num_sampled_frames <= available:
            raise ValueError(
                f"num_sampled_frames must be in [1, {available}] (frames {first_sampled_frame}.."
                f"{video.shape[1] - 1}), got {num_sampled_frames}"
            )
    if kind == "F":
        return _sample_frames(video, key, num_sampled_frames, first_sampled_frame)
    if kind == "dF":
        frames = _sample_frames(video, key, num_sampled_frames, first_sampled_frame)
        return _downsample(frames, s)
    if kind == "clV":
        return video
    if kind == "dV":
        return _downsample(video, s)
    if kind == "crV":
        return _random_crop(video, key, s)
    raise ValueError(f"kind must be one of {SUB_DISCRIMINATOR_KINDS}, got {kind!r}")
