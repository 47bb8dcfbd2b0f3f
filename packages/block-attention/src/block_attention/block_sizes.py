"""How much work one Pallas program does, sized to the TPU generation's VMEM and the dtype."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
from jax.experimental.pallas import tpu as pltpu

# VMEM of the smallest TPU core (v2, v3, v4): the budget when the target is not known while
# tracing (no TPU mesh is current), so that the defaults compile on every generation.
MIN_TPU_VMEM_BYTES = 16 * 2**20
# Scoped VMEM the kernels ask the compiler for: the whole 16 MiB on v2-v4, 3/4 of the larger
# memories of later chips (the rest stays for the compiler's own scratch).
_VMEM_LIMIT_FRACTION = 0.75
# Share of the limit that the tile estimate of `vmem_bytes_estimate` may take: the estimate
# counts the pipelined tiles and the [n, n] temporaries, not Mosaic's internal scratch.
_VMEM_ESTIMATE_FRACTION = 0.8


@dataclasses.dataclass(frozen=True)
class TpuHardware:
    """What the kernels need to know of the TPU being compiled for.

    Attributes:
      device_kind: e.g. "TPU v3"; None when no TPU is current (CPU tracing, GPU lowering).
      vmem_limit_bytes: scoped VMEM to request from Mosaic (None: its default).
      vmem_budget_bytes: what `BlockSizes.get_default` may plan for.
      bf16_matmul: the matrix unit takes bf16 operands (False on v2/v3: upcast to f32).
    """

    device_kind: str | None
    vmem_limit_bytes: int | None
    vmem_budget_bytes: int
    bf16_matmul: bool


def tpu_hardware() -> TpuHardware:
    """The TPU generation of the current mesh (`jax.set_mesh`) or default device, from JAX's table.

    Off TPU the kernels are only traced (the TPU branch of `platform_dependent`) or interpreted,
    so the smallest generation's budget is used.
    """
    try:
        info = pltpu.get_tpu_info()
    except (ValueError, NotImplementedError):  # not a TPU: CPU, GPU, or an unknown kind
        return TpuHardware(None, None, int(MIN_TPU_VMEM_BYTES * _VMEM_ESTIMATE_FRACTION), True)
    capacity = int(info.vmem_capacity_bytes) * max(int(info.num_cores), 1)
    limit = capacity if capacity <= MIN_TPU_VMEM_BYTES else int(capacity * _VMEM_LIMIT_FRACTION)
    return TpuHardware(
        device_kind=str(info.chip_version),
        vmem_limit_bytes=limit,
        vmem_budget_bytes=int(limit * _VMEM_ESTIMATE_FRACTION),
        bf16_matmul=bool(info.is_matmul_supported(jnp.bfloat16, jnp.bfloat16)),
    )


def _padded(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def vmem_bytes_estimate(
    block_shape: tuple[int, int, int],
    head_dim: int,
    dtype,
    block_sizes: BlockSizes,
    *,
    backward: bool = True,
) -> int:
    """VMEM one program of the TPU kernels needs (an estimate calibrated against Mosaic).

    Pipelined tiles: `[t, h * blocks_h, w * blocks_w, heads, d]` per operand, double-buffered,
    with `heads` padded to the 8-row sublane tile (bf16 packs row pairs, so it is not padded
    further) and `d` to 128 lanes; 4 inputs and 3 outputs in the backward, 3 and 1 in the
    forward. Plus the f32 temporaries of one block: a few `[n, n]` score tiles and the
    per-head `[n, d]` operands. Against the TPU compiler's own figures (v5e, the eight Video
    Transformer block shapes, 8 and 16 heads of 128, f32 and bf16) it overestimates by 2-10%.

    Args:
      block_shape: (t, h, w).
      head_dim: d.
      dtype: operand dtype.
      block_sizes: the work per program.
      backward: size the backward kernel (the larger one).
    """
    t, h, w = block_shape
    itemsize = jnp.dtype(dtype).itemsize
    positions = t * h * block_sizes.blocks_h * w * block_sizes.blocks_w
    tile = positions * _padded(block_sizes.heads, 8) * _padded(head_dim, 128) * itemsize
    operands = 7 if backward else 4
    n = t * h * w
    scores = _padded(n, 8) * _padded(n, 128) * 4
    per_head = _padded(n, 8) * _padded(head_dim, 128) * 4
    temporaries = (6 if backward else 3) * scores + (8 if backward else 4) * per_head
    return 2 * operands * tile + temporaries


@dataclasses.dataclass(frozen=True)
class BlockSizes:
    """Work per Pallas program (grid step).

    A block of `n = t*h*w` positions is always one tile (its whole `n x n` score matrix lives
    in registers/VMEM), so these sizes only choose how many independent (block, head) pairs one
    program handles; larger values amortise the per-step overhead but need more VMEM.

    Attributes:
      heads: heads per program; must divide the number of heads. On TPU it must equal the number
        of heads or be a multiple of 8 (the heads axis is the second-minor tile dimension).
      blocks_h: consecutive blocks along H per program; must divide `H // h`.
      blocks_w: consecutive blocks along W per program; must divide `W // w`.
    """

    heads: int = 1
    blocks_h: int = 1
    blocks_w: int = 1

    def __post_init__(self):
        for name in ("heads", "blocks_h", "blocks_w"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"BlockSizes.{name} must be a positive int, got {value!r}")

    def validate(self, num_heads: int, grid_h: int, grid_w: int) -> None:
        """Checks that the sizes divide the problem.

        Args:
          num_heads: heads of q/k/v (per shard).
          grid_h: number of blocks along H (`H // h`).
          grid_w: number of blocks along W (`W // w`).
        """
        for name, size, total, what in (
            ("heads", self.heads, num_heads, "num_heads"),
            ("blocks_h", self.blocks_h, grid_h, "H // h"),
            ("blocks_w", self.blocks_w, grid_w, "W // w"),
        ):
            if total % size:
                raise ValueError(f"block_sizes.{name}={size} must divide {what}={total}")

    @classmethod
    def get_default(
        cls,
        num_heads: int,
        grid_h: int,
        grid_w: int,
        n: int,
        head_dim: int,
        *,
        dtype=jnp.float32,
        block_shape: tuple[int, int, int] | None = None,
        vmem_bytes: int = int(MIN_TPU_VMEM_BYTES * _VMEM_ESTIMATE_FRACTION),
        f32_matmul: bool = False,
    ) -> BlockSizes:
        """All heads per program, and up to 256 positions along W that fit `vmem_bytes`.

        Args:
          num_heads: heads of q/k/v (per shard).
          grid_h: number of blocks along H.
          grid_w: number of blocks along W.
          n: positions per block.
          head_dim: features per head.
          dtype: operand dtype.
          block_shape: (t, h, w) (default: n positions in one row, only for the estimate).
          vmem_bytes: VMEM budget of one program (`tpu_hardware().vmem_budget_bytes`).
          f32_matmul: the kernels upcast bf16 operands to f32 (TPU v2/v3): their f32 copies
            take VMEM as f32 tiles would (measured on v3: 16.2 MiB instead of ~8).
        """
        block_shape = block_shape or (1, 1, n)
        if f32_matmul:
            dtype = jnp.float32

        def fits(heads: int, blocks_w: int) -> bool:
            sizes = cls(heads, 1, blocks_w)
            return vmem_bytes_estimate(block_shape, head_dim, dtype, sizes) <= vmem_bytes

        # All heads, else the largest multiple of 8 dividing them (the TPU tile rule) that fits.
        candidates = [num_heads] + [h for h in range(num_heads - 8, 0, -8) if num_heads % h == 0]
        candidates = [h for h in candidates if h == num_heads or h % 8 == 0]
        heads = next((h for h in candidates if fits(h, 1)), candidates[-1])
        blocks_w = 1
        # Small blocks leave the grid-step overhead dominant: group a few along W while the
        # backward's double-buffered tiles and temporaries stay inside the VMEM budget.
        while (
            blocks_w * 2 <= grid_w
            and grid_w % (blocks_w * 2) == 0
            and n * blocks_w * 2 <= 256
            and fits(heads, blocks_w * 2)
        ):
            blocks_w *= 2
        return cls(heads=heads, blocks_h=1, blocks_w=blocks_w)
