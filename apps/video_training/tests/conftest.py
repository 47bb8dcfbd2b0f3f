"""Shared fixtures: a small prepared dataset of random videos and a subprocess runner."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, TESTS_DIR)

from standin import RandomVideos
from video_training.data import prepare


@pytest.fixture(scope="session")
def random_data_dir(tmp_path_factory):
    """A prepared dataset: 32 train / 8 test clips of `[8, 16, 16, 3]` uint8 in 2 shards."""
    out = str(tmp_path_factory.mktemp("random_videos"))
    prepare(RandomVideos(), out, num_shards=2, progress=False)
    return out


def run_python(args, *, env_extra=None, timeout=240, check=True):
    """Runs `python args...` in a fresh interpreter (own XLA flags / process), returns the result."""
    env = dict(os.environ)
    env.setdefault("JAX_PLATFORMS", "cpu")
    env["PYTHONPATH"] = TESTS_DIR + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_extra or {})
    proc = subprocess.run(  # noqa: PLW1510 (return code checked below)
        [sys.executable, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=TESTS_DIR,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"subprocess failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )
    return proc
