"""Periodic evaluation: EMA weights with standing statistics, truncated samples, motion fields, EPE, FVD/IS."""

from __future__ import annotations

import functools
import itertools
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import gan_video
import jax
import jax.numpy as jnp
import numpy as np
import warp_ops
from flax import nnx
from PIL import Image
from video_training import GRID_MIN_SIZE, flow_grid, sample_grid, to_uint8, write_gif, write_mp4

from train_trivd.motion import (
    end_point_error,
    motion_field,
    prediction_error,
    true_flow_for_predictions,
)

log = logging.getLogger(__name__)

__all__ = ["Evaluator", "Predictor", "fvd_frames", "motion_image"]

_FVD_FRAMES = 16  # the reference FVD protocol's clip length


def fvd_frames(videos: np.ndarray) -> np.ndarray:
    """Clips shorter than I3D's minimum are repeated in time (nearest) to 16 frames.

    Args:
      videos: `[N, T, H, W, 3]`.

    Returns:
      `videos` when `T >= fvd.MIN_FRAMES`, else `[N, 16, H, W, 3]` with frame
      `floor(i T / 16)` at position i (FVD values are then not comparable to published ones).
    """
    import fvd

    t = videos.shape[1]
    if t >= fvd.MIN_FRAMES:
        return videos
    return videos[:, (np.arange(_FVD_FRAMES) * t) // _FVD_FRAMES]


def truncation_value(truncation: float) -> float | None:
    """Config convention -> `gan_video.sample_latents`: negative means no truncation."""
    return None if truncation is None or truncation < 0 else float(truncation)


class Predictor:
    """Samples continuations with given G weights after refreshing the standing statistics.

    Args:
      gan: `gan_video.GANFunctions`.
      model_config: the `gan_video.ModelConfig`.
    """

    def __init__(self, gan: gan_video.GANFunctions, model_config: gan_video.ModelConfig):
        self.gan, self.mc = gan, model_config
        self._accumulate = jax.jit(functools.partial(gan.generate, bn_mode="accumulate"))
        self._standing = jax.jit(functools.partial(gan.generate, bn_mode="standing"))
        self._refresh = jax.jit(self._refreshed_rest, static_argnums=2)

    def _refreshed_rest(self, params: Any, rest: Any, num_iterations: int) -> Any:
        g = nnx.merge(self.gan.g_graphdef, params, rest, copy=True)
        gan_video.refresh_spectral_vectors(g, num_iterations)
        return nnx.split(g, nnx.Param, ...)[2]

    def standing_rest(
        self,
        params: Any,
        rest: Any,
        cond_batches: Sequence[np.ndarray] | Iterator[tuple[np.ndarray, np.ndarray | None]],
        num_batches: int,
        key: jax.Array,
        labels: Sequence[np.ndarray | None] | None = None,
        spectral_iterations: int = 0,
    ) -> Any:
        """Resets and re-accumulates G's standing BN statistics (appendix E.2).

        With `spectral_iterations > 0` the spectral layers' power-iteration vectors are first
        refined on `params` (the EMA weights were never iterated on: without this they would
        be normalised by the live weights' estimates).

        Args:
          params: G parameters (EMA or raw).
          rest: G's non-parameter state (spectral vectors, BN sums).
          cond_batches: conditioning frames `[b, Tc, H, W, C]`, a sequence (cycled over), or
            an iterator of `(conditioning frames, labels or None)` (one drawn per pass, e.g.
            from `data.standing_batches`).
          num_batches: forward passes averaged.
          key: PRNG key for the (untruncated) latents.
          labels: optional per-batch labels of a `cond_batches` sequence.
          spectral_iterations: power-iteration steps on `params` first (0: keep `rest`'s).

        Returns:
          `rest` with the standing statistics of `num_batches` passes.
        """
        if spectral_iterations:
            rest = self._refresh(params, rest, int(spectral_iterations))
        g = nnx.merge(self.gan.g_graphdef, params, rest, copy=True)
        gan_video.reset_standing_stats(g)
        _, _, rest = nnx.split(g, nnx.Param, ...)
        if isinstance(cond_batches, Sequence):  # cycled, with their labels
            ys = [None] * len(cond_batches) if labels is None else labels
            cond_batches = itertools.cycle(zip(cond_batches, ys, strict=True))
        for i in range(max(num_batches, 1)):
            cond, y = next(cond_batches)
            cond = jnp.asarray(cond)
            z = jax.random.normal(jax.random.fold_in(key, i), (cond.shape[0], self.mc.z_dim))
            _, _, rest = self._accumulate(params, rest, cond, z, y)
        return rest

    def predict(
        self,
        params: Any,
        rest: Any,
        cond: np.ndarray,
        key: jax.Array,
        truncation: float | None,
        labels: np.ndarray | None = None,
    ) -> tuple[np.ndarray, list[jax.Array]]:
        """Predicted frames `[b, Tp, H, W, C]` and the per-stage warp weights (standing BN)."""
        cond = jnp.asarray(cond)
        z = gan_video.sample_latents(key, cond.shape[0], self.mc.z_dim, truncation)
        frames, aux, _ = self._standing(params, rest, cond, z, labels)
        return np.asarray(frames), aux["warp_weights"]


def motion_image(
    frames: np.ndarray, flows: np.ndarray, true_flows: np.ndarray | None = None, border: int = 1
) -> np.ndarray:
    """Figure-3-style image: per sample a row of predicted frames, then their motion fields.

    Args:
      frames: `[N, Tp, H, W, 3]` predictions in [-1, 1] or uint8.
      flows: `[N, Tp, H, W, 2]` motion fields `(dy, dx)`.
      true_flows: optional `[N, Tp, H, W, 2]` true flows, drawn below on the same colour scale.
      border: pixels between tiles.

    Returns:
      `[rows * (H + border), Tp * (W + border), 3]` uint8.
    """
    frames = to_uint8(frames)
    n, t, h, w, _ = frames.shape
    scale = float(np.max(np.linalg.norm(flows, axis=-1)))
    if true_flows is not None:
        scale = max(scale, float(np.max(np.linalg.norm(true_flows, axis=-1))))
    scale = max(scale, 1e-3)

    def rgb(f):
        out = warp_ops.flow_to_rgb(jnp.asarray(f.reshape(n * t, h, w, 2)), max_magnitude=scale)
        return np.asarray(out).reshape(n, t, h, w, 3)

    rows_per = [frames, rgb(flows)] + ([rgb(true_flows)] if true_flows is not None else [])
    rows = [r[i] for i in range(n) for r in rows_per]  # each [Tp, H, W, 3]
    canvas = np.full((len(rows) * (h + border), t * (w + border), 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c in range(t):
            y, x = r * (h + border), c * (w + border)
            canvas[y : y + h, x : x + w] = row[c]
    return canvas


def _flow_rgb(scale: float):
    def fn(flows: np.ndarray) -> np.ndarray:
        lead = flows.shape[:-3]
        flat = jnp.asarray(flows.reshape(-1, *flows.shape[-3:]))
        return np.asarray(warp_ops.flow_to_rgb(flat, max_magnitude=scale)).reshape(
            *lead, *flows.shape[-3:-1], 3
        )

    return fn


def write_outputs(
    out_dir: str,
    tag: str,
    clips: np.ndarray,
    num_cond: int,
    flows: np.ndarray | None,
    true_flows: np.ndarray | None = None,
    *,
    mp4: bool = False,
) -> dict[str, str]:
    """Writes the sample grid GIF (and MP4), the motion-field PNG and motion-field GIF (MP4).

    Args:
      out_dir: folder.
      tag: file-name stem, e.g. "step_000040".
      clips: `[N, T, H, W, 3]` conditioning + predicted frames in [-1, 1].
      num_cond: Tc (framed in the conditioning colour).
      flows: `[N, Tp, H, W, 2]` motion fields or None (non-warping recurrent unit).
      true_flows: optional true flows for the motion image.
      mp4: also write MP4 videos.

    Returns:
      name -> written path.
    """
    os.makedirs(out_dir, exist_ok=True)
    grid = sample_grid(clips, num_cond, min_size=GRID_MIN_SIZE)
    paths = {"samples": write_gif(os.path.join(out_dir, f"samples_{tag}.gif"), grid)}
    if mp4:
        paths["samples_mp4"] = write_mp4(os.path.join(out_dir, f"samples_{tag}.mp4"), grid)
    if flows is not None:
        image = motion_image(clips[:, num_cond:], flows, true_flows)
        path = os.path.join(out_dir, f"motion_{tag}.png")
        Image.fromarray(image).save(path)
        paths["motion_image"] = path
        scale = max(float(np.max(np.linalg.norm(flows, axis=-1))), 1e-3)
        video = flow_grid(flows, _flow_rgb(scale))
        paths["motion_video"] = write_gif(os.path.join(out_dir, f"motion_{tag}.gif"), video)
        if mp4:
            paths["motion_mp4"] = write_mp4(os.path.join(out_dir, f"motion_{tag}.mp4"), video)
    return paths


class Evaluator:
    """`evaluator(state, step) -> metrics`, the Trainer's `eval_fn`.

    Uses the EMA generator weights (or the raw ones), first power-iterated on
    (`eval.spectral_iterations`), with standing statistics accumulated over
    `eval.standing_batches` passes on training clips (`standing_source`; without one, on the
    evaluation clips, cycled). Samples and motion fields use latents truncated at
    `eval.truncation` (the paper's qualitative setting, appendix D); FVD and IS use
    untruncated latents, as the paper's quantitative results do. Writes
    `samples_<step>.gif/.mp4` (frames enlarged to >= 64 px), `motion_<step>.png/.gif/.mp4` to
    `<workdir>/eval` and returns:
      * `epe`, `epe_zero_flow`, `true_flow_magnitude` when the data has true flow (camera
        motion) and the recurrent unit warps;
      * `mse`, `psnr` of the predicted frames (the truncated samples of the grids) against
        the clips' true continuation, and `mse_copy_last`, `psnr_copy_last` of repeating the
        last conditioning frame (`motion.prediction_error`; [0, 1] scale, mean per-frame dB);
      * `motion_magnitude`: mean length of the motion field;
      * with more than one warping stage, `epe_finest<n>` and `motion_magnitude_finest<n>` of
        the motion field of the n finest stages alone, for every n below the number of
        stages (whatever `eval.motion_levels` picks for `epe`): a coarse stage's warp can
        move content without being a motion estimate (at 16 px frames the coarsest maps are
        2x2 and 4x4, where a 3x3 kernel spans the whole map);
      * `fvd`, `is`, `is_std` when `eval.fvd_num_clips > 0` (I3D; the real statistics are
        computed once and cached in `<workdir>/eval/fvd_real_stats.npz`).

    Args:
      gan: `gan_video.GANFunctions`.
      model_config: `gan_video.ModelConfig`.
      eval_config: the config's `eval` ConfigDict.
      batches: evaluation batches from `data.eval_clips` (enough for FVD and samples).
      workdir: run folder.
      standing_source: `() -> iterator of (conditioning frames, labels or None)` for the
        standing statistics (`data.standing_batches`); None: the evaluation batches, cycled.
    """

    def __init__(
        self,
        gan,
        model_config,
        eval_config,
        batches,
        workdir: str,
        standing_source: Callable[[], Iterator[tuple[np.ndarray, np.ndarray | None]]] | None = None,
    ):
        self.predictor = Predictor(gan, model_config)
        self.standing_source = standing_source
        self.mc, self.cfg, self.batches = model_config, eval_config, batches
        self.out_dir = os.path.join(workdir, "eval")
        self.last_paths: dict[str, str] = {}
        self.last_step: int | None = None
        self._real_stats = None

    def _params(self, state):
        return state["ema"] if self.cfg.use_ema else state["g"]["params"]

    def __call__(self, state: Any, step: int) -> dict[str, float]:
        cfg, mc, tc = self.cfg, self.mc, self.mc.num_cond_frames
        params = self._params(state)
        key = jax.random.fold_in(jax.random.key(cfg.seed), step)
        labels = [b.get("label") for b in self.batches]
        if self.standing_source is not None:
            source = self.standing_source()
        else:
            source = [b["video"][:, :tc] for b in self.batches]
        rest = self.predictor.standing_rest(
            params,
            state["g"]["rest"],
            source,
            cfg.standing_batches,
            jax.random.fold_in(key, 0),
            labels,
            spectral_iterations=cfg.get("spectral_iterations", 0),
        )
        trunc = truncation_value(cfg.truncation)
        clips, true_flows = [], []
        # Metric-name suffix -> per-batch motion fields: "" the `eval.motion_levels` field,
        # "_finest<n>" the n finest stages alone (n below the number of stages).
        fields: dict[str, list[np.ndarray]] = {}
        for i, batch in enumerate(self.batches):
            pred, warps = self.predictor.predict(
                params,
                rest,
                batch["video"][:, :tc],
                jax.random.fold_in(key, i + 1),
                trunc,
                batch.get("label"),
            )
            clips.append(np.concatenate([batch["video"][:, :tc], pred], axis=1))
            if warps:
                levels = {"": self._levels(), **{f"_finest{n}": n for n in range(1, len(warps))}}
                for suffix, n in levels.items():
                    field = motion_field(warps, mc.resolution, levels=n)
                    fields.setdefault(suffix, []).append(np.asarray(field))
            if "flow" in batch:
                true_flows.append(true_flow_for_predictions(batch["flow"], tc, mc.num_pred_frames))
        clips = np.concatenate(clips)
        fields = {suffix: np.concatenate(parts) for suffix, parts in fields.items()}
        flows = fields.get("")
        true = np.concatenate(true_flows) if true_flows else None
        metrics: dict[str, float] = {}
        # Prediction error against the true continuation, beside copying the last
        # conditioning frame (a model that learned deterministic motion beats copying).
        real = np.concatenate([b["video"] for b in self.batches])
        truth = real[:, tc : tc + mc.num_pred_frames]
        if truth.shape == clips[:, tc:].shape:
            metrics["mse"], metrics["psnr"] = prediction_error(clips[:, tc:], truth)
            copy = np.broadcast_to(real[:, tc - 1 : tc], truth.shape)
            metrics["mse_copy_last"], metrics["psnr_copy_last"] = prediction_error(copy, truth)
        for suffix, field in fields.items():
            metrics[f"motion_magnitude{suffix}"] = float(np.mean(np.linalg.norm(field, axis=-1)))
            if true is not None:
                metrics[f"epe{suffix}"] = end_point_error(field, true)
        if flows is not None and true is not None:
            metrics["epe_zero_flow"] = end_point_error(np.zeros_like(true), true)
            metrics["true_flow_magnitude"] = float(np.mean(np.linalg.norm(true, axis=-1)))
        if cfg.fvd_num_clips > 0:
            metrics.update(
                self._fvd(clips if trunc is None else self._untruncated(params, rest, key))
            )
        n = min(cfg.num_samples, clips.shape[0])
        self.last_paths = write_outputs(
            self.out_dir,
            f"step_{step:07d}",
            clips[:n],
            tc,
            None if flows is None else flows[:n],
            None if true is None else true[:n],
            mp4=True,
        )
        self.last_step = step
        return metrics

    def _untruncated(self, params: Any, rest: Any, key: jax.Array) -> np.ndarray:
        """Clips for FVD / IS: the first `eval.fvd_num_clips` predicted with untruncated latents."""
        tc, clips, count = self.mc.num_cond_frames, [], 0
        for i, batch in enumerate(self.batches):
            if count >= self.cfg.fvd_num_clips:
                break
            cond = batch["video"][:, :tc]
            key_i = jax.random.fold_in(jax.random.fold_in(key, 1 << 20), i)
            pred, _ = self.predictor.predict(params, rest, cond, key_i, None, batch.get("label"))
            clips.append(np.concatenate([cond, pred], axis=1))
            count += cond.shape[0]
        return np.concatenate(clips)

    def _levels(self) -> int | None:
        return self.cfg.motion_levels or None

    def _fvd(self, clips: np.ndarray) -> dict[str, float]:
        import fvd

        n = self.cfg.fvd_num_clips
        if clips.shape[0] < n:
            raise ValueError(f"fvd_num_clips={n} but only {clips.shape[0]} eval clips were loaded")
        kw = {"batch_size": self.cfg.fvd_batch_size, "value_range": (-1.0, 1.0)}
        if self._real_stats is None:
            path = os.path.join(self.out_dir, "fvd_real_stats.npz")
            if os.path.exists(path):
                self._real_stats = fvd.FVDStatistics.load(path)
            else:
                real = np.concatenate([b["video"] for b in self.batches])[:n]
                frames = fvd_frames(real)
                self._real_stats = fvd.FVDStatistics().update_embeddings(fvd.embed(frames, **kw))
                self._real_stats.provenance = {  # read back on resume (no "unknown" warning)
                    "source": "train-trivd evaluation clips (first fvd_num_clips of the batches)",
                    "num_clips": int(frames.shape[0]),
                    "num_frames": int(frames.shape[1]),
                    "frame_sizes": [f"{frames.shape[2]}x{frames.shape[3]}"],
                    "value_range": [-1.0, 1.0],
                    "weights_sha256": fvd.weights.WEIGHTS_SHA256,
                }
                os.makedirs(self.out_dir, exist_ok=True)
                self._real_stats.save(path)
        logits = fvd.embed(fvd_frames(np.clip(clips[:n], -1.0, 1.0)), **kw)
        fake = fvd.FVDStatistics().update_embeddings(logits)
        real = self._real_stats
        distance = fvd.frechet_distance(real.mean, real.cov, fake.mean, fake.cov)
        score, std = fvd.inception_score(logits, splits=self.cfg.is_splits)
        return {"fvd": float(distance), "is": score, "is_std": std}
