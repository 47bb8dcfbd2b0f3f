"""The functional train step: the loss falls on a fixed batch and it exports for TPU."""

import ar_video
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx


def _batch(config, key, batch=4):
    k_video, k_slice = jax.random.split(key)
    video = jax.random.randint(k_video, (batch, *config.video_shape, 3), 0, 256)
    return {
        "video": video.astype(jnp.uint8),
        "slice_index": jax.random.randint(k_slice, (batch,), 0, config.num_slices),
    }


def test_loss_falls_on_a_fixed_batch(tiny_model):
    # Faster than the paper's RMSProp: lr 1e-3, accumulator from 0 (full-size first steps).
    optimizer = ar_video.make_optimizer(learning_rate=1e-3, initial_scale=0.0)
    graphdef, state = ar_video.init_train_state(tiny_model, optimizer)
    step = jax.jit(ar_video.make_train_step(graphdef, optimizer, num_prime_frames=1))
    batch = _batch(tiny_model.config, jax.random.key(11))
    losses = []
    for _ in range(15):
        state, metrics = step(state, batch)
        losses.append(float(metrics["loss"]))
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.9 * losses[0], losses
    assert int(state["step"]) == 15
    # The metric bits/dim is the masked NLL per RGB channel in bits.
    model = nnx.merge(graphdef, state["params"])
    _, m = ar_video.slice_batch_loss(model, batch, 1)
    mask = ar_video.slice_loss_mask(model.config, batch["slice_index"], 1)
    dims = 3 * float(jnp.broadcast_to(mask, (4, *model.config.slice_shape)).sum())
    np.testing.assert_allclose(m["bits_per_dim"], 4 * m["loss"] / np.log(2) / dims, rtol=1e-5)


def test_loss_mask_excludes_primed_frames():
    config = ar_video.tiny_config()  # s_t = 2: slice frame j of offset a is video frame 2j + a
    offsets = [o[0] for o in config.slice_offsets]
    index = jnp.arange(config.num_slices)
    mask = ar_video.slice_loss_mask(config, index, 3)[:, :, 0, 0]
    expected = [[2 * j + a >= 3 for j in range(config.slice_shape[0])] for a in offsets]
    np.testing.assert_array_equal(mask, np.asarray(expected, np.float32))


def _tf1_rmsprop(w, grads, lr, decay, momentum, eps, initial_scale):
    """TensorFlow 1's `RMSPropOptimizer` (training_ops.ApplyRMSProp) written out in numpy."""
    ms = np.full_like(w, initial_scale)
    mom = np.zeros_like(w)
    for g in grads:
        ms = decay * ms + (1 - decay) * g * g
        mom = momentum * mom + lr * g / np.sqrt(ms + eps)
        w = w - mom
    return w


@pytest.mark.parametrize("initial_scale", [None, 0.0])
def test_optimizer_follows_tensorflow1_rmsprop(initial_scale):
    # The paper's lr/decay/momentum; eps 1e-10 and, by default, the accumulator from 1
    # (TensorFlow 1); initial_scale=0 is optax's start. Five steps of never-zero gradients.
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(7,)).astype(np.float64)
    grads = [rng.normal(size=(7,)) * 10.0 ** rng.uniform(-3, 0, size=(7,)) for _ in range(5)]
    kwargs = {} if initial_scale is None else {"initial_scale": initial_scale}
    opt = ar_video.make_optimizer(**kwargs)
    params = {"w": jnp.asarray(w0, jnp.float32)}
    state = opt.init(params)
    moved = np.zeros_like(w0)  # the summed updates, in float64 (w + 1e-5 loses digits in f32)
    for g in grads:
        updates, state = opt.update({"w": jnp.asarray(g, jnp.float32)}, state, params)
        moved += np.asarray(updates["w"], np.float64)
    scale = 1.0 if initial_scale is None else initial_scale
    expected = _tf1_rmsprop(w0, grads, 2e-5, 0.95, 0.9, 1e-10, scale)
    np.testing.assert_allclose(moved, expected - w0, rtol=1e-4)
    # The two starts really differ (the test would notice a swapped default).
    other = _tf1_rmsprop(w0, grads, 2e-5, 0.95, 0.9, 1e-10, 1.0 - scale)
    assert np.abs((other - w0) / (expected - w0) - 1).max() > 0.5


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"learning_rate": 0.0}, ["learning_rate", "> 0", "0.0"]),
        ({"eps": -1e-10}, ["eps", "> 0", "-1e-10"]),
        ({"decay": 1.0}, ["decay", "[0, 1)", "1.0"]),
        ({"momentum": -0.1}, ["momentum", "[0, 1)", "-0.1"]),
        ({"initial_scale": -1.0}, ["initial_scale", ">= 0", "-1.0"]),
    ],
)
def test_optimizer_rejects_bad_hyperparameters(kwargs, words):
    with pytest.raises(ValueError) as info:
        ar_video.make_optimizer(**kwargs)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("name", ["tiny", "spatiotemporal_base"])
def test_train_step_exports_for_tpu(name):
    # Attention "auto": the Pallas (Mosaic) TPU kernels when lowered for TPU.
    if name == "tiny":
        config = ar_video.tiny_config()
    else:
        config = ar_video.paper_config("spatiotemporal", "base")
    model = nnx.eval_shape(lambda: ar_video.VideoTransformer(config, rngs=nnx.Rngs(0)))
    optimizer = ar_video.make_optimizer()
    graphdef, params = nnx.split(model)
    state = {
        "params": params,
        "opt_state": jax.eval_shape(optimizer.init, params),
        "step": jax.ShapeDtypeStruct((), jnp.int32),
    }
    batch = jax.eval_shape(lambda: _batch(config, jax.random.key(0), batch=2))
    step = ar_video.make_train_step(graphdef, optimizer, num_prime_frames=1)
    exported = jax.export.export(jax.jit(step), platforms=["tpu"])(state, batch)
    assert exported.platforms == ("tpu",)
    assert "tpu_custom_call" in exported.mlir_module()  # the Mosaic kernels are inside


@pytest.mark.parametrize("num_microbatches", [2, 4])
def test_microbatches_give_the_whole_batch_step(tiny_model, num_microbatches):
    optimizer = ar_video.make_optimizer(learning_rate=1e-3)
    graphdef, state = ar_video.init_train_state(tiny_model, optimizer)
    batch = _batch(tiny_model.config, jax.random.key(5), batch=4)
    whole = jax.jit(ar_video.make_train_step(graphdef, optimizer, num_prime_frames=1))
    micro = jax.jit(
        ar_video.make_train_step(
            graphdef, optimizer, num_prime_frames=1, num_microbatches=num_microbatches
        )
    )
    s1, m1 = whole(state, batch)
    s2, m2 = micro(state, batch)
    for key in ("loss", "bits_per_dim", "grad_norm"):
        np.testing.assert_allclose(m2[key], m1[key], rtol=1e-5, err_msg=key)
    moved = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), s1["params"], state["params"])
    assert max(jax.tree.leaves(moved)) > 1e-4  # the step did change the parameters
    for a, b in zip(jax.tree.leaves(s1["params"]), jax.tree.leaves(s2["params"]), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
    # The micro-batches are a partition of the batch: every example exactly once.
    parts = ar_video.train_step.split_microbatches(batch, num_microbatches)
    assert parts["video"].shape == (
        num_microbatches,
        4 // num_microbatches,
        *batch["video"].shape[1:],
    )
    np.testing.assert_array_equal(
        np.sort(np.asarray(parts["slice_index"]).ravel()), np.sort(np.asarray(batch["slice_index"]))
    )


def test_microbatches_bad_values(tiny_model):
    optimizer = ar_video.make_optimizer()
    graphdef, state = ar_video.init_train_state(tiny_model, optimizer)
    with pytest.raises(ValueError, match="num_microbatches: expected an int >= 1, got 0"):
        ar_video.make_train_step(graphdef, optimizer, num_microbatches=0)
    with pytest.raises(TypeError, match="num_microbatches: expected an int >= 1, got 2.0"):
        ar_video.make_train_step(graphdef, optimizer, num_microbatches=2.0)
    step = ar_video.make_train_step(graphdef, optimizer, num_microbatches=3)
    batch = jax.eval_shape(lambda: _batch(tiny_model.config, jax.random.key(0), batch=4))
    with pytest.raises(ValueError, match="batch size 4 must be divisible by num_microbatches=3"):
        jax.eval_shape(step, state, batch)
