"""Tests of the motion-field utilities: expected_flow, compose_flows, flow_to_rgb."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import warp_ops


@pytest.mark.parametrize("k", [3, 5])
def test_expected_flow_of_one_hot_weights_is_the_offset(k):
    r = (k - 1) // 2
    taps = jax.random.randint(jax.random.key(0), (2, 4, 6), 0, k * k)
    weights = jax.nn.one_hot(taps, k * k)
    flow = warp_ops.expected_flow(weights)
    assert flow.shape == (2, 4, 6, 2)
    np.testing.assert_array_equal(flow[..., 0], taps // k - r)  # dy = m - r
    np.testing.assert_array_equal(flow[..., 1], taps % k - r)  # dx = n - r


def test_expected_flow_is_a_weighted_mean_of_offsets():
    weights = jax.nn.softmax(jax.random.normal(jax.random.key(1), (1, 3, 3, 9)))
    flow = warp_ops.expected_flow(weights)
    w = np.asarray(weights).reshape(1, 3, 3, 3, 3)  # [.., m, n]
    dy = (w.sum(-1) * np.array([-1, 0, 1])).sum(-1)
    dx = (w.sum(-2) * np.array([-1, 0, 1])).sum(-1)
    np.testing.assert_allclose(flow, np.stack([dy, dx], -1), atol=1e-6)


def test_compose_flows_of_constant_fields_scales_by_powers_of_two():
    vectors = jax.random.normal(jax.random.key(2), (3, 2))
    flows = [jnp.broadcast_to(vectors[i], (1, 4 * 2**i, 3 * 2**i, 2)) for i in range(3)]
    out = warp_ops.compose_flows(flows)
    assert out.shape == (1, 16, 12, 2)
    expected = 4 * vectors[0] + 2 * vectors[1] + vectors[2]  # coarse x2 per level
    np.testing.assert_allclose(out, jnp.broadcast_to(expected, out.shape), rtol=1e-6, atol=1e-6)


def test_compose_flows_upsamples_bilinearly():
    coarse = jax.random.normal(jax.random.key(3), (2, 3, 4, 2))
    fine = jax.random.normal(jax.random.key(4), (2, 6, 8, 2))
    out = warp_ops.compose_flows([coarse, fine])
    up = jax.image.resize(coarse, (2, 6, 8, 2), method="bilinear")
    np.testing.assert_allclose(out, 2 * up + fine, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(warp_ops.compose_flows([fine]), fine)


def test_compose_flows_validates_sizes():
    with pytest.raises(ValueError, match="non-empty"):
        warp_ops.compose_flows([])
    with pytest.raises(ValueError, match=r"expected shape \(1, 4, 4, 2\)"):
        warp_ops.compose_flows([jnp.ones((1, 2, 2, 2)), jnp.ones((1, 4, 5, 2))])


def test_flow_to_rgb_colour_wheel():
    # Zero flow is white; unit flows along the axes: right red, down yellow, left cyan,
    # up violet (Baker et al.'s wheel, as in the Middlebury flow-colour code).
    flow = jnp.asarray([[[[0.0, 0.0], [0.0, 1.0], [0.0, -1.0], [1.0, 0.0], [-1.0, 0.0]]]])
    rgb = np.asarray(warp_ops.flow_to_rgb(flow, max_magnitude=1.0))
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 1, 5, 3)
    np.testing.assert_array_equal(rgb[0, 0, 0], [255, 255, 255])
    right, left, down, up = rgb[0, 0, 1:]
    assert right[0] == 255 and right[1] == 0 and right[2] < 50
    assert down[0] == 255 and 200 < down[1] < 255 and down[2] == 0
    assert left[0] == 0 and 180 < left[1] < 255 and left[2] == 255
    assert 50 < up[0] < 150 and up[1] == 0 and up[2] == 255
    # Larger magnitude saturates: saturation (max - min) grows with magnitude.
    mags = jnp.asarray([[[[0.0, 0.25], [0.0, 0.5], [0.0, 1.0]]]])
    sat = np.ptp(np.asarray(warp_ops.flow_to_rgb(mags, max_magnitude=1.0)).astype(int), axis=-1)
    assert sat[0, 0, 0] < sat[0, 0, 1] < sat[0, 0, 2]


def test_flow_to_rgb_normalises_per_sample():
    flow = jax.random.normal(jax.random.key(5), (2, 5, 5, 2))
    rgb = warp_ops.flow_to_rgb(flow)
    scaled = warp_ops.flow_to_rgb(flow * jnp.asarray([3.0, 0.5])[:, None, None, None])
    np.testing.assert_array_equal(rgb, scaled)
    with pytest.raises(ValueError, match="2 channels"):
        warp_ops.flow_to_rgb(jnp.ones((1, 2, 2, 3)))
