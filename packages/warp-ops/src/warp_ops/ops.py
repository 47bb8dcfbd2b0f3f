"""Public warping ops: validation, implementation dispatch and the custom VJPs.

`implementation="pallas"` and `"auto"` stage out every backend with
`jax.lax.platform_dependent`, so one jitted function lowers to the Mosaic TPU kernels when
compiled or exported for TPU, to the Mosaic GPU kernels for CUDA (the deprecated Triton
kernels for shapes Mosaic GPU does not take, or everywhere with `implementation="triton"`),
and to the default branch elsewhere: the XLA shifted sum for "auto", the TPU kernels run by
the Pallas interpreter for "pallas" and "triton". With those three, `interpret=True` runs the
TPU kernels in the interpreter on any platform (CPU testing); "xla" ignores it. Under a
multi-device mesh (`jax.set_mesh`) the kernels run once per batch shard.
"""

from __future__ import annotations

import functools

import jax

from warp_ops import pallas_gpu, pallas_mgpu, pallas_tpu, reference, validation
from warp_ops.sharding import per_batch_shard

IMPLEMENTATIONS = ("auto", "xla", "pallas", "triton")


def _check_implementation(implementation: str, interpret: bool) -> None:
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")
    if not isinstance(interpret, bool):
        raise TypeError(f"interpret must be a bool, got {interpret=!r}")


def _tpu_friendly(h: jax.Array) -> bool:
    """The TPU kernels rotate W on sublanes: W must fill whole (8-row) sublane tiles."""
    return h.shape[2] % 8 == 0


def _gpu_kernels(mode: str, h: jax.Array, kernel_size: int):
    """The GPU kernel module: Mosaic GPU where it takes the shape, else (or asked) Triton."""
    if mode != "triton" and pallas_mgpu.kernel_supports(h.shape, h.dtype, kernel_size):
        return pallas_mgpu
    return pallas_gpu


def _dispatch(mode: str, h, args, *, tpu, gpu, xla, num_outputs=None):
    """Runs `tpu`, `gpu` or `xla` on `args`, once per batch shard of the current mesh.

    `tpu` and `gpu` take an `interpret` keyword; every argument and output has the batch first.
    """
    fn = functools.partial(_dispatch_one, mode, h, tpu=tpu, gpu=gpu, xla=xla)
    return per_batch_shard(fn, args, num_outputs)


def _dispatch_one(mode: str, h, *args, tpu, gpu, xla):
    if mode == "interpret":
        return tpu(*args, interpret=True)
    tpu_branch = functools.partial(tpu, interpret=False) if _tpu_friendly(h) else xla
    if mode == "auto":
        default = xla
    else:  # "pallas"/"triton" off TPU/GPU: interpret the TPU kernels rather than use XLA.
        default = functools.partial(tpu, interpret=True)
    return jax.lax.platform_dependent(
        *args, tpu=tpu_branch, cuda=functools.partial(gpu, interpret=False), default=default
    )


# ----------------------------------------------------------------------------- pixelwise


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _pixelwise(h, weights, kernel_size: int, mode: str):
    return _pixelwise_fwd(h, weights, kernel_size, mode)[0]


def _pixelwise_fwd(h, weights, kernel_size: int, mode: str):
    out = _dispatch(
        mode,
        h,
        (h, weights),
        tpu=functools.partial(pallas_tpu.warp_fwd, kernel_size=kernel_size),
        gpu=functools.partial(_gpu_kernels(mode, h, kernel_size).warp_fwd, kernel_size=kernel_size),
        xla=reference.pixelwise_warp_reference,
    )
    return out, (h, weights)


def _pixelwise_bwd(kernel_size: int, mode: str, res, g):
    h, weights = res

    def xla(h, g, weights):
        return jax.vjp(reference.pixelwise_warp_reference, h, weights)[1](g)

    def tpu(h, g, weights, *, interpret):
        return pallas_tpu.warp_bwd(h, g, weights, kernel_size=kernel_size, interpret=interpret)

    gpu_kernels = _gpu_kernels(mode, h, kernel_size)

    def gpu(h, g, weights, *, interpret):
        return gpu_kernels.warp_bwd(h, g, weights, kernel_size=kernel_size, interpret=interpret)

    dh, dweights = _dispatch(mode, h, (h, g, weights), tpu=tpu, gpu=gpu, xla=xla, num_outputs=2)
    return dh, dweights


_pixelwise.defvjp(_pixelwise_fwd, _pixelwise_bwd)


def pixelwise_warp(
    h: jax.Array,
    weights: jax.Array,
    *,
    implementation: str = "auto",
    interpret: bool = False,
) -> jax.Array:
    """Pixelwise kernel-based warping (Eq. 11), zero padding.

    out[b, i, j, c] = sum_{m,n} W[b, i, j, m*k + n] * h[b, i + m - (k-1)/2, j + n - (k-1)/2, c]

    Args:
      h: [B, H, W, C] float32 or bfloat16 features.
      weights: [B, H, W, k*k] per-pixel kernels, k odd (float32 or bfloat16).
      implementation: "xla" (fused shifted sum, autodiff gradients), "pallas" (Pallas kernels
        with Pallas backward kernels, chosen for the platform at lowering time: Mosaic TPU,
        Mosaic GPU), "triton" (as "pallas" but the deprecated Triton kernels on GPU), or "auto"
        (Pallas on TPU and GPU, XLA elsewhere).
      interpret: with "auto" or "pallas", run the Pallas TPU kernels through the Pallas
        interpreter on any platform (CPU testing).

    Returns:
      [B, H, W, C] in h.dtype, accumulated in float32.
    """
    kernel_size = validation.check_pixelwise(h, weights)
    _check_implementation(implementation, interpret)
    if implementation == "xla":
        return reference.pixelwise_warp_reference(h, weights)
    mode = "interpret" if interpret else implementation
    return _pixelwise(h, weights, kernel_size, mode)


# ----------------------------------------------------------------------------- factorized


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _factorized(h, kernels, selection, kernel_size: int, mode: str):
    return _factorized_fwd(h, kernels, selection, kernel_size, mode)[0]


def _factorized_fwd(h, kernels, selection, kernel_size: int, mode: str):
    def tpu(h, kernels, selection, *, interpret):
        return pallas_tpu.warp_fwd(
            h,
            kernels=kernels,
            selection=selection,
            kernel_size=kernel_size,
            interpret=interpret,
        )

    gpu_kernels = _gpu_kernels(mode, h, kernel_size)

    def gpu(h, kernels, selection, *, interpret):
        return gpu_kernels.warp_fwd(
            h,
            kernels=kernels,
            selection=selection,
            kernel_size=kernel_size,
            interpret=interpret,
        )

    out = _dispatch(
        mode,
        h,
        (h, kernels, selection),
        tpu=tpu,
        gpu=gpu,
        xla=reference.factorized_warp_reference,
    )
    return out, (h, kernels, selection)


def _factorized_bwd(kernel_size: int, mode: str, res, g):
    h, kernels, selection = res

    def xla(h, g, kernels, selection):
        return jax.vjp(reference.factorized_warp_reference, h, kernels, selection)[1](g)

    def tpu(h, g, kernels, selection, *, interpret):
        return pallas_tpu.warp_bwd(
            h,
            g,
            kernels=kernels,
            selection=selection,
            kernel_size=kernel_size,
            interpret=interpret,
        )

    gpu_kernels = _gpu_kernels(mode, h, kernel_size)

    def gpu(h, g, kernels, selection, *, interpret):
        return gpu_kernels.warp_bwd(
            h,
            g,
            kernels=kernels,
            selection=selection,
            kernel_size=kernel_size,
            interpret=interpret,
        )

    dh, dkernels, dselection = _dispatch(
        mode, h, (h, g, kernels, selection), tpu=tpu, gpu=gpu, xla=xla, num_outputs=3
    )
    return dh, dkernels, dselection


_factorized.defvjp(_factorized_fwd, _factorized_bwd)


def factorized_warp(
    h: jax.Array,
    kernels: jax.Array,
    selection: jax.Array,
    *,
    implementation: str = "auto",
    interpret: bool = False,
) -> jax.Array:
    """Factorized kernel-based warping (Eq. 12 then Eq. 11), zero padding.

    W[b, i, j, q] = sum_l S[b, i, j, l] * w[b, q, l] is formed on the fly by the Pallas
    kernels (never written to HBM); the XLA path forms it explicitly.

    Args:
      h: [B, H, W, C] float32 or bfloat16 features.
      kernels: [B, k*k, N] per-sample basis of N kernels, k odd.
      selection: [B, H, W, N] per-pixel coefficients over the basis.
      implementation: "xla", "pallas" or "auto"; see `pixelwise_warp`.
      interpret: run the Pallas TPU kernels through the Pallas interpreter (CPU testing).

    Returns:
      [B, H, W, C] in h.dtype, accumulated in float32.
    """
    kernel_size = validation.check_factorized(h, kernels, selection)
    _check_implementation(implementation, interpret)
    if implementation == "xla":
        return reference.factorized_warp_reference(h, kernels, selection)
    mode = "interpret" if interpret else implementation
    return _factorized(h, kernels, selection, kernel_size, mode)
