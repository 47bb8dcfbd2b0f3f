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

    Every leaf with at least two axes is viewed as `W: [fan_in, out]` (leading axes folded),
    so `W^T W: [out, out]` is the Gram of the output units, as in BigGAN (its PyTorch weights
    are `[out, in]` and it forms `w @ w.T`). Biases and other vectors are skipped. Multiply by
    the weight (1e-4) yourself.

    When `out > fan_in` (G's first linear layer, 256 -> 8*8*8*ch), the `[out, out]` Gram is
    never formed: `||G * (1 - I)||_F^2 = ||G||_F^2 - ||diag(G)||^2` with
    `||W^T W||_F^2 = ||W W^T||_F^2` (a `[fan_in, fan_in]` Gram) and `diag(W^T W)` the squared
    column norms, so memory is `O(min(fan_in, out)^2)` besides `W` itself.

    Args:
      params: pytree of parameters (e.g. an `nnx.State` of `nnx.Param`).

    Returns:
      [] scalar penalty (f32).
    """
    total = jnp.zeros((), jnp.float32)
    for leaf in jax.tree.leaves(params):
        if jnp.ndim(leaf) < 2:
            continue
        w = jnp.reshape(leaf, (-1, leaf.shape[-1])).astype(jnp.float32)  # [fan_in, out]
        total = total + _off_diagonal_gram_sq_norm(w)
    return total


def _off_diagonal_gram_sq_norm(w: jax.Array) -> jax.Array:
    """`||W^T W * (1 - I)||_F^2` for `w: [fan_in, out]`, through the smaller Gram."""
    fan_in, out = w.shape
    if out <= fan_in:
        gram = jnp.einsum("io,ip->op", w, w, preferred_element_type=jnp.float32)  # [out, out]
        off_diagonal = gram * (1.0 - jnp.eye(out, dtype=gram.dtype))
        return jnp.sum(jnp.square(off_diagonal))
    # The difference cancels the diagonal's share, so the products run at full f32 precision
    # (TPU/GPU default to bf16/tf32 passes); the [fan_in, fan_in] Gram makes that cheap.
    small = jnp.einsum(
        "io,jo->ij", w, w, precision=jax.lax.Precision.HIGHEST, preferred_element_type=jnp.float32
    )  # [fan_in, fan_in] = W W^T
    column_sq_norms = jnp.sum(jnp.square(w), axis=0)  # [out] = diag(W^T W)
    return jnp.sum(jnp.square(small)) - jnp.sum(jnp.square(column_sq_norms))
