"""Evaluation weights: the EMA generator is normalised by its own spectral norms."""

from __future__ import annotations

import types

import gan_video
import jax
import ml_collections
import numpy as np
import pytest
from flax import nnx
from train_trivd.evaluate import Predictor


def _sigma_errors(graphdef, params, rest):
    """Relative error of each spectral layer's sigma estimate against its kernel's true norm."""
    model = nnx.merge(graphdef, params, rest, copy=True)
    errors = []
    for _, layer in nnx.iter_modules(model):
        if isinstance(layer, gan_video.SNLinear | gan_video.SNConv):
            kernel = np.asarray(layer.kernel[...], np.float64)
            truth = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
            sigma = gan_video.spectral_normalize(layer.kernel[...], layer.u[...], num_iterations=0)[
                2
            ]
            errors.append(abs(float(sigma) / truth - 1))
    return np.array(errors)


def test_standing_rest_runs_the_power_iteration_on_the_evaluated_weights():
    # A stand-in generator (two spectral layers) keeps this to the power iteration's wiring;
    # G's forward passes are replaced by a recorder of the state they would be given.
    rngs = nnx.Rngs(jax.random.key(0, impl="rbg"))
    g = nnx.List([gan_video.SNLinear(12, 7, rngs=rngs), gan_video.SNConv(5, 6, 3, rngs=rngs)])
    for layer in g:
        for _ in range(30):  # the live weights' converged u
            layer.normalized_kernel()
    graphdef, params, rest = nnx.split(g, nnx.Param, ...)
    # The EMA: weights the live vectors u were never iterated on.
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(1), len(leaves))
    ema = jax.tree.unflatten(
        tree, [3.0 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)]
    )
    seen = []
    gan = types.SimpleNamespace(g_graphdef=graphdef, generate=lambda *a, **k: None)
    predictor = Predictor(gan, types.SimpleNamespace(z_dim=4))
    predictor._accumulate = lambda params, rest, cond, z, y: seen.append(rest) or (None, None, rest)
    cond = [np.zeros((2, 1, 4, 4, 3), np.float32)]
    stale = predictor.standing_rest(ema, rest, cond, 1, jax.random.key(3))
    fresh = predictor.standing_rest(ema, rest, cond, 1, jax.random.key(3), spectral_iterations=50)
    assert len(seen) == 2 and seen[1] is fresh  # the forward passes saw the refreshed vectors
    assert _sigma_errors(graphdef, ema, stale).min() > 0.03  # the live weights' estimates
    np.testing.assert_array_less(_sigma_errors(graphdef, ema, fresh), 1e-3)  # the EMA's own


def _evaluator(tmp_path, resolution, batches, standing_source=None, **eval_config):
    """An `Evaluator` of 1 conditioning + 2 predicted frames around a stand-in G (the tests
    replace its predictor's methods)."""
    from train_trivd.evaluate import Evaluator

    mc = types.SimpleNamespace(num_cond_frames=1, num_pred_frames=2, resolution=resolution)
    cfg = ml_collections.ConfigDict(
        {"seed": 0, "use_ema": True, "spectral_iterations": 0, "motion_levels": 0, **eval_config}
    )
    gan = types.SimpleNamespace(g_graphdef=None, generate=lambda *a, **k: None)
    return Evaluator(gan, mc, cfg, batches, str(tmp_path), standing_source=standing_source)


def test_evaluator_standing_stats_on_training_clips_and_fvd_on_untruncated_samples(tmp_path):
    # Recorders stand in for G: what matters is which clips and latents each use sees.
    eval_batches = [{"video": np.full((2, 3, 4, 4, 3), -0.5 + i, np.float32)} for i in range(2)]
    train_batches = [{"video": np.full((2, 3, 4, 4, 3), 0.25 * i, np.float32)} for i in range(5)]
    ev = _evaluator(
        tmp_path,
        4,
        eval_batches,
        lambda: ((b["video"][:, :1], None) for b in train_batches),
        standing_batches=3,
        truncation=0.8,
        fvd_num_clips=4,
        num_samples=2,
    )
    seen = {"standing": [], "truncation": []}

    def standing_rest(params, rest, source, num_batches, key, labels, spectral_iterations):
        seen["standing"] = [next(source)[0] for _ in range(num_batches)]
        return rest

    def predict(params, rest, cond, key, truncation, labels=None):
        seen["truncation"].append(truncation)
        return np.zeros((cond.shape[0], 2, 4, 4, 3), np.float32), []

    fvd_clips = []
    ev.predictor.standing_rest, ev.predictor.predict = standing_rest, predict
    ev._fvd = lambda clips: fvd_clips.append(clips) or {"fvd": 1.0}
    state = {"ema": {}, "g": {"params": {}, "rest": {}}}
    metrics = ev(state, step=1)
    # Predicted zeros against constant clips of -0.5 and 0.5: (0.5 / 2)^2 on the [0, 1] scale;
    # copying the last conditioning frame of a still clip is exact.
    assert metrics["mse"] == pytest.approx(0.0625)
    assert metrics["psnr"] == pytest.approx(10 * np.log10(16))
    assert metrics["mse_copy_last"] == 0.0 and metrics["psnr_copy_last"] == 100.0
    # Three passes on three different training batches' conditioning frames.
    assert [float(c.mean()) for c in seen["standing"]] == [0.0, 0.25, 0.5]
    # The two sample batches are truncated; FVD's four clips were drawn again, untruncated.
    assert seen["truncation"] == [0.8, 0.8, None, None]
    assert fvd_clips[0].shape == (4, 3, 4, 4, 3)


def test_evaluator_reports_the_finest_stages_motion_field_beside_the_combined_one(tmp_path):
    # Two warping stages of an 8 px frame, 2x2 and 4x4, with one-hot kernels: every pixel of
    # the coarse one reads from one pixel down (4 frame pixels), of the fine one from one
    # pixel to the right (2 frame pixels).
    rng = np.random.default_rng(0)
    flow = np.zeros((2, 2, 8, 8, 2), np.float32)
    flow[..., 0] = 2.0  # stored as (dx, dy): every pixel reads from 2 px to its right
    batches = [{"video": rng.uniform(-1, 1, (2, 3, 8, 8, 3)).astype(np.float32), "flow": flow}]
    ev = _evaluator(
        tmp_path, 8, batches, standing_batches=1, truncation=None, fvd_num_clips=0, num_samples=1
    )

    def one_hot(size, tap):
        w = np.zeros((2, 2, size, size, 9), np.float32)
        w[..., tap] = 1.0
        return w

    def predict(params, rest, cond, key, truncation, labels=None):
        frames = np.zeros((cond.shape[0], 2, 8, 8, 3), np.float32)
        return frames, [one_hot(2, 7), one_hot(4, 5)]  # taps 7: (dy, dx) = (1, 0); 5: (0, 1)

    ev.predictor.standing_rest = lambda params, rest, *a, **k: rest
    ev.predictor.predict = predict
    metrics = ev({"ema": {}, "g": {"params": {}, "rest": {}}}, step=1)
    # Combined: (4, 2) everywhere against the true (0, 2); the finest stage alone: (0, 2).
    assert metrics["epe"] == pytest.approx(4.0)
    assert metrics["motion_magnitude"] == pytest.approx(np.sqrt(20.0))
    assert metrics["epe_finest1"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["motion_magnitude_finest1"] == pytest.approx(2.0)
    assert metrics["epe_zero_flow"] == pytest.approx(2.0)
    assert "epe_finest2" not in metrics  # two stages: "epe" is already both


def test_prediction_error_per_frame_psnr():
    from train_trivd.motion import prediction_error

    target = np.zeros((1, 2, 2, 2, 3))
    predicted = target.copy()
    predicted[0, 0] = 0.2  # frame 0: error 0.1 on [0, 1] -> mse 0.01, 20 dB; frame 1 exact
    mse, psnr = prediction_error(predicted, target)
    assert mse == pytest.approx(0.005) and psnr == pytest.approx((20.0 + 100.0) / 2)
    with pytest.raises(ValueError, match="must share a"):
        prediction_error(predicted[:, :1], target)
