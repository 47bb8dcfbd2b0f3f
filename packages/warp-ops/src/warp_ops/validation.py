"""Argument checks shared by the warping ops, their references and the flow utilities."""

from __future__ import annotations

import math

import jax.numpy as jnp

SUPPORTED_DTYPES = (jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16))


def check_dtype(name: str, x) -> None:
    """Raises ValueError unless `x` is float32 or bfloat16."""
    dtype = jnp.dtype(x.dtype)
    if dtype not in SUPPORTED_DTYPES:
        expected = ", ".join(d.name for d in SUPPORTED_DTYPES)
        raise ValueError(f"{name} must have dtype in ({expected}), got {name}.dtype={dtype.name}")


def check_rank(name: str, x, rank: int, axes: str) -> None:
    """Raises ValueError unless `x` has `rank` dimensions, described by `axes`."""
    if x.ndim != rank:
        raise ValueError(f"{name} must have shape {axes} (rank {rank}), got {name}.shape={x.shape}")


def kernel_size_from_taps(name: str, taps: int) -> int:
    """Returns k for `taps == k * k` with k odd; raises ValueError otherwise."""
    k = math.isqrt(taps)
    if k * k != taps:
        raise ValueError(
            f"{name} must hold k*k taps for a square k x k kernel, got {taps} taps, which is not a "
            "perfect square"
        )
    if k % 2 == 0:
        raise ValueError(
            f"{name} must hold k*k taps with k odd (a centred kernel), got {taps} taps, i.e. k={k}"
        )
    return k


def check_pixelwise(h, weights) -> int:
    """Validates `pixelwise_warp` arguments and returns the kernel size k.

    Args:
      h: [B, H, W, C] features to warp.
      weights: [B, H, W, k*k] per-pixel kernels.
    """
    check_rank("h", h, 4, "[B, H, W, C]")
    check_rank("weights", weights, 4, "[B, H, W, k*k]")
    check_dtype("h", h)
    check_dtype("weights", weights)
    if weights.shape[:3] != h.shape[:3]:
        raise ValueError(
            "weights [B, H, W, k*k] must match h [B, H, W, C] in B, H, W: expected "
            f"weights.shape[:3]={tuple(h.shape[:3])}, got {tuple(weights.shape[:3])}"
        )
    return kernel_size_from_taps("weights (last axis)", weights.shape[-1])


def check_factorized(h, kernels, selection) -> int:
    """Validates `factorized_warp` arguments and returns the kernel size k.

    Args:
      h: [B, H, W, C] features to warp.
      kernels: [B, k*k, N] per-sample basis of N kernels.
      selection: [B, H, W, N] per-pixel coefficients over the basis.
    """
    check_rank("h", h, 4, "[B, H, W, C]")
    check_rank("kernels", kernels, 3, "[B, k*k, N]")
    check_rank("selection", selection, 4, "[B, H, W, N]")
    check_dtype("h", h)
    check_dtype("kernels", kernels)
    check_dtype("selection", selection)
    if kernels.shape[0] != h.shape[0]:
        raise ValueError(
            f"kernels [B, k*k, N] must have h's batch size: expected kernels.shape[0]={h.shape[0]}, "
            f"got {kernels.shape[0]}"
        )
    if selection.shape[:3] != h.shape[:3]:
        raise ValueError(
            "selection [B, H, W, N] must match h [B, H, W, C] in B, H, W: expected "
            f"selection.shape[:3]={tuple(h.shape[:3])}, got {tuple(selection.shape[:3])}"
        )
    if selection.shape[-1] != kernels.shape[-1]:
        raise ValueError(
            "selection's N must equal the number of basis kernels: expected "
            f"selection.shape[-1]=kernels.shape[-1]={kernels.shape[-1]}, got {selection.shape[-1]}"
        )
    return kernel_size_from_taps("kernels (axis 1)", kernels.shape[1])
