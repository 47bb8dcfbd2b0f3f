"""Device mesh with a `data` axis (and room for `model`), batch sharding and multi-host setup.

Multi-host (TPU pods, multi-node GPU): start the same program on every host and call
`initialize_distributed()` before any other JAX call. On Cloud TPU and SLURM/Open MPI clusters
`jax.distributed.initialize()` finds the coordinator itself; elsewhere pass
`coordinator_address="host0:1234", num_processes=N, process_id=i`. Afterwards `jax.devices()`
lists every host's devices, `make_mesh()` spans all of them, each host feeds its
`global_batch // jax.process_count()` examples (`make_loader` shards by `jax.process_index()`)
and `host_to_global` assembles them into one global array sharded over `data`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"
MODEL_AXIS = "model"


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    cpu_collectives: str | None = None,
) -> None:
    """Calls `jax.distributed.initialize` once per process (a no-op for single-process runs).

    Args:
      coordinator_address: "ip:port" of process 0 (None: auto-detect on TPU / SLURM / MPI).
      num_processes, process_id: this run's size and rank (None: auto-detect).
      cpu_collectives: e.g. "gloo" to run cross-process collectives on CPU devices (tests).
    """
    if cpu_collectives is not None:
        jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    if (
        coordinator_address is None
        and num_processes is None
        and "JAX_COORDINATOR_ADDRESS" not in os.environ
    ):
        try:
            jax.distributed.initialize()
        except (ValueError, RuntimeError):  # nothing to auto-detect: single process
            return
        return
    jax.distributed.initialize(
        coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id
    )


def make_mesh(model_parallelism: int = 1, devices: Any = None) -> Mesh:
    """A `[data, model]` mesh over all (global) devices.

    Args:
      model_parallelism: size of the `model` axis (1: pure data parallelism).
      devices: devices to use (default `jax.devices()`, every host's).

    Returns:
      `Mesh` with axes ("data", "model") of shape `[n // model_parallelism, model_parallelism]`.
    """
    devices = jax.devices() if devices is None else list(devices)
    n = len(devices)
    if model_parallelism < 1 or n % model_parallelism:
        raise ValueError(
            f"model_parallelism must divide the device count {n}, got {model_parallelism}"
        )
    shape = (n // model_parallelism, model_parallelism)
    try:
        from jax.experimental import mesh_utils

        grid = mesh_utils.create_device_mesh(shape, devices=devices)
    except (ValueError, NotImplementedError, AssertionError):
        grid = np.asarray(devices).reshape(shape)
    return Mesh(grid, (DATA_AXIS, MODEL_AXIS), axis_types=(AxisType.Auto, AxisType.Auto))


def batch_sharding(mesh: Mesh, batch_axis: int = 0) -> NamedSharding:
    """Axis `batch_axis` (the examples; 0 unless batches are stacked per step) split over
    `data`, the rest replicated."""
    return NamedSharding(mesh, P(*([None] * batch_axis), DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """Fully replicated sharding (parameters and optimiser state under pure data parallelism)."""
    return NamedSharding(mesh, P())


def host_to_global(batch: Mapping[str, np.ndarray] | Any, mesh: Mesh, batch_axis: int = 0) -> Any:
    """Assembles each host's local batch into global arrays sharded over `data`.

    Args:
      batch: pytree of numpy arrays `[global_batch // process_count, ...]` (this host's part;
        the examples on axis `batch_axis`).
      mesh: the training mesh.
      batch_axis: the axis of the examples.

    Returns:
      The same pytree of `jax.Array` `[global_batch, ...]` with `batch_sharding(mesh, batch_axis)`.
    """
    sharding = batch_sharding(mesh, batch_axis)
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch
    )
