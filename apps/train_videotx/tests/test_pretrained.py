"""Shipped models (`train_videotx.pretrained`): export, restore, `sample-videotx --pretrained`."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest
from train_videotx import model as vtx_model
from train_videotx import pretrained
from train_videotx import sample as vtx_sample
from video_training import ConfigError, write_mp4


def test_export_round_trips_the_checkpoint_parameters(tiny_run, tmp_path):
    out = pretrained.export(tiny_run["workdir"], str(tmp_path / "shipped"))
    config = vtx_model.load_config(tiny_run["workdir"])
    setup = vtx_model.make_setup(config)
    want, step = vtx_model.restore_params(setup, tiny_run["workdir"])
    got, got_step = vtx_model.restore_params(setup, out)
    assert got_step == step == 3
    jax.tree.map(np.testing.assert_array_equal, got, want)
    shipped = vtx_model.load_config(out)
    assert shipped.data.dir == f"runs/data/{os.path.basename(tiny_run['data_dir'])}"
    assert shipped.workdir == "" and not os.path.isabs(shipped.compilation_cache_dir)
    with open(os.path.join(out, pretrained.ABOUT_FILE)) as f:
        about = json.load(f)
    assert about["step"] == 3 and about["evaluations"]  # the run's held-out metrics travel
    with pytest.raises(ValueError, match="holds step 3 only"):
        vtx_model.restore_params(setup, out, step=2)


def test_loading_into_another_model_names_the_parameter(tiny_run, tmp_path):
    out = pretrained.export(tiny_run["workdir"], str(tmp_path / "shipped"))
    config = vtx_model.load_config(tiny_run["workdir"])
    config.model.hidden_size = 48
    with pytest.raises(ValueError, match="has shape .* expects"):
        vtx_model.restore_params(vtx_model.make_setup(config), out)


def test_sample_with_pretrained(tiny_run, tmp_path, monkeypatch):
    root = tmp_path / "pretrained"
    pretrained.export(tiny_run["workdir"], str(root / "mine"))
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", str(root))
    monkeypatch.chdir(tmp_path)  # the default output goes under ./runs/samples
    video = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    path = write_mp4(str(tmp_path / "me.mp4"), video)
    args = vtx_sample._parser().parse_args(
        ["--pretrained=mine", "--video", path, "--num_samples=2", "--num_frames=6"]
    )
    samples, paths = vtx_sample.run(args)
    assert samples.shape == (2, 6, 8, 8, 3)
    assert all(p.startswith(os.path.join("runs", "samples", "pretrained_mine")) for p in paths)
    for argv, match in (
        (["--pretrained=nope"], r"--pretrained: expected one of \['mine'\], got 'nope'"),
        (["--pretrained=mine", f"--workdir={tiny_run['workdir']}"], "expected one of them"),
    ):
        with pytest.raises(ConfigError, match=match):
            vtx_sample.check_args(vtx_sample._parser().parse_args(argv))


def test_the_shipped_model_beats_the_previous_frame_baseline(tmp_path, monkeypatch):
    """`default_tiny` as shipped: it loads into its config's model and, on the embedded
    held-out clips, scores lower bits/dim than the previous-frame baseline (both on the
    same frames). Catches a shipped file that no longer matches the code or the data."""
    from train_videotx.evaluation import Evaluator

    assert "default_tiny" in pretrained.names()
    folder = pretrained.folder("default_tiny")
    monkeypatch.chdir(tmp_path)  # the embedded clips are prepared here (seconds)
    config = vtx_model.load_config(folder)
    config.compilation_cache_dir = ""
    from train_videotx import data as vtx_data

    data_dir = vtx_data.ensure_prepared(config.data)
    setup = vtx_model.make_setup(config)
    params, _ = vtx_model.restore_params(setup, folder)
    metrics = Evaluator(setup, config, data_dir, str(tmp_path)).bits_per_dim(params)
    model, baseline = metrics["bits_per_dim"], metrics["bits_per_dim_previous_frame"]
    assert model < baseline - 0.1, metrics
