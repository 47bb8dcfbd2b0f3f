"""`sample-videotx`: continuations from a trained checkpoint, primed on held-out clips or a video file."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

import jax
import numpy as np

USAGE_EXAMPLES = """examples:
  sample-videotx --workdir=runs/default_tiny                 # primed on held-out clips
  sample-videotx --workdir=runs/default_tiny --video=me.mp4 --num_samples=8 --temperature=1.0
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sample-videotx",
        description=__doc__,
        epilog=USAGE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--workdir", required=True, help="a train-videotx run (config.json, checkpoints/)"
    )
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: newest)")
    p.add_argument("--video", default=None, help="prime on this video file (any format PyAV reads)")
    p.add_argument(
        "--start_frame", "--start-frame", type=int, default=0, help="first prime frame in --video"
    )
    p.add_argument("--split", default=None, help="held-out split to prime on (default: eval split)")
    p.add_argument("--num_samples", "--num-samples", type=int, default=4)
    p.add_argument("--temperature", type=float, default=None, help="default: the config's (0.9)")
    p.add_argument(
        "--num_frames",
        "--num-frames",
        type=int,
        default=None,
        help="frames per video (with primes)",
    )
    p.add_argument(
        "--num_prime_frames",
        "--num-prime-frames",
        type=int,
        default=None,
        help="default: the config's",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output path without extension")
    p.add_argument("--formats", default="gif,mp4", help="comma-separated: gif, mp4")
    p.add_argument("--fps", type=float, default=8.0)
    return p


def load_prime_video(path: str, *, start_frame: int, num_frames: int, size: int) -> np.ndarray:
    """`[num_frames, size, size, 3]` uint8 from a user's video: centre crop + Lanczos (section 4.3)."""
    from video_training.data import decode_video, vt_spatial

    if start_frame < 0:
        raise ValueError(f"start_frame must be >= 0, got {start_frame}")
    frames = decode_video(path, max_frames=start_frame + num_frames)[start_frame:]
    if frames.shape[0] < num_frames:
        raise ValueError(
            f"video {path} has {frames.shape[0] + start_frame} frames: need start_frame + "
            f"num_prime_frames = {start_frame + num_frames}"
        )
    return vt_spatial(frames, size)


def run(args: argparse.Namespace) -> tuple[np.ndarray, list[str]]:
    """Samples as `args` asks; returns `([N, F, H, W, 3] uint8 samples, written paths)`."""
    from train_videotx import data as vtx_data
    from train_videotx.evaluation import continue_videos, write_grid
    from train_videotx.model import (
        enable_compilation_cache,
        load_config,
        make_setup,
        restore_params,
    )

    if args.num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {args.num_samples}")
    config = load_config(args.workdir)
    enable_compilation_cache(config.get("compilation_cache_dir", ""))
    setup = make_setup(config)
    params, step = restore_params(setup, args.workdir, args.step)
    num_prime = config.num_prime_frames if args.num_prime_frames is None else args.num_prime_frames
    num_frames = args.num_frames or config.sample.num_frames
    temperature = config.sample.temperature if args.temperature is None else args.temperature
    if num_prime < 1:
        raise ValueError(f"num_prime_frames must be >= 1 to continue a video, got {num_prime}")
    if num_frames <= num_prime:
        raise ValueError(f"num_frames={num_frames} must exceed num_prime_frames={num_prime}")
    if args.video:
        prime = load_prime_video(
            args.video, start_frame=args.start_frame, num_frames=num_prime, size=config.data.size
        )
        prime = np.repeat(prime[None], args.num_samples, axis=0)
        shown = []
    else:
        split = args.split or config.data.eval_split
        real = vtx_data.heldout_clips(config.data.dir, split, args.num_samples, num_frames)
        prime, shown = real[:, :num_prime], [real]
    samples = continue_videos(
        setup.model(params),
        jax.random.key(args.seed),
        prime,
        num_frames=num_frames,
        temperature=temperature,
        window_stride=config.sample.window_stride,
    )
    out = args.out or os.path.join(args.workdir, "samples", f"sample_step{step}_seed{args.seed}")
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    paths = write_grid(
        out,
        np.concatenate([*shown, samples]),
        num_prime,
        columns=args.num_samples,
        formats=formats,
        fps=args.fps,
    )
    return samples, paths


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    _, paths = run(args)
    for path in paths:
        print(f"samples: {os.path.abspath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
