"""Run in a subprocess with 4 host devices: one train step, sharded over `data` vs one device."""

import json

import ar_video
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def main():
    assert jax.device_count() == 4, jax.devices()
    config = ar_video.tiny_config(attention_implementation="xla")
    graphdef, abstract = nnx.split(
        nnx.eval_shape(lambda: ar_video.VideoTransformer(config, rngs=nnx.Rngs(0)))
    )
    keys = iter(jax.random.split(jax.random.key(0), 1000))
    params = jax.tree.map(lambda x: 0.1 * jax.random.normal(next(keys), x.shape, x.dtype), abstract)
    optimizer = ar_video.make_optimizer(learning_rate=1e-3)
    state = {
        "params": params,
        "opt_state": optimizer.init(params),
        "step": jnp.zeros((), jnp.int32),
    }
    k_video, k_slice = jax.random.split(jax.random.key(1))
    batch = {
        "video": jax.random.randint(k_video, (8, *config.video_shape, 3), 0, 256).astype(jnp.uint8),
        "slice_index": jax.random.randint(k_slice, (8,), 0, config.num_slices),
    }
    step = jax.jit(ar_video.make_train_step(graphdef, optimizer, num_prime_frames=1))
    one_state, one_metrics = step(state, batch)

    mesh = Mesh(np.array(jax.devices()), ("data",))
    replicated = NamedSharding(mesh, PartitionSpec())
    sharded = NamedSharding(mesh, PartitionSpec("data"))
    batch_s = jax.device_put(batch, sharded)
    state_s = jax.device_put(state, replicated)
    shard_state, shard_metrics = step(state_s, batch_s)
    # Gradient accumulation over 2 micro-batches (one example per device each), sharded.
    micro_step = jax.jit(
        ar_video.make_train_step(graphdef, optimizer, num_prime_frames=1, num_microbatches=2)
    )
    micro_state, micro_metrics = micro_step(state_s, batch_s)

    def max_diff(a, b):
        diff = jax.tree.map(lambda x, y: float(jnp.max(jnp.abs(x - y))), a, b)
        return max(jax.tree.leaves(diff))

    print(
        json.dumps(
            {
                "num_shards": len(batch_s["video"].addressable_shards),
                "loss_one": float(one_metrics["loss"]),
                "loss_sharded": float(shard_metrics["loss"]),
                "max_param_diff": max_diff(one_state["params"], shard_state["params"]),
                "loss_microbatched": float(micro_metrics["loss"]),
                "max_param_diff_microbatched": max_diff(one_state["params"], micro_state["params"]),
                "max_update": max_diff(one_state["params"], params),
            }
        )
    )


if __name__ == "__main__":
    main()
