"""Shared tiny models for the ar-video tests."""

import ar_video
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx


def random_model(config, key, scale=0.1):
    """A `VideoTransformer` whose parameters are all random (no zero biases or tables).

    The shapes come from `nnx.eval_shape`; the values are `0.1 * N(0, 1)` from one draw, which
    compiles one op instead of one per parameter shape (eager init costs ~15 s of CPU here).
    """
    graphdef, state = nnx.split(
        nnx.eval_shape(lambda: ar_video.VideoTransformer(config, rngs=nnx.Rngs(0)))
    )
    leaves, treedef = jax.tree.flatten(state)
    sizes = [int(np.prod(x.shape)) for x in leaves]
    flat = np.asarray(scale * jax.random.normal(key, (sum(sizes),)))
    offsets = np.cumsum([0, *sizes])
    values = [
        jnp.asarray(flat[a:b].reshape(x.shape), x.dtype)
        for x, a, b in zip(leaves, offsets[:-1], offsets[1:])
    ]
    return nnx.merge(graphdef, jax.tree.unflatten(treedef, values))


@pytest.fixture(scope="session")
def tiny_model():
    return random_model(ar_video.tiny_config(attention_implementation="xla"), jax.random.key(0))


@pytest.fixture(scope="session")
def tiny_kinetics_model():
    """The first-slice-decoder variant with per-frame conditioning."""
    config = ar_video.tiny_config(
        attention_implementation="xla", first_slice_decoder=True, conditioning_size=3
    )
    return random_model(config, jax.random.key(1))


@pytest.fixture(scope="session")
def log_probs_fn():
    """One jitted `VideoTransformer.log_probs`: tests with equal shapes share its compilation."""
    return nnx.jit(lambda model, video, conditioning=None: model.log_probs(video, conditioning))


@pytest.fixture(scope="session")
def random_model_factory():
    return random_model
