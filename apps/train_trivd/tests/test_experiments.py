"""The evaluations the experiment scripts add beside the held-out photos (issue #15)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from train_trivd import data, pretrained
from train_trivd.train import load_run_config

EXPERIMENTS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "experiments"
)


@pytest.fixture
def recurrent_units(monkeypatch):
    monkeypatch.syspath_prepend(EXPERIMENTS)
    import recurrent_units

    yield recurrent_units
    sys.modules.pop("recurrent_units", None)


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
