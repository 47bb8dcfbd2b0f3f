"""Fréchet Video Distance between two sets of videos (or their saved statistics)."""

from __future__ import annotations

from typing import Any

from fvd.embedding import check_video_shape, embed_async
from fvd.frechet import frechet_distance, kernel_distance
from fvd.statistics import FVDStatistics


def _check_set(videos: Any, name: str) -> None:
    """Static checks of one set (shape, >= 2 videos) before any network work."""
    if isinstance(videos, FVDStatistics):
        if videos.n < 2:
            raise ValueError(f"{name} statistics must cover at least 2 videos, got {videos.n}")
    else:
        check_video_shape(videos, name=name, min_videos=2)


def _check_same_length(real_videos: Any, fake_videos: Any) -> None:
    if real_videos.shape[1] != fake_videos.shape[1]:
        raise ValueError(
            "real_videos and fake_videos must have the same number of frames (the distances "
            f"compare clips of one length), got {real_videos.shape[1]} and {fake_videos.shape[1]}"
        )


def video_statistics(videos: Any, *, name: str = "videos", **embed_kwargs: Any) -> FVDStatistics:
    """Gaussian fit of a video set's I3D embeddings; `FVDStatistics` pass through unchanged.

    Args:
      videos: `[N, T, H, W, 3]` with N >= 2, or an `FVDStatistics`.
      name: argument name used in error messages.
      **embed_kwargs: forwarded to `fvd.embed`.
    """
    _check_set(videos, name)
    if isinstance(videos, FVDStatistics):
        return videos
    stats = FVDStatistics(**embed_kwargs)
    stats.update(videos, name=name)
    stats.n  # noqa: B018 - finishes the embedding here, so value errors surface in this call
    return stats


def fvd(real_videos: Any, fake_videos: Any, **embed_kwargs: Any) -> float:
    """Fréchet Video Distance (Unterthiner et al. 2018) with the reference protocol.

    Args:
      real_videos: `[N, T, H, W, 3]` (N >= 2, T >= 9; the protocol uses T = 16) in
        `value_range` (default 0..255), or precomputed `FVDStatistics`.
      fake_videos: the same for the generated set.
      **embed_kwargs: forwarded to `fvd.embed` (`batch_size`, `value_range`, `dtype`,
        `precision`, `variables`).

    Returns:
      `frechet_distance` of the two float64 Gaussian fits of the I3D logits.
    """
    _check_set(real_videos, "real_videos")
    _check_set(fake_videos, "fake_videos")
    if not isinstance(real_videos, FVDStatistics) and not isinstance(fake_videos, FVDStatistics):
        _check_same_length(real_videos, fake_videos)
    real = video_statistics(real_videos, name="real_videos", **embed_kwargs)
    fake = video_statistics(fake_videos, name="fake_videos", **embed_kwargs)
    return frechet_distance(real.mean, real.cov, fake.mean, fake.cov)


def kvd(real_videos: Any, fake_videos: Any, **embed_kwargs: Any) -> float:
    """Kernel Video Distance: `kernel_distance` of the two sets' I3D logits (same inputs and
    checks as `fvd`, but videos only: saved Gaussian statistics cannot give it)."""
    for name, videos in (("real_videos", real_videos), ("fake_videos", fake_videos)):
        if isinstance(videos, FVDStatistics):
            raise TypeError(f"{name}: expected videos [N, T, H, W, 3], got FVDStatistics")
        check_video_shape(videos, name=name, min_videos=2)
    _check_same_length(real_videos, fake_videos)
    real = embed_async(real_videos, name="real_videos", **embed_kwargs)()
    fake = embed_async(fake_videos, name="fake_videos", **embed_kwargs)()
    return kernel_distance(real, fake)
