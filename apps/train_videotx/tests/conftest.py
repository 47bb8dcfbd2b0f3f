"""A tiny `train-videotx` run on the embedded data, shared by the end-to-end and sampling tests."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for vtx_test_utils
from train_videotx import main as vtx_main
from vtx_test_utils import tiny_args


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """Trains 2 steps (FVD on 2 clips enabled), then resumes to 3; returns paths and summaries."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache
    from train_videotx.train import train

    previous_cache_dir = jax.config.jax_compilation_cache_dir
    root = tmp_path_factory.mktemp("videotx")
    data_dir, workdir = str(root / "data"), str(root / "run")
    cache = f"--config.compilation_cache_dir={root / 'jax_cache'}"  # the resumed run reuses it
    fvd_flags = (
        "--config.fvd.enabled=true",  # off in the tiny config: I3D on 2 clips, 2 windows
        "--config.fvd.window=9",
        "--config.fvd.unroll_stride=2",
        "--config.fvd.every=2",
        "--config.fvd.num_trials=2",
    )
    config, _ = vtx_main.parse_args(tiny_args(data_dir, workdir, 2, cache, *fvd_flags))
    first = train(config)
    config, _ = vtx_main.parse_args(tiny_args(data_dir, workdir, 3, cache))
    resumed = train(config)
    yield {"data_dir": data_dir, "workdir": workdir, "first": first, "resumed": resumed}
    # The runs pointed JAX's persistent compilation cache at this session's tmp dir: undo it
    # for whatever other tests run in this process.
    jax.config.update("jax_compilation_cache_dir", previous_cache_dir)
    compilation_cache.reset_cache()
