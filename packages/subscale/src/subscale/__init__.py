"""Spatiotemporal subscaling and 4-bit channels for autoregressive video models."""

from subscale.bits import NUM_CHANNELS, NUM_VALUES, merge_bits, split_bits
from subscale.slicing import (
    encoder_padding,
    from_slices,
    mask_preceding,
    num_slices,
    slice_index,
    slice_index_map,
    slice_order,
    to_slices,
)

__all__ = [
    "NUM_CHANNELS",
    "NUM_VALUES",
    "encoder_padding",
    "from_slices",
    "mask_preceding",
    "merge_bits",
    "num_slices",
    "slice_index",
    "slice_index_map",
    "slice_order",
    "split_bits",
    "to_slices",
]
