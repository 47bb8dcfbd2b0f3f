"""The `fvd REAL FAKE` command on folders of video files written with PyAV."""

import os
import re

import av
import jax
import numpy as np
import pytest
from fvd import FVDStatistics, cli, frechet_distance
from fvd.cli import main
from fvd.video_io import read_video

RESULT = re.compile(r"^FVD (\d+\.\d+)( ± (\d+\.\d+))?, KVD -?\d+\.\d+( ± \d+\.\d+)? \(.*\)$")


def _write_video(path, frames):
    """frames: [T, H, W, 3] uint8 -> an MPEG-4 file decodable by PyAV/FFmpeg."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.options = {"qscale": "2"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(scope="module")
def folders(tmp_path_factory, real_clips, fake_clips):
    root = tmp_path_factory.mktemp("videos")
    real, fake = root / "real", root / "fake"
    real.mkdir()
    fake.mkdir()
    noise = 40.0 * np.asarray(jax.random.normal(jax.random.key(7), fake_clips.shape))
    noisy = np.clip(fake_clips + noise, 0, 255).astype(np.uint8)
    for i, (r, f) in enumerate(zip(real_clips, noisy)):
        _write_video(real / f"clip_{i}.mp4", r)
        _write_video(fake / f"clip_{i}.mp4", f)
    return real, fake


def _result(capsys):
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out  # the result is one line
    match = RESULT.match(out[0])
    assert match, out[0]
    return out[0], float(match.group(1)), match.group(3) and float(match.group(3))


def test_written_videos_decode(folders, real_clips):
    video = read_video(str(folders[0] / "clip_0.mp4"), 16)
    assert video.shape == real_clips[0].shape
    assert np.mean(np.abs(video.astype(float) - real_clips[0])) < 8.0  # lossy but close


def test_folders_and_saved_stats(folders, tmp_path, capsys, batch_size, monkeypatch):
    real, fake = folders
    # Whatever this worker compiled before and however fast this machine compiles, the run
    # below compiles its programs and files them.
    jax.clear_caches()
    monkeypatch.setattr(cli, "XLA_CACHE_MIN_COMPILE_SECS", 0.0)
    stats_dir = tmp_path / "stats"
    args = ["--batch-size", str(batch_size), "--num-frames", "16", "--save-stats", str(stats_dir)]
    assert main([str(real), str(fake), *args]) == 0
    line, value, _ = _result(capsys)
    assert "real 4 clips, fake 4 clips, 16 frames, stride 1, first" in line and value > 0
    # The compiled network was kept for the next run (conftest points FVD_XLA_CACHE at a
    # fresh folder, the --xla-cache default).
    assert os.listdir(os.environ["FVD_XLA_CACHE"])
    r = FVDStatistics.load(stats_dir / "real_stats.npz")
    f = FVDStatistics.load(stats_dir / "fake_stats.npz")
    assert r.n == f.n == 4
    # The saved statistics say what they were made from.
    from fvd.weights import WEIGHTS_SHA256

    assert r.provenance["num_frames"] == 16 and r.provenance["frame_stride"] == 1
    assert r.provenance["source_sizes"] == r.provenance["frame_sizes"] == ["144x176"]
    assert r.provenance["weights_sha256"] == WEIGHTS_SHA256 and r.provenance["num_videos"] == 4
    assert r.provenance["source"] == str(real) and r.provenance["resize"] is None
    assert r.features.shape == (4, 400)
    np.testing.assert_allclose(frechet_distance(r.mean, r.cov, f.mean, f.cov), value, rtol=1e-5)
    # Saved statistics are accepted in place of videos, and give the same number.
    assert main([str(stats_dir / "real_stats.npz"), str(stats_dir / "fake_stats.npz")]) == 0
    assert _result(capsys)[1] == value


def test_bad_files_reported_then_skipped(folders, tmp_path, capsys, batch_size, real_clips):
    real, _ = folders
    (real / "broken.mp4").write_bytes(bytes(range(256)) * 8)
    (real / "empty.mp4").write_bytes(b"")
    _write_video(real / "short.mp4", real_clips[0][:10])
    try:
        assert main([str(real), str(real), "--batch-size", str(batch_size)]) == 2
        err = capsys.readouterr().err
        assert "3 unreadable or unusable video file(s)" in err
        for name in ("broken.mp4", "empty.mp4", "short.mp4"):
            assert str(real / name) in err
        assert "has 10 frames, fewer than the 16 needed" in err
        # --skip-bad goes on with the 4 good files; the fake side is a .npy array here.
        fake_npy = tmp_path / "fake.npy"
        np.save(fake_npy, real_clips[::-1].copy())
        argv = [str(real), str(fake_npy), "--batch-size", str(batch_size), "--skip-bad"]
        assert main([*argv, "--repeats", "2"]) == 0
        line, mean, std = _result(capsys)
        assert "mean ± sample std, ddof 1, over 2 disjoint subsets of real 2 clips, fake 2" in line
        assert mean > 0 and std is not None and std >= 0
    finally:
        for name in ("broken.mp4", "empty.mp4", "short.mp4"):
            (real / name).unlink()


def test_bad_arguments(tmp_path, capsys):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((2, 16, 8, 8), np.uint8))
    assert main([str(bad), str(bad)]) == 2
    assert "rank 5" in capsys.readouterr().err
    assert main([str(bad), str(bad), "--num-frames", "8"]) == 2
    assert "--num-frames: expected an integer >= 9, got 8" in capsys.readouterr().err
    short = tmp_path / "short.npy"
    np.save(short, np.zeros((2, 12, 8, 8, 3), np.uint8))
    assert main([str(short), str(short)]) == 2
    assert "T=12 frames, fewer than the 16 needed" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.npy"), str(short)]) == 2
    assert "missing.npy': no such file or folder" in capsys.readouterr().err
    text = tmp_path / "notes.txt"
    text.write_text("x")
    assert main([str(text), str(short)]) == 2
    assert "expected a .npy/.npz file" in capsys.readouterr().err


def test_arrays_give_the_library_fvd_on_the_reference_protocol(
    tmp_path, capsys, batch_size, real_clips, fake_clips
):
    """Today's protocol (first 16 frames, every clip, no resize) gives `fvd.fvd`'s number."""
    import json

    import fvd

    real, fake = tmp_path / "real.npy", tmp_path / "fake.npy"
    np.save(real, real_clips)
    np.save(fake, fake_clips)
    argv = [str(real), str(fake), "--batch-size", str(batch_size), "--json", "--no-progress"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    expected = fvd.fvd(real_clips, fake_clips, batch_size=batch_size)
    assert result["fvd"] == pytest.approx(expected, rel=1e-6)
    assert result["real_clips"] == result["fake_clips"] == 4 and np.isfinite(result["kvd"])
    assert result["real"]["source_sizes"] == ["144x176"]
