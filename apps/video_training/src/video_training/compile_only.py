"""`--compile_only`: compile a train or sampling step for hardware this host does not have.

The same init and update functions the `Trainer` jits are lowered on a mesh of compile-only
devices (a TPU topology or NVIDIA GPUs, from the workspace's `compile-targets` tool), compiled
by the target's real compiler, and the per-device memory is checked against the device's HBM.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from video_training.mesh import DATA_AXIS, MODEL_AXIS, batch_sharding

GIB = 1024**3

# Exit statuses of the `--compile_only` commands.
FITS, DOES_NOT_FIT, COMPILE_FAILED = 0, 1, 3


def load_targets():
    """The `compile_targets` tool, or a one-line explanation of how to install it."""
    try:
        import compile_targets
    except ImportError as e:
        raise SystemExit(
            "--compile_only needs the workspace's compile-only targets: run it as "
            "`python3 -m uv run --group aot <command> --compile_only --topology=NAME` "
            f"({e})"
        ) from None
    compile_targets.prefer_cpu_host()
    return compile_targets


def target_mesh(target: Any, model_parallelism: int = 1):
    """The `[data, model]` training mesh over every device of `target`."""
    n = target.num_devices
    if model_parallelism < 1 or n % model_parallelism:
        raise ValueError(
            f"model_parallelism must divide the {n} devices of {target.name!r}, "
            f"got {model_parallelism}"
        )
    return target.mesh((n // model_parallelism, model_parallelism), (DATA_AXIS, MODEL_AXIS))


def local_bytes(tree: Any, shardings: Any) -> int:
    """Bytes one device holds of `tree` laid out with `shardings`."""
    total = 0
    for leaf, sharding in zip(jax.tree.leaves(tree), jax.tree.leaves(shardings), strict=True):
        shape = sharding.shard_shape(leaf.shape) if hasattr(sharding, "shard_shape") else leaf.shape
        total += math.prod(shape) * np.dtype(leaf.dtype).itemsize
    return total


_ARRAY = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(\w+)\[([\d,]*)\]")
_OP_NAME = re.compile(r'op_name="([^"]*)"')
_ITEMSIZE = {"f64": 8, "s64": 8, "u64": 8, "f32": 4, "s32": 4, "u32": 4, "bf16": 2, "f16": 2}


def largest_arrays(hlo_text: str, count: int = 5) -> list[tuple[int, str, str]]:
    """The largest arrays the optimized program produces: `(bytes, shape, source op)`.

    A reading of the compiled HLO, not of XLA's buffer assignment: it names the tensors that
    dominate memory (activations saved for the backward, Gram matrices, ...), not their
    lifetimes.
    """
    found: dict[tuple[str, str], int] = {}
    for line in hlo_text.splitlines():
        m = _ARRAY.match(line)
        if not m or m.group(2) not in _ITEMSIZE or not m.group(3):
            continue
        dims = [int(d) for d in m.group(3).split(",")]
        size = math.prod(dims) * _ITEMSIZE[m.group(2)]
        op = _OP_NAME.search(line)
        where = op.group(1) if op else m.group(1)
        key = (f"{m.group(2)}[{','.join(map(str, dims))}]", where[-110:])
        found[key] = max(found.get(key, 0), size)
    ranked = sorted(((b, shape, where) for (shape, where), b in found.items()), reverse=True)
    return ranked[:count]


@dataclasses.dataclass
class StepReport:
    """A compiled step on a target, per device."""

    what: str
    target: Any
    mesh_shape: dict[str, int]
    global_batch: int
    state_bytes: int
    report: Any  # compile_targets.CompileReport
    largest: list[tuple[int, str, str]]

    @property
    def per_device_batch(self) -> float:
        return self.global_batch / self.mesh_shape.get(DATA_AXIS, 1)

    def as_dict(self) -> dict[str, Any]:
        r = self.report
        return {
            "what": self.what,
            "target": self.target.name,
            "device_kind": self.target.device_kind,
            "devices": self.target.num_devices,
            "mesh": self.mesh_shape,
            "global_batch": self.global_batch,
            "per_device_batch": self.per_device_batch,
            "compiled": r.ok,
            "fits": r.fits,
            "state_bytes": self.state_bytes,
            "argument_bytes": r.argument_bytes,
            "output_bytes": r.output_bytes,
            "temp_bytes": r.temp_bytes,
            "alias_bytes": r.alias_bytes,
            "peak_bytes": r.peak_bytes,
            "hbm_bytes": r.hbm_bytes,
            "flops": r.flops,
            "compile_seconds": round(r.compile_seconds, 1),
            "out_of_memory": r.out_of_memory or (r.ok and not r.fits),
            "largest_arrays": [
                {"bytes": size, "shape": shape, "op": where} for size, shape, where in self.largest
            ],
            "error": r.short_error or None,
        }

    def print(self, file=None) -> None:
        file = sys.stdout if file is None else file
        r, t = self.report, self.target
        g = lambda n: f"{n / GIB:9.3f} GiB"
        mesh = " x ".join(f"{k}={v}" for k, v in self.mesh_shape.items())
        print(
            f"{self.what} on {t.name} ({t.num_devices} x {t.device_kind}; mesh {mesh})", file=file
        )
        print(
            f"  batch: {self.global_batch} global, {self.per_device_batch:g} per data shard",
            file=file,
        )
        print(f"  compile time: {r.compile_seconds:.1f} s", file=file)
        if not r.ok:
            if r.out_of_memory:
                print(f"  DOES NOT FIT (the compiler's memory check): {r.short_error}", file=file)
            else:
                print(f"  DOES NOT COMPILE: {r.short_error}", file=file)
            details = _oom_details(r.error or "")
            if details.strip() and details.strip() not in r.short_error:
                print(details, file=file)
            self._print_largest(
                file, "largest arrays of the program given to the compiler (whole batch)"
            )
            return
        print("  per device:", file=file)
        print(f"    parameters + optimizer state {g(self.state_bytes)}", file=file)
        print(f"    arguments                    {g(r.argument_bytes)}", file=file)
        print(f"    outputs                      {g(r.output_bytes)}", file=file)
        print(f"    temporaries                  {g(r.temp_bytes)}", file=file)
        print(f"    donated (aliased)            {g(r.alias_bytes)}", file=file)
        print(f"    peak                         {g(r.peak_bytes)}", file=file)
        print(f"    device HBM                   {g(r.hbm_bytes)}", file=file)
        print(f"    headroom                     {g(r.headroom_bytes)}", file=file)
        if r.flops is not None:
            print(
                f"  FLOPs per step (XLA cost analysis, all devices; a lower bound: Pallas kernels"
                f" are not counted and a loop body (lax.scan) only once): {r.flops:.3e}",
                file=file,
            )
        if not r.fits:
            print(f"  DOES NOT FIT: peak {g(r.peak_bytes)} > HBM {g(r.hbm_bytes)}", file=file)
            self._print_largest(file, "largest arrays of the compiled program")
        else:
            print("  FITS", file=file)

    def _print_largest(self, file, title: str) -> None:
        if not self.largest:
            return
        print(f"  {title}:", file=file)
        for size, shape, where in self.largest:
            print(f"    {size / GIB:9.3f} GiB  {shape}  {where}", file=file)


def exit_status(report: StepReport) -> int:
    """0 fits, 1 does not fit the device's memory (a TPU compiler's memory check included),
    3 the compiler refused it for another reason."""
    r = report.report
    if not r.ok:
        return DOES_NOT_FIT if r.out_of_memory else COMPILE_FAILED
    return FITS if r.fits else DOES_NOT_FIT


def _oom_details(error: str, lines: int = 14) -> str:
    """The compiler's own list of the largest allocations, when it gave one."""
    text = [ln for ln in error.splitlines() if ln.strip()]
    start = next((i for i, ln in enumerate(text) if "Largest program allocations" in ln), None)
    if start is None:
        return "  " + "\n  ".join(text[:4])[:1500]
    return "  " + "\n  ".join(text[start : start + lines])[:3000]


def compile_step(
    *,
    what: str,
    target: Any,
    mesh: Any,
    step_fn: Callable[..., Any],
    args: tuple[Any, ...],
    state_bytes: int,
    global_batch: int,
    jit_kwargs: Mapping[str, Any] | None = None,
) -> StepReport:
    """Compiles `step_fn(*args)` (abstract, placed on `mesh`) for `target` and reads its memory."""
    ct = load_targets()
    report = ct.compile_for(step_fn, args, target, mesh=mesh, jit_kwargs=dict(jit_kwargs or {}))
    largest = []
    if report.ok and not report.fits:
        largest = largest_arrays(report.compiled.as_text())
    elif report.out_of_memory and report.lowered is not None:
        # The TPU compiler stops at its memory check: read the program it was given instead.
        largest = largest_arrays(report.lowered.as_text(dialect="hlo"))
    return StepReport(
        what=what,
        target=target,
        mesh_shape=dict(mesh.shape),
        global_batch=global_batch,
        state_bytes=state_bytes,
        report=report,
        largest=largest,
    )


def compile_train_step(
    *,
    what: str,
    target_name: str,
    init_fn: Callable[[jax.Array], Any],
    update_fn: Callable[[Any, jax.Array, Any], Any],
    batch: Mapping[str, jax.ShapeDtypeStruct],
    model_parallelism: int = 1,
    state_sharding: Callable[[Any], Any] | None = None,
    seed: int = 0,
    batch_axis: int = 0,
) -> StepReport:
    """The `Trainer`'s sharded train step, compiled for `target_name`.

    Args:
      what: a label for the report ("train-videotx bair_base").
      target_name: a libtpu topology (`v3:8x8`) or `h100` / `h200` (`:N` GPUs).
      init_fn, update_fn: as given to `Trainer`.
      batch: the global batch as `ShapeDtypeStruct`s (batch axis first; sharded over `data`).
      model_parallelism: size of the mesh's `model` axis.
      state_sharding: `abstract_state -> shardings` on the target's mesh (default: replicated).
      seed: as the Trainer's.
      batch_axis: the axis of the examples (sharded over `data`), as the Trainer's.
    """
    ct = load_targets()
    target = ct.get_target(target_name)
    mesh = target_mesh(target, model_parallelism)
    from video_training.trainer import step_functions

    fns = step_functions(
        init_fn, update_fn, mesh, seed=seed, state_sharding=state_sharding, batch_axis=batch_axis
    )
    sharding = batch_sharding(mesh, batch_axis)
    placed = {
        k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=sharding) for k, v in batch.items()
    }
    state = ct.abstract_like(fns.abstract_state, fns.state_sharding)
    rng = jax.ShapeDtypeStruct(
        fns.train_rng.shape, fns.train_rng.dtype, sharding=NamedSharding(mesh, P())
    )
    global_batch = int(next(iter(batch.values())).shape[batch_axis])
    return compile_step(
        what=what,
        target=target,
        mesh=mesh,
        step_fn=fns.step_fn,
        args=(state, rng, placed),
        state_bytes=local_bytes(fns.abstract_state, fns.state_sharding),
        global_batch=global_batch,
        jit_kwargs=fns.jit_kwargs,
    )
