"""The `fvd` CLI's clip protocols, provenance checks and early input errors (#14).

The network is replaced by a cheap deterministic embedding (the first 400 pixel values of each
clip) where only the clips that reach it matter; `test_cli.py` runs the real I3D.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from fvd import FVDStatistics, cli
from fvd.clips import ClipProtocol, find_sources

FEATURES = 400


class FakeNetwork:
    """Stands in for `ClipStream`: records each batch, embeds clips by their pixels."""

    def __init__(self):
        self.batches: list[list[tuple[int, ...]]] = []  # the clip shapes of each network call

    def __call__(self, *, batch_size, **kwargs):
        return _FakeStream(self, batch_size)


class _FakeStream:
    def __init__(self, network, batch_size):
        self.network, self.batch_size = network, batch_size
        self.waiting, self.done, self.count = [], [], 0

    def add(self, clip, label=None):
        self.waiting.append((self.count if label is None else label, np.asarray(clip)))
        self.count += 1
        if len(self.waiting) == self.batch_size:
            self._dispatch()

    def _dispatch(self):
        items, self.waiting = self.waiting, []
        self.network.batches.append([c.shape for _, c in items])
        flat = [c.reshape(-1)[:FEATURES].astype(np.float32) for _, c in items]
        self.done.append(([label for label, _ in items], np.stack(flat)))

    def ready(self, in_flight=1):
        out, self.done = self.done, []
        return out

    def close(self):
        if self.waiting:
            self._dispatch()
        return self.ready(0)


@pytest.fixture
def network(monkeypatch):
    fake = FakeNetwork()
    monkeypatch.setattr(cli, "ClipStream", fake)
    return fake


@pytest.fixture
def refuse_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the network ran before the inputs were checked")

    monkeypatch.setattr(cli, "ClipStream", refuse)


def _videos(n=6, t=40, size=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, t, size, size, 3), dtype=np.uint8)


def _json(capsys, argv):
    assert cli.main([*argv, "--json", "--no-progress"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def _save(path, array):
    np.save(path, array)
    return str(path)


def _stats(tmp_path, capsys, argv):
    out = tmp_path / "stats"
    _json(capsys, [*argv, "--save-stats", str(out)])
    return FVDStatistics.load(out / "real_stats.npz"), FVDStatistics.load(out / "fake_stats.npz")


def _write_frames(folder, clip):
    from PIL import Image

    os.makedirs(folder)
    for i, frame in enumerate(clip):
        Image.fromarray(frame).save(os.path.join(folder, f"frame_{i:03d}.png"))


def test_stride_equals_the_strided_array(tmp_path, capsys, network):
    videos = _videos()
    full = _save(tmp_path / "full.npy", videos)
    strided = _save(tmp_path / "strided.npy", np.ascontiguousarray(videos[:, ::2][:, :16]))
    a, _ = _stats(tmp_path / "a", capsys, [full, full, "--stride", "2"])
    b, _ = _stats(tmp_path / "b", capsys, [strided, strided])
    np.testing.assert_array_equal(a.features, b.features)
    assert a.provenance["frame_stride"] == 2 and b.provenance["frame_stride"] == 1


def test_frame_folders_equal_the_array_and_folders_are_searched_recursively(
    tmp_path, capsys, network
):
    pytest.importorskip("PIL")
    videos = _videos(n=4, t=16)
    root = tmp_path / "frames"
    for i, clip in enumerate(videos):  # nested: a/clip_0, a/clip_1, b/deeper/clip_2, ...
        _write_frames(root / ("a" if i < 2 else "b/deeper") / f"clip_{i}", clip)
    assert len(find_sources(str(root))) == 4
    array = _save(tmp_path / "v.npy", videos)
    a, b = _stats(tmp_path, capsys, [str(root), array, "--sampling", "sorted"])
    np.testing.assert_array_equal(a.features, b.features)  # PNG is lossless
    np.testing.assert_allclose(a.cov, b.cov)
    with pytest.raises(ValueError, match="not searched recursively"):
        find_sources(str(root / "b"), recursive=False)
    assert cli.main([str(root / "a" / "clip_0"), array]) == 2
    assert "holds frame images itself" in capsys.readouterr().err


def test_random_sampling_and_starts_follow_the_seed(tmp_path, capsys, network):
    array = _save(tmp_path / "v.npy", _videos(n=8))
    flags = ["--max-videos", "4", "--start", "random", "--clips-per-video", "2"]

    def features(seed):
        real, _ = _stats(tmp_path / f"s{seed}", capsys, [array, array, *flags, "--seed", seed])
        return real.features

    first, again, other = features("1"), features("1"), features("2")
    assert first.shape == (8, FEATURES)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    # The protocol's pieces: seeded choice of videos, per-video seeded starts, sorted prefix.
    p = ClipProtocol(max_videos=3, seed=5)
    assert (
        p.select(range(10))
        == p.select(range(10))
        != ClipProtocol(max_videos=3, seed=6).select(range(10))
    )
    assert ClipProtocol(max_videos=3, sampling="sorted").select(range(10)) == [0, 1, 2]
    r = ClipProtocol(start="random", clips_per_video=3, seed=4)
    assert r.starts(100, 0) == r.starts(100, 0) != r.starts(100, 1)
    assert all(0 <= s <= 100 - 16 for s in r.starts(100, 0))
    assert ClipProtocol(clips_per_video=3, stride=2).starts(100, 0) == [0, 31, 62]


def test_mixed_frame_sizes_fill_whole_batches_in_source_order(tmp_path, capsys, network):
    pytest.importorskip("PIL")
    root = tmp_path / "mixed"
    small, large = _videos(n=3, t=16, size=8), _videos(n=3, t=16, size=12, seed=1)
    for i in range(3):
        _write_frames(root / f"clip_{2 * i}", small[i])
        _write_frames(root / f"clip_{2 * i + 1}", large[i])
    real, _ = _stats(tmp_path, capsys, [str(root), str(root), "--batch-size", "3"])
    small_shape, large_shape = (16, 8, 8, 3), (16, 12, 12, 3)
    # Full batches across sizes, in source order (no batch cut short at a size change).
    assert network.batches[:2] == [[small_shape, large_shape, small_shape]] + [
        [large_shape, small_shape, large_shape]
    ]
    order = [small[0], large[0], small[1], large[1], small[2], large[2]]
    expected = np.stack([c.reshape(-1)[:FEATURES] for c in order]).astype(np.float32)
    np.testing.assert_array_equal(real.features, expected)
    assert real.provenance["frame_sizes"] == ["12x12", "8x8"]


def test_parallel_decoding_matches_one_worker(tmp_path, capsys, network):
    array = _save(tmp_path / "v.npy", _videos(n=7))
    one, _ = _stats(tmp_path / "one", capsys, [array, array, "--workers", "1", "--start", "random"])
    many, _ = _stats(
        tmp_path / "many", capsys, [array, array, "--workers", "3", "--start", "random"]
    )
    np.testing.assert_array_equal(one.features, many.features)


def test_resolution_crops_and_resizes_before_the_network(tmp_path, capsys, network):
    wide = _videos(n=3, t=16, size=24)[:, :, :16]  # 16x24 frames
    array = _save(tmp_path / "wide.npy", np.ascontiguousarray(wide))
    real, _ = _stats(tmp_path, capsys, [array, array, "--resolution", "8"])
    assert network.batches[0][0][1:3] == (8, 8)
    assert real.provenance["source_sizes"] == ["16x24"]
    assert real.provenance["frame_sizes"] == ["8x8"] and "8x8" in real.provenance["resize"]
    # A constant frame stays constant: the crop takes the centre 16x16, resizing keeps values.
    flat = np.full((3, 16, 16, 24, 3), 77, np.uint8)
    flat[..., :4, :] = 0  # outside the centre square: cropped away
    flat[..., 20:, :] = 0
    from fvd.clips import crop_resize

    np.testing.assert_array_equal(crop_resize(flat[0], 8), np.full((16, 8, 8, 3), 77, np.uint8))


def test_sets_made_differently_are_refused_field_by_field(tmp_path, capsys, network):
    array = _save(tmp_path / "v.npy", _videos(n=4))
    real, _ = _stats(tmp_path, capsys, [array, array])
    saved = str(tmp_path / "stats" / "real_stats.npz")
    assert cli.main([saved, array, "--stride", "2", "--start", "random"]) == 2
    err = capsys.readouterr().err
    assert "frame_stride: real 1, fake 2" in err and "start: real 'first', fake 'random'" in err
    assert "--allow-mismatch" in err
    assert len(network.batches) == 2  # only the first run's two sets were embedded
    small = _save(tmp_path / "small.npy", _videos(n=4, size=8))
    assert cli.main([array, small, "--no-progress"]) == 2
    assert "frame_sizes: real ['16x16'], fake ['8x8']" in capsys.readouterr().err
    result = _json(capsys, [array, small, "--allow-mismatch"])
    assert result["fvd"] > 0 and result["real"]["frame_sizes"] == ["16x16"]
    # Statistics without provenance (fvd 0.1) load with a warning and are compared as before.
    old = FVDStatistics().update_embeddings(real.features)
    old.save(tmp_path / "old.npz")
    with pytest.warns(UserWarning, match="without provenance"):
        legacy = _json(capsys, [str(tmp_path / "old.npz"), array])
    assert legacy["fvd"] == pytest.approx(0.0, abs=1e-6) and legacy["real"] is None


@pytest.mark.parametrize(
    ("make_fake", "extra", "message"),
    [
        (lambda t: str(t / "nope"), [], "fake: '.*nope': no such file or folder"),
        (lambda t: str(t / "empty_dir"), [], "no video files .* or folders of frame images"),
        (lambda t: str(t / "x.txt"), [], "expected a .npy/.npz file"),
        (lambda t: str(t / "v.npy"), ["--repeats", "3"], r"gives 4 clips .* needs >= 6"),
        (lambda t: str(t / "v.npy"), ["--num-frames", "30"], "has T=20 frames, fewer than"),
        (lambda t: str(t / "v.npy"), ["--stride", "2"], "has T=20 frames, fewer than the 31"),
        (lambda t: str(t / "v.npy"), ["--max-videos", "1"], "--max-videos: expected an integer"),
        (lambda t: str(t / "v.npy"), ["--start", "middle"], None),
    ],
)
def test_bad_inputs_fail_before_anything_is_embedded(
    tmp_path, capsys, refuse_network, make_fake, extra, message
):
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "x.txt").write_text("not a video")
    array = _save(tmp_path / "v.npy", _videos(n=4, t=20))
    argv = [array, make_fake(tmp_path), *extra]
    if message is None:  # argparse's own choice check
        with pytest.raises(SystemExit):
            cli.main(argv)
        assert "invalid choice: 'middle'" in capsys.readouterr().err
        return
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("fvd: error: ") and __import__("re").search(message, err), err


def test_help_shows_the_defaults_and_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for piece in (
        "frames per clip (>= 9) (default: 16)",
        "(default: random)",
        "pixel range of array inputs",
        "(default: (0.0, 255.0))",
        "--allow-mismatch",
        "sample standard deviation (ddof 1)",
        "frame folders",
        "KVD",
    ):
        assert piece in text, piece
