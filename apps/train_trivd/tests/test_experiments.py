"""The evaluations the experiment scripts add beside the held-out photos (issue #15)."""

from __future__ import annotations

import importlib
import json
import os
import sys

import numpy as np
import pytest
from train_trivd import data, pretrained
from train_trivd.train import load_run_config
from video_training import shipped

EXPERIMENTS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "experiments"
)


def _experiment(monkeypatch, name: str):
    """Imports the script `experiments/<name>.py` for one test, then forgets it."""
    monkeypatch.syspath_prepend(EXPERIMENTS)
    yield importlib.import_module(name)
    sys.modules.pop(name, None)


@pytest.fixture
def recurrent_units(monkeypatch):
    yield from _experiment(monkeypatch, "recurrent_units")


@pytest.fixture
def camera_predictability(monkeypatch):
    yield from _experiment(monkeypatch, "camera_predictability")


def test_evaluate_run_scores_the_training_and_test_stills_clips_and_caches(
    recurrent_units, tmp_path, monkeypatch
):
    """On the shipped generator (trained with the photo pool): the first 8 training clips and
    the 32 test_stills clips, each beside its own copy-last baseline; a second call reads the
    cached file."""
    monkeypatch.chdir(tmp_path)  # clips rendered under ./runs/data, results under ./runs
    results = recurrent_units.evaluate_run(pretrained.DEFAULT)
    assert sorted(results) == ["test_stills", "train"]
    config = load_run_config(pretrained.folder())
    ncond = config.model.num_cond_frames
    for split, clips in recurrent_units.EXTRA_SPLITS.items():
        config.data.eval_split = split
        video = np.concatenate(
            [b["video"] for b in data.eval_clips(config, data.data_dir(config), clips)]
        )
        assert video.shape[0] == clips
        frames = (video + 1) / 2  # [0, 1], as the evaluation measures
        copy_last = np.mean((frames[:, ncond:] - frames[:, ncond - 1 : ncond]) ** 2)
        metrics = results[split]
        assert metrics["mse_copy_last"] == pytest.approx(copy_last, rel=1e-4), split
        assert metrics["step"] == 8000 and 0 < metrics["mse"] < 1 and metrics["epe"] > 0
    assert results["train"]["mse_copy_last"] != pytest.approx(
        results["test_stills"]["mse_copy_last"]
    )
    path = (
        tmp_path / "runs/experiments" / f"shipped_{pretrained.DEFAULT}" / recurrent_units.EXTRA_FILE
    )
    assert path.exists()

    def fail(*args, **kwargs):
        raise AssertionError("evaluated again")

    monkeypatch.setattr(recurrent_units, "evaluate_split", fail)
    assert recurrent_units.evaluate_run(pretrained.DEFAULT) == results


def test_standing_batches_evaluates_every_split_again_with_that_count(
    recurrent_units, tmp_path, monkeypatch
):
    """At the config's count it repeats the recorded evaluations of the shipped hybrid (the
    held-out photos' too); at another count G's standing statistics, and so its error, change
    while the copy-last baseline does not."""
    monkeypatch.chdir(tmp_path)
    name = "camera_linear_tiny_hybrid"
    n = load_run_config(pretrained.folder(name)).eval.standing_batches
    with open(os.path.join(pretrained.folder(name), shipped.ABOUT_FILE)) as f:
        recorded = json.load(f)["evaluations"][-1]
    results = recurrent_units.evaluate_run(name, standing_batches=n)
    assert sorted(results) == ["test", "test_stills", "train"]
    for split, metrics in results.items():
        prefix = "eval" if split == "test" else pretrained.split_prefix(split)
        assert metrics["standing_batches"] == n
        for field in ("mse", "mse_copy_last", "epe", "epe_zero_flow"):
            assert metrics[field] == pytest.approx(recorded[f"{prefix}/{field}"], rel=1e-4)
    folder = tmp_path / "runs/experiments" / f"shipped_{name}"
    assert (folder / recurrent_units.standing_file(n)).exists()
    assert not (folder / recurrent_units.EXTRA_FILE).exists()

    monkeypatch.setattr(recurrent_units, "extra_splits", lambda config: [])
    other = recurrent_units.evaluate_run(name, standing_batches=n + 3)["test"]
    assert other["standing_batches"] == n + 3
    assert other["mse_copy_last"] == pytest.approx(recorded["eval/mse_copy_last"], rel=1e-6)
    assert other["mse"] != pytest.approx(recorded["eval/mse"], rel=1e-3)

    with pytest.raises(ValueError, match="standing_batches: expected an integer >= 1, got 0"):
        recurrent_units.evaluate_run(name, standing_batches=0)


def test_standing_batches_flag_rejects_a_count_below_one(recurrent_units, capsys):
    with pytest.raises(SystemExit, match="--standing-batches: expected an integer >= 1, got 0"):
        recurrent_units.main(["--standing-batches", "0", "--evaluate", "camera_linear_tiny"])


def test_reach_stats_counts_the_pixels_one_warp_can_follow(camera_predictability):
    # (dx, dy) flows in frame px; a k x k warp on a half-size map reaches k - 1 px per axis.
    flow = np.array([[0.0, 0.0], [2.0, 0.0], [2.5, 0.0], [0.0, -4.0], [3.0, 5.0]])
    r = camera_predictability.reach_stats(flow.reshape(1, 5, 2))
    assert r["within_k3"] == pytest.approx(2 / 5)  # (0, 0) and (2, 0)
    assert r["within_k5"] == pytest.approx(4 / 5)  # all but (3, 5)
    assert r["mean_length"] == pytest.approx((0 + 2 + 2.5 + 4 + np.sqrt(34)) / 5)
    # Quarter-size maps: 4 frame px per map px, so k = 3 reaches 4 px.
    quarter = camera_predictability.reach_stats(flow, warp_sizes=(3,), frame_per_map=4)
    assert quarter["within_k3"] == pytest.approx(4 / 5)
    with pytest.raises(ValueError, match="warp_sizes"):
        camera_predictability.reach_stats(flow, warp_sizes=(4,))
    with pytest.raises(ValueError, match=r"\[\.\.\., 2\]"):
        camera_predictability.reach_stats(np.zeros((3, 3)))
