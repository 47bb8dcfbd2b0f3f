"""I3D structure: the minimum clip length, and input validation (no network runs here)."""

import fvd
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from fvd.i3d import InceptionI3d, temporal_length_after_backbone
from fvd.weights import expected_variables_shape


def _logit_time_steps(num_frames: int) -> int:
    """Time steps entering the logits layer, read off the traced network (no FLOPs)."""
    x = jax.ShapeDtypeStruct((1, num_frames, 224, 224, 3), jnp.float32)

    def apply(variables, x):
        return InceptionI3d().apply(
            variables, x, capture_intermediates=True, mutable=["intermediates"]
        )

    _, state = jax.eval_shape(apply, expected_variables_shape(), x)
    return state["intermediates"]["Logits/Conv3d_0c_1x1"]["__call__"][0].shape[1]


@pytest.mark.parametrize("num_frames", [7, 8, 9, 16, 17, 25])
def test_minimum_frames(num_frames):
    steps = _logit_time_steps(num_frames)
    assert steps == temporal_length_after_backbone(num_frames)
    # 8 frames leave nothing to average (the logits would be NaN); 9 is the minimum.
    assert (steps >= 1) == (num_frames >= fvd.MIN_FRAMES)


def test_minimum_is_nine():
    assert fvd.MIN_FRAMES == 9
    assert _logit_time_steps(8) == 0 and _logit_time_steps(9) == 1


def _videos(shape, dtype=np.uint8):
    x = jax.random.uniform(jax.random.key(0), shape, minval=0, maxval=255)
    return np.asarray(x).astype(dtype)


@pytest.mark.parametrize(
    "shape,match",
    [
        ((16, 32, 32, 3), "rank 5"),
        ((2, 16, 32, 32, 1), "3 \\(RGB\\) channels"),
        ((2, 8, 32, 32, 3), "at least 9 frames.*T=8"),
    ],
)
def test_embed_rejects_bad_shapes(shape, match):
    with pytest.raises(ValueError, match=match):
        fvd.embed(_videos(shape))


def test_embed_rejects_bad_values():
    videos = _videos((2, 9, 16, 16, 3), np.float32)
    videos[1, 3, 2, 2, 0] = np.nan
    with pytest.raises(ValueError, match=r"videos\[0:2\] contains NaN or Inf"):
        fvd.embed(videos)
    videos[1, 3, 2, 2, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or Inf"):
        fvd.embed(videos)
    videos[1, 3, 2, 2, 0] = 256.0
    with pytest.raises(ValueError, match=r", 256\], outside the declared value_range=\(0, 255\)"):
        fvd.embed(videos)
    with pytest.raises(ValueError, match=r"outside the declared value_range=\(-1, 1\)"):
        fvd.embed(videos[:, :, :, :, :], value_range=(-1, 1))
    with pytest.raises(TypeError, match="real numbers"):
        fvd.embed(videos.astype(np.complex64))


def test_fvd_needs_two_videos_per_set():
    one, two = _videos((1, 9, 8, 8, 3)), _videos((2, 9, 8, 8, 3))
    with pytest.raises(ValueError, match="real_videos must contain at least 2 videos.*got N=1"):
        fvd.fvd(one, two)
    with pytest.raises(ValueError, match="fake_videos must contain at least 2 videos.*got N=1"):
        fvd.fvd(two, one)


@pytest.mark.parametrize(
    "t,h,w,kernel,strides",
    [
        (16, 40, 37, (7, 7, 7), (2, 2, 2)),  # the RGB stem's shape, odd width
        (9, 17, 16, (7, 7, 7), (2, 2, 2)),  # the minimum clip length
        (10, 12, 9, (3, 5, 3), (3, 1, 2)),  # time stride 3, kernel taps not a multiple of it
        (5, 8, 9, (1, 3, 3), (1, 1, 1)),
        (4, 6, 6, (2, 3, 3), (4, 2, 2)),  # time stride larger than the kernel
    ],
)
def test_frame_convs_equal_the_3d_convolution(t, h, w, kernel, strides):
    from fvd.i3d import conv3d_as_frame_convs

    kx, kk = jax.random.split(jax.random.key(1))
    x = jax.random.normal(kx, (2, t, h, w, 3)) + 0.1
    k = jax.random.normal(kk, (*kernel, 3, 5)) + 0.1
    hi = jax.lax.Precision.HIGHEST
    want = jax.lax.conv_general_dilated(
        x, k, strides, "SAME", dimension_numbers=("NDHWC", "DHWIO", "NDHWC"), precision=hi
    )
    got = conv3d_as_frame_convs(x, k, strides, hi)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    "window,strides",
    [
        ((3, 3, 3), (1, 1, 1)),
        ((1, 3, 3), (1, 2, 2)),
        ((3, 3, 3), (2, 2, 2)),
        ((2, 2, 2), (2, 2, 2)),
    ],
)
def test_separable_max_pool_is_exact(window, strides):
    import flax.linen as nn
    from fvd.i3d import max_pool_same

    x = jax.random.normal(jax.random.key(2), (2, 9, 15, 14, 4))
    want = nn.max_pool(x, window, strides=strides, padding="SAME")
    np.testing.assert_array_equal(max_pool_same(x, window, strides), want)


def test_frame_stem_has_the_same_parameters_and_output():
    from fvd.i3d import Unit3D

    x = jax.ShapeDtypeStruct((1, 16, 224, 224, 3), jnp.float32)
    shapes = [jax.eval_shape(InceptionI3d(frame_stem=f).init, jax.random.key(0), x) for f in (0, 1)]
    assert jax.tree.structure(shapes[0]) == jax.tree.structure(shapes[1])
    assert jax.tree.leaves(shapes[0]) == jax.tree.leaves(shapes[1])
    # The stem unit alone, on real-sized frames, with the 3D and the frame-wise convolution.
    clip = jax.random.uniform(jax.random.key(3), (1, 9, 64, 48, 3), minval=-1, maxval=1)
    plain = Unit3D(64, (7, 7, 7), strides=(2, 2, 2), precision=jax.lax.Precision.HIGHEST)
    variables = plain.init(jax.random.key(4), clip)
    frames = plain.clone(frame_convs=True)
    np.testing.assert_allclose(
        frames.apply(variables, clip), plain.apply(variables, clip), rtol=1e-5, atol=1e-5
    )
