"""Streaming FVD statistics equal batch statistics; save/load round trip."""

import jax
import numpy as np
import pytest
from fvd import FVDStatistics, frechet_distance


def _embeddings(key, n, d=400):
    k1, k2 = jax.random.split(key)
    return np.asarray(
        jax.random.normal(k1, (n, d)) * 3.0 + jax.random.normal(k2, (d,)) * 10.0, np.float32
    )


def test_streaming_equals_batch():
    x = _embeddings(jax.random.key(0), 97)
    stats = FVDStatistics()
    for lo, hi in [(0, 1), (1, 31), (31, 32), (32, 32), (32, 97)]:  # uneven chunks, one empty
        stats.update_embeddings(x[lo:hi])
    x64 = x.astype(np.float64)
    assert stats.n == 97
    np.testing.assert_allclose(stats.mean, x64.mean(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stats.cov, np.cov(x64, rowvar=False), rtol=1e-10, atol=1e-10)


def test_save_load_round_trip(tmp_path):
    k1, k2 = jax.random.split(jax.random.key(1))
    x, y = _embeddings(k1, 50), _embeddings(k2, 30)
    stats = FVDStatistics().update_embeddings(x)
    stats.provenance = {"num_frames": 16}
    stats.save(tmp_path / "s.npz")
    loaded = FVDStatistics.load(tmp_path / "s.npz")
    assert loaded.n == 50
    np.testing.assert_array_equal(loaded.mean, stats.mean)
    np.testing.assert_allclose(loaded.cov, stats.cov, rtol=1e-14)
    # Loaded statistics keep accumulating like the original.
    loaded.update_embeddings(y)
    both = np.concatenate([x, y]).astype(np.float64)
    np.testing.assert_allclose(loaded.cov, np.cov(both, rowvar=False), rtol=1e-10, atol=1e-10)
    d = frechet_distance(stats.mean, stats.cov, loaded.mean, loaded.cov)
    assert d > 0


def test_provenance_and_features_round_trip_and_old_files_warn(tmp_path):
    x = _embeddings(jax.random.key(3), 20)
    stats = FVDStatistics()
    stats.features = x[:0]  # keep the features: they grow with every update
    stats.update_embeddings(x[:12]).update_embeddings(x[12:])
    np.testing.assert_array_equal(stats.features, x)
    stats.provenance = {"num_frames": 16, "frame_sizes": ["64x64"], "seed": 3}
    stats.save(tmp_path / "new.npz")
    loaded = FVDStatistics.load(tmp_path / "new.npz")
    assert loaded.provenance == stats.provenance
    np.testing.assert_array_equal(loaded.features, x)
    old = FVDStatistics().update_embeddings(x)  # as fvd 0.1 wrote them: n, mean, cov only
    old.save(tmp_path / "old.npz")
    with pytest.warns(UserWarning, match="old.npz: statistics without provenance"):
        unknown = FVDStatistics.load(tmp_path / "old.npz")
    assert unknown.provenance is None and unknown.features is None
    np.testing.assert_allclose(unknown.cov, stats.cov, rtol=1e-9, atol=1e-9)


def test_bad_inputs(tmp_path):
    stats = FVDStatistics()
    with pytest.raises(ValueError, match=r"embeddings must be \[B, 400\]"):
        stats.update_embeddings(np.ones((3, 7)))
    with pytest.raises(ValueError, match="NaN"):
        stats.update_embeddings(np.full((2, 400), np.nan))
    stats.update_embeddings(np.ones((1, 400)))
    with pytest.raises(ValueError, match="at least 2 videos"):
        stats.cov  # noqa: B018
    np.savez(tmp_path / "x.npz", videos=np.zeros(3))
    with pytest.raises(ValueError, match="not FVD statistics"):
        FVDStatistics.load(tmp_path / "x.npz")


def test_float_videos_must_state_their_range_and_sets_their_length():
    import fvd

    unit = np.random.default_rng(0).uniform(0, 1, (2, 9, 8, 8, 3)).astype(np.float32)
    with pytest.raises(ValueError, match=r"float with values in \[0.*pass value_range=\(0, 1\)"):
        fvd.embed(unit)  # the default range is 0..255: [0, 1] floats would read as black
    with pytest.raises(ValueError, match="outside the declared value_range"):
        fvd.embed(2 * unit - 1)
    real = np.zeros((2, 9, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="same number of frames.*got 9 and 10"):
        fvd.fvd(real, np.zeros((2, 10, 8, 8, 3), np.uint8))
