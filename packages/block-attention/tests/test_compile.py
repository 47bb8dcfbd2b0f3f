"""Block attention compiled by the real compilers: TPU v3/v4/v5e/v6e (Mosaic) and H100 (sm_90a).

CI compiles a representative case per backend (f32 value_and_grad, the VMEM-hungriest, on TPU
v3's 16 MiB and on v5e; bf16 on v3, whose matrix unit takes no bf16; bf16 on the H100), the
multi-device meshes and the negative controls; `-m matrix` (or
`compile-matrix --kernels block_attention`) compiles all eight Video Transformer block shapes
in both dtypes on every target.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from block_attention import BlockSizes, block_attention
from jax.sharding import PartitionSpec as P

kernel_matrix = pytest.importorskip("compile_targets.kernel_matrix")
from compile_targets import abstract, compile_for
from compile_targets.testing import require_target

pytestmark = pytest.mark.aot

CASES = kernel_matrix.block_attention_cases()


def _case(block, dtype, grad):
    return next(c for c in CASES if c.block_shape == block and c.dtype == dtype and c.grad == grad)


CI_CASES = [
    ("v3:4x4", _case((1, 64, 2), "bfloat16", True)),
    ("v5e:2x2", _case((4, 8, 4), "float32", True)),
    ("h100", _case((4, 8, 4), "bfloat16", True)),
]
ALL_CASES = [
    pytest.param(t, c, marks=pytest.mark.matrix, id=f"{t}-{c.id}")
    for t in kernel_matrix.TARGETS
    for c in CASES
    if (t, c) not in CI_CASES
]


def _check(target, report, case):
    assert report.ok, report.error
    if target.platform == "tpu":
        assert report.custom_calls.get("tpu_custom_call") == (2 if case.grad else 1)
        assert all(v <= target.vmem_bytes for v in report.kernel_vmem_bytes.values())
    else:
        assert kernel_matrix.kernel_custom_calls(report) == (2 if case.grad else 1)


@pytest.mark.parametrize("name,case", CI_CASES, ids=[f"{t}-{c.id}" for t, c in CI_CASES])
def test_compiles_representative(name, case):
    target = require_target(name)
    _check(target, kernel_matrix.compile_case(case, target), case)


@pytest.mark.parametrize("name,case", ALL_CASES)
def test_compiles_everywhere(name, case):
    target = require_target(name)
    _check(target, kernel_matrix.compile_case(case, target), case)


def test_v3_defaults_follow_its_vmem_and_oversized_blocks_are_rejected():
    """Negative control: f32 at the VT base layer with two blocks per program (the v5e default)
    needs ~21 MiB of VMEM on v3 and must not compile; the v3 default (one block) compiles."""
    target = require_target("v3:4x4")
    case = _case((4, 8, 4), "float32", True)
    report = kernel_matrix.compile_case(case, target)
    assert report.ok, report.error
    assert max(report.kernel_vmem_bytes.values()) <= 16 * 2**20
    big = kernel_matrix.compile_case(case, target, block_sizes=BlockSizes(8, 1, 2))
    assert not big.ok
    assert "vmem" in big.error.lower(), big.error


@pytest.mark.parametrize("mesh_shape", [(4, 1), (2, 2)], ids=["data4", "data2-model2"])
def test_multi_device_mesh_runs_kernels_per_shard(mesh_shape):
    """A sharded model calls the op unchanged: batch over `data`, heads over `model`."""
    target = require_target("v5e:2x2")
    mesh = target.mesh(mesh_shape, ("data", "model"))
    x = abstract((4, 4, 32, 32, 8, 128), jnp.float32, mesh, P("data", None, None, None, "model"))
    tables = tuple(abstract((8, 2 * s - 1), jnp.float32, mesh) for s in (4, 8, 4))

    def loss(q, k, v, rel_bias):
        out = block_attention(q, k, v, (4, 8, 4), rel_bias=rel_bias, causal=True)
        return jnp.sum(jnp.square(out.astype(jnp.float32)))

    report = compile_for(
        jax.value_and_grad(loss, argnums=(0, 1, 2, 3)), (x, x, x, tables), target, mesh=mesh
    )
    assert report.ok, report.error
    assert report.custom_calls.get("tpu_custom_call") == 2
    # Each device holds its shard only: q, k, v are split 4 ways.
    assert report.argument_bytes < 3 * 4 * 4 * 32 * 32 * 8 * 128 * 4 / 4 + 2**20


def test_without_a_mesh_the_partitioner_refuses():
    """Why the op needs `jax.set_mesh`: a Mosaic kernel cannot be auto-partitioned."""
    target = require_target("v5e:2x2")
    mesh = target.mesh((4,), ("data",))
    x = abstract((4, 4, 32, 32, 8, 128), jnp.float32, mesh, P("data"))
    f = jax.jit(lambda q: block_attention(q, q, q, (4, 8, 4), implementation="pallas"))
    with pytest.raises(Exception, match="cannot be automatically partitioned"):
        f.lower(x).compile()
