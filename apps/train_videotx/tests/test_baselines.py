"""The previous-frame baseline (#15): exact against a pair-by-pair formula, and reported by the
evaluator beside the model's held-out bits/dim."""

from __future__ import annotations

import numpy as np
import pytest
from train_videotx.baselines import UNIFORM_BITS, PreviousFrameBaseline


def _clips(seed, shape=(3, 5, 4, 4, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_bits_match_the_formula_pair_by_pair():
    train = _clips(0, (6, 7, 5, 5, 3))
    model = PreviousFrameBaseline.fit([train[:2], train[2:]])  # batches add up
    counts = np.ones((3, 511))
    for clip in train:
        for t in range(1, clip.shape[0]):
            for value_prev, value in zip(clip[t - 1].reshape(-1, 3), clip[t].reshape(-1, 3)):
                for c in range(3):
                    counts[c, int(value[c]) - int(value_prev[c]) + 255] += 1
    np.testing.assert_array_equal(model.counts, counts)
    test = _clips(1)
    bits = model.frame_bits(test)
    for b in range(test.shape[0]):
        assert bits[b, 0] == UNIFORM_BITS
        for t in range(1, test.shape[1]):
            total = 0.0
            for u3, v3 in zip(test[b, t - 1].reshape(-1, 3), test[b, t].reshape(-1, 3)):
                for c in range(3):
                    u, v = int(u3[c]), int(v3[c])
                    z = counts[c, 255 - u : 511 - u].sum()  # every feasible next value
                    total -= np.log2(counts[c, v - u + 255] / z)
            assert bits[b, t] == pytest.approx(total / test[b, t].size, rel=1e-12)
    assert model.bits_per_dim(test, 1) == pytest.approx(bits[:, 1:].mean())
    # Each conditional distribution sums to one over the 256 values.
    np.testing.assert_allclose(np.exp2(model.log2_probs).sum(-1), 1.0, rtol=1e-12)


def test_copying_video_is_cheap_and_noise_is_not():
    static = np.repeat(_clips(2, (8, 1, 8, 8, 3)), 6, axis=1)  # every frame the same
    model = PreviousFrameBaseline.fit([static])
    # 2560 zero differences per channel, add-one over the 256 feasible next values.
    n = 8 * 5 * 8 * 8
    assert model.bits_per_dim(static, 1) == pytest.approx(-np.log2((n + 1) / (n + 256)))
    assert model.bits_per_dim(static, 1) < 0.2
    # Unseen differences cost about log2(n + 256) = 11.5 bits: worse than uniform (8).
    assert model.bits_per_dim(_clips(3, (4, 6, 8, 8, 3)), 1) > 11
    with pytest.raises(ValueError, match="num_prime_frames: expected an int in"):
        model.bits_per_dim(static, 6)
    with pytest.raises(ValueError, match="expected \\[B, T, H, W, 3\\] uint8"):
        PreviousFrameBaseline.fit([static.astype(np.float32)])


def test_the_evaluator_reports_it_beside_the_model(tiny_run):
    metrics = tiny_run["first"].metrics
    base = metrics["eval/bits_per_dim_previous_frame"]
    assert 0 < base < UNIFORM_BITS and np.isfinite(metrics["eval/bits_per_dim"])


def test_random_flip_mirrors_about_half_of_the_clips():
    from train_videotx.data import RandomFlip

    video = np.arange(2 * 3 * 4 * 3, dtype=np.uint8).reshape(2, 3, 4, 3)
    flipped = 0
    for seed in range(200):
        out = RandomFlip().random_map({"video": video, "label": 1}, np.random.default_rng(seed))
        assert out["label"] == 1
        if np.array_equal(out["video"], video):
            continue
        np.testing.assert_array_equal(out["video"], video[:, :, ::-1])  # left-right, per frame
        flipped += 1
    assert 70 < flipped < 130
