"""`fvd REAL FAKE`: Fréchet Video Distance between two video sets from the command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Sequence

import numpy as np

from fvd.embedding import DEFAULT_BATCH_SIZE, check_video_shape, embed_async
from fvd.frechet import frechet_distance
from fvd.i3d import MIN_FRAMES
from fvd.statistics import FVDStatistics
from fvd.video_io import BadVideoError, iter_video_batches, list_videos, load_array, probe_videos


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fvd",
        description="Fréchet Video Distance (Unterthiner et al. 2018) with the reference protocol: "
        "frames resized to 224x224 (TF1 bilinear), 0..255 -> [-1, 1], Kinetics-400 I3D logits.",
    )
    for name in ("real", "fake"):
        p.add_argument(
            name,
            help=f"{name} videos: a .npy/.npz array [N, T, H, W, 3] (0..255), a folder of video "
            "files, or statistics saved by --save-stats",
        )
    p.add_argument("--num-frames", type=int, default=16, help="frames per video (first ones)")
    p.add_argument("--max-videos", type=int, default=None, help="use at most this many per set")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="videos per I3D call")
    p.add_argument("--save-stats", metavar="DIR", default=None, help="write real/fake .npz stats")
    p.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="split each set into this many disjoint subsets and report mean ± std of their FVDs",
    )
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable/short video files")
    p.add_argument("--value-range", type=float, nargs=2, default=(0.0, 255.0), metavar=("LO", "HI"))
    return p


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="video", file=sys.stderr, dynamic_ncols=True)


def _embed_batches(batches: Iterable[np.ndarray], total: int, desc: str, **kw) -> np.ndarray:
    """Embeds batches with one batch in flight, so decoding overlaps with the network."""
    out, pending = [], None
    with _progress(total, desc) as bar:
        for batch in batches:
            finish = embed_async(batch, name=desc, **kw)
            if pending is not None:
                out.append(pending[0]())
                bar.update(pending[1])
            pending = (finish, batch.shape[0])
        if pending is not None:
            out.append(pending[0]())
            bar.update(pending[1])
    return np.concatenate(out) if out else np.zeros((0, 400), np.float32)


def _load_side(path: str, desc: str, args) -> np.ndarray | FVDStatistics:
    """Returns `[N, 400]` embeddings, or saved `FVDStatistics`."""
    kw = {
        "batch_size": args.batch_size,
        "value_range": tuple(args.value_range),
        "pad_to": args.batch_size,  # a short last batch reuses the compiled network
    }
    if os.path.isdir(path):
        paths = list_videos(path)
        if args.max_videos is not None:
            paths = paths[: args.max_videos]
        if not paths:
            raise ValueError(f"{desc}: no video files in folder {path!r}")
        good, bad = probe_videos(paths, args.num_frames)
        if bad:
            if not args.skip_bad:
                raise BadVideoError(bad)
            for p, reason in bad:
                print(f"fvd: skipping {p}: {reason}", file=sys.stderr)
        if len(good) < 2:
            raise ValueError(f"{desc}: need at least 2 usable videos in {path!r}, got {len(good)}")
        batches = iter_video_batches(good, args.num_frames, args.batch_size)
        return _embed_batches(batches, len(good), desc, **kw)
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as data:
            if {"n", "mean", "cov"} <= set(data.keys()):
                return FVDStatistics.load(path)
    videos = load_array(path)
    check_video_shape(videos, name=desc, min_videos=2)
    if videos.shape[1] < args.num_frames:
        raise ValueError(
            f"{desc}: {path} has T={videos.shape[1]} frames, fewer than --num-frames={args.num_frames}"
        )
    videos = videos[: args.max_videos, : args.num_frames]
    check_video_shape(videos, name=desc, min_videos=2)
    n, bs = videos.shape[0], args.batch_size
    batches = (np.asarray(videos[i : i + bs]) for i in range(0, n, bs))
    return _embed_batches(batches, n, desc, **kw)


def _subsets(side: np.ndarray | FVDStatistics, repeats: int, desc: str) -> list[FVDStatistics]:
    if isinstance(side, FVDStatistics):
        return [side] * repeats
    size = side.shape[0] // repeats
    if size < 2:
        raise ValueError(
            f"{desc}: {side.shape[0]} videos cannot make {repeats} disjoint subsets of >= 2 videos"
        )
    return [
        FVDStatistics().update_embeddings(side[i * size : (i + 1) * size]) for i in range(repeats)
    ]


def run(args: argparse.Namespace) -> str:
    """Computes the result line for parsed arguments."""
    if args.num_frames < MIN_FRAMES:
        raise ValueError(
            f"--num-frames must be at least {MIN_FRAMES} (I3D minimum), got {args.num_frames}"
        )
    for flag in ("batch_size", "repeats"):
        if getattr(args, flag) < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if args.max_videos is not None and args.max_videos < 2:
        raise ValueError(f"--max-videos must be >= 2, got {args.max_videos}")
    sides = {d: _load_side(p, d, args) for d, p in (("real", args.real), ("fake", args.fake))}
    if args.save_stats:
        os.makedirs(args.save_stats, exist_ok=True)
        for desc, side in sides.items():
            if not isinstance(side, FVDStatistics):
                path = os.path.join(args.save_stats, f"{desc}_stats.npz")
                FVDStatistics().update_embeddings(side).save(path)
                print(f"fvd: wrote {path}", file=sys.stderr)
    real = _subsets(sides["real"], args.repeats, "real")
    fake = _subsets(sides["fake"], args.repeats, "fake")
    scores = np.array([frechet_distance(r.mean, r.cov, f.mean, f.cov) for r, f in zip(real, fake)])
    sizes = f"real {real[0].n} videos, fake {fake[0].n} videos, {args.num_frames} frames"
    if args.repeats == 1:
        return f"FVD {scores[0]:.4f} ({sizes})"
    # Unbiased (ddof=1) std over the disjoint subsets, as the papers report.
    return (
        f"FVD {scores.mean():.4f} ± {scores.std(ddof=1):.4f} "
        f"(mean ± std over {args.repeats} disjoint subsets of {sizes})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit status (2 on bad input)."""
    args = _parser().parse_args(argv)
    try:
        line = run(args)
    except (ValueError, TypeError, OSError) as e:  # bad input: a message, not a traceback
        print(f"fvd: error: {e}", file=sys.stderr)
        return 2
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
