"""`--compile_only`: the tiny config's sharded train step and sampler compiled for a 4-chip TPU
v5e and an H100 on this CPU, per-device memory reported, and a batch that cannot fit refused."""

from __future__ import annotations

import json

import pytest
from train_videotx import main as vtx_main
from train_videotx import sample as vtx_sample

pytest.importorskip("compile_targets")
from compile_targets.testing import require_target

pytestmark = pytest.mark.aot


@pytest.mark.parametrize("topology", ["v5e:2x2", "h100"])
def test_train_step_compiles_and_fits(topology, tmp_path, capsys):
    target = require_target(topology)
    out = tmp_path / "report.json"
    status = vtx_main.main(["--compile_only", f"--topology={topology}", f"--json={out}"])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert f"on {topology} ({target.num_devices} x {target.device_kind}" in printed
    for line in ("parameters + optimizer state", "temporaries", "peak", "device HBM", "FITS"):
        assert line in printed
    report = json.loads(out.read_text())
    assert report["compiled"] and report["fits"]
    assert report["devices"] == target.num_devices and report["global_batch"] == 8
    assert report["per_device_batch"] == 8 / target.num_devices
    assert 0 < report["peak_bytes"] < report["hbm_bytes"] == target.hbm_bytes
    assert report["state_bytes"] > 0 and report["flops"] > 0


def test_sampler_compiles(tmp_path, capsys):
    require_target("v5e:2x2")
    status = vtx_sample.main(
        ["--compile_only", "--topology=v5e:2x2", "--num_samples=4", "--config=default:tiny"]
    )
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "sample-videotx default_tiny (4 videos) on v5e:2x2" in printed and "FITS" in printed


def test_a_batch_that_cannot_fit_exits_1_naming_the_largest_arrays(tmp_path, capsys):
    """16384 windows per chip need ~37 GB of temporaries on a 16 GB v5e: the TPU compiler's
    memory check refuses, and the report names the arrays that dominate."""
    require_target("v5e:2x2")
    out = tmp_path / "report.json"
    status = vtx_main.main(
        [
            "--compile_only",
            "--topology=v5e:2x2",
            "--config.batch_size=65536",
            f"--json={out}",
        ]
    )
    printed = capsys.readouterr().out
    assert status == 1, printed
    assert "DOES NOT FIT" in printed and "exceeds available HBM" in printed
    assert "largest arrays" in printed
    report = json.loads(out.read_text())
    assert not report["fits"] and report["out_of_memory"]
    assert report["largest_arrays"][0]["bytes"] > 16e9
    assert report["largest_arrays"][0]["shape"].startswith("f32[65536,")
