"""`train-trivd --compile_only`: the tiny config's sharded GAN step (two D updates, one G update)
compiled for a 4-chip TPU v5e and an H100 on this CPU, with the per-device report.

The tiny config is trimmed further here (one sub-discriminator, 1 -> 2 frames): the TPU and GPU
compilers take minutes for the full tiny step on 2 CPU cores; the path is the same.
"""

from __future__ import annotations

import json

import pytest
from train_trivd import main as trivd_main
from train_trivd import sample as trivd_sample

pytest.importorskip("compile_targets")
from compile_targets.testing import require_target

pytestmark = pytest.mark.aot

SMALL = [
    "--config=embedded:tiny",
    "--config.model.decomposition=downsampled",
    "--config.model.num_cond_frames=1",
    "--config.model.num_pred_frames=2",
    "--config.model.num_sampled_frames=1",
]


@pytest.mark.parametrize("topology", ["v5e:2x2", "h100"])
def test_train_step_compiles_and_fits(topology, tmp_path, capsys):
    target = require_target(topology)
    out = tmp_path / "report.json"
    status = trivd_main.main(
        [
            *SMALL,
            "--config.data.batch_size=4",
            "--compile_only",
            f"--topology={topology}",
            f"--json={out}",
        ]
    )
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert (
        "train-trivd embedded_tiny (tsru_p, downsampled, ch 4, float32 activations)" in printed
        and "FITS" in printed
    )
    report = json.loads(out.read_text())
    assert report["compiled"] and report["fits"] and report["devices"] == target.num_devices
    assert report["per_device_batch"] == 4 / target.num_devices
    assert 0 < report["state_bytes"] <= report["argument_bytes"] < report["peak_bytes"]


def test_sampler_compiles(capsys):
    require_target("v5e:2x2")
    status = trivd_sample.main(
        [*SMALL, "--num-clips=2", "--num-samples=2", "--compile_only", "--topology=v5e:2x2"]
    )
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "sample-trivd embedded_tiny (4 clips) on v5e:2x2" in printed and "FITS" in printed


def test_compile_only_needs_no_data_but_a_topology(capsys):
    """Paper configs read prepared data when training; compiling them needs none. A missing
    --topology is a one-line configuration error (exit 2) before anything is built."""
    status = trivd_main.main(["--config=kinetics600", "--compile_only"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.strip().count("\n") == 0 and "--topology: expected a TPU topology" in err
