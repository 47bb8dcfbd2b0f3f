"""Masking is exact: no log-probability depends on a later pixel, channel or slice."""

import ar_video
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import subscale
from flax import nnx

# Each variant is compared with the unchanged input at the SAME batch row: XLA:CPU may round one
# value differently in different rows of a batch (vector body against remainder loop, machine
# dependent; a CI machine showed 1-ulp differences between rows), so row 0 is not a bit-exact
# reference for row j. Masked paths contribute exact zeros, so per row the check stays bit-exact.


def generation_order(config):
    """`[T, H, W, Nc]` int: position of every 4-bit channel in the autoregressive order (Eq. 1)."""
    t, h, w = config.video_shape
    st, sh, sw = config.subscale_factor
    n = subscale.slice_index_map((t, h, w), config.subscale_factor)  # [T, H, W]
    tt, hh, ww = np.meshgrid(np.arange(t), np.arange(h), np.arange(w), indexing="ij")
    sl_t, sl_h, sl_w = config.slice_shape
    raster = ((tt // st) * sl_h + hh // sh) * sl_w + ww // sw
    pixel = n * (sl_t * sl_h * sl_w) + raster
    return pixel[..., None] * ar_video.NUM_CHANNELS + np.arange(ar_video.NUM_CHANNELS)


def test_encoder_sees_only_preceding_slices(tiny_model):
    config = tiny_model.config
    k_video, k_pick = jax.random.split(jax.random.key(3))
    channels = jax.random.randint(k_video, (1, *config.video_shape, 6), 0, 16)
    n = 3
    index_map = subscale.slice_index_map(config.video_shape, config.subscale_factor)
    later = np.argwhere(index_map >= n)
    earlier = np.argwhere(index_map < n)
    pick_late = later[int(jax.random.randint(k_pick, (), 0, len(later)))]
    pick_early = earlier[0]
    variants = [channels]
    for t, h, w in (pick_late, pick_early):
        variants.append(channels.at[0, t, h, w].set((channels[0, t, h, w] + 5) % 16))
    encode = nnx.jit(lambda m, c: m.encoder(c, jnp.full((3,), n)))
    z = encode(tiny_model, jnp.concatenate(variants))
    z0 = encode(tiny_model, jnp.repeat(channels, 3, 0))  # the unchanged input in every row
    np.testing.assert_array_equal(z[1], z0[1])  # a current/future pixel: no effect
    assert np.abs(z[2] - z0[2]).max() > 1e-6  # a preceding pixel: visible


def test_decoder_and_heads_are_causal_inside_a_slice(tiny_model):
    config = tiny_model.config
    k_video, k_ctx = jax.random.split(jax.random.key(4))
    t, h, w = config.slice_shape
    current = jax.random.randint(k_video, (1, t, h, w, 6), 0, 16)
    context = jax.random.normal(k_ctx, (1, t, h, w, config.hidden_size))
    i = (1, 2, 1)  # a pixel in the middle of the slice
    variants = [current]
    for k in range(6):
        variants.append(current.at[(0, *i, k)].set((current[(0, *i, k)] + 3) % 16))
    variants = jnp.concatenate(variants)

    def logits(model, cur):
        y = model.decoder(cur, jnp.repeat(context, cur.shape[0], 0))
        return y, model.heads(y, cur)

    run = nnx.jit(logits)
    y, out = run(tiny_model, variants)
    y0, out0 = run(tiny_model, jnp.repeat(current, len(variants), 0))
    y0, out0 = np.asarray(y0), np.asarray(out0)
    raster = np.arange(t * h * w).reshape(t, h, w)
    idx = raster[i]
    for k in range(6):
        y_k, out_k = np.asarray(y[1 + k]), np.asarray(out[1 + k])
        y_b, out_b = y0[1 + k], out0[1 + k]
        # y_L at the changed pixel and before it ignores the pixel's own values.
        np.testing.assert_array_equal(y_k[raster <= idx], y_b[raster <= idx])
        assert np.abs(y_k[raster > idx] - y_b[raster > idx]).max() > 1e-6
        # Channel heads: channels <= k of that pixel unchanged, channels > k changed.
        np.testing.assert_array_equal(out_k[i][: k + 1], out_b[i][: k + 1])
        if k < 5:
            assert np.abs(out_k[i][k + 1 :] - out_b[i][k + 1 :]).max() > 1e-6


def test_masked_conv_mask_keeps_13_preceding_taps():
    mask = ar_video.causal_conv_mask()
    assert mask.sum() == 13 and mask[1, 1, 1] == 0 and mask[0, 2, 2] == 1 and mask[1, 2, 0] == 0


def test_encoder_conditioning_is_per_slice_frame(tiny_kinetics_model):
    config = tiny_kinetics_model.config
    st = config.subscale_factor[0]
    k_video, k_cond = jax.random.split(jax.random.key(12))
    channels = jax.random.randint(k_video, (1, *config.video_shape, 6), 0, 16)
    cond = jax.random.normal(k_cond, (1, config.video_shape[0], config.conditioning_size))
    n = 5  # offset (1, 0, 1): slice frames are video frames 1, 3
    a = config.slice_offsets[n][0]
    assert a == 1
    variants = [cond, cond.at[0, st + a].add(1.0), cond.at[0, 2].add(1.0)]
    encode = nnx.jit(lambda m, c, x: m.encoder(c, jnp.full((3,), n), x))
    z = np.asarray(
        encode(tiny_kinetics_model, jnp.repeat(channels, 3, 0), jnp.concatenate(variants))
    )
    z0 = np.asarray(encode(tiny_kinetics_model, jnp.repeat(channels, 3, 0), jnp.repeat(cond, 3, 0)))
    assert np.abs(z[1] - z0[1]).max() > 1e-6  # the action of slice frame 1 (video frame 3)
    np.testing.assert_array_equal(z[2], z0[2])  # video frame 2 belongs to other slices
    with pytest.raises(ValueError, match="conditioning"):
        tiny_kinetics_model.encoder(channels, jnp.full((1,), n), None)


def _exhaustive_model(structure, random_model_factory):
    """Tiny models of each structure the paper uses (section 4.1), random never-zero weights."""
    kw = {"attention_implementation": "xla"}
    if structure == "spatiotemporal":  # s = (2, 2, 2): slices 2x4x4, blocks (2,2,4) and (1,4,4)
        config = ar_video.tiny_config(**kw)
    elif structure == "spatial":  # s = (1, 2, 2): no temporal subscaling
        config = ar_video.tiny_config(video_shape=(2, 8, 8), subscale_factor=(1, 2, 2), **kw)
    elif structure == "single_frame":  # s = (T, 1, 1): slices are frames, every block t = 1
        config = ar_video.tiny_config(video_shape=(3, 4, 4), subscale_factor=(3, 1, 1), **kw)
    else:  # the Kinetics first-slice decoder, with per-frame conditioning
        config = ar_video.tiny_config(first_slice_decoder=True, conditioning_size=2, **kw)
    return random_model_factory(config, jax.random.key(20))


@pytest.mark.parametrize(
    "structure", ["spatiotemporal", "spatial", "single_frame", "first_slice_decoder"]
)
def test_every_channel_changes_no_earlier_log_prob(structure, random_model_factory):
    # Exhaustive: each 4-bit channel of each pixel, in generation order, is changed once; every
    # log-probability before it in the order must stay bit-identical (against the unchanged
    # input at the same batch row).
    model = _exhaustive_model(structure, random_model_factory)
    config = model.config
    assert min(layer.block_shape[0] for layer in config.decoder_layers) == 1  # t = 1 blocks
    order = generation_order(config)
    k_video, k_cond = jax.random.split(jax.random.key(21))
    channels = np.asarray(jax.random.randint(k_video, (*config.video_shape, 6), 0, 16))
    conditioning = None
    if config.conditioning_size:
        conditioning = jax.random.normal(
            k_cond, (1, config.video_shape[0], config.conditioning_size)
        )
    targets = [tuple(int(i) for i in np.argwhere(order == p)[0]) for p in range(order.size)]
    variants = np.repeat(channels[None], len(targets) + 1, axis=0)
    for j, (t, h, w, k) in enumerate(targets, start=1):
        variants[j, t, h, w, k] = (channels[t, h, w, k] + 7) % 16
    fn = nnx.jit(lambda m, v, c: m.log_probs(ar_video.channels_to_video(v), c))
    chunk = 128  # every call has `chunk` rows: one compiled shape
    cond = None if conditioning is None else jnp.repeat(conditioning, chunk, 0)
    out = []
    for start in range(0, len(variants), chunk):
        part = jnp.asarray(variants[start : start + chunk])
        pad = jnp.repeat(part[:1], chunk - len(part), 0)  # empty except for the last part
        out.append(np.asarray(fn(model, jnp.concatenate([part, pad]), cond))[: len(part)])
    out = np.concatenate(out)
    same = np.asarray(fn(model, jnp.repeat(jnp.asarray(channels)[None], chunk, 0), cond))
    reaches_later = 0
    for j, (t, h, w, k) in enumerate(targets, start=1):
        cut = order[t, h, w, k]
        earlier = order < cut
        base = same[j % chunk]
        np.testing.assert_array_equal(out[j][earlier], base[earlier], err_msg=str((t, h, w, k)))
        changed = out[j] != base  # bit-exact where unaffected, so any difference is a dependence
        assert changed[t, h, w, k]  # its own probability is of the new value
        if k < 5:  # non-vacuous: the pixel's next channel is conditioned on it
            assert changed[t, h, w, k + 1], (t, h, w, k)
        reaches_later += bool(changed[order > cut].any())
    # And the dependence flows on: all but the last channel reach some later log-probability.
    assert reaches_later == len(targets) - 1, (reaches_later, len(targets))
