"""Runs the kernels once per shard of the current mesh: Pallas calls cannot be auto-partitioned."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
from jax.sharding import PartitionSpec as P

# Mesh axes that split attention heads (tensor parallelism); every other axis splits the batch.
HEAD_AXES = ("model",)


def kernel_axes(batch: int, heads: int | None = None):
    """How the current mesh splits a `[B, ..., heads, d]` kernel operand.

    Reads the mesh set with `jax.set_mesh` (or `jax.sharding.use_abstract_mesh`). Batch goes
    over the non-head axes (the longest prefix whose size divides `batch`), heads over the
    `model` axis when it divides them; anything that does not divide stays replicated, so the
    kernels see whole problems on every device (correct, only redundant).

    Args:
      batch: size of the leading (batch) axis.
      heads: number of heads (None: the operand has no head axis).

    Returns:
      `(mesh, batch_axes, head_axes)` with axis-name tuples (possibly empty), or None when no
      multi-device mesh is current.
    """
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or mesh.size == 1:
        return None
    sizes = dict(zip(mesh.axis_names, mesh.axis_sizes, strict=True))
    batch_axes: tuple[str, ...] = ()
    for name in (a for a in mesh.axis_names if a not in HEAD_AXES and sizes[a] > 1):
        if batch % (math.prod(sizes[a] for a in batch_axes) * sizes[name]):
            break
        batch_axes += (name,)
    head_axes = tuple(
        a
        for a in mesh.axis_names
        if a in HEAD_AXES and sizes[a] > 1 and heads is not None and heads % sizes[a] == 0
    )
    return mesh, batch_axes, head_axes


def axes_size(mesh: Any, axes: Sequence[str]) -> int:
    """Product of the sizes of `axes` in `mesh`."""
    sizes = dict(zip(mesh.axis_names, mesh.axis_sizes, strict=True))
    return math.prod(sizes[a] for a in axes)


def spec_axis(axes: Sequence[str]):
    """A PartitionSpec entry for `axes`: None, one name, or a tuple of names."""
    if not axes:
        return None
    return axes[0] if len(axes) == 1 else tuple(axes)


def per_shard(
    fn: Callable[..., Any], args: Sequence[Any], in_specs: Sequence[Any], out_specs: Any, mesh
):
    """`fn(*args)` under `jax.shard_map` on `mesh` (no replication checks: kernels are opaque)."""
    return jax.shard_map(
        fn, mesh=mesh, in_specs=tuple(in_specs), out_specs=out_specs, check_vma=False
    )(*args)


__all__ = ["HEAD_AXES", "P", "axes_size", "kernel_axes", "per_shard", "spec_axis"]
