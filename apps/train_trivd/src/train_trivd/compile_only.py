"""`train-trivd --compile_only` / `sample-trivd --compile_only`: compile for a TPU or GPU.

    python3 -m uv run --group aot train-trivd --config=kinetics600 --compile_only --topology=v3:8x8

builds the config's TrIVD-GAN-FP and the `Trainer`'s sharded train step (two D updates and one
G update, data parallel over every device of the target, the config's global batch
`data.batch_size`) on compile-only devices, compiles it with the target's compiler and prints
the per-device memory against the device's HBM. Exit status 0 when it fits, 1 when it compiles
but does not fit, 3 when the compiler refuses it. No data is read.
"""

from __future__ import annotations

import gan_video
import jax
import jax.numpy as jnp
import ml_collections
from video_training import compile_only

from train_trivd.configs import batch_axis, real_batches_per_step
from train_trivd.train import model_config, train_config


def batch_spec(config: ml_collections.ConfigDict, mc: gan_video.ModelConfig) -> dict:
    """The global train batch as abstract arrays (float clips in [-1, 1], optional labels),
    `[d_steps, B, ...]` with `data.fresh_real_batches` as the loader feeds it."""
    groups = real_batches_per_step(config)
    lead = (groups, int(config.data.batch_size)) if groups > 1 else (int(config.data.batch_size),)
    frame = (mc.num_frames, mc.resolution, mc.resolution, mc.channels)
    spec = {"video": jax.ShapeDtypeStruct((*lead, *frame), jnp.float32)}
    if config.data.get("use_labels", False):
        spec["label"] = jax.ShapeDtypeStruct(lead, jnp.int32)
    return spec


def train_report(config: ml_collections.ConfigDict, topology: str) -> compile_only.StepReport:
    """Compiles the train step of `config` for `topology` (see the module docstring)."""
    mc, tc = model_config(config), train_config(config)
    gan = gan_video.make_gan(mc, tc)
    return compile_only.compile_train_step(
        what=(
            f"train-trivd {config.name} ({mc.recurrent_unit}, {mc.decomposition}, ch {mc.g_ch}, "
            f"{mc.dtype} activations{', remat' if mc.remat else ''})"
        ),
        target_name=topology,
        init_fn=gan.init,
        update_fn=gan.train_step,
        batch=batch_spec(config, mc),
        model_parallelism=int(config.get("model_parallelism", 1)),
        seed=int(config.seed),
        batch_axis=batch_axis(config),
    )


def sample_report(
    config: ml_collections.ConfigDict, topology: str, num_samples: int
) -> compile_only.StepReport:
    """Compiles G's sampling pass (weight average, standing statistics) for `num_samples` clips."""
    ct = compile_only.load_targets()
    mc, tc = model_config(config), train_config(config)
    gan = gan_video.make_gan(mc, tc)
    target = ct.get_target(topology)
    mesh = compile_only.target_mesh(target, int(config.get("model_parallelism", 1)))
    state = jax.eval_shape(gan.init, jax.random.key(0))
    repl = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    data = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    place = lambda tree: jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=repl), tree
    )
    params, rest = place(state["ema"]), place(state["g"]["rest"])
    shape = (num_samples, mc.num_cond_frames, mc.resolution, mc.resolution, mc.channels)
    cond = jax.ShapeDtypeStruct(shape, jnp.float32, sharding=data)
    z = jax.ShapeDtypeStruct((num_samples, mc.z_dim), jnp.float32, sharding=data)

    def sample(params, rest, cond, z):
        frames, aux, _ = gan.generate(params, rest, cond, z, None, bn_mode="standing")
        return frames, aux

    return compile_only.compile_step(
        what=f"sample-trivd {config.name} ({num_samples} clips)",
        target=target,
        mesh=mesh,
        step_fn=sample,
        args=(params, rest, cond, z),
        state_bytes=compile_only.local_bytes(
            (state["ema"], state["g"]["rest"]), jax.tree.map(lambda _: repl, (params, rest))
        ),
        global_batch=num_samples,
    )
