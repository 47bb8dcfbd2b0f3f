"""Motion fields from warping weights (TrIVD-GAN-FP section 4.4, Figure 3) and their display."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from warp_ops import validation
from warp_ops.reference import tap_offsets


@jax.jit
def expected_flow(weights: jax.Array) -> jax.Array:
    """Expected kernel-grid offset of each pixel: its flow, pointing to where it reads from.

    A pixel's k*k weights are treated as a distribution over the offsets
    (m - (k-1)/2, n - (k-1)/2) of tap q = m * k + n (section 4.4). Weights are used as given
    (softmax weights sum to one); unnormalised weights give the weighted sum of offsets.

    Args:
      weights: [B, H, W, k*k] per-pixel kernels, k odd.

    Returns:
      [B, H, W, 2] float32 flow (dy, dx) in pixels.
    """
    validation.check_rank("weights", weights, 4, "[B, H, W, k*k]")
    validation.check_dtype("weights", weights)
    k = validation.kernel_size_from_taps("weights (last axis)", weights.shape[-1])
    offsets = jnp.asarray(tap_offsets(k), jnp.float32)  # [k*k, 2]
    return jnp.einsum(
        "bhwq,qd->bhwd",
        weights.astype(jnp.float32),
        offsets,
        precision=jax.lax.Precision.HIGHEST,
    )


def _upsample2x(flow: jax.Array) -> jax.Array:
    """Bilinear x2 upsampling with half-pixel centres: [B, H, W, 2] -> [B, 2H, 2W, 2]."""
    b, h, w, d = flow.shape
    return jax.image.resize(flow, (b, 2 * h, 2 * w, d), method="bilinear")


@jax.jit
def compose_flows(flows: Sequence[jax.Array]) -> jax.Array:
    """Combines flows of successive resolutions into one flow at the finest resolution.

    Section 4.4: going from coarse to fine, the running flow is upsampled x2 (bilinear), its
    vectors are multiplied by 2 (one coarse pixel spans two fine ones), and the finer flow is
    added.

    Args:
      flows: list of [B, H_l, W_l, 2] flows ordered coarse -> fine, H_{l+1} = 2 H_l and
        W_{l+1} = 2 W_l.

    Returns:
      [B, H_finest, W_finest, 2] float32 flow (dy, dx).
    """
    flows = list(flows)
    if not flows:
        raise ValueError("flows must be a non-empty list of [B, H, W, 2] arrays, got []")
    for i, f in enumerate(flows):
        validation.check_rank(f"flows[{i}]", f, 4, "[B, H, W, 2]")
        if f.shape[-1] != 2:
            raise ValueError(f"flows[{i}] must have 2 channels (dy, dx), got shape {f.shape}")
    out = flows[0].astype(jnp.float32)
    for i, f in enumerate(flows[1:], start=1):
        b, h, w, _ = out.shape
        expected = (b, 2 * h, 2 * w, 2)
        if tuple(f.shape) != expected:
            raise ValueError(
                f"flows[{i}] must be twice as large as flows[{i - 1}]: expected shape {expected}, "
                f"got {tuple(f.shape)}"
            )
        out = 2.0 * _upsample2x(out) + f.astype(jnp.float32)
    return out


def _colour_wheel() -> np.ndarray:
    """The Middlebury colour wheel (Baker et al. 2011): [55, 3] RGB in [0, 1]."""
    # Segment lengths: red-yellow, yellow-green, green-cyan, cyan-blue, blue-magenta, magenta-red.
    segments = [
        (15, (1, 0, 0), (1, 1, 0)),
        (6, (1, 1, 0), (0, 1, 0)),
        (4, (0, 1, 0), (0, 1, 1)),
        (11, (0, 1, 1), (0, 0, 1)),
        (13, (0, 0, 1), (1, 0, 1)),
        (6, (1, 0, 1), (1, 0, 0)),
    ]
    rows = []
    for n, start, end in segments:
        t = np.arange(n, dtype=np.float64)[:, None] / n
        rows.append((1 - t) * np.asarray(start, np.float64) + t * np.asarray(end, np.float64))
    return np.concatenate(rows, axis=0)


@functools.partial(jax.jit, static_argnames="max_magnitude")
def flow_to_rgb(flow: jax.Array, *, max_magnitude: float | None = None) -> jax.Array:
    """Standard colour-wheel visualisation of a flow field (Middlebury / Baker et al.).

    Hue encodes direction and saturation encodes magnitude; flows are normalised per sample
    by their largest magnitude unless `max_magnitude` is given (use it to compare frames).

    Args:
      flow: [B, H, W, 2] flow (dy, dx).
      max_magnitude: optional magnitude mapped to full saturation.

    Returns:
      [B, H, W, 3] uint8 RGB.
    """
    validation.check_rank("flow", flow, 4, "[B, H, W, 2]")
    if flow.shape[-1] != 2:
        raise ValueError(f"flow must have 2 channels (dy, dx), got flow.shape={flow.shape}")
    if max_magnitude is not None and not max_magnitude > 0:
        raise ValueError(f"max_magnitude must be > 0 or None, got {max_magnitude=}")
    flow = flow.astype(jnp.float32)
    v, u = flow[..., 0], flow[..., 1]  # [B, H, W]: vertical and horizontal components
    rad = jnp.sqrt(u * u + v * v)
    if max_magnitude is None:
        scale = jnp.max(rad, axis=(1, 2), keepdims=True)
    else:
        scale = jnp.float32(max_magnitude)
    eps = jnp.finfo(jnp.float32).eps
    u, v, rad = u / (scale + eps), v / (scale + eps), rad / (scale + eps)

    wheel = jnp.asarray(_colour_wheel(), jnp.float32)  # [ncols, 3]
    ncols = wheel.shape[0]
    angle = jnp.arctan2(-v, -u) / jnp.pi  # in [-1, 1]
    fk = (angle + 1.0) / 2.0 * (ncols - 1)
    k0 = jnp.floor(fk).astype(jnp.int32)
    k1 = jnp.where(k0 + 1 == ncols, 0, k0 + 1)
    frac = (fk - k0)[..., None]
    col = (1.0 - frac) * wheel[k0] + frac * wheel[k1]  # [B, H, W, 3]
    inside = (rad <= 1.0)[..., None]
    col = jnp.where(inside, 1.0 - rad[..., None] * (1.0 - col), col * 0.75)
    return jnp.floor(255.0 * jnp.clip(col, 0.0, 1.0)).astype(jnp.uint8)
