"""Pallas kernels (TPU and GPU, interpret mode on CPU) against the XLA references."""

import dataclasses
import functools
import math

import chex
import jax
import jax.numpy as jnp
import pytest
import warp_ops
from warp_ops import pallas_gpu, pallas_tpu

# (atol, rtol) against the reference run on float32-upcast inputs.
TOLERANCES = {jnp.float32: (2e-5, 2e-5), jnp.bfloat16: (6e-2, 2e-2)}


@dataclasses.dataclass(frozen=True)
class Case:
    shape: tuple[int, int, int, int]  # [B, H, W, C]
    k: int
    dtype: type
    softmax: bool  # softmax weights, or unnormalised normal ones
    n: int = 9  # factorized basis size

    def __str__(self):
        b, h, w, c = self.shape
        kind = "softmax" if self.softmax else "raw"
        return f"{b}x{h}x{w}x{c}-k{self.k}-{jnp.dtype(self.dtype).name}-{kind}-n{self.n}"


def _inputs(case: Case, seed: int):
    """h, pixelwise weights, basis kernels, selection map and output cotangent."""
    kh, kw, kk, ks, kg = jax.random.split(jax.random.key(seed), 5)
    b, height, width, _ = case.shape
    taps = case.k * case.k
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
    chex.assert_trees_all_equal_dtypes(actual, jax.tree.map(lambda x: x.astype(dtype), expected))
    chex.assert_trees_all_close(
        jax.tree.map(lambda x: x.astype(jnp.float32), actual), expected, atol=atol, rtol=rtol
    )


def _check_pixelwise(fn, case: Case, seed: int = 0):
    h, weights, _, _, g = _inputs(case, seed)
    out, vjp = jax.vjp(fn, h, weights)
    ref, ref_vjp = jax.vjp(warp_ops.pixelwise_warp_reference, *_upcast(h, weights))
    _assert_close(out, ref, case.dtype)
    _assert_close(vjp(g), ref_vjp(g.astype(jnp.float32)), case.dtype)


def _check_factorized(fn, case: Case, seed: int = 0):
    h, _, kernels, selection, g = _inputs(case, seed)
    out, vjp = jax.vjp(fn, h, kernels, selection)
    ref, ref_vjp = jax.vjp(warp_ops.factorized_warp_reference, *_upcast(h, kernels, selection))
    _assert_close(out, ref, case.dtype)
    _assert_close(vjp(g), ref_vjp(g.astype(jnp.float32)), case.dtype)


# Across the tests below: odd and even H and W, C not a multiple of 128, k = 3 and 5, bf16
# and f32, softmax and unnormalised weights (interpret mode is slow: one case per mix).
@pytest.mark.parametrize(
    "case",
    [
        Case((2, 5, 7, 3), 3, jnp.float32, softmax=True),
        Case((1, 6, 8, 5), 5, jnp.bfloat16, softmax=False),
    ],
    ids=str,
)
def test_pixelwise_warp_interpret(case):
    fn = jax.jit(functools.partial(warp_ops.pixelwise_warp, interpret=True))
    _check_pixelwise(fn, case)


@pytest.mark.parametrize(
    "case",
    [
        Case((1, 7, 6, 4), 3, jnp.bfloat16, softmax=True),
        Case((2, 4, 5, 3), 5, jnp.float32, softmax=False, n=4),
    ],
    ids=str,
)
def test_factorized_warp_interpret(case):
    fn = jax.jit(functools.partial(warp_ops.factorized_warp, interpret=True))
    _check_factorized(fn, case)


def _tpu_kernels(block_h, interpret=True):
    """pixelwise / factorized functions on the TPU kernels with an explicit row band."""
    kw = {"block_h": block_h, "interpret": interpret}

    @jax.custom_vjp
    def pixelwise(h, w):
        return pallas_tpu.warp_fwd(h, w, kernel_size=_k(w.shape[-1]), **kw)

    pixelwise.defvjp(
        lambda h, w: (pixelwise(h, w), (h, w)),
        lambda res, g: pallas_tpu.warp_bwd(
            res[0], g, res[1], kernel_size=_k(res[1].shape[-1]), **kw
        ),
    )

    @jax.custom_vjp
    def factorized(h, kern, s):
        return pallas_tpu.warp_fwd(
            h, kernels=kern, selection=s, kernel_size=_k(kern.shape[1]), **kw
        )

    def factorized_bwd(res, g):
        h, kern, s = res
        return pallas_tpu.warp_bwd(
            h, g, kernels=kern, selection=s, kernel_size=_k(kern.shape[1]), **kw
        )

    factorized.defvjp(lambda h, kern, s: (factorized(h, kern, s), (h, kern, s)), factorized_bwd)
    return pixelwise, factorized


def _k(taps):
    return math.isqrt(taps)


def test_tpu_kernels_with_row_bands_and_halos():
    # Three bands of two rows: the r-row halos come from the neighbouring bands.
    pixelwise, factorized = _tpu_kernels(block_h=2)
    _check_pixelwise(jax.jit(pixelwise), Case((1, 6, 8, 3), 5, jnp.float32, softmax=False), 1)
    _check_factorized(jax.jit(factorized), Case((2, 6, 8, 5), 3, jnp.bfloat16, softmax=True), 2)


def test_pick_block_h_divides_and_respects_halo():
    assert pallas_tpu.pick_block_h(64, 64, 96, 3) == 16  # 16 rows x 64 x 128 lanes x 4 B
    for height, k in [(8, 3), (16, 5), (64, 5), (7, 5)]:
        bh = pallas_tpu.pick_block_h(height, 64, 384, k)
        assert height % bh == 0
        assert bh == height or bh % ((k - 1) // 2) == 0


def _gpu_kernels():
    """pixelwise / factorized functions on the Triton GPU kernels, interpreted."""

    @jax.custom_vjp
    def pixelwise(h, w):
        return pallas_gpu.warp_fwd(h, w, kernel_size=_k(w.shape[-1]), interpret=True)

    pixelwise.defvjp(
        lambda h, w: (pixelwise(h, w), (h, w)),
        lambda res, g: pallas_gpu.warp_bwd(
            res[0], g, res[1], kernel_size=_k(res[1].shape[-1]), interpret=True
        ),
    )

    @jax.custom_vjp
    def factorized(h, kern, s):
        return pallas_gpu.warp_fwd(
            h, kernels=kern, selection=s, kernel_size=_k(kern.shape[1]), interpret=True
        )

    def factorized_bwd(res, g):
        h, kern, s = res
        return pallas_gpu.warp_bwd(
            h, g, kernels=kern, selection=s, kernel_size=_k(kern.shape[1]), interpret=True
        )

    factorized.defvjp(lambda h, kern, s: (factorized(h, kern, s), (h, kern, s)), factorized_bwd)
    return pixelwise, factorized


def test_gpu_triton_kernels_interpret():
    pixelwise, factorized = _gpu_kernels()
    _check_pixelwise(jax.jit(pixelwise), Case((2, 4, 6, 5), 5, jnp.float32, softmax=False), 3)
    _check_factorized(jax.jit(factorized), Case((1, 5, 7, 3), 3, jnp.bfloat16, True, n=4), 4)


def test_auto_on_cpu_uses_xla_and_matches_reference():
    case = Case((1, 5, 6, 3), 3, jnp.float32, softmax=True)
    _check_pixelwise(jax.jit(warp_ops.pixelwise_warp), case, seed=5)
    _check_factorized(jax.jit(warp_ops.factorized_warp), case, seed=6)
