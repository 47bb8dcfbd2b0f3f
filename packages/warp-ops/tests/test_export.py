"""Lowering of the kernels for TPU (Mosaic) and CUDA (Triton) from this CPU machine.

TrIVD-GAN-FP's TSRU hidden states (channel multiplier 48): 8x8x384, 16x16x192, 32x32x96 and
64x64x48 ([H, W, C] = [s, s, 48 * 8 / (s / 8)]), with a per-device batch of 16.
"""

import re

import jax
import jax.numpy as jnp
import pytest
import warp_ops

TRIVD_SHAPES = [(16, 8, 8, 384), (16, 16, 16, 192), (16, 32, 32, 96), (16, 64, 64, 48)]
N = 9  # the paper's basis size, N = k^2 with k = 3
S = jax.ShapeDtypeStruct


def _fwd_and_bwd(fn):
    def f(*args):
        out, vjp = jax.vjp(fn, *args)
        return out, vjp(out)

    return f


def _export(fn, args, platform):
    return jax.export.export(
        jax.jit(fn),
        platforms=[platform],
        disabled_checks=[jax.export.DisabledSafetyCheck.custom_call("__gpu$xla.gpu.triton")],
    )(*args)


def _tensor_shapes(module_text):
    return set(re.findall(r"tensor<([0-9x]+)x(?:f32|bf16)>", module_text))


@pytest.mark.parametrize("shape", TRIVD_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_tpu_export_pixelwise(shape):
    b, height, width, _ = shape
    args = (S(shape, jnp.bfloat16), S((b, height, width, 9), jnp.bfloat16))
    fwd = _export(warp_ops.pixelwise_warp, args, "tpu").mlir_module()
    both = _export(_fwd_and_bwd(warp_ops.pixelwise_warp), args, "tpu").mlir_module()
    assert fwd.count("tpu_custom_call") == 1 and "pixelwise_warp_fwd" in fwd
    assert both.count("tpu_custom_call") == 2 and "pixelwise_warp_bwd" in both


@pytest.mark.parametrize("shape", TRIVD_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_tpu_export_factorized_never_forms_weights(shape):
    b, height, width, c = shape
    args = (S(shape, jnp.float32), S((b, 9, N), jnp.float32), S((b, height, width, N), jnp.float32))
    fwd = _export(warp_ops.factorized_warp, args, "tpu").mlir_module()
    both = _export(_fwd_and_bwd(warp_ops.factorized_warp), args, "tpu").mlir_module()
    assert fwd.count("tpu_custom_call") == 1 and "factorized_warp_fwd" in fwd
    assert both.count("tpu_custom_call") == 2 and "factorized_warp_bwd" in both
    # Neither the combined [B, H, W, k*k] weights nor a k*k-fold unfold of h appear. (With
    # N = k*k the selection map has the weights' shape, so only count arrays beyond it.)
    shapes = _tensor_shapes(both)
    assert f"{b}x{height}x{width}x{9 * c}" not in shapes
    assert f"{b}x{height}x{width}x9x{c}" not in shapes


def test_cuda_export_triton_kernels():
    # Lowering to Triton IR needs a GPU description; an abstract H100 stands in for one.
    device = jax.sharding.AbstractDevice(
        device_kind="NVIDIA H100 80GB HBM3", num_cores=None, platform="cuda"
    )
    mesh = jax.sharding.AbstractMesh((1,), ("x",), abstract_device=device)
    b, height, width, c = TRIVD_SHAPES[1]
    pixelwise_args = (
        S((b, height, width, c), jnp.bfloat16),
        S((b, height, width, 9), jnp.bfloat16),
    )
    factorized_args = (
        S((b, height, width, c), jnp.float32),
        S((b, 9, N), jnp.float32),
        S((b, height, width, N), jnp.float32),
    )
    with jax.sharding.use_abstract_mesh(mesh):
        pixelwise = _export(_fwd_and_bwd(warp_ops.pixelwise_warp), pixelwise_args, "cuda")
        factorized = _export(_fwd_and_bwd(warp_ops.factorized_warp), factorized_args, "cuda")
    for exported in (pixelwise, factorized):
        assert exported.mlir_module().count("__gpu$xla.gpu.triton") == 2


def test_platform_dependent_default_branch_is_xla_on_cpu():
    args = (S((2, 8, 8, 16), jnp.float32), S((2, 8, 8, 9), jnp.float32))
    text = _export(_fwd_and_bwd(warp_ops.pixelwise_warp), args, "cpu").mlir_module()
    assert "custom_call" not in text


def test_tpu_falls_back_to_xla_when_width_is_not_sublane_aligned():
    args = (S((2, 12, 12, 16), jnp.float32), S((2, 12, 12, 9), jnp.float32))
    text = _export(_fwd_and_bwd(warp_ops.pixelwise_warp), args, "tpu").mlir_module()
    assert "tpu_custom_call" not in text
