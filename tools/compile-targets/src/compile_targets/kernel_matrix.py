"""The kernel compile matrix: every Pallas kernel at its models' real shapes, on every target.

    python3 -m uv run --group aot compile-matrix                  # everything (tens of minutes)
    python3 -m uv run --group aot compile-matrix --targets v3:4x4,h100 --kernels block_attention

prints one row per (target, kernel, dtype, shape, pass): compiled or the compiler's error,
compile time, and the VMEM the TPU compiler gave each Mosaic kernel. The kernels' tests compile
a representative subset of the same cases in CI.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from compile_targets.report import CompileReport, abstract, compile_for, format_bytes
from compile_targets.targets import Target, TargetUnavailableError, get_target

TARGETS = ("v3:4x4", "v4:2x2x1", "v5e:2x2", "v6e:2x2", "h100")

# Video Transformer (section 4.1): 8 heads of 128; the spatiotemporal and spatial variants run
# 4x32x32 slices with four block shapes, the single-frame variant 1x64x64 slices with four
# others (layers 5-8 repeat layers 1-4 in reverse). The batch only adds grid steps: one slice
# keeps the compile small and changes no tile.
VT_HEADS, VT_HEAD_DIM = 8, 128
VT_BLOCKS: tuple[tuple[tuple[int, int, int], tuple[int, int, int]], ...] = (
    ((4, 8, 4), (4, 32, 32)),
    ((4, 4, 8), (4, 32, 32)),
    ((1, 32, 4), (4, 32, 32)),
    ((1, 4, 32), (4, 32, 32)),
    ((1, 8, 16), (1, 64, 64)),
    ((1, 16, 8), (1, 64, 64)),
    ((1, 2, 64), (1, 64, 64)),
    ((1, 64, 2), (1, 64, 64)),
)

# TrIVD-GAN-FP's TSRU hidden states at 64x64 output (generator.py: recurrent units at 8x8, 16x16
# and 32x32 with widths g_channel_multipliers[:3] * ch = (8, 8, 4) * ch), per-core batch 8,
# 3x3 warps (N = 9 basis kernels for the factorized form).
TRIVD_BATCH = 8
TRIVD_WARP_SHAPES: tuple[tuple[int, int, int, int], ...] = tuple(
    (TRIVD_BATCH, s, s, m * ch) for ch in (48, 120) for s, m in ((8, 8), (16, 8), (32, 4))
)
DTYPES = ("bfloat16", "float32")


@dataclasses.dataclass(frozen=True)
class KernelCase:
    """One kernel problem: `kernel` at `shape` in `dtype`, forward or forward + backward."""

    kernel: str  # "block_attention", "pixelwise_warp", "factorized_warp"
    shape: tuple[int, ...]
    dtype: str
    grad: bool
    block_shape: tuple[int, int, int] | None = None

    @property
    def id(self) -> str:
        shape = "x".join(map(str, self.shape))
        block = f"-block{'x'.join(map(str, self.block_shape))}" if self.block_shape else ""
        return f"{self.kernel}{block}-{shape}-{self.dtype}-{'grad' if self.grad else 'fwd'}"


def block_attention_cases(grad: Iterable[bool] = (False, True)) -> list[KernelCase]:
    """The eight Video Transformer block shapes, bf16 and f32, causal with relative bias."""
    return [
        KernelCase("block_attention", (1, *slice_shape, VT_HEADS, VT_HEAD_DIM), d, g, block)
        for block, slice_shape in VT_BLOCKS
        for d in DTYPES
        for g in grad
    ]


def warp_cases(grad: Iterable[bool] = (False, True)) -> list[KernelCase]:
    """Both warps at every TrIVD-GAN-FP hidden-state shape, bf16 and f32."""
    return [
        KernelCase(kernel, shape, d, g)
        for kernel in ("pixelwise_warp", "factorized_warp")
        for shape in TRIVD_WARP_SHAPES
        for d in DTYPES
        for g in grad
    ]


def _with_grad(fn: Callable[..., jax.Array], argnums: Sequence[int]) -> Callable[..., Any]:
    def loss(*args):
        return jnp.sum(jnp.square(fn(*args).astype(jnp.float32)))

    return jax.value_and_grad(loss, argnums=tuple(argnums))


def build(case: KernelCase, mesh: Any, **kernel_kwargs) -> tuple[Callable[..., Any], tuple]:
    """`(fn, abstract args)` for `case` on `mesh` (one device unless the mesh says otherwise)."""
    dtype = jnp.dtype(case.dtype)
    if case.kernel == "block_attention":
        from block_attention import block_attention

        x = abstract(case.shape, dtype, mesh)
        heads = case.shape[4]
        tables = tuple(abstract((heads, 2 * s - 1), jnp.float32, mesh) for s in case.block_shape)

        def attention(q, k, v, rel_bias):
            return block_attention(
                q, k, v, case.block_shape, rel_bias=rel_bias, causal=True, **kernel_kwargs
            )

        fn = _with_grad(attention, (0, 1, 2, 3)) if case.grad else attention
        return fn, (x, x, x, tables)
    import warp_ops

    b, height, width, _ = case.shape
    h = abstract(case.shape, dtype, mesh)
    if case.kernel == "pixelwise_warp":
        args = (h, abstract((b, height, width, 9), dtype, mesh))
        fn = lambda h, w: warp_ops.pixelwise_warp(h, w, **kernel_kwargs)
    elif case.kernel == "factorized_warp":
        args = (h, abstract((b, 9, 9), dtype, mesh), abstract((b, height, width, 9), dtype, mesh))
        fn = lambda h, k, s: warp_ops.factorized_warp(h, k, s, **kernel_kwargs)
    else:
        raise ValueError(f"unknown kernel {case.kernel!r}")
    return (_with_grad(fn, range(len(args))) if case.grad else fn), args


def kernel_custom_calls(report: CompileReport) -> int:
    """Mosaic TPU, Mosaic GPU and Triton custom calls in the compiled program."""
    return sum(
        n
        for name, n in report.custom_calls.items()
        if name in ("tpu_custom_call", "mosaic_gpu", "mosaic_gpu_v2", "__gpu$xla.gpu.triton")
    )


def compile_case(case: KernelCase, target: Target, **kernel_kwargs) -> CompileReport:
    """Compiles `case` for one device of `target`."""
    mesh = target.mesh((1,))
    fn, args = build(case, mesh, **kernel_kwargs)
    return compile_for(fn, args, target, mesh=mesh)


def _kernel_memory(report: CompileReport) -> str:
    if report.kernel_vmem_bytes:
        by_kernel: dict[str, int] = {}
        for name, size in report.kernel_vmem_bytes.items():
            base = name.split(".")[0]
            by_kernel[base] = max(by_kernel.get(base, 0), size)
        return ", ".join(f"{k} {format_bytes(v)}" for k, v in sorted(by_kernel.items()))
    return ""


def _kernel_names(report: CompileReport) -> str:
    return ", ".join(f"{k} x{v}" for k, v in sorted(report.custom_calls.items()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="compile-matrix", description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated targets")
    parser.add_argument(
        "--kernels",
        default="block_attention,pixelwise_warp,factorized_warp",
        help="comma-separated: block_attention, pixelwise_warp, factorized_warp",
    )
    parser.add_argument("--dtypes", default=",".join(DTYPES))
    parser.add_argument("--passes", default="fwd,grad", help="fwd, grad or both")
    args = parser.parse_args(argv)
    kernels = set(args.kernels.split(","))
    dtypes = set(args.dtypes.split(","))
    grads = {p == "grad" for p in args.passes.split(",")}
    cases = [
        c
        for c in block_attention_cases(sorted(grads)) + warp_cases(sorted(grads))
        if c.kernel in kernels and c.dtype in dtypes
    ]
    print(
        "| target | kernel | block | shape | dtype | pass | result | compile s | kernels | "
        "VMEM per kernel |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    failures = 0
    start = time.perf_counter()
    for name in args.targets.split(","):
        try:
            target = get_target(name)
        except (TargetUnavailableError, ValueError) as e:
            print(f"| {name} | - | - | - | - | - | unavailable: {e} | | | |")
            failures += 1
            continue
        for case in cases:
            report = compile_case(case, target)
            jax.clear_caches()  # hundreds of executables otherwise stay in memory
            failures += not report.ok
            result = "compiled" if report.ok else f"ERROR: {report.short_error[:160]}"
            block = "x".join(map(str, case.block_shape)) if case.block_shape else ""
            print(
                f"| {name} | {case.kernel} | {block} | {'x'.join(map(str, case.shape))} | "
                f"{case.dtype} | {'fwd+bwd' if case.grad else 'fwd'} | {result} | "
                f"{report.compile_seconds:.1f} | {_kernel_names(report)} | "
                f"{_kernel_memory(report)} |",
                flush=True,
            )
    print(f"\n{failures} failures; {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
