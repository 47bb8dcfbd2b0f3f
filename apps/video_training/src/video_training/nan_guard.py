"""Stops training at the first non-finite loss, naming the step and keeping the last good checkpoint."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np


class NonFiniteLossError(FloatingPointError):
    """Raised when a metric or the train state holds NaN/Inf.

    Attributes:
      step: the step whose update produced the non-finite value.
      name: the metric (or "state") that was non-finite.
      value: that metric's value.
      last_good_step: step of the newest checkpoint kept on disk (None if none).
    """

    def __init__(
        self, step: int, name: str, value: float, last_good_step: int | None, where: str = ""
    ):
        self.step, self.name, self.value, self.last_good_step = step, name, value, last_good_step
        kept = (
            f"the last good checkpoint (step {last_good_step}) is kept{' in ' + where if where else ''}"
            if last_good_step is not None
            else "no checkpoint had been written yet"
        )
        super().__init__(
            f"Non-finite {name} = {value} at step {step}; training stopped and {kept}. "
            "Lower the learning rate or inspect the batch of that step."
        )


def first_non_finite(metrics: Mapping[str, Any]) -> tuple[str, float] | None:
    """The first `(name, value)` among scalar metrics that is NaN or +-Inf, else None."""
    for name, value in metrics.items():
        v = np.asarray(jax.device_get(value))
        if v.dtype.kind in "fc" and not np.all(np.isfinite(v)):
            return name, float(v.ravel()[~np.isfinite(v.ravel())][0])
    return None


def check_metrics(
    step: int, metrics: Mapping[str, Any], last_good_step: int | None, where: str = ""
) -> None:
    """Raises `NonFiniteLossError` if any metric of `step` is NaN/Inf."""
    bad = first_non_finite(metrics)
    if bad is not None:
        raise NonFiniteLossError(step, f"loss {bad[0]!r}", bad[1], last_good_step, where)


def tree_is_finite(tree: Any) -> jax.Array:
    """Scalar bool: every floating leaf of `tree` is finite (jit-able, works on sharded arrays)."""
    import jax.numpy as jnp

    leaves = [
        jnp.all(jnp.isfinite(x))
        for x in jax.tree.leaves(tree)
        if jnp.issubdtype(jnp.result_type(x), jnp.inexact)
    ]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)
