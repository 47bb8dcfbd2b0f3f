"""A pure functional training step on batches of slices with RMSProp (section 4.1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from ar_video.model import (
    VideoTransformer,
    negative_log_likelihood,
    slice_loss_mask,
    video_to_channels,
)

TrainState = dict[str, Any]  # {"params": nnx.State, "opt_state": optax state, "step": int32}


def make_optimizer(
    learning_rate: float = 2e-5,
    decay: float = 0.95,
    momentum: float = 0.9,
    eps: float = 1e-10,
    initial_scale: float = 1.0,
) -> optax.GradientTransformation:
    """RMSProp with the paper's learning rate 2e-5, decay 0.95 and momentum 0.9 (section 4.1).

    The paper gives nothing else. `eps` and `initial_scale` (the mean-square accumulator's
    start) default to TensorFlow 1's `RMSPropOptimizer` (eps 1e-10 inside the square root,
    accumulator starting at 1), the framework of the paper's time. optax's own default
    (`initial_scale=0`) makes the first update `learning_rate * sign(g) / sqrt(1 - decay)`
    (4.5 x lr whatever the gradient's size) where TensorFlow 1's is about `learning_rate * g`;
    the two differ for the first thousands of steps. Per step, with `g` the gradient:

        ms  <- decay * ms + (1 - decay) * g**2
        mom <- momentum * mom + learning_rate * g / sqrt(ms + eps)
        w   <- w - mom
    """
    for name, value in (("learning_rate", learning_rate), ("eps", eps)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")
    for name, value in (("decay", decay), ("momentum", momentum)):
        if not 0 <= value < 1:
            raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    if not initial_scale >= 0:
        raise ValueError(f"initial_scale must be >= 0, got {initial_scale!r}")
    return optax.rmsprop(
        learning_rate,
        decay=decay,
        eps=eps,
        initial_scale=initial_scale,
        eps_in_sqrt=True,
        momentum=momentum,
    )


def init_train_state(
    model: VideoTransformer, optimizer: optax.GradientTransformation
) -> tuple[nnx.GraphDef, TrainState]:
    """Splits `model` into its static graph and a pytree train state.

    Returns:
      `(graphdef, {"params", "opt_state", "step"})`; `nnx.merge(graphdef, state["params"])`
      rebuilds the model.
    """
    graphdef, params = nnx.split(model)
    state = {
        "params": params,
        "opt_state": optimizer.init(params),
        "step": jnp.zeros((), jnp.int32),
    }
    return graphdef, state


def _masked_nll(
    model: VideoTransformer, batch: dict[str, jax.Array], num_prime_frames: int
) -> tuple[jax.Array, jax.Array]:
    """Per-example masked NLL `[B]` (nats) and the number of scored RGB values (a scalar)."""
    channels = video_to_channels(batch["video"])
    slice_index = batch["slice_index"]
    log_probs = model.slice_log_probs(channels, slice_index, batch.get("conditioning"))
    mask = slice_loss_mask(model.config, slice_index, num_prime_frames)  # [B, t, 1, 1]
    nll = negative_log_likelihood(log_probs, mask)  # [B]
    dims = 3.0 * jnp.broadcast_to(mask, log_probs.shape[:-1]).sum()
    return nll, dims


def slice_batch_loss(
    model: VideoTransformer, batch: dict[str, jax.Array], num_prime_frames: int
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Mean over the batch of the per-slice NLL (Eq. 9), masked on primed frames.

    Args:
      model: a `VideoTransformer`.
      batch: `"video": [B, T, H, W, 3]` uint8 windows, `"slice_index": [B]` int32 (slices
        shuffled across videos), optional `"conditioning": [B, T, C]`.
      num_prime_frames: leading frames whose log-likelihood is excluded (section 4.1).

    Returns:
      The loss (nats per slice) and metrics `{"loss", "bits_per_dim"}`.
    """
    nll, dims = _masked_nll(model, batch, num_prime_frames)
    return _loss_and_metrics(nll.sum(), dims, nll.shape[0])


def _loss_and_metrics(
    nll_total: jax.Array, dims: jax.Array, batch_size: int
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The batch's mean loss and `{"loss", "bits_per_dim"}` from its summed NLL and dims."""
    loss = nll_total / batch_size
    bits = nll_total / np.log(2.0) / jnp.maximum(dims, 1.0)
    return loss, {"loss": loss, "bits_per_dim": bits}


def split_microbatches(batch: dict[str, jax.Array], num_microbatches: int) -> dict[str, jax.Array]:
    """`[B, ...]` -> `[num_microbatches, B / num_microbatches, ...]`, example i in micro-batch
    `i % num_microbatches`: a batch split in contiguous shards over the `data` axis keeps every
    micro-batch spread over all shards (each device scans its own rows)."""

    def split(x):
        return x.reshape(x.shape[0] // num_microbatches, num_microbatches, *x.shape[1:]).swapaxes(
            0, 1
        )

    return jax.tree.map(split, batch)


def make_train_step(
    graphdef: nnx.GraphDef,
    optimizer: optax.GradientTransformation,
    *,
    num_prime_frames: int = 1,
    num_microbatches: int = 1,
) -> Callable[[TrainState, dict[str, jax.Array]], tuple[TrainState, dict[str, jax.Array]]]:
    """Builds `step(state, batch) -> (state, metrics)`, a pure function to `jax.jit`.

    Args:
      graphdef: from `init_train_state`.
      optimizer: e.g. `make_optimizer()`.
      num_prime_frames: leading video frames excluded from the loss (BAIR: 1).
      num_microbatches: gradient accumulation: the batch is split into this many equal
        micro-batches (`split_microbatches`) whose gradients are summed in a `lax.scan`
        before the one optimizer update, so activations are held for one micro-batch at a
        time. Loss, bits/dim and gradients are those of the whole batch (up to float
        summation order). The batch size must be divisible by it.

    Returns:
      The step function; `batch` is as in `slice_batch_loss`.
    """
    if not isinstance(num_microbatches, int) or isinstance(num_microbatches, bool):
        raise TypeError(f"num_microbatches: expected an int >= 1, got {num_microbatches!r}")
    if num_microbatches < 1:
        raise ValueError(f"num_microbatches: expected an int >= 1, got {num_microbatches}")

    def nll_sum(params, batch, batch_size):
        # The (micro-)batch's share of the whole batch's mean loss, and its parts.
        nll, dims = _masked_nll(nnx.merge(graphdef, params), batch, num_prime_frames)
        total = nll.sum()
        return total / batch_size, (total, dims)

    grad_fn = jax.grad(nll_sum, has_aux=True)

    def accumulated_grads(params, batch, batch_size):
        if batch_size % num_microbatches:
            raise ValueError(
                f"batch size {batch_size} must be divisible by num_microbatches={num_microbatches}"
            )

        def body(carry, micro):
            grads, total, dims = carry
            g, (t, d) = grad_fn(params, micro, batch_size)
            return (jax.tree.map(jnp.add, grads, g), total + t, dims + d), None

        zero = jnp.zeros((), jnp.float32)
        init = (jax.tree.map(jnp.zeros_like, params), zero, zero)
        micro = split_microbatches(batch, num_microbatches)
        (grads, total, dims), _ = jax.lax.scan(body, init, micro)
        return grads, (total, dims)

    def step(state: TrainState, batch: dict[str, jax.Array]):
        batch_size = batch["slice_index"].shape[0]
        if num_microbatches == 1:
            grads, (total, dims) = grad_fn(state["params"], batch, batch_size)
        else:
            grads, (total, dims) = accumulated_grads(state["params"], batch, batch_size)
        _, metrics = _loss_and_metrics(total, dims, batch_size)
        updates, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        metrics = dict(metrics, grad_norm=optax.tree.norm(grads))
        return {"params": params, "opt_state": opt_state, "step": state["step"] + 1}, metrics

    return step
