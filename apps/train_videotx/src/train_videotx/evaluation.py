"""Held-out bits/dim, sampled continuations written as grids, and FVD (first 16 frames and unrolled)."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import ar_video
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx
from video_training import GRID_MIN_SIZE, sample_grid, write_gif, write_mp4

from train_videotx import data as vtx_data
from train_videotx.model import Setup

log = logging.getLogger(__name__)


@functools.partial(jax.jit, static_argnums=(0, 4))
def _window_bits(graphdef, params, video, conditioning, num_prime_frames):
    """bits/dim of `video: [B, T, H, W, 3]` (with `conditioning: [B, T, C]` or None) under
    the model, primed frames excluded."""
    model = nnx.merge(graphdef, params)
    return ar_video.bits_per_dim(model.log_probs(video, conditioning), num_prime_frames)


def scoring_windows(
    num_frames: int, window: int, num_prime_frames: int, stride: int = 0
) -> list[tuple[int, int]]:
    """Model windows that score every frame after the primes once, sliding as the sampler does.

    The first window holds the last `min(P, T - 1)` primes; each next window moves `stride`
    frames (0: `T // 2`, at most `T - min(P, T - 1)`, as `continue_videos`) and scores only
    the frames no earlier window scored, with the frames before them in the window as context;
    the last window is moved back to end at the last frame (more context, fewer new frames).

    Args:
      num_frames: frames F of each clip scored through (frames P..F-1 are scored).
      window: the model's T.
      num_prime_frames: P >= 0 leading frames that are context only.
      stride: frames between windows (0: the sampler's default).

    Returns:
      `[(start, primed)]`: window `clip[start:start + T]` scores its frames `primed..T-1`.
    """
    if window < 1 or num_frames < window:
        raise ValueError(f"num_frames: expected >= the model window {window}, got {num_frames}")
    if not 0 <= num_prime_frames < num_frames:
        raise ValueError(
            f"num_prime_frames: expected an int in [0, {num_frames}), got {num_prime_frames}"
        )
    keep = min(num_prime_frames, window - 1)
    step = max(1, min(stride or window // 2, window - keep))
    start, done, out = num_prime_frames - keep, num_prime_frames, []
    while done < num_frames:
        start = min(start, num_frames - window)
        out.append((start, done - start))
        done = start + window
        start += step
    return out


def continue_videos(
    model: ar_video.VideoTransformer,
    key: jax.Array,
    prime: np.ndarray,
    *,
    num_frames: int,
    temperature: float = 0.9,
    window_stride: int = 0,
    conditioning: np.ndarray | None = None,
) -> np.ndarray:
    """Samples continuations of `prime` up to `num_frames`, sliding the model window over time.

    At most `T - 1` prime frames fit in the model window `T`; earlier ones are kept in the
    output but not seen by the model. Every window gets the conditioning rows of its own
    frames (for an action-conditioned model: the actions of the video being continued).

    Args:
      model: the `VideoTransformer`.
      key: PRNG key.
      prime: `[B, P, H, W, 3]` uint8, `P >= 0`.
      num_frames: frames of the returned videos, `> P`.
      temperature: sampling temperature (section 4.1: 0.9).
      window_stride: frames the window moves (0: `T // 2`), at most `T - P`.
      conditioning: `[B, num_frames, C]` per-frame features of the whole video (primes
        included), or None for an unconditioned model. When `num_frames < T` the rows after
        the last frame are zeros (those frames are sampled and dropped).

    Returns:
      `[B, num_frames, H, W, 3]` uint8 whose first `P` frames are `prime`.
    """
    prime = np.asarray(prime)
    if prime.ndim != 5 or prime.dtype != np.uint8:
        raise ValueError(f"prime must be [B, P, H, W, 3] uint8, got {prime.shape} {prime.dtype}")
    window = model.config.video_shape[0]
    num_prime = prime.shape[1]
    if num_frames <= num_prime:
        raise ValueError(f"num_frames must exceed the {num_prime} prime frames, got {num_frames}")
    keep = min(num_prime, window - 1)
    head, seen = prime[:, : num_prime - keep], prime[:, num_prime - keep :]
    if conditioning is not None:
        conditioning = np.asarray(conditioning, np.float32)
        if conditioning.ndim != 3 or conditioning.shape[:2] != (prime.shape[0], num_frames):
            raise ValueError(
                f"conditioning: expected [B={prime.shape[0]}, num_frames={num_frames}, C], got "
                f"shape {conditioning.shape}"
            )
    # ar_video.sample needs 1 <= stride <= T - P: a configured stride is clipped to that range
    # (e.g. Moving MNIST's 6 with the 4-frame spatial-subscaling window).
    stride = max(1, min(window_stride or window // 2, window - keep))
    length = max(num_frames - head.shape[1], window)
    cond = None
    if conditioning is not None:
        cond = conditioning[:, head.shape[1] :]
        pad = length - cond.shape[1]
        cond = jnp.asarray(np.pad(cond, ((0, 0), (0, pad), (0, 0))))
    out = ar_video.sample(
        model,
        key,
        jnp.asarray(seen),
        num_frames=length,
        temperature=temperature,
        window_stride=stride,
        conditioning=cond,
    )
    return np.concatenate([head, np.asarray(out)], axis=1)[:, :num_frames]


def frechet_from_embeddings(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance of the Gaussian fits of two `[N, D]` embedding sets (N >= 2)."""
    import fvd

    sa = fvd.FVDStatistics(dim=a.shape[1]).update_embeddings(a)
    sb = fvd.FVDStatistics(dim=b.shape[1]).update_embeddings(b)
    return fvd.frechet_distance(sa.mean, sa.cov, sb.mean, sb.cov)


def window_starts(num_frames: int, window: int, stride: int) -> list[int]:
    """Starts of every `window`-frame subsequence of `num_frames` frames, `stride` apart."""
    if not 1 <= window <= num_frames:
        raise ValueError(f"window must be in [1, {num_frames}], got {window}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    return list(range(0, num_frames - window + 1, stride))


def fvd_metrics(
    real: np.ndarray,
    fake: np.ndarray,
    *,
    window: int = 16,
    stride: int = 1,
    embed_fn: Callable[[np.ndarray], np.ndarray] | None = None,
    real_embeddings: dict[int, np.ndarray] | None = None,
) -> dict[str, float]:
    """FVD of the first `window` frames and the "unrolled" average over all windows (section 4.1).

    Args:
      real: `[N, F, H, W, 3]` uint8 held-out videos, `N >= 2`.
      fake: `[M, F, H, W, 3]` uint8 generated continuations, `M >= 2`.
      window: frames per FVD clip (16 in the paper).
      stride: frames between unrolled windows (1: every contiguous subsequence).
      embed_fn: `[N, window, H, W, 3] -> [N, D]` (default `fvd.embed`, the Kinetics I3D).
      real_embeddings: cache `start -> embeddings of real[:, start:start + window]`, filled here.

    Returns:
      `{"fvd": first window, "fvd_unrolled": mean over windows, "fvd_windows": count}`.
    """
    if embed_fn is None:
        import fvd

        embed_fn = fvd.embed
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"real {real.shape} and fake {fake.shape} must share [F, H, W, 3]")
    if real.shape[0] < 2 or fake.shape[0] < 2:
        raise ValueError(f"FVD needs >= 2 videos per set, got {real.shape[0]} and {fake.shape[0]}")
    cache = {} if real_embeddings is None else real_embeddings
    distances = []
    for start in window_starts(real.shape[1], window, stride):
        if start not in cache:
            cache[start] = np.asarray(embed_fn(real[:, start : start + window]))
        fake_emb = np.asarray(embed_fn(fake[:, start : start + window]))
        distances.append(frechet_from_embeddings(cache[start], fake_emb))
    return {
        "fvd": distances[0],
        "fvd_unrolled": float(np.mean(distances)),
        "fvd_windows": float(len(distances)),
    }


def fvd_over_trials(
    real: np.ndarray,
    sample_fn: Callable[[int], np.ndarray],
    num_trials: int,
    **kwargs: Any,
) -> dict[str, float]:
    """`fvd_metrics` of `num_trials` draws of continuations: mean and standard deviation.

    Args:
      real: `[N, F, H, W, 3]` uint8 held-out videos (embedded once, reused by every trial).
      sample_fn: `trial -> [M, F, H, W, 3]` uint8 continuations (a new draw per trial).
      num_trials: trials (20 in the paper).
      **kwargs: `fvd_metrics`'s `window`, `stride`, `embed_fn`, `real_embeddings`.

    Returns:
      `fvd` / `fvd_unrolled` (means over trials), `fvd_std` / `fvd_unrolled_std` (sample
      standard deviations, ddof 1; 0 for one trial), `fvd_windows` and `fvd_trials`.
    """
    if isinstance(num_trials, bool) or not isinstance(num_trials, int) or num_trials < 1:
        raise ValueError(f"num_trials: expected an int >= 1, got {num_trials!r}")
    cache = kwargs.pop("real_embeddings", None)
    cache = {} if cache is None else cache
    first, unrolled = [], []
    for trial in range(num_trials):
        out = fvd_metrics(real, sample_fn(trial), real_embeddings=cache, **kwargs)
        first.append(out["fvd"])
        unrolled.append(out["fvd_unrolled"])
        log.info(
            "FVD trial %d/%d: %.2f (unrolled %.2f)", trial + 1, num_trials, first[-1], unrolled[-1]
        )
    ddof = 1 if num_trials > 1 else 0
    return {
        "fvd": float(np.mean(first)),
        "fvd_std": float(np.std(first, ddof=ddof)),
        "fvd_unrolled": float(np.mean(unrolled)),
        "fvd_unrolled_std": float(np.std(unrolled, ddof=ddof)),
        "fvd_windows": out["fvd_windows"],
        "fvd_trials": float(num_trials),
    }


def write_grid(
    path_base: str,
    videos: np.ndarray,
    num_prime_frames: int,
    *,
    columns: int,
    formats: Sequence[str] = ("gif",),
    fps: float = 8.0,
) -> list[str]:
    """Writes `videos: [N, F, H, W, 3]` as one grid per format (`<path_base>.gif`, `.mp4`)."""
    grid = sample_grid(videos, num_prime_frames, columns=columns, min_size=GRID_MIN_SIZE)
    writers = {"gif": write_gif, "mp4": write_mp4}
    paths = []
    for fmt in formats:
        if fmt not in writers:
            raise ValueError(f"sample format must be one of {sorted(writers)}, got {fmt!r}")
        paths.append(writers[fmt](f"{path_base}.{fmt}", grid, fps=fps))
    return paths


class Evaluator:
    """Periodic evaluation of a training run (all functions take `state["params"]`).

    Args:
      setup: the model's `Setup`.
      config: the experiment ConfigDict.
      data_dir: prepared clips (`config.data.eval_split` is the held-out split).
      workdir: samples go to `workdir/samples`.
    """

    def __init__(
        self, setup: Setup, config: ml_collections.ConfigDict, data_dir: str, workdir: str
    ):
        self.setup, self.config, self.data_dir = setup, config, data_dir
        self.sample_dir = os.path.join(workdir, "samples")
        self.window = setup.vt_config.video_shape[0]
        bits_primes = config.eval.num_prime_frames
        # eval.num_frames = 0: one window, ending `T - 1` frames after the last prime at most.
        frames = (
            config.eval.get("num_frames", 0) or max(0, bits_primes - self.window + 1) + self.window
        )
        self.windows = scoring_windows(
            frames, self.window, bits_primes, config.sample.get("window_stride", 0)
        )
        self.eval_frames = frames
        self.conditioning = vtx_data.conditioning_transform(config.data)
        self._baseline = None  # PreviousFrameBaseline, fit on first use
        self._real_embeddings: dict[int, np.ndarray] = {}
        self.last_samples: list[str] = []

    def _key(self, step: int, salt: int) -> jax.Array:
        return jax.random.fold_in(jax.random.fold_in(jax.random.key(self.config.seed), salt), step)

    def bits_per_dim(self, params: Any) -> dict[str, float]:
        """Held-out bits/dim of every frame after `eval.num_prime_frames` up to
        `eval.num_frames`, the model window sliding over longer clips (`scoring_windows`), and
        `bits_per_dim_previous_frame`, the previous-frame baseline on the same frames (when
        `eval.baseline_clips` > 0; the uniform baseline is 8)."""
        ev = self.config.eval
        baseline = self.previous_frame_baseline()
        total, count, base_total = 0.0, 0, 0.0
        for video, conditioning in vtx_data.eval_batches(
            self.data_dir,
            self.config.data.eval_split,
            batch_size=ev.batch_size,
            window=self.eval_frames,
            num_batches=ev.num_batches,
            conditioning=self.conditioning,
        ):
            for start, primed in self.windows:
                clip = jnp.asarray(video[:, start : start + self.window])
                cond = None
                if conditioning is not None:
                    cond = jnp.asarray(conditioning[:, start : start + self.window])
                bits = float(_window_bits(self.setup.graphdef, params, clip, cond, primed))
                new = video.shape[0] * (self.window - primed)  # frames scored, all equal size
                total, count = total + bits * new, count + new
            if baseline is not None:  # the same frames, each scored once
                frames = baseline.frame_bits(video)[:, ev.num_prime_frames : self.eval_frames]
                base_total += float(frames.sum())
        out = {"bits_per_dim": total / count}
        if baseline is not None:
            out["bits_per_dim_previous_frame"] = base_total / count
        return out

    def previous_frame_baseline(self):
        """The previous-frame baseline (`baselines.PreviousFrameBaseline`) fit on the first
        `eval.baseline_clips` training clips (None when 0), once per evaluator."""
        from train_videotx.baselines import PreviousFrameBaseline

        n = int(self.config.eval.get("baseline_clips", 0))
        if n and self._baseline is None:
            split = self.config.data.train_split
            n = min(n, vtx_data.num_examples(self.data_dir, split))
            clips, _ = vtx_data.heldout_clips(
                self.data_dir, split, n, vtx_data.clip_length(self.data_dir, split)
            )
            self._baseline = PreviousFrameBaseline.fit([clips])
        return self._baseline

    def _continuations(self, params, prime, conditioning, key: jax.Array, batch: int):
        sc = self.config.sample
        model = self.setup.model(params)
        out = []
        for i in range(0, prime.shape[0], batch):
            out.append(
                continue_videos(
                    model,
                    jax.random.fold_in(key, i),
                    prime[i : i + batch],
                    num_frames=sc.num_frames,
                    temperature=sc.temperature,
                    window_stride=sc.window_stride,
                    conditioning=None if conditioning is None else conditioning[i : i + batch],
                )
            )
        return np.concatenate(out)

    def samples(self, params: Any, step: int) -> dict[str, float]:
        """Continues `sample.num_samples` held-out clips; writes `samples/step_XXXXXXX.{gif,mp4}`.

        Grid: top row the held-out clips, bottom row the samples; green borders mark primed
        frames, red ones generated frames. An action-conditioned model continues each clip
        under that clip's own recorded conditioning (e.g. BAIR actions).
        """
        sc = self.config.sample
        p = sc.num_prime_frames
        real, cond = vtx_data.heldout_clips(
            self.data_dir,
            self.config.data.eval_split,
            sc.num_samples,
            sc.num_frames,
            self.conditioning,
        )
        fake = self._continuations(params, real[:, :p], cond, self._key(step, 1), sc.num_samples)
        formats = [f.strip() for f in sc.formats.split(",") if f.strip()]
        self.last_samples = write_grid(
            os.path.join(self.sample_dir, f"step_{step:07d}"),
            np.concatenate([real, fake]),
            p,
            columns=sc.num_samples,
            formats=formats,
            fps=sc.fps,
        )
        for path in self.last_samples:
            log.info("samples written to %s", path)
        return {}

    def fvd(self, params: Any, step: int) -> dict[str, float]:
        """FVD of `fvd.num_videos` continuations against as many held-out clips, mean and
        standard deviation over `fvd.num_trials` draws of the continuations (conditioned models:
        under each held-out clip's own conditioning, as for the samples)."""
        fc = self.config.fvd
        p = fc.num_prime_frames
        real, cond = vtx_data.heldout_clips(
            self.data_dir,
            self.config.data.eval_split,
            fc.num_videos,
            self.config.sample.num_frames,
            self.conditioning,
        )
        key = self._key(step, 2)
        window = min(fc.window, real.shape[1])
        return fvd_over_trials(
            real,
            lambda trial: self._continuations(
                params, real[:, :p], cond, jax.random.fold_in(key, trial), fc.batch_size
            ),
            int(fc.get("num_trials", 1)),
            window=window,
            stride=fc.unroll_stride,
            real_embeddings=self._real_embeddings,
        )
