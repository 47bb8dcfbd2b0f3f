"""Runs the warp kernels once per batch shard of the current mesh (Pallas cannot be partitioned)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
from jax.sharding import PartitionSpec as P


def batch_axes(batch: int) -> tuple[Any, tuple[str, ...]] | None:
    """`(mesh, axes)`: the current mesh's axes that split a leading batch of `batch`.

    Every axis of size > 1 may split the batch (the longest prefix whose product divides it);
    the rest leave the operands replicated there, so each device warps whole samples. None
    without a current multi-device mesh (`jax.set_mesh`).
    """
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or mesh.size == 1:
        return None
    sizes = dict(zip(mesh.axis_names, mesh.axis_sizes, strict=True))
    axes: tuple[str, ...] = ()
    for name in (a for a in mesh.axis_names if sizes[a] > 1):
        if batch % (math.prod(sizes[a] for a in axes) * sizes[name]):
            break
        axes += (name,)
    return mesh, axes


def per_batch_shard(fn: Callable[..., Any], args: Sequence[Any], num_outputs: int | None):
    """`fn(*args)` with every argument and output split along axis 0 over the mesh's batch axes.

    Args:
      fn: the kernel dispatch; returns one array (`num_outputs=None`) or a tuple of them.
      args: arrays with the batch leading.
      num_outputs: length of the returned tuple, or None for a single array.
    """
    found = batch_axes(args[0].shape[0])
    if found is None:
        return fn(*args)
    mesh, axes = found
    spec = P(axes[0] if len(axes) == 1 else (tuple(axes) or None))
    out_specs = spec if num_outputs is None else (spec,) * num_outputs
    return jax.shard_map(
        fn, mesh=mesh, in_specs=(spec,) * len(args), out_specs=out_specs, check_vma=False
    )(*args)
