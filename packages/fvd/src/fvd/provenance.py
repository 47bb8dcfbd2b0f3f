"""What a set of FVD statistics was made from, and how two such records differ."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable
from typing import Any

from fvd.clips import ClipProtocol
from fvd.weights import WEIGHTS_SHA256

NETWORK = "Kinetics-400 I3D (InceptionI3d), 400 logits averaged over time, TF1 224x224 resize"
# Fields that must agree for two sets to be compared: a different clip length, frame stride,
# start policy, resolution reaching the network or network gives a different number for the
# same videos. The others (counts, seed, sampling, value range) describe each set.
COMPARED = ("num_frames", "frame_stride", "start", "frame_sizes", "network", "weights_sha256")


def package_version() -> str:
    try:
        return importlib.metadata.version("fvd")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - source checkout
        return "unknown"


def sizes(shapes: Iterable[tuple[int, ...]]) -> list[str]:
    """Sorted distinct `"HxW"` of `[..., H, W, 3]` shapes."""
    return sorted({f"{s[-3]}x{s[-2]}" for s in shapes})


def make(
    protocol: ClipProtocol,
    *,
    source: str,
    num_videos: int,
    num_clips: int,
    source_sizes: list[str],
    frame_sizes: list[str],
    value_range: tuple[float, float],
    weights_sha256: str = WEIGHTS_SHA256,
) -> dict[str, Any]:
    """The provenance record of one embedded set (JSON-serialisable)."""
    return {
        "fvd_version": package_version(),
        "network": NETWORK,
        "weights_sha256": weights_sha256,
        "source": source,
        "num_videos": int(num_videos),
        "num_clips": int(num_clips),
        "num_frames": protocol.num_frames,
        "frame_stride": protocol.stride,
        "start": protocol.start,
        "clips_per_video": protocol.clips_per_video,
        "seed": protocol.seed,
        "max_videos": protocol.max_videos,
        "sampling": protocol.sampling,
        "source_sizes": list(source_sizes),
        "resize": (
            None
            if protocol.resolution is None
            else f"centre crop to a square, antialiased bilinear to {protocol.resolution}x"
            f"{protocol.resolution}"
        ),
        "frame_sizes": list(frame_sizes),
        "value_range": [float(value_range[0]), float(value_range[1])],
    }


def differences(
    a: dict[str, Any], b: dict[str, Any], names=("real", "fake"), fields=COMPARED
) -> list[str]:
    """`"field: real X, fake Y"` for each of `fields` on which the records disagree."""
    out = []
    for field in fields:
        if a.get(field) != b.get(field):
            out.append(f"{field}: {names[0]} {a.get(field)!r}, {names[1]} {b.get(field)!r}")
    return out
