"""Kernel-based depthwise dynamic warping (TrIVD-GAN-FP, appendix B) and motion fields."""

from warp_ops.flow import compose_flows, expected_flow, flow_to_rgb
from warp_ops.ops import factorized_warp, pixelwise_warp
from warp_ops.reference import factorized_warp_reference, pixelwise_warp_reference

__all__ = [
    "compose_flows",
    "expected_flow",
    "factorized_warp",
    "factorized_warp_reference",
    "flow_to_rgb",
    "pixelwise_warp",
    "pixelwise_warp_reference",
]
