"""TF1 `resize_bilinear` (no half-pixel centres) against hand-computed values and TF."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from fvd import resize_bilinear_tf1

IMAGE = np.array([[0.0, 10.0, 20.0], [30.0, 40.0, 50.0]], np.float32)[None, :, :, None]


def test_upscale_hand_computed():
    # Source coordinate = dst * in / out: columns 0, .6, 1.2, 1.8, 2.4 (the last clamps to 2),
    # rows 0, 2/3, 4/3 (clamps to 1).
    want = np.array([[0, 6, 12, 18, 20], [20, 26, 32, 38, 40], [30, 36, 42, 48, 50]], np.float32)
    got = resize_bilinear_tf1(IMAGE, (3, 5))
    np.testing.assert_allclose(np.asarray(got)[0, :, :, 0], want, rtol=1e-6, atol=1e-5)


def test_downscale_hand_computed():
    # 4 -> 2 samples source pixels 0 and 2 exactly (top-left aligned, no anti-aliasing);
    # 3 -> 2 samples 0 and 1.5.
    x = np.arange(12, dtype=np.float32).reshape(1, 4, 3, 1)  # x[r, c] = 3 r + c
    got = np.asarray(resize_bilinear_tf1(x, (2, 2)))[0, :, :, 0]
    np.testing.assert_allclose(got, [[0.0, 1.5], [6.0, 7.5]], rtol=1e-6)


def test_identity_and_leading_axes():
    x = jax.random.uniform(jax.random.key(0), (2, 3, 5, 7, 3), maxval=255.0)
    np.testing.assert_array_equal(np.asarray(resize_bilinear_tf1(x, (5, 7))), np.asarray(x))
    y = resize_bilinear_tf1(x, (11, 4))
    assert y.shape == (2, 3, 11, 4, 3) and y.dtype == jnp.float32


def test_differs_from_half_pixel_resize():
    # The convention matters: jax.image.resize uses half-pixel centres.
    x = jax.random.uniform(jax.random.key(1), (1, 6, 9, 3), maxval=255.0)
    ours = resize_bilinear_tf1(x, (16, 16))
    half = jax.image.resize(x, (1, 16, 16, 3), "bilinear", antialias=False)
    assert float(jnp.max(jnp.abs(ours - half))) > 1.0


@pytest.mark.slow  # importing TensorFlow alone takes ~50 s on the 2-core CI machine
def test_matches_tensorflow_resize_bilinear():
    tf = pytest.importorskip("tensorflow")
    x = np.asarray(jax.random.uniform(jax.random.key(2), (2, 13, 17, 3), maxval=255.0))
    for size in [(224, 224), (5, 8)]:
        want = tf.raw_ops.ResizeBilinear(
            images=x, size=size, align_corners=False, half_pixel_centers=False
        ).numpy()
        np.testing.assert_allclose(np.asarray(resize_bilinear_tf1(x, size)), want, atol=1e-3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="images must be"):
        resize_bilinear_tf1(np.zeros((4, 4), np.float32), (2, 2))
    with pytest.raises(ValueError, match="size must be"):
        resize_bilinear_tf1(IMAGE, (0, 2))


def test_integer_input_gives_the_float_input_values():
    # uint8 frames are gathered before the cast to float32: bit-for-bit the values of
    # resizing the same frames given as float32, and so the same I3D input.
    from fvd.embedding import _preprocess

    x = np.asarray(jax.random.randint(jax.random.key(1), (2, 3, 45, 61, 3), 0, 256), np.uint8)
    for size in ((224, 224), (20, 30)):
        got = resize_bilinear_tf1(x, size)
        assert got.dtype == jnp.float32
        np.testing.assert_array_equal(got, resize_bilinear_tf1(x.astype(np.float32), size))
    for a, b in zip(_preprocess(x, 0.0, 255.0), _preprocess(x.astype(np.float32), 0.0, 255.0)):
        np.testing.assert_array_equal(a, b)
