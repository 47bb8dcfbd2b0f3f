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
