"""Run with 8 host devices: the stand-in's sharded train step equals its one-device step."""

from __future__ import annotations

import json
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P
from standin import FRAMES, SIZE, make_fns
from video_training import (
    CrossReplicaBatchNorm,
    Trainer,
    TrainerConfig,
    batch_moments,
    host_to_global,
    make_mesh,
)


def grouped(update_fn):
    """An update over `[2, B, ...]` batches: one stand-in step per group (as a GAN's D steps)."""

    def update(state, rng, batch):
        losses = []
        for i in range(batch["video"].shape[0]):
            state, metrics = update_fn(
                state, jax.random.fold_in(rng, i), {"video": batch["video"][i]}
            )
            losses.append(metrics["loss"])
        return state, {"loss": jnp.stack(losses).sum()}

    return update


def run_steps(devices, batches, workdir, batch_axis=0):
    init_fn, update_fn = make_fns()
    trainer = Trainer(
        TrainerConfig(workdir=workdir, num_steps=2, metrics_backend="jsonl"),
        init_fn=init_fn,
        update_fn=grouped(update_fn) if batch_axis else update_fn,
        mesh=make_mesh(devices=devices),
        batch_axis=batch_axis,
    )
    state = trainer._init(trainer.init_rng)
    losses, shard_counts = [], []
    for b in batches:
        batch = host_to_global({"video": b}, trainer.mesh, batch_axis)
        shards = batch["video"].addressable_shards
        assert all(s.data.shape[1 - batch_axis] == b.shape[1 - batch_axis] for s in shards)
        shard_counts.append(len(shards))
        state, metrics = trainer._step(state, trainer.train_rng, batch)
        losses.append(float(metrics["loss"]))
    trainer.close()
    return losses, jax.device_get(state), shard_counts


def main():
    assert jax.device_count() == 8, jax.devices()
    keys = jax.random.split(jax.random.key(0), 3)
    batches = [
        np.asarray(jax.random.uniform(k, (16, FRAMES, SIZE, SIZE, 3), minval=-1, maxval=1))
        for k in keys[:2]
    ]
    with tempfile.TemporaryDirectory() as d1, tempfile.TemporaryDirectory() as d8:
        l1, s1, c1 = run_steps(jax.devices()[:1], batches, d1)
        l8, s8, c8 = run_steps(jax.devices(), batches, d8)
    # Batches stacked per step ([2, B, ...], examples on axis 1) are split over `data` on axis 1.
    stacked = [np.stack([batches[0], batches[1]]), np.stack([batches[1], batches[0]])]
    with tempfile.TemporaryDirectory() as d1, tempfile.TemporaryDirectory() as d8:
        g1, _, _ = run_steps(jax.devices()[:1], stacked, d1, batch_axis=1)
        g8, _, gc8 = run_steps(jax.devices(), stacked, d8, batch_axis=1)
    diffs = jax.tree.map(
        lambda a, b: float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))),
        s1,
        s8,
    )
    max_state_diff = max(jax.tree.leaves(diffs))
    state_scale = max(float(np.max(np.abs(x))) for x in jax.tree.leaves(s1))

    # Cross-replica BN inside shard_map: per-device moments averaged with pmean == global moments.
    mesh = make_mesh()
    x = jax.random.normal(keys[2], (16, 5, 6)) * 3.0 + 1.0
    glob_mean, glob_var = batch_moments(x)
    sm = jax.shard_map(
        lambda v: batch_moments(v, axis_name="data"),
        mesh=mesh,
        in_specs=P("data"),
        out_specs=P(),
        check_vma=False,
    )
    cr_mean, cr_var = sm(x)
    bn = CrossReplicaBatchNorm(use_running_average=False, axis_name="data")
    local_bn = CrossReplicaBatchNorm(use_running_average=False, axis_name=None)
    variables = local_bn.init(jax.random.key(1), x)
    y_global, _ = local_bn.apply(variables, x, mutable=["batch_stats"])

    def apply_sharded(module):
        def f(v):
            y, _ = module.apply(variables, v, mutable=["batch_stats"])
            return y

        return jax.shard_map(
            f, mesh=mesh, in_specs=P("data"), out_specs=P("data"), check_vma=False
        )(x)

    y_cross = apply_sharded(bn)
    y_local = apply_sharded(local_bn)
    print(
        json.dumps(
            {
                "losses_1": l1,
                "losses_8": l8,
                "shards_1": c1,
                "shards_8": c8,
                "grouped_losses_1": g1,
                "grouped_losses_8": g8,
                "grouped_shards_8": gc8,
                "max_state_diff": max_state_diff,
                "state_scale": state_scale,
                "step_8": int(s8["step"]),
                "moments_diff": float(
                    jnp.maximum(
                        jnp.max(jnp.abs(cr_mean - glob_mean)), jnp.max(jnp.abs(cr_var - glob_var))
                    )
                ),
                "bn_cross_diff": float(jnp.max(jnp.abs(y_cross - y_global))),
                "bn_local_diff": float(jnp.max(jnp.abs(y_local - y_global))),
            }
        )
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
