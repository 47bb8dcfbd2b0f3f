"""Tests for the discriminator decompositions and the mixed projection (Eq. 15)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from gan_video import (
    DECOMPOSITIONS,
    Discriminator,
    MixedProjectionHead,
    avg_pool_spatial,
    get_preset,
    mixed_projection,
    sub_discriminator_input,
)

# Kinetics setting: 5 + 11 frames of 64x64, K = 8, s = 2.
B, T, S, K = 2, 16, 64, 8
EXPECTED = {
    "F": (B, K, S, S, 3),
    "dF": (B, K, S // 2, S // 2, 3),
    "clV": (B, T, S, S, 3),
    "dV": (B, T, S // 2, S // 2, 3),
    "crV": (B, T, S // 2, S // 2, 3),
}
D_FEATURES = 16 * 2  # d_ch * last multiplier


@pytest.mark.parametrize("decomposition", sorted(DECOMPOSITIONS))
def test_each_decomposition_feeds_each_sub_discriminator_the_specified_shapes(decomposition):
    cfg = get_preset("medium", decomposition=decomposition, d_ch=2, g_ch=2)
    video = jax.ShapeDtypeStruct((B, T, S, S, 3), jnp.float32)
    labels = jax.ShapeDtypeStruct((B,), jnp.int32)
    key = jax.random.key(0, impl="rbg")

    def run(v, y):  # abstract evaluation only: no compute
        d = Discriminator(cfg, rngs=nnx.Rngs(jax.random.key(0, impl="rbg")))
        inputs = d.inputs(v, key)
        feats = {kind: d.trunks[kind](x) for kind, x in inputs.items()}
        return inputs, feats, d(v, y, key)

    inputs, feats, outs = jax.eval_shape(run, video, labels)
    assert set(inputs) == set(DECOMPOSITIONS[decomposition])
    d = nnx.eval_shape(lambda: Discriminator(cfg, rngs=nnx.Rngs(jax.random.key(0, impl="rbg"))))
    for kind, x in inputs.items():
        assert x.shape == EXPECTED[kind], kind
        assert feats[kind].shape == (B, EXPECTED[kind][1], D_FEATURES)
        # Spatio-temporal D: first two blocks are 3D; per-frame D: none.
        assert d.trunks[kind].num_3d_blocks == (0 if kind in ("F", "dF") else 2)
        assert outs[kind].shape == (B, B, EXPECTED[kind][1])


def test_mocogan_k1_and_sub_input_contents():
    cfg = get_preset("medium", decomposition="mocogan", num_sampled_frames=1)
    assert DECOMPOSITIONS["mocogan"] == ("F", "clV")
    video = jax.random.normal(jax.random.key(0, impl="rbg"), (3, 6, 8, 8, 2))
    key = jax.random.key(1, impl="rbg")
    f = sub_discriminator_input(video, "F", key, num_sampled_frames=cfg.num_sampled_frames)
    assert f.shape == (3, 1, 8, 8, 2)
    f4 = sub_discriminator_input(video, "F", key, num_sampled_frames=4)
    for b in range(3):  # K distinct real frames per sample, in temporal order
        idx = [int(jnp.argmin(jnp.abs(video[b] - f4[b, k]).sum((1, 2, 3)))) for k in range(4)]
        assert idx == sorted(set(idx)) and len(idx) == 4
        np.testing.assert_array_equal(f4[b], video[b, jnp.array(idx)])
    df = sub_discriminator_input(video, "dF", key, num_sampled_frames=4)
    np.testing.assert_allclose(df, avg_pool_spatial(f4), rtol=1e-6)
    dv = sub_discriminator_input(video, "dV", key)
    np.testing.assert_allclose(dv[0, 0, 0, 0], video[0, 0, :2, :2].mean((0, 1)), rtol=1e-5)
    cr = sub_discriminator_input(video, "crV", key)
    assert cr.shape == (3, 6, 4, 4, 2)
    for b in range(3):
        found = [
            (y, x)
            for y in range(5)
            for x in range(5)
            if np.array_equal(cr[b], video[b, :, y : y + 4, x : x + 4])
        ]
        assert len(found) == 1
    with pytest.raises(ValueError, match="kind must be one of"):
        sub_discriminator_input(video, "xV", key)
    with pytest.raises(ValueError, match="num_sampled_frames must be in"):
        sub_discriminator_input(video, "F", key, num_sampled_frames=7)


def _frame_indices(video, frames):
    """Which frame of `video` [B, T, ...] each of `frames` [B, K, ...] is."""
    return [
        [int(jnp.argmin(jnp.abs(video[b] - f).sum((1, 2, 3)))) for f in frames[b]]
        for b in range(video.shape[0])
    ]


def test_frame_discriminators_sample_only_predicted_frames():
    # 5 conditioning + 11 predicted frames (Kinetics): F and dF of the Discriminator see only
    # frames 5..15 of every clip, by default; "all" reaches the conditioning frames too.
    cfg = get_preset("medium", decomposition="dvd_gan_fp", d_ch=2, g_ch=2)
    assert cfg.frame_sampling == "predicted" and cfg.first_sampled_frame == 5
    video = jax.random.normal(jax.random.key(0, impl="rbg"), (16, 16, 4, 4, 2))
    d = nnx.eval_shape(lambda: Discriminator(cfg, rngs=nnx.Rngs(jax.random.key(0, impl="rbg"))))
    seen, seen_all = set(), set()
    d_all = nnx.eval_shape(
        lambda: Discriminator(
            get_preset("medium", decomposition="dvd_gan_fp", d_ch=2, g_ch=2, frame_sampling="all"),
            rngs=nnx.Rngs(jax.random.key(0, impl="rbg")),
        )
    )
    for seed in range(4):
        key = jax.random.key(seed, impl="rbg")
        for idx in _frame_indices(video, d.inputs(video, key)["F"]):
            assert len(idx) == 8 and idx == sorted(set(idx)), idx
            seen.update(idx)
        for idx in _frame_indices(video, d_all.inputs(video, key)["F"]):
            seen_all.update(idx)
    assert seen == set(range(5, 16))  # every predicted frame, no conditioning frame
    assert seen_all & set(range(5))  # the other reading does sample conditioning frames
    # dF: the same predicted frames, downsampled.
    f = sub_discriminator_input(video, "F", key, num_sampled_frames=8, first_sampled_frame=5)
    df = sub_discriminator_input(video, "dF", key, num_sampled_frames=8, first_sampled_frame=5)
    np.testing.assert_allclose(df, avg_pool_spatial(f), rtol=1e-6)


def test_frame_sampling_rejects_what_does_not_fit():
    with pytest.raises(ValueError, match=r"num_sampled_frames must be in \[1, 11\]"):
        get_preset("medium", num_sampled_frames=12)
    assert (
        get_preset("medium", num_sampled_frames=12, frame_sampling="all").num_sampled_frames == 12
    )
    with pytest.raises(ValueError, match="frame_sampling must be one of"):
        get_preset("medium", frame_sampling="conditioning")
    video = jnp.ones((1, 6, 4, 4, 1))
    key = jax.random.key(0, impl="rbg")
    with pytest.raises(ValueError, match=r"num_sampled_frames must be in \[1, 2\]"):
        sub_discriminator_input(video, "F", key, num_sampled_frames=3, first_sampled_frame=4)
    with pytest.raises(ValueError, match=r"first_sampled_frame must be in \[0, 5\], got 6"):
        sub_discriminator_input(video, "dF", key, num_sampled_frames=1, first_sampled_frame=6)


def test_mixed_projection_matches_eq15():
    k1, k2 = jax.random.split(jax.random.key(0, impl="rbg"))
    r_x = jax.random.normal(k1, (3, 4))
    r_xy = jax.random.normal(k2, (3, 4))
    o = mixed_projection(r_x, r_xy)
    assert o.shape == (3, 3, 4)
    expected = np.zeros((3, 3, 4))
    for b in range(3):
        for bp in range(3):
            for t in range(4):
                expected[b, bp, t] = r_x[b, t] + sum(r_xy[bp, tp] for tp in range(4))
    np.testing.assert_allclose(o, expected, rtol=1e-5, atol=1e-6)


def test_projection_head_uses_class_embedding():
    # Frozen power iteration so the kernels read below are the ones the head used.
    head = nnx.view(
        MixedProjectionHead(5, 3, rngs=nnx.Rngs(jax.random.key(0, impl="rbg"))),
        update_spectral=False,
    )
    h = jax.random.normal(jax.random.key(1, impl="rbg"), (2, 4, 5))
    y = jnp.array([2, 0])
    o = head(h, y)
    w = head.linear.normalized_kernel()[:, 0]
    e = head.embed.normalized_kernel()  # [classes, C]
    r_x = h @ w + head.linear.bias[...][0]
    r_xy = jnp.einsum("btc,bc->bt", h, e[y])
    np.testing.assert_allclose(o, mixed_projection(r_x, r_xy), rtol=1e-5, atol=1e-5)
    assert not np.allclose(o, head(h, jnp.array([1, 1])))


def test_discriminator_forward_tiny():
    cfg = get_preset("tiny")
    d = Discriminator(cfg, rngs=nnx.Rngs(jax.random.key(0, impl="rbg")))
    video = jax.random.uniform(
        jax.random.key(0, impl="rbg"), (4, cfg.num_frames, 16, 16, 3), minval=-1
    )
    out = nnx.jit(
        lambda d, v: d(v, jnp.zeros(4, jnp.int32), jax.random.key(1, impl="rbg"), num_groups=2)
    )(d, video)
    assert set(out) == {"dF", "crV", "dV"}
    assert out["dF"].shape == (2, 2, 2, cfg.num_sampled_frames)
    assert out["dV"].shape == (2, 2, 2, cfg.num_frames)
    assert all(np.all(np.isfinite(o)) for o in out.values())
