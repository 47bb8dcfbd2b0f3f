"""Benchmark of block_attention at the Video Transformer base layer against XLA, cuDNN and Pallas.

Run on an H100 (numbers are meaningless elsewhere):

  python packages/block-attention/benchmarks/bench_ops.py

Measures 64 slices of 4x32x32, 8 heads x 128, bf16, blocks (4, 8, 4) and (1, 32, 4), with the
relative bias, causal and not, forward and forward+backward. Baselines in the same run: the XLA
reference (with its blocking transposes), cuDNN `jax.nn.dot_product_attention`, and JAX's Pallas
`mha` (Triton) and `attention_mgpu` (Mosaic GPU, fp16) on inputs already rearranged into
blocks of 128 positions (no bias). `--dry-run` runs a tiny shape through the XLA paths only, so
the script can be checked on a CPU.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from block_attention import block_attention
from block_attention.reference import blocks_from_video


def time_ms(fn: Callable, *args, iters: int, warmup: int = 3) -> float:
    """Median wall time of `fn(*args)` in ms (after compilation and warm-up)."""
    for _ in range(warmup):
        jax.block_until_ready(fn(*args))
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def with_grad(forward: Callable) -> Callable:
    """Jitted forward + backward of `sum(forward(q, k, v, *rest))` w.r.t. everything."""

    def loss(*args):
        return jnp.sum(forward(*args).astype(jnp.float32))

    return jax.jit(jax.grad(loss, argnums=tuple(range(3))))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slices", type=int, default=64, help="batch of video slices")
    parser.add_argument("--video", type=int, nargs=3, default=(4, 32, 32), metavar=("T", "H", "W"))
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument(
        "--blocks", type=str, nargs="+", default=["4,8,4", "1,32,4"], help="block shapes t,h,w"
    )
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--hbm-tbps", type=float, default=3.35, help="peak HBM TB/s (H100 SXM)")
    parser.add_argument(
        "--dry-run", action="store_true", help="tiny shape, XLA paths only (runs on a CPU)"
    )
    args = parser.parse_args(argv)
    args.blocks = [tuple(int(s) for s in b.split(",")) for b in args.blocks]
    for b in args.blocks:
        if len(b) != 3:
            parser.error(f"--blocks entries must be t,h,w, got {b}")
    if args.dry_run:
        args.slices, args.video, args.heads, args.head_dim, args.iters = 2, (4, 8, 8), 2, 32, 2
        args.blocks = [(2, 4, 4), (1, 8, 4)]
    return args


def baselines(n: int, causal: bool, dry_run: bool) -> dict[str, Callable]:
    """Attention on pre-blocked [B * num_blocks, n, heads, d] inputs (no bias)."""
    fns = {}
    fns["xla sdpa (pre-blocked)"] = lambda q, k, v: jax.nn.dot_product_attention(
        q, k, v, is_causal=causal, implementation="xla"
    )
    if dry_run:
        return fns
    fns["cudnn (pre-blocked)"] = lambda q, k, v: jax.nn.dot_product_attention(
        q, k, v, is_causal=causal, implementation="cudnn"
    )
    from jax.experimental.pallas.ops.gpu import attention as triton_attention

    sizes = triton_attention.BlockSizes(
        block_q=min(n, 128),
        block_k=min(n, 128),
        block_q_dkv=32,
        block_kv_dkv=32,
        block_q_dq=32,
        block_kv_dq=32,
    )
    scale = 1.0 / np.sqrt(128)
    fns["pallas mha triton (pre-blocked)"] = lambda q, k, v: triton_attention.mha(
        q, k, v, None, sm_scale=scale, causal=causal, block_sizes=sizes
    )
    if not causal:  # attention_mgpu has no causal backward.
        from jax.experimental.pallas.ops.gpu import attention_mgpu

        config = attention_mgpu.TuningConfig(
            block_q=64,
            block_kv=min(n, 128),
            max_concurrent_steps=2,
            block_q_dkv=64,
            block_kv_dkv=64,
            block_q_dq=64,
            block_kv_dq=64,
        )

        def mgpu(q, k, v):
            # fp16 only (bf16 fails a dtype check inside that example); it applies no 1/sqrt(d).
            q16, k16, v16 = (x.astype(jnp.float16) for x in (q * scale, k, v))
            return attention_mgpu.attention(q16, k16, v16, config)

        fns["pallas attention_mgpu fp16 (pre-blocked)"] = mgpu
    return fns


def main(argv=None) -> None:
    args = parse_args(argv)
    dtype = jnp.bfloat16
    t_, h_, w_ = args.video
    shape = (args.slices, t_, h_, w_, args.heads, args.head_dim)
    keys = jax.random.split(jax.random.key(0), 4)
    q, k, v = (jax.random.normal(kk, shape, jnp.float32).astype(dtype) for kk in keys[:3])
    positions = args.slices * t_ * h_ * w_
    tensor_bytes = q.size * q.dtype.itemsize
    print(
        f"jax {jax.__version__} on {jax.devices()[0].device_kind}; q/k/v {shape} {dtype.__name__}"
    )
    header = f"{'block':>10} {'causal':>6} {'impl':<42} {'pass':<8} {'ms':>8} {'TFLOP/s':>8}"
    print(header + f" {'%HBM':>6} {'vs XLA':>7}")
    for block_shape in args.blocks:
        n = int(np.prod(block_shape))
        tables = tuple(
            0.1 * jax.random.normal(jax.random.fold_in(keys[3], i), (args.heads, 2 * s - 1))
            for i, s in enumerate(block_shape)
        )
        pre = [
            blocks_from_video(x, block_shape).reshape(-1, n, args.heads, args.head_dim)
            for x in (q, k, v)
        ]
        for causal in (False, True):
            # Dense matmul work: q k^T and p v per block and head; backward adds 5 more (recompute).
            fwd_flops = 4.0 * positions * n * args.heads * args.head_dim
            impls: dict[str, tuple[Callable, tuple]] = {}
            for impl in ("xla",) if args.dry_run else ("xla", "auto", "triton"):
                label = {"auto": "Mosaic GPU", "triton": "Pallas Triton"}.get(impl, impl)
                name = f"block_attention {label}" + (
                    " (native layout + transposes, bias)"
                    if impl == "xla"
                    else " (native layout, bias)"
                )
                impls[name] = (
                    lambda q, k, v, b, impl=impl, causal=causal, block_shape=block_shape: (
                        block_attention(
                            q, k, v, block_shape, rel_bias=b, causal=causal, implementation=impl
                        )
                    ),
                    (q, k, v, tables),
                )
            for name, fn in baselines(n, causal, args.dry_run).items():
                impls[name] = (fn, tuple(pre))
            xla_ms = {}
            for name, (fn, fn_args) in impls.items():
                for pass_name, compiled, flops, n_tensors in (
                    ("fwd", jax.jit(fn), fwd_flops, 4),
                    ("fwd+bwd", with_grad(fn), 3.5 * fwd_flops, 8),
                ):
                    try:
                        ms = time_ms(compiled, *fn_args, iters=args.iters)
                    # A baseline that cannot run on this GPU/JAX must not stop the others.
                    except Exception as e:  # noqa: BLE001
                        print(
                            f"{block_shape!s:>10} {causal!s:>6} {name:<42} {pass_name:<8} failed: "
                            f"{type(e).__name__}: {str(e).splitlines()[0][:80]}"
                        )
                        continue
                    if name.startswith("block_attention xla"):
                        xla_ms[pass_name] = ms
                    tflops = flops / (ms * 1e-3) / 1e12
                    hbm = n_tensors * tensor_bytes / (ms * 1e-3) / (args.hbm_tbps * 1e12) * 100
                    ratio = xla_ms.get(pass_name, float("nan")) / ms
                    print(
                        f"{block_shape!s:>10} {causal!s:>6} {name:<42} {pass_name:<8} {ms:8.3f} "
                        f"{tflops:8.1f} {hbm:6.1f} {ratio:6.2f}x"
                    )


if __name__ == "__main__":
    main()
