"""`train-videotx --compile_only` / `sample-videotx --compile_only`: compile for a TPU or GPU.

    python3 -m uv run --group aot train-videotx --config=bair.py --compile_only --topology=v3:4x4

builds the config's model and the `Trainer`'s sharded train step (same functions, data parallel
over every device of the target, `config.model_parallelism` for the `model` axis, the config's
global batch) on compile-only devices, compiles it with the target's compiler and prints the
per-device memory against the device's HBM. Exit status 0 when it fits, 1 when it compiles but
does not fit, 3 when the compiler refuses it. No data is read.
"""

from __future__ import annotations

import ar_video
import jax
import jax.numpy as jnp
import ml_collections
from video_training import compile_only

from train_videotx.model import make_setup, prime_frames_in_window, train_prime_frames


def batch_spec(config: ml_collections.ConfigDict, vt: ar_video.VideoTransformerConfig) -> dict:
    """The global train batch as abstract arrays: one window and one slice index per example."""
    b = int(config.batch_size)
    spec = {
        "video": jax.ShapeDtypeStruct((b, *vt.video_shape, 3), jnp.uint8),
        "slice_index": jax.ShapeDtypeStruct((b,), jnp.int32),
    }
    if vt.conditioning_size:
        spec["conditioning"] = jax.ShapeDtypeStruct(
            (b, vt.video_shape[0], vt.conditioning_size), jnp.float32
        )
    return spec


def train_report(config: ml_collections.ConfigDict, topology: str) -> compile_only.StepReport:
    """Compiles the train step of `config` for `topology` (see the module docstring)."""
    setup = make_setup(config)
    vt = setup.vt_config
    micro = int(config.num_microbatches)
    step_fn = ar_video.make_train_step(
        setup.graphdef,
        setup.optimizer,
        num_prime_frames=train_prime_frames(config, vt.video_shape[0]),
        num_microbatches=micro,
    )
    options = [f"{vt.dtype} activations"] + ["remat"] * vt.remat
    options += [f"{micro} micro-batches"] * (micro > 1)
    return compile_only.compile_train_step(
        what=f"train-videotx {config.name} ({', '.join(options)})",
        target_name=topology,
        init_fn=setup.init_fn,
        update_fn=lambda state, rng, batch: step_fn(state, batch),
        batch=batch_spec(config, vt),
        model_parallelism=int(config.get("model_parallelism", 1)),
        seed=int(config.seed),
    )


def sample_report(
    config: ml_collections.ConfigDict, topology: str, num_samples: int
) -> compile_only.StepReport:
    """Compiles the cached sampling loop of one model window for `num_samples` videos."""
    ct = compile_only.load_targets()
    setup = make_setup(config)
    vt = setup.vt_config
    target = ct.get_target(topology)
    mesh = compile_only.target_mesh(target, int(config.get("model_parallelism", 1)))
    params_shape = jax.eval_shape(setup.init_fn, jax.random.key(0))["params"]
    repl = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    data = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    params = jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=repl), params_shape
    )
    # The sampler's window starts with the continuations' primes (sample.num_prime_frames).
    primes = prime_frames_in_window(config.sample.num_prime_frames, vt.video_shape[0])
    channels = jax.ShapeDtypeStruct(
        (num_samples, *vt.video_shape, ar_video.NUM_CHANNELS), jnp.int32, sharding=data
    )
    rng = jax.ShapeDtypeStruct((), jax.random.key(0).dtype, sharding=repl)
    temperature = float(config.sample.get("temperature", 0.9))
    cond = None
    if vt.conditioning_size:
        cond = jax.ShapeDtypeStruct(
            (num_samples, vt.video_shape[0], vt.conditioning_size), jnp.float32, sharding=data
        )

    def sample(params, channels, rng, conditioning):
        # One model window: the compiled slice-by-slice loop that `ar_video.sample` repeats.
        return ar_video.sample_window(
            setup.model(params),
            rng,
            channels,
            num_prime_frames=primes,
            temperature=temperature,
            conditioning=conditioning,
        )

    return compile_only.compile_step(
        what=f"sample-videotx {config.name} ({num_samples} videos)",
        target=target,
        mesh=mesh,
        step_fn=sample,
        args=(params, channels, rng, cond),
        state_bytes=compile_only.local_bytes(params_shape, jax.tree.map(lambda _: repl, params)),
        global_batch=num_samples,
    )
