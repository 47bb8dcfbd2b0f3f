"""`train-trivd` / `sample-trivd` command lines: every --config form, and configuration errors
that print one line, exit 2 and build nothing (no data, no model, no compile)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import gan_video
import pytest
from train_trivd import data as trivd_data
from train_trivd import main as trivd_main
from train_trivd import sample as trivd_sample
from train_trivd import train as trivd_train
from train_trivd.configs import CONFIG_DIR
from video_training import cli_testing, load_config_file
from video_training.cli_testing import assert_usage_error

NAMES = "bair, embedded, kinetics600, ucf101"


class Reached(Exception):
    """Raised by the patched `train_and_evaluate` with the config it was given."""


@pytest.fixture
def nothing_built(monkeypatch):
    """Fails the test if data, a model or any XLA program is built."""
    with cli_testing.nothing_built(
        monkeypatch,
        [
            (trivd_train, "train_and_evaluate"),
            (trivd_data, "data_dir"),
            (trivd_data, "eval_clips"),
            (trivd_data, "train_loader"),
            (gan_video, "make_gan"),
            (trivd_sample, "restore_state"),
        ],
    ):
        yield


def _forms(tmp_path, monkeypatch):
    """Every accepted spelling of `embedded:tiny` (and a user's copy of the file)."""
    packaged = os.path.join(CONFIG_DIR, "embedded.py")
    mine = tmp_path / "my.py"
    shutil.copy(packaged, mine)
    monkeypatch.chdir(tmp_path)
    return [
        "embedded:tiny",
        "embedded.py:tiny",
        f"{packaged}:tiny",  # absolute path
        f"{os.path.relpath(packaged)}:tiny",  # relative path
        "configs/embedded.py:tiny",  # a README-style path, from any folder
        "my.py:tiny",  # a file of the user's, by relative path
        f"{mine}:tiny",
    ]


def test_every_config_form_resolves_to_the_same_config(tmp_path, monkeypatch, nothing_built):
    expected = load_config_file(os.path.join(CONFIG_DIR, "embedded.py") + ":tiny").to_dict()
    for form in _forms(tmp_path, monkeypatch):
        config, workdir = trivd_main.parse_args([f"--config={form}"])
        assert config.to_dict() == expected, form
        assert workdir == os.path.join("runs", "embedded_tiny")
    config, workdir = trivd_main.parse_args(["--config", "embedded", "--workdir", "w"])
    assert config.name == "embedded_default" and workdir == "w"
    assert trivd_main.parse_args(["--config=embedded.py"])[0].name == "embedded_default"


def test_main_trains_every_form_with_the_same_config(tmp_path, monkeypatch, nothing_built):
    seen = []

    def fake_train(config, workdir):
        seen.append((config.to_dict(), workdir))
        raise Reached

    monkeypatch.setattr(trivd_train, "train_and_evaluate", fake_train)
    monkeypatch.setattr(trivd_main, "configure_jax", lambda config: None)
    for form in _forms(tmp_path, monkeypatch):
        with pytest.raises(Reached):
            trivd_main.main([f"--config={form}", "--config.data.batch_size=2", "--workdir=w"])
    assert len(seen) == 7 and all(s == seen[0] for s in seen)
    assert seen[0][0]["name"] == "embedded_tiny" and seen[0][0]["data"]["batch_size"] == 2


TRAIN_ERRORS = [
    (["--config=embeddedd"], ["--config", "'embeddedd'", NAMES]),
    (["--config=embeddedd.py:tiny"], ["'embeddedd.py:tiny'", NAMES]),
    (["--config=no/such/dir/my.py:tiny"], ["file not found", "'no/such/dir/my.py'", NAMES]),
    (["--config=embedded.py:huge"], ["--config=embedded.py:huge", "'tiny'", "got 'huge'"]),
    (["--config=bair:huge"], ["--config=bair:huge", "'original'", "got 'huge'"]),
    (["--config=ucf101:tiny"], ["--config=ucf101:tiny", "None", "got 'tiny'"]),
    (["--config.model.g_chh=8"], ["--config.model.g_chh", "no field 'g_chh'", "g_ch"]),
    (["--config.data.batch_size=0"], ["--config.data.batch_size", "integer >= 1", "got 0"]),
    (["--config.data.batch_size=-4"], ["--config.data.batch_size", ">= 1", "got -4"]),
    (["--config.data.batch_size=two"], ["--config.data.batch_size", "integer", "got 'two'"]),
    (["--config.eval.batch_size=0"], ["--config.eval.batch_size", ">= 1", "got 0"]),
    (["--config.num_steps=0"], ["--config.num_steps", ">= 1", "got 0"]),
    (["--config.model.num_pred_frames=0"], ["--config.model.num_pred_frames", "got 0"]),
    (["--config.model.resolution=0"], ["--config.model.resolution", ">= 1", "got 0"]),
    (["--config.model.resolution=20"], ["--config.model", "multiple of 8", "got 20"]),
    (["--config.train.g_lr=0"], ["--config.train.g_lr", "> 0", "got 0.0"]),
    (["--config.train.d_lr=-1e-4"], ["--config.train.d_lr", "> 0", "got -0.0001"]),
    (["--config.train.recon_weight=-1"], ["--config.train.recon_weight", ">= 0", "got -1"]),
    (["--config.model.recurrent_unit=lstm"], ["recurrent_unit", "'tsru_p'", "got 'lstm'"]),
    (["--config.model.frame_sampling=first"], ["frame_sampling", "'predicted'", "got 'first'"]),
    (
        ["--config.model.num_sampled_frames=4"],  # the tiny config predicts 3 frames
        ["--config.model", "num_sampled_frames must be in [1, 3]", "got 4"],
    ),
    (["--config=ucf101"], ["--config.data.data_dir", "prepare-video-data", "got ''"]),
    (  # the tiny config reads 2 D updates x 4 clips a step
        ["--config.data.num_train=7"],
        ["--config.data.num_train", ">= 2 x data.batch_size = 8 clips", "got 7"],
    ),
    (["--bogus=1"], ["unrecognized arguments: --bogus=1", "--workdir=DIR"]),
    (["--workdir"], ["--workdir", "expected a folder"]),
]


@pytest.mark.parametrize(("argv", "fragments"), TRAIN_ERRORS, ids=lambda x: str(x)[:40])
def test_train_configuration_errors_exit_2(argv, fragments, capsys, nothing_built):
    assert_usage_error(trivd_main.main, argv, capsys, *fragments, prog="train-trivd")


@pytest.fixture
def run_folder(tmp_path):
    """A run folder as `train-trivd` leaves it (config.json, a checkpoint step), untrained."""
    workdir = tmp_path / "run"
    trivd_train.save_config(load_config_file(f"{CONFIG_DIR}/embedded.py:tiny"), str(workdir))
    os.makedirs(workdir / "checkpoints" / "2")
    (tmp_path / "empty").mkdir()
    (tmp_path / "corrupt.mp4").write_bytes(os.urandom(4096))
    return tmp_path


SAMPLE_ERRORS = [
    ([], ["required: --workdir", "or --pretrained"]),
    (["--pretrained=nope"], ["--pretrained: expected one of", "got 'nope'"]),
    (["--pretrained", "--workdir={tmp}/run"], ["--pretrained=", "expected one of them"]),
    (["--workdir={tmp}/missing"], ["--workdir", "train-trivd run folder", "missing'"]),
    (["--workdir={tmp}/empty"], ["--workdir", "config.json", "empty'"]),
    (["--workdir={tmp}/run", "--step=7"], ["--step=7", "[2]"]),
    (["--workdir={tmp}/run", "--num-samples=0"], ["--num-samples", ">= 1", "got 0"]),
    (["--workdir={tmp}/run", "--num-clips=-1"], ["--num-clips", ">= 1", "got -1"]),
    (["--workdir={tmp}/run", "--video={tmp}/nope.mp4"], ["--video", "decodes", "nope.mp4'"]),
    (["--workdir={tmp}/run", "--video={tmp}/corrupt.mp4"], ["--video", "decodes", "corrupt.mp4'"]),
    (["--workdir={tmp}/run", "--truncation=x"], ["--truncation", "invalid float value: 'x'"]),
]


@pytest.mark.parametrize(("argv", "fragments"), SAMPLE_ERRORS, ids=lambda x: str(x)[:40])
def test_sample_configuration_errors_exit_2(argv, fragments, run_folder, capsys, nothing_built):
    argv = [a.format(tmp=run_folder) for a in argv]
    assert_usage_error(trivd_sample.main, argv, capsys, *fragments, prog="sample-trivd")


def test_sample_rejects_a_video_shorter_than_the_conditioning(run_folder, capsys, nothing_built):
    import numpy as np
    from video_training import write_mp4

    frames = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    path = write_mp4(str(run_folder / "short.mp4"), frames)  # tiny conditions on 2 frames
    argv = ["--workdir", str(run_folder / "run"), "--video", path, "--start=3"]
    fragments = ["--video=", "has 1 frames from --start=3", "num_cond_frames=2"]
    assert_usage_error(trivd_sample.main, argv, capsys, *fragments, prog="sample-trivd")


def test_sample_needs_the_training_clips_for_standing_statistics(tmp_path, capsys, nothing_built):
    # Standing statistics come from the run's training clips, even with --video.
    workdir = tmp_path / "run"
    config = load_config_file(f"{CONFIG_DIR}/embedded.py:tiny")
    config.data.kind, config.data.data_dir = "prepared", str(tmp_path / "gone")
    trivd_train.save_config(config, str(workdir))
    os.makedirs(workdir / "checkpoints" / "2")
    fragments = ("--data-dir", "prepared clips", "training clips", "gone'")
    assert_usage_error(
        trivd_sample.main, [f"--workdir={workdir}"], capsys, *fragments, prog="sample-trivd"
    )


def test_console_script_prints_one_line_and_exits_2(tmp_path):
    # The real entry point, for what in-process tests cannot see (C++ logs, the exit status).
    code = "from train_trivd.main import main; raise SystemExit(main())"
    result = subprocess.run(
        [sys.executable, "-c", code, "--config=embedded.py:tiny", "--config.data.batch_size=0"],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "train-trivd: error: --config.data.batch_size: expected an integer >= 1, got 0"
    )
    assert not os.listdir(tmp_path)  # no run folder, no data


def test_help_still_works(capsys):
    assert trivd_main.main(["--help"]) == 0
    assert "--config takes NAME, NAME.py or path/to/file.py" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        trivd_sample.main(["--help"])
    assert e.value.code == 0
