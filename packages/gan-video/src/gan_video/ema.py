"""Exponential moving average of the generator's weights (appendix E.2)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["ema_update"]


def ema_update(
    ema_params, params, step: jax.Array, *, decay: float = 0.9999, start_step: int = 20_000
):
    """One EMA step: copies `params` until `start_step`, then `decay * ema + (1 - decay) * params`.

    Up to and including `step == start_step` the average is just the current weights, so the
    EMA effectively starts at `start_step` from the weights at that point.

    Args:
      ema_params: pytree, the running average.
      params: pytree of the same structure, the current weights.
      step: [] int, number of generator updates done (including the one just applied).
      decay: gamma (0.9999).
      start_step: step at which averaging begins (20000).

    Returns:
      The updated average (same structure and dtypes as `params`).
    """
    started = jnp.asarray(step) > start_step

    def update(e, p):
        avg = decay * e.astype(jnp.float32) + (1.0 - decay) * p.astype(jnp.float32)
        return jnp.where(started, avg, p.astype(jnp.float32)).astype(p.dtype)

    return jax.tree.map(update, ema_params, params)
