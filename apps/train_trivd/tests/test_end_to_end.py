"""The tiny config end to end: train, checkpoint, eval files and metrics, resume, sample-trivd."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image
from train_trivd import main as train_main
from train_trivd import sample as sample_main

STEPS = 2


def _overrides(tmp, steps):
    return [
        f"--workdir={tmp / 'run'}",
        f"--config.num_steps={steps}",
        "--config.checkpoint_every=2",
        "--config.log_every=1",
        f"--config.data.root={tmp / 'data'}",
        f"--config.jax_cache_dir={tmp / 'jax_cache'}",
        "--config.eval.standing_batches=1",
    ]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trivd")
    assert train_main.main(_overrides(tmp, STEPS)) == 0
    return tmp


def _metrics(tmp):
    with open(tmp / "run" / "metrics.jsonl") as f:
        return [json.loads(line) for line in f]


def test_train_writes_checkpoint_metrics_gif_and_motion_image(run):
    ckpts = sorted(os.listdir(run / "run" / "checkpoints"))
    assert str(STEPS) in ckpts
    records = _metrics(run)
    losses = [r for r in records if "g_loss" in r]
    assert [r["step"] for r in losses] == list(range(1, STEPS + 1))
    assert all(np.isfinite(r[k]) for r in losses for k in ("d_loss", "g_loss"))
    evals = [r for r in records if "eval/epe" in r]
    assert evals and evals[-1]["step"] == STEPS
    ev = evals[-1]
    # True flow of the camera-motion clips is non-trivial, and EPE is a real distance.
    assert ev["eval/true_flow_magnitude"] > 0.05
    assert ev["eval/epe_zero_flow"] == pytest.approx(ev["eval/true_flow_magnitude"], rel=1e-6)
    assert ev["eval/epe"] > 0 and np.isfinite(ev["eval/epe"])
    # Prediction error against the true continuation, beside copying the last frame: the
    # camera moves, so copying is not exact.
    assert ev["eval/mse_copy_last"] > 0 and np.isfinite(ev["eval/mse"])
    assert ev["eval/psnr_copy_last"] < 100 and np.isfinite(ev["eval/psnr"])
    out = run / "run" / "eval"
    gif = Image.open(out / f"samples_step_{STEPS:07d}.gif")
    assert gif.n_frames == 5  # 2 conditioning + 3 predicted frames
    assert gif.size == (2 * (64 + 4), 2 * (64 + 4))  # 4 clips of 16x16 shown at 64x64
    assert (out / f"samples_step_{STEPS:07d}.mp4").stat().st_size > 0
    png = np.asarray(Image.open(out / f"motion_step_{STEPS:07d}.png"))
    # 4 samples x (frames, motion, true flow) rows of 16 px (+1 px border), 3 columns.
    assert png.shape == (4 * 3 * 17, 3 * 17, 3)
    assert png.std() > 0
    assert (out / f"motion_step_{STEPS:07d}.gif").exists()
    with open(run / "run" / "config.json") as f:
        assert json.load(f)["num_steps"] == STEPS


def test_resume_continues_from_the_checkpoint(run, capsys):
    assert train_main.main(_overrides(run, STEPS + 1)) == 0
    printed = capsys.readouterr().out
    assert f"trained to step {STEPS + 1} (started at {STEPS})" in printed
    steps = [r["step"] for r in _metrics(run) if "g_loss" in r]
    assert steps == [*range(1, STEPS + 1), STEPS + 1]  # only the new step was trained
    assert str(STEPS + 1) in os.listdir(run / "run" / "checkpoints")


@pytest.mark.slow  # compiles the I3D network (~1-2 min on 2 cores)
def test_fvd_and_inception_score_when_turned_on(run):
    # Off by default in the tiny config (I3D costs ~1 s per clip on a CPU); here on 4 clips,
    # repeated in time to I3D's 16 frames ([4, 16, 224, 224, 3], the fvd tests' batch shape).
    argv = [
        *_overrides(run, STEPS + 1),
        "--config.eval.fvd_num_clips=4",
        "--config.eval.fvd_batch_size=4",
    ]
    assert train_main.main(argv) == 0
    ev = [r for r in _metrics(run) if "eval/fvd" in r][-1]
    assert np.isfinite(ev["eval/fvd"]) and ev["eval/fvd"] > 0
    assert 1.0 <= ev["eval/is"] <= 4.0 + 1e-6  # one split of 4 clips: IS <= 4
    assert (run / "run" / "eval" / "fvd_real_stats.npz").exists()


def test_sample_trivd_on_dataset_clips_and_a_video_file(run, capsys):
    workdir = str(run / "run")
    out = run / "samples"
    args = ["--workdir", workdir, "--out", str(out), "--num-clips", "2", "--num-samples", "2"]
    assert sample_main.main([*args, "--truncation", "0"]) == 0
    printed = capsys.readouterr().out
    assert "sample-trivd: step" in printed
    names = sorted(os.listdir(out))
    assert any(n.startswith("samples_") and n.endswith(".gif") for n in names)
    assert any(n.startswith("samples_") and n.endswith(".mp4") for n in names)
    assert any(n.startswith("motion_") and n.endswith(".mp4") for n in names)
    assert any(n.startswith("ground_truth_") for n in names)
    grid = Image.open(
        next(out / n for n in names if n.startswith("samples_") and n.endswith(".gif"))
    )
    assert grid.n_frames == 5

    # A user's video file: a random 20-frame clip written with PyAV.
    from video_training import write_mp4

    rng = np.random.default_rng(0)
    video = rng.integers(0, 255, (20, 40, 48, 3), dtype=np.uint8)
    path = write_mp4(str(run / "user.mp4"), video)
    out2 = run / "samples_video"
    argv = ["--workdir", workdir, "--out", str(out2), "--video", path, "--num-samples", "4"]
    assert sample_main.main([*argv, "--no-mp4"]) == 0
    names = os.listdir(out2)
    assert any(n.startswith("motion_") and n.endswith(".png") for n in names)
    image = np.asarray(Image.open(out2 / next(n for n in names if n.endswith(".png"))))
    assert image.shape == (4 * 2 * 17, 3 * 17, 3)  # 4 samples x (frames, motion) rows


def test_export_round_trips_and_sample_trivd_pretrained(run, tmp_path, monkeypatch, capsys):
    import gan_video
    import jax
    from train_trivd import pretrained
    from train_trivd.train import load_run_config, model_config, train_config
    from video_training import write_mp4
    from video_training.cli_testing import assert_usage_error

    root = tmp_path / "pretrained"
    out = pretrained.export(str(run / "run"), str(root / "mine"))
    config = load_run_config(out)
    assert config.workdir == "" and config.data.root == "runs/data"
    assert not os.path.isabs(config.jax_cache_dir)
    gan = gan_video.make_gan(model_config(config), train_config(config))
    want, step = sample_main.restore_state(gan, str(run / "run"))
    got, got_step = pretrained.load_state(gan, out)
    assert got_step == step >= STEPS  # the newest checkpoint (the resume test adds one)
    jax.tree.map(np.testing.assert_array_equal, got["ema"], want["ema"])
    jax.tree.map(np.testing.assert_array_equal, got["g"]["rest"], want["g"]["rest"])
    with open(os.path.join(out, "about.json")) as f:
        about = json.load(f)
    assert about["step"] == step and any("eval/mse" in r for r in about["evaluations"])
    with pytest.raises(ValueError, match=f"holds step {step} only"):
        pretrained.load_state(gan, out, step=step + 1)

    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", str(root))
    monkeypatch.chdir(tmp_path)  # the data is rendered and the samples written under ./runs
    video = np.random.default_rng(1).integers(0, 255, (6, 24, 24, 3), dtype=np.uint8)
    path = write_mp4(str(tmp_path / "me.mp4"), video)
    argv = ["--pretrained=mine", "--video", path, "--num-samples=2", "--standing-batches=1"]
    assert sample_main.main([*argv, "--no-mp4"]) == 0
    assert f"sample-trivd: step {step}" in capsys.readouterr().out
    names = os.listdir(tmp_path / "runs" / "samples" / "pretrained_mine")
    assert any(n.startswith("samples_") and n.endswith(".gif") for n in names)
    assert any(n.startswith("motion_") and n.endswith(".png") for n in names)
    for bad, fragments in (
        (["--pretrained=nope"], ["--pretrained: expected one of ['mine']", "got 'nope'"]),
        (["--pretrained=mine", "--workdir=x"], ["--workdir=x", "expected one of them"]),
        (["--pretrained=mine", "--raw-weights"], ["--raw-weights", "EMA weights only"]),
        (["--pretrained=mine", "--step=7"], ["--step", "step=7", f"holds step {step} only"]),
    ):
        assert_usage_error(sample_main.main, bad, capsys, *fragments, prog="sample-trivd")
