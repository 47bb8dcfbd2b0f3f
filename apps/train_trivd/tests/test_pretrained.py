"""The generator shipped with the app (`train_trivd/pretrained/camera_linear_tiny`)."""

from __future__ import annotations

import json
import os

import gan_video
import pytest
from train_trivd import data, pretrained
from train_trivd.evaluate import Evaluator
from train_trivd.train import load_run_config, model_config, train_config


def test_the_default_is_shipped():
    assert pretrained.DEFAULT in pretrained.names()


@pytest.mark.parametrize("name", pretrained.names())
def test_each_shipped_generator_reproduces_its_recorded_evaluation(name, tmp_path, monkeypatch):
    """Loads into its config's generator and, on the embedded held-out clips (rendered here),
    gives the held-out metrics its run recorded, beside the same baselines. Catches a shipped
    file that no longer matches the code or the data."""
    folder = pretrained.folder(name)
    monkeypatch.chdir(tmp_path)  # the embedded clips are rendered under ./runs/data (seconds)
    config = load_run_config(folder)
    mc = model_config(config)
    gan = gan_video.make_gan(mc, train_config(config))
    state, step = pretrained.load_state(gan, folder)
    with open(os.path.join(folder, "about.json")) as f:
        recorded = json.load(f)["evaluations"][-1]
    assert recorded["step"] == step
    directory = data.data_dir(config)
    evaluator = Evaluator(
        gan,
        mc,
        config.eval,
        data.eval_clips(config, directory, config.eval.num_clips),
        str(tmp_path),
        standing_source=lambda: data.standing_batches(config, directory),
    )
    metrics = evaluator(state, step)
    for field in ("mse", "mse_copy_last", "epe", "epe_zero_flow", "psnr"):
        assert metrics[field] == pytest.approx(recorded[f"eval/{field}"], rel=2e-3), field


def test_export_adds_the_runs_extra_evaluations_at_the_exported_step(tmp_path):
    evaluations = [{"step": 4, "eval/mse": 0.5}, {"step": 8, "eval/mse": 0.25}]
    extra = {
        "train": {"step": 8, "mse": 0.125, "epe": 1.5},
        "test_stills": {"step": 4, "mse": 0.75},  # another checkpoint's: not the exported one
    }
    (tmp_path / pretrained.EXTRA_EVALUATIONS_FILE).write_text(json.dumps(extra))
    got = pretrained._with_extra_evaluations(str(tmp_path), [dict(e) for e in evaluations], 8)
    assert got[0] == evaluations[0]
    assert got[1] == {**evaluations[1], "train_clips/mse": 0.125, "train_clips/epe": 1.5}
    # Without the file the run's evaluations are written as they are.
    assert pretrained._with_extra_evaluations(str(tmp_path / "none"), evaluations, 8) == evaluations
    assert pretrained.extra_evaluation_keys("test_stills", {"step": 1, "mse": 2}) == {
        "test_stills/mse": 2.0
    }
