"""Geometric hinge losses (Eqs. 13-14) and BigGAN orthogonal regularisation."""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = [
    "discriminator_hinge_loss",
    "generator_hinge_loss",
    "orthogonal_regularization",
]


def discriminator_hinge_loss(real: jax.Array, fake: jax.Array) -> jax.Array:
    """Eq. 13: `mean_d relu(1 + D(G(z))) + mean_d relu(1 - D(x))`, averaged over all outputs.

    Args:
      real: D outputs on real clips, any shape (e.g. [B, B, T]).
      fake: D outputs on generated clips, any shape.

    Returns:
      [] scalar loss.
    """
    return jnp.mean(jax.nn.relu(1.0 + fake)) + jnp.mean(jax.nn.relu(1.0 - real))


def generator_hinge_loss(fake: jax.Array) -> jax.Array:
    """Eq. 14: `-mean_d D(G(z))`, averaged over all D outputs."""
    return -jnp.mean(fake)


def orthogonal_regularization(params) -> jax.Array:
    """BigGAN's orthogonal regulariser `sum_W ||W^T W * (1 - I)||_F^2` over weight matrices.

    Every leaf with at least two axes is viewed as `[fan_in, out]` (leading axes folded);
    biases and other vectors are skipped. Multiply by the weight (1e-4) yourself.

    Args:
      params: pytree of parameters (e.g. an `nnx.State` of `nnx.Param`).

    Returns:
      [] scalar penalty.
    """
    total = jnp.zeros((), jnp.float32)
    for leaf in jax.tree.leaves(params):
        if jnp.ndim(leaf) < 2:
            continue
        w = jnp.reshape(leaf, (-1, leaf.shape[-1])).astype(jnp.float32)  # [fan_in, out]
        gram = w.T @ w  # [out, out]
        off_diagonal = gram * (1.0 - jnp.eye(gram.shape[0], dtype=gram.dtype))
        total = total + jnp.sum(jnp.square(off_diagonal))
    return total
