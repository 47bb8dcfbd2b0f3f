"""Public block-attention op: validation, implementation dispatch and the custom VJP."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from block_attention import pallas_gpu, pallas_mgpu, pallas_tpu
from block_attention.bias import bias_matrix
from block_attention.block_sizes import BlockSizes, tpu_hardware
from block_attention.reference import RelBias, block_attention_reference
from block_attention.sharding import P, axes_size, kernel_axes, per_shard, spec_axis

Implementation = Literal["auto", "xla", "pallas", "triton"]
IMPLEMENTATIONS = ("auto", "xla", "pallas", "triton")
SUPPORTED_DTYPES = (jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))
# A block is one tile in the kernels: its [n, n] scores must fit in VMEM / registers.
MAX_KERNEL_BLOCK_POSITIONS = 1024


@dataclasses.dataclass(frozen=True)
class KernelConfig:
    """Static (hashable) arguments of the Pallas kernels.

    Attributes:
      block_shape: (t, h, w) positions per attention block.
      causal: raster-order causal mask inside each block.
      block_sizes: work per program.
      interpret: False, True or a `pltpu.InterpretParams` (runs the TPU kernel on CPU).
      vmem_limit_bytes: scoped VMEM the TPU kernels may use (None: the compiler's default).
      f32_matmul: feed the TPU's matrix unit f32 operands (TPU v2/v3 take no bf16 matmuls).
      gpu_kernels: "mosaic" (Mosaic GPU, Hopper) or "triton" (the deprecated Pallas Triton
        kernels) on CUDA.
    """

    block_shape: tuple[int, int, int]
    causal: bool
    block_sizes: BlockSizes
    interpret: Any = False
    vmem_limit_bytes: int | None = None
    f32_matmul: bool = False
    gpu_kernels: str = "mosaic"


@dataclasses.dataclass(frozen=True)
class ShardConfig:
    """How the current mesh splits the kernels' operands (see `sharding.kernel_axes`)."""

    mesh: Any
    batch_axes: tuple[str, ...]
    head_axes: tuple[str, ...]

    def video_spec(self) -> P:
        return P(spec_axis(self.batch_axes), None, None, None, spec_axis(self.head_axes), None)

    def table_spec(self) -> P:
        return P(spec_axis(self.head_axes), None, None)


def _config_kwargs(config: KernelConfig) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def _dispatch(name: str, config: KernelConfig, *args):
    """Runs kernel `name` ("fwd"/"bwd"): TPU or GPU chosen at lowering time."""
    kwargs = _config_kwargs(config)
    gpu_kwargs = {k: kwargs.pop(k) for k in ("gpu_kernels",)}
    tpu_fn = functools.partial(getattr(pallas_tpu, f"block_attention_{name}"), **kwargs)
    if config.interpret:
        return tpu_fn(*args)
    q = args[0]
    gpu_module = pallas_gpu
    if gpu_kwargs["gpu_kernels"] == "mosaic" and pallas_mgpu.kernel_supports(
        q.shape, q.dtype, config.block_shape
    ):
        gpu_module = pallas_mgpu  # else Triton, which itself falls back to XLA where it must
    gpu_kwargs = {k: kwargs[k] for k in ("block_shape", "causal", "block_sizes", "interpret")}
    gpu_fn = functools.partial(getattr(gpu_module, f"block_attention_{name}"), **gpu_kwargs)
    # Platforms without a kernel (CPU) interpret the TPU kernel.
    interp_kwargs = dict(kwargs, interpret=True)
    default_fn = functools.partial(getattr(pallas_tpu, f"block_attention_{name}"), **interp_kwargs)
    return jax.lax.platform_dependent(*args, tpu=tpu_fn, cuda=gpu_fn, default=default_fn)


def _sharded_fwd(config: KernelConfig, shards: ShardConfig | None, q, k, v, g):
    """The forward kernels once per shard of the mesh (or once, without a mesh)."""
    if shards is None:
        return _dispatch("fwd", config, q, k, v, g)
    x = shards.video_spec()
    if g is None:
        fn = lambda q, k, v: _dispatch("fwd", config, q, k, v, None)
        return per_shard(fn, (q, k, v), (x, x, x), x, shards.mesh)
    fn = lambda q, k, v, g: _dispatch("fwd", config, q, k, v, g)
    return per_shard(fn, (q, k, v, g), (x, x, x, shards.table_spec()), x, shards.mesh)


def _sharded_bwd(config: KernelConfig, shards: ShardConfig | None, q, k, v, g, do):
    """The backward kernels per shard; dG's per-shard partial sums are added up here."""
    if shards is None:
        return _dispatch("bwd", config, q, k, v, g, do)
    x = shards.video_spec()
    if g is None:
        fn = lambda q, k, v, do: _dispatch("bwd", config, q, k, v, None, do)[:3]
        return (*per_shard(fn, (q, k, v, do), (x,) * 4, (x,) * 3, shards.mesh), None)

    def fn(q, k, v, g, do):
        dq, dk, dv, dg = _dispatch("bwd", config, q, k, v, g, do)
        return dq, dk, dv, dg[None]  # [1, heads / model, m, m]: one partial per batch shard

    dg_spec = P(spec_axis(shards.batch_axes), spec_axis(shards.head_axes), None, None)
    dq, dk, dv, dg = per_shard(
        fn, (q, k, v, g, do), (x, x, x, shards.table_spec(), x), (x, x, x, dg_spec), shards.mesh
    )
    return dq, dk, dv, jnp.sum(dg, axis=0)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _block_attention_pallas(q, k, v, g, config: KernelConfig, shards: ShardConfig | None):
    return _sharded_fwd(config, shards, q, k, v, g)


def _block_attention_fwd(q, k, v, g, config: KernelConfig, shards: ShardConfig | None):
    # A block is a single tile, so the backward recomputes the softmax from q, k (and G)
    # instead of storing o and the log-sum-exp: fewer bytes through HBM.
    return _sharded_fwd(config, shards, q, k, v, g), (q, k, v, g)


def _block_attention_bwd(config: KernelConfig, shards: ShardConfig | None, residuals, do):
    q, k, v, g = residuals
    return _sharded_bwd(config, shards, q, k, v, g, do)


_block_attention_pallas.defvjp(_block_attention_fwd, _block_attention_bwd)


def _validate(q, k, v, block_shape, rel_bias, causal, implementation, block_sizes):
    for name, x in (("q", q), ("k", k), ("v", v)):
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            raise TypeError(f"{name} must be an array, got {type(x).__name__}")
        if x.ndim != 6:
            raise ValueError(
                f"{name} must have shape [B, T, H, W, heads, head_dim] (6 dims), got {x.shape}"
            )
    if not (q.shape == k.shape == v.shape):
        raise ValueError(f"q, k, v must have equal shapes, got {q.shape=}, {k.shape=}, {v.shape=}")
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k, v must have equal dtypes, got {q.dtype=}, {k.dtype=}, {v.dtype=}")
    if jnp.dtype(q.dtype) not in SUPPORTED_DTYPES:
        names = [str(d) for d in SUPPORTED_DTYPES]
        raise ValueError(f"q.dtype must be one of {names}, got {q.dtype}")
    if (
        not isinstance(block_shape, (tuple, list))
        or len(block_shape) != 3
        or not all(isinstance(s, (int, np.integer)) and s > 0 for s in block_shape)
    ):
        raise ValueError(f"block_shape must be 3 positive ints (t, h, w), got {block_shape!r}")
    _, T, H, W, heads, _ = q.shape
    for axis, size, block in zip("THW", (T, H, W), block_shape, strict=True):
        if size % block:
            raise ValueError(
                f"{axis}={size} must be divisible by block_{axis.lower()}={block} "
                f"(block_shape={tuple(block_shape)})"
            )
    if rel_bias is not None:
        if not isinstance(rel_bias, (tuple, list)) or len(rel_bias) != 3:
            raise ValueError(f"rel_bias must be None or (bias_t, bias_h, bias_w), got {rel_bias!r}")
        for name, table, size in zip(("bias_t", "bias_h", "bias_w"), rel_bias, block_shape):
            expected = (heads, 2 * size - 1)
            if getattr(table, "shape", None) != expected:
                raise ValueError(
                    f"rel_bias {name} must have shape [heads, 2*block-1]={expected}, "
                    f"got {getattr(table, 'shape', type(table).__name__)}"
                )
            if not jnp.issubdtype(table.dtype, jnp.floating):
                raise ValueError(f"rel_bias {name} must be floating point, got {table.dtype}")
    if not isinstance(causal, bool):
        raise TypeError(f"causal must be a bool, got {causal!r}")
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")
    if block_sizes is not None and not isinstance(block_sizes, BlockSizes):
        raise TypeError(
            f"block_sizes must be None or a BlockSizes, got {type(block_sizes).__name__}"
        )
    n = int(np.prod(block_shape))
    if implementation in ("pallas", "triton") and n > MAX_KERNEL_BLOCK_POSITIONS:
        raise ValueError(
            f"the Pallas kernels hold a whole block in one tile: t*h*w={n} must be <= "
            f"{MAX_KERNEL_BLOCK_POSITIONS}; use implementation='xla'"
        )


def block_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    block_shape: tuple[int, int, int],
    *,
    rel_bias: RelBias | None = None,
    causal: bool = False,
    implementation: Implementation = "auto",
    interpret: Any = False,
    block_sizes: BlockSizes | None = None,
) -> jax.Array:
    """3D block-local multi-head self-attention (Video Transformer, Eqs. 2-4).

    The `(T, H, W)` volume is split into non-overlapping `(t, h, w)` blocks and every block and
    head computes `softmax(q k^T / sqrt(head_dim) + B) v` independently. The kernels read the
    blocks straight from the `[B, T, H, W, heads, head_dim]` layout and rebuild the relative bias
    `B` (Eq. 3) from the three small tables, never an `n x n` array in HBM.

    Args:
      q: [B, T, H, W, heads, head_dim] queries (f32, bf16 or f16).
      k: [B, T, H, W, heads, head_dim] keys.
      v: [B, T, H, W, heads, head_dim] values.
      block_shape: (t, h, w); must divide (T, H, W).
      rel_bias: None or (bias_t [heads, 2t-1], bias_h [heads, 2h-1], bias_w [heads, 2w-1]) with
        `B[i, j] = bias_t[dt + t - 1] + bias_h[dy + h - 1] + bias_w[dx + w - 1]`,
        `(dt, dy, dx) = pos_i - pos_j` (Eq. 3).
      causal: if True, query i sees key j iff j does not come after i in raster order over
        (t, y, x) inside the block (self included).
      implementation: "auto" (Pallas on TPU and GPU, XLA elsewhere; picked at lowering time),
        "xla" (the reference), "pallas" (Mosaic TPU / Mosaic GPU kernels; on platforms without
        a kernel this interprets the TPU kernel) or "triton" (as "pallas" with the deprecated
        Pallas Triton kernels on GPU). On GPU, problems the Mosaic GPU kernels do not take
        (`pallas_mgpu.kernel_supports`) use Triton; f32 inputs enter the Mosaic GPU matrix
        units as bf16 (f32 accumulation and softmax).
      interpret: True or `pltpu.InterpretParams()` runs the Pallas TPU kernel on the CPU.
      block_sizes: work per Pallas program; default `BlockSizes.get_default(...)`.

    Returns:
      [B, T, H, W, heads, head_dim], q's dtype.
    """
    _validate(q, k, v, block_shape, rel_bias, causal, implementation, block_sizes)
    block_shape = tuple(int(s) for s in block_shape)
    rel_bias = None if rel_bias is None else tuple(rel_bias)
    n = int(np.prod(block_shape))
    if implementation == "xla" or (
        implementation == "auto" and not interpret and n > MAX_KERNEL_BLOCK_POSITIONS
    ):
        return block_attention_reference(q, k, v, block_shape, rel_bias=rel_bias, causal=causal)

    batch, _, H, W, heads, head_dim = q.shape
    axes = kernel_axes(batch, heads)
    shards = None if axes is None else ShardConfig(*axes)
    local_heads = heads if shards is None else heads // axes_size(shards.mesh, shards.head_axes)
    grid_h, grid_w = H // block_shape[1], W // block_shape[2]
    hardware = tpu_hardware()
    f32_matmul = not hardware.bf16_matmul and jnp.dtype(q.dtype) != jnp.float32
    if block_sizes is None:
        block_sizes = BlockSizes.get_default(
            local_heads,
            grid_h,
            grid_w,
            n,
            head_dim,
            dtype=q.dtype,
            block_shape=block_shape,
            vmem_bytes=hardware.vmem_budget_bytes,
            f32_matmul=f32_matmul,
        )
    block_sizes.validate(local_heads, grid_h, grid_w)
    config = KernelConfig(
        block_shape,
        causal,
        block_sizes,
        interpret,
        vmem_limit_bytes=hardware.vmem_limit_bytes,
        f32_matmul=f32_matmul,
        gpu_kernels="triton" if implementation == "triton" else "mosaic",
    )
    g = None if rel_bias is None else bias_matrix(rel_bias, block_shape)

    def kernel_path(q, k, v, g):
        return _block_attention_pallas(q, k, v, g, config, shards)

    if implementation in ("pallas", "triton") or interpret:
        return kernel_path(q, k, v, g)

    def xla_path(q, k, v, g, rel_bias):
        del g  # The reference builds its bias from the tables.
        return block_attention_reference(q, k, v, block_shape, rel_bias=rel_bias, causal=causal)

    def kernel_branch(q, k, v, g, rel_bias):
        del rel_bias  # Folded into g.
        return kernel_path(q, k, v, g)

    return jax.lax.platform_dependent(
        q, k, v, g, rel_bias, tpu=kernel_branch, cuda=kernel_branch, default=xla_path
    )
