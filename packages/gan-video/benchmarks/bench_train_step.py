"""TrIVD-GAN-FP training-step time and peak memory per decomposition and recurrent unit.

Mirrors Table 1 and appendix E.3 of Luc et al. (2020): one training step is two D updates and
one G update (`gan_video.make_gan(...).train_step`), at `ch = 48` on 64x64 clips with 5
conditioning and 11 predicted frames, batch 8 (D sees those 8 real and 8 generated clips).
Rows: every decomposition (with TSRU_p), then every recurrent unit with DVD-GAN-FP_faster.
Prints ms per step, peak device memory (where the backend reports it) and the two ratios the
issue sets goals for (H100: faster / DVD-GAN-FP <= 0.85, TSRU_p / ConvGRU <= 1.10).

  python packages/gan-video/benchmarks/bench_train_step.py            # GPU, full table
  python packages/gan-video/benchmarks/bench_train_step.py --small    # CPU smoke run (tiny)
"""

from __future__ import annotations

import argparse
import datetime
import time

import gan_video
import jax
import jax.numpy as jnp
import numpy as np


def _peak_bytes() -> int | None:
    stats = jax.devices()[0].memory_stats() or {}
    return stats.get("peak_bytes_in_use")


def time_step(
    config: gan_video.ModelConfig, batch_size: int, steps: int
) -> tuple[float, int | None]:
    """Milliseconds per compiled train step (median over `steps`) and peak bytes."""
    gan = gan_video.make_gan(config)
    state = jax.jit(gan.init)(jax.random.key(0))
    clip = (batch_size, config.num_frames, config.resolution, config.resolution, config.channels)
    video = jax.random.uniform(jax.random.key(1), clip, minval=-1.0, maxval=1.0)
    step = jax.jit(gan.train_step, donate_argnums=0)
    rng = jax.random.key(2)
    state, metrics = step(state, rng, {"video": video})  # compile + warm-up
    jax.block_until_ready(metrics)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        state, metrics = step(state, rng, {"video": video})
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - start)
    if not all(bool(jnp.isfinite(v).all()) for v in jax.tree.leaves(metrics)):
        raise RuntimeError(f"non-finite metrics for {config.decomposition}/{config.recurrent_unit}")
    return 1e3 * float(np.median(times)), _peak_bytes()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny preset, 1 timed step (CPU)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--preset", default="medium", help="gan_video preset (medium: ch=48)")
    parser.add_argument("--decompositions", default=",".join(gan_video.DECOMPOSITIONS))
    parser.add_argument("--units", default=",".join(gan_video.RECURRENT_UNIT_NAMES))
    args = parser.parse_args(argv)
    preset, steps, batch = args.preset, args.steps, args.batch_size
    if args.small:
        preset, steps, batch = "tiny", 1, 2
    device = jax.devices()[0]
    print(
        f"# {datetime.date.today()} jax {jax.__version__} on {device.device_kind} "
        f"({jax.default_backend()}), preset {preset}, batch {batch}, median of {steps}"
    )
    print("| decomposition | recurrent unit | ms / step | peak MiB |")
    print("|---|---|---|---|")
    results: dict[tuple[str, str], float] = {}
    rows = [(d, "tsru_p") for d in args.decompositions.split(",")]
    rows += [("dvd_gan_fp_faster", u) for u in args.units.split(",") if u != "tsru_p"]
    if "tsru_p" in args.units.split(",") and ("dvd_gan_fp_faster", "tsru_p") not in rows:
        rows.append(("dvd_gan_fp_faster", "tsru_p"))
    for decomposition, unit in rows:
        config = gan_video.get_preset(preset, decomposition=decomposition, recurrent_unit=unit)
        ms, peak = time_step(config, batch, steps)
        results[decomposition, unit] = ms
        mib = "n/a" if peak is None else f"{peak / 2**20:.0f}"
        print(f"| {decomposition} | {unit} | {ms:.1f} | {mib} |", flush=True)
    ratios = {
        "dvd_gan_fp_faster / dvd_gan_fp (goal <= 0.85)": (
            ("dvd_gan_fp_faster", "tsru_p"),
            ("dvd_gan_fp", "tsru_p"),
        ),
        "tsru_p / convgru with faster (goal <= 1.10)": (
            ("dvd_gan_fp_faster", "tsru_p"),
            ("dvd_gan_fp_faster", "convgru"),
        ),
    }
    for name, (num, den) in ratios.items():
        if num in results and den in results:
            print(f"{name}: {results[num] / results[den]:.3f}")


if __name__ == "__main__":
    main()
