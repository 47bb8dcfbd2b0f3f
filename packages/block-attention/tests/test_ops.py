"""Tests of block_attention: reference, Pallas kernels (interpret mode), TPU lowering, validation.

Compiles for real TPUs and GPUs are in test_compile.py.
"""

from __future__ import annotations

import itertools

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from block_attention import BlockSizes, block_attention, block_attention_reference, pallas_gpu
from block_attention.bias import bias_matrix
from block_attention.reference import blocks_from_video, video_from_blocks
from jax import export

# (atol, rtol) relative to the reference's largest magnitude, per input dtype.
TOLERANCES = {jnp.dtype(jnp.float32): (2e-5, 2e-5), jnp.dtype(jnp.bfloat16): (2.5e-2, 2.5e-2)}


def _inputs(seed, shape, block_shape, dtype, with_bias):
    keys = jax.random.split(jax.random.key(seed), 7)
    q, k, v, do = (jax.random.normal(kk, shape, jnp.float32).astype(dtype) for kk in keys[:4])
    rel_bias = None
    if with_bias:
        heads = shape[4]
        rel_bias = tuple(
            jax.random.normal(kk, (heads, 2 * s - 1), jnp.float32)
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


def _naive_block_attention(q, k, v, block_shape, rel_bias, causal):
    """Loop-over-blocks numpy implementation, independent of the einshape blocking."""
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    b, tt, hh, ww, heads, d = q.shape
    t, h, w = block_shape
    out = np.zeros_like(q)
    pos = np.array(list(itertools.product(range(t), range(h), range(w))))  # raster order
    for bi, t0, y0, x0 in itertools.product(
        range(b), range(0, tt, t), range(0, hh, h), range(0, ww, w)
    ):
        sl = (bi, slice(t0, t0 + t), slice(y0, y0 + h), slice(x0, x0 + w))
        qb, kb, vb = (x[sl].reshape(-1, heads, d) for x in (q, k, v))
        for n in range(heads):
            s = qb[:, n] @ kb[:, n].T / np.sqrt(d)
            if rel_bias is not None:
                for a, table in enumerate(rel_bias):
                    s += np.asarray(table, np.float64)[n][
                        pos[:, None, a] - pos[None, :, a] + block_shape[a] - 1
                    ]
            if causal:
                s = np.where(np.tril(np.ones_like(s, dtype=bool)), s, -np.inf)
            p = np.exp(s - s.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            out[sl + (slice(None),)][..., n, :] = (p @ vb[:, n]).reshape(t, h, w, d)
    return out


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("block_shape", [(2, 2, 4), (1, 4, 2)])
def test_reference_matches_naive_loops(block_shape, causal):
    q, k, v, _, rel_bias = _inputs(0, (2, 2, 4, 8, 3, 4), block_shape, jnp.float32, True)
    out = block_attention_reference(q, k, v, block_shape, rel_bias=rel_bias, causal=causal)
    expected = _naive_block_attention(q, k, v, block_shape, rel_bias, causal)
    np.testing.assert_allclose(np.asarray(out), expected, atol=1e-5, rtol=1e-5)


def test_reference_blocks_are_independent():
    """Changing keys outside a block leaves that block's output unchanged."""
    q, k, v, _, _ = _inputs(1, (1, 2, 4, 4, 2, 8), (2, 2, 2), jnp.float32, False)
    out = block_attention_reference(q, k, v, (2, 2, 2))
    k2 = k.at[:, :, 2:].set(-k[:, :, 2:])  # Only blocks with y >= 2 see this change.
    out2 = block_attention_reference(q, k2, v, (2, 2, 2))
    np.testing.assert_array_equal(np.asarray(out[:, :, :2]), np.asarray(out2[:, :, :2]))
    assert not np.allclose(np.asarray(out[:, :, 2:]), np.asarray(out2[:, :, 2:]))


# (shape [B, T, H, W, heads, d], block_shape, dtype, rel_bias, causal, block_sizes)
KERNEL_CASES = [
    ((2, 2, 8, 8, 2, 16), (2, 4, 4), jnp.float32, True, True, None),
    ((2, 2, 8, 8, 2, 16), (2, 4, 4), jnp.bfloat16, True, False, None),
    # A block spanning a whole axis (H), with t = 1.
    ((1, 1, 32, 8, 2, 8), (1, 32, 4), jnp.bfloat16, True, True, None),
    ((1, 2, 4, 8, 2, 8), (1, 4, 4), jnp.float32, False, True, None),
    ((2, 2, 4, 8, 2, 8), (2, 2, 2), jnp.float32, False, False, BlockSizes(1, 2, 2)),
]


class TestBlockAttentionKernel:
    """Pallas kernels vs the f32 reference, on the device's own backend."""

    INTERPRET = False

    @pytest.fixture(autouse=True)
    def _skip_without_accelerator(self):
        if not self.INTERPRET and jax.default_backend() == "cpu":
            pytest.skip("needs a TPU or GPU (the interpret-mode subclass covers CPU)")

    @pytest.mark.parametrize(
        "shape,block_shape,dtype,with_bias,causal,block_sizes",
        KERNEL_CASES,
        ids=[f"{c[1]}-{jnp.dtype(c[2]).name}-bias{c[3]}-causal{c[4]}" for c in KERNEL_CASES],
    )
    def test_forward_and_vjp(self, shape, block_shape, dtype, with_bias, causal, block_sizes):
        q, k, v, do, rel_bias = _inputs(2, shape, block_shape, dtype, with_bias)

        def kernel(q, k, v, rel_bias):
            return block_attention(
                q,
                k,
                v,
                block_shape,
                rel_bias=rel_bias,
                causal=causal,
                implementation="pallas",
                interpret=self.INTERPRET,
                block_sizes=block_sizes,
            )

        def reference(q, k, v, rel_bias):
            q, k, v = (x.astype(jnp.float32) for x in (q, k, v))
            return block_attention_reference(q, k, v, block_shape, rel_bias=rel_bias, causal=causal)

        out, kernel_vjp = jax.vjp(kernel, q, k, v, rel_bias)
        expected, reference_vjp = jax.vjp(reference, q, k, v, rel_bias)
        assert out.shape == q.shape and out.dtype == q.dtype
        _assert_close(out, expected, dtype, "out")
        grads = kernel_vjp(do)
        expected_grads = reference_vjp(do.astype(jnp.float32))
        names = ["dq", "dk", "dv", "dbias_t", "dbias_h", "dbias_w"][: len(jax.tree.leaves(grads))]
        for name, g, e in zip(
            names, jax.tree.leaves(grads), jax.tree.leaves(expected_grads), strict=True
        ):
            assert g.dtype == (jnp.float32 if name.startswith("dbias") else dtype), name
            _assert_close(g, e, dtype, name)


class TestBlockAttentionKernelInterpret(TestBlockAttentionKernel):
    INTERPRET = True


def test_tpu_interpret_params_mode():
    """The TPU kernels under `pltpu.InterpretParams()` (the TPU-semantics interpreter)."""
    from jax.experimental.pallas import tpu as pltpu

    q, k, v, do, rel_bias = _inputs(6, (1, 2, 4, 4, 2, 8), (2, 2, 2), jnp.float32, True)

    def kernel(q, k, v, rel_bias):
        return block_attention(
            q, k, v, (2, 2, 2), rel_bias=rel_bias, causal=True, interpret=pltpu.InterpretParams()
        )

    def reference(q, k, v, rel_bias):
        return block_attention_reference(q, k, v, (2, 2, 2), rel_bias=rel_bias, causal=True)

    out, kernel_vjp = jax.vjp(kernel, q, k, v, rel_bias)
    expected, reference_vjp = jax.vjp(reference, q, k, v, rel_bias)
    _assert_close(out, expected, jnp.float32, "out")
    for got, want in zip(
        jax.tree.leaves(kernel_vjp(do)), jax.tree.leaves(reference_vjp(do)), strict=True
    ):
        _assert_close(got, want, jnp.float32, "grad")


@pytest.mark.parametrize(
    "shape,block_shape,dtype,with_bias,causal",
    [
        ((1, 2, 4, 8, 2, 16), (2, 4, 4), jnp.float32, True, True),
        ((1, 1, 32, 4, 1, 16), (1, 32, 4), jnp.bfloat16, True, False),
    ],
)
@pytest.mark.filterwarnings("ignore:The Pallas Triton backend is deprecated")
def test_gpu_kernel_interpret(shape, block_shape, dtype, with_bias, causal):
    """The Triton GPU kernels, run by the Pallas interpreter, against the reference's VJP."""
    q, k, v, do, rel_bias = _inputs(5, shape, block_shape, dtype, with_bias)
    assert pallas_gpu.kernel_supports(shape, dtype, block_shape)
    g = bias_matrix(rel_bias, block_shape)
    kwargs = {
        "block_shape": block_shape,
        "causal": causal,
        "block_sizes": BlockSizes(),
        "interpret": True,
    }
    out = pallas_gpu.block_attention_fwd(q, k, v, g, **kwargs)
    dq, dk, dv, dg = pallas_gpu.block_attention_bwd(q, k, v, g, do, **kwargs)

    def reference(q, k, v, rel_bias):
        q, k, v = (x.astype(jnp.float32) for x in (q, k, v))
        return block_attention_reference(q, k, v, block_shape, rel_bias=rel_bias, causal=causal)

    expected, reference_vjp = jax.vjp(reference, q, k, v, rel_bias)
    _assert_close(out, expected, dtype, "out")
    eq, ek, ev, etables = reference_vjp(do.astype(jnp.float32))
    for name, got, want in (("dq", dq, eq), ("dk", dk, ek), ("dv", dv, ev)):
        _assert_close(got, want, dtype, name)
    # Map dG back onto the tables with the transpose of bias_matrix.
    _, to_tables = jax.vjp(lambda tables: bias_matrix(tables, block_shape), rel_bias)
    for name, got, want in zip(
        ("dbias_t", "dbias_h", "dbias_w"), to_tables(dg)[0], etables, strict=True
    ):
        _assert_close(got, want, dtype, name)


def test_auto_on_cpu_is_the_reference():
    q, k, v, _, rel_bias = _inputs(3, (1, 2, 4, 4, 2, 8), (2, 2, 2), jnp.float32, True)
    out = jax.jit(lambda q, k, v, b: block_attention(q, k, v, (2, 2, 2), rel_bias=b))(
        q, k, v, rel_bias
    )
    expected = block_attention_reference(q, k, v, (2, 2, 2), rel_bias=rel_bias)
    if jax.default_backend() == "cpu":
        np.testing.assert_array_equal(np.asarray(out), np.asarray(expected))
    else:
        _assert_close(out, expected, jnp.float32, "out")


# The Video Transformer base layer: one 4x32x32 slice, 8 heads x 128, bf16.
VT_SHAPE = (1, 4, 32, 32, 8, 128)


def test_tpu_export_rejects_illegal_block_sizes():
    """heads per program = 2 of 8 breaks the TPU (8, 128) tile rule and must not lower."""
    x = jax.ShapeDtypeStruct(VT_SHAPE, jnp.bfloat16)
    f = lambda q, k, v: block_attention(
        q, k, v, (4, 8, 4), implementation="pallas", block_sizes=BlockSizes(heads=2)
    )
    with pytest.raises(Exception, match="block shape|divisible|Block shape"):
        export.export(jax.jit(f), platforms=["tpu"])(x, x, x)


def _bad(**overrides):
    keys = jax.random.split(jax.random.key(4), 3)
    args = {
        "q": jax.random.normal(keys[0], (1, 2, 4, 4, 2, 8)),
        "k": jax.random.normal(keys[1], (1, 2, 4, 4, 2, 8)),
        "v": jax.random.normal(keys[2], (1, 2, 4, 4, 2, 8)),
        "block_shape": (2, 2, 2),
    }
    args.update(overrides)
    return args


@pytest.mark.parametrize(
    "overrides,error,match",
    [
        ({"block_shape": (2, 3, 2)}, ValueError, r"H=4 must be divisible by block_h=3"),
        ({"block_shape": (2, 2)}, ValueError, r"block_shape must be 3 positive ints"),
        ({"block_shape": (0, 2, 2)}, ValueError, r"block_shape must be 3 positive ints"),
        ({"k": jnp.ones((1, 2, 4, 4, 2, 4))}, ValueError, r"equal shapes"),
        ({"q": jnp.ones((2, 4, 4, 2, 8))}, ValueError, r"q must have shape .*6 dims"),
        ({"v": jnp.ones((1, 2, 4, 4, 2, 8), jnp.bfloat16)}, ValueError, r"equal dtypes"),
        (
            {k: jnp.ones((1, 2, 4, 4, 2, 8), jnp.int32) for k in "qkv"},
            ValueError,
            r"q.dtype must be one of",
        ),
        (
            {"rel_bias": (jnp.ones((2, 3)), jnp.ones((2, 3)), jnp.ones((2, 4)))},
            ValueError,
            r"bias_w must have shape \[heads, 2\*block-1\]=\(2, 3\), got \(2, 4\)",
        ),
        ({"rel_bias": (jnp.ones((2, 3)),)}, ValueError, r"rel_bias must be None or"),
        ({"implementation": "cuda"}, ValueError, r"implementation must be one of"),
        ({"block_sizes": BlockSizes(heads=3)}, ValueError, r"block_sizes.heads=3 must divide"),
        ({"block_sizes": (1, 1, 1)}, TypeError, r"block_sizes must be None or a BlockSizes"),
        ({"causal": 1}, TypeError, r"causal must be a bool"),
    ],
)
def test_validation_errors(overrides, error, match):
    args = _bad(**overrides)
    with pytest.raises(error, match=match):
        block_attention(**args)


def test_block_sizes_rejects_non_positive():
    with pytest.raises(ValueError, match=r"BlockSizes.blocks_w must be a positive int"):
        BlockSizes(blocks_w=0)


@hypothesis.settings(deadline=None, max_examples=6)
@hypothesis.given(
    counts=st.tuples(*[st.integers(1, 3)] * 3),
    block_shape=st.tuples(*[st.integers(1, 3)] * 3),
)
def test_blocks_from_video_round_trips(counts, block_shape):
    video_shape = tuple(c * b for c, b in zip(counts, block_shape, strict=True))
    # Distinct values (an arange) expose any misplaced element.
    x = jnp.arange(2 * int(np.prod(video_shape)) * 6, dtype=jnp.float32).reshape(
        2, *video_shape, 2, 3
    )
    blocks = blocks_from_video(x, block_shape)
    assert blocks.shape == (2, int(np.prod(counts)), int(np.prod(block_shape)), 2, 3)
    np.testing.assert_array_equal(
        np.asarray(video_from_blocks(blocks, block_shape, video_shape)), np.asarray(x)
    )
    # The first block holds the video's leading (t, h, w) corner in raster order.
    t, h, w = block_shape
    np.testing.assert_array_equal(
        np.asarray(blocks[:, 0]), np.asarray(x[:, :t, :h, :w].reshape(2, -1, 2, 3))
    )
