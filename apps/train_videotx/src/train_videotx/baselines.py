"""Baselines an autoregressive video model must beat, scored like the model (bits/dim).

* uniform: every 8-bit value equally likely, 8 bits/dim;
* previous frame: each channel value predicted from the same pixel and channel of the
  previous frame through a learned discretized distribution of the difference,
  `p(x_t = v | x_{t-1} = u) = h_c[v - u] / sum_w h_c[w - u]` over the 256 feasible values,
  `h_c` the add-one-smoothed histogram of frame-to-frame differences of channel `c` in the
  training clips. A video model that does not beat it has learned nothing beyond copying.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

UNIFORM_BITS = 8.0
NUM_VALUES = 256


class PreviousFrameBaseline:
    """The previous-frame model above, fit by `fit` and scored by `bits_per_dim`.

    Attributes:
      counts: `[3, 511]` float64 smoothed difference histograms (index `d + 255`).
      log2_probs: `[3, 256, 256]` `log2 p(v | u)` indexed `[channel, u, v]`.
    """

    def __init__(self, counts: np.ndarray):
        counts = np.asarray(counts, np.float64)
        if counts.shape != (3, 2 * NUM_VALUES - 1) or (counts <= 0).any():
            raise ValueError(f"counts: expected [3, 511] positive values, got {counts.shape}")
        self.counts = counts
        u = np.arange(NUM_VALUES)[:, None]
        v = np.arange(NUM_VALUES)[None, :]
        index = v - u + NUM_VALUES - 1  # [256, 256] histogram bin of each (u, v)
        cum = np.concatenate([np.zeros((3, 1)), np.cumsum(counts, axis=1)], axis=1)
        # Normaliser over the feasible v = 0..255 given u: bins 255 - u .. 510 - u.
        z = cum[:, 2 * NUM_VALUES - 1 - u[:, 0]] - cum[:, NUM_VALUES - 1 - u[:, 0]]  # [3, 256]
        self.log2_probs = np.log2(counts[:, index]) - np.log2(z)[:, :, None]

    @classmethod
    def fit(cls, clips: Iterable[np.ndarray], smoothing: float = 1.0) -> PreviousFrameBaseline:
        """Histograms of `x_t - x_{t-1}` per channel over batches of `[B, T, H, W, 3]` uint8."""
        counts = np.full((3, 2 * NUM_VALUES - 1), float(smoothing))
        seen = 0
        for video in clips:
            video = _check_video(video, "clips")
            diff = video[:, 1:].astype(np.int64) - video[:, :-1] + NUM_VALUES - 1
            for c in range(3):
                counts[c] += np.bincount(diff[..., c].ravel(), minlength=counts.shape[1])
            seen += diff.size
        if not seen:
            raise ValueError("clips: expected at least one clip of >= 2 frames, got none")
        return cls(counts)

    def frame_bits(self, video: np.ndarray) -> np.ndarray:
        """`[B, T]` mean bits/dim of each frame given the one before (frame 0: uniform)."""
        video = _check_video(video, "video")
        prev, cur = video[:, :-1].astype(np.int64), video[:, 1:].astype(np.int64)
        channel = np.arange(3)
        bits = -self.log2_probs[channel, prev, cur]  # [B, T - 1, H, W, 3]
        out = np.full(video.shape[:2], UNIFORM_BITS)
        out[:, 1:] = bits.mean(axis=(2, 3, 4))
        return out

    def bits_per_dim(self, video: np.ndarray, num_prime_frames: int) -> float:
        """Mean bits/dim of frames `num_prime_frames..` (all of the same size, as the model's)."""
        if not 0 <= num_prime_frames < video.shape[1]:
            raise ValueError(
                f"num_prime_frames: expected an int in [0, {video.shape[1]}), got "
                f"{num_prime_frames}"
            )
        return float(self.frame_bits(video)[:, num_prime_frames:].mean())


def _check_video(video: np.ndarray, name: str) -> np.ndarray:
    video = np.asarray(video)
    if video.dtype != np.uint8 or video.ndim != 5 or video.shape[-1] != 3:
        raise ValueError(
            f"{name}: expected [B, T, H, W, 3] uint8 clips, got {video.shape} {video.dtype}"
        )
    return video
