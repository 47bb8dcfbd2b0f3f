"""Cross-replica (global-batch) BatchNorm statistics (TrIVD section 4.1, as in BigGAN).

Two ways batches get split over devices, and what to do in each:
- `jax.jit` with the batch sharded over the mesh's `data` axis (what `Trainer` does): means
  over the batch axis are already global, XLA inserts the all-reduce. Use `axis_name=None`.
- `shard_map` / `pmap`, where each device sees only its shard: pass `axis_name="data"` and the
  per-device moments are averaged with `lax.pmean`, giving the same global statistics (for
  equal shard sizes).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def batch_moments(
    x: jax.Array, axes: Sequence[int] | None = None, *, axis_name: str | None = None
) -> tuple[jax.Array, jax.Array]:
    """Mean and (biased) variance over the global batch, accumulated in float32.

    Args:
      x: `[B, ..., C]` activations (e.g. `[B, T, H, W, C]` or `[B, H, W, C]`).
      axes: reduction axes (default all but the last: per-channel statistics).
      axis_name: mapped axis to average over inside `shard_map`/`pmap` (None under plain jit).

    Returns:
      `(mean, var)`, each `[C]` float32 for the default axes.
    """
    axes = tuple(range(x.ndim - 1)) if axes is None else tuple(axes)
    x32 = x.astype(jnp.float32)
    mean = jnp.mean(x32, axes)
    mean_sq = jnp.mean(jnp.square(x32), axes)
    if axis_name is not None:
        # Averaging E[x] and E[x^2] (not per-device variances) gives the exact global variance.
        mean, mean_sq = jax.lax.pmean((mean, mean_sq), axis_name)
    var = jnp.maximum(mean_sq - jnp.square(mean), 0.0)
    return mean, var


def normalize(x: jax.Array, mean: jax.Array, var: jax.Array, *, epsilon: float = 1e-5) -> jax.Array:
    """`(x - mean) / sqrt(var + epsilon)` in float32, cast back to `x.dtype`."""
    y = (x.astype(jnp.float32) - mean) * jax.lax.rsqrt(var + epsilon)
    return y.astype(x.dtype)


class CrossReplicaBatchNorm(nn.Module):
    """BatchNorm whose training statistics come from the global batch across all replicas.

    Running averages live in the "batch_stats" collection (`mean`, `var`), parameters `scale`
    and `bias` in "params". Call with `mutable=["batch_stats"]` when training.

    Attributes:
      use_running_average: evaluate with the running averages instead of batch statistics.
      axis_name: see the module docstring (None under jit with a sharded batch).
      momentum: running-average decay.
      epsilon: added to the variance.
      use_scale, use_bias: learn an affine transform (off for conditional BN, where the
        generator supplies scale and bias).
    """

    use_running_average: bool | None = None
    axis_name: str | None = None
    momentum: float = 0.99
    epsilon: float = 1e-5
    use_scale: bool = True
    use_bias: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, use_running_average: bool | None = None) -> jax.Array:
        """x: `[B, ..., C]` -> same shape."""
        use_ra = nn.merge_param(
            "use_running_average", self.use_running_average, use_running_average
        )
        c = x.shape[-1]
        ra_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((c,), jnp.float32))
        ra_var = self.variable("batch_stats", "var", lambda: jnp.ones((c,), jnp.float32))
        if use_ra:
            mean, var = ra_mean.value, ra_var.value
        else:
            mean, var = batch_moments(x, axis_name=self.axis_name)
            if not self.is_initializing():
                ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
                ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * var
        y = normalize(x, mean, var, epsilon=self.epsilon)
        if self.use_scale:
            y = y * self.param("scale", nn.initializers.ones, (c,), jnp.float32).astype(y.dtype)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (c,), jnp.float32).astype(y.dtype)
        return y
