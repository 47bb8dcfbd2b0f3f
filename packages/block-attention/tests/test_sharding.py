"""A sharded model calls block_attention unchanged: kernels run per shard, results unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

# Runs in a fresh process: the 4 CPU devices must exist before JAX starts.
PROGRAM = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import NamedSharding, PartitionSpec as P
    from block_attention import block_attention

    assert len(jax.devices()) == 4
    keys = jax.random.split(jax.random.key(0), 7)
    shape, block = (4, 2, 8, 8, 4, 16), (2, 4, 4)
    q, k, v, do = (jax.random.normal(kk, shape) for kk in keys[:4])
    tables = tuple(jax.random.normal(kk, (4, 2 * s - 1)) for kk, s in zip(keys[4:], block))

    def loss(q, k, v, tables):
        out = block_attention(
            q, k, v, block, rel_bias=tables, causal=True, implementation="{impl}"
        )
        return jnp.sum(out * do), out

    grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3), has_aux=True))
    (l1, o1), g1 = grad(q, k, v, tables)  # one device, no mesh
    mesh = jax.make_mesh((2, 2), ("data", "model"), axis_types=(jax.sharding.AxisType.Auto,) * 2)
    spec = NamedSharding(mesh, P("data", None, None, None, "model"))
    with jax.set_mesh(mesh):
        (l2, o2), g2 = grad(*(jax.device_put(x, spec) for x in (q, k, v)), tables)
        text = grad.lower(*(jax.device_put(x, spec) for x in (q, k, v)), tables).as_text()
    assert "shard_map" in text or "sdy.manual_computation" in text, "kernels not run per shard"
    np.testing.assert_allclose(np.asarray(o2), np.asarray(o1), rtol=1e-5, atol=1e-5)
    for a, b in zip(jax.tree.leaves(g2), jax.tree.leaves(g1)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-4)
    print("OK")
    """
)


@pytest.mark.parametrize("impl", ["pallas"])
def test_sharded_equals_one_device(impl):
    env = dict(os.environ)
    env["XLA_FLAGS"] = env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    env["JAX_PLATFORMS"] = "cpu"
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM.replace("{impl}", impl)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-3000:]
