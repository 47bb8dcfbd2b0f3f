"""Fréchet distance and Inception Score against direct scipy/numpy computations."""

import jax
import numpy as np
import pytest
import scipy.linalg
from fvd import frechet_distance, inception_score


def _gaussian_samples(key, n, d):
    k1, k2, k3 = jax.random.split(key, 3)
    mix = np.asarray(jax.random.normal(k1, (d, d)), np.float64) / np.sqrt(d)
    shift = np.asarray(jax.random.normal(k2, (d,)), np.float64)
    z = np.asarray(jax.random.normal(k3, (n, d)), np.float64)
    return z @ mix + shift  # [n, d], correlated, non-zero mean


def _fit(x):
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _direct(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)


@pytest.mark.parametrize("n,d", [(500, 8), (300, 64)])
def test_matches_direct_scipy(n, d):
    k1, k2 = jax.random.split(jax.random.key(n + d))
    a, b = _fit(_gaussian_samples(k1, n, d)), _fit(_gaussian_samples(k2, n, d))
    got = frechet_distance(*a, *b)
    assert got > 0.1
    np.testing.assert_allclose(got, _direct(*a, *b), rtol=1e-6)
    # Independent route: Tr((S1 S2)^(1/2)) is the sum of square roots of S1 S2's eigenvalues.
    eig = np.linalg.eigvals(a[1] @ b[1])
    alt = (
        np.sum((a[0] - b[0]) ** 2) + np.trace(a[1]) + np.trace(b[1]) - 2 * np.sum(np.sqrt(eig)).real
    )
    np.testing.assert_allclose(got, alt, rtol=1e-6)


def test_diagonal_closed_form():
    k1, k2, k3 = jax.random.split(jax.random.key(3), 3)
    v1 = np.asarray(jax.random.uniform(k1, (10,), minval=0.1, maxval=4.0), np.float64)
    v2 = np.asarray(jax.random.uniform(k2, (10,), minval=0.1, maxval=4.0), np.float64)
    mu = np.asarray(jax.random.normal(k3, (10,)), np.float64)
    want = np.sum(mu**2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    np.testing.assert_allclose(
        frechet_distance(mu, np.diag(v1), 0 * mu, np.diag(v2)), want, rtol=1e-9
    )


def test_zero_for_identical_and_symmetric():
    k1, k2 = jax.random.split(jax.random.key(0))
    a, b = _fit(_gaussian_samples(k1, 200, 32)), _fit(_gaussian_samples(k2, 200, 32))
    assert abs(frechet_distance(*a, *a)) < 1e-8 * np.trace(a[1])
    np.testing.assert_allclose(frechet_distance(*a, *b), frechet_distance(*b, *a), rtol=1e-8)


def test_singular_covariances_fewer_samples_than_dims():
    # FVD with N < 400 videos: rank-deficient covariances must still give a finite distance.
    k1, k2 = jax.random.split(jax.random.key(1))
    a, b = _fit(_gaussian_samples(k1, 6, 40)), _fit(_gaussian_samples(k2, 6, 40))
    got = frechet_distance(*a, *b)
    assert np.isfinite(got) and got > 0
    assert abs(frechet_distance(*a, *a)) < 1e-4 * np.trace(a[1])


def test_bad_shapes():
    mu, sigma = np.zeros(3), np.eye(3)
    with pytest.raises(ValueError, match="sigma1 must be"):
        frechet_distance(mu, np.eye(4), mu, sigma)
    with pytest.raises(ValueError, match="mu2 must be a vector"):
        frechet_distance(mu, sigma, np.eye(3), sigma)
    with pytest.raises(ValueError, match="same dimension"):
        frechet_distance(mu, sigma, np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(mu, sigma, mu + np.nan, sigma)


def test_inception_score_direct():
    logits = np.asarray(jax.random.normal(jax.random.key(4), (40, 7)), np.float64) * 3
    mean, std = inception_score(logits, splits=4)
    scores = []
    for part in np.split(logits, 4):
        p = np.exp(part) / np.exp(part).sum(1, keepdims=True)
        py = p.mean(0)
        scores.append(np.exp(np.mean(np.sum(p * (np.log(p) - np.log(py)), 1))))
    np.testing.assert_allclose([mean, std], [np.mean(scores), np.std(scores)], rtol=1e-9)


def test_inception_score_extremes():
    # Confident and evenly spread over 5 classes: IS = 5; identical predictions: IS = 1.
    confident = 50.0 * np.eye(5)[np.arange(50) % 5]
    np.testing.assert_allclose(inception_score(confident, splits=10)[0], 5.0, rtol=1e-6)
    same = np.tile(np.asarray(jax.random.normal(jax.random.key(5), (1, 5))), (20, 1))
    np.testing.assert_allclose(inception_score(same, splits=2), (1.0, 0.0), atol=1e-9)
    with pytest.raises(ValueError, match="at least splits=10"):
        inception_score(confident[:5])
    with pytest.raises(ValueError, match="must be \\[N, C\\]"):
        inception_score(confident[0])


def test_round_off_below_zero_is_clamped(monkeypatch):
    # Identical rank-deficient fits can come out at about -1e-4 (the square root's round-off):
    # an FVD is never reported below 0.
    from fvd import frechet

    mu, sigma = np.zeros(3), np.eye(3)
    monkeypatch.setattr(frechet, "_trace_sqrt_product", lambda s1, s2: 3.0 + 1e-4)
    assert frechet_distance(mu, sigma, mu, sigma) == 0.0
    monkeypatch.setattr(frechet, "_trace_sqrt_product", lambda s1, s2: 2.5)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(1.0)


def _kernel_distance_loops(a, b):
    """Unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3, written out pair by pair."""
    d = a.shape[1]
    k = lambda x, y: (float(np.dot(x, y)) / d + 1.0) ** 3
    n, m = len(a), len(b)
    aa = sum(k(a[i], a[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    bb = sum(k(b[i], b[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    ab = sum(k(a[i], b[j]) for i in range(n) for j in range(m)) / (n * m)
    return aa + bb - 2 * ab


def test_kernel_distance_is_the_unbiased_polynomial_mmd():
    from fvd import kernel_distance

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(12, 5)), rng.normal(size=(9, 5))
    np.testing.assert_allclose(kernel_distance(a, b), _kernel_distance_loops(a, b), rtol=1e-10)
    # Two samples of one distribution: ~0; a shifted set: clearly above, growing with the shift.
    big = rng.normal(size=(400, 8))
    same = kernel_distance(big[:200], big[200:])
    shifted = [kernel_distance(big[:200], big[200:] + s) for s in (0.5, 1.0)]
    assert abs(same) < 0.05 * shifted[0] and 0 < shifted[0] < shifted[1]
    with pytest.raises(ValueError, match="same dimension"):
        kernel_distance(a, b[:, :4])
    with pytest.raises(ValueError, match=r"a must be \[N >= 2, D\]"):
        kernel_distance(a[:1], b)
    with pytest.raises(ValueError, match="degree: expected an int >= 1"):
        kernel_distance(a, b, degree=0)


def test_kvd_checks_its_inputs_before_embedding():
    import fvd

    real = np.zeros((2, 9, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="same number of frames"):
        fvd.kvd(real, np.zeros((2, 10, 8, 8, 3), np.uint8))
    with pytest.raises(TypeError, match="real_videos: expected videos"):
        fvd.kvd(fvd.FVDStatistics(), real)


def test_kvd_is_the_kernel_distance_of_the_two_sets_embeddings(monkeypatch):
    import fvd
    from fvd import distance

    seen = []

    def fake_embed_async(videos, *, name, **kwargs):  # a stand-in network: colour means
        seen.append((name, kwargs))
        return lambda: videos.astype(np.float64).mean(axis=(2, 3)).reshape(len(videos), -1)

    monkeypatch.setattr(distance, "embed_async", fake_embed_async)
    rng = np.random.default_rng(1)
    real = rng.integers(0, 256, (6, 9, 4, 4, 3), dtype=np.uint8)
    fake = rng.integers(0, 200, (5, 9, 4, 4, 3), dtype=np.uint8)
    got = fvd.kvd(real, fake, batch_size=3)
    want = fvd.kernel_distance(
        real.astype(np.float64).mean(axis=(2, 3)).reshape(6, -1),
        fake.astype(np.float64).mean(axis=(2, 3)).reshape(5, -1),
    )
    assert got == pytest.approx(want)
    assert seen == [("real_videos", {"batch_size": 3}), ("fake_videos", {"batch_size": 3})]
