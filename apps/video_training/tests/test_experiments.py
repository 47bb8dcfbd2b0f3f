"""`video_training.experiments`: the experiment scripts' logging, metrics reading and tables."""

from __future__ import annotations

import json
import sys

import pytest
from video_training import experiments as ex


def test_run_logged_records_output_status_and_wall(tmp_path, capsys):
    log = str(tmp_path / "run.log")
    rc = ex.run_logged([sys.executable, "-c", "print('hello'); raise SystemExit(3)"], log, "demo")
    assert rc == 3 and "start demo" in capsys.readouterr().out
    text = ex.read_text(log)
    assert text.startswith("hello\n") and ex.logged_wall(text) is not None
    assert ex.read_text(str(tmp_path / "missing")) == "" and ex.logged_wall("") is None


def test_metrics_at_merges_the_rows_of_a_step(tmp_path):
    rows = [{"step": 5, "loss": 1.0}, {"step": 10, "loss": 0.5}, {"step": 10, "eval/x": 2.0}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert ex.metrics_at(str(tmp_path), 10) == {"step": 10, "loss": 0.5, "eval/x": 2.0}
    assert ex.metrics_at(str(tmp_path), 7) == {}
    assert ex.metrics_at(str(tmp_path / "none"), 10) == {}


def test_results_of_separate_invocations_merge(tmp_path):
    path = str(tmp_path / "results.json")
    ex.merge_results(path, [{"run": "b", "v": 1}, {"run": "a", "v": 2}])
    rows = ex.merge_results(path, [{"run": "b", "v": 3}, {"run": "c", "v": 4}])
    assert rows == [{"run": "a", "v": 2}, {"run": "b", "v": 3}, {"run": "c", "v": 4}]
    with open(path) as f:
        assert json.load(f) == rows
    plan = [("d", 5), ("e", 6)]
    rows = ex.run_plan(lambda run, v: {"run": run, "v": v}, plan, 2, path)
    assert [r["run"] for r in rows] == ["a", "b", "c", "d", "e"]


def test_arguments_and_table():
    assert ex.names_arg("x, y", ("x", "y", "z"), "--things") == ["x", "y"]
    with pytest.raises(
        SystemExit, match=r"--things: expected a comma-separated subset .* got 'x,w'"
    ):
        ex.names_arg("x,w", ("x", "y"), "--things")
    assert ex.seeds_arg("0,1") == [0, 1]
    for bad in ("", "a,1"):
        with pytest.raises(SystemExit, match="--seeds: expected comma-separated ints"):
            ex.seeds_arg(bad)
    assert ex.markdown_table(("a", "b"), [(1, "x")]) == "| a | b |\n|---|---|\n| 1 | x |"
