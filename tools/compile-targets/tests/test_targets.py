"""The harness compiles for real: targets, reports, and the controls the compilers must reject."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from compile_targets import abstract, compile_for, format_bytes, get_target, short_error
from compile_targets.testing import require_target
from jax.experimental import pallas as pl
from jax.sharding import PartitionSpec as P

pytestmark = pytest.mark.aot


def _copy_kernel(x_ref, o_ref):
    o_ref[...] = x_ref[...]


def _pallas_copy(x, block):
    return pl.pallas_call(
        _copy_kernel,
        grid=(x.shape[0] // block[0], x.shape[1] // block[1]),
        in_specs=[pl.BlockSpec(block, lambda i, j: (i, j))],
        out_specs=pl.BlockSpec(block, lambda i, j: (i, j)),
        out_shape=jax.ShapeDtypeStruct(x.shape, x.dtype),
    )(x)


def test_bad_names_are_value_errors():
    with pytest.raises(ValueError, match=r"target must be a TPU topology .* got 'a100'"):
        get_target("a100")
    with pytest.raises(TypeError, match="target must be a str"):
        get_target(8)


def test_tpu_target_describes_its_devices():
    v3 = require_target("v3:4x4")
    assert v3.platform == "tpu" and v3.num_devices == 32 and v3.device_kind == "TPU v3"
    assert v3.vmem_bytes == 16 * 2**20 and 15e9 < v3.hbm_bytes < 18e9
    v5e = require_target("v5e:2x2")
    assert v5e.num_devices == 4 and v5e.vmem_bytes == 128 * 2**20


def test_gpu_targets_differ_in_memory():
    h100, h200 = require_target("h100"), require_target("h200")
    assert h100.platform == h200.platform == "cuda"
    assert h100.device_kind == "NVIDIA H100 80GB HBM3" and h200.device_kind == "NVIDIA H200"
    assert 80e9 < h100.hbm_bytes < 85e9 and 140e9 < h200.hbm_bytes < 151e9
    assert h100.smem_bytes == 232448


@pytest.mark.parametrize("name", ["v5e:2x2", "h100"])
def test_sharded_matmul_report(name):
    """A data-parallel matmul over every device: per-device bytes follow the sharding."""
    target = require_target(name)
    mesh = target.mesh()
    n = target.num_devices
    x = abstract((64 * n, 256), jnp.float32, mesh, P("x"))
    w = abstract((256, 512), jnp.float32, mesh)
    report = compile_for(lambda x, w: jnp.tanh(x @ w), (x, w), target, mesh=mesh)
    assert report.ok, report.error
    assert report.argument_bytes == 64 * 256 * 4 + 256 * 512 * 4
    assert report.output_bytes == 64 * 512 * 4
    assert report.fits and report.headroom_bytes > 0
    # The program's FLOPs count every device's share of the matmul.
    assert report.flops == pytest.approx(2 * 64 * n * 256 * 512, rel=0.01)


def test_tpu_rejects_a_block_larger_than_vmem():
    """Negative control: `jax.export` accepts this kernel; only the TPU compiler refuses it."""
    target = require_target("v5e:2x2")
    x = abstract((4096, 4096), jnp.float32, target.mesh((1,)))
    ok = compile_for(functools.partial(_pallas_copy, block=(512, 512)), (x,), target)
    assert ok.ok, ok.error
    assert ok.custom_calls.get("tpu_custom_call") == 1
    too_big = compile_for(functools.partial(_pallas_copy, block=(4096, 4096)), (x,), target)
    assert not too_big.ok
    assert "vmem" in too_big.error.lower(), too_big.error
    assert "vmem" in short_error(too_big.error).lower()


def test_gpu_rejects_a_kernel_over_shared_memory():
    """Negative control: a Mosaic GPU kernel asking for 256 KiB of shared memory."""
    from jax.experimental.pallas import mosaic_gpu as plgpu

    target = require_target("h100")

    def kernel(x_ref, o_ref, smem):
        smem[...] = x_ref[...]
        o_ref[...] = smem[...]

    def f(x, rows):
        return plgpu.kernel(
            kernel,
            out_type=jax.ShapeDtypeStruct(x.shape, x.dtype),
            scratch_types=[plgpu.SMEM((rows, 128), jnp.float32)],
        )(x)

    for rows, must_compile in ((64, True), (512, False)):
        x = abstract((rows, 128), jnp.float32, target.mesh((1,)))
        report = compile_for(functools.partial(f, rows=rows), (x,), target)
        assert report.ok == must_compile, (rows, report.error)
    assert "shared memory" in report.error.lower() or "smem" in report.error.lower(), report.error


def test_format_bytes():
    assert format_bytes(3 * 2**30) == "3.00 GiB"
    assert format_bytes(1536 * 2**10) == "1.50 MiB"
    assert format_bytes(np.int64(100)) == "100 B"
