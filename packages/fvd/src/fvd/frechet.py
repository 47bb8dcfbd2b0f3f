"""Fréchet distance between Gaussians and the Inception Score, in float64."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.linalg
import scipy.special

# Added to both covariance diagonals only as a fallback, when sqrtm(S1 S2) is not finite or
# leaves an imaginary part above `IMAG_TOLERANCE` (with fewer videos than dimensions, N <= 400
# for FVD, both covariances are singular and the square root can be ill-conditioned); a warning
# says when. Cost of the shift: +2 D eps in the trace terms and, along a direction where one
# covariance is ~0 and the other has variance v, about -2 sqrt(eps v) in the cross term (0.02
# for v = 100), so the distance moves by at most ~sqrt(eps v) per such direction. pytorch-fid
# uses the same recipe and value.
COVARIANCE_EPS = 1e-6
# Largest imaginary part (relative to the trace) of Tr((S1 S2)^(1/2)) dropped as round-off.
IMAG_TOLERANCE = 1e-3


def _as_stats(mu: Any, sigma: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(mu, np.float64)
    sigma = np.asarray(sigma, np.float64)
    if mu.ndim != 1:
        raise ValueError(f"mu{name} must be a vector [D], got shape {mu.shape}")
    if sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(
            f"sigma{name} must be [D, D] = {(mu.shape[0],) * 2} to match mu{name}, got {sigma.shape}"
        )
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
        raise ValueError(f"mu{name}/sigma{name} contain NaN or Inf")
    return mu, sigma


def _trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> complex:
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    return np.trace(covmean) if np.all(np.isfinite(covmean)) else complex("nan")


def frechet_distance(
    mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, *, eps: float = COVARIANCE_EPS
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (Unterthiner et al. 2018).

    `|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`, in float64 with `scipy.linalg.sqrtm`.
    A negligible imaginary residue of the square root is dropped; if the square root is not
    finite or its residue exceeds `IMAG_TOLERANCE`, `eps * I` is added to both covariances.

    Args:
      mu1, mu2: `[D]` means.
      sigma1, sigma2: `[D, D]` covariances.
      eps: diagonal shift used only for near-singular covariances.

    Returns:
      The distance as a Python float, clamped at 0: the exact value is >= 0, but with fewer
      samples than dimensions (a few hundred videos, 400 logits) the covariances are rank
      deficient and the square root's round-off can make identical sets score about -1e-4.
    """
    mu1, sigma1 = _as_stats(mu1, sigma1, "1")
    mu2, sigma2 = _as_stats(mu2, sigma2, "2")
    if mu1.shape != mu2.shape:
        raise ValueError(
            f"mu1 and mu2 must have the same dimension, got {mu1.shape} and {mu2.shape}"
        )
    diff = mu1 - mu2
    tr_covmean = _trace_sqrt_product(sigma1, sigma2)
    scale = max(1.0, abs(np.trace(sigma1)) + abs(np.trace(sigma2)))
    if not np.isfinite(tr_covmean) or abs(np.imag(tr_covmean)) > IMAG_TOLERANCE * scale:
        warnings.warn(
            f"sqrtm(sigma1 @ sigma2) is ill-conditioned (trace {tr_covmean}); adding "
            f"eps={eps} to both covariance diagonals",
            RuntimeWarning,
            stacklevel=2,
        )
        offset = eps * np.eye(sigma1.shape[0])
        tr_covmean = _trace_sqrt_product(sigma1 + offset, sigma2 + offset)
        if not np.isfinite(tr_covmean) or abs(np.imag(tr_covmean)) > IMAG_TOLERANCE * scale:
            raise ValueError(
                f"sqrtm(sigma1 @ sigma2) did not converge even with eps={eps} (trace "
                f"{tr_covmean}); check the covariances"
            )
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.real(tr_covmean)
    return max(float(value), 0.0)


def inception_score(logits: Any, *, splits: int = 10) -> tuple[float, float]:
    """Inception Score `exp(E_x KL(p(y|x) || p(y)))` over `splits` disjoint subsets.

    Args:
      logits: `[N, C]` classifier logits (for videos: `fvd.embed`'s I3D logits), N >= splits.
      splits: number of disjoint subsets; p(y) is the mean prediction within each subset.

    Returns:
      `(mean, std)` of the per-subset scores (population std, as in the original IS code).
    """
    logits = np.asarray(logits, np.float64)
    if logits.ndim != 2:
        raise ValueError(f"logits must be [N, C], got shape {logits.shape}")
    if not isinstance(splits, int) or splits < 1:
        raise ValueError(f"splits must be a positive int, got {splits!r}")
    if logits.shape[0] < splits:
        raise ValueError(f"logits must have at least splits={splits} rows, got N={logits.shape[0]}")
    if not np.all(np.isfinite(logits)):
        raise ValueError("logits contain NaN or Inf")
    log_p = logits - scipy.special.logsumexp(logits, axis=1, keepdims=True)  # log p(y|x)
    scores = []
    for part in np.array_split(log_p, splits):
        log_py = scipy.special.logsumexp(part, axis=0) - np.log(part.shape[0])  # log p(y)
        kl = np.sum(np.exp(part) * (part - log_py), axis=1)  # KL(p(y|x) || p(y))
        scores.append(np.exp(np.mean(kl)))
    return float(np.mean(scores)), float(np.std(scores))


def kernel_distance(a: Any, b: Any, *, degree: int = 3) -> float:
    """Kernel distance (KVD/KID): the unbiased MMD^2 of two embedding sets.

    Polynomial kernel `k(x, y) = (x . y / D + 1) ** degree` (Binkowski et al. 2018, the KID
    kernel; the VideoGPT family reports it on I3D features as KVD). Unbiased: the diagonals of
    the within-set kernel matrices are left out, so two samples of one distribution score ~0
    (either sign) and the value grows as the sets separate.

    Args:
      a: `[N, D]` embeddings (e.g. `fvd.embed` logits), N >= 2.
      b: `[M, D]` embeddings, M >= 2.
      degree: polynomial degree (3).

    Returns:
      MMD^2 as a Python float.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    for name, x in (("a", a), ("b", b)):
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError(f"{name} must be [N >= 2, D] embeddings, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name} contains NaN or Inf")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same dimension, got {a.shape} and {b.shape}")
    if isinstance(degree, bool) or not isinstance(degree, int) or degree < 1:
        raise ValueError(f"degree: expected an int >= 1, got {degree!r}")
    d = a.shape[1]
    kernel = lambda x, y: (x @ y.T / d + 1.0) ** degree
    n, m = a.shape[0], b.shape[0]
    kaa, kbb = kernel(a, a), kernel(b, b)
    within_a = (kaa.sum() - np.trace(kaa)) / (n * (n - 1))
    within_b = (kbb.sum() - np.trace(kbb)) / (m * (m - 1))
    return float(within_a + within_b - 2.0 * kernel(a, b).mean())
