"""Times pixelwise (and factorized) warping: Pallas kernels vs XLA shifted sum vs XLA unfold.

GPU run (the issue's shapes, bf16 and f32, forward and forward+backward):
  python packages/warp-ops/benchmarks/bench_ops.py
CPU smoke run (tiny shapes; "pallas" then runs the TPU kernels in the Pallas interpreter):
  python packages/warp-ops/benchmarks/bench_ops.py --small

Prints one Markdown table row per (shape, dtype, pass, implementation): median milliseconds,
GB/s against the minimum bytes (every input read once, every output written once) and the
time of the XLA shifted sum and of the unfold version relative to this implementation.
"""

from __future__ import annotations

import argparse
import functools
import math
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import warp_ops

GPU_SHAPES = [(64, 64, 64, 96), (64, 32, 32, 192), (64, 16, 16, 384)]
SMALL_SHAPES = [(2, 8, 8, 16), (2, 4, 4, 24)]


def unfold_warp(h: jax.Array, weights: jax.Array) -> jax.Array:
    """The involution/PAC-style warp: a [B, H, W, C * k*k] patch tensor, then an einsum."""
    b, height, width, c = h.shape
    taps = weights.shape[-1]
    k = math.isqrt(taps)
    patches = jax.lax.conv_general_dilated_patches(
        h,
        filter_shape=(k, k),
        window_strides=(1, 1),
        padding="SAME",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )  # [B, H, W, C * k*k], channel-major
    patches = patches.reshape(b, height, width, c, taps)
    out = jnp.einsum("bhwcq,bhwq->bhwc", patches, weights, preferred_element_type=jnp.float32)
    return out.astype(h.dtype)


def _implementations(small: bool):
    pallas_mode = {"implementation": "pallas"}
    return {
        "pallas": functools.partial(warp_ops.pixelwise_warp, **pallas_mode),
        "xla": functools.partial(warp_ops.pixelwise_warp, implementation="xla"),
        "unfold": unfold_warp,
        "factorized-pallas": functools.partial(warp_ops.factorized_warp, **pallas_mode),
        "factorized-xla": functools.partial(warp_ops.factorized_warp, implementation="xla"),
        # The deprecated Triton kernels, for comparison with the Mosaic GPU default on a GPU.
        "triton": functools.partial(warp_ops.pixelwise_warp, implementation="triton"),
        "factorized-triton": functools.partial(warp_ops.factorized_warp, implementation="triton"),
    }


def _time(fn, args, iters: int) -> float:
    """Median wall time of fn(*args) in ms (after one compile-and-warm-up call)."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def _inputs(shape, dtype, factorized: bool, seed: int = 0):
    b, height, width, _ = shape
    kh, kw, kg = jax.random.split(jax.random.key(seed), 3)
    h = jax.random.normal(kh, shape, dtype)
    g = jax.random.normal(kg, shape, dtype)
    if factorized:
        kk, ks = jax.random.split(kw)
        kernels = jax.nn.softmax(jax.random.normal(kk, (b, 9, 9)), axis=1).astype(dtype)
        selection = jax.nn.softmax(jax.random.normal(ks, (b, height, width, 9))).astype(dtype)
        return (h, kernels, selection), g
    weights = jax.nn.softmax(jax.random.normal(kw, (b, height, width, 9))).astype(dtype)
    return (h, weights), g


def _min_bytes(args, g, with_bwd: bool) -> int:
    """Forward: read inputs, write the output; backward: read inputs and g, write the grads."""
    inputs = sum(x.nbytes for x in args)
    fwd = inputs + g.nbytes
    return fwd + (inputs + g.nbytes + inputs if with_bwd else 0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny shapes for a CPU smoke run")
    parser.add_argument("--iters", type=int, default=None)
    parser.add_argument(
        "--impls",
        default=None,
        help="comma-separated subset of the implementations (default: all; Triton only on a GPU)",
    )
    flags = parser.parse_args()
    shapes = SMALL_SHAPES if flags.small else GPU_SHAPES
    iters = flags.iters or (2 if flags.small else 50)
    impls = _implementations(flags.small)
    if flags.impls:
        chosen = flags.impls.split(",")
    else:  # the Triton kernels have no CPU path
        chosen = [n for n in impls if "triton" not in n or jax.default_backend() == "gpu"]
    unknown = sorted(set(chosen) - set(impls))
    if unknown:
        parser.error(f"--impls: unknown {unknown}; expected a subset of {sorted(impls)}")
    print(
        f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}"
    )
    print("| shape | dtype | pass | impl | ms | GB/s (min bytes) | xla / this | unfold / this |")
    print("|---|---|---|---|---|---|---|---|")
    for shape in shapes:
        for dtype in (jnp.bfloat16, jnp.float32):
            for with_bwd in (False, True):
                rows = {}
                for name in chosen:
                    factorized = name.startswith("factorized")
                    args, g = _inputs(shape, dtype, factorized)
                    fn = impls[name]
                    if with_bwd:
                        fn = _fwd_bwd(fn)
                        run_args = (*args, g)
                    else:
                        run_args = args
                    jitted = jax.jit(fn)
                    if name in ("pallas", "unfold"):  # the comparison is only fair if all agree
                        ref = jax.jit(_fwd_bwd(impls["xla"]) if with_bwd else impls["xla"])
                        _check_close(jitted(*run_args), ref(*run_args), dtype)
                    ms = _time(jitted, run_args, iters)
                    gbs = _min_bytes(args, g, with_bwd) / (ms * 1e-3) / 1e9
                    rows[name] = (ms, gbs)
                for name, (ms, gbs) in rows.items():
                    xla = rows.get("factorized-xla" if name.startswith("f") else "xla")
                    unfold = rows.get("unfold")
                    print(
                        f"| {list(shape)} | {jnp.dtype(dtype).name} | "
                        f"{'fwd+bwd' if with_bwd else 'fwd'} | {name} | {ms:.3f} | {gbs:.1f} | "
                        f"{_ratio(xla, ms)} | "
                        f"{_ratio(unfold, ms) if not name.startswith('f') else '-'} |"
                    )


def _ratio(other, ms: float) -> str:
    return f"{other[0] / ms:.2f}" if other else "-"


def _fwd_bwd(fn):
    def f(*args):
        *primals, g = args
        out, vjp = jax.vjp(fn, *primals)
        return out, vjp(g)

    return f


def _check_close(actual, expected, dtype):
    tol = 5e-2 if dtype == jnp.bfloat16 else 1e-4
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected)):
        np.testing.assert_allclose(
            np.asarray(a, np.float32), np.asarray(e, np.float32), atol=tol, rtol=tol
        )


if __name__ == "__main__":
    main()
