"""Compile-only devices for TPU topologies and NVIDIA GPUs, built on a CPU host."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.resources
import importlib.util
import os
import re
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import numpy as np
from jax.experimental import topologies
from jax.sharding import AbstractMesh, Mesh

# GPU targets: name -> (device kind, HBM bytes as the driver reports it, memory bandwidth B/s).
# Both are sm_90 Hopper chips with 132 SMs and 227 KiB of opt-in shared memory per block; they
# differ in memory (H100 SXM 80 GB HBM3, H200 141 GB HBM3e).
GPU_TARGETS: dict[str, tuple[str, int, int]] = {
    "h100": ("NVIDIA H100 80GB HBM3", 84_942_979_072, 3_352_320_000_000),
    "h200": ("NVIDIA H200", 150_754_820_096, 4_800_000_000_000),
}
GPU_NUM_CORES = 132
# Topology names the TPU compiler takes, as verified with libtpu 0.0.48 (any `vX:AxB[xC]` that
# libtpu knows works; these are the ones the tests and tables use).
TPU_EXAMPLES = ("v3:4x4", "v3:8x8", "v4:2x2x1", "v5e:2x2", "v5p:2x2x1", "v6e:2x2", "tpu7x:2x2x1")

_TPU_NAME = re.compile(r"^(v\d+[a-z]*|tpu\d+[a-z]*):\d+(x\d+){1,2}$")
_GPU_NAME = re.compile(r"^(?P<kind>h100|h200)(:(?P<count>\d+))?$")


class TargetUnavailableError(RuntimeError):
    """The compiler for a target is not installed (install the workspace's `aot` group)."""


def prefer_cpu_host() -> None:
    """Makes this process a CPU host that compiles for other targets.

    The CUDA plugin refuses to start without cuDNN and libtpu probes for attached chips unless
    the CPU platform is requested explicitly; the compile-only topologies need neither. Does
    nothing when `JAX_PLATFORMS` is set or JAX's backends are already up.
    """
    from jax._src import xla_bridge

    # Compile-only use of libtpu needs no exclusive lock on TPU chips: let several processes
    # (parallel tests, concurrent compiles) load it.
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
    if os.environ.get("JAX_PLATFORMS") or xla_bridge.backends_are_initialized():
        return
    jax.config.update("jax_platforms", "cpu")


def _require(module: str, what: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise TargetUnavailableError(
            f"{what} is not installed: run with the workspace's `aot` dependency group "
            "(`python3 -m uv run --group aot ...`, or `pip install compile-targets[tpu,cuda]`)"
        )


@dataclasses.dataclass(frozen=True, eq=False)
class Target:
    """A set of compile-only devices of one kind.

    Attributes:
      name: the name it was built from (`"v5e:2x2"`, `"h100"`, `"h100:8"`).
      platform: `"tpu"` or `"cuda"`.
      devices: the compile-only devices (one per TPU core / GPU).
      device_kind: as the devices report it (`"TPU v3"`, `"NVIDIA H100 80GB HBM3"`).
      hbm_bytes: memory of one device.
      vmem_bytes: TPU vector memory of one core (None on GPU).
      smem_bytes: GPU shared memory one block may opt in to (None on TPU).
    """

    name: str
    platform: str
    devices: tuple[Any, ...]
    device_kind: str
    hbm_bytes: int
    vmem_bytes: int | None = None
    smem_bytes: int | None = None
    num_cores: int | None = None

    @property
    def num_devices(self) -> int:
        return len(self.devices)

    def mesh(self, shape: Sequence[int] | None = None, axis_names: Sequence[str] = ("x",)) -> Mesh:
        """A `Mesh` over the first `prod(shape)` devices (default: all, one axis)."""
        shape = (self.num_devices,) if shape is None else tuple(shape)
        n = int(np.prod(shape))
        if n > self.num_devices or len(shape) != len(axis_names):
            raise ValueError(
                f"mesh shape {shape} with axes {tuple(axis_names)} needs {n} devices; "
                f"target {self.name!r} has {self.num_devices}"
            )
        devices = np.asarray(self.devices[:n], dtype=object).reshape(shape)
        return Mesh(devices, tuple(axis_names))

    def abstract_mesh(self, shape: Sequence[int] = (1,), axis_names: Sequence[str] = ("x",)):
        """An `AbstractMesh` carrying this target's device kind (what Pallas lowers against)."""
        from jax._src import mesh as mesh_lib

        device = mesh_lib.AbstractDevice(
            device_kind=self.device_kind, num_cores=self.num_cores, platform=self.platform
        )
        return AbstractMesh(tuple(shape), tuple(axis_names), abstract_device=device)

    @contextlib.contextmanager
    def lowering(self, mesh: Mesh | None = None) -> Iterator[None]:
        """Context to trace and lower under: the mesh (default one device) as the current mesh.

        Kernels read the device kind from the current abstract mesh (Pallas GPU needs it to pick
        the GPU's features, TPU kernels their generation's VMEM); `jax.set_mesh` provides it.
        """
        mesh = self.mesh((1,)) if mesh is None else mesh
        with jax.set_mesh(mesh):
            yield


@functools.cache
def _gpu_target_config(kind: str) -> str:
    text = importlib.resources.files("compile_targets").joinpath("h100.txtpb").read_text()
    if kind == "h100":
        return text
    device_kind, memory, bandwidth = GPU_TARGETS[kind]
    text = re.sub(r"device_memory_size: \d+", f"device_memory_size: {memory}", text)
    text = re.sub(r"memory_bandwidth: \d+", f"memory_bandwidth: {bandwidth}", text)
    text = re.sub(r'model_str: "[^"]*"', f'model_str: "sm_9.0a with {memory}B RAM"', text)
    text = text.replace('"NVIDIA H100 80GB HBM3"', f'"{device_kind}"')
    return text


def _gpu_target(name: str, kind: str, count: int) -> Target:
    _require("jax_plugins.xla_cuda13", "The CUDA 13 PJRT plugin (jax-cuda13-plugin)")
    prefer_cpu_host()
    config = _gpu_target_config(kind)
    try:
        topo = topologies.get_topology_desc(
            kind, platform="cuda", target_config=config, topology=f"1x1x{count}"
        )
    except Exception as e:  # the plugin raises bare RuntimeErrors and NotImplementedErrors
        raise TargetUnavailableError(
            f"cannot build compile-only devices for {name!r}: {e}. The CUDA plugin registers "
            "only when JAX_PLATFORMS is 'cpu' (or unset before the first JAX call)"
        ) from e
    devices = tuple(topo.devices)
    if len(devices) != count:
        raise TargetUnavailableError(
            f"target {name!r}: the CUDA topology gave {len(devices)} devices, expected {count}"
        )
    device_kind, memory, _ = GPU_TARGETS[kind]
    smem = int(re.search(r"shared_memory_per_block_optin: (\d+)", config).group(1))
    return Target(
        name=name,
        platform="cuda",
        devices=devices,
        device_kind=device_kind,
        hbm_bytes=memory,
        smem_bytes=smem,
        num_cores=GPU_NUM_CORES,
    )


def _tpu_target(name: str) -> Target:
    _require("libtpu", "The TPU compiler (libtpu)")
    prefer_cpu_host()
    from jax._src import tpu_info

    try:
        topo = topologies.get_topology_desc(topology_name=name, platform="tpu")
    except Exception as e:
        raise ValueError(
            f"target must be a TPU topology libtpu knows (e.g. {', '.join(TPU_EXAMPLES)}) or "
            f"one of {sorted(GPU_TARGETS)} (optionally ':N' GPUs), got {name!r}: {e}"
        ) from e
    devices = tuple(topo.devices)
    kind = devices[0].device_kind
    chip = tpu_info.chip_version_from_device_kind(kind)
    if chip is None:
        raise TargetUnavailableError(f"jax has no hardware table for TPU kind {kind!r}")
    cores = getattr(devices[0], "num_cores", None) or 1
    info = tpu_info.get_tpu_info_for_chip(chip, cores)
    return Target(
        name=name,
        platform="tpu",
        devices=devices,
        device_kind=kind,
        hbm_bytes=int(info.hbm_capacity_bytes) * cores,
        vmem_bytes=int(info.vmem_capacity_bytes) * cores,
        num_cores=cores,
    )


@functools.cache
def get_target(name: str) -> Target:
    """Compile-only devices for `name`.

    Args:
      name: a libtpu topology (`"v3:4x4"` is 32 TPU v3 cores, `"v5e:2x2"` 4 v5e chips, ...), or
        `"h100"` / `"h200"`, optionally with `":N"` for N GPUs in one host (`"h100:8"`).

    Returns:
      A `Target`.

    Raises:
      ValueError: `name` is not a target.
      TargetUnavailableError: its compiler is not installed.
    """
    if not isinstance(name, str):
        raise TypeError(f"target must be a str such as 'v5e:2x2' or 'h100', got {name!r}")
    gpu = _GPU_NAME.match(name)
    if gpu:
        count = int(gpu.group("count") or 1)
        if count < 1:
            raise ValueError(f"target {name!r}: the GPU count must be >= 1")
        return _gpu_target(name, gpu.group("kind"), count)
    if not _TPU_NAME.match(name):
        raise ValueError(
            f"target must be a TPU topology such as {', '.join(TPU_EXAMPLES)} or one of "
            f"{sorted(GPU_TARGETS)} (optionally ':N' GPUs, e.g. 'h100:8'), got {name!r}"
        )
    return _tpu_target(name)
