"""`sample-videotx` on the tiny run's checkpoint: primed on held-out clips and on a video file."""

from __future__ import annotations

import os

import jax
import numpy as np
import pytest
from train_videotx import data as vtx_data
from train_videotx import sample as vtx_sample
from video_training import write_mp4
from video_training.data import decode_video, vt_spatial
from vtx_test_utils import gif_frames


def _args(workdir, *extra):
    return vtx_sample._parser().parse_args(["--workdir", workdir, *extra])


def test_samples_primed_on_heldout_clips(tiny_run, capsys):
    workdir, out = tiny_run["workdir"], os.path.join(tiny_run["workdir"], "cli", "heldout")
    flags = ["--num_samples=2", "--num_frames=9", "--num_prime_frames=3", "--temperature=0.8"]
    assert vtx_sample.main(["--workdir", workdir, *flags, "--out", out, "--formats=gif"]) == 0
    assert out + ".gif" in capsys.readouterr().out
    assert gif_frames(out + ".gif").shape == (9, 2 * 68, 2 * 68, 3)  # data row + sample row
    samples, _ = vtx_sample.run(_args(workdir, *flags, "--out", out, "--formats=gif"))
    real, _ = vtx_data.heldout_clips(tiny_run["data_dir"], "test", 2, 9)
    assert samples.shape == (2, 9, 8, 8, 3) and samples.dtype == np.uint8
    np.testing.assert_array_equal(samples[:, :3], real[:, :3])  # primes kept
    assert not np.array_equal(samples[:, 3:], real[:, 3:])


def test_samples_primed_on_a_video_file_with_seed_and_temperature(tiny_run, tmp_path):
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (6, 24, 32, 3), dtype=np.uint8)  # not square: centre crop
    path = write_mp4(str(tmp_path / "user.mp4"), video)
    common = ["--video", path, "--start_frame=1", "--num_samples=2", "--num_frames=8"]
    base = str(tmp_path / "s")
    a, paths = vtx_sample.run(_args(tiny_run["workdir"], *common, "--seed=1", "--out", base))
    assert [os.path.basename(p) for p in paths] == ["s.gif", "s.mp4"]
    prime = vt_spatial(decode_video(path)[1:3], 8)  # the config primes on 2 frames
    np.testing.assert_array_equal(a[:, :2], np.repeat(prime[None], 2, axis=0))
    assert not np.array_equal(a[0, 2:], a[1, 2:])  # two different continuations
    b, _ = vtx_sample.run(_args(tiny_run["workdir"], *common, "--seed=1", "--out", base))
    np.testing.assert_array_equal(a, b)  # deterministic for a seed
    c, _ = vtx_sample.run(_args(tiny_run["workdir"], *common, "--seed=2", "--out", base))
    assert not np.array_equal(a, c)
    hot = ["--seed=1", "--temperature=3.0", "--num-samples=2", "--out", base]  # hyphen alias
    d, _ = vtx_sample.run(_args(tiny_run["workdir"], *common, *hot))
    assert not np.array_equal(a, d)


def test_bad_requests_fail_loudly(tiny_run, tmp_path):
    workdir = tiny_run["workdir"]
    with pytest.raises(ValueError, match="num_frames=2 must exceed"):
        vtx_sample.run(_args(workdir, "--num_frames=2"))
    with pytest.raises(ValueError, match="step=99 has no checkpoint"):
        vtx_sample.run(_args(workdir, "--step=99"))
    short = write_mp4(str(tmp_path / "short.mp4"), np.zeros((2, 8, 8, 3), np.uint8) + 50)
    with pytest.raises(ValueError, match="need start_frame"):
        vtx_sample.run(_args(workdir, "--video", short, "--start_frame=1"))
    with pytest.raises(FileNotFoundError, match="config.json"):
        vtx_sample.run(_args(str(tmp_path)))


def test_more_primes_than_the_window_holds(tiny_run):
    from train_videotx.evaluation import continue_videos
    from train_videotx.model import load_config, make_setup, restore_params

    setup = make_setup(load_config(tiny_run["workdir"]))
    params, step = restore_params(setup, tiny_run["workdir"])
    assert step == 3
    prime, _ = vtx_data.heldout_clips(tiny_run["data_dir"], "test", 2, 5)  # 5 primes, T = 4
    out = continue_videos(setup.model(params), jax.random.key(0), prime, num_frames=7)
    assert out.shape == (2, 7, 8, 8, 3)
    np.testing.assert_array_equal(out[:, :5], prime)  # the model saw the last 3 of them
    assert not np.array_equal(out[:, 5:], np.repeat(out[:, 4:5], 2, axis=1))
