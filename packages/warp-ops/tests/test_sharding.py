"""A data-parallel model calls the warps unchanged: kernels run per batch shard, same result."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

PROGRAM = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import NamedSharding, PartitionSpec as P
    import warp_ops

    assert len(jax.devices()) == 4
    kh, kk, ks, kg = jax.random.split(jax.random.key(0), 4)
    h = jax.random.normal(kh, (4, 16, 8, 16))
    kernels = jax.random.normal(kk, (4, 9, 9))
    selection = jax.nn.softmax(jax.random.normal(ks, (4, 16, 8, 9)))
    g = jax.random.normal(kg, h.shape)

    def loss(h, kernels, selection):
        return jnp.sum(warp_ops.factorized_warp(h, kernels, selection, implementation="pallas") * g)

    grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))
    l1, g1 = grad(h, kernels, selection)
    mesh = jax.make_mesh((4,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    spec = NamedSharding(mesh, P("data"))
    args = tuple(jax.device_put(x, spec) for x in (h, kernels, selection))
    with jax.set_mesh(mesh):
        l2, g2 = grad(*args)
        text = grad.lower(*args).as_text()
    assert "shard_map" in text or "sdy.manual_computation" in text, "kernels not run per shard"
    np.testing.assert_allclose(float(l2), float(l1), rtol=1e-4)  # summation order
    for a, b in zip(jax.tree.leaves(g2), jax.tree.leaves(g1)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-4)
    print("OK")
    """
)


def test_sharded_equals_one_device():
    env = dict(os.environ)
    env["XLA_FLAGS"] = env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    env["JAX_PLATFORMS"] = "cpu"
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-3000:]
