"""How much work one Pallas program does: heads and blocks of positions per grid step."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class BlockSizes:
    """Work per Pallas program (grid step).

    A block of `n = t*h*w` positions is always one tile (its whole `n x n` score matrix lives
    in registers/VMEM), so these sizes only choose how many independent (block, head) pairs one
    program handles; larger values amortise the per-step overhead.

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
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"BlockSizes.{name} must be a positive int, got {value!r}")

    def validate(self, num_heads: int, grid_h: int, grid_w: int) -> None:
        """Checks that the sizes divide the problem.

        Args:
          num_heads: heads of q/k/v.
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
        cls, num_heads: int, grid_h: int, grid_w: int, n: int, head_dim: int
    ) -> BlockSizes:
        """A reasonable default: all heads, and up to 256 positions (2 blocks of 128) per program.

        Args:
          num_heads: heads of q/k/v.
          grid_h: number of blocks along H.
          grid_w: number of blocks along W.
          n: positions per block.
          head_dim: features per head.
        """
        del head_dim
        blocks_w = 1
        # Small blocks leave the grid-step overhead dominant; group a few along W, but keep the
        # backward's 7 double-buffered tiles (q, k, v, do, dq, dk, dv) well inside scoped VMEM.
        while blocks_w * 2 <= grid_w and grid_w % (blocks_w * 2) == 0 and n * blocks_w * 2 <= 256:
            blocks_w *= 2
        return cls(heads=num_heads, blocks_h=1, blocks_w=blocks_w)
