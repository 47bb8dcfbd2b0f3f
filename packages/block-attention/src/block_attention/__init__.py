"""3D block-local multi-head self-attention (Video Transformer) with Pallas kernels."""

from block_attention.block_sizes import BlockSizes
from block_attention.ops import block_attention
from block_attention.reference import block_attention_reference

__all__ = ["BlockSizes", "block_attention", "block_attention_reference"]
