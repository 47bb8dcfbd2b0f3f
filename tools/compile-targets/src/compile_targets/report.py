"""Compile a function for a `Target` and report per-device memory, FLOPs and compile time."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from compile_targets.targets import Target

GIB = 1024**3


def abstract(
    shape: Sequence[int], dtype: Any, mesh: Mesh, spec: P | None = None
) -> jax.ShapeDtypeStruct:
    """A `ShapeDtypeStruct` placed on `mesh` with `spec` (default replicated)."""
    return jax.ShapeDtypeStruct(tuple(shape), dtype, sharding=NamedSharding(mesh, spec or P()))


def abstract_like(tree: Any, shardings: Any) -> Any:
    """`jax.eval_shape` output (or arrays) with the given shardings attached, leaf by leaf."""
    return jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings
    )


@dataclasses.dataclass
class CompileReport:
    """What the compiler said about one function on one target (bytes are per device).

    `peak_bytes` is arguments + outputs + temporaries - aliased (donated) bytes, the figure
    XLA's own out-of-memory check compares with the device's memory. `flops` is XLA's cost
    analysis of the whole program before partitioning (all devices together; the GPU compiler
    reports none of its own); `device_flops` the TPU compiler's count for one device. Neither
    counts custom kernels (Pallas) unless they carry a cost estimate.
    """

    target: str
    ok: bool
    compile_seconds: float
    error: str | None = None
    argument_bytes: int = 0
    output_bytes: int = 0
    temp_bytes: int = 0
    alias_bytes: int = 0
    generated_code_bytes: int = 0
    hbm_bytes: int = 0
    flops: float | None = None
    device_flops: float | None = None
    custom_calls: dict[str, int] = dataclasses.field(default_factory=dict)
    kernel_vmem_bytes: dict[str, int] = dataclasses.field(default_factory=dict)
    compiled: Any = dataclasses.field(default=None, repr=False)
    lowered: Any = dataclasses.field(default=None, repr=False)

    @property
    def out_of_memory(self) -> bool:
        """The compiler refused because the program needs more device memory than there is."""
        text = (self.error or "").lower()
        return "resource_exhausted" in text and ("hbm" in text or "out of memory" in text)

    @property
    def peak_bytes(self) -> int:
        return self.argument_bytes + self.output_bytes + self.temp_bytes - self.alias_bytes

    @property
    def fits(self) -> bool:
        return self.ok and self.peak_bytes <= self.hbm_bytes

    @property
    def headroom_bytes(self) -> int:
        return self.hbm_bytes - self.peak_bytes

    @property
    def short_error(self) -> str:
        """The compiler's message cut to its first informative line."""
        return short_error(self.error) if self.error else ""


def short_error(message: str) -> str:
    """First line of a compiler error that says what ran out or was rejected."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for pattern in (
        r"Ran out of memory.*",
        r"[Ss]hared memory size limit exceeded.*",
        r"RESOURCE_EXHAUSTED.*",
        r"exceeds available.*",
        r".*Mosaic.*",
    ):
        for line in lines:
            m = re.search(pattern, line)
            if m:
                return line[:300]
    return (lines[0] if lines else message)[:300]


_CUSTOM_CALL = re.compile(r'custom_call_target="([^"]+)"')
_KERNEL_NAME = re.compile(r'"name":\s*"([A-Za-z0-9_]+)"|kernel_name="([A-Za-z0-9_]+)"')


_VMEM_USED = re.compile(r'"used_scoped_memory_configs":\[([^\]]*)\]')
_SCOPED = re.compile(r'"memory_space":"1","offset":"\d+","size":"(\d+)"')
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%([\w.\-]+)\s*=")


def _kernel_vmem(text: str) -> dict[str, int]:
    """Scoped VMEM (memory space 1) per Mosaic custom call, from the compiled HLO text."""
    used: dict[str, int] = {}
    for line in text.splitlines():
        if "tpu_custom_call" not in line:
            continue
        configs, name = _VMEM_USED.search(line), _INSTRUCTION.match(line)
        if configs and name:
            used[name.group(1)] = sum(int(s) for s in _SCOPED.findall(configs.group(1)))
    return used


def _custom_calls(text: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for target in _CUSTOM_CALL.findall(text):
        counts[target] = counts.get(target, 0) + 1
    return counts


def _program_flops(lowered: Any) -> float | None:
    """FLOPs of the unpartitioned program by XLA's HLO cost model (run on the CPU client)."""
    from jax._src.lib import _jax

    try:
        hlo = lowered.compiler_ir("hlo")
        cost = _jax.hlo_module_cost_analysis(jax.devices("cpu")[0].client, hlo.as_hlo_module())
    except (RuntimeError, ValueError, TypeError):  # a program the CPU cost model cannot read
        return None
    return float(cost["flops"]) if cost and "flops" in cost else None


def compile_for(
    fn: Callable[..., Any],
    args: Sequence[Any],
    target: Target,
    *,
    mesh: Mesh | None = None,
    jit_kwargs: dict[str, Any] | None = None,
    raise_errors: bool = False,
) -> CompileReport:
    """Traces, lowers and compiles `fn(*args)` for `target` with its real compiler.

    Args:
      fn: the function (jitted with `jit_kwargs`).
      args: abstract arguments (`abstract(...)`), placed on `mesh`'s devices.
      target: from `get_target`.
      mesh: the mesh the arguments live on, made current while tracing (default one device).
      jit_kwargs: e.g. `donate_argnums`, `out_shardings`.
      raise_errors: re-raise the compiler's error instead of reporting it.

    Returns:
      A `CompileReport` (`ok=False` with the error text when the compiler refused).
    """
    start = time.perf_counter()
    lowered = None
    try:
        with target.lowering(mesh):
            lowered = jax.jit(fn, **(jit_kwargs or {})).lower(*args)
        compiled = lowered.compile()
    except Exception as e:  # the compilers raise JaxRuntimeError, ValueError, ...
        if raise_errors:
            raise
        return CompileReport(
            target=target.name,
            ok=False,
            compile_seconds=time.perf_counter() - start,
            error=f"{type(e).__name__}: {e}",
            hbm_bytes=target.hbm_bytes,
            lowered=lowered,
        )
    seconds = time.perf_counter() - start
    memory = compiled.memory_analysis()
    cost = compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    try:
        text = compiled.as_text()
    except (RuntimeError, NotImplementedError):  # some backends cannot print executables
        text = ""
    return CompileReport(
        target=target.name,
        ok=True,
        compile_seconds=seconds,
        argument_bytes=int(memory.argument_size_in_bytes),
        output_bytes=int(memory.output_size_in_bytes),
        temp_bytes=int(memory.temp_size_in_bytes),
        alias_bytes=int(memory.alias_size_in_bytes),
        generated_code_bytes=int(memory.generated_code_size_in_bytes),
        hbm_bytes=target.hbm_bytes,
        flops=_program_flops(lowered),
        device_flops=float(cost["flops"]) if cost and "flops" in cost else None,
        custom_calls=_custom_calls(text),
        kernel_vmem_bytes=_kernel_vmem(text),
        compiled=compiled,
        lowered=lowered,
    )


def format_bytes(n: float) -> str:
    """`1.23 GiB` / `45.6 MiB` / `789 KiB`."""
    n = float(n)
    for unit, size in (("GiB", GIB), ("MiB", 1024**2), ("KiB", 1024)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"
