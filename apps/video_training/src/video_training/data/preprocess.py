"""The papers' video preprocessing: spatial resizing/cropping at prepare time, random windows and crops at read time."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal

import grain.python as grain
import numpy as np
from PIL import Image

PreprocessName = Literal["vt", "trivd", "none"]


def _check_video(video: np.ndarray, name: str = "video") -> None:
    if not isinstance(video, np.ndarray) or video.ndim != 4 or video.shape[-1] != 3:
        got = getattr(video, "shape", type(video).__name__)
        raise ValueError(f"{name} must be a numpy array [T, H, W, 3], got {got}")


def resize_frames(
    video: np.ndarray, height: int, width: int, *, method: str = "lanczos3"
) -> np.ndarray:
    """Resizes every frame with PIL, which widens the kernel when downsampling (antialiasing).

    Args:
      video: [T, H, W, 3] uint8.
      height, width: output size.
      method: "lanczos3" (Lanczos window a=3, VT section 4.3) or "bilinear".

    Returns:
      [T, height, width, 3] uint8.
    """
    _check_video(video)
    filters = {"lanczos3": Image.Resampling.LANCZOS, "bilinear": Image.Resampling.BILINEAR}
    if method not in filters:
        raise ValueError(f"method must be one of {sorted(filters)}, got {method!r}")
    if video.shape[1:3] == (height, width):
        return video
    frames = [
        np.asarray(Image.fromarray(f).resize((width, height), filters[method], reducing_gap=None))
        for f in video.astype(np.uint8)
    ]
    return np.stack(frames)


def center_crop(video: np.ndarray, height: int, width: int) -> np.ndarray:
    """Crops the central `[height, width]` window of `video: [T, H, W, C]`."""
    _t, h, w = video.shape[:3]
    if height > h or width > w:
        raise ValueError(f"crop {height}x{width} larger than frames {h}x{w}")
    top, left = (h - height) // 2, (w - width) // 2
    return video[:, top : top + height, left : left + width]


def center_square_crop(video: np.ndarray) -> np.ndarray:
    """Crops the largest centred square of `video: [T, H, W, C]`."""
    side = min(video.shape[1:3])
    return center_crop(video, side, side)


def resize_smallest_side(video: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize so that min(H, W) == size, aspect ratio kept (TrIVD appendix E.2)."""
    _check_video(video)
    h, w = video.shape[1:3]
    scale = size / min(h, w)
    return resize_frames(
        video, max(size, round(h * scale)), max(size, round(w * scale)), method="bilinear"
    )


def vt_spatial(video: np.ndarray, size: int = 64) -> np.ndarray:
    """Video Transformer (section 4.3): centre crop, Lanczos-3 antialiased downsample to size.

    Returns uint8 `[T, size, size, 3]` (uint8 kept for the 4-bit/subscale split).
    """
    return resize_frames(center_square_crop(video), size, size, method="lanczos3")


def trivd_spatial(video: np.ndarray, size: int = 64, slack: float = 1.25) -> np.ndarray:
    """TrIVD (appendix E.2) storage: smallest side resized to `size`, width kept up to `size*slack`.

    The random `size x size` crop happens at read time (`RandomCrop`), so the stored clip keeps a
    horizontal margin of `round(size * slack) - size` pixels. Frames narrower than that are
    resized to cover `[size, round(size * slack)]` and centre-cropped, so every stored clip has
    the same shape.

    Returns:
      uint8 `[T, size, round(size * slack), 3]`.
    """
    _check_video(video)
    if slack < 1.0:
        raise ValueError(f"slack must be >= 1, got {slack}")
    out_h, out_w = size, round(size * slack)
    h, w = video.shape[1:3]
    scale = max(out_h / h, out_w / w)  # smallest side -> size unless the frame is too narrow
    resized = resize_frames(
        video, max(out_h, round(h * scale)), max(out_w, round(w * scale)), method="bilinear"
    )
    return center_crop(resized, out_h, out_w)


def spatial_preprocess(
    video: np.ndarray, name: PreprocessName, size: int, slack: float = 1.25
) -> np.ndarray:
    """Dispatches to `vt_spatial`, `trivd_spatial` or a size check for "none"."""
    if name == "vt":
        return vt_spatial(video, size)
    if name == "trivd":
        return trivd_spatial(video, size, slack)
    if name == "none":
        _check_video(video)
        if video.shape[1:3] != (size, size):
            raise ValueError(
                f"preprocess='none' needs frames {size}x{size}, got {video.shape[1:3]}"
            )
        return video
    raise ValueError(f"preprocess must be 'vt', 'trivd' or 'none', got {name!r}")


def to_symmetric(video: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1] (TrIVD appendix E.2)."""
    return video.astype(np.float32) / 127.5 - 1.0


def random_window_start(length: int, num_frames: int, rng: np.random.Generator) -> int:
    """A uniform start index of a `num_frames` window inside `length` frames."""
    if num_frames > length:
        raise ValueError(f"num_frames={num_frames} exceeds clip length {length}")
    return int(rng.integers(0, length - num_frames + 1))


@dataclasses.dataclass(frozen=True)
class RandomWindow(grain.RandomMapTransform):
    """Picks a random `num_frames` window; per-transition keys (flow) get `num_frames - 1` steps.

    Attributes:
      num_frames: T of the output window.
      frame_keys: keys holding `[T_stored, ...]` arrays, sliced `[s, s + T)`.
      transition_keys: keys holding `[T_stored - 1, ...]` per-step arrays (e.g. flow), sliced
        `[s, s + T - 1)` so they stay aligned with the frames.
    """

    num_frames: int = 16
    frame_keys: Sequence[str] = ("video", "trajectory")
    transition_keys: Sequence[str] = ("flow",)

    def random_map(self, element: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        length = element[self.frame_keys[0]].shape[0]
        start = random_window_start(length, self.num_frames, rng)
        out = dict(element)
        for k in self.frame_keys:
            if k in out:
                out[k] = out[k][start : start + self.num_frames]
        for k in self.transition_keys:
            if k in out:
                out[k] = out[k][start : start + self.num_frames - 1]
        return out


@dataclasses.dataclass(frozen=True)
class RandomCrop(grain.RandomMapTransform):
    """Random `size x size` spatial crop of `[T, H, W, C]` arrays (TrIVD appendix E.2)."""

    size: int = 64
    keys: Sequence[str] = ("video", "flow")

    def random_map(self, element: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        h, w = element[self.keys[0]].shape[1:3]
        if self.size > h or self.size > w:
            raise ValueError(f"crop size {self.size} larger than frames {h}x{w}")
        top = int(rng.integers(0, h - self.size + 1))
        left = int(rng.integers(0, w - self.size + 1))
        out = dict(element)
        for k in self.keys:
            if k in out:
                out[k] = out[k][:, top : top + self.size, left : left + self.size]
        return out


@dataclasses.dataclass(frozen=True)
class CenterCrop(grain.MapTransform):
    """Deterministic central `size x size` crop (evaluation counterpart of `RandomCrop`)."""

    size: int = 64
    keys: Sequence[str] = ("video", "flow")

    def map(self, element: dict[str, Any]) -> dict[str, Any]:
        out = dict(element)
        for k in self.keys:
            if k in out:
                out[k] = center_crop(out[k], self.size, self.size)
        return out


@dataclasses.dataclass(frozen=True)
class RandomSymmetry(grain.RandomMapTransform):
    """Data augmentation: one of the 8 flips/transposes of the frames and a random RGB order.

    The same transform for every frame of a clip, so motion stays consistent (a pan to the
    right becomes a pan to the left, down, ...); a stored backward flow `(dx, dy)` is
    transformed with the frames. Needs square frames when transposing (`[T, S, S, C]`).

    Attributes:
      video_key: the `[T, H, W, 3]` clip.
      flow_key: optional `[T - 1, H, W, 2]` `(dx, dy)` flow, moved with the frames.
      permute_channels: also shuffle the colour channels.
    """

    video_key: str = "video"
    flow_key: str = "flow"
    permute_channels: bool = True

    def random_map(self, element: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        flip_y, flip_x, transpose = (bool(b) for b in rng.integers(0, 2, size=3))
        order = rng.permutation(3) if self.permute_channels else None
        out = dict(element)
        video = out[self.video_key]
        if transpose and video.shape[1] != video.shape[2]:
            transpose = False  # only squares transpose onto themselves
        flow = out.get(self.flow_key)
        if flow is not None:
            flow = np.array(flow, copy=True)
        if flip_y:
            video = video[:, ::-1]
            if flow is not None:
                flow = flow[:, ::-1]
                flow[..., 1] = -flow[..., 1]
        if flip_x:
            video = video[:, :, ::-1]
            if flow is not None:
                flow = flow[:, :, ::-1]
                flow[..., 0] = -flow[..., 0]
        if transpose:
            video = np.swapaxes(video, 1, 2)
            if flow is not None:
                flow = np.swapaxes(flow, 1, 2)[..., ::-1]
        if order is not None:
            video = video[..., order]
        out[self.video_key] = np.ascontiguousarray(video)
        if flow is not None:
            out[self.flow_key] = np.ascontiguousarray(flow)
        return out


@dataclasses.dataclass(frozen=True)
class ToSymmetric(grain.MapTransform):
    """uint8 video -> float32 in [-1, 1]."""

    key: str = "video"

    def map(self, element: dict[str, Any]) -> dict[str, Any]:
        out = dict(element)
        out[self.key] = to_symmetric(out[self.key])
        return out


def trivd_transforms(
    num_frames: int = 16, size: int = 64, *, train: bool = True, augment: bool = False
) -> list[Any]:
    """Read-time TrIVD pipeline: random window, random (train) or centre crop, [-1, 1] floats;
    with `augment` (training only) also `RandomSymmetry` (flips, transposes, RGB order)."""
    crop = RandomCrop(size) if train else CenterCrop(size)
    extra = [RandomSymmetry()] if train and augment else []
    return [RandomWindow(num_frames), crop, *extra, ToSymmetric()]


def vt_transforms(num_frames: int = 16) -> list[Any]:
    """Read-time Video Transformer pipeline: random window, uint8 kept."""
    return [RandomWindow(num_frames)]
