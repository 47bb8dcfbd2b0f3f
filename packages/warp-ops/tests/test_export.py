"""Properties of the lowered kernels (which branch, which arrays exist), from this CPU machine.

Compiles for real TPUs and GPUs, at the model's true shapes, are in test_compile.py.
"""

import re

import jax
import jax.numpy as jnp
import pytest
import warp_ops

# TrIVD-GAN-FP's TSRU hidden states at ch 48 (generator.py), per-core batch 8.
TRIVD_SHAPES = [(8, 8, 8, 384), (8, 16, 16, 384), (8, 32, 32, 192)]
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


def test_platform_dependent_default_branch_is_xla_on_cpu():
    args = (S((2, 8, 8, 16), jnp.float32), S((2, 8, 8, 9), jnp.float32))
    text = _export(_fwd_and_bwd(warp_ops.pixelwise_warp), args, "cpu").mlir_module()
    assert "custom_call" not in text


def test_tpu_falls_back_to_xla_when_width_is_not_sublane_aligned():
    args = (S((2, 12, 12, 16), jnp.float32), S((2, 12, 12, 9), jnp.float32))
    text = _export(_fwd_and_bwd(warp_ops.pixelwise_warp), args, "tpu").mlir_module()
    assert "tpu_custom_call" not in text
