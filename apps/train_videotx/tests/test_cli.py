"""`train-videotx` / `sample-videotx` command lines: every --config form, and configuration
errors that print one line, exit 2 and build nothing (no data, no model, no compile)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from train_videotx import data as vtx_data
from train_videotx import main as vtx_main
from train_videotx import model as vtx_model
from train_videotx import sample as vtx_sample
from train_videotx import train as vtx_train
from train_videotx.configs import CONFIG_DIR
from video_training import cli_testing, load_config_file
from video_training.cli_testing import assert_usage_error

NAMES = "bair, default, kinetics600, moving_mnist"


class Reached(Exception):
    """Raised by the patched `train` with the config it was given."""


@pytest.fixture
def nothing_built(monkeypatch):
    """Fails the test if data, a model or any XLA program is built."""
    with cli_testing.nothing_built(
        monkeypatch,
        [
            (vtx_train, "train"),
            (vtx_data, "ensure_prepared"),
            (vtx_data, "heldout_clips"),
            (vtx_model, "make_setup"),
            (vtx_model, "restore_params"),
        ],
    ):
        yield


def _forms(tmp_path, monkeypatch):
    """Every accepted spelling of `bair:tiny` (and a user's copy of the file)."""
    packaged = os.path.join(CONFIG_DIR, "bair.py")
    mine = tmp_path / "my.py"
    shutil.copy(packaged, mine)
    monkeypatch.chdir(tmp_path)
    return [
        "bair:tiny",
        "bair.py:tiny",
        f"{packaged}:tiny",  # absolute path
        f"{os.path.relpath(packaged)}:tiny",  # relative path
        "configs/bair.py:tiny",  # the README's path, from any folder
        "my.py:tiny",  # a file of the user's, by relative path
        f"{mine}:tiny",
    ]


def test_every_config_form_resolves_to_the_same_config(tmp_path, monkeypatch, nothing_built):
    expected = load_config_file(os.path.join(CONFIG_DIR, "bair.py") + ":tiny").to_dict()
    for form in _forms(tmp_path, monkeypatch):
        config, rest = vtx_main.parse_args([f"--config={form}"])
        assert rest == [] and config.to_dict() == expected, form
    config, _ = vtx_main.parse_args(["--config", "bair", "--config.batch_size", "3"])
    assert config.name == "bair_spatiotemporal" and config.batch_size == 3
    assert vtx_main.parse_args(["--config=bair.py"])[0].name == "bair_spatiotemporal"


def test_main_trains_every_form_with_the_same_config(tmp_path, monkeypatch, nothing_built):
    seen = []

    def fake_train(config):
        seen.append(config.to_dict())
        raise Reached

    monkeypatch.setattr(vtx_train, "train", fake_train)
    for form in _forms(tmp_path, monkeypatch):
        with pytest.raises(Reached):
            vtx_main.main([f"--config={form}", "--config.batch_size=2"])
    assert len(seen) == 7 and all(s == seen[0] for s in seen)
    assert seen[0]["name"] == "bair_tiny" and seen[0]["batch_size"] == 2


TRAIN_ERRORS = [
    (["--config=bairr"], ["--config", "'bairr'", NAMES]),
    (["--config=bairr.py:tiny"], ["'bairr.py:tiny'", NAMES]),
    (["--config=no/such/dir/my.py:tiny"], ["file not found", "'no/such/dir/my.py'", NAMES]),
    (["--config=bair.py:huge"], ["--config=bair.py:huge", "'tiny'", "got 'huge'"]),
    (["--config=default:huge"], ["--config=default:huge", "'tiny'", "got 'huge'"]),
    (["--config.batch_sise=3"], ["--config.batch_sise", "no field 'batch_sise'", "batch_size"]),
    (["--config.model.widthh=3"], ["--config.model.widthh", "video_shape"]),
    (["--config.batch_size=0"], ["--config.batch_size", "integer >= 1", "got 0"]),
    (["--config.batch_size=-8"], ["--config.batch_size", "integer >= 1", "got -8"]),
    (["--config.batch_size=many"], ["--config.batch_size", "integer", "got 'many'"]),
    (["--config.num_steps=0"], ["--config.num_steps", ">= 1", "got 0"]),
    (["--config.num_microbatches=0"], ["--config.num_microbatches", ">= 1", "got 0"]),
    (
        ["--config.num_microbatches=3"],
        ["--config.num_microbatches", "divisor of batch_size=8", "got 3"],
    ),
    (["--config.data.num_frames=0"], ["--config.data.num_frames", ">= 1", "got 0"]),
    (["--config.data.size=-16"], ["--config.data.size", ">= 1", "got -16"]),
    (["--config.eval.batch_size=0"], ["--config.eval.batch_size", ">= 1", "got 0"]),
    (["--config.fvd.batch_size=0"], ["--config.fvd.batch_size", ">= 1", "got 0"]),
    (["--config.optimizer.learning_rate=0"], ["learning_rate", "> 0", "got 0.0"]),
    (["--config.optimizer.learning_rate=-1e-3"], ["learning_rate", "> 0", "got -0.001"]),
    (["--config.optimizer.initial_scale=-1"], ["initial_scale", ">= 0", "got -1"]),
    (["--config.eval.num_prime_frames=-1"], ["--config.eval.num_prime_frames", ">= 0", "got -1"]),
    (["--config.fvd.num_prime_frames=0"], ["--config.fvd.num_prime_frames", ">= 1", "got 0"]),
    (
        ["--config.sample.num_prime_frames=16"],
        ["--config.sample.num_frames", "more than sample.num_prime_frames=16"],
    ),
    (["--config.model.variant=huge"], ["--config.model.variant", "'tiny'", "got 'huge'"]),
    (["--config.model.video_shape=(8, 0, 16)"], ["video_shape", "positive", "(8, 0, 16)"]),
    (["--config.model.hidden_size=40"], ["--config.model.hidden_size", "multiple of 16", "40"]),
    (["--config.model.num_layers=0"], ["--config.model.num_layers", ">= 1", "got 0"]),
    (["--config.sample.num_frames=99"], ["--config.sample.num_frames", "16", "got 99"]),
    (["--bogus=1"], ["unrecognized arguments: --bogus=1", "--config=NAME"]),
    (["--config"], ["--config", "expected a value"]),
]


@pytest.mark.parametrize(("argv", "fragments"), TRAIN_ERRORS, ids=lambda x: str(x)[:40])
def test_train_configuration_errors_exit_2(argv, fragments, capsys, nothing_built):
    assert_usage_error(vtx_main.main, argv, capsys, *fragments, prog="train-videotx")


@pytest.fixture
def run_folder(tmp_path):
    """A run folder as `train-videotx` leaves it (config.json, a checkpoint step), untrained."""
    workdir = tmp_path / "run"
    vtx_model.save_config(load_config_file(f"{CONFIG_DIR}/default.py:tiny"), str(workdir))
    os.makedirs(workdir / "checkpoints" / "3")
    (tmp_path / "empty").mkdir()
    (tmp_path / "corrupt.mp4").write_bytes(os.urandom(4096))
    return tmp_path


SAMPLE_ERRORS = [
    ([], ["required: --workdir"]),
    (["--workdir={tmp}/missing"], ["--workdir", "train-videotx run folder", "missing'"]),
    (["--workdir={tmp}/empty"], ["--workdir", "config.json", "empty'"]),
    (["--workdir={tmp}/run", "--step=7"], ["--step=7", "[3]"]),
    (["--workdir={tmp}/run", "--step=x"], ["--step", "invalid int value: 'x'"]),
    (["--workdir={tmp}/run", "--num_samples=0"], ["--num_samples", ">= 1", "got 0"]),
    (["--workdir={tmp}/run", "--video={tmp}/nope.mp4"], ["--video", "decodes", "nope.mp4'"]),
    (["--workdir={tmp}/run", "--video={tmp}/corrupt.mp4"], ["--video", "decodes", "corrupt.mp4'"]),
    (["--workdir={tmp}/run", "--num_frames=2"], ["--num_frames=2", "num_prime_frames=2"]),
    (["--workdir={tmp}/run", "--formats=png"], ["--formats", "gif, mp4", "'png'"]),
]


@pytest.mark.parametrize(("argv", "fragments"), SAMPLE_ERRORS, ids=lambda x: str(x)[:40])
def test_sample_configuration_errors_exit_2(argv, fragments, run_folder, capsys, nothing_built):
    argv = [a.format(tmp=run_folder) for a in argv]
    assert_usage_error(vtx_sample.main, argv, capsys, *fragments, prog="sample-videotx")


def test_console_script_prints_one_line_and_exits_2(tmp_path):
    # The real entry point, for what in-process tests cannot see (C++ logs, the exit status).
    code = "from train_videotx.main import main; raise SystemExit(main())"
    result = subprocess.run(
        [sys.executable, "-c", code, "--config=bair.py:tiny", "--config.batch_size=0"],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "train-videotx: error: --config.batch_size: expected an integer >= 1, got 0"
    )
    assert not os.listdir(tmp_path)  # no run folder, no data


def test_help_still_works(capsys):
    assert vtx_main.main(["--help"]) == 0
    assert "--config takes NAME, NAME.py or path/to/file.py" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        vtx_sample.main(["--help"])
    assert e.value.code == 0
