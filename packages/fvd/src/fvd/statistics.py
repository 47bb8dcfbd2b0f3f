"""Streaming mean and covariance of I3D embeddings (FVD's Gaussian fit)."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from fvd.embedding import embed_async
from fvd.i3d import NUM_CLASSES


class FVDStatistics:
    """Streaming accumulator of embedding mean and (unbiased, N - 1) covariance in float64.

    `update(videos)` dispatches the I3D embedding and returns at once; the logits of a batch
    are folded in at the next `update` (or when a statistic is read), so the device embeds
    while the caller generates the next batch. Value errors (NaN, out of range) of a batch are
    therefore raised at that later point.

    Example:
      stats = FVDStatistics()
      for batch in generator:  # [B, T, H, W, 3] in 0..255
        stats.update(batch)
      stats.save("fake.npz"); d = fvd.fvd(FVDStatistics.load("real.npz"), stats)
    """

    def __init__(self, dim: int = NUM_CLASSES, **embed_kwargs: Any):
        """Args: dim: embedding width; embed_kwargs: forwarded to `fvd.embed` by `update`."""
        self.dim = dim
        self._embed_kwargs = embed_kwargs
        self._n = 0
        self._mean = np.zeros(dim, np.float64)
        self._m2 = np.zeros((dim, dim), np.float64)  # sum of centred outer products
        self._pending: list[Callable[[], np.ndarray]] = []
        # What the statistics were made from (`fvd.provenance.make`; None: unknown), and the
        # embeddings themselves when kept (KVD needs them; the Gaussian fit does not).
        self.provenance: dict[str, Any] | None = None
        self.features: np.ndarray | None = None

    def update(self, videos: Any, *, name: str = "videos") -> FVDStatistics:
        """Adds a batch of videos `[B, T, H, W, 3]` (see `fvd.embed`); returns self.

        `name` is the argument name used in error messages.
        """
        self._flush()
        self._pending.append(embed_async(videos, name=name, **self._embed_kwargs))
        return self

    def update_embeddings(self, embeddings: Any) -> FVDStatistics:
        """Adds precomputed embeddings `[B, dim]` (Chan et al. pairwise update); returns self."""
        x = np.asarray(embeddings, np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"embeddings must be [B, {self.dim}], got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("embeddings contain NaN or Inf")
        if x.shape[0] == 0:
            return self
        if self.features is not None:  # kept features stay the embeddings of the n videos
            self.features = np.concatenate([self.features, x.astype(np.float32)])
        n_b, mean_b = x.shape[0], x.mean(axis=0)
        centred = x - mean_b
        m2_b = centred.T @ centred
        n = self._n + n_b
        delta = mean_b - self._mean
        self._m2 += m2_b + np.outer(delta, delta) * (self._n * n_b / n)
        self._mean += delta * (n_b / n)
        self._n = n
        return self

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        for finish in pending:
            self.update_embeddings(finish())

    @property
    def n(self) -> int:
        """Number of videos accumulated."""
        self._flush()
        return self._n

    @property
    def mean(self) -> np.ndarray:
        """`[dim]` float64 mean."""
        self._flush()
        return self._mean.copy()

    @property
    def cov(self) -> np.ndarray:
        """`[dim, dim]` float64 covariance with the N - 1 normalisation (as TF-GAN's FVD)."""
        self._flush()
        if self._n < 2:
            raise ValueError(f"the covariance needs at least 2 videos, got {self._n}")
        return self._m2 / (self._n - 1)

    def save(self, path: str | os.PathLike) -> None:
        """Writes `n`, `mean`, `cov` (float64), the `provenance` (JSON) when known and the
        `features` when kept, to an `.npz` file."""
        extra: dict[str, Any] = {}
        if self.provenance is not None:
            extra["provenance"] = np.asarray(json.dumps(self.provenance, sort_keys=True))
        if self.features is not None:
            extra["features"] = np.asarray(self.features, np.float32)
        np.savez(path, n=np.int64(self.n), mean=self.mean, cov=self.cov, **extra)

    @classmethod
    def load(cls, path: str | os.PathLike, **embed_kwargs: Any) -> FVDStatistics:
        """Reads statistics written by `save`; more videos can be added afterwards.

        `embed_kwargs` are used by later `update` calls, as in the constructor.
        """
        with np.load(path, allow_pickle=False) as data:
            missing = {"n", "mean", "cov"} - set(data.keys())
            if missing:
                raise ValueError(f"{path}: not FVD statistics, missing {sorted(missing)}")
            n, mean, cov = int(data["n"]), data["mean"], data["cov"]
            provenance = json.loads(str(data["provenance"])) if "provenance" in data else None
            features = data.get("features")
        if mean.ndim != 1 or cov.shape != (mean.shape[0],) * 2 or n < 2:
            raise ValueError(f"{path}: inconsistent statistics n={n}, {mean.shape}, {cov.shape}")
        if features is not None and features.shape != (n, mean.shape[0]):
            raise ValueError(f"{path}: features {features.shape} do not match n={n}, {mean.shape}")
        if provenance is None:
            warnings.warn(
                f"{path}: statistics without provenance (written by fvd < 0.2 or by hand): "
                "nothing says which clips, frames or resolution they come from",
                stacklevel=2,
            )
        stats = cls(dim=mean.shape[0], **embed_kwargs)
        stats._n, stats._mean, stats._m2 = n, mean.astype(np.float64), cov * (n - 1)
        stats.provenance, stats.features = provenance, features
        return stats
