"""Motion fields combined across resolutions and their end-point error against a known flow."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from train_trivd.motion import end_point_error, motion_field, true_flow_for_predictions
from video_training.data import render_camera_motion

K = 3  # warp kernel size


def one_hot_weights(batch, frames, size, dy, dx):
    """Warp weights putting all mass on the tap at offset (dy, dx): `[B, T, size, size, 9]`."""
    w = np.zeros((batch, frames, size, size, K * K), np.float32)
    w[..., (dy + 1) * K + (dx + 1)] = 1.0
    return w


def test_motion_field_composes_stages_coarse_to_fine():
    # Every stage reads one pixel to the right: 1 px at 2x2 -> 2 * 1 + 1 = 3 px at 4x4 ->
    # 7 px at 8x8 -> 14 px at the 16x16 frames (section 4.4's upsample-double-add).
    weights = [one_hot_weights(2, 3, s, 0, 1) for s in (2, 4, 8)]
    flow = np.asarray(motion_field(weights, 16))
    assert flow.shape == (2, 3, 16, 16, 2)
    np.testing.assert_allclose(flow[..., 0], 0.0, atol=1e-6)
    np.testing.assert_allclose(flow[..., 1], 14.0, atol=1e-5)
    # Only the two finest stages (Figure 3): (2 * 1 + 1) * 2 = 6 px.
    flow2 = np.asarray(motion_field(weights, 16, levels=2))
    np.testing.assert_allclose(flow2[..., 1], 6.0, atol=1e-5)


def test_motion_field_of_random_weights_matches_expected_offsets():
    # A single stage at frame resolution: the flow is the weights' expected offset.
    kw = jax.random.split(jax.random.key(0), 1)[0]
    w = np.asarray(jax.nn.softmax(jax.random.normal(kw, (2, 4, 8, 8, K * K)), axis=-1))
    flow = np.asarray(motion_field([w], 8))
    offsets = np.array([(m - 1, n - 1) for m in range(K) for n in range(K)], np.float64)
    np.testing.assert_allclose(flow, w @ offsets, atol=1e-5)


def test_end_point_error_on_known_and_random_flows():
    pred = np.zeros((1, 2, 4, 4, 2))
    target = np.zeros_like(pred)
    target[..., 0], target[..., 1] = 3.0, 4.0  # |(3, 4)| = 5 everywhere
    assert end_point_error(pred, target) == pytest.approx(5.0)
    ka, kb = jax.random.split(jax.random.key(1))
    a = np.asarray(jax.random.normal(ka, (2, 3, 5, 5, 2)), np.float64)
    b = np.asarray(jax.random.normal(kb, (2, 3, 5, 5, 2)), np.float64)
    expected = np.mean(np.hypot(a[..., 0] - b[..., 0], a[..., 1] - b[..., 1]))
    assert end_point_error(a, b) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="predicted and target"):
        end_point_error(a, b[..., :1])


def test_true_flow_alignment_and_channel_order():
    tc, tp = 2, 3
    flow = np.zeros((1, tc + tp - 1, 4, 4, 2), np.float32)
    flow[:, :, :, :, 0] = np.arange(tc + tp - 1)[None, :, None, None]  # dx = transition index
    flow[:, :, :, :, 1] = -1.0  # dy
    out = true_flow_for_predictions(flow, tc, tp)
    assert out.shape == (1, tp, 4, 4, 2)
    # Predicted frame j (clip frame tc + j) comes from transition tc - 1 + j; channels (dy, dx).
    np.testing.assert_array_equal(out[0, :, 0, 0, 1], [1, 2, 3])
    np.testing.assert_array_equal(out[..., 0], -1.0)
    with pytest.raises(ValueError, match="transitions"):
        true_flow_for_predictions(flow[:, :2], tc, tp)


def test_camera_pan_flow_matches_the_motion_field_of_its_warp():
    # A camera panning right by 1 photo pixel per frame at scale 1: every output pixel of
    # frame t + 1 shows what pixel p + (0, 1) showed in frame t (backward flow dx = +1).
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    traj = np.array([[20.0 + t, 30.0, 1.0] for t in range(5)])
    _, flow = render_camera_motion(photo, traj, 8)
    true = true_flow_for_predictions(flow[None], 2, 3)  # [1, 3, 8, 8, 2] (dy, dx)
    np.testing.assert_allclose(true[..., 1], 1.0, atol=1e-5)
    model = motion_field([one_hot_weights(1, 3, 8, 0, 1)], 8)  # reads from the right
    assert end_point_error(model, true) == pytest.approx(0.0, abs=1e-5)
    opposite = motion_field([one_hot_weights(1, 3, 8, 0, -1)], 8)
    assert end_point_error(opposite, true) == pytest.approx(2.0, abs=1e-5)
