"""Motion fields from the TSRU warp weights (section 4.4, Figure 3) and their end-point error."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import warp_ops
from einshape import jax_einshape as einshape

__all__ = ["end_point_error", "motion_field", "true_flow_for_predictions"]


def motion_field(
    warp_weights: Sequence[jax.Array], frame_size: int, *, levels: int | None = None
) -> jax.Array:
    """Combines the warp weights of every recurrent stage into one flow per predicted frame.

    Each stage's per-pixel `k x k` weights are read as a distribution over kernel-grid offsets
    and their expectation is that stage's flow (`warp_ops.expected_flow`). Going coarse to
    fine, the running flow is upsampled x2 and doubled, and the finer flow is added
    (`warp_ops.compose_flows`, section 4.4). The finest recurrent stage runs at half the frame
    size, so the result is upsampled once more (a zero flow is composed at frame resolution).

    Args:
      warp_weights: per warping stage, coarse to fine, `[B, Tp, h_i, w_i, k*k]` (the
        generator's `aux["warp_weights"]`); `h_{i+1} = 2 h_i`.
      frame_size: H = W of the generated frames (a power-of-two multiple of the finest stage).
      levels: use only the `levels` finest stages (None: all). Figure 3 combines two.

    Returns:
      `[B, Tp, H, W, 2]` float32 backward flow `(dy, dx)` in frame pixels: predicted frame t
      at pixel p reads its content from frame t - 1 at `p + flow`.
    """
    weights = list(warp_weights)
    if not weights:
        raise ValueError("warp_weights must be a non-empty list (the recurrent unit must warp)")
    if levels is not None:
        if not 1 <= levels <= len(weights):
            raise ValueError(f"levels must be in [1, {len(weights)}], got {levels}")
        weights = weights[-levels:]
    b, t = weights[0].shape[:2]
    flows = [
        warp_ops.expected_flow(einshape("bthwq->(bt)hwq", w)) for w in weights
    ]  # each [B*Tp, h_i, w_i, 2]
    finest = flows[-1].shape[1]
    while finest < frame_size:
        finest *= 2
        flows.append(jnp.zeros((b * t, finest, finest, 2), jnp.float32))
    if finest != frame_size:
        raise ValueError(
            f"frame_size={frame_size} must be the finest stage size {flows[-1].shape[1]} times "
            "a power of two"
        )
    return einshape("(bt)hwd->bthwd", warp_ops.compose_flows(flows), b=b)


def true_flow_for_predictions(flow: np.ndarray, num_cond_frames: int, num_pred_frames: int):
    """Aligns a dataset's stored flow with the predicted frames and the motion-field convention.

    Args:
      flow: `[B, T - 1, H, W, 2]` `(dx, dy)` backward flow between consecutive frames
        (`video[t + 1](p) ~= video[t](p + flow[t](p))`, the camera-motion source).
      num_cond_frames: Tc.
      num_pred_frames: Tp.

    Returns:
      `[B, Tp, H, W, 2]` `(dy, dx)`: entry j is the flow into predicted frame `Tc + j` from
      frame `Tc + j - 1`, i.e. `flow[:, Tc - 1 + j]`, with the channels swapped.
    """
    flow = np.asarray(flow, np.float32)
    if flow.ndim != 5 or flow.shape[-1] != 2:
        raise ValueError(f"flow must be [B, T - 1, H, W, 2], got shape {flow.shape}")
    need = num_cond_frames + num_pred_frames - 1
    if flow.shape[1] < need:
        raise ValueError(
            f"flow must cover {need} transitions for {num_cond_frames} + {num_pred_frames} "
            f"frames, got {flow.shape[1]}"
        )
    sel = flow[:, num_cond_frames - 1 : num_cond_frames - 1 + num_pred_frames]
    return sel[..., ::-1].copy()


def end_point_error(predicted: jax.Array | np.ndarray, target: jax.Array | np.ndarray) -> float:
    """Mean Euclidean distance between two flow fields (the end-point error, in pixels).

    Args:
      predicted: `[..., 2]` flow.
      target: `[..., 2]` flow of the same shape and channel order.

    Returns:
      `mean(||predicted - target||_2)` over every pixel of every frame.
    """
    p, q = np.asarray(predicted, np.float64), np.asarray(target, np.float64)
    if p.shape != q.shape or p.shape[-1] != 2:
        raise ValueError(
            f"predicted and target must share a [..., 2] shape, got {p.shape} and {q.shape}"
        )
    return float(np.mean(np.sqrt(np.sum(np.square(p - q), axis=-1))))


def prediction_error(predicted: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Per-frame error of predicted frames against the true continuation, values in [-1, 1].

    Args:
      predicted: `[B, T, H, W, C]` frames in [-1, 1].
      target: the same shape.

    Returns:
      `(mse, psnr)`: the mean squared error on the [0, 1] scale, and the mean over frames of
      each frame's PSNR `10 log10(1 / mse_frame)` in dB (a frame matching exactly counts
      as 100 dB).
    """
    p, q = np.asarray(predicted, np.float64), np.asarray(target, np.float64)
    if p.shape != q.shape or p.ndim != 5:
        raise ValueError(
            f"predicted and target must share a [B, T, H, W, C] shape, got {p.shape} and {q.shape}"
        )
    per_frame = np.mean(np.square((p - q) / 2.0), axis=(2, 3, 4))  # [B, T] on [0, 1]
    psnr = np.where(per_frame > 0, 10.0 * np.log10(1.0 / np.maximum(per_frame, 1e-10)), 100.0)
    return float(per_frame.mean()), float(psnr.mean())
