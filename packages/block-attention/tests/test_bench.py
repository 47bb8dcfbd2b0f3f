"""The benchmark script imports and parses its arguments on a CPU."""

from __future__ import annotations

import importlib.util
import pathlib

BENCH = pathlib.Path(__file__).parents[1] / "benchmarks" / "bench_ops.py"


def _load():
    spec = importlib.util.spec_from_file_location("bench_ops", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_parse_args_defaults_are_the_vt_base_layer():
    args = _load().parse_args([])
    assert (args.slices, tuple(args.video), args.heads, args.head_dim) == (64, (4, 32, 32), 8, 128)
    assert args.blocks == [(4, 8, 4), (1, 32, 4)]


def test_dry_run_shrinks_the_problem():
    args = _load().parse_args(["--dry-run", "--blocks", "2,2,2"])
    assert args.dry_run and args.slices == 2 and args.blocks == [(2, 4, 4), (1, 8, 4)]
