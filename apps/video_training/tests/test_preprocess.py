"""The papers' preprocessing: TrIVD smallest-side resize + random crop + [-1, 1]; VT centre crop + Lanczos-3."""

from __future__ import annotations

import numpy as np
import pytest
from video_training.data import (
    RandomCrop,
    RandomWindow,
    resize_smallest_side,
    to_symmetric,
    trivd_spatial,
    vt_spatial,
)
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
