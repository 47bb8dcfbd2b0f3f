"""The papers' preprocessing: TrIVD smallest-side resize + random crop + [-1, 1]; VT centre crop + Lanczos-3."""

from __future__ import annotations

import numpy as np
import pytest
from video_training.data import (
    CameraMotionSource,
    RandomCrop,
    RandomSymmetry,
    RandomWindow,
    resize_smallest_side,
    to_symmetric,
    trivd_spatial,
    trivd_transforms,
    vt_spatial,
)
from video_training.data.embedded import bilinear_sample
from video_training.data.preprocess import center_crop, spatial_preprocess


def _video(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_resize_smallest_side_keeps_aspect():
    assert resize_smallest_side(_video((2, 48, 80, 3)), 16).shape == (2, 16, 27, 3)
    assert resize_smallest_side(_video((2, 90, 30, 3)), 16).shape == (2, 48, 16, 3)


def test_vt_lanczos_downsample_is_antialiased():
    # A 1-pixel checkerboard has no energy below Nyquist of the 4x smaller grid: an antialiased
    # downsample gives flat mid-grey, naive subsampling aliases it to solid black.
    yy, xx = np.mgrid[0:64, 0:96]
    board = (((yy + xx) % 2) * 255).astype(np.uint8)
    video = np.repeat(board[None, :, :, None], 3, axis=-1).repeat(2, axis=0)  # [2, 64, 96, 3]
    out = vt_spatial(video, 16)
    assert out.shape == (2, 16, 16, 3) and out.dtype == np.uint8
    assert abs(float(out.mean()) - 127.5) < 3 and float(out.std()) < 3
    naive = center_crop(video, 64, 64)[:, ::4, ::4]
    assert abs(float(naive.mean()) - 127.5) > 100


def test_vt_keeps_the_centre():
    video = np.zeros((1, 40, 80, 3), np.uint8)
    video[:, :, 20:60] = 255  # the central square is white, the sides black
    assert vt_spatial(video, 8).min() == 255


def test_trivd_storage_shape_for_wide_and_narrow_frames():
    assert trivd_spatial(_video((3, 48, 96, 3)), 16, slack=1.25).shape == (3, 16, 20, 3)
    assert trivd_spatial(_video((3, 40, 20, 3)), 8, slack=1.25).shape == (3, 8, 10, 3)
    with pytest.raises(ValueError, match="slack"):
        trivd_spatial(_video((1, 8, 8, 3)), 8, slack=0.5)
    with pytest.raises(ValueError, match="preprocess must be"):
        spatial_preprocess(_video((1, 8, 8, 3)), "bicubic", 8)
    with pytest.raises(ValueError, match=r"video must be a numpy array \[T, H, W, 3\]"):
        vt_spatial(np.zeros((8, 8, 3), np.uint8), 4)


def test_to_symmetric_range():
    v = np.array([0, 255, 128], np.uint8)
    np.testing.assert_allclose(to_symmetric(v), [-1.0, 1.0, 128 / 127.5 - 1], atol=1e-6)


def test_random_crop_is_a_seeded_subwindow():
    video = _video((4, 16, 20, 3))
    flow = np.random.default_rng(1).normal(size=(3, 16, 20, 2)).astype(np.float32)
    crop = RandomCrop(8)
    a = crop.random_map({"video": video, "flow": flow}, np.random.default_rng(7))
    b = crop.random_map({"video": video, "flow": flow}, np.random.default_rng(7))
    np.testing.assert_array_equal(a["video"], b["video"])
    assert a["video"].shape == (4, 8, 8, 3) and a["flow"].shape == (3, 8, 8, 2)
    hits = [
        (i, j)
        for i in range(9)
        for j in range(13)
        if np.array_equal(video[:, i : i + 8, j : j + 8], a["video"])
        and np.array_equal(flow[:, i : i + 8, j : j + 8], a["flow"])
    ]
    assert len(hits) == 1  # video and flow cropped at the same place
    crops = {
        crop.random_map({"video": video}, np.random.default_rng(s))["video"].tobytes()
        for s in range(8)
    }
    assert len(crops) > 1  # different seeds, different positions
    with pytest.raises(ValueError, match="crop size 32"):
        RandomCrop(32).random_map({"video": video}, np.random.default_rng(0))


def test_random_window_keeps_flow_aligned_and_varies():
    t = 10
    video = np.broadcast_to(np.arange(t, dtype=np.uint8)[:, None, None, None], (t, 2, 2, 3)).copy()
    flow = np.broadcast_to(
        np.arange(t - 1, dtype=np.float32)[:, None, None, None], (t - 1, 2, 2, 2)
    ).copy()
    traj = np.arange(t * 3, dtype=np.float32).reshape(t, 3)
    window = RandomWindow(4)
    starts = set()
    for seed in range(20):
        out = window.random_map(
            {"video": video, "flow": flow, "trajectory": traj}, np.random.default_rng(seed)
        )
        s = int(out["video"][0, 0, 0, 0])
        starts.add(s)
        np.testing.assert_array_equal(out["video"][:, 0, 0, 0], np.arange(s, s + 4))
        np.testing.assert_array_equal(out["flow"][:, 0, 0, 0], np.arange(s, s + 3))
        np.testing.assert_array_equal(out["trajectory"], traj[s : s + 4])
    assert starts <= set(range(7)) and len(starts) > 3
    with pytest.raises(ValueError, match="num_frames=12 exceeds clip length 10"):
        RandomWindow(12).random_map({"video": video}, np.random.default_rng(0))


def _warp_error(video: np.ndarray, flow: np.ndarray) -> float:
    """Mean |frame t warped by the backward flow - frame t+1| inside a 3 px margin."""
    size = video.shape[1]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    errs = []
    for t in range(flow.shape[0]):
        pred = bilinear_sample(video[t], xs + flow[t, ..., 0], ys + flow[t, ..., 1])
        errs.append(np.abs(pred - video[t + 1])[3:-3, 3:-3].mean())
    return float(np.mean(errs))


def test_random_symmetry_moves_the_flow_with_the_frames():
    source = CameraMotionSource(
        num_frames=4, size=24, num_train=4, num_test=1, base_side=48, trajectory="linear"
    )
    ex = list(source.examples("train"))[3]  # a pan of ~1.6 px/frame in x, ~1.1 in y
    video, flow = ex["video"].astype(np.float32), ex["flow"].astype(np.float32)
    assert np.abs(flow[..., 0]).mean() > 0.3 and np.abs(flow[..., 1]).mean() > 0.3
    static = np.abs(np.diff(video, axis=0))[:, 3:-3, 3:-3].mean()
    base = _warp_error(video, flow)
    assert base < 0.5 * static
    seen_videos = set()
    for seed in range(24):
        out = RandomSymmetry().random_map(
            {"video": ex["video"], "flow": ex["flow"]}, np.random.default_rng(seed)
        )
        v, f = out["video"], out["flow"]
        assert v.shape == video.shape and v.dtype == np.uint8 and f.dtype == ex["flow"].dtype
        # Same pixels (a permutation of positions and channels), motion still consistent.
        np.testing.assert_array_equal(np.sort(v, axis=None), np.sort(ex["video"], axis=None))
        np.testing.assert_allclose(
            np.sort(np.abs(f), axis=None), np.sort(np.abs(ex["flow"]), axis=None)
        )
        assert _warp_error(v.astype(np.float32), f.astype(np.float32)) < base + 1e-3
        seen_videos.add(v.tobytes())
    assert len(seen_videos) > 12  # 8 symmetries x 6 channel orders, drawn at random
    # The flow has to move with the frames: the untransformed flow does not fit a flip.
    flipped = video[:, :, ::-1]
    assert _warp_error(flipped, flow) > 2 * base


def test_trivd_transforms_augment_only_for_training():
    def names(transforms):
        return [type(t).__name__ for t in transforms]

    assert "RandomSymmetry" in names(trivd_transforms(4, 8, train=True, augment=True))
    assert "RandomSymmetry" not in names(trivd_transforms(4, 8, train=True))
    assert "RandomSymmetry" not in names(trivd_transforms(4, 8, train=False, augment=True))
