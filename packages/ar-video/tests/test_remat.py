"""`remat=True` recomputes each layer in the backward pass: same loss, same gradients."""

import dataclasses

import ar_video
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


def test_remat_gives_the_same_loss_and_gradients():
    config = ar_video.tiny_config(first_slice_decoder=True)
    model = ar_video.VideoTransformer(config, rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    remat_graphdef, _ = nnx.split(
        nnx.eval_shape(
            lambda: ar_video.VideoTransformer(
                dataclasses.replace(config, remat=True), rngs=nnx.Rngs(0)
            )
        )
    )
    k_video, k_slice = jax.random.split(jax.random.key(3))
    batch = {
        "video": jax.random.randint(k_video, (4, *config.video_shape, 3), 0, 256).astype(jnp.uint8),
        "slice_index": jax.random.randint(k_slice, (4,), 0, config.num_slices),
    }
    batch["slice_index"] = batch["slice_index"].at[0].set(0)  # the first-slice decoder too

    def loss(graphdef):
        def fn(p):
            return ar_video.slice_batch_loss(nnx.merge(graphdef, p), batch, 1)[0]

        return jax.jit(jax.value_and_grad(fn))(params)

    value, grads = loss(graphdef)
    remat_value, remat_grads = loss(remat_graphdef)
    np.testing.assert_allclose(float(remat_value), float(value), rtol=1e-6)
    for a, b in zip(jax.tree.leaves(remat_grads), jax.tree.leaves(grads), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)

    # The option is really on: the layers are checkpointed in the traced program.
    def remat_loss(p):
        return ar_video.slice_batch_loss(nnx.merge(remat_graphdef, p), batch, 1)[0]

    jaxpr = str(jax.make_jaxpr(remat_loss)(params))
    assert "checkpoint" in jaxpr or "remat" in jaxpr
