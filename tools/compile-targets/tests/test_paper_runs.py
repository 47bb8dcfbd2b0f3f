"""The paper-runs table script: row list and table rendering from result JSON files."""

import importlib.util
import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def paper_runs(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location(
        "paper_runs", os.path.join(HERE, "..", "paper_runs.py")
    )
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "paper_runs", module)  # dataclasses look it up
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "RESULTS", str(tmp_path))
    monkeypatch.setattr(module, "BEFORE", str(tmp_path / "before"))
    (tmp_path / "before").mkdir()
    return module


def _write(folder, row_id, **fields):
    with open(os.path.join(folder, f"{row_id}.json"), "w") as f:
        json.dump(fields, f)


def test_rows_are_unique_and_commands_compile_only(paper_runs):
    ids = [row.id for row in paper_runs.ROWS]
    assert len(ids) == len(set(ids))
    for row in paper_runs.ROWS:
        cmd = paper_runs.command_line(row)
        assert "--compile_only" in cmd and f"--topology={row.topology}" in cmd
    # Every Table 1 decomposition of the paper has a row.
    assert {f"table1_{k}" for k in paper_runs.TABLE1_PAPER_GB} <= set(ids)


def test_table_renders_fit_oom_missing_and_before(paper_runs, tmp_path):
    gib = 1024**3
    _write(
        tmp_path,
        "vt_base_v3_4x4",
        compiled=True,
        fits=True,
        devices=32,
        global_batch=64,
        per_device_batch=2.0,
        peak_bytes=3 * gib,
        hbm_bytes=16 * gib,
        state_bytes=gib // 2,
        temp_bytes=2 * gib,
        flops=7.2e13,
        compile_seconds=149.1,
    )
    _write(
        tmp_path,
        "vt_large_v3_8x8",
        compiled=False,
        fits=False,
        out_of_memory=True,
        peak_bytes=0,
        temp_bytes=0,
        hbm_bytes=16 * gib,
        state_bytes=8 * gib,
        error="RESOURCE_EXHAUSTED: the total memory required for HLO temporaries (16.61G) "
        "exceeds available HBM (15.48G).",
    )
    _write(tmp_path / "before", "table1_clip", compiled=True, peak_bytes=int(6.34 * gib))
    text = paper_runs.table()
    lines = {
        ln.split("|")[1].strip() + "@" + ln.split("|")[2].strip(): ln
        for ln in text.splitlines()
        if ln.startswith("| ")
    }
    assert "| fits |" in lines["base, f32@v3:4x4"] and "| 3.00 |" in lines["base, f32@v3:4x4"]
    assert "does not fit**: temporaries 16.61G > 15.48G" in lines["large, f32@v3:8x8"]
    assert "not run yet" in lines["large, bf16@v3:8x8"]
    clip = next(ln for ln in text.splitlines() if ln.startswith("| Clip |"))
    assert "not re-measured yet" in clip and "| 6.34 |" in clip and "| 3.49 |" in clip
