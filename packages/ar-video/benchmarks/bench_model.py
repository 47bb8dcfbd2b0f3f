"""Video Transformer training-step time / peak memory and sampling time (issue benchmarks).

Training: the spatiotemporal base and large models (section 4.1) on batches of 8 and 64 slices,
with the Pallas block attention (`attention_implementation="pallas"`) and the XLA reference.
Sampling: a batch of four 30x64x64 videos primed on 1 frame with the large model (random
weights; the paper took ~8 minutes on a V100, the goal on an H100 is <= 60 s).

  python packages/ar-video/benchmarks/bench_model.py            # GPU, full table
  python packages/ar-video/benchmarks/bench_model.py --small    # CPU smoke run (tiny model)
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import time

import ar_video
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


def random_model(
    config: ar_video.VideoTransformerConfig, seed: int = 0
) -> ar_video.VideoTransformer:
    """A model with random parameters made on device without eager per-layer initialisation."""
    graphdef, abstract = nnx.split(
        nnx.eval_shape(lambda: ar_video.VideoTransformer(config, rngs=nnx.Rngs(0)))
    )

    @jax.jit
    def fill(key):
        leaves, treedef = jax.tree.flatten(abstract)
        keys = jax.random.split(key, len(leaves))
        values = [0.02 * jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)]
        return jax.tree.unflatten(treedef, values)

    return nnx.merge(graphdef, fill(jax.random.key(seed)))


def _peak_mib() -> str:
    stats = jax.devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return "n/a" if peak is None else f"{peak / 2**20:.0f}"


def time_train_step(config, batch_size: int, steps: int) -> float:
    """Median milliseconds of one compiled RMSProp step on `batch_size` random slices."""
    optimizer = ar_video.make_optimizer()
    graphdef, state = ar_video.init_train_state(random_model(config), optimizer)
    step = jax.jit(ar_video.make_train_step(graphdef, optimizer), donate_argnums=0)
    kv, ks = jax.random.split(jax.random.key(1))
    batch = {
        "video": jax.random.randint(kv, (batch_size, *config.video_shape, 3), 0, 256, jnp.uint8),
        "slice_index": jax.random.randint(ks, (batch_size,), 0, config.num_slices),
    }
    state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        state, metrics = step(state, batch)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def time_sampling(config, batch_size: int, num_frames: int) -> float:
    """Seconds to sample `batch_size` videos of `num_frames` primed on 1 frame (compile excluded
    by a first, identical call)."""
    model = random_model(config)
    _, h, w = config.video_shape
    prime = jax.random.randint(jax.random.key(3), (batch_size, 1, h, w, 3), 0, 256, jnp.uint8)
    run = lambda key: ar_video.sample(model, key, prime, num_frames=num_frames)
    jax.block_until_ready(run(jax.random.key(4)))  # compile
    start = time.perf_counter()
    jax.block_until_ready(run(jax.random.key(5)))
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny model on CPU, 1 timed step")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--sizes", default="base,large")
    parser.add_argument("--batch-sizes", default="8,64")
    parser.add_argument("--implementations", default="pallas,xla")
    parser.add_argument("--skip-sampling", action="store_true")
    args = parser.parse_args(argv)
    print(f"# {datetime.date.today()} jax {jax.__version__} on {jax.devices()[0].device_kind}")
    if args.small:
        configs = {"tiny": ar_video.tiny_config()}
        batch_sizes, steps, impls, sample_frames = [2], 1, ["xla"], 6
    else:
        configs = {s: ar_video.paper_config("spatiotemporal", s) for s in args.sizes.split(",")}
        batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
        steps, impls, sample_frames = args.steps, args.implementations.split(","), 30
    print("| model | slices / batch | attention | ms / step | peak MiB |")
    print("|---|---|---|---|---|")
    ms = {}
    for name, config in configs.items():
        for impl in impls:
            cfg = dataclasses.replace(config, attention_implementation=impl)
            for b in batch_sizes:
                ms[name, impl, b] = time_train_step(cfg, b, steps)
                print(
                    f"| {name} | {b} | {impl} | {ms[name, impl, b]:.1f} | {_peak_mib()} |",
                    flush=True,
                )
    for (name, impl, b), value in ms.items():
        if impl == "pallas" and (name, "xla", b) in ms:
            print(f"{name} batch {b}: pallas / xla step time = {value / ms[name, 'xla', b]:.3f}")
    if not args.skip_sampling:
        name = "tiny" if args.small else "large"
        config = configs.get(name) or ar_video.paper_config("spatiotemporal", "large")
        seconds = time_sampling(config, 4, sample_frames)
        print(
            f"sampling 4 x {sample_frames} frames ({name}, 1 prime frame): {seconds:.3f} s "
            "(goal on H100: <= 60 s for the large model)"
        )


if __name__ == "__main__":
    main()
