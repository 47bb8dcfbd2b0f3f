"""Mosaic GPU warp kernels: GPU interpret-mode numerics on the CPU and deviceless sm_90a compiles."""

import dataclasses
import functools
import os

import chex
import jax
import jax.numpy as jnp
import pytest
import warp_ops
from compile_targets import prefer_cpu_host
from jax.experimental.pallas import mosaic_gpu as plgpu
from warp_ops import pallas_mgpu

# On a host without an NVIDIA driver, pin JAX to the CPU before any test starts it: the `aot`
# group's CUDA plugin provides the compile-only H100 only if JAX has not yet started without
# JAX_PLATFORMS=cpu (then `require_target("h100")` skips, or fails on CI), and GPU interpret
# mode runs on the CPU anyway. Machines with a GPU are left alone.
if not os.path.exists("/dev/nvidiactl"):
    prefer_cpu_host()

# (atol as a fraction of the largest reference value of that output, rtol), against the
# reference on float32-upcast inputs. The kernels sum over C (dweights) or H*W (dkernels) in
# another order than XLA, so the absolute error grows with an output's scale; bf16 outputs are
# rounded once, one bf16 ulp being 2^-7 relative.
TOLERANCES = {jnp.float32: (1e-5, 1e-5), jnp.bfloat16: (2e-3, 1e-2)}
N = 9  # the paper's basis size for k = 3
K = 3

# TrIVD-GAN-FP's TSRU hidden states at 64x64 output with a per-device batch of 8. The generator
# (gan_video/generator.py, Generator.__init__) runs stage i's recurrent unit at
# (64 / 8) * 2^i pixels with width m_i * ch, (m_0, m_1, m_2) = (8, 8, 4)
# (config.py, g_channel_multipliers = (8, 8, 4, 2)); recurrent.py's TSRU.step warps its
# [B, H, W, m_i * ch] state h. Checked with jax.eval_shape of the "medium" and "large" presets.
TRIVD_HIDDEN = {
    48: [(8, 8, 8, 384), (8, 16, 16, 384), (8, 32, 32, 192)],
    120: [(8, 8, 8, 960), (8, 16, 16, 960), (8, 32, 32, 480)],
}
LARGEST = (8, 32, 32, 480)


@dataclasses.dataclass(frozen=True)
class Case:
    shape: tuple[int, int, int, int]  # [B, H, W, C]
    dtype: type
    softmax: bool  # softmax weights, or unnormalised normal ones
    n: int = N  # factorized basis size
    block_h: int | None = None
    block_c: int | None = None
    channel_groups: int | None = None  # backward only

    def __str__(self):
        kind = "softmax" if self.softmax else "raw"
        blocks = f"-bh{self.block_h}-bc{self.block_c}" if self.block_h else ""
        groups = f"-g{self.channel_groups}" if self.channel_groups else ""
        shape = "x".join(map(str, self.shape))
        return f"{shape}-{jnp.dtype(self.dtype).name}-{kind}-n{self.n}{blocks}{groups}"


def _inputs(case: Case, seed: int):
    """h, pixelwise weights, basis kernels, selection map and output cotangent (never zero)."""
    kh, kw, kk, ks, kg = jax.random.split(jax.random.key(seed), 5)
    b, height, width, _ = case.shape
    taps = K * K
    h = jax.random.normal(kh, case.shape, jnp.float32)
    weights = jax.random.normal(kw, (b, height, width, taps), jnp.float32)
    kernels = jax.random.normal(kk, (b, taps, case.n), jnp.float32)
    selection = jax.random.normal(ks, (b, height, width, case.n), jnp.float32)
    if case.softmax:
        weights = jax.nn.softmax(weights, axis=-1)
        kernels = jax.nn.softmax(kernels, axis=1)
        selection = jax.nn.softmax(selection, axis=-1)
    g = jax.random.normal(kg, case.shape, jnp.float32)
    cast = lambda x: x.astype(case.dtype)
    return cast(h), cast(weights), cast(kernels), cast(selection), cast(g)


def _upcast(*xs):
    return tuple(x.astype(jnp.float32) for x in xs)


def _assert_close(actual, expected, dtype):
    atol, rtol = TOLERANCES[dtype]
    chex.assert_trees_all_equal_shapes_and_dtypes(
        actual, jax.tree.map(lambda x: x.astype(dtype), expected)
    )
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        scale = float(jnp.max(jnp.abs(e)))
        chex.assert_trees_all_close(a.astype(jnp.float32), e, atol=atol * scale, rtol=rtol)


def _interpret(fn, *args):
    """Runs fn under GPU interpret mode with race detection; fails on a detected race."""
    # Race reports live in interpret mode's private state (no public accessor in jax 0.11.2).
    from jax._src.pallas.mosaic_gpu.interpret import gpu_callbacks

    with plgpu.force_gpu_interpret_mode(plgpu.InterpretGPUParams(detect_races=True)):
        out = jax.block_until_ready(jax.jit(fn)(*args))
    assert not gpu_callbacks.get_races().races_found, "GPU interpret mode detected a data race"
    return out


def _on_device(fn, *args):
    return jax.block_until_ready(jax.jit(fn)(*args))


def _blocks(case: Case, backward: bool):
    kw = {"kernel_size": K, "block_h": case.block_h, "block_c": case.block_c}
    return {**kw, "channel_groups": case.channel_groups} if backward else kw


def _check_pixelwise(case: Case, seed: int, run=_interpret):
    h, weights, _, _, g = _inputs(case, seed)
    fwd = functools.partial(pallas_mgpu.warp_fwd, **_blocks(case, False))
    bwd = functools.partial(pallas_mgpu.warp_bwd, **_blocks(case, True))
    out = run(fwd, h, weights)
    grads = run(bwd, h, g, weights)
    ref, ref_vjp = jax.vjp(warp_ops.pixelwise_warp_reference, *_upcast(h, weights))
    _assert_close(out, ref, case.dtype)
    _assert_close(grads, ref_vjp(g.astype(jnp.float32)), case.dtype)


def _check_factorized(case: Case, seed: int, run=_interpret):
    h, _, kernels, selection, g = _inputs(case, seed)
    fwd_kw, bwd_kw = _blocks(case, False), _blocks(case, True)
    fwd = lambda h, k, s: pallas_mgpu.warp_fwd(h, kernels=k, selection=s, **fwd_kw)
    bwd = lambda h, g, k, s: pallas_mgpu.warp_bwd(h, g, kernels=k, selection=s, **bwd_kw)
    out = run(fwd, h, kernels, selection)
    grads = run(bwd, h, g, kernels, selection)
    ref, ref_vjp = jax.vjp(warp_ops.factorized_warp_reference, *_upcast(h, kernels, selection))
    _assert_close(out, ref, case.dtype)
    _assert_close(grads, ref_vjp(g.astype(jnp.float32)), case.dtype)


# Small shapes: three bands of 64 pixels (the halos come from the neighbouring bands and are
# clamped and masked at the image edges), W = 8 and W = 16 (16 pixels of halo segment, or
# 32), and two channel blocks per backward CTA (its double-buffered channel loop), in one or
# two channel groups; a basis of N = 4 != k*k kernels.
SMALL = [
    Case((2, 24, 8, 32), jnp.float32, softmax=False, block_h=8, block_c=8, channel_groups=2),
    Case((1, 12, 16, 16), jnp.bfloat16, softmax=True, n=4, block_h=4, block_c=8),
]
# One real hidden state (ch = 48, finest stage) at batch 1, tiled as the batch-8 default tiles
# its backward: 8 bands of 4 rows, 192 channels in blocks of 32, 3 CTAs per band.
REAL = [
    Case((1, 32, 32, 192), jnp.float32, softmax=True, block_h=4, block_c=32, channel_groups=3),
    Case((1, 32, 32, 192), jnp.bfloat16, softmax=False, block_h=4, block_c=32, channel_groups=3),
]


@pytest.mark.parametrize("case", SMALL + REAL, ids=str)
def test_pixelwise_interpret(case):
    _check_pixelwise(case, seed=1)


@pytest.mark.parametrize("case", SMALL + REAL, ids=str)
def test_factorized_interpret(case):
    _check_factorized(case, seed=2)


@pytest.mark.gpu
@pytest.mark.parametrize(
    "case",
    [
        *SMALL,
        *REAL,
        Case(LARGEST, jnp.float32, softmax=True),
        Case(TRIVD_HIDDEN[120][1], jnp.bfloat16, softmax=True),
    ],
    ids=str,
)
def test_on_gpu(case):
    """The same checks compiled and run on an sm_90 GPU (skipped elsewhere)."""
    if jax.default_backend() != "gpu":
        pytest.skip("needs an sm_90 GPU (the interpret-mode tests cover the CPU)")
    _check_pixelwise(case, seed=3, run=_on_device)
    _check_factorized(case, seed=4, run=_on_device)


def test_default_tiling_of_the_real_shapes():
    for shape in TRIVD_HIDDEN[48] + TRIVD_HIDDEN[120]:
        for dtype in (jnp.float32, jnp.bfloat16):
            assert pallas_mgpu.kernel_supports(shape, dtype, K), (shape, dtype)
            for backward in (False, True):
                geo = pallas_mgpu.pick_geometry(shape, dtype, K, backward=backward)
                assert geo.pixels % 64 == 0 and shape[3] % geo.block_c == 0
                assert geo.smem_bytes(jnp.dtype(dtype).itemsize, N, backward) <= 227 * 1024


def test_kernel_supports_refuses_what_it_cannot_tile():
    assert not pallas_mgpu.kernel_supports((8, 8, 8, 384), jnp.float16, K)
    assert not pallas_mgpu.kernel_supports((8, 8, 8, 20), jnp.float32, K)  # C % 8
    assert not pallas_mgpu.kernel_supports((8, 7, 7, 64), jnp.float32, K)  # no 64-pixel band
    assert not pallas_mgpu.kernel_supports((8, 8, 8, 64), jnp.float32, 4)  # even k
    with pytest.raises(ValueError, match="must divide H"):
        pallas_mgpu.Geometry(24, 8, 24, K, block_h=5, block_c=8).check()
    with pytest.raises(ValueError, match="multiple of 64"):
        pallas_mgpu.Geometry(24, 8, 24, K, block_h=4, block_c=8).check()


# ----------------------------------------------------------------------------- sm_90a compiles


def _fwd_bwd(form: str, shape, dtype):
    """(forward fn, forward args, backward fn, backward args) as (shape, dtype) pairs."""
    b, height, width, _ = shape
    h = (shape, dtype)
    if form == "pixelwise":
        p = ((b, height, width, K * K), dtype)
        fwd = functools.partial(pallas_mgpu.warp_fwd, kernel_size=K)
        bwd = functools.partial(pallas_mgpu.warp_bwd, kernel_size=K)
        return fwd, [h, p], bwd, [h, h, p]
    kern, sel = ((b, K * K, N), dtype), ((b, height, width, N), dtype)
    fwd = lambda h, k, s: pallas_mgpu.warp_fwd(h, kernels=k, selection=s, kernel_size=K)
    bwd = lambda h, g, k, s: pallas_mgpu.warp_bwd(h, g, kernels=k, selection=s, kernel_size=K)
    return fwd, [h, kern, sel], bwd, [h, h, kern, sel]


def _compile_params():
    params = []
    for ch, shapes in TRIVD_HIDDEN.items():
        for shape in shapes:
            for dtype in (jnp.float32, jnp.bfloat16):
                marks = () if shape == LARGEST else (pytest.mark.matrix,)
                name = f"ch{ch}-{'x'.join(map(str, shape))}-{jnp.dtype(dtype).name}"
                params.append(pytest.param(shape, dtype, marks=marks, id=name))
    return params


@pytest.mark.aot
@pytest.mark.parametrize("form", ["pixelwise", "factorized"])
@pytest.mark.parametrize(("shape", "dtype"), _compile_params())
def test_compiles_for_h100(form, shape, dtype):
    from compile_targets import abstract, compile_for
    from compile_targets.testing import require_target

    target = require_target("h100")
    mesh = target.mesh((1,))
    fwd, fwd_args, bwd, bwd_args = _fwd_bwd(form, shape, dtype)
    for direction, fn, args in (("fwd", fwd, fwd_args), ("bwd", bwd, bwd_args)):
        report = compile_for(fn, [abstract(s, d, mesh) for s, d in args], target)
        assert report.ok, report.error
        assert report.custom_calls.get("mosaic_gpu_v2") == 1, report.custom_calls
        text = report.compiled.as_text()
        assert 'custom_call_target="mosaic_gpu_v2"' in text
        assert f"{form}_warp_{direction}_mgpu" in text
        assert "triton" not in text.lower()


@pytest.mark.aot
def test_h100_rejects_a_band_over_shared_memory():
    """Negative control: one 8-row band with all 192 channels asks for ~476 KB of SMEM."""
    from compile_targets import abstract, compile_for
    from compile_targets.testing import require_target

    target = require_target("h100")
    mesh = target.mesh((1,))
    shape = TRIVD_HIDDEN[48][2]  # [8, 32, 32, 192]
    args = [abstract(shape, jnp.float32, mesh), abstract((*shape[:3], K * K), jnp.float32, mesh)]
    too_big = pallas_mgpu.Geometry(*shape[1:], K, block_h=8, block_c=192)
    too_big.check()  # a legal tiling; only its shared memory is out of reach
    assert too_big.smem_bytes(4, K * K, backward=False) > target.smem_bytes
    fwd = functools.partial(pallas_mgpu.warp_fwd, kernel_size=K)
    ok = compile_for(fwd, args, target)
    assert ok.ok, ok.error
    report = compile_for(functools.partial(fwd, block_h=8, block_c=192), args, target)
    assert not report.ok
    assert "shared memory" in report.error.lower(), report.error
