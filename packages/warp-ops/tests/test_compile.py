"""The warps compiled by the real compilers: TPU v3/v4/v5e/v6e (Mosaic) and H100 (sm_90a).

Shapes are TrIVD-GAN-FP's TSRU hidden states at 64x64 (per-core batch 8; ch 48 and 120). CI
compiles the largest per backend and dtype-sensitive cases plus a multi-device mesh and a
negative control; `-m matrix` (or `compile-matrix --kernels pixelwise_warp,factorized_warp`)
compiles every shape in both dtypes on every target.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
import warp_ops
from jax.sharding import PartitionSpec as P

kernel_matrix = pytest.importorskip("compile_targets.kernel_matrix")
from compile_targets import abstract, compile_for
from compile_targets.testing import require_target

pytestmark = pytest.mark.aot

CASES = kernel_matrix.warp_cases()
LARGEST = (8, 16, 16, 960)  # ch 120 at 16x16: the most bytes per sample


def _case(kernel, shape, dtype, grad=True):
    return next(
        c
        for c in CASES
        if c.kernel == kernel and c.shape == shape and c.dtype == dtype and c.grad == grad
    )


CI_CASES = [
    ("v3:4x4", _case("factorized_warp", LARGEST, "float32")),
    ("v5e:2x2", _case("pixelwise_warp", LARGEST, "bfloat16")),
    ("h100", _case("factorized_warp", LARGEST, "bfloat16")),
    ("h100", _case("pixelwise_warp", LARGEST, "float32")),
]
ALL_CASES = [
    pytest.param(t, c, marks=pytest.mark.matrix, id=f"{t}-{c.id}")
    for t in kernel_matrix.TARGETS
    for c in CASES
    if (t, c) not in CI_CASES
]


def _check(target, report, case):
    assert report.ok, report.error
    assert kernel_matrix.kernel_custom_calls(report) == (2 if case.grad else 1)
    if target.platform == "tpu":
        assert all(v <= target.vmem_bytes for v in report.kernel_vmem_bytes.values())


@pytest.mark.parametrize("name,case", CI_CASES, ids=[f"{t}-{c.id}" for t, c in CI_CASES])
def test_compiles_representative(name, case):
    target = require_target(name)
    _check(target, kernel_matrix.compile_case(case, target), case)


@pytest.mark.parametrize("name,case", ALL_CASES)
def test_compiles_everywhere(name, case):
    target = require_target(name)
    _check(target, kernel_matrix.compile_case(case, target), case)


def test_multi_device_mesh_runs_kernels_per_shard():
    """The batch of a data-parallel mesh is warped shard by shard (no auto-partitioning)."""
    target = require_target("v5e:2x2")
    mesh = target.mesh((4,), ("data",))
    h = abstract((32, 16, 16, 384), jnp.bfloat16, mesh, P("data"))
    k = abstract((32, 9, 9), jnp.bfloat16, mesh, P("data"))
    s = abstract((32, 16, 16, 9), jnp.bfloat16, mesh, P("data"))

    def loss(h, k, s):
        return jnp.sum(jnp.square(warp_ops.factorized_warp(h, k, s).astype(jnp.float32)))

    report = compile_for(jax.value_and_grad(loss, argnums=(0, 1, 2)), (h, k, s), target, mesh=mesh)
    assert report.ok, report.error
    assert report.custom_calls.get("tpu_custom_call") == 2


def test_tpu_negative_control_band_over_vmem():
    """A whole 64x64x960 f32 image as one band (~15 MiB per operand) must not fit v3's VMEM."""
    from warp_ops import pallas_tpu

    target = require_target("v3:4x4")
    mesh = target.mesh((1,))
    h = abstract((8, 64, 64, 960), jnp.float32, mesh)
    w = abstract((8, 64, 64, 9), jnp.float32, mesh)

    def fwd(h, w, block_h):
        return pallas_tpu.warp_fwd(h, w, kernel_size=3, block_h=block_h)

    ok = compile_for(lambda h, w: fwd(h, w, None), (h, w), target)
    assert ok.ok, ok.error
    too_big = compile_for(lambda h, w: fwd(h, w, 64), (h, w), target)
    assert not too_big.ok
    assert "vmem" in too_big.error.lower(), too_big.error
