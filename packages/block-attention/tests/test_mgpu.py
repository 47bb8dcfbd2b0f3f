"""Mosaic GPU block-attention kernels: GPU interpret-mode numerics, sm_90a compiles, a control."""

from __future__ import annotations

import functools
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from block_attention import BlockSizes, block_attention_reference, pallas_mgpu
from block_attention.bias import bias_matrix
from compile_targets import prefer_cpu_host
from jax.experimental.pallas import mosaic_gpu as plgpu

# Without an NVIDIA driver, pin JAX to the CPU before any test starts it: the `aot` group's CUDA
# plugin provides the compile-only H100 only if JAX did not start without JAX_PLATFORMS=cpu (else
# `require_target("h100")` skips, or fails on CI); GPU interpret mode runs on the CPU anyway.
if not os.path.exists("/dev/nvidiactl"):
    prefer_cpu_host()

# (atol as a fraction of the reference's largest magnitude, rtol), per input dtype. f32 inputs
# run on bf16 operands (see the module docstring), so they get bf16's tolerance. Measured max
# |error| / max |reference| over these cases: bf16 6.3e-3, f32 7.1e-3, f16 8.2e-4 (o, dq, dk, dv;
# the bias-table gradients are within 1e-5 with the two-part bias, 2.4e-3 with one part).
TOLERANCES = {
    jnp.dtype(jnp.float32): (1.5e-2, 1.5e-2),
    jnp.dtype(jnp.bfloat16): (1.5e-2, 1.5e-2),
    jnp.dtype(jnp.float16): (2.5e-3, 2.5e-3),
}
MOSAIC_GPU_CALL = "mosaic_gpu_v2"
TRITON_CALL = "__gpu$xla.gpu.triton"


def _inputs(seed, shape, block_shape, dtype, with_bias):
    keys = jax.random.split(jax.random.key(seed), 7)
    q, k, v, do = (jax.random.normal(kk, shape, jnp.float32).astype(dtype) for kk in keys[:4])
    rel_bias = None
    if with_bias:
        rel_bias = tuple(
            jax.random.normal(kk, (shape[4], 2 * s - 1), jnp.float32)
            for kk, s in zip(keys[4:], block_shape, strict=True)
        )
    return q, k, v, do, rel_bias


def _assert_close(actual, expected, dtype, what):
    atol, rtol = TOLERANCES[jnp.dtype(dtype)]
    actual = np.asarray(jnp.asarray(actual, jnp.float32))
    expected = np.asarray(jnp.asarray(expected, jnp.float32))
    assert actual.shape == expected.shape, what
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, atol=atol * scale, rtol=rtol, err_msg=what)


def _gpu_races():
    # GPU interpret mode records races instead of raising; jax 0.11.2 exposes the record only here.
    from jax._src.pallas.mosaic_gpu.interpret import interpret_pallas_call

    return interpret_pallas_call


# (shape [B, T, H, W, heads, d], block_shape, dtype, rel_bias, causal, tuning or None = default)
INTERPRET_CASES = [
    # n = 64: one compute warpgroup.
    ((2, 2, 8, 8, 2, 64), (2, 4, 8), jnp.bfloat16, True, True, None),
    ((2, 2, 8, 8, 2, 64), (2, 4, 8), jnp.float32, False, False, None),
    ((2, 2, 8, 8, 2, 64), (2, 4, 8), jnp.float16, True, False, None),
    # Three blocks per CTA through two buffer slots (refills), high part of the bias only.
    ((3, 2, 8, 8, 2, 64), (2, 4, 8), jnp.bfloat16, True, True, pallas_mgpu.Tuning(3, 2, 1)),
    # The Video Transformer's tile: n = 128, head_dim = 128, two compute warpgroups.
    ((1, 4, 8, 8, 2, 128), (4, 8, 4), jnp.bfloat16, True, True, None),
    ((1, 4, 8, 8, 2, 128), (4, 8, 4), jnp.float32, True, False, None),
    # Two blocks per CTA: the warpgroups' barriers cycle through their phases across blocks.
    ((1, 4, 8, 16, 2, 128), (4, 8, 4), jnp.bfloat16, False, True, pallas_mgpu.Tuning(2, 1, 2)),
    # m = 67 > 64 (a VT block): bias width padded to 128, high part of the bias only.
    ((1, 1, 4, 64, 2, 128), (1, 2, 64), jnp.bfloat16, True, True, None),
]
SLOW_INTERPRET_CASES = [
    # The other tile geometries the kernels take.
    ((1, 2, 8, 8, 2, 64), (2, 8, 8), jnp.bfloat16, True, True, None),
    ((1, 2, 8, 8, 2, 128), (2, 4, 8), jnp.bfloat16, True, False, None),
]


def _case_id(case):
    shape, block_shape, dtype, with_bias, causal, tuning = case
    name = "x".join(map(str, block_shape)) + f"-d{shape[-1]}-{jnp.dtype(dtype).name}"
    name += f"-bias{with_bias}-causal{causal}"
    if tuning is not None:
        name += f"-tiles{tuning.tiles_per_program}-stages{tuning.num_stages}"
    return name


def _check_interpret(shape, block_shape, dtype, with_bias, causal, tuning):
    q, k, v, do, rel_bias = _inputs(7, shape, block_shape, dtype, with_bias)
    g = bias_matrix(rel_bias, block_shape) if with_bias else None
    assert pallas_mgpu.kernel_supports(shape, dtype, block_shape)  # Not the XLA fallback.
    if tuning is None:
        kwargs = {"block_shape": block_shape, "causal": causal, "block_sizes": BlockSizes()}
        fwd, bwd = pallas_mgpu.block_attention_fwd, pallas_mgpu.block_attention_bwd
    else:
        kwargs = {"block_shape": block_shape, "causal": causal, "tuning": tuning}
        fwd, bwd = pallas_mgpu.block_attention_fwd_tuned, pallas_mgpu.block_attention_bwd_tuned
    races = _gpu_races()
    races.reset_gpu_interpret_mode_state()
    with plgpu.force_gpu_interpret_mode(plgpu.InterpretGPUParams(detect_races=True)):
        out = fwd(q, k, v, g, **kwargs)
        dq, dk, dv, dg = bwd(q, k, v, g, do, **kwargs)
        jax.block_until_ready((out, dq, dk, dv, dg))
    assert not races.get_races().races_found, "GPU interpret mode detected a race"

    def reference(q, k, v, rel_bias):
        q, k, v = (x.astype(jnp.float32) for x in (q, k, v))
        return block_attention_reference(q, k, v, block_shape, rel_bias=rel_bias, causal=causal)

    expected, reference_vjp = jax.vjp(reference, q, k, v, rel_bias)
    assert out.shape == q.shape and out.dtype == q.dtype
    _assert_close(out, expected, dtype, "out")
    eq, ek, ev, etables = reference_vjp(do.astype(jnp.float32))
    for name, got, want in (("dq", dq, eq), ("dk", dk, ek), ("dv", dv, ev)):
        assert got.dtype == dtype, name
        _assert_close(got, want, dtype, name)
    if not with_bias:
        assert dg is None
        return
    assert dg.shape == g.shape and dg.dtype == jnp.float32
    # Map dG back onto the tables with the transpose of bias_matrix.
    _, to_tables = jax.vjp(lambda tables: bias_matrix(tables, block_shape), rel_bias)
    for name, got, want in zip(
        ("dbias_t", "dbias_h", "dbias_w"), to_tables(dg)[0], etables, strict=True
    ):
        _assert_close(got, want, dtype, name)


@pytest.mark.parametrize("case", INTERPRET_CASES, ids=_case_id)
def test_interpret_forward_and_backward(case):
    """Forward and backward kernels in GPU interpret mode (with race detection) vs the VJP."""
    _check_interpret(*case)


@pytest.mark.slow
@pytest.mark.parametrize("case", SLOW_INTERPRET_CASES, ids=_case_id)
def test_interpret_forward_and_backward_slow(case):
    _check_interpret(*case)


def test_unsupported_blocks_fall_back_to_xla():
    """n = 32 is not a kernel tile: the functions run their XLA path (no interpret mode needed)."""
    shape, block_shape = (1, 2, 4, 8, 2, 16), (2, 2, 8)
    assert not pallas_mgpu.kernel_supports(shape, jnp.float32, block_shape)
    q, k, v, do, rel_bias = _inputs(3, shape, block_shape, jnp.float32, True)
    g = bias_matrix(rel_bias, block_shape)
    kwargs = {"block_shape": block_shape, "causal": True, "block_sizes": BlockSizes()}
    out = pallas_mgpu.block_attention_fwd(q, k, v, g, **kwargs)
    dq, _, _, dg = pallas_mgpu.block_attention_bwd(q, k, v, g, do, **kwargs)
    ref = functools.partial(block_attention_reference, block_shape=block_shape, causal=True)
    expected, vjp = jax.vjp(lambda q, t: ref(q, k, v, rel_bias=t), q, rel_bias)
    np.testing.assert_allclose(np.asarray(out), np.asarray(expected), atol=1e-5, rtol=1e-5)
    eq, etables = vjp(do)
    np.testing.assert_allclose(np.asarray(dq), np.asarray(eq), atol=1e-5, rtol=1e-5)
    _, to_tables = jax.vjp(lambda t: bias_matrix(t, block_shape), rel_bias)
    for got, want in zip(to_tables(dg)[0], etables, strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-4, rtol=1e-5)


# The Video Transformer's eight block shapes, on one 4x32x32 slice or one 64x64 frame (8 x 128).
SLICE, FRAME = (1, 4, 32, 32, 8, 128), (1, 1, 64, 64, 8, 128)
VT_CASES = [
    (SLICE, (4, 8, 4)),
    (SLICE, (4, 4, 8)),
    (SLICE, (1, 32, 4)),
    (SLICE, (1, 4, 32)),
    (FRAME, (1, 8, 16)),
    (FRAME, (1, 16, 8)),
    (FRAME, (1, 2, 64)),
    (FRAME, (1, 64, 2)),
]
# Unmarked: the shared-memory-tightest block (m = 67: 224 KiB backward, bias high part only);
# the base layer's block compiles unmarked at full size in `test_compiles_vt_base_layer`.
CI_CASES = {((1, 2, 64), "bfloat16")}
COMPILE_CASES = [
    pytest.param(
        shape,
        block_shape,
        dtype,
        marks=() if (block_shape, dtype) in CI_CASES else pytest.mark.matrix,
        id=f"{block_shape}-{dtype}",
    )
    for shape, block_shape in VT_CASES
    for dtype in ("bfloat16", "float32")
]


def _h100():
    from compile_targets.testing import require_target

    return require_target("h100")


def _abstract_problem(target, shape, block_shape, dtype):
    from compile_targets import abstract

    mesh = target.mesh((1,))
    m = sum(block_shape)
    x = abstract(shape, jnp.dtype(dtype), mesh)
    return x, abstract((shape[4], m, m), jnp.float32, mesh)


def _compile_forward_and_backward(shape, block_shape, dtype):
    """Causal, biased forward and forward + backward compile to Mosaic GPU kernels for an H100."""
    from compile_targets import compile_for

    target = _h100()
    x, g = _abstract_problem(target, shape, block_shape, dtype)
    assert pallas_mgpu.kernel_supports(shape, dtype, block_shape)
    kwargs = {"block_shape": block_shape, "causal": True, "block_sizes": BlockSizes()}

    def forward(q, k, v, g):
        return pallas_mgpu.block_attention_fwd(q, k, v, g, **kwargs)

    def value_and_grad(q, k, v, g, do):
        out = pallas_mgpu.block_attention_fwd(q, k, v, g, **kwargs)
        loss = jnp.sum(out.astype(jnp.float32) * do.astype(jnp.float32))
        return loss, pallas_mgpu.block_attention_bwd(q, k, v, g, do, **kwargs)

    for fn, args, names in (
        (forward, (x, x, x, g), ["block_attention_fwd"]),
        (value_and_grad, (x, x, x, g, x), ["block_attention_fwd", "block_attention_bwd"]),
    ):
        report = compile_for(fn, args, target)
        assert report.ok, report.error
        assert report.custom_calls.get(MOSAIC_GPU_CALL) == len(names), report.custom_calls
        assert TRITON_CALL not in report.custom_calls
        text = report.compiled.as_text()
        for name in names:
            assert f"{name}/mpmd_map" in text, name


@pytest.mark.aot
@pytest.mark.parametrize("shape,block_shape,dtype", COMPILE_CASES)
def test_compiles_for_sm90a(shape, block_shape, dtype):
    _compile_forward_and_backward(shape, block_shape, dtype)


@pytest.mark.aot
def test_compiles_vt_base_layer():
    """The whole base layer (64 slices): 16 blocks per CTA by the default tuning."""
    shape, block_shape = (64, 4, 32, 32, 8, 128), (4, 8, 4)
    assert pallas_mgpu.default_tuning(shape, block_shape, True, backward=True).tiles_per_program > 1
    _compile_forward_and_backward(shape, block_shape, "bfloat16")


@pytest.mark.aot
def test_sm90a_rejects_a_kernel_over_shared_memory():
    """Negative control: double-buffering the backward's four streams needs 336 KiB > 227 KiB."""
    from compile_targets import compile_for

    target = _h100()
    block_shape = (4, 8, 4)
    x, g = _abstract_problem(target, SLICE, block_shape, "bfloat16")

    def backward(tuning, q, k, v, g, do):
        return pallas_mgpu.block_attention_bwd_tuned(
            q, k, v, g, do, block_shape=block_shape, causal=True, tuning=tuning
        )

    fits = pallas_mgpu.Tuning(num_stages=1)
    too_big = pallas_mgpu.Tuning(num_stages=2)
    report = compile_for(functools.partial(backward, fits), (x, x, x, g, x), target)
    assert report.ok, report.error
    report = compile_for(functools.partial(backward, too_big), (x, x, x, g, x), target)
    assert not report.ok
    assert "shared memory" in report.error.lower(), report.error
    requested = int(re.search(r"smem_bytes=(\d+)", report.error).group(1))
    estimate = pallas_mgpu.smem_bytes(128, 128, 64, too_big, backward=True)
    assert estimate <= requested <= estimate + pallas_mgpu.SMEM_RESERVED
    assert requested > target.smem_bytes
