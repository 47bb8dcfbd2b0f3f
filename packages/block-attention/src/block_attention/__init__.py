"""3D block-local multi-head self-attention (Video Transformer) with Pallas kernels."""

import importlib

from block_attention.block_sizes import BlockSizes
from block_attention.ops import block_attention
from block_attention.reference import block_attention_reference

__all__ = ["BlockSizes", "block_attention", "block_attention_reference"]


def __getattr__(name: str):
    # `block_attention.nn` (the Flax layer) needs the optional `flax` extra: import it on first
    # use so the core package stays importable without flax.
    if name == "nn":
        return importlib.import_module("block_attention.nn")
    raise AttributeError(f"module 'block_attention' has no attribute {name!r}")
